"""The state machine of a return, declared once as a table.

Why a table: every rule about what a call's outcome does to a return (the next state,
when to try again, whether WeChat Pay may now know the return, which signals go out)
is money's rule, and one spread over branches is one nobody can check whole. Here each
rule is one row, read
by :func:`decide`, a pure function: no ORM, no clock, no settings. The service layer
(``transitions.py``) classifies what happened into an :class:`Outcome`, asks
:func:`decide`, and writes the :class:`Decision` down.

The table is keyed by ``(state, step, outcome)``:

- ``state``: the return's state when it was claimed (``pending`` or ``processing``;
  a draft is never claimed, a final state never changes);
- ``step``: the call made (:class:`~.states.Step`: submit or query);
- ``outcome``: what came back (:class:`Outcome`): WeChat's ``result``, the meaning of
  its error code (``wechatpay.errors.Meaning``), a transport failure before or after
  the request may have left, an answer that could not be verified or contradicts the
  request, or a request refused locally before anything was sent.

:data:`FIRST_STEP` says which call a claimed return starts with, :data:`ACTIONS` which
states an action may claim and which steps it may take. Every combination has a row;
``tests/test_decisions.py`` checks each one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .states import FINAL_STATES, Action, ReturnState, SignalName, Step
from .wechatpay.errors import (
    APIError,
    InvalidRequest,
    Meaning,
    SignatureError,
    TransportError,
    WeChatPayError,
)
from .wechatpay.words import ReturnResult


class Outcome(enum.StrEnum):
    """What one step came back with."""

    #: WeChat answered ``result = SUCCESS``.
    SUCCESS = "success"
    #: WeChat answered ``result = FAILED`` (``fail_reason`` says why).
    FAILED = "failed"
    #: WeChat answered ``result = PROCESSING`` (or a result it may add later).
    PROCESSING = "processing"
    #: A verified answer that contradicts the request or does not fit the record.
    MISMATCH = "mismatch"
    #: An answer whose signature or form could not be verified: never used.
    UNVERIFIABLE = "unverifiable"
    #: No answer, and the request certainly never left.
    NOT_SENT = "not_sent"
    #: No answer, and the request may have reached WeChat Pay.
    MAYBE_SENT = "maybe_sent"
    #: Refused locally, before anything was sent (the stored request is invalid).
    INVALID_LOCAL = "invalid_local"
    #: No query can be made (the sharing order's out_order_no is not known yet).
    CANNOT_ASK = "cannot_ask"
    # The meanings of WeChat's error answers (``wechatpay/errors.py``'s table).
    RETRY_SAME = Meaning.RETRY_SAME.value
    RATE_LIMITED = Meaning.RATE_LIMITED.value
    CREDENTIALS = Meaning.CREDENTIALS.value
    REFUSED = Meaning.REFUSED.value
    NOT_FOUND = Meaning.NOT_FOUND.value
    BALANCE_SHORT = Meaning.BALANCE_SHORT.value


class Schedule(enum.StrEnum):
    """When the return is looked at again."""

    NEVER = "never"  # final: no next attempt
    RETRY = "retry"  # after ``RETRY_BACKOFF`` (doubling per attempt)
    POLL = "poll"  # after ``POLL_BACKOFF`` (a return processing at WeChat)


#: The signals sent when a return reaches each final state, in this order.
SIGNALS: dict[ReturnState, tuple[SignalName, ...]] = {
    ReturnState.SUCCEEDED: (SignalName.RETURN_SUCCEEDED, SignalName.RETURN_FINALIZED),
    ReturnState.FAILED: (SignalName.RETURN_FAILED, SignalName.RETURN_FINALIZED),
    ReturnState.REJECTED: (SignalName.RETURN_REJECTED, SignalName.RETURN_FINALIZED),
}


@dataclass(frozen=True)
class Decision:
    """What an outcome does to a return.

    ``needs_query`` is whether WeChat Pay may know the return now (so that the next
    attempt asks before it sends again): True, False, or None for "as it was before
    this attempt". ``awaiting_topup`` (True, False, None: unchanged) marks a return
    WeChat holds until its receiver tops up: it is re-sent, identically, on the poll
    schedule. ``then`` is a further step in the same attempt (a query that found
    nothing lets the submission go ahead; a refusal is confirmed by a query).
    ``keeps_error`` records the error on the row; otherwise the last error is
    cleared. ``slow_down`` tells the rate limiter WeChat said we call too often.
    """

    state: ReturnState | None = None  # None: unchanged
    schedule: Schedule = Schedule.RETRY
    needs_query: bool | None = None
    awaiting_topup: bool | None = None
    then: Step | None = None
    keeps_error: bool = True
    slow_down: bool = False

    @property
    def signals(self) -> tuple[SignalName, ...]:
        return SIGNALS.get(self.state, ()) if self.state is not None else ()


def _answered(state: ReturnState) -> Decision:
    """WeChat's own answer about the return: it is what happened, final or not."""
    schedule = Schedule.NEVER if state in FINAL_STATES else Schedule.POLL
    return Decision(
        state=state, schedule=schedule, needs_query=False, awaiting_topup=False, keeps_error=False
    )


