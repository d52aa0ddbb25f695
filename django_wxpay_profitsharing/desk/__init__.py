"""The desk: one function per thing an operator or a client does, for every door.

The admin, the API, the management commands and the shop's own code ask the desk; it
decides who may send what and how it is dispatched (``policy.py``, one declared
table), calls the service layer, and answers one typed result (``results.py``) or a
typed refusal (``errors.py``). The doors only parse, call and render; nothing below
(the services, the decision table, the models) imports the desk.

=======================  ===========================================================
operation                what it does
=======================  ===========================================================
``create_return``        a return (idempotent on out_return_no), a draft or sent
``submit``               drafts approved and pending returns sent (one, or many)
``refresh``              WeChat Pay asked about returns under way
``retry_now``            a return waiting for its receiver's top-up re-sent now
``claw_back_again``      a return that ended without the money replaced by a new one
``edit_draft``           a draft's request changed (only while it is a draft)
``sync_order``           a sharing order mirrored from WeChat Pay
``preview_clawback``     a clawback's allocation shown before it is confirmed
``claw_back``            a clawback of a sharing order, one return per receiver
``submit_clawbacks``     clawbacks' drafts approved and their returns sent
``cancel_clawbacks``     clawbacks nothing of which was sent, cancelled as a whole
``create_refund``        a refund job with its plan (idempotent on out_refund_no)
``submit_refunds``       refund jobs approved and moved on
``refresh_refund``       a refund job looks now (a notification, an operator)
``act_on_refund``        an operator's action on a job that waits for one
``check_credentials``    one signed call per merchant: does WeChat Pay take its keys?
=======================  ===========================================================

``receive_notification`` takes a POST of WeChat Pay's (the notifications route): it is
judged and recorded, and a trusted refund notice makes its job look now, handed off.

Every row a door lists or looks up is narrowed by ``visible(user, queryset)`` (the
merchant scope, ``MERCHANT_SCOPE``); every operation narrows and checks again. The
doors also take from here what they parse with (``request_fields``,
``validate_return_fields``), the conflicts they answer (``ReturnConflict``,
``ClawbackConflict``, ``RefundConflict``) and whether a user may approve a refund
(``may_approve_refund``), so that no door reaches below the desk for an operation.
"""

from ..access import scoped as visible
from ..clawbacks import ClawbackConflict
from ..models.returns import pick_request_fields as request_fields
from ..refund_jobs import RefundConflict
from ..refund_jobs import may_approve as may_approve_refund
from ..services import ReturnConflict, validate_return_fields
from .clawbacks import (
    ClawbackPlan,
    cancel_clawbacks,
    claw_back,
    preview_clawback,
    submit_clawbacks,
    sync_order,
)
from .credentials import check_credentials
from .errors import Forbidden, SyncFailed, WrongState
from .notifications import MAX_BODY_BYTES, Received, Verdict, receive_notification
from .policy import Disposition, Door, Made
from .refunds import (
    JobsMoved,
    RefundMade,
    act_on_refund,
    create_refund,
    refresh_refund,
    submit_refunds,
)
from .results import Batch, Cancelled, ClawbackMade, Refusal, ReturnMade, RowOutcome
from .returns import (
    claw_back_again,
    create_return,
    edit_draft,
    refresh,
    retry_now,
    submit,
)

__all__ = [
    "MAX_BODY_BYTES",
    "Batch",
    "Cancelled",
    "ClawbackConflict",
    "ClawbackMade",
    "ClawbackPlan",
    "Disposition",
    "Door",
    "Forbidden",
    "JobsMoved",
    "Made",
    "Received",
    "RefundConflict",
    "RefundMade",
    "Refusal",
    "ReturnConflict",
    "ReturnMade",
    "RowOutcome",
    "SyncFailed",
    "Verdict",
    "WrongState",
    "act_on_refund",
    "cancel_clawbacks",
    "check_credentials",
    "claw_back",
    "claw_back_again",
    "create_refund",
    "create_return",
    "edit_draft",
    "may_approve_refund",
    "preview_clawback",
    "receive_notification",
    "refresh",
    "refresh_refund",
    "request_fields",
    "retry_now",
    "submit",
    "submit_clawbacks",
    "submit_refunds",
    "sync_order",
    "validate_return_fields",
    "visible",
]
