"""``wxpay_reconcile`` when the bill cannot be had or trusted, and rows that are not ours.

Exit 1 means "discrepancies" to cron and monitoring: every failure to get or check the
bill must be exit 2 with one line on stderr, never a traceback (which is exit 1). An
odd ``download_url`` used to escape as a ``ValueError`` traceback. And a bill row of
another merchant, or of another sub-merchant, used to match a local return with the
same number: it must be a discrepancy.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import subprocess
import sys

import pytest
from django.test import override_settings
from django.utils import timezone

from django_wxpay_profitsharing import reconcile as reconcile_module
from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import (
    DiscrepancyKind,
    ProfitSharingReturn,
    ReconciliationRun,
    ReturnState,
)
from django_wxpay_profitsharing.wechatpay import WeChatPayClient
from django_wxpay_profitsharing.wechatpay.bills import BillDownload, BillLink

from .conftest import RECEIVER, SUB_MCHID, pending_return, unique_no, wxpay_config
from .scale_worker import ROOT, worker_env
from .test_bills import HEADER
from .test_reconcile import OTHER_SUB, made_at_wechat, run_command, succeeded, today

pytestmark = pytest.mark.django_db(transaction=True)


def assert_no_result(status: int, out: str, *words: str) -> str:
    """Exit 2, "no result", and the reason as one line naming ``words``."""
    assert status == 2, out
    assert "no result" in out
    reason = out.split("no result.", 1)[1].strip()
    assert reason and "\n" not in reason and "Traceback" not in reason, reason
    for word in words:
        assert word in reason, reason
    return reason


@pytest.fixture
def a_day(configured, order):
    return [succeeded(order, 100)]


# ------------------------------------------------------------------ exit 2, one line
@pytest.mark.parametrize(
    "url",
    [
        "{base}/v3/billdownload/file?token=a b",
        "{base}/v3/billdownload/file?token=\u7968",
        "{base}/v3/billdownload/file?token=x\r\nX-Evil: 1",
        "http://[::1/v3/billdownload/file",
        "https://evil.example/v3/billdownload/file?token=x",
        "{base}:99999/v3/billdownload/file",
        "not a url",
        "",
    ],
    ids=["space", "non-ascii", "crlf", "bad-ipv6", "elsewhere", "bad-port", "words", "empty"],
)
def test_an_odd_download_url_is_exit_2_never_a_traceback(a_day, configured, monkeypatch, url):
    link = BillLink(url.format(base=configured.base_url), "SHA1", "0" * 40)
    monkeypatch.setattr(WeChatPayClient, "apply_bill", lambda *args, **kwargs: link)
    before = len(configured.calls())
    assert_no_result(*run_command("--date", today().isoformat()), "download_url")
    assert len(configured.calls()) == before  # nothing was sent anywhere
    assert ReconciliationRun.objects.count() == 0


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (("reset", "bill_download"), ("could not be checked", "failed")),
        (("http_500", "bill_download"), ("could not be checked", "500")),
        (("reset", "bills"), ("could not be had",)),
        (("bad_signature", "bills"), ("could not be had",)),
        (("http_500", "bills"), ("could not be had", "500")),
    ],
)
def test_transport_and_api_failures_are_exit_2(a_day, configured, fault, words):
    name, endpoint = fault
    configured.set_fault(name, endpoint=endpoint, count=5)
    assert_no_result(*run_command("--date", today().isoformat()), *words)
    assert ReconciliationRun.objects.count() == 0


def test_a_hash_mismatch_a_bill_too_large_and_a_full_disk_are_exit_2(
    a_day, configured, monkeypatch
):
    date = today().isoformat()
    configured.corrupt_next_bill(hash=True)
    assert_no_result(*run_command("--date", date), "SHA1")
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(configured, BILL_MAX_BYTES=100)):
        reset_client()
        assert_no_result(*run_command("--date", date), "larger than")
    reset_client()

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(BillDownload, "write", full)
    assert_no_result(*run_command("--date", date), "could not be checked", "No space left")
    assert ReconciliationRun.objects.count() == 0


def serve_bill(monkeypatch, plain: bytes) -> None:
    """The download answers ``plain`` (GZIP, its hash right): a bill WeChat Pay signed for."""

    def download(self, link, hash_value=None, *, max_size, directory=None, **kwargs):
        bill = BillDownload(hashlib.sha1(plain).hexdigest(), max_size, directory)
        bill.write(gzip.compress(plain))
        bill.verify()
        return bill

    monkeypatch.setattr(WeChatPayClient, "download_bill_file", download)


def bill_of(*rows: tuple[str, str, str, str], splits: int = 0) -> bytes:
    """A bill of return rows (initiator, sub_mchid, out_return_no, yuan), in the layout."""
    lines = [HEADER]
    total = 0
    for initiator, sub, number, yuan in rows:
        total += round(float(yuan) * 100)
        lines.append(
            f"2026-12-01 11:00:00,{initiator},{RECEIVER},{sub},4200,3008,P1,,3005,{number},"
            f"MERCHANT_ID,{RECEIVER},{yuan},回退,成功,退款"
        )
    lines += [
        "分账总笔数,分账总金额(元),回退总笔数,回退总金额(元)",
        f"0,0.00,{len(rows)},{total / 100:.2f}",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def test_a_bill_the_parser_refuses_and_an_unforeseen_error_are_exit_2(
    a_day, configured, monkeypatch
):
    date = today().isoformat()
    serve_bill(
        monkeypatch, bill_of(("1", SUB_MCHID, "R1", "1.00")).replace(b"1.00\r\n", b"2.00\r\n")
    )
    assert_no_result(*run_command("--date", date), "summary says")
    serve_bill(monkeypatch, HEADER.replace("分账发起方", "发起人").encode() + b"\r\n")
    assert_no_result(*run_command("--date", date), "分账发起方")

    def broken(*args, **kwargs):
        raise RuntimeError("a bug\nover two lines")

    serve_bill(monkeypatch, bill_of(("1", SUB_MCHID, "R1", "1.00")))
    monkeypatch.setattr(reconcile_module, "_compare_bill", broken)
    assert_no_result(*run_command("--date", date), "unexpected RuntimeError: a bug over two lines")
    assert ReconciliationRun.objects.count() == 0


@pytest.mark.real_simulator
@pytest.mark.parametrize("failure", ["hash", "reset"])
def test_from_a_shell_exit_2_and_one_line_on_stderr(a_day, configured, failure):
    """As cron runs it: a process, its exit status and its stderr."""
    if failure == "hash":
        configured.corrupt_next_bill(hash=True)
    else:
        configured.set_fault("reset", endpoint="bill_download", count=1)
    command = [sys.executable, "-m", "django", "wxpay_reconcile", "--skip-checks"]
    command += ["--date", today().isoformat()]
    env = worker_env(wxpay_config(configured), DJANGO_SETTINGS_MODULE="tests.settings")
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("CommandError: the bill could"), done.stderr
    assert "no result" in done.stdout


# ------------------------------------------------------- rows that are not ours
def test_a_row_of_another_sub_merchant_matches_no_local_return(configured, order):
    """The bill of every sub-merchant holds X under sub-merchant A; X here is B's."""
    other = configured.seed_order(unique_no("P"), sub_mchid=OTHER_SUB, amount=300)
    number = unique_no("X")
    made_at_wechat(other, number, 30, sub_mchid=OTHER_SUB)
    mine = pending_return(order, amount=30, out_return_no=number, submit=False)
    ProfitSharingReturn.objects.filter(pk=mine.pk).update(
        state=ReturnState.SUCCEEDED, result="SUCCESS", finish_time=timezone.now()
    )
    status, out = run_command("--date", today().isoformat())
    assert status == 1, out
    run = ReconciliationRun.objects.get()
    assert run.matched == 0
    kinds = sorted(d.kind for d in run.discrepancies.all())
    assert kinds == [DiscrepancyKind.MERCHANT_DIFFERS, DiscrepancyKind.MISSING_AT_WECHAT]
    assert f"sub-merchant {OTHER_SUB}" in out and f"here for sub-merchant {SUB_MCHID}" in out
    # Asked for sub-merchant A alone: still no match for B's return.
    status, out = run_command("--date", today().isoformat(), "--sub-mchid", OTHER_SUB)
    assert status == 1 and ReconciliationRun.objects.get(sub_mchid=OTHER_SUB).matched == 0


