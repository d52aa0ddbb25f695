"""The refund job's decision table, row by row and rule by rule, without a database.

The table (``refund_decisions.TABLE``) is restated here in two ways that do not read
it: the rules every row must follow (WeChat Pay's: one number until a query finds
nothing, a refusal confirmed before the job fails, an operator only for what one must
decide), and the rows of each path written out. A row changed in the table fails one
of them.
"""

from __future__ import annotations

import pytest

from django_wxpay_profitsharing.refund_decisions import (
    ERRORS,
    OPERATOR_ACTIONS,
    SIGNALS,
    STEP_OUTCOMES,
    STEPS,
    TABLE,
    Wait,
    decide,
    operator_rule,
)
from django_wxpay_profitsharing.refund_states import (
    FINAL_JOB_STATES,
    Attention,
    OperatorAction,
    RefundJobState,
    RefundOutcome,
    RefundStep,
)
from django_wxpay_profitsharing.states import SignalName

S, Out, J, A = RefundStep, RefundOutcome, RefundJobState, OperatorAction
ROWS = sorted(TABLE.items(), key=lambda row: tuple(map(str, row[0])))
#: The steps that send money movement, and the queries that ask about them.
SENDS = {S.REFUND: {S.QUERY_REFUND, S.CONFIRM_REFUSAL}, S.UNFREEZE: {S.CONFIRM_UNFREEZE}}
#: An answer lost or not to be trusted: what was sent may be held by WeChat Pay.
MAY_BE_HELD = {Out.MAYBE_SENT, Out.RETRY_SAME, Out.UNVERIFIABLE, Out.MISMATCH, Out.TOO_SOON}


def test_every_state_step_and_outcome_has_exactly_one_row():
    expected = {
        (state, step, outcome)
        for state, steps in STEPS.items()
        for step in steps
        for outcome in STEP_OUTCOMES[step]
    }
    assert set(TABLE) == expected
    assert len(TABLE) == 110


@pytest.mark.parametrize(("key", "decision"), ROWS, ids=[".".join(map(str, k)) for k, _ in ROWS])
def test_each_row_follows_the_rules(key, decision):
    state, step, outcome = key
    after = decision.state or state
    # A step is one its (new) state takes; a final state takes none and never wakes.
    if after in FINAL_JOB_STATES:
        assert decision.step is None and decision.wait is Wait.NEVER
    elif after is not J.NEEDS_OPERATOR:
        assert (decision.step or step) in STEPS[after]
    # WeChat Pay said we call too often: the limiter slows down, and nothing else changes.
    assert decision.slow_down == (outcome is Out.RATE_LIMITED)
    if outcome is Out.RATE_LIMITED:
        assert decision.state is None and decision.step is None
    # A send whose answer was lost is asked about before it goes again (one number).
    if step in SENDS and outcome in MAY_BE_HELD:
        assert decision.needs_query is True and decision.step in SENDS[step]
    # Only a query that found nothing, or an answer, lets a send go again.
    if decision.step in SENDS and decision.step is not step:
        assert decision.needs_query is False
    # An operator is asked only for what one must decide.
    if decision.state is J.NEEDS_OPERATOR:
        assert outcome in {Out.BALANCE_SHORT, Out.REFUND_ABNORMAL, Out.CLAWBACK_INCOMPLETE,
                           Out.PLAN_GREW}  # fmt: skip
        assert decision.attention is not None and decision.wait is Wait.NEVER
    # An accepted refund never fails: it ends succeeded, closed, or with an operator.
    if state is J.FOLLOWING:
        assert decision.state in (None, J.SUCCEEDED, J.CLOSED, J.NEEDS_OPERATOR)
        assert decision.state is not None or decision.wait is Wait.POLL
    # Errors of a call are recorded; a step that moved on clears them.
    if outcome in ERRORS and decision.state is None:
        assert decision.keeps_error