_ANSWERS = {
    Outcome.SUCCESS: _answered(ReturnState.SUCCEEDED),
    Outcome.FAILED: _answered(ReturnState.FAILED),
    Outcome.PROCESSING: _answered(ReturnState.PROCESSING),
}
_ERRORS = frozenset(Outcome) - frozenset(_ANSWERS)
_RETRY = Decision()  # unchanged, try again later, as known as before
_MAY_HAVE_ARRIVED = Decision(needs_query=True)
_SLOW_DOWN = Decision(slow_down=True)
_REJECT = Decision(state=ReturnState.REJECTED, schedule=Schedule.NEVER, needs_query=False)
#: A refusal is final only once a query shows WeChat does not hold the return.
_CONFIRM = Decision(needs_query=True, then=Step.CONFIRM)
#: WeChat holds the return until the receiver tops up: re-send it on the poll schedule.
_AWAIT_TOPUP = Decision(
    state=ReturnState.PROCESSING, schedule=Schedule.POLL, needs_query=False, awaiting_topup=True
)
_POLL = Decision(schedule=Schedule.POLL, needs_query=False)
_POLL_SLOWER = Decision(schedule=Schedule.POLL, needs_query=False, slow_down=True)

P, Q = ReturnState.PENDING, ReturnState.PROCESSING


Key = tuple[ReturnState, Step, Outcome]


def _rows(
    state: ReturnState, step: Step, decisions: dict[Outcome, Decision]
) -> dict[Key, Decision]:
    """One row per outcome, WeChat's answers included, for ``(state, step)``."""
    missing = frozenset(Outcome) - set(decisions) - set(_ANSWERS)
    if missing:
        raise AssertionError(f"{state} x {step}: no row for {sorted(missing)}")
    return {(state, step, outcome): d for outcome, d in {**_ANSWERS, **decisions}.items()}


#: The state machine: ``(state, step, outcome) -> Decision``.
TABLE: dict[Key, Decision] = {
    # A pending return, sent now.
    **_rows(P, Step.SUBMIT, {
        Outcome.MISMATCH: _MAY_HAVE_ARRIVED,
        Outcome.UNVERIFIABLE: _MAY_HAVE_ARRIVED,
        Outcome.NOT_SENT: _RETRY,
        Outcome.CANNOT_ASK: _RETRY,
        Outcome.MAYBE_SENT: _MAY_HAVE_ARRIVED,
        Outcome.INVALID_LOCAL: _REJECT,  # nothing was sent
        Outcome.RETRY_SAME: _MAY_HAVE_ARRIVED,  # e.g. 500: maybe executed
        Outcome.RATE_LIMITED: _SLOW_DOWN,  # not accepted
        Outcome.CREDENTIALS: _RETRY,  # our key, not the return
        Outcome.REFUSED: _CONFIRM,
        Outcome.NOT_FOUND: _CONFIRM,  # e.g. no such sharing order
        Outcome.BALANCE_SHORT: _AWAIT_TOPUP,
    }),
    # A pending return an earlier attempt may have delivered: asked about first.
    **_rows(P, Step.QUERY, {
        **dict.fromkeys(_ERRORS, _RETRY),
        Outcome.INVALID_LOCAL: _REJECT,
        Outcome.RATE_LIMITED: _SLOW_DOWN,
        # WeChat never received it: send it now (the same request, same out_return_no).
        Outcome.NOT_FOUND: Decision(needs_query=False, then=Step.SUBMIT),
    }),
    # Refused: does WeChat hold the return all the same? Only "no" makes it final.
    **_rows(P, Step.CONFIRM, {
        **dict.fromkeys(_ERRORS, Decision(needs_query=True)),  # unconfirmed: ask again later
        Outcome.RATE_LIMITED: Decision(needs_query=True, slow_down=True),
        Outcome.NOT_FOUND: _REJECT,
        Outcome.MISMATCH: _REJECT,  # WeChat's return of that number is another request
        Outcome.INVALID_LOCAL: _REJECT,
        Outcome.CANNOT_ASK: _REJECT,  # nothing to confirm with: the refusal stands
    }),
    # A return processing at WeChat: only WeChat's answer moves it.
    **_rows(Q, Step.QUERY, {
        **dict.fromkeys(_ERRORS, _POLL),
        Outcome.RATE_LIMITED: _POLL_SLOWER,
    }),
    # Waiting for the receiver to top up: the identical request again ("原单重试").
    **_rows(Q, Step.SUBMIT, {
        **dict.fromkeys(_ERRORS, _POLL),
        Outcome.RATE_LIMITED: _POLL_SLOWER,
        Outcome.BALANCE_SHORT: _AWAIT_TOPUP,
        Outcome.REFUSED: Decision(schedule=Schedule.POLL, then=Step.CONFIRM),
        Outcome.NOT_FOUND: Decision(schedule=Schedule.POLL, then=Step.CONFIRM),
    }),
    **_rows(Q, Step.CONFIRM, {
        **dict.fromkeys(_ERRORS, _POLL),
        Outcome.RATE_LIMITED: _POLL_SLOWER,
    }),
}  # fmt: skip

