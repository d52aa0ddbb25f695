"""The state machine of a refund job, declared once as a table, beside the returns' own.

Like ``decisions.py``: every rule about what a step's outcome does to a job (the next
state and step, when to look again, whether WeChat Pay may hold what was sent, whether
an operator must act, which signals go out) is one row, read by :func:`decide`, a pure
function: no ORM, no clock, no settings. The service layer (``refund_jobs.py``) makes
the step, classifies what happened into a :class:`~.refund_states.RefundOutcome`, asks
:func:`decide` and writes the :class:`Decision` down.

The table is keyed by ``(state, step, outcome)``; :data:`STEPS` says which steps each
state takes and :data:`STEP_OUTCOMES` which outcomes each step can have. Every such
combination has a row (``tests/test_refund_decisions.py`` checks each one); any other
is a bug, never a guess.

What the rows follow (WeChat Pay's rules for 申请退款, 查询单笔退款 and 解冻剩余资金):

- one ``out_refund_no`` for every retry while WeChat Pay may hold the refund: an answer
  lost (a timeout, a 5xx, ``FREQUENCY_LIMITED``, an answer that cannot be verified) is
  asked about (查询单笔退款) before the identical request goes again, and only a
  query that finds nothing lets it go; a refusal is confirmed the same way before the
  job fails;
- ``NOT_ENOUGH`` (the balance is short), ``ABNORMAL`` (the customer's card), a short
  clawback and a plan grown beyond what was approved wait for an operator; nothing
  else ever does: ``RULE_LIMIT`` re-plans (unfreezing when allowed) and waits for the
  splits, the 60-second spacing and rate limits wait, a long refund keeps being polled;
- ``CLOSED`` is final for the attempt: an operator may try again, under a new number.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .refund_states import Attention, OperatorAction, RefundJobState, RefundOutcome, RefundStep
from .states import SignalName

S, Out, J = RefundStep, RefundOutcome, RefundJobState


class Wait(enum.StrEnum):
    """When the job is looked at again."""

    NOW = "now"  # at once (the next step follows in the same pass when it can)
    RETRY = "retry"  # after ``RETRY_BACKOFF`` (doubling per attempt)
    POLL = "poll"  # after ``REFUND_POLL_BACKOFF`` (WeChat Pay is working on it)
    SPACING = "spacing"  # when the payment's 60-second spacing allows the next request
    SPLITS = "splits"  # after ``REFUND_SPLIT_WAIT``: sharing still going on at WeChat Pay
    NEVER = "never"  # final, or waiting for an operator


#: The signals of the states a job may reach.
SIGNALS: dict[RefundJobState, tuple[SignalName, ...]] = {
    J.SUCCEEDED: (SignalName.REFUND_SUCCEEDED,),
    J.CLOSED: (SignalName.REFUND_CLOSED,),
    J.FAILED: (SignalName.REFUND_FAILED,),
    J.NEEDS_OPERATOR: (SignalName.REFUND_NEEDS_ATTENTION,),
}


@dataclass(frozen=True)
class Decision:
    """What an outcome does to a job.

    ``state``/``step`` None: unchanged. ``needs_query``: whether what was sent may be
    held by WeChat Pay now (the next attempt asks before it sends again): True, False,
    or None for "as before". ``attention``: why an operator must act (None: unchanged;
    set with ``state=NEEDS_OPERATOR``, or on its own for a refund processing long).
    ``keeps_error`` records the error on the job; otherwise the last error is cleared.
    ``slow_down`` tells the rate limiter WeChat Pay said we call too often.
    """

    state: RefundJobState | None = None
    step: RefundStep | None = None
    wait: Wait = Wait.RETRY
    needs_query: bool | None = None
    attention: Attention | None = None
    keeps_error: bool = True
    slow_down: bool = False

    @property
    def signals(self) -> tuple[SignalName, ...]:
        if self.state is None:
            return SIGNALS[J.NEEDS_OPERATOR] if self.attention is not None else ()
        return SIGNALS.get(self.state, ())


def _go(state: RefundJobState, step: RefundStep | None, wait: Wait = Wait.NOW) -> Decision:
    """Onwards: a new state and step, nothing held at WeChat Pay to ask about."""
    return Decision(state=state, step=step, wait=wait, needs_query=False, keeps_error=False)


def _operator(attention: Attention) -> Decision:
    return Decision(state=J.NEEDS_OPERATOR, wait=Wait.NEVER, attention=attention)


_RETRY = Decision()  # unchanged, again later, as known as before
_SLOW = Decision(slow_down=True)
_ASK = Decision(needs_query=True)  # what was sent may be held: ask before sending again
_FAIL = Decision(state=J.FAILED, step=None, wait=Wait.NEVER, needs_query=False)
_DONE = _go(J.SUCCEEDED, None, Wait.NEVER)
_CLOSED = _go(J.CLOSED, None, Wait.NEVER)
_FOLLOW = _go(J.FOLLOWING, S.QUERY_REFUND, Wait.POLL)
_ABNORMAL = Decision(
    state=J.NEEDS_OPERATOR, step=S.QUERY_REFUND, wait=Wait.NEVER, needs_query=False,
    attention=Attention.ABNORMAL,
)  # fmt: skip
_REPLAN = Decision(state=J.PENDING, step=S.INSPECT, wait=Wait.SPLITS, needs_query=False)
_TO_REFUND = _go(J.REFUNDING, S.REFUND, Wait.SPACING)

#: What every call can come back with besides its own answers.
ERRORS = frozenset(
    {Out.RETRY_SAME, Out.RATE_LIMITED, Out.CREDENTIALS, Out.REFUSED, Out.NOT_SENT, Out.MAYBE_SENT,
     Out.UNVERIFIABLE, Out.MISMATCH, Out.INVALID_LOCAL}
)  # fmt: skip
#: The outcomes each step can have.
STEP_OUTCOMES: dict[RefundStep, frozenset[RefundOutcome]] = {
    S.INSPECT: ERRORS | {Out.FITS_FROZEN, Out.NEEDS_UNFREEZE, Out.NEEDS_CLAWBACK, Out.FROM_BALANCE,
                         Out.SPLIT_OPEN, Out.PLAN_GREW, Out.NOT_REFUNDABLE, Out.NOT_FOUND,
                         Out.NOT_SHARING_ORDER},
    S.UNFREEZE: ERRORS | {Out.UNFREEZE_ACCEPTED, Out.NOTHING_LEFT, Out.NOT_SHARING_ORDER,
                          Out.NOT_FOUND},
    S.CONFIRM_UNFREEZE: ERRORS | {Out.UNFREEZE_FINISHED, Out.UNFREEZE_PROCESSING, Out.NOT_FOUND},
    S.CLAW_BACK: frozenset({Out.CLAWBACKS_MADE, Out.CLAWBACK_INCOMPLETE, Out.RETRY_SAME}),
    S.AWAIT_CLAWBACK: frozenset({Out.CLAWBACK_COMPLETED, Out.CLAWBACK_INCOMPLETE,
                                 Out.CLAWBACK_OPEN}),
    S.REFUND: ERRORS | {Out.REFUND_SUCCESS, Out.REFUND_PROCESSING, Out.REFUND_CLOSED,
                        Out.REFUND_ABNORMAL, Out.BALANCE_SHORT, Out.SPLIT_PENDING, Out.TOO_SOON,
                        Out.NOT_FOUND},
    S.QUERY_REFUND: ERRORS | {Out.REFUND_SUCCESS, Out.REFUND_PROCESSING, Out.REFUND_CLOSED,
                              Out.REFUND_ABNORMAL, Out.REFUND_PROCESSING_LONG, Out.NOT_FOUND},
    S.CONFIRM_REFUSAL: ERRORS | {Out.REFUND_SUCCESS, Out.REFUND_PROCESSING, Out.REFUND_CLOSED,
                                 Out.REFUND_ABNORMAL, Out.NOT_FOUND},
}  # fmt: skip
#: The steps each state takes.
STEPS: dict[RefundJobState, frozenset[RefundStep]] = {
    J.PENDING: frozenset({S.INSPECT}),
    J.UNFREEZING: frozenset({S.UNFREEZE, S.CONFIRM_UNFREEZE}),
    J.CLAWING_BACK: frozenset({S.CLAW_BACK, S.AWAIT_CLAWBACK}),
    J.REFUNDING: frozenset({S.REFUND, S.QUERY_REFUND, S.CONFIRM_REFUSAL}),
    J.FOLLOWING: frozenset({S.QUERY_REFUND}),
}

Key = tuple[RefundJobState, RefundStep, RefundOutcome]


def _rows(
    state: RefundJobState, step: RefundStep, decisions: dict[RefundOutcome, Decision]
) -> dict[Key, Decision]:
    """The rows of ``(state, step)``: exactly its step's outcomes, each once."""
    wanted = STEP_OUTCOMES[step]
    if set(decisions) != wanted:
        missing, extra = sorted(wanted - set(decisions)), sorted(set(decisions) - wanted)
        raise AssertionError(f"{state} x {step}: missing {missing}, not outcomes {extra}")
    return {(state, step, outcome): d for outcome, d in decisions.items()}


