"""Serializers of clawbacks and sharing orders: JSON in fen, strict like the returns'.

A clawback's write names only what its caller chooses (``out_clawback_no``, the
sharing order, ``amount``, ``policy``, ``accounts``, ``description``); a misspelt or
read-only key is a 400 naming it, never dropped (a dropped ``amount`` would claw
back everything). The service (``clawbacks._clean``) checks the values again, as it
does for every caller.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from ..ledger import Blocked, LineLedger, order_ledger
from ..models.clawbacks import AllocationPolicy, ProfitSharingClawback
from ..models.returns import ProfitSharingReturn
from ..models.sharing_orders import ProfitSharingOrder
from ..validation_messages import translated
from ..wechatpay import errors, validation
from .serializers import MAX_FEN, FenField, StrictSerializer, TextField


def _checked(check: Any) -> Any:
    """A DRF validator from one of the client's own checks (its message, translated)."""

    def validate(value: Any) -> None:
        try:
            check(value)
        except errors.InvalidRequest as exc:
            raise serializers.ValidationError(str(translated(exc.message))) from None

    return validate


OUT_NO = _checked(validation.validate_out_no)
TRANSACTION_ID = _checked(validation.validate_transaction_id)
MCHID = _checked(validation.validate_mchid)


class ClawbackReturnSerializer(serializers.ModelSerializer[ProfitSharingReturn]):
    """One return of a clawback, as its caller follows it."""

    amount_yuan = serializers.SerializerMethodField(help_text='e.g. "12.34"')

    class Meta:
        model = ProfitSharingReturn
        fields = ("id", "out_return_no", "return_mchid", "amount", "amount_yuan", "state",
                  "awaiting_topup", "fail_reason", "replaces")  # fmt: skip
        read_only_fields = fields

    def get_amount_yuan(self, obj: ProfitSharingReturn) -> str:
        return f"{obj.amount_yuan:.2f}"


class ClawbackSerializer(StrictSerializer):
    """A clawback: written with the fields of its identity, read with its returns."""

    id = serializers.IntegerField(read_only=True)
    out_clawback_no = TextField(
        max_length=64,
        validators=[OUT_NO],
        help_text="Your own number for the refund this serves: a retried request with the "
        "same number and fields is the same clawback.",
    )
    mchid = TextField(
        max_length=32,
        required=False,
        allow_blank=True,
        help_text="A configured merchant id; absent: DEFAULT_MCHID (the one merchant).",
    )
    out_order_no = TextField(source="order.out_order_no", max_length=64, validators=[OUT_NO])
    transaction_id = TextField(
        source="order.transaction_id", max_length=32, validators=[TRANSACTION_ID]
    )
    sub_mchid = TextField(
        source="order.sub_mchid",
        max_length=32,
        required=False,
        allow_blank=True,
        help_text="Partner mode only.",
    )
    amount = FenField(
        min_value=1,
        max_value=MAX_FEN,
        required=False,
        help_text="In fen, a JSON integer. Absent: everything returnable. In an answer: "
        "the amount allocated.",
    )
    requested_amount = serializers.IntegerField(read_only=True, allow_null=True)
    amount_yuan = serializers.SerializerMethodField(help_text='e.g. "12.34"')
    policy = serializers.ChoiceField(
        choices=AllocationPolicy.choices, default=AllocationPolicy.PROPORTIONAL
    )
    accounts = serializers.ListField(
        child=TextField(max_length=32, validators=[MCHID]),
        required=False,
        max_length=100,
        help_text="For in_order: the merchant receivers to take from, in turn.",
    )
    description = TextField(max_length=validation.MAX_DESCRIPTION)
    state = serializers.CharField(read_only=True)
    order = serializers.IntegerField(source="order_id", read_only=True)
    returns = ClawbackReturnSerializer(many=True, read_only=True)
    created = serializers.DateTimeField(read_only=True)
    updated = serializers.DateTimeField(read_only=True)

    def validate_sub_mchid(self, value: str) -> str:
        if value:
            MCHID(value)
        return value

    def get_amount_yuan(self, obj: ProfitSharingClawback) -> str:
        return f"{obj.amount_yuan:.2f}"

    def service_fields(self) -> dict[str, Any]:
        """The validated input as ``clawbacks.create_or_get_clawback`` takes it."""
        data = dict(self.validated_data)
        order = data.pop("order", {})
        return {
            **data,
            "out_order_no": order.get("out_order_no"),
            "transaction_id": order.get("transaction_id"),
            "sub_mchid": order.get("sub_mchid") or None,
            "amount": data.get("amount"),
            "accounts": list(data.get("accounts") or []),
            "mchid": data.get("mchid") or None,
        }


class SyncOrderSerializer(StrictSerializer):
    """Which sharing order to mirror from WeChat Pay (查询分账结果)."""

    mchid = TextField(
        max_length=32,
        required=False,
        allow_blank=True,
        help_text="A configured merchant id; absent: DEFAULT_MCHID (the one merchant).",
    )
    out_order_no = TextField(max_length=64, validators=[OUT_NO])
    transaction_id = TextField(max_length=32, validators=[TRANSACTION_ID])
    sub_mchid = TextField(
        max_length=32, required=False, allow_blank=True, help_text="Partner mode only."
    )

    def validate_sub_mchid(self, value: str) -> str:
        if value:
            MCHID(value)
        return value


class OrderLedgerSerializer(serializers.ListSerializer[LineLedger]):
    """Given a sharing order, its ledger now: one entry per receiver line."""

    def to_representation(self, data: Any) -> list[Any]:
        return super().to_representation(order_ledger(data, timezone.now()))


class ReceiverLedgerSerializer(serializers.Serializer[LineLedger]):
    """One receiver line with what may still be clawed back from it, in fen."""

    type = serializers.CharField(source="line.type")
    account = serializers.CharField(source="line.account")
    result = serializers.CharField(source="line.result")
    fail_reason = serializers.CharField(source="line.fail_reason")
    shared = serializers.IntegerField()
    returned = serializers.IntegerField(help_text="Returns that succeeded.")
    reserved = serializers.IntegerField(help_text="Returns not final yet, drafts included.")
    returnable = serializers.IntegerField(help_text="0 where WeChat Pay would refuse.")
    blocked = serializers.ChoiceField(
        source="blocked_code",
        choices=["", *Blocked.values],
        help_text="Why nothing is returnable (empty when something is).",
    )
    blocked_reason = serializers.SerializerMethodField(help_text="The reason, in words.")

    class Meta:
        list_serializer_class = OrderLedgerSerializer

    def get_blocked_reason(self, entry: LineLedger) -> str:
        return str(entry.blocked.label) if entry.blocked else ""


class SharingOrderSerializer(serializers.ModelSerializer[ProfitSharingOrder]):
    """A mirrored sharing order with its receiver lines' ledger."""

    receivers = ReceiverLedgerSerializer(many=True, read_only=True, source="*")

    class Meta:
        model = ProfitSharingOrder
        fields = ("id", "mchid", "sub_mchid", "out_order_no", "transaction_id", "order_id",
                  "state", "synced_at", "receivers")  # fmt: skip
        read_only_fields = fields