#: The first call for a claimed return: ``(state, needs_query, awaiting_topup) -> step``.
#: A pending return that may have arrived is asked about before it is sent again; a
#: return waiting for a top-up is sent again, identically.
FIRST_STEP: dict[tuple[ReturnState, bool, bool], Step] = {
    (P, False, False): Step.SUBMIT,
    (P, True, False): Step.QUERY,
    (Q, False, False): Step.QUERY,
    (Q, True, False): Step.QUERY,
    (Q, False, True): Step.SUBMIT,
    (Q, True, True): Step.SUBMIT,
}


@dataclass(frozen=True)
class ActionRule:
    """Which returns an action may claim, and which calls it may make."""

    states: frozenset[ReturnState]
    steps: frozenset[Step]
    #: A pending return is claimed only if it may have arrived (refresh asks, never sends).
    pending_needs_query: bool = False
    #: A processing return is claimed only if it waits for a top-up ("retry now").
    processing_awaits_topup: bool = False


ACTIONS: dict[Action, ActionRule] = {
    Action.SUBMIT: ActionRule(frozenset({P}), frozenset(Step)),
    Action.REFRESH: ActionRule(frozenset({P, Q}), frozenset({Step.QUERY}), True),
    Action.DUE: ActionRule(frozenset({P, Q}), frozenset(Step)),
    Action.RETRY: ActionRule(frozenset({Q}), frozenset(Step), processing_awaits_topup=True),
}


def may_claim(action: Action, state: str, needs_query: bool, awaiting_topup: bool = False) -> bool:
    """Whether ``action`` may claim a return in ``state`` (leases are checked apart)."""
    rule = ACTIONS[Action(action)]
    if state not in rule.states:
        return False
    if state == P and rule.pending_needs_query and not needs_query:
        return False
    return not (state == Q and rule.processing_awaits_topup and not awaiting_topup)


def first_step(
    action: Action, state: str, needs_query: bool, can_query: bool, awaiting_topup: bool = False
) -> Step | None:
    """The first call to make, or None when this action has nothing to ask or send.

    ``can_query`` is False when the query cannot be made yet (WeChat's query needs the
    sharing order's out_order_no, unknown for a return created with ``order_id`` only
    until WeChat's first answer); a pending return then goes straight to the identical
    submission, which WeChat answers idempotently. An action that may not send (a
    refresh) asks about a return waiting for a top-up instead of re-sending it.
    """
    allowed = ACTIONS[Action(action)].steps
    step = FIRST_STEP.get((ReturnState(state), bool(needs_query), bool(awaiting_topup)))
    if step is Step.SUBMIT and state == Q and Step.SUBMIT not in allowed:
        step = Step.QUERY
    if step is Step.QUERY and not can_query:
        step = Step.SUBMIT if state == P else None
    if step is None or step not in allowed:
        return None
    return step


def decide(state: str, step: Step, outcome: Outcome) -> Decision:
    """The row of :data:`TABLE`; a combination without one is a bug, not a guess."""
    try:
        return TABLE[(ReturnState(state), step, outcome)]
    except KeyError:
        raise LookupError(f"no transition for {state} x {step} x {outcome}") from None


def outcome_of_result(result: str) -> Outcome:
    """WeChat's ``result``; a value it may add later is read as still processing."""
    if result == ReturnResult.SUCCESS:
        return Outcome.SUCCESS
    if result == ReturnResult.FAILED:
        return Outcome.FAILED
    return Outcome.PROCESSING


def outcome_of_error(exc: WeChatPayError) -> Outcome:
    """The outcome of a call that raised one of the client's typed errors."""
    if isinstance(exc, APIError):
        return Outcome(exc.meaning.value)
    if isinstance(exc, TransportError):
        return Outcome.MAYBE_SENT if exc.maybe_sent else Outcome.NOT_SENT
    if isinstance(exc, InvalidRequest):
        return Outcome.INVALID_LOCAL
    if isinstance(exc, SignatureError):
        return Outcome.UNVERIFIABLE
    return Outcome.UNVERIFIABLE  # any other client error: nothing usable came back
