"""Reconciliation against the simulator's daily bill: discrepancies, refusals, exit codes."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from django_wxpay_profitsharing import services, signals
from django_wxpay_profitsharing.clients import get_client
from django_wxpay_profitsharing.dbtime import for_db
from django_wxpay_profitsharing.models import (
    Discrepancy,
    DiscrepancyKind,
    ProfitSharingReturn,
    ReconciliationRun,
    ReturnState,
)
from django_wxpay_profitsharing.reconcile import (
    ReconciliationError,
    day_bounds,
    judge,
    reconcile,
)
from django_wxpay_profitsharing.reconcile_staging import Group
from django_wxpay_profitsharing.reconcile_words import describe
from django_wxpay_profitsharing.wechatpay import ReturnRequest

from .conftest import RECEIVER, SUB_MCHID, pending_return, unique_no

pytestmark = pytest.mark.django_db(transaction=True)
BEIJING = dt.timezone(dt.timedelta(hours=8))
OTHER_SUB = "1900000110"


def today() -> dt.date:
    return dt.datetime.now(BEIJING).date()


def succeeded(order, amount, **fields):
    row = pending_return(order, amount=amount, **fields)
    row = services.submit(row.pk)
    assert row.state == ReturnState.SUCCEEDED, (row.state, row.last_error_message)
    return row


@pytest.fixture
def day(configured, order):
    """Two returns that succeeded today, here and at WeChat Pay."""
    return [succeeded(order, 100), succeeded(order, 250)]


@pytest.fixture
def announced():
    calls = []

    def receive(sender, instance, discrepancies, **kwargs):
        calls.append((instance.pk, sorted(d.kind for d in discrepancies)))

    signals.reconciliation_discrepancies.connect(receive, weak=False)
    yield calls
    signals.reconciliation_discrepancies.disconnect(receive)


def kinds(run):
    return sorted((d.kind, d.out_return_no) for d in run.discrepancies.all())


def run_command(*args):
    """(exit status, stdout) of wxpay_reconcile as cron would see them."""
    from io import StringIO

    out = StringIO()
    try:
        call_command("wxpay_reconcile", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


@pytest.mark.parametrize("backticks", [True, False])
def test_a_clean_day_has_no_discrepancies_and_a_second_run_replaces_the_first(
    day, configured, announced, backticks
):
    configured.set_bill_layout(backticks=backticks)
    run = reconcile(today())
    assert (run.rows, run.return_rows, run.matched, run.discrepancy_count) == (3, 2, 2, 0)
    assert len(run.hash_value) == 40 and run.started <= run.finished
    assert kinds(run) == [] and announced == []
    again = reconcile(today())
    assert list(ReconciliationRun.objects.values_list("pk", flat=True)) == [again.pk]
    assert again.pk != run.pk


def test_a_local_amount_changed(day, announced):
    ProfitSharingReturn.objects.filter(pk=day[0].pk).update(amount=101)
    run = reconcile(today())
    assert kinds(run) == [(DiscrepancyKind.AMOUNT_DIFFERS, day[0].out_return_no)]
    item = run.discrepancies.get()
    assert (item.local_amount, item.wechat_amount) == (101, 100)
    assert run.matched == 1
    assert announced == [(run.pk, [DiscrepancyKind.AMOUNT_DIFFERS])]


def test_a_local_row_deleted(day):
    ProfitSharingReturn.objects.filter(pk=day[1].pk).delete()
    run = reconcile(today())
    assert kinds(run) == [(DiscrepancyKind.MISSING_LOCALLY, day[1].out_return_no)]
    assert run.discrepancies.get().wechat_amount == 250


def made_at_wechat(order, number: str, amount: int, sub_mchid: str = SUB_MCHID) -> None:
    """A return WeChat Pay holds and this table does not (made by another system)."""
    get_client().create_return(
        ReturnRequest(
            out_return_no=number,
            return_mchid=RECEIVER,
            amount=amount,
            description="made elsewhere",
            out_order_no=order["out_order_no"],
            sub_mchid=sub_mchid,
        )
    )


def test_a_return_only_at_wechat(day, order):
    number = unique_no("W")
    made_at_wechat(order, number, 7)
    run = reconcile(today())
    assert kinds(run) == [(DiscrepancyKind.MISSING_LOCALLY, number)]


def test_a_success_here_that_the_bill_lacks(day, order):
    ghost = pending_return(order, amount=5, submit=False)
    ProfitSharingReturn.objects.filter(pk=ghost.pk).update(
        state=ReturnState.SUCCEEDED, result="SUCCESS", finish_time=timezone.now()
    )
    run = reconcile(today())
    assert kinds(run) == [(DiscrepancyKind.MISSING_AT_WECHAT, ghost.out_return_no)]
    assert run.discrepancies.get().local_amount == 5


def test_a_state_that_differs(day):
    ProfitSharingReturn.objects.filter(pk=day[0].pk).update(state=ReturnState.FAILED)
    run = reconcile(today())
    assert kinds(run) == [(DiscrepancyKind.STATE_DIFFERS, day[0].out_return_no)]
    found = run.discrepancies.get()
    assert found.facts == {"statuses": ["SUCCESS"], "local_state": "failed"} and not found.detail
    assert describe(found) == "local state Failed, bill status Succeeded"
    with translation.override("zh-hans"):
        assert describe(found) == "本地状态：回退失败，账单状态：回退成功"


@pytest.mark.parametrize("corruption", ["hash", "rows"])
def test_a_bill_whose_hash_does_not_match_is_refused_and_nothing_is_written(
    day, configured, corruption, announced
):
    earlier = reconcile(today())
    configured.corrupt_next_bill(**{corruption: True})
    ProfitSharingReturn.objects.filter(pk=day[0].pk).update(amount=1)
    with pytest.raises(ReconciliationError, match="SHA1"):
        reconcile(today())
    assert list(ReconciliationRun.objects.all()) == [earlier]
    assert Discrepancy.objects.count() == 0 and announced == []


def test_sub_merchant_bill_and_the_bill_of_all(day, configured):
    other = configured.seed_order(unique_no("P"), sub_mchid=OTHER_SUB, amount=300)
    succeeded(other, 30, sub_mchid=OTHER_SUB)
    everything = reconcile(today())
    assert everything.sub_mchid == "" and everything.return_rows == 3
    one = reconcile(today(), sub_mchid=SUB_MCHID)
    assert (one.return_rows, one.matched, one.discrepancy_count) == (2, 2, 0)
    assert ReconciliationRun.objects.count() == 2


def test_a_day_without_a_bill_is_an_empty_bill(configured):
    run = reconcile(today() - dt.timedelta(days=1))
    assert (run.rows, run.hash_value, run.discrepancy_count) == (0, "", 0)


def test_command_exit_codes(day, configured):
    date = today().isoformat()
    status, out = run_command("--date", date)
    assert status == 0 and "2 matched, 0 discrepancies" in out
    ProfitSharingReturn.objects.filter(pk=day[0].pk).update(amount=99)
    status, out = run_command("--date", date, "--sub-mchid", SUB_MCHID)
    assert status == 1 and "amount_differs" in out and day[0].out_return_no in out
    configured.corrupt_next_bill(hash=True)
    status, out = run_command("--date", date)
    assert status == 2 and "no result" in out
    # The refused run changed nothing: the earlier runs stand as they were.
    runs = {r.sub_mchid: r.discrepancy_count for r in ReconciliationRun.objects.all()}
    assert runs == {"": 0, SUB_MCHID: 1}
    old = (today() - dt.timedelta(days=120)).isoformat()
    assert run_command("--date", old)[0] == 2
    assert run_command("--date", "2026-02-30")[0] == 2
    assert run_command("--date", date, "--mchid", "123")[0] == 2
    assert run_command("--date", date, "--sub-mchid", "x1")[0] == 2


def test_default_date_is_yesterday_in_time_zone(configured):
    status, out = run_command()
    assert status == 0
    now = timezone.now()  # naive local time without USE_TZ
    local_today = timezone.localdate(now) if timezone.is_aware(now) else now.date()
    assert str(local_today - dt.timedelta(days=1)) in out


def test_admin_lists_runs_filtered_by_kind_read_only(day, admin_client):
    ProfitSharingReturn.objects.filter(pk=day[0].pk).update(amount=101)
    run = reconcile(today())
    url = reverse("admin:wxpay_profitsharing_reconciliationrun_changelist")
    page = admin_client.get(url, {"discrepancies__kind": DiscrepancyKind.AMOUNT_DIFFERS})
    assert page.status_code == 200 and page.context["cl"].result_count == 1
    page = admin_client.get(url, {"discrepancies__kind": DiscrepancyKind.MISSING_LOCALLY})
    assert page.context["cl"].result_count == 0
    detail = admin_client.get(
        reverse("admin:wxpay_profitsharing_reconciliationrun_change", args=[run.pk])
    )
    assert detail.status_code == 200 and not detail.context["has_change_permission"]
    listed = admin_client.get(discrepancy_links(detail)[DiscrepancyKind.AMOUNT_DIFFERS.label])
    assert listed.status_code == 200 and list(listed.context["cl"].result_list) == [
        run.discrepancies.get()
    ]
    assert day[0].out_return_no in listed.content.decode()
    assert (
        admin_client.get(url.replace("/reconciliationrun/", "/reconciliationrun/add/")).status_code
        == 403
    )


def discrepancy_links(page) -> dict[str, str]:
    """The links of a run's page to its discrepancies, by their text."""
    html = page.content.decode()
    found = re.findall(r'<a href="([^"]*/discrepancy/\?[^"]*)">([^<]*)</a>', html)
    return {text: unescape(href) for href, text in found}


