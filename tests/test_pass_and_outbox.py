"""A poller pass bounded in time, at few queries a return; the outbox in batches, retried.

Issue 23 (a pass bounded in time, the fewest queries a return needs, the outbox after
an outage) and issue 20 item 12 (a slow receiver stalls neither the poller nor the
API) and its closing note (a receiver that raises is sent again, then waits for an
operator).
"""

from __future__ import annotations

import io
import re
import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_wxpay_profitsharing import outbox, polling, signals
from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import ProfitSharingEvent, ProfitSharingReturn, ReturnState

from .conftest import pending_return, wxpay_config
from .test_api_routes import LIST, api_user, body

pytestmark = pytest.mark.django_db(transaction=True)
TRANSACTION_CONTROL = re.compile(r"(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT)\b")


def connected(signal, receiver):
    signal.connect(receiver, weak=False)
    return receiver


def left_over_events(order, count: int) -> list[ProfitSharingEvent]:
    """``count`` succeeded returns whose events a crash left undelivered (and old enough)."""
    rows = []
    for _ in range(count):
        row = pending_return(order, 1)
        rows.append(row)
    ProfitSharingReturn.objects.filter(pk__in=[r.pk for r in rows]).update(
        state=ReturnState.SUCCEEDED, next_attempt_at=None
    )
    events = ProfitSharingEvent.objects.bulk_create(
        ProfitSharingEvent(signal="return_succeeded", previous_state="pending",
                           profit_sharing_return=row) for row in rows
    )  # fmt: skip
    ProfitSharingEvent.objects.update(created=timezone.now() - outbox.REDELIVERY_AFTER * 2)
    return events


def test_a_slow_receiver_waits_for_the_claims_and_the_pass_stays_in_its_budget(configured, order):
    """Left-overs go after the claims, within the pass's seconds; the rest next pass."""
    left_over_events(order, 6)
    due = pending_return(order, 1)
    seen: list[str] = []

    def slow(sender, instance, **kwargs):
        seen.append(instance.out_return_no)
        time.sleep(0.3)

    connected(signals.return_succeeded, slow)
    try:
        began = time.monotonic()
        summary = polling.process_due(seconds=0.5)
        elapsed = time.monotonic() - began
    finally:
        signals.return_succeeded.disconnect(slow)
    due.refresh_from_db()
    assert due.state == ReturnState.SUCCEEDED and summary["succeeded"] == 1
    assert seen[0] == due.out_return_no  # the claim's own signal first, then left-overs
    assert 1 <= summary["redelivered"] < 6  # the budget ended the left-overs' turn
    assert elapsed < 0.5 + 2 * 0.3 + 0.5  # the budget, plus the receiver running at its end
    left = ProfitSharingEvent.objects.filter(delivered_at__isnull=True)
    assert left.count() == 6 - summary["redelivered"]
    assert not left.filter(lease_until__isnull=False).exists()  # released, not held
    waiting = left.count()
    assert polling.process_due()["redelivered"] == waiting  # the next pass goes on


def test_a_raising_receiver_is_sent_again_then_left_for_an_operator(configured, order, caplog):
    calls = []

    def broken(sender, instance, event_id, **kwargs):
        calls.append(event_id)
        raise ValueError("the shop's database is down")

    connected(signals.return_succeeded, broken)
    try:
        with override_settings(
            WXPAY_PROFITSHARING=wxpay_config(configured, SIGNAL_DELIVERY_ATTEMPTS=3)
        ):
            row = pending_return(order, 1)
            polling.process_due()
            event = ProfitSharingEvent.objects.get(
                profit_sharing_return=row, signal="return_succeeded"
            )
            for sends in (1, 2, 3):
                event.refresh_from_db()
                assert event.delivered_at is None and event.attempts == sends
                assert "ValueError: the shop's database is down" in event.last_error
                assert event.lease_until > timezone.now()  # backing off
                old = timezone.now() - outbox.REDELIVERY_AFTER * 2  # a left-over, due now
                ProfitSharingEvent.objects.filter(pk=event.pk).update(lease_until=None, created=old)
                summary = polling.process_due()
            assert summary["signals_given_up"] == 1 and summary["redelivered"] == 0
            assert len(calls) == 3 and len(set(calls)) == 1  # one event, sent three times
            assert "waits for an operator" in caplog.text
            # The receiver is mended; the operator gives the event its sends again.
            signals.return_succeeded.disconnect(broken)
            call_command("wxpay_process_returns", "--retry-signals", stdout=open("/dev/null", "w"))
            event.refresh_from_db()
            assert event.delivered_at is not None and event.attempts == 0
    finally:
        signals.return_succeeded.disconnect(broken)
    # The other receiver of the same return got its own signal once, at once.
    assert (
        ProfitSharingEvent.objects.get(
            profit_sharing_return=row, signal="return_finalized"
        ).delivered_at
        is not None
    )