#: The answers a query of the refund gives, the same whoever asks.
_REFUND_ANSWERS = {
    Out.REFUND_SUCCESS: _DONE,
    Out.REFUND_PROCESSING: _FOLLOW,
    Out.REFUND_CLOSED: _CLOSED,
    Out.REFUND_ABNORMAL: _ABNORMAL,
}
_GET_ERRORS = {
    **dict.fromkeys(ERRORS, _RETRY),
    Out.RATE_LIMITED: _SLOW,
}

#: The state machine of a refund job: ``(state, step, outcome) -> Decision``.
TABLE: dict[Key, Decision] = {
    # Approved: WeChat Pay's payment, its frozen money and its sharing orders: the plan.
    **_rows(J.PENDING, S.INSPECT, {
        **_GET_ERRORS,
        Out.FITS_FROZEN: _TO_REFUND,
        Out.NOT_SHARING_ORDER: _TO_REFUND,  # not taken with profit sharing: just refund
        Out.FROM_BALANCE: _TO_REFUND,
        Out.NEEDS_UNFREEZE: _go(J.UNFREEZING, S.UNFREEZE),
        Out.NEEDS_CLAWBACK: _go(J.CLAWING_BACK, S.CLAW_BACK),
        Out.SPLIT_OPEN: Decision(wait=Wait.SPLITS, keeps_error=False),
        Out.PLAN_GREW: _operator(Attention.PLAN_CHANGED),
        Out.NOT_REFUNDABLE: _FAIL,
        Out.NOT_FOUND: _FAIL,  # WeChat Pay knows no such payment (or not in this mode)
        Out.REFUSED: _FAIL,
        Out.INVALID_LOCAL: _FAIL,
    }),
    # 解冻剩余资金, under the job's own new out_order_no.
    **_rows(J.UNFREEZING, S.UNFREEZE, {
        **dict.fromkeys(ERRORS, _RETRY),
        Out.RATE_LIMITED: _SLOW,
        Out.MAYBE_SENT: Decision(step=S.CONFIRM_UNFREEZE, needs_query=True),
        Out.RETRY_SAME: Decision(step=S.CONFIRM_UNFREEZE, needs_query=True),
        Out.UNVERIFIABLE: Decision(step=S.CONFIRM_UNFREEZE, needs_query=True),
        Out.MISMATCH: Decision(step=S.CONFIRM_UNFREEZE, needs_query=True),
        Out.UNFREEZE_ACCEPTED: Decision(step=S.CONFIRM_UNFREEZE, wait=Wait.POLL, needs_query=True,
                                      keeps_error=False),
        # Nothing was left frozen: plan again from what is there now.
        Out.NOTHING_LEFT: _go(J.PENDING, S.INSPECT),
        Out.NOT_SHARING_ORDER: _TO_REFUND,
        Out.NOT_FOUND: _FAIL,
        Out.REFUSED: _FAIL,
        Out.INVALID_LOCAL: _FAIL,
    }),
    # 查询分账结果 of the unfreeze: FINISHED means the money is in the available balance.
    **_rows(J.UNFREEZING, S.CONFIRM_UNFREEZE, {
        **_GET_ERRORS,
        Out.UNFREEZE_FINISHED: _go(J.PENDING, S.INSPECT),  # plan the rest from what is there
        Out.UNFREEZE_PROCESSING: Decision(wait=Wait.POLL, keeps_error=False),
        # WeChat Pay never took it: the identical request, the same number.
        Out.NOT_FOUND: Decision(step=S.UNFREEZE, wait=Wait.NOW, needs_query=False),
    }),
    # The plan's clawbacks, made and sent by the returns' own machinery.
    **_rows(J.CLAWING_BACK, S.CLAW_BACK, {
        Out.CLAWBACKS_MADE: Decision(step=S.AWAIT_CLAWBACK, wait=Wait.POLL, keeps_error=False),
        Out.CLAWBACK_INCOMPLETE: _operator(Attention.CLAWBACK_SHORT),
        Out.RETRY_SAME: _RETRY,
    }),
    **_rows(J.CLAWING_BACK, S.AWAIT_CLAWBACK, {
        Out.CLAWBACK_COMPLETED: _TO_REFUND,
        Out.CLAWBACK_OPEN: Decision(wait=Wait.POLL, keeps_error=False),
        Out.CLAWBACK_INCOMPLETE: _operator(Attention.CLAWBACK_SHORT),
    }),
    # 申请退款 with the attempt's number (identical on every retry).
    **_rows(J.REFUNDING, S.REFUND, {
        **_REFUND_ANSWERS,
        **dict.fromkeys(ERRORS, _RETRY),
        Out.RATE_LIMITED: _SLOW,
        # An answer lost, or not to be trusted: WeChat Pay may hold the refund.
        Out.MAYBE_SENT: Decision(step=S.QUERY_REFUND, needs_query=True),
        Out.RETRY_SAME: Decision(step=S.QUERY_REFUND, needs_query=True),
        Out.UNVERIFIABLE: Decision(step=S.QUERY_REFUND, needs_query=True),
        Out.MISMATCH: Decision(step=S.QUERY_REFUND, needs_query=True),
        # Too soon after another request of this payment: it may have been taken.
        Out.TOO_SOON: Decision(step=S.QUERY_REFUND, wait=Wait.SPACING, needs_query=True),
        Out.BALANCE_SHORT: Decision(state=J.NEEDS_OPERATOR, wait=Wait.NEVER, needs_query=False,
                                  attention=Attention.BALANCE_SHORT),
        # Splits of the payment still open and the refund above the frozen money.
        Out.SPLIT_PENDING: _REPLAN,
        # A refusal is final only once a query shows WeChat Pay holds no such refund.
        Out.REFUSED: Decision(step=S.CONFIRM_REFUSAL, wait=Wait.NOW, needs_query=True),
        Out.NOT_FOUND: Decision(step=S.CONFIRM_REFUSAL, wait=Wait.NOW, needs_query=True),
        Out.INVALID_LOCAL: _FAIL,  # nothing was sent: the stored request is not valid
    }),
    # 查询单笔退款 after a lost answer: what WeChat Pay holds decides.
    **_rows(J.REFUNDING, S.QUERY_REFUND, {
        **_REFUND_ANSWERS,
        **_GET_ERRORS,
        Out.REFUND_PROCESSING_LONG: _FOLLOW,
        # None held: the lost send was not taken: send it again, identically.
        Out.NOT_FOUND: Decision(step=S.REFUND, wait=Wait.SPACING, needs_query=False),
    }),
    # 查询单笔退款 after a refusal: only "none held" makes the refusal final.
    **_rows(J.REFUNDING, S.CONFIRM_REFUSAL, {
        **_REFUND_ANSWERS,
        **_GET_ERRORS,
        Out.NOT_FOUND: _FAIL,
    }),
    # The refund was accepted: polled until final (notifications only hasten a poll).
    **_rows(J.FOLLOWING, S.QUERY_REFUND, {
        **_REFUND_ANSWERS,
        **{outcome: Decision(wait=Wait.POLL) for outcome in ERRORS},
        Out.RATE_LIMITED: Decision(wait=Wait.POLL, slow_down=True),
        Out.REFUND_PROCESSING: Decision(wait=Wait.POLL, keeps_error=False),
        # Over a day: an operator should look (a short balance is likely); still polled.
        Out.REFUND_PROCESSING_LONG: Decision(wait=Wait.POLL, keeps_error=False,
                                           attention=Attention.PROCESSING_LONG),
        Out.NOT_FOUND: Decision(wait=Wait.POLL),  # it was accepted: WeChat Pay catches up
    }),
}  # fmt: skip


