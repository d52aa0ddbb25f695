"""The send policy: what is made, at which door, under which settings and permissions ->
a draft, sent now, or sent in the background. Declared once, as a table.

Why a table: whether a new return goes to WeChat Pay, and whether the caller waits for
it, is one rule for every door (the API's create, its "claw back again", its
clawbacks, the admin's claw-back page, a refund job...); computed at each door, the
copies drift apart. Each row here is one (what, door) pair; :func:`decide` reads it with the
facts of the moment (:class:`Facts`), and is pure: no ORM, no settings, no clock, so
``tests/test_desk_policy.py`` checks it row by row like the state machine's table.

The rules the rows follow:

- **Who asks to send.** A create over the API sends when ``SUBMIT_ON_CREATE``; an
  operator who confirmed a page in the admin (a clawback's allocation, "Claw back
  again", "Submit") asks to send; the admin's add form drafts (its Submit is a
  separate, confirmed step); the shop's own code says itself (``send=``).
- **Who may.** Asking is not enough: the user must hold every permission of the row
  and pass the four-eyes rule (``access.may_submit``); otherwise what is made is a
  draft, and what is asked of existing drafts leaves them drafts.
- **When.** More than ``BULK_BACKGROUND_THRESHOLD`` rows go to the background (the
  request never waits for hundreds of round trips); a create over the API also goes
  there when ``SUBMIT_IN_BACKGROUND`` (the client is answered at once, ``pending``), and
  so does one by the shop's own code (its request need not wait for WeChat Pay either).
  A caller that must answer first (WeChat Pay's notification: within 5 s) hands the
  work off, whatever the row says, and whatever the backend.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..access import Perm


class Made(enum.StrEnum):
    """What an operation makes or moves."""

    #: A new return (the API's create, the admin's add form, the shop's code).
    RETURN = "return"
    #: A clawback's returns, one per receiver.
    CLAWBACK = "clawback"
    #: "Claw back again": a new return for one that ended without the money.
    REPLACEMENT = "replacement"
    #: "Submit": drafts approved and pending returns sent (one, or a batch).
    APPROVAL = "approval"
    #: "Submit" on clawbacks: their drafts approved and their pending returns sent.
    CLAWBACK_APPROVAL = "clawback_approval"
    #: "Retry now": a return waiting for a top-up re-sent identically.
    RETRY = "retry"
    #: "Refresh": WeChat Pay asked about returns under way (moves no money).
    REFRESH = "refresh"
    #: A new refund job (the API's create, the admin's Refund, the shop's code).
    REFUND = "refund"
    #: "Submit" on refund jobs: drafts approved, and the jobs moved on.
    REFUND_APPROVAL = "refund_approval"
    #: An operator's action on a job that waits for one, or "refresh": the job looks now.
    REFUND_ACTION = "refund_action"


class Door(enum.StrEnum):
    """Where the operation was asked."""

    API = "api"
    ADMIN = "admin"
    #: The shop's own code, a management command, a task: no user.
    CODE = "code"


class Ask(enum.StrEnum):
    """Whether the operation asks to send what it makes."""

    #: The request itself is to send (a confirmed admin page, a submit route).
    ALWAYS = "always"
    #: ``SUBMIT_ON_CREATE`` says.
    ON_CREATE_SETTING = "submit_on_create"
    #: The shop's code says (``send=True``).
    CALLER = "caller"
    #: Never: a draft is made.
    NEVER = "never"


class Disposition(enum.StrEnum):
    """What becomes of it."""

    #: Nothing is sent: a draft is made, or drafts stay drafts.
    DRAFT = "draft"
    #: Sent on this request, after its transaction commits; the caller sees the answer.
    SEND_NOW = "send_now"
    #: Handed to the background (``TASK_BACKEND``) after commit; the caller is answered at once.
    SEND_IN_BACKGROUND = "send_in_background"
    #: Handed off after commit and never run on the caller's thread, even on the
    #: ``inline`` backend (the process's thread pool then): the caller answers first.
    HAND_OFF = "hand_off"


@dataclass(frozen=True)
class Rule:
    """One row: who asks to send, what permissions it needs, whether the setting times it."""

    ask: Ask
    #: Permissions beyond the four-eyes rule (which every sending row applies).
    needs: frozenset[Perm]
    #: ``SUBMIT_IN_BACKGROUND`` sends it in the background (creates over the API).
    follows_background_setting: bool = False
    #: Whether the four-eyes rule applies (it guards money movement; a refresh moves none).
    moves_money: bool = True


SUBMIT = frozenset({Perm.SUBMIT_RETURN})
SUBMIT_CLAWBACK = frozenset({Perm.SUBMIT_CLAWBACK, Perm.SUBMIT_RETURN})
REFRESH = frozenset({Perm.REFRESH_RETURN})
SUBMIT_REFUND = frozenset({Perm.SUBMIT_REFUND})
OPERATE_REFUND = frozenset({Perm.OPERATE_REFUND})

#: The send policy: ``(what is made, door) -> Rule``.
SEND_POLICY: dict[tuple[Made, Door], Rule] = {
    (Made.RETURN, Door.API): Rule(Ask.ON_CREATE_SETTING, SUBMIT, follows_background_setting=True),
    (Made.RETURN, Door.ADMIN): Rule(Ask.NEVER, SUBMIT),
    (Made.RETURN, Door.CODE): Rule(Ask.CALLER, frozenset(), follows_background_setting=True),
    (Made.CLAWBACK, Door.API): Rule(
        Ask.ON_CREATE_SETTING, SUBMIT_CLAWBACK, follows_background_setting=True
    ),
    (Made.CLAWBACK, Door.ADMIN): Rule(Ask.ALWAYS, SUBMIT_CLAWBACK),
    (Made.CLAWBACK, Door.CODE): Rule(Ask.CALLER, frozenset(), follows_background_setting=True),
    (Made.REPLACEMENT, Door.API): Rule(
        Ask.ON_CREATE_SETTING, SUBMIT, follows_background_setting=True
    ),
    (Made.REPLACEMENT, Door.ADMIN): Rule(Ask.ALWAYS, SUBMIT),
    (Made.REPLACEMENT, Door.CODE): Rule(Ask.CALLER, frozenset(), follows_background_setting=True),
    (Made.APPROVAL, Door.API): Rule(Ask.ALWAYS, SUBMIT),
    (Made.APPROVAL, Door.ADMIN): Rule(Ask.ALWAYS, SUBMIT),
    (Made.APPROVAL, Door.CODE): Rule(Ask.ALWAYS, frozenset()),
    (Made.CLAWBACK_APPROVAL, Door.API): Rule(Ask.ALWAYS, SUBMIT_CLAWBACK),
    (Made.CLAWBACK_APPROVAL, Door.ADMIN): Rule(Ask.ALWAYS, SUBMIT_CLAWBACK),
    (Made.CLAWBACK_APPROVAL, Door.CODE): Rule(Ask.ALWAYS, frozenset()),
    (Made.RETRY, Door.API): Rule(Ask.ALWAYS, SUBMIT),
    (Made.RETRY, Door.ADMIN): Rule(Ask.ALWAYS, SUBMIT),
    (Made.RETRY, Door.CODE): Rule(Ask.ALWAYS, frozenset()),
    (Made.REFRESH, Door.API): Rule(Ask.ALWAYS, REFRESH, moves_money=False),
    (Made.REFRESH, Door.ADMIN): Rule(Ask.ALWAYS, REFRESH, moves_money=False),
    (Made.REFRESH, Door.CODE): Rule(Ask.ALWAYS, frozenset(), moves_money=False),
    (Made.REFUND, Door.API): Rule(
        Ask.ON_CREATE_SETTING, SUBMIT_REFUND, follows_background_setting=True
    ),
    (Made.REFUND, Door.ADMIN): Rule(Ask.NEVER, SUBMIT_REFUND),  # its plan is shown first
    (Made.REFUND, Door.CODE): Rule(Ask.CALLER, frozenset(), follows_background_setting=True),
    (Made.REFUND_APPROVAL, Door.API): Rule(Ask.ALWAYS, SUBMIT_REFUND),
    (Made.REFUND_APPROVAL, Door.ADMIN): Rule(Ask.ALWAYS, SUBMIT_REFUND),
    (Made.REFUND_APPROVAL, Door.CODE): Rule(Ask.ALWAYS, frozenset()),
    (Made.REFUND_ACTION, Door.API): Rule(Ask.ALWAYS, OPERATE_REFUND),
    (Made.REFUND_ACTION, Door.ADMIN): Rule(Ask.ALWAYS, OPERATE_REFUND),
    (Made.REFUND_ACTION, Door.CODE): Rule(Ask.ALWAYS, frozenset()),
}


@dataclass(frozen=True)
class Facts:
    """What :func:`decide` needs to know of the moment, gathered by the desk."""

    #: ``SUBMIT_ON_CREATE``.
    submit_on_create: bool
    #: ``SUBMIT_IN_BACKGROUND``.
    submit_in_background: bool
    #: ``BULK_BACKGROUND_THRESHOLD``: more rows than this go to the background.
    background_threshold: int
    #: How many rows the operation sends.
    count: int
    #: The user holds the row's permissions and passes the four-eyes rule (always
    #: true for the shop's code).
    allowed: bool
    #: For ``Ask.CALLER``: the shop's code asked to send.
    caller_asks: bool = False
    #: The caller waits for the work; False: it answers first and the work is handed
    #: off (WeChat Pay's notification, answered within its 5 s).
    caller_waits: bool = True


def asks_to_send(rule: Rule, facts: Facts) -> bool:
    """Whether the operation, at its door and under the settings, asks to send."""
    if rule.ask is Ask.ALWAYS:
        return True
    if rule.ask is Ask.ON_CREATE_SETTING:
        return facts.submit_on_create
    if rule.ask is Ask.CALLER:
        return facts.caller_asks
    return False


def decide(made: Made, door: Door, facts: Facts) -> Disposition:
    """The disposition of the row ``(made, door)`` under ``facts``; a missing row is a bug."""
    try:
        rule = SEND_POLICY[(made, door)]
    except KeyError:
        raise LookupError(f"no send policy for {made} at {door}") from None
    if not asks_to_send(rule, facts) or not facts.allowed or facts.count < 1:
        return Disposition.DRAFT
    if not facts.caller_waits:
        return Disposition.HAND_OFF
    if facts.count > facts.background_threshold:
        return Disposition.SEND_IN_BACKGROUND
    if rule.follows_background_setting and facts.submit_in_background:
        return Disposition.SEND_IN_BACKGROUND
    return Disposition.SEND_NOW