def test_rows_of_another_initiator_or_sub_merchant_are_discrepancies(
    a_day, configured, monkeypatch
):
    """A bill holding rows of another merchant, or of a sub-merchant not asked for."""
    mine = a_day[0]
    mchid = configured.credentials["mchid"]
    number = mine.out_return_no
    for initiator, sub, asked in (
        ("1900000999", SUB_MCHID, []),  # another merchant's return with our number
        ("", SUB_MCHID, []),  # no initiator at all
        (mchid, OTHER_SUB, ["--sub-mchid", SUB_MCHID]),  # in the bill of the one asked
    ):
        serve_bill(monkeypatch, bill_of((initiator, sub, number, "1.00")))
        status, out = run_command("--date", today().isoformat(), *asked)
        assert status == 1, out
        run = ReconciliationRun.objects.get(sub_mchid=asked[1] if asked else "")
        assert run.matched == 0, (initiator, sub)
        assert sorted(d.kind for d in run.discrepancies.all()) == [
            DiscrepancyKind.MERCHANT_DIFFERS,
            DiscrepancyKind.MISSING_AT_WECHAT,
        ]
    # The same row as ours matches: the rule is the merchant, not the layout.
    serve_bill(monkeypatch, bill_of((mchid, SUB_MCHID, number, "1.00")))
    status, out = run_command("--date", today().isoformat())
    assert status == 0, out
    assert ReconciliationRun.objects.get(sub_mchid="").matched == 1


def test_yesterday_without_a_bill_still_reports_exit_0(configured):
    status, out = run_command("--date", (today() - dt.timedelta(days=1)).isoformat())
    assert status == 0 and "none: no bill for that day" in out
