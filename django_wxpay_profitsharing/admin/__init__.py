"""The admin: returns, sharing orders with their ledger, clawbacks, refunds, reconciliation runs.

``django_wxpay_profitsharing.admin`` registers the ModelAdmins on import
(Django's autodiscovery imports it); each lives in its own module.
"""

from .clawback_admin import ClawbackAdmin, ClawbackReturnInline
from .common import STATE_COLOURS, confirmed_pks, format_yuan
from .notification_admin import NotificationAdmin
from .order_admin import ReceiverLineInline, SharingOrderAdmin
from .reconciliation_admin import DiscrepancyAdmin, ReconciliationRunAdmin
from .refund_admin import NotificationInline, RefundAttemptInline, RefundCallInline, RefundJobAdmin
from .return_admin import CallInline, ProfitSharingReturnAdmin

__all__ = [
    "STATE_COLOURS",
    "CallInline",
    "ClawbackAdmin",
    "ClawbackReturnInline",
    "DiscrepancyAdmin",
    "NotificationAdmin",
    "NotificationInline",
    "ProfitSharingReturnAdmin",
    "ReceiverLineInline",
    "ReconciliationRunAdmin",
    "RefundAttemptInline",
    "RefundCallInline",
    "RefundJobAdmin",
    "SharingOrderAdmin",
    "confirmed_pks",
    "format_yuan",
]