#: ``(state, step, outcome) -> (state after, step after, wait)``; None: unchanged.
PATHS = {
    # The plan.
    (J.PENDING, S.INSPECT, Out.FITS_FROZEN): (J.REFUNDING, S.REFUND, Wait.SPACING),
    (J.PENDING, S.INSPECT, Out.FROM_BALANCE): (J.REFUNDING, S.REFUND, Wait.SPACING),
    (J.PENDING, S.INSPECT, Out.NOT_SHARING_ORDER): (J.REFUNDING, S.REFUND, Wait.SPACING),
    (J.PENDING, S.INSPECT, Out.NEEDS_UNFREEZE): (J.UNFREEZING, S.UNFREEZE, Wait.NOW),
    (J.PENDING, S.INSPECT, Out.NEEDS_CLAWBACK): (J.CLAWING_BACK, S.CLAW_BACK, Wait.NOW),
    (J.PENDING, S.INSPECT, Out.SPLIT_OPEN): (None, None, Wait.SPLITS),
    (J.PENDING, S.INSPECT, Out.PLAN_GREW): (J.NEEDS_OPERATOR, None, Wait.NEVER),
    (J.PENDING, S.INSPECT, Out.NOT_REFUNDABLE): (J.FAILED, None, Wait.NEVER),
    (J.PENDING, S.INSPECT, Out.NOT_FOUND): (J.FAILED, None, Wait.NEVER),
    (J.PENDING, S.INSPECT, Out.MAYBE_SENT): (None, None, Wait.RETRY),
    # Unfreeze, then plan again from what is there.
    (J.UNFREEZING, S.UNFREEZE, Out.UNFREEZE_ACCEPTED): (None, S.CONFIRM_UNFREEZE, Wait.POLL),
    (J.UNFREEZING, S.UNFREEZE, Out.NOTHING_LEFT): (J.PENDING, S.INSPECT, Wait.NOW),
    (J.UNFREEZING, S.UNFREEZE, Out.NOT_SHARING_ORDER): (J.REFUNDING, S.REFUND, Wait.SPACING),
    (J.UNFREEZING, S.CONFIRM_UNFREEZE, Out.UNFREEZE_FINISHED): (J.PENDING, S.INSPECT, Wait.NOW),
    (J.UNFREEZING, S.CONFIRM_UNFREEZE, Out.UNFREEZE_PROCESSING): (None, None, Wait.POLL),
    (J.UNFREEZING, S.CONFIRM_UNFREEZE, Out.NOT_FOUND): (None, S.UNFREEZE, Wait.NOW),
    # Clawbacks through the returns' own machinery.
    (J.CLAWING_BACK, S.CLAW_BACK, Out.CLAWBACKS_MADE): (None, S.AWAIT_CLAWBACK, Wait.POLL),
    (J.CLAWING_BACK, S.CLAW_BACK, Out.RETRY_SAME): (None, None, Wait.RETRY),
    (J.CLAWING_BACK, S.AWAIT_CLAWBACK, Out.CLAWBACK_COMPLETED): (
        J.REFUNDING,
        S.REFUND,
        Wait.SPACING,
    ),
    (J.CLAWING_BACK, S.AWAIT_CLAWBACK, Out.CLAWBACK_OPEN): (None, None, Wait.POLL),
    (J.CLAWING_BACK, S.AWAIT_CLAWBACK, Out.CLAWBACK_INCOMPLETE): (
        J.NEEDS_OPERATOR,
        None,
        Wait.NEVER,
    ),
    # 申请退款.
    (J.REFUNDING, S.REFUND, Out.REFUND_SUCCESS): (J.SUCCEEDED, None, Wait.NEVER),
    (J.REFUNDING, S.REFUND, Out.REFUND_PROCESSING): (J.FOLLOWING, S.QUERY_REFUND, Wait.POLL),
    (J.REFUNDING, S.REFUND, Out.REFUND_CLOSED): (J.CLOSED, None, Wait.NEVER),
    (J.REFUNDING, S.REFUND, Out.REFUND_ABNORMAL): (J.NEEDS_OPERATOR, S.QUERY_REFUND, Wait.NEVER),
    (J.REFUNDING, S.REFUND, Out.BALANCE_SHORT): (J.NEEDS_OPERATOR, None, Wait.NEVER),
    (J.REFUNDING, S.REFUND, Out.SPLIT_PENDING): (J.PENDING, S.INSPECT, Wait.SPLITS),
    (J.REFUNDING, S.REFUND, Out.TOO_SOON): (None, S.QUERY_REFUND, Wait.SPACING),
    (J.REFUNDING, S.REFUND, Out.MAYBE_SENT): (None, S.QUERY_REFUND, Wait.RETRY),
    (J.REFUNDING, S.REFUND, Out.REFUSED): (None, S.CONFIRM_REFUSAL, Wait.NOW),
    (J.REFUNDING, S.REFUND, Out.NOT_FOUND): (None, S.CONFIRM_REFUSAL, Wait.NOW),
    (J.REFUNDING, S.REFUND, Out.INVALID_LOCAL): (J.FAILED, None, Wait.NEVER),
    (J.REFUNDING, S.REFUND, Out.RATE_LIMITED): (None, None, Wait.RETRY),
    # 查询单笔退款 after a lost answer, and after a refusal.
    (J.REFUNDING, S.QUERY_REFUND, Out.NOT_FOUND): (None, S.REFUND, Wait.SPACING),
    (J.REFUNDING, S.QUERY_REFUND, Out.REFUND_PROCESSING_LONG): (
        J.FOLLOWING,
        S.QUERY_REFUND,
        Wait.POLL,
    ),
    (J.REFUNDING, S.CONFIRM_REFUSAL, Out.NOT_FOUND): (J.FAILED, None, Wait.NEVER),
    (J.REFUNDING, S.CONFIRM_REFUSAL, Out.REFUND_SUCCESS): (J.SUCCEEDED, None, Wait.NEVER),
    (J.REFUNDING, S.CONFIRM_REFUSAL, Out.MAYBE_SENT): (None, None, Wait.RETRY),
    # Following an accepted refund.
    (J.FOLLOWING, S.QUERY_REFUND, Out.REFUND_SUCCESS): (J.SUCCEEDED, None, Wait.NEVER),
    (J.FOLLOWING, S.QUERY_REFUND, Out.REFUND_CLOSED): (J.CLOSED, None, Wait.NEVER),
    (J.FOLLOWING, S.QUERY_REFUND, Out.REFUND_PROCESSING): (None, None, Wait.POLL),
    (J.FOLLOWING, S.QUERY_REFUND, Out.REFUND_PROCESSING_LONG): (None, None, Wait.POLL),
    (J.FOLLOWING, S.QUERY_REFUND, Out.NOT_FOUND): (None, None, Wait.POLL),
    (J.FOLLOWING, S.QUERY_REFUND, Out.REFUSED): (None, None, Wait.POLL),
    (J.FOLLOWING, S.QUERY_REFUND, Out.REFUND_ABNORMAL): (
        J.NEEDS_OPERATOR,
        S.QUERY_REFUND,
        Wait.NEVER,
    ),
}


