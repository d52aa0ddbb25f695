"""Serializers: the amount is an integer in fen (WeChat's unit), with a read-only yuan string."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from ..models import ProfitSharingReturn, ProfitSharingReturnCall
from ..services import validate_return_fields

REQUEST_FIELDS = ("sub_mchid", "order_id", "out_order_no", "out_return_no", "return_mchid")
MAX_FEN = 2**63 - 1


class CallSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProfitSharingReturnCall
        fields = ("method", "path", "http_status", "request_id", "error_code", "duration_ms",
                  "outcome", "created")  # fmt: skip


class ProfitSharingReturnSerializer(serializers.ModelSerializer):
    amount = serializers.IntegerField(min_value=1, max_value=MAX_FEN, help_text="In fen (分).")
    amount_yuan = serializers.SerializerMethodField(help_text='e.g. "12.34"')
    out_return_no = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="Generated when absent."
    )
    sub_mchid = serializers.CharField(max_length=32, required=False, allow_blank=True)
    order_id = serializers.CharField(max_length=64, required=False, allow_blank=True)
    out_order_no = serializers.CharField(max_length=64, required=False, allow_blank=True)

    class Meta:
        model = ProfitSharingReturn
        fields = (
            "id", "out_return_no", "state", "sub_mchid", "order_id", "out_order_no",
            "return_mchid", "amount", "amount_yuan", "description", "return_id", "result",
            "fail_reason", "create_time", "finish_time", "attempts", "next_attempt_at",
            "last_error_code", "last_error_message", "created", "updated",
        )  # fmt: skip
        read_only_fields = (
            "id", "state", "return_id", "result", "fail_reason", "create_time", "finish_time",
            "attempts", "next_attempt_at", "last_error_code", "last_error_message", "created",
            "updated",
        )  # fmt: skip

    def get_amount_yuan(self, obj: ProfitSharingReturn) -> str:
        return f"{obj.amount_yuan:.2f}"

    def validate(self, attrs: dict) -> dict:
        try:
            validate_return_fields(
                {
                    **{name: attrs.get(name) or None for name in REQUEST_FIELDS},
                    "amount": attrs.get("amount"),
                    "description": attrs.get("description"),
                }
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs
