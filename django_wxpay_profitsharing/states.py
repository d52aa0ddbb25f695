"""The names of the state machine: a return's states, the steps, the actions, the signals.

Kept apart from the ``models`` package so that the decision table (``decisions.py``) can use
them without importing the ORM; the models use the same enums for their choices.
"""

from __future__ import annotations

import enum

from django.db import models
from django.utils.translation import gettext_lazy as _


class ReturnState(models.TextChoices):
    """Our state of a return; the transitions are declared in ``decisions.py``."""

    DRAFT = "draft", _("Draft")
    PENDING = "pending", _("Pending")
    PROCESSING = "processing", _("Processing at WeChat Pay")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    REJECTED = "rejected", _("Rejected")


#: States that never change again.
FINAL_STATES = frozenset({ReturnState.SUCCEEDED, ReturnState.FAILED, ReturnState.REJECTED})
#: States the poller and the workers move on (a draft waits for its submitter).
OPEN_STATES = frozenset({ReturnState.PENDING, ReturnState.PROCESSING})


class Step(enum.StrEnum):
    """One call to WeChat Pay made for a return."""

    #: ``POST /v3/profitsharing/return-orders``.
    SUBMIT = "submit"
    #: ``GET /v3/profitsharing/return-orders/{out_return_no}``.
    QUERY = "query"
    #: The same query, asked after a refusal: WeChat may hold the return nevertheless.
    CONFIRM = "confirm"


class SignalName(enum.StrEnum):
    """The signals the outbox delivers, by the name their events store (``signals.py``)."""

    RETURN_SUCCEEDED = "return_succeeded"
    RETURN_FAILED = "return_failed"
    RETURN_REJECTED = "return_rejected"
    RETURN_FINALIZED = "return_finalized"
    CLAWBACK_COMPLETED = "clawback_completed"
    CLAWBACK_INCOMPLETE = "clawback_incomplete"
    REFUND_SUCCEEDED = "refund_succeeded"
    REFUND_CLOSED = "refund_closed"
    REFUND_FAILED = "refund_failed"
    REFUND_NEEDS_ATTENTION = "refund_needs_attention"


class Action(enum.StrEnum):
    """What a caller asks of a return; see ``decisions.ACTIONS`` for what each may do."""

    #: Send a pending return (or find out what became of an earlier send).
    SUBMIT = "submit"
    #: Ask WeChat Pay about a processing return, or one that may have arrived.
    REFRESH = "refresh"
    #: The poller: whatever the return's state calls for.
    DUE = "due"
    #: "Retry now": re-send a return waiting for its receiver to top up.
    RETRY = "retry"
