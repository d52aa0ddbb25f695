"""``wxpay_refund_status`` (one job, looked at now, printed) and the poller moving refund jobs,
against the simulator."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from django_wxpay_profitsharing import desk
from django_wxpay_profitsharing.models import Payment, RefundJob
from django_wxpay_profitsharing.refund_states import OperatorAction, RefundJobState

from .conftest import SUB_MCHID, wxpay_config
from .test_refund_jobs import refund, split_payment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(sim):
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim)):
        yield sim


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_status_looks_now_and_prints_the_job(site):
    site.configure(processing_seconds=600)
    job = refund(site.seed_payment(10000, sub_mchid=SUB_MCHID), 3000, number="20240001")
    assert job.state == RefundJobState.FOLLOWING
    held = run("wxpay_refund_status", "20240001", "--no-refresh")
    assert "following (Following the refund)" in held and "status=PROCESSING" in held
    site.advance_clock(601)
    output = run("wxpay_refund_status", "20240001")  # all digits: a number, never a pk
    assert "succeeded (Refunded)" in output, output
    assert "3000 fen (¥30.00)" in output and job.transaction_id in output
    assert "first step: The refund fits the payment's frozen money" in output
    attempt = RefundJob.objects.get(pk=job.pk).refunds.get()
    assert f"refund 1: 20240001 ¥30.00 refund_id={attempt.refund_id} status=SUCCESS" in output
    assert "channel=ORIGINAL" in output
    by_pk = run("wxpay_refund_status", "--pk", str(job.pk), "--no-refresh")
    assert "succeeded (Refunded)" in by_pk


def test_status_shows_the_plan_clawbacks_and_a_later_attempt(site):
    payment, _order = split_payment(site)
    site.set_merchant(SUB_MCHID, balance=0, refund_when_short="hold")
    job = refund(payment, 10000)
    site.advance_clock(7 * 86400 + 60)
    assert "closed (Closed by WeChat Pay)" in run("wxpay_refund_status", job.out_refund_no)
    site.set_merchant(SUB_MCHID, balance=None)
    site.advance_clock(61)
    desk.act_on_refund(job, OperatorAction.TRY_AGAIN, by=None, door=desk.Door.CODE)
    output = run("wxpay_refund_status", f"{job.out_refund_no}-2")  # the attempt's number
    assert "succeeded (Refunded)" in output, output
    assert "status=CLOSED" in output and f"replaces {job.out_refund_no}" in output
    assert "from the shop's own balance: ¥10.00: shared to personal receivers" in output
    clawback = job.clawbacks.get()
    assert f"clawback {clawback.out_clawback_no}: completed ¥50.00" in output
    assert "unfrozen: ¥40.00" in output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "either an OUT_REFUND_NO or --pk"),
        (("R1", "--pk", "1"), "either an OUT_REFUND_NO or --pk"),
        (("no spaces",), "Not a valid out_refund_no"),
        (("R" * 65,), "Not a valid out_refund_no"),
        (("NOSUCHREFUND",), "No refund job with out_refund_no"),
        (("--pk", "x"), "--pk must be a row id"),
        (("--pk", "0"), "--pk must be a row id"),
        (("--pk", "99999999999999999999"), "--pk must be a row id"),
        (("--pk", "424242"), "No refund job with pk 424242"),
    ],
)
def test_bad_input_is_a_command_error(site, args, says):
    with pytest.raises(CommandError, match=says):
        run("wxpay_refund_status", *args)


def test_a_number_of_two_merchants_asks_for_the_pk(site):
    job = refund(site.seed_payment(100, sub_mchid=SUB_MCHID), 100, number="SHARED1")
    RefundJob.objects.filter(pk=job.pk).update(mchid="1900000999")  # not the default merchant
    other = RefundJob.objects.get(pk=job.pk)
    other.pk, other.mchid = None, "1900000998"
    other.payment = Payment.objects.create(mchid="1900000998", transaction_id="4200000998")
    other.save()
    with pytest.raises(CommandError, match="several merchants"):
        run("wxpay_refund_status", "SHARED1")


def test_the_poller_moves_due_refund_jobs_on(site):
    site.configure(processing_seconds=600)
    job = refund(site.seed_payment(10000, sub_mchid=SUB_MCHID), 100)
    assert job.state == RefundJobState.FOLLOWING
    site.advance_clock(601)
    output = run("wxpay_process_returns", "--once")
    assert "Moved 1 due refund job(s) on: calls 1, credentials_refused 0." in output, output
    assert RefundJob.objects.get(pk=job.pk).state == RefundJobState.SUCCEEDED
    assert "Moved 0 due refund job(s) on: calls 0" in run(
        "wxpay_process_returns", "--once", "--limit", "5"
    )
