"""The app's models, one module per job; this package is where Django and callers find them.

- ``returns``: a return (分账回退), its request fields and the calls made for it;
- ``return_questions``: the named questions about returns (state sets, the queryset);
- ``events``: the outbox of signals owed to the shop's receivers;
- ``sharing_orders``: the mirror of a sharing order and its receiver lines;
- ``clawbacks``: an amount recovered from one sharing order over several returns;
- ``reconciliation``: runs against WeChat Pay's daily bill and their discrepancies;
- the refund side (``refund_models``) and the credential alarms (``alarm_models``) sit
  beside the package, imported here so that Django finds them in the app.

Code outside the package imports from here (``from django_wxpay_profitsharing.models
import ProfitSharingReturn``); the package's own modules import from the module where a
name lives.
"""

# ruff: noqa: I001  (the imports run in the models' registration order, kept as it was
# in the single module: ``apps.get_models()``, content types and dumps list them so)
from .returns import (
    ANSWER_FIELDS,
    IDENTITY_FIELDS,
    PROGRESS_FIELDS,
    REQUEST_ID_FIELDS,
    CallOutcome,
    ProfitSharingReturn,
    ProfitSharingReturnCall,
    pick_request_fields,
)
from .events import ProfitSharingEvent
from .sharing_orders import ProfitSharingOrder, ProfitSharingOrderReceiver
from .clawbacks import AllocationPolicy, ClawbackState, ProfitSharingClawback
from .reconciliation import Discrepancy, DiscrepancyKind, ReconciliationRun
from ..alarm_models import CredentialAlarm
from ..refund_models import Notification, Payment, Refund, RefundCall, RefundJob
from ..fields import MAX_PK
from ..states import FINAL_STATES, OPEN_STATES, ReturnState
from .return_questions import (
    REFRESHABLE_STATES,
    RETRYABLE_STATES,
    SUBMITTABLE_STATES,
    UNSUCCESSFUL_STATES,
    ProfitSharingReturnQuerySet,
    questions,
)

__all__ = [
    "ANSWER_FIELDS",
    "FINAL_STATES",
    "IDENTITY_FIELDS",
    "MAX_PK",
    "OPEN_STATES",
    "PROGRESS_FIELDS",
    "REFRESHABLE_STATES",
    "REQUEST_ID_FIELDS",
    "RETRYABLE_STATES",
    "SUBMITTABLE_STATES",
    "UNSUCCESSFUL_STATES",
    "AllocationPolicy",
    "CallOutcome",
    "ClawbackState",
    "CredentialAlarm",
    "Discrepancy",
    "DiscrepancyKind",
    "Notification",
    "Payment",
    "ProfitSharingClawback",
    "ProfitSharingEvent",
    "ProfitSharingOrder",
    "ProfitSharingOrderReceiver",
    "ProfitSharingReturn",
    "ProfitSharingReturnCall",
    "ProfitSharingReturnQuerySet",
    "ReconciliationRun",
    "Refund",
    "RefundCall",
    "RefundJob",
    "ReturnState",
    "pick_request_fields",
    "questions",
]
