"""Serializers: the amount is an integer in fen (WeChat's unit), with a read-only yuan string.

Strict on purpose: a write names only fields it may set (a misspelt ``out_returnno``
would otherwise be ignored and a fresh number generated: a second clawback on
retry), text fields take JSON strings and the amount a JSON integer, nothing DRF
would coerce (``"100"``, ``100.0``, ``1e3``, ``true``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from ..desk import validate_return_fields
from ..models.returns import (
    ANSWER_FIELDS,
    PROGRESS_FIELDS,
    ProfitSharingReturn,
    ProfitSharingReturnCall,
    pick_request_fields,
)
from ..validation_messages import translated
from ..wechatpay import errors, validation
from ..wechatpay.models import RETURN_REQUEST_FIELDS

MAX_FEN = validation.MAX_AMOUNT
UNKNOWN_FIELD = _("unknown field")
READ_ONLY_FIELD = _("read-only field: set by the server, not by a request")


def refuse_unwritable(
    fields: Mapping[str, serializers.Field[Any, Any, Any, Any]], data: object
) -> None:
    """A 400 naming every key of ``data`` that is not a writable field."""
    if not isinstance(data, Mapping):
        return  # DRF answers "expected a dictionary" itself
    problems: dict[str, list[Any]] = {}
    for name in data:
        field = fields.get(name)
        if field is None:
            problems[str(name)] = [UNKNOWN_FIELD]
        elif field.read_only:
            problems[str(name)] = [READ_ONLY_FIELD]
    if problems:
        raise serializers.ValidationError(problems)


class StrictSerializer(serializers.Serializer[Any]):
    """Unknown and read-only fields in the input are errors, not silently dropped."""

    def to_internal_value(self, data: Any) -> Any:
        refuse_unwritable(self.fields, data)
        return super().to_internal_value(data)


class FenField(serializers.IntegerField):
    """A JSON integer of fen, checked by the client's own rule (``validate_amount``)."""

    def to_internal_value(self, data: Any) -> int:
        try:
            return validation.validate_amount(data)
        except errors.InvalidRequest as exc:
            raise serializers.ValidationError(str(translated(exc.message))) from None


class TextField(serializers.CharField):
    """A JSON string only: DRF's CharField would turn ``12`` or ``1.5`` into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(str(translated(validation.NOT_TEXT)))
        return super().to_internal_value(data)


class CallSerializer(serializers.ModelSerializer[ProfitSharingReturnCall]):
    class Meta:
        model = ProfitSharingReturnCall
        fields = ("method", "path", "http_status", "request_id", "error_code", "duration_ms",
                  "outcome", "created")  # fmt: skip


class BulkSubmitSerializer(StrictSerializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_FEN),
        min_length=1,
        max_length=10_000,
    )


class ProfitSharingReturnSerializer(
    StrictSerializer, serializers.ModelSerializer[ProfitSharingReturn]
):
    amount = FenField(min_value=1, max_value=MAX_FEN, help_text="In fen (分), a JSON integer.")
    amount_yuan = serializers.SerializerMethodField(help_text='e.g. "12.34"')
    out_return_no = TextField(
        max_length=64, required=False, allow_blank=True, help_text="Generated when absent."
    )
    mchid = TextField(
        max_length=32,
        required=False,
        allow_blank=True,
        help_text="A configured merchant id; absent: DEFAULT_MCHID (the one merchant).",
    )
    sub_mchid = TextField(max_length=32, required=False, allow_blank=True)
    order_id = TextField(max_length=64, required=False, allow_blank=True)
    out_order_no = TextField(max_length=64, required=False, allow_blank=True)
    return_mchid = TextField(
        max_length=32, help_text="The receiver merchant the money is taken back from."
    )
    description = TextField(max_length=validation.MAX_DESCRIPTION)

    class Meta:
        model = ProfitSharingReturn
        read_only_fields = (
            "id", *PROGRESS_FIELDS, *ANSWER_FIELDS, "created", "updated", "clawback", "replaces",
        )  # fmt: skip
        fields = ("mchid", *RETURN_REQUEST_FIELDS, "amount_yuan", *read_only_fields)

    def get_amount_yuan(self, obj: ProfitSharingReturn) -> str:
        return f"{obj.amount_yuan:.2f}"

    def get_validators(self) -> list[Any]:
        """None from the model's (mchid, out_return_no) constraint.

        DRF would make ``mchid`` required and answer a repeated create 400; the service
        layer owns that rule: the same fields again are the existing return (200),
        other fields a conflict (409), and an absent mchid is ``DEFAULT_MCHID``.
        """
        return []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            validate_return_fields(pick_request_fields(attrs))
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs
