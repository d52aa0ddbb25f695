"""Changelist pieces whose cost does not grow with the table: filters, search, counts.

Why: Django's defaults read every row on a large table. A filter on a plain field
lists its values with ``SELECT DISTINCT`` over the table, the date drill-down with
``DISTINCT DATE_TRUNC`` over every row, a search with ``UPPER(...) LIKE '%x%'``, and
the paginator counts every matching row. Here the merchant filter lists the
configured merchants, the search matches a number exactly or by its start (each an
indexed column), and the paginator counts at most :data:`COUNT_CAP` rows, saying
"more than" beyond. At 10^6 returns a changelist page costs what it costs at 10^4.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from ..labels import SHARING_ORDER_STATES
from ..merchants import merchants

#: The most rows a changelist counts; past it the page says "more than" this many.
COUNT_CAP = 10_000
#: The returns' search: a number as typed, or the start of one (case-sensitive, like
#: WeChat Pay's numbers), each on an indexed column; WeChat's return id exactly.
RETURN_SEARCH_FIELDS = (
    "out_return_no__startswith",
    "out_order_no__startswith",
    "order_id__startswith",
    "return_id__exact",
)
#: The sharing orders' and the clawbacks' searches, likewise.
ORDER_SEARCH_FIELDS = ("out_order_no__startswith", "transaction_id__startswith",
                       "order_id__startswith")  # fmt: skip
CLAWBACK_SEARCH_FIELDS = ("out_clawback_no__startswith",)


class MerchantFilter(admin.SimpleListFilter):
    """The configured merchants (``MERCHANTS``), not the distinct values of the table."""

    title = _("merchant id")
    parameter_name = "mchid"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        configured = sorted(mchid for mchid in merchants() if mchid)
        return [(mchid, mchid) for mchid in configured] if len(configured) > 1 else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(mchid=value) if value else queryset


# django-stubs makes Paginator generic; Django's own cannot be subscripted at run time.
if TYPE_CHECKING:
    _PaginatorBase = Paginator[Any]
else:
    _PaginatorBase = Paginator


class SharingOrderStateFilter(admin.SimpleListFilter):
    """WeChat's states of a sharing order, from its enum (the field has no choices)."""

    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(SHARING_ORDER_STATES.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(state=value) if value else queryset


class CappedCountPaginator(_PaginatorBase):
    """Counts at most :data:`COUNT_CAP` + 1 rows (one bounded query); ``capped`` past it."""

    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        object_list: Any = self.object_list
        return int(object_list[: self.cap + 1].count())

    @property
    def capped(self) -> bool:
        return self.count > self.cap