@dataclass(frozen=True)
class OperatorRule:
    """What an operator's action does; ``only_if_nothing_moved`` for a cancel."""

    decision: Decision
    only_if_nothing_moved: bool = False
    #: A new refund attempt under a new number (after CLOSED).
    new_attempt: bool = False


A = OperatorAction
_CANCEL = OperatorRule(_go(J.CANCELLED, None, Wait.NEVER), only_if_nothing_moved=True)
_RESUME = Decision(state=J.REFUNDING, step=S.REFUND, wait=Wait.SPACING, needs_query=False,
                   attention=None, keeps_error=False)  # fmt: skip

#: Operator actions: ``(state, attention, action) -> OperatorRule``; absent: not allowed.
OPERATOR_ACTIONS: dict[tuple[RefundJobState, Attention | None, OperatorAction], OperatorRule] = {
    (J.DRAFT, None, A.CANCEL): _CANCEL,
    (J.NEEDS_OPERATOR, Attention.CLAWBACK_SHORT, A.PROCEED): OperatorRule(_RESUME),
    (J.NEEDS_OPERATOR, Attention.CLAWBACK_SHORT, A.CANCEL): _CANCEL,
    (J.NEEDS_OPERATOR, Attention.BALANCE_SHORT, A.RETRY): OperatorRule(_RESUME),
    (J.NEEDS_OPERATOR, Attention.BALANCE_SHORT, A.CANCEL): _CANCEL,
    (J.NEEDS_OPERATOR, Attention.PLAN_CHANGED, A.PROCEED): OperatorRule(_go(J.PENDING, S.INSPECT)),
    (J.NEEDS_OPERATOR, Attention.PLAN_CHANGED, A.CANCEL): _CANCEL,
    # 发起异常退款 first (the service makes the call); then the refund is followed again.
    (J.NEEDS_OPERATOR, Attention.ABNORMAL, A.TO_MERCHANT_BANK): OperatorRule(_FOLLOW),
    (J.CLOSED, None, A.TRY_AGAIN): OperatorRule(_go(J.PENDING, S.INSPECT), new_attempt=True),
}


def operator_rule(state: str, attention: str | None, action: OperatorAction) -> OperatorRule | None:
    """The rule of an operator's ``action`` on a job; ``None`` when it may not be done."""
    key = (RefundJobState(state), Attention(attention) if attention else None, action)
    return OPERATOR_ACTIONS.get(key)


def decide(state: str, step: RefundStep, outcome: RefundOutcome) -> Decision:
    """The row of :data:`TABLE`; a combination without one is a bug, not a guess."""
    try:
        return TABLE[(RefundJobState(state), RefundStep(step), RefundOutcome(outcome))]
    except (KeyError, ValueError):
        raise LookupError(f"no transition for {state} x {step} x {outcome}") from None