@pytest.mark.parametrize(("key", "expected"), sorted(PATHS.items(), key=str), ids=str)
def test_each_path_row(key, expected):
    decision = decide(*key)
    assert (decision.state, decision.step, decision.wait) == expected


@pytest.mark.parametrize(
    ("outcome", "attention"),
    [
        (Out.BALANCE_SHORT, Attention.BALANCE_SHORT),
        (Out.REFUND_ABNORMAL, Attention.ABNORMAL),
    ],
)
def test_what_an_operator_is_asked_for(outcome, attention):
    decision = decide(J.REFUNDING, S.REFUND, outcome)
    assert decision.attention is attention
    assert decision.signals == (SignalName.REFUND_NEEDS_ATTENTION,)


def test_a_refund_processing_long_asks_for_attention_and_keeps_polling():
    decision = decide(J.FOLLOWING, S.QUERY_REFUND, Out.REFUND_PROCESSING_LONG)
    assert decision.attention is Attention.PROCESSING_LONG and decision.state is None
    assert decision.signals == (SignalName.REFUND_NEEDS_ATTENTION,)


def test_the_signals_of_each_final_state():
    assert decide(J.REFUNDING, S.REFUND, Out.REFUND_SUCCESS).signals == (
        SignalName.REFUND_SUCCEEDED,
    )
    assert decide(J.FOLLOWING, S.QUERY_REFUND, Out.REFUND_CLOSED).signals == (
        SignalName.REFUND_CLOSED,
    )
    assert decide(J.REFUNDING, S.CONFIRM_REFUSAL, Out.NOT_FOUND).signals == (
        SignalName.REFUND_FAILED,
    )
    assert set(SIGNALS) == {J.SUCCEEDED, J.CLOSED, J.FAILED, J.NEEDS_OPERATOR}


def test_a_combination_without_a_row_is_a_bug_not_a_guess():
    with pytest.raises(LookupError):
        decide(J.FOLLOWING, S.REFUND, Out.REFUND_SUCCESS)
    with pytest.raises(LookupError):
        decide(J.SUCCEEDED, S.QUERY_REFUND, Out.REFUND_SUCCESS)
    with pytest.raises(LookupError):
        decide("nonsense", S.QUERY_REFUND, Out.REFUND_SUCCESS)


#: ``(state, attention, action) -> (state after, a new attempt, only if nothing moved)``.
OPERATOR = {
    (J.DRAFT, None, A.CANCEL): (J.CANCELLED, False, True),
    (J.NEEDS_OPERATOR, Attention.CLAWBACK_SHORT, A.PROCEED): (J.REFUNDING, False, False),
    (J.NEEDS_OPERATOR, Attention.CLAWBACK_SHORT, A.CANCEL): (J.CANCELLED, False, True),
    (J.NEEDS_OPERATOR, Attention.BALANCE_SHORT, A.RETRY): (J.REFUNDING, False, False),
    (J.NEEDS_OPERATOR, Attention.BALANCE_SHORT, A.CANCEL): (J.CANCELLED, False, True),
    (J.NEEDS_OPERATOR, Attention.PLAN_CHANGED, A.PROCEED): (J.PENDING, False, False),
    (J.NEEDS_OPERATOR, Attention.PLAN_CHANGED, A.CANCEL): (J.CANCELLED, False, True),
    (J.NEEDS_OPERATOR, Attention.ABNORMAL, A.TO_MERCHANT_BANK): (J.FOLLOWING, False, False),
    (J.CLOSED, None, A.TRY_AGAIN): (J.PENDING, True, False),
}


def test_operator_actions_are_exactly_these():
    assert set(OPERATOR_ACTIONS) == set(OPERATOR)
    for (state, attention, action), (after, new, guarded) in OPERATOR.items():
        rule = operator_rule(state, attention, action)
        assert rule is not None
        assert (rule.decision.state, rule.new_attempt, rule.only_if_nothing_moved) == (
            after,
            new,
            guarded,
        )
    # What is not listed may not be done: a refund under way is never cancelled.
    assert operator_rule(J.REFUNDING, None, A.CANCEL) is None
    assert operator_rule(J.FOLLOWING, None, A.RETRY) is None
    assert operator_rule(J.NEEDS_OPERATOR, Attention.ABNORMAL, A.CANCEL) is None
