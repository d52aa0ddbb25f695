"""The returns changelist does work that does not grow with the table (issue 23).

What the SQL looks like is what keeps a page flat from 10^4 to 10^6 rows (measured by
``bench/bench_scale.py`` on PostgreSQL): no ``DISTINCT`` over the table for a filter's
choices or a date drill-down, a search that matches a number's start (``LIKE 'x%'``
on an indexed column, never ``UPPER(...) LIKE '%x%'``), a count that stops at a cap.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_wxpay_profitsharing.admin import filters
from django_wxpay_profitsharing.models import ProfitSharingReturn, ReturnState

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:wxpay_profitsharing_profitsharingreturn_changelist")


def make_returns(count: int, mchid: str = "1900000100", prefix: str = "RSCALE") -> None:
    ProfitSharingReturn.objects.bulk_create(
        ProfitSharingReturn(
            mchid=mchid,
            out_return_no=f"{prefix}{n:05d}",
            out_order_no=f"PSCALE{n:05d}",
            return_mchid="86693852",
            amount=1,
            description="scale",
            state=ReturnState.SUCCEEDED if n % 2 else ReturnState.PENDING,
        )
        for n in range(count)
    )


def changelist_sql(admin_client, **params: str) -> tuple[object, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(CHANGELIST, params)
    assert page.status_code == 200
    return page, [q["sql"] for q in queries]


def test_filters_search_and_count_read_no_whole_table(admin_client):
    make_returns(12)
    two = {"MERCHANTS": {"1900000100": {}, "1900000200": {}}, "DEFAULT_MCHID": "1900000100"}
    with override_settings(WXPAY_PROFITSHARING=two):
        page, sql = changelist_sql(
            admin_client, state="pending", mchid="1900000100", q="RSCALE0001"
        )
    returns = [sql_ for sql_ in sql if "profitsharingreturn" in sql_]
    assert not any("DISTINCT" in s.upper() for s in returns), returns
    assert not any("UPPER(" in s.upper() for s in returns), returns
    # A number's start: LIKE 'x%' (MySQL: LIKE BINARY), never a leading wildcard.
    assert any(re.search(r"LIKE (BINARY )?'RSCALE0001%'", s) for s in returns), returns
    assert not any("LIKE '%" in s or "LIKE BINARY '%" in s for s in returns), returns
    assert [r.out_return_no for r in page.context["cl"].result_list] == [
        "RSCALE00010"
    ]  # "RSCALE00011" is not pending
    choices = [c["display"] for c in page.context["cl"].filter_specs[2].choices(page.context["cl"])]
    assert choices[1:] == ["1900000100", "1900000200"]  # the configured merchants


def test_the_search_matches_a_numbers_start_exactly_not_its_middle(admin_client):
    make_returns(3)
    make_returns(1, prefix="XRSCALE")
    page, _sql = changelist_sql(admin_client, q="RSCALE0000")
    assert {r.out_return_no for r in page.context["cl"].result_list} == {
        "RSCALE00000", "RSCALE00001", "RSCALE00002"}  # fmt: skip
    page, _sql = changelist_sql(admin_client, q="PSCALE00002")  # a sharing order number
    assert [r.out_return_no for r in page.context["cl"].result_list] == ["RSCALE00002"]
    if connection.vendor != "sqlite":  # SQLite's LIKE ignores case; the others keep it
        page, _sql = changelist_sql(admin_client, q="rscale")  # WeChat's numbers are exact
        assert list(page.context["cl"].result_list) == []


def test_past_the_cap_the_page_says_more_than(admin_client, monkeypatch):
    monkeypatch.setattr(filters.CappedCountPaginator, "cap", 5)
    make_returns(8)
    page, sql = changelist_sql(admin_client)
    assert "More than 5 profit-sharing returns" in page.content.decode()
    counts = [s for s in sql if "COUNT(" in s.upper() and "profitsharingreturn" in s]
    assert counts and all("LIMIT 6" in s for s in counts), counts
    page, _sql = changelist_sql(admin_client, state="succeeded")
    assert "4 profit-sharing returns" in page.content.decode()


def test_one_merchant_shows_no_merchant_filter(admin_client):
    make_returns(2)
    page, _sql = changelist_sql(admin_client)
    titles = [str(spec.title) for spec in page.context["cl"].filter_specs if spec.has_output()]
    assert "merchant id" not in titles
