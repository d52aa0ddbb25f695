"""Serializers of refund jobs: JSON in fen, strict like the returns' and the clawbacks'.

A refund's write names only its identity (``out_refund_no``, ``transaction_id``,
``sub_mchid``, ``mchid``, ``amount``, ``reason``) and ``allow_unfreeze``; a misspelt
or read-only key is a 400 naming it, never dropped. The payment's total and time are
WeChat Pay's (查询订单), never a caller's. The desk (``refund_jobs.clean_job_fields``)
checks every value again, as it does for every door.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..models.clawbacks import ProfitSharingClawback
from ..refund_models import Refund, RefundJob
from ..refund_plan import ShopFundsReason
from ..refund_states import Attention, RefundJobState, RefundOutcome
from ..wechatpay import validation
from .clawback_serializers import MCHID, OUT_NO, TRANSACTION_ID, _checked
from .filters import NOT_A_BOOLEAN
from .serializers import MAX_FEN, FenField, StrictSerializer, TextField

REASON = _checked(validation.validate_reason)
#: What a plan's ``first_step`` may be (``refund_plan.make_plan``'s outcomes).
PLAN_OUTCOMES = (
    RefundOutcome.FITS_FROZEN, RefundOutcome.NEEDS_UNFREEZE, RefundOutcome.NEEDS_CLAWBACK,
    RefundOutcome.FROM_BALANCE, RefundOutcome.SPLIT_OPEN, RefundOutcome.NOT_REFUNDABLE,
)  # fmt: skip
#: The codes a plan's ``reasons`` may hold (why the shop funds part of the refund).
SHOP_FUNDS_REASONS = [
    ShopFundsReason.NOT_RETURNABLE,
    ShopFundsReason.UNFREEZE_OFF,
    ShopFundsReason.NEVER_SHARED,
]


class JSONBooleanField(serializers.BooleanField):
    """``true`` or ``false`` only: DRF's own also takes "yes", "on", 1 and "0"."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            raise serializers.ValidationError(str(NOT_A_BOOLEAN))
        return data


class RefundAttemptSerializer(serializers.ModelSerializer[Refund]):
    """One 申请退款 of the job under one out_refund_no, with WeChat Pay's answer."""

    replaces: serializers.SlugRelatedField[Refund] = serializers.SlugRelatedField(
        slug_field="out_refund_no",
        read_only=True,
        help_text="The out_refund_no of the refund WeChat Pay closed, which this one tries again.",
    )

    class Meta:
        model = Refund
        fields = ("number", "out_refund_no", "refund_id", "status", "channel",
                  "user_received_account", "success_time", "create_time", "replaces")  # fmt: skip
        read_only_fields = fields


class RefundClawbackSerializer(serializers.ModelSerializer[ProfitSharingClawback]):
    """A clawback the job made of one sharing order (``/clawbacks/{id}/`` has its returns)."""

    class Meta:
        model = ProfitSharingClawback
        fields = ("id", "out_clawback_no", "state", "amount")
        read_only_fields = fields


class PlanSerializer(serializers.Serializer[Any]):
    """Where the refund's money comes from, in fen, as the job planned it."""

    first_step = serializers.ChoiceField(
        choices=[str(outcome) for outcome in PLAN_OUTCOMES],
        help_text="fits_frozen: refunded from the payment's frozen money; needs_unfreeze: the "
        "frozen rest unfrozen first; needs_clawback: clawed back first; from_balance: from the "
        "available balance as it is; split_open: waits for a split under way; "
        "not_refundable: WeChat Pay would refuse it (the job failed).",
    )
    refund = serializers.IntegerField()
    unsplit = serializers.IntegerField(help_text="Still frozen of the payment when planned.")
    unfreeze = serializers.IntegerField(help_text="To unfreeze into the available balance.")
    clawbacks = serializers.ListField(
        child=serializers.ListField(child=serializers.JSONField(), min_length=2, max_length=2),
        help_text="[out_order_no, amount] per sharing order to claw back from.",
    )
    clawback = serializers.IntegerField(help_text="To claw back in all.")
    shop_funds = serializers.IntegerField(
        help_text="What the refund takes from the shop's own available balance."
    )
    reasons = serializers.ListField(
        child=serializers.ChoiceField(choices=SHOP_FUNDS_REASONS),
        help_text="Why the shop funds part: not_returnable (shared to personal receivers), "
        "unfreeze_off (unfreezing not allowed), never_shared (more than was shared).",
    )


class RefundJobSerializer(StrictSerializer):
    """A refund job: written with the fields of its identity, read with its plan and steps."""

    id = serializers.IntegerField(read_only=True)
    mchid = TextField(
        max_length=32,
        required=False,
        allow_blank=True,
        help_text="A configured merchant id; absent: DEFAULT_MCHID (the one merchant).",
    )
    sub_mchid = TextField(
        max_length=32, required=False, allow_blank=True, help_text="Partner mode only."
    )
    out_refund_no = TextField(
        max_length=64,
        validators=[OUT_NO],
        help_text="Your own number for this refund: a retried request with the same number "
        "and fields is the same refund.",
    )
    transaction_id = TextField(
        max_length=32, validators=[TRANSACTION_ID], help_text="The payment to refund."
    )
    amount = FenField(min_value=1, max_value=MAX_FEN, help_text="In fen (分), a JSON integer.")
    amount_yuan = serializers.SerializerMethodField(help_text='e.g. "12.34"')
    reason = TextField(
        required=False,
        allow_blank=True,
        validators=[REASON],
        help_text="Shown to the customer; cut to 80 bytes of UTF-8.",
    )
    allow_unfreeze = JSONBooleanField(
        required=False,
        help_text="May unfreeze what is still frozen of the payment when the refund needs "
        "it; absent: REFUND_ALLOW_UNFREEZE.",
    )
    state = serializers.ChoiceField(choices=RefundJobState.choices, read_only=True)
    step = serializers.CharField(read_only=True, help_text="What the job does next.")
    attention = serializers.ChoiceField(
        choices=[("", ""), *Attention.choices],
        read_only=True,
        help_text="Why the job waits for an operator (empty when it does not).",
    )
    plan = PlanSerializer(read_only=True)
    unfrozen = serializers.IntegerField(read_only=True)
    unfreeze_out_order_no = serializers.CharField(read_only=True)
    last_error_code = serializers.CharField(read_only=True)
    last_error_message = serializers.CharField(read_only=True)
    refunds = RefundAttemptSerializer(many=True, read_only=True)
    clawbacks = RefundClawbackSerializer(many=True, read_only=True)
    created = serializers.DateTimeField(read_only=True)
    updated = serializers.DateTimeField(read_only=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def validate_sub_mchid(self, value: str) -> str:
        if value:
            MCHID(value)
        return value

    def get_amount_yuan(self, obj: RefundJob) -> str:
        return f"{obj.amount_yuan:.2f}"

    def desk_fields(self) -> dict[str, Any]:
        """The validated input as ``desk.create_refund`` takes it."""
        data = dict(self.validated_data)
        return {
            "out_refund_no": data["out_refund_no"],
            "transaction_id": data["transaction_id"],
            "amount": data["amount"],
            "sub_mchid": data.get("sub_mchid") or "",
            "mchid": data.get("mchid") or None,
            "reason": data.get("reason") or "",
            "allow_unfreeze": data.get("allow_unfreeze"),
        }
