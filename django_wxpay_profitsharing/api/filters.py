"""List filters: returns (state, mchid, ids, created range, awaiting_topup), clawbacks, orders,
refund jobs.

Written without django-filter so the API needs nothing beyond DRF; bad values answer
400 naming the parameter, before any of them reaches the database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from rest_framework import filters
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.views import APIView

from ..models.clawbacks import ClawbackState
from ..refund_models import RefundJob
from ..refund_states import RefundJobState
from ..states import ReturnState

EXACT = ("mchid", "sub_mchid", "out_order_no", "return_mchid")
RANGES = (("created_after", "created__gte"), ("created_before", "created__lt"))
NOT_A_MOMENT = _("expected an ISO 8601 date-time")
OUT_OF_RANGE = _("date-time out of range: it must fall within the years 1 to 9999 in UTC")
UNKNOWN_STATE = _("unknown state %(state)r")
NOT_A_VALUE = _("not a valid value")
NOT_A_BOOLEAN = _("expected true or false")
REQUIRED = _("this parameter is required")
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def parse_moment(text: str, name: str) -> datetime:
    """A datetime from ISO 8601 text, as the database compares it; a 400 naming ``name``.

    Aware UTC with ``USE_TZ = True``; naive local time with ``USE_TZ = False`` (as the
    rows are stored then). Why normalised here: a naive value is read in the current
    time zone, and ``0001-01-01T00:00:00`` in Asia/Shanghai is before year 1 in UTC,
    which the database adapter cannot write (an ``OverflowError``: a 500 on SQLite).
    """
    try:
        moment = parse_datetime(text)
    except (ValueError, OverflowError):  # well-formed but impossible: month 13, +99:00
        moment = None
    if moment is None:
        raise ValidationError({name: [NOT_A_MOMENT]})
    try:
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        moment = moment.astimezone(UTC)
        return moment if settings.USE_TZ else timezone.make_naive(moment)
    except (ValueError, OverflowError):
        raise ValidationError({name: [OUT_OF_RANGE]}) from None


class ProfitSharingReturnFilter(filters.BaseFilterBackend):
    def filter_queryset(
        self,
        request: Request,
        queryset: QuerySet[Any, Any],
        view: APIView,
    ) -> QuerySet[Any, Any]:
        params = request.query_params
        queryset = filter_states(queryset, params, ReturnState.values)
        for name in EXACT:
            value = exact_value(params, name)
            if value:
                queryset = queryset.filter(**{name: value})
        for name, lookup in RANGES:
            if params.get(name):
                queryset = queryset.filter(**{lookup: parse_moment(params[name], name)})
        waiting = params.get("awaiting_topup")
        if waiting:
            queryset = queryset.filter(awaiting_topup=parse_boolean(waiting, "awaiting_topup"))
        return queryset

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        text = {"type": "string"}
        params = [
            {"name": "state", "in": "query", "required": False,
             "schema": {"type": "string", "enum": list(ReturnState.values)}},
            *({"name": n, "in": "query", "required": False, "schema": text} for n in EXACT),
            *({"name": n, "in": "query", "required": False,
               "schema": {"type": "string", "format": "date-time"}}
              for n, _lookup in RANGES),
            {"name": "awaiting_topup", "in": "query", "required": False,
             "schema": {"type": "boolean"},
             "description": "Processing returns waiting for their receiver to top up."},
        ]  # fmt: skip
        return params


def filter_states(
    queryset: QuerySet[Any, Any], params: Any, known: list[str]
) -> QuerySet[Any, Any]:
    """Rows in any of the ``state`` parameters (repeatable); a 400 naming an unknown one."""
    states = params.getlist("state")
    if not states:
        return queryset
    unknown = [state for state in states if state not in known]
    if unknown:
        raise ValidationError({"state": [UNKNOWN_STATE % {"state": unknown[0]}]})
    return queryset.filter(state__in=states)


def parse_boolean(text: str, name: str) -> bool:
    """``true``/``false`` (or 1/0); a 400 naming ``name`` otherwise."""
    try:
        return BOOLEANS[text.lower()]
    except KeyError:
        raise ValidationError({name: [NOT_A_BOOLEAN]}) from None


def exact_value(params: Any, name: str) -> str | None:
    """A text parameter as given, or None; a 400 naming it if no database can hold it."""
    value = params.get(name)
    if not value:
        return None
    if "\x00" in value or len(value) > 64:
        raise ValidationError({name: [NOT_A_VALUE]})
    return str(value)


class ClawbackFilter(filters.BaseFilterBackend):
    """``state`` (repeatable), ``out_order_no`` and ``mchid``."""

    def filter_queryset(
        self, request: Request, queryset: QuerySet[Any, Any], view: APIView
    ) -> QuerySet[Any, Any]:
        queryset = filter_states(queryset, request.query_params, ClawbackState.values)
        number = exact_value(request.query_params, "out_order_no")
        if number:
            queryset = queryset.filter(order__out_order_no=number)
        mchid = exact_value(request.query_params, "mchid")
        if mchid:
            queryset = queryset.filter(mchid=mchid)
        return queryset

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            {"name": "state", "in": "query", "required": False,
             "schema": {"type": "string", "enum": list(ClawbackState.values)}},
            {"name": "out_order_no", "in": "query", "required": False,
             "schema": {"type": "string"}},
            {"name": "mchid", "in": "query", "required": False,
             "schema": {"type": "string"}, "description": "Only this merchant's clawbacks."},
        ]  # fmt: skip


class SharingOrderFilter(filters.BaseFilterBackend):
    """``out_order_no`` (required: each order's ledger is computed), ``sub_mchid``, ``mchid``."""

    def filter_queryset(
        self, request: Request, queryset: QuerySet[Any, Any], view: APIView
    ) -> QuerySet[Any, Any]:
        number = exact_value(request.query_params, "out_order_no")
        if number is None:
            raise ValidationError({"out_order_no": [REQUIRED]})
        queryset = queryset.filter(out_order_no=number)
        sub_mchid = exact_value(request.query_params, "sub_mchid")
        if sub_mchid:
            queryset = queryset.filter(sub_mchid=sub_mchid)
        mchid = exact_value(request.query_params, "mchid")
        if mchid:
            queryset = queryset.filter(mchid=mchid)
        return queryset

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            {"name": "out_order_no", "in": "query", "required": True,
             "schema": {"type": "string", "minLength": 1, "maxLength": 64}},
            {"name": "sub_mchid", "in": "query", "required": False,
             "schema": {"type": "string"}},
            {"name": "mchid", "in": "query", "required": False,
             "schema": {"type": "string"}, "description": "Only this merchant's order."},
        ]  # fmt: skip


