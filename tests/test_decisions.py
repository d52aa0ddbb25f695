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

# (state, step, outcome): (next state, schedule, needs_query, awaiting_topup, then,
# keeps_error, slow_down); None: unchanged.
ANSWERS = {
    OC.SUCCESS: (S, "never", False, False, None, False, False),
    OC.FAILED: (F, "never", False, False, None, False, False),
    OC.PROCESSING: (Q, "poll", False, False, None, False, False),
}
ERRORS = [o for o in OC if o not in ANSWERS]
RETRY = (None, "retry", None, None, None, True, False)
ARRIVED = (None, "retry", True, None, None, True, False)
SLOWER = (None, "retry", None, None, None, True, True)
REJECT = (R, "never", False, None, None, True, False)
CONFIRM = (None, "retry", True, None, Step.CONFIRM, True, False)
TOPUP = (Q, "poll", False, True, None, True, False)
POLL = (None, "poll", False, None, None, True, False)
POLL_SLOWER = (None, "poll", False, None, None, True, True)


def rows(state, step, errors):
    assert set(errors) == set(ERRORS), (state, step)
    return {(state, step, o): v for o, v in {**ANSWERS, **errors}.items()}


EXPECTED = {
    **rows(P, Step.SUBMIT, {
        OC.MISMATCH: ARRIVED, OC.UNVERIFIABLE: ARRIVED, OC.NOT_SENT: RETRY,
        OC.CANNOT_ASK: RETRY, OC.MAYBE_SENT: ARRIVED, OC.INVALID_LOCAL: REJECT,
        OC.RETRY_SAME: ARRIVED, OC.RATE_LIMITED: SLOWER, OC.CREDENTIALS: RETRY,
        OC.REFUSED: CONFIRM, OC.NOT_FOUND: CONFIRM, OC.BALANCE_SHORT: TOPUP,
    }),
    **rows(P, Step.QUERY, {
        **dict.fromkeys(ERRORS, RETRY), OC.INVALID_LOCAL: REJECT, OC.RATE_LIMITED: SLOWER,
        OC.NOT_FOUND: (None, "retry", False, None, Step.SUBMIT, True, False),
    }),
    **rows(P, Step.CONFIRM, {
        **dict.fromkeys(ERRORS, (None, "retry", True, None, None, True, False)),
        OC.RATE_LIMITED: (None, "retry", True, None, None, True, True),
        OC.NOT_FOUND: REJECT, OC.MISMATCH: REJECT, OC.INVALID_LOCAL: REJECT,
        OC.CANNOT_ASK: REJECT,
    }),
    **rows(Q, Step.QUERY, {**dict.fromkeys(ERRORS, POLL), OC.RATE_LIMITED: POLL_SLOWER}),
    **rows(Q, Step.SUBMIT, {
        **dict.fromkeys(ERRORS, POLL), OC.RATE_LIMITED: POLL_SLOWER, OC.BALANCE_SHORT: TOPUP,
        OC.REFUSED: (None, "poll", None, None, Step.CONFIRM, True, False),
        OC.NOT_FOUND: (None, "poll", None, None, Step.CONFIRM, True, False),
    }),
    **rows(Q, Step.CONFIRM, {**dict.fromkeys(ERRORS, POLL), OC.RATE_LIMITED: POLL_SLOWER}),
}  # fmt: skip


@pytest.mark.parametrize("key", sorted(EXPECTED, key=str), ids=lambda k: "-".join(k))
def test_every_row(key):
    state, schedule, needs_query, awaiting, then, keeps_error, slow_down = EXPECTED[key]
    assert decide(*key) == Decision(
        state=state,
        schedule=Schedule(schedule),
        needs_query=needs_query,
        awaiting_topup=awaiting,
        then=then,
        keeps_error=keeps_error,
        slow_down=slow_down,
    )


def test_the_table_has_exactly_the_expected_rows():
    assert set(decisions.TABLE) == set(EXPECTED)


def test_no_row_for_what_never_happens():
    for state, step in itertools.product(ReturnState, Step):
        if state in (P, Q):
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
    ("action", "step"),
    [(Action.DUE, Step.SUBMIT), (Action.RETRY, Step.SUBMIT), (Action.REFRESH, Step.QUERY)],
)
def test_a_return_waiting_for_a_top_up_is_sent_again_identically(action, step):
    """原单重试: the same request again; a refresh only asks."""
    assert decisions.first_step(action, Q, False, True, awaiting_topup=True) is step


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
        (Action.RETRY, P, False, False),
        (Action.RETRY, Q, False, False),  # only a return waiting for a top-up
        *[(action, state, False, False) for action in Action for state in (S, F, R)],
    ],
)
def test_which_action_may_claim_what(action, state, needs_query, allowed):
    assert decisions.may_claim(action, state, needs_query) is allowed
    if action is Action.RETRY and state == Q:
        assert decisions.may_claim(action, state, needs_query, awaiting_topup=True)


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
        (errors.APIError(403, "NOT_ENOUGH", "可用余额不足，请充值后重新发起"), OC.BALANCE_SHORT),
        (errors.APIError(400, "INVALID_REQUEST", "剩余可回退的金额不足"), OC.REFUSED),
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
        text = path.read_text(encoding="utf-8")
        for code in errors.CODE_MEANINGS:
            assert f'"{code}"' not in text, (path, code)
