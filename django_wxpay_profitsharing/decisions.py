"""The state machine of a return, declared once as a table.

Why a table: every rule about what a call's outcome does to a return (the next state,
when to try again, whether WeChat Pay may now know the return, which signals go out)
used to be spread over the service layer's branches. Here each rule is one row, read
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

from .states import FINAL_STATES, Action, ReturnState, Step
from .wechatpay.errors import (
    APIError,
    InvalidRequest,
    Meaning,
    SignatureError,
    TransportError,
    WeChatPayError,
)


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
    # The meanings of WeChat's error answers (``wechatpay/errors.py``'s table).
    RETRY_SAME = Meaning.RETRY_SAME.value
    RATE_LIMITED = Meaning.RATE_LIMITED.value
    CREDENTIALS = Meaning.CREDENTIALS.value
    REFUSED = Meaning.REFUSED.value
    NOT_FOUND = Meaning.NOT_FOUND.value


class Schedule(enum.StrEnum):
    """When the return is looked at again."""

    NEVER = "never"  # final: no next attempt
    RETRY = "retry"  # after ``RETRY_BACKOFF`` (doubling per attempt)
    POLL = "poll"  # after ``POLL_BACKOFF`` (a return processing at WeChat)


#: The signals sent when a return reaches each final state, in this order.
SIGNALS: dict[ReturnState, tuple[str, ...]] = {
    ReturnState.SUCCEEDED: ("return_succeeded", "return_finalized"),
    ReturnState.FAILED: ("return_failed", "return_finalized"),
    ReturnState.REJECTED: ("return_rejected", "return_finalized"),
}


@dataclass(frozen=True)
class Decision:
    """What an outcome does to a return.

    ``needs_query`` is whether WeChat Pay may know the return now (so that the next
    attempt asks before it sends again): True, False, or None for "as it was before
    this attempt". ``then`` is a further step to take in the same attempt (a query
    that found nothing lets the submission go ahead). ``keeps_error`` records the
    error on the row; otherwise the last error is cleared. ``slow_down`` tells the
    rate limiter that WeChat said we call too often.
    """

    state: ReturnState | None = None  # None: unchanged
    schedule: Schedule = Schedule.RETRY
    needs_query: bool | None = None
    then: Step | None = None
    keeps_error: bool = True
    slow_down: bool = False

    @property
    def signals(self) -> tuple[str, ...]:
        return SIGNALS.get(self.state, ()) if self.state is not None else ()


def _answered(state: ReturnState) -> Decision:
    """WeChat's own answer about the return: it is what happened, final or not."""
    schedule = Schedule.NEVER if state in FINAL_STATES else Schedule.POLL
    return Decision(state=state, schedule=schedule, needs_query=False, keeps_error=False)


def _final(state: ReturnState) -> Decision:
    return Decision(state=state, schedule=Schedule.NEVER, needs_query=False)


_ANSWERS = {
    Outcome.SUCCESS: _answered(ReturnState.SUCCEEDED),
    Outcome.FAILED: _answered(ReturnState.FAILED),
    Outcome.PROCESSING: _answered(ReturnState.PROCESSING),
}
_RETRY = Decision()  # unchanged, try again later, as known as before
_MAY_HAVE_ARRIVED = Decision(needs_query=True)
_SLOW_DOWN = Decision(slow_down=True)
_POLL = Decision(schedule=Schedule.POLL, needs_query=False)
_POLL_SLOWER = Decision(schedule=Schedule.POLL, needs_query=False, slow_down=True)
_REJECT = _final(ReturnState.REJECTED)

P, Q = ReturnState.PENDING, ReturnState.PROCESSING

#: The state machine: ``(state, step, outcome) -> Decision``.
TABLE: dict[tuple[ReturnState, Step, Outcome], Decision] = {
    # A pending return, sent now.
    **{(P, Step.SUBMIT, outcome): decision for outcome, decision in _ANSWERS.items()},
    (P, Step.SUBMIT, Outcome.MISMATCH): _MAY_HAVE_ARRIVED,
    (P, Step.SUBMIT, Outcome.UNVERIFIABLE): _MAY_HAVE_ARRIVED,
    (P, Step.SUBMIT, Outcome.NOT_SENT): _RETRY,
    (P, Step.SUBMIT, Outcome.MAYBE_SENT): _MAY_HAVE_ARRIVED,
    (P, Step.SUBMIT, Outcome.INVALID_LOCAL): _REJECT,
    (P, Step.SUBMIT, Outcome.RETRY_SAME): _MAY_HAVE_ARRIVED,  # e.g. 500: maybe executed
    (P, Step.SUBMIT, Outcome.RATE_LIMITED): _SLOW_DOWN,  # not accepted
    (P, Step.SUBMIT, Outcome.CREDENTIALS): _RETRY,  # our key, not the return
    (P, Step.SUBMIT, Outcome.REFUSED): _REJECT,
    (P, Step.SUBMIT, Outcome.NOT_FOUND): _REJECT,  # no such sharing order
    # A pending return an earlier attempt may have delivered: asked about first.
    **{(P, Step.QUERY, outcome): decision for outcome, decision in _ANSWERS.items()},
    (P, Step.QUERY, Outcome.MISMATCH): _RETRY,
    (P, Step.QUERY, Outcome.UNVERIFIABLE): _RETRY,
    (P, Step.QUERY, Outcome.NOT_SENT): _RETRY,
    (P, Step.QUERY, Outcome.MAYBE_SENT): _RETRY,
    (P, Step.QUERY, Outcome.INVALID_LOCAL): _REJECT,
    (P, Step.QUERY, Outcome.RETRY_SAME): _RETRY,
    (P, Step.QUERY, Outcome.RATE_LIMITED): _SLOW_DOWN,
    (P, Step.QUERY, Outcome.CREDENTIALS): _RETRY,
    (P, Step.QUERY, Outcome.REFUSED): _RETRY,  # a refused query says nothing of the return
    # WeChat never received it: send it now (the same request, same out_return_no).
    (P, Step.QUERY, Outcome.NOT_FOUND): Decision(needs_query=False, then=Step.SUBMIT),
    # A return processing at WeChat: only WeChat's answer moves it.
    **{(Q, Step.QUERY, outcome): decision for outcome, decision in _ANSWERS.items()},
    **{
        (Q, Step.QUERY, outcome): _POLL
        for outcome in Outcome
        if outcome not in _ANSWERS and outcome is not Outcome.RATE_LIMITED
    },
    (Q, Step.QUERY, Outcome.RATE_LIMITED): _POLL_SLOWER,
}

#: The first call for a claimed return: ``(state, needs_query) -> step``. A pending
#: return that may have arrived is asked about before it is sent again.
FIRST_STEP: dict[tuple[ReturnState, bool], Step] = {
    (P, False): Step.SUBMIT,
    (P, True): Step.QUERY,
    (Q, False): Step.QUERY,
    (Q, True): Step.QUERY,
}


@dataclass(frozen=True)
class ActionRule:
    """Which returns an action may claim, and which calls it may make."""

    states: frozenset[ReturnState]
    steps: frozenset[Step]
    #: A pending return is claimed only if it may have arrived (refresh asks, never sends).
    pending_needs_query: bool = False


ACTIONS: dict[Action, ActionRule] = {
    Action.SUBMIT: ActionRule(frozenset({P}), frozenset(Step)),
    Action.REFRESH: ActionRule(frozenset({P, Q}), frozenset({Step.QUERY}), True),
    Action.DUE: ActionRule(frozenset({P, Q}), frozenset(Step)),
}


def may_claim(action: Action, state: str, needs_query: bool) -> bool:
    """Whether ``action`` may claim a return in ``state`` (leases are checked apart)."""
    rule = ACTIONS[Action(action)]
    if state not in rule.states:
        return False
    return not (state == P and rule.pending_needs_query and not needs_query)


def first_step(action: Action, state: str, needs_query: bool, can_query: bool) -> Step | None:
    """The first call to make, or None when this action has nothing to ask or send.

    ``can_query`` is False when the query cannot be made yet (WeChat's query needs the
    sharing order's out_order_no, unknown for a return created with ``order_id`` only
    until WeChat's first answer); a pending return then goes straight to the identical
    submission, which WeChat answers idempotently.
    """
    step = FIRST_STEP.get((ReturnState(state), bool(needs_query)))
    if step is Step.QUERY and not can_query:
        step = Step.SUBMIT if state == P else None
    if step is None or step not in ACTIONS[Action(action)].steps:
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
    if result == "SUCCESS":
        return Outcome.SUCCESS
    if result == "FAILED":
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