class RefundJobFilter(filters.BaseFilterBackend):
    """``state`` (repeatable), ``transaction_id``, ``attention`` (true/false) and ``mchid``."""

    def filter_queryset(
        self, request: Request, queryset: QuerySet[Any, Any], view: APIView
    ) -> QuerySet[Any, Any]:
        params = request.query_params
        queryset = filter_states(queryset, params, RefundJobState.values)
        for name in ("transaction_id", "mchid"):
            value = exact_value(params, name)
            if value:
                queryset = queryset.filter(**{name: value})
        attention = params.get("attention")
        if attention:
            waiting = RefundJob.objects.needing_attention().values("pk")
            if parse_boolean(attention, "attention"):
                queryset = queryset.filter(pk__in=waiting)
            else:
                queryset = queryset.exclude(pk__in=waiting)
        return queryset

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            {"name": "state", "in": "query", "required": False,
             "schema": {"type": "string", "enum": list(RefundJobState.values)}},
            {"name": "transaction_id", "in": "query", "required": False,
             "schema": {"type": "string"}, "description": "Only this payment's refunds."},
            {"name": "attention", "in": "query", "required": False,
             "schema": {"type": "boolean"},
             "description": "Refunds an operator should look at (true), or the others."},
            {"name": "mchid", "in": "query", "required": False,
             "schema": {"type": "string"}, "description": "Only this merchant's refunds."},
        ]  # fmt: skip