def test_left_overs_are_claimed_and_marked_in_batches(configured, order):
    left_over_events(order, 30)
    with CaptureQueriesContext(connection) as queries:
        assert outbox.deliver_pending() == 30
    # Select the batch, claim it, read it, mark it, and find nothing more: not 3 a event.
    assert len(queries) <= 6, [q["sql"][:80] for q in queries]
    assert not ProfitSharingEvent.objects.filter(delivered_at__isnull=True).exists()


def test_a_pass_spends_few_queries_a_return(configured, order):
    """Claim (a batch), apply (lock, calls, row, events), deliver (claim, read, mark)."""
    rows = [pending_return(order, 1) for _ in range(10)]
    with CaptureQueriesContext(connection) as queries:
        summary = polling.process_due()
    assert summary["succeeded"] == 10
    statements = [q["sql"] for q in queries if not TRANSACTION_CONTROL.match(q["sql"])]
    # Per return: lock and read it, record the call, write the outcome, write its two
    # events, claim and mark them; the claim and the pass's own reads are per batch.
    assert len(statements) <= 6 * len(rows) + 8, [q[:70] for q in statements]
    assert (
        ProfitSharingReturn.objects.filter(
            pk__in=[r.pk for r in rows], state=ReturnState.SUCCEEDED
        ).count()
        == 10
    )


def test_a_pass_claims_one_batch_at_least_then_stops_at_its_budget(configured, order):
    rows = [pending_return(order, 1) for _ in range(5)]
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(configured, PROCESS_BATCH_SIZE=2)):
        summary = polling.process_due(seconds=1e-6)
        assert summary["claimed"] == 2  # one batch, then the budget is spent
        assert polling.process_due()["claimed"] == 3  # the next pass goes on
    assert all(r.state == ReturnState.SUCCEEDED for r in ProfitSharingReturn.objects.filter(
        pk__in=[r.pk for r in rows]))  # fmt: skip


@pytest.mark.real_simulator  # the API request and the pool thread need a real server
def test_receivers_run_off_the_request_thread(sim, order):
    """An API create that submits inline answers before a slow receiver finishes."""
    done = threading.Event()
    threads: list[str] = []

    def slow(sender, instance, **kwargs):
        threads.append(threading.current_thread().name)
        time.sleep(1.0)
        done.set()

    connected(signals.return_succeeded, slow)
    try:
        with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim, TASK_BACKEND="thread")):
            client = api_user("svc-offthread")
            began = time.monotonic()
            response = client.post(LIST, body(order, out_return_no="ROFF1"), format="json")
            answered = time.monotonic() - began
            assert response.status_code == 201 and response.data["state"] == "succeeded"
            assert answered < 1.0, f"the answer waited {answered:.2f} s for the receiver"
            assert done.wait(10)
    finally:
        signals.return_succeeded.disconnect(slow)
        reset_client()
    assert threads and threads[0] != threading.current_thread().name
    assert threads[0].startswith("wxpay-ps")  # the pool's thread
    deadline = time.monotonic() + 10
    event = ProfitSharingEvent.objects.get(
        signal="return_succeeded", profit_sharing_return__out_return_no="ROFF1"
    )
    while event.delivered_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
        event.refresh_from_db()
    assert event.delivered_at is not None


@pytest.mark.parametrize(
    ("value", "message"),
    [("0", "--seconds must be more than 0"), ("soon", "--seconds must be a number")],
)
def test_the_commands_pass_budget_is_checked(value, message):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match=message):
        call_command("wxpay_process_returns", "--seconds", value)


def test_the_command_takes_a_pass_budget(configured, order):
    rows = [pending_return(order, 1) for _ in range(3)]
    out = io.StringIO()
    call_command("wxpay_process_returns", "--seconds", "5", stdout=out)
    assert "Processed 3 due return(s)" in out.getvalue() and "signals_given_up 0" in out.getvalue()
    assert all(r.state == ReturnState.SUCCEEDED for r in ProfitSharingReturn.objects.filter(
        pk__in=[r.pk for r in rows]))  # fmt: skip