def test_the_page_of_a_run_of_thousands_shows_counts_and_links_not_rows(configured, admin_client):
    """A run of 150,000 discrepancies listed inline never loaded: counts, and a filtered list."""
    other = ReconciliationRun.objects.create(
        bill_date=today(), mchid="1900000100", rows=1, started=timezone.now(),
        finished=timezone.now(),
    )  # fmt: skip
    Discrepancy.objects.create(run=other, out_return_no="ELSEWHERE", kind="missing_locally")
    run = ReconciliationRun.objects.create(
        bill_date=today() - dt.timedelta(days=1), mchid="1900000100", rows=3000,
        discrepancy_count=3000, started=timezone.now(), finished=timezone.now(),
    )  # fmt: skip
    Discrepancy.objects.bulk_create(
        Discrepancy(run=run, out_return_no=f"N{n:05d}", kind=kind, detail="x")
        for n, kind in enumerate([DiscrepancyKind.MISSING_LOCALLY] * 2000
                                 + [DiscrepancyKind.MERCHANT_DIFFERS] * 1000)
    )  # fmt: skip
    url = reverse("admin:wxpay_profitsharing_reconciliationrun_change", args=[run.pk])
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(url)
    assert page.status_code == 200 and len(queries) < 20
    html = page.content.decode()
    assert "N00000" not in html and "N02999" not in html
    links = discrepancy_links(page)
    assert set(links) == {
        DiscrepancyKind.MISSING_LOCALLY.label, DiscrepancyKind.MERCHANT_DIFFERS.label, "all 3000"
    }  # fmt: skip
    assert "</a>: 2000</li>" in html and "</a>: 1000</li>" in html
    for text, count in (("all 3000", 3000), (DiscrepancyKind.MERCHANT_DIFFERS.label, 1000)):
        listed = admin_client.get(links[text])
        assert listed.status_code == 200 and listed.context["cl"].result_count == count
        assert {d.run_id for d in listed.context["cl"].result_list} == {run.pk}
    changelist = admin_client.get(reverse("admin:wxpay_profitsharing_reconciliationrun_changelist"))
    assert links["all 3000"] in {
        unescape(h) for h in re.findall(r'href="([^"]*)"', changelist.content.decode())
    }


