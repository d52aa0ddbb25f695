"""The decision table, row by row, without a database, a clock or settings.

The expectations are written out here a second time, on purpose: a change to the
state machine must change both the table and this test.
"""

from __future__ import annotations

import itertools

import pytest

from django_wxpay_profitsharing import decisions
from django_wxpay_profitsharing.decisions import Decision, Outcome, Schedule, decide
from django_wxpay_profitsharing.states import Action, ReturnState, Step
from django_wxpay_profitsharing.wechatpay import errors

P, Q = ReturnState.PENDING, ReturnState.PROCESSING
S, F, R = ReturnState.SUCCEEDED, ReturnState.FAILED, ReturnState.REJECTED
OC = Outcome

# (state, step, outcome): (next state or None, schedule, needs_query, then, keeps_error, slow_down)
EXPECTED = {
    (P, Step.SUBMIT, OC.SUCCESS): (S, "never", False, None, False, False),
    (P, Step.SUBMIT, OC.FAILED): (F, "never", False, None, False, False),
    (P, Step.SUBMIT, OC.PROCESSING): (Q, "poll", False, None, False, False),
    (P, Step.SUBMIT, OC.MISMATCH): (None, "retry", True, None, True, False),
    (P, Step.SUBMIT, OC.UNVERIFIABLE): (None, "retry", True, None, True, False),
    (P, Step.SUBMIT, OC.NOT_SENT): (None, "retry", None, None, True, False),
    (P, Step.SUBMIT, OC.MAYBE_SENT): (None, "retry", True, None, True, False),
    (P, Step.SUBMIT, OC.INVALID_LOCAL): (R, "never", False, None, True, False),
    (P, Step.SUBMIT, OC.RETRY_SAME): (None, "retry", True, None, True, False),
    (P, Step.SUBMIT, OC.RATE_LIMITED): (None, "retry", None, None, True, True),
    (P, Step.SUBMIT, OC.CREDENTIALS): (None, "retry", None, None, True, False),
    (P, Step.SUBMIT, OC.REFUSED): (R, "never", False, None, True, False),
    (P, Step.SUBMIT, OC.NOT_FOUND): (R, "never", False, None, True, False),
    (P, Step.QUERY, OC.SUCCESS): (S, "never", False, None, False, False),
    (P, Step.QUERY, OC.FAILED): (F, "never", False, None, False, False),
    (P, Step.QUERY, OC.PROCESSING): (Q, "poll", False, None, False, False),
    (P, Step.QUERY, OC.MISMATCH): (None, "retry", None, None, True, False),
    (P, Step.QUERY, OC.UNVERIFIABLE): (None, "retry", None, None, True, False),
    (P, Step.QUERY, OC.NOT_SENT): (None, "retry", None, None, True, False),
    (P, Step.QUERY, OC.MAYBE_SENT): (None, "retry", None, None, True, False),
    (P, Step.QUERY, OC.INVALID_LOCAL): (R, "never", False, None, True, False),
    (P, Step.QUERY, OC.RETRY_SAME): (None, "retry", None, None, True, False),
    (P, Step.QUERY, OC.RATE_LIMITED): (None, "retry", None, None, True, True),
    (P, Step.QUERY, OC.CREDENTIALS): (None, "retry", None, None, True, False),
    (P, Step.QUERY, OC.REFUSED): (None, "retry", None, None, True, False),
    (P, Step.QUERY, OC.NOT_FOUND): (None, "retry", False, Step.SUBMIT, True, False),
    (Q, Step.QUERY, OC.SUCCESS): (S, "never", False, None, False, False),
    (Q, Step.QUERY, OC.FAILED): (F, "never", False, None, False, False),
    (Q, Step.QUERY, OC.PROCESSING): (Q, "poll", False, None, False, False),
    **{
        (Q, Step.QUERY, outcome): (None, "poll", False, None, True, outcome is OC.RATE_LIMITED)
        for outcome in (
            OC.MISMATCH, OC.UNVERIFIABLE, OC.NOT_SENT, OC.MAYBE_SENT, OC.INVALID_LOCAL,
            OC.RETRY_SAME, OC.RATE_LIMITED, OC.CREDENTIALS, OC.REFUSED, OC.NOT_FOUND,
        )
    },
}  # fmt: skip


@pytest.mark.parametrize("key", sorted(EXPECTED, key=str), ids=lambda k: "-".join(k))
def test_every_row(key):
    state, schedule, needs_query, then, keeps_error, slow_down = EXPECTED[key]
    assert decide(*key) == Decision(
        state=state,
        schedule=Schedule(schedule),
        needs_query=needs_query,
        then=then,
        keeps_error=keeps_error,
        slow_down=slow_down,
    )


