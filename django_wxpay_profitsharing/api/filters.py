"""List filters: state (repeatable), sub_mchid, out_order_no, return_mchid, created range.

Written without django-filter so the API needs nothing beyond DRF; bad values answer
400 naming the parameter.
"""

from __future__ import annotations

from datetime import UTC

from django.utils.dateparse import parse_datetime
from rest_framework import filters
from rest_framework.exceptions import ValidationError

from ..models import ReturnState

EXACT = ("sub_mchid", "out_order_no", "return_mchid")


class ProfitSharingReturnFilter(filters.BaseFilterBackend):
    def filter_queryset(self, request, queryset, view):
        params = request.query_params
        states = params.getlist("state")
        if states:
            unknown = [s for s in states if s not in ReturnState.values]
            if unknown:
                raise ValidationError({"state": [f"unknown state {unknown[0]!r}"]})
            queryset = queryset.filter(state__in=states)
        for name in EXACT:
            value = params.get(name)
            if value:
                if "\x00" in value or len(value) > 64:
                    raise ValidationError({name: ["not a valid value"]})
                queryset = queryset.filter(**{name: value})
        for name, lookup in (("created_after", "created__gte"), ("created_before", "created__lt")):
            if params.get(name):
                try:
                    moment = parse_datetime(params[name])
                    # Normalised here: an extreme offset or year would fail in the DB.
                    moment = moment.astimezone(UTC) if moment and moment.tzinfo else moment
                except (ValueError, OverflowError):
                    moment = None
                if moment is None:
                    raise ValidationError({name: ["expected an ISO 8601 date-time"]})
                queryset = queryset.filter(**{lookup: moment})
        return queryset

    def get_schema_operation_parameters(self, view):
        text = {"type": "string"}
        params = [
            {"name": "state", "in": "query", "required": False,
             "schema": {"type": "string", "enum": list(ReturnState.values)}},
            *({"name": n, "in": "query", "required": False, "schema": text} for n in EXACT),
            *({"name": n, "in": "query", "required": False,
               "schema": {"type": "string", "format": "date-time"}}
              for n in ("created_after", "created_before")),
        ]  # fmt: skip
        return params