def test_celery_task_reconciles_and_reports(day):
    tasks = pytest.importorskip("django_wxpay_profitsharing.tasks")
    ProfitSharingReturn.objects.filter(pk=day[0].pk).update(amount=3)
    assert tasks.reconcile_bill(today().isoformat()) == {
        "bill_date": today().isoformat(),
        "rows": 3,
        "matched": 1,
        "discrepancies": 1,
    }
    old = (today() - dt.timedelta(days=120)).isoformat()
    assert "bill_date" in tasks.reconcile_bill(old)["error"]


def test_the_bill_date_is_the_beijing_date_whatever_time_zone_says(day, order):
    """A success at 23:59:59 Beijing yesterday belongs to yesterday's bill, not today's."""
    start = dt.datetime.combine(today(), dt.time(), BEIJING)
    ghost = pending_return(order, amount=5, submit=False)
    ProfitSharingReturn.objects.filter(pk=ghost.pk).update(
        state=ReturnState.SUCCEEDED, finish_time=for_db(start - dt.timedelta(seconds=1))
    )
    # Without USE_TZ the rows hold naive TIME_ZONE times: the zone cannot change under them.
    zone = "America/Los_Angeles" if settings.USE_TZ else settings.TIME_ZONE
    with override_settings(TIME_ZONE=zone):
        assert reconcile(today()).discrepancy_count == 0
        yesterday = reconcile(today() - dt.timedelta(days=1))  # no bill: an empty one
    assert kinds(yesterday) == [(DiscrepancyKind.MISSING_AT_WECHAT, ghost.out_return_no)]
    assert "23:59:59 (Beijing time)" in describe(yesterday.discrepancies.get())