def test_the_table_has_exactly_the_expected_rows():
    assert set(decisions.TABLE) == set(EXPECTED)


def test_no_row_for_what_never_happens():
    for state, step in itertools.product(ReturnState, Step):
        if (state, step) in {(P, Step.SUBMIT), (P, Step.QUERY), (Q, Step.QUERY)}:
            continue
        with pytest.raises(LookupError):
            decide(state, step, OC.SUCCESS)


def test_final_states_send_their_signals_and_nothing_else_does():
    for key, decision in decisions.TABLE.items():
        expected = {
            S: ("return_succeeded", "return_finalized"),
            F: ("return_failed", "return_finalized"),
            R: ("return_rejected", "return_finalized"),
        }.get(decision.state, ())
        assert decision.signals == expected, key


@pytest.mark.parametrize(
    ("action", "state", "needs_query", "can_query", "step"),
    [
        (Action.SUBMIT, P, False, True, Step.SUBMIT),
        (Action.SUBMIT, P, True, True, Step.QUERY),
        (Action.SUBMIT, P, True, False, Step.SUBMIT),  # no out_order_no yet: re-send
        (Action.REFRESH, P, True, True, Step.QUERY),
        (Action.REFRESH, P, True, False, None),  # refresh never sends
        (Action.REFRESH, Q, False, True, Step.QUERY),
        (Action.REFRESH, Q, False, False, None),
        (Action.DUE, P, False, True, Step.SUBMIT),
        (Action.DUE, Q, False, True, Step.QUERY),
    ],
)
def test_first_step(action, state, needs_query, can_query, step):
    assert decisions.first_step(action, state, needs_query, can_query) is step


@pytest.mark.parametrize(
    ("action", "state", "needs_query", "allowed"),
    [
        (Action.SUBMIT, ReturnState.DRAFT, False, False),  # nothing sends a draft
        (Action.REFRESH, ReturnState.DRAFT, False, False),
        (Action.DUE, ReturnState.DRAFT, False, False),
        (Action.SUBMIT, P, False, True),
        (Action.SUBMIT, Q, False, False),
        (Action.REFRESH, P, False, False),  # never sent: nothing to ask
        (Action.REFRESH, P, True, True),
        (Action.REFRESH, Q, False, True),
        (Action.DUE, P, False, True),
        (Action.DUE, Q, False, True),
        *[(action, state, False, False) for action in Action for state in (S, F, R)],
    ],
)
def test_which_action_may_claim_what(action, state, needs_query, allowed):
    assert decisions.may_claim(action, state, needs_query) is allowed


def test_unknown_action_raises_instead_of_being_read_as_another():
    with pytest.raises(ValueError):
        decisions.may_claim("refesh", P, True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (errors.APIError(500, "SYSTEM_ERROR"), OC.RETRY_SAME),
        (errors.APIError(429, "FREQUENCY_LIMITED"), OC.RATE_LIMITED),
        (errors.APIError(401, "SIGN_ERROR"), OC.CREDENTIALS),
        (errors.APIError(400, "INVALID_REQUEST"), OC.REFUSED),
        (errors.APIError(404, "RESOURCE_NOT_EXISTS"), OC.NOT_FOUND),
        (errors.APIError(418, "SOMETHING_NEW"), OC.REFUSED),
        (errors.APIError(503, ""), OC.RETRY_SAME),
        (errors.TransportError("x", maybe_sent=False), OC.NOT_SENT),
        (errors.TransportError("x", maybe_sent=True), OC.MAYBE_SENT),
        (errors.SignatureError("x"), OC.UNVERIFIABLE),
        (errors.InvalidRequest("amount", "x"), OC.INVALID_LOCAL),
    ],
)
def test_outcome_of_each_error_class(exc, outcome):
    assert decisions.outcome_of_error(exc) is outcome


@pytest.mark.parametrize(
    ("result", "outcome"),
    [
        ("SUCCESS", OC.SUCCESS),
        ("FAILED", OC.FAILED),
        ("PROCESSING", OC.PROCESSING),
        ("NEW", OC.PROCESSING),
    ],
)
def test_outcome_of_each_result(result, outcome):
    assert decisions.outcome_of_result(result) is outcome


def test_every_error_code_has_one_meaning_and_only_errors_py_lists_them():
    """No other module of the package names WeChat's error codes."""
    from pathlib import Path

    package = Path(decisions.__file__).parent
    for path in package.rglob("*.py"):
        if path.name == "errors.py" and path.parent.name == "wechatpay":
            continue
        if "simulator" in path.parts:  # the stand-in answers with them, as WeChat does
            continue
        text = path.read_text(encoding="utf-8")
        for code in errors.CODE_MEANINGS:
            assert f'"{code}"' not in text, (path, code)