def test_judge_alone_one_discrepancy_per_problem():
    mchid = "1900000100"
    processing = ProfitSharingReturn(
        out_return_no="A", amount=10, state=ReturnState.PROCESSING, sub_mchid=SUB_MCHID
    )
    done = ProfitSharingReturn(
        out_return_no="B", amount=10, state=ReturnState.SUCCEEDED, sub_mchid=SUB_MCHID
    )
    a = Group(mchid, SUB_MCHID, "A", 12, ("SUCCESS",))
    assert [f.kind for f in judge(a, processing, mchid, None)] == [
        DiscrepancyKind.STATE_DIFFERS,
        DiscrepancyKind.AMOUNT_DIFFERS,
    ]
    b = Group(mchid, SUB_MCHID, "B", 10, ("SUCCESS",))  # two rows adding up to its amount
    assert judge(b, done, mchid, None) == [] and judge(b, done, mchid, SUB_MCHID) == []
    assert [f.kind for f in judge(b, None, mchid, None)] == [DiscrepancyKind.MISSING_LOCALLY]
    for foreign, asked in (
        (Group("1900000999", SUB_MCHID, "B", 10, ("SUCCESS",)), None),  # another initiator
        (Group("", SUB_MCHID, "B", 10, ("SUCCESS",)), None),  # no initiator at all
        (Group(mchid, OTHER_SUB, "B", 10, ("SUCCESS",)), SUB_MCHID),  # not the one asked
        (Group(mchid, OTHER_SUB, "B", 10, ("SUCCESS",)), None),  # not the return's
    ):
        (found,) = judge(foreign, done, mchid, asked)
        assert found.kind == DiscrepancyKind.MERCHANT_DIFFERS, (foreign, asked)


def test_day_bounds_with_and_without_use_tz():
    day_ = dt.date(2026, 12, 1)
    with override_settings(USE_TZ=True):
        start, end = day_bounds(day_)
    assert start == dt.datetime(2026, 11, 30, 16, tzinfo=dt.UTC) and end - start == dt.timedelta(1)
    with override_settings(USE_TZ=False, TIME_ZONE="UTC"):
        assert day_bounds(day_) == (dt.datetime(2026, 11, 30, 16), dt.datetime(2026, 12, 1, 16))
    with override_settings(USE_TZ=False, TIME_ZONE="Asia/Shanghai"):
        assert day_bounds(day_)[0] == dt.datetime(2026, 12, 1)
