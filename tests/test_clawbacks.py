"""Clawing back an order against the simulator: the ledger, allocation and WeChat's rules."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from django_wxpay_profitsharing import clawbacks, ledger, polling, services
from django_wxpay_profitsharing.models import (
    ClawbackState,
    ProfitSharingClawback,
    ProfitSharingEvent,
    ProfitSharingReturn,
    ReturnState,
)

from .conftest import SUB_MCHID, requires_postgres, unique_no

pytestmark = pytest.mark.django_db(transaction=True)

A, B, C = "86693852", "86693853", "86693854"
PERSON = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
FIVE_DAYS = 5 * 24 * 3600 + 60


def seed(sim, receivers, **kwargs):
    return sim.seed_order(unique_no("P"), receivers=receivers, sub_mchid=SUB_MCHID, **kwargs)


def three_way(sim):
    """Two merchant receivers and a personal one, as the demo seeds."""
    return seed(
        sim,
        [
            {"account": A, "amount": 300},
            {"account": B, "amount": 100},
            {"account": PERSON, "amount": 600, "type": "PERSONAL_OPENID"},
        ],
    )


def fields(order, **extra):
    values = {
        "out_clawback_no": unique_no("C"),
        "out_order_no": order["out_order_no"],
        "transaction_id": order["transaction_id"],
        "sub_mchid": SUB_MCHID,
        "description": "用户退款",
    }
    values.update(extra)
    return values


def posts(sim):
    return [c for c in sim.calls() if c["method"] == "POST"]


def parts(clawback):
    return {r.return_mchid: r.amount for r in clawback.returns.all()}


def test_sync_mirrors_the_order_and_its_ledger(configured):
    order = three_way(configured)
    mirror = clawbacks.sync_order(
        out_order_no=order["out_order_no"],
        transaction_id=order["transaction_id"],
        sub_mchid=SUB_MCHID,
    )
    assert mirror.is_finished and mirror.order_id and mirror.synced_at
    figures = {
        e.account: (e.shared, e.returnable, e.blocked)
        for e in ledger.order_ledger(mirror, mirror.synced_at)
    }
    assert figures == {
        A: (300, 300, None),
        B: (100, 100, None),
        PERSON: (600, 0, ledger.Blocked.PERSONAL),
    }


def test_proportional_allocation_sums_to_the_fen(configured):
    order = three_way(configured)
    clawback, created = clawbacks.create_or_get_clawback(fields(order, amount=101))
    assert created and clawback.amount == 101 and clawback.state == ClawbackState.OPEN
    shares = parts(clawback)
    assert sum(shares.values()) == 101 and PERSON not in shares
    assert shares == {A: 76, B: 25}  # 75.75 and 25.25: the larger remainder gets the fen
    assert posts(configured) == []  # drafts: nothing sent yet


def test_everything_returnable_when_no_amount_is_given(configured):
    order = three_way(configured)
    clawback, _ = clawbacks.create_or_get_clawback(fields(order))
    assert clawback.amount == 400 and parts(clawback) == {A: 300, B: 100}


def test_in_order_allocation_takes_the_accounts_in_turn(configured):
    order = three_way(configured)
    clawback, _ = clawbacks.create_or_get_clawback(
        fields(order, amount=350, policy="in_order", accounts=[B, A])
    )
    assert parts(clawback) == {B: 100, A: 250}


def test_asking_more_than_returnable_is_a_field_error_and_nothing_is_made(configured):
    order = three_way(configured)
    with pytest.raises(ValidationError) as info:
        clawbacks.create_or_get_clawback(fields(order, amount=401))
    assert set(info.value.message_dict) == {"amount"}
    assert not ProfitSharingClawback.objects.exists() and not ProfitSharingReturn.objects.exists()
    assert posts(configured) == []


def test_a_personal_account_cannot_be_named_in_order(configured):
    order = three_way(configured)
    with pytest.raises(ValidationError) as info:
        clawbacks.create_or_get_clawback(fields(order, policy="in_order", accounts=[PERSON]))
    assert set(info.value.message_dict) == {"accounts"}


def test_the_same_clawback_again_is_the_same_and_other_fields_conflict(configured):
    order = three_way(configured)
    given = fields(order, amount=200)
    first, created = clawbacks.create_or_get_clawback(given)
    again, created_again = clawbacks.create_or_get_clawback(given)
    assert created and not created_again and again.pk == first.pk
    assert ProfitSharingReturn.objects.count() == 2
    with pytest.raises(clawbacks.ClawbackConflict) as info:
        clawbacks.create_or_get_clawback({**given, "amount": 201})
    assert info.value.differences == ["requested_amount"]


def test_a_clawback_completes_and_signals_once(configured, signal_log):
    from django_wxpay_profitsharing import signals

    seen = []

    def receiver(sender, instance, event_id, **kwargs):
        seen.append((sender, instance.pk, instance.state, event_id))

    order = three_way(configured)
    signals.clawback_completed.connect(receiver, weak=False)
    try:
        clawback, _ = clawbacks.create_or_get_clawback(fields(order, amount=300))
        for pk in clawbacks.submit_clawback(clawback):
            services.submit(pk)
        polling.process_due()
    finally:
        signals.clawback_completed.disconnect(receiver)
    clawback.refresh_from_db()
    assert clawback.state == ClawbackState.COMPLETED
    assert [(s, pk, state) for s, pk, state, _ in seen] == [
        (ProfitSharingClawback, clawback.pk, "completed")
    ]
    events = ProfitSharingEvent.objects.filter(clawback=clawback)
    assert list(events.values_list("signal", flat=True)) == ["clawback_completed"]
    assert Counter(signal_log.names()) == {"return_succeeded": 2, "return_finalized": 2}


def test_a_return_beyond_the_ledger_is_refused_before_sending(configured):
    order = three_way(configured)
    clawbacks.sync_order(
        out_order_no=order["out_order_no"],
        transaction_id=order["transaction_id"],
        sub_mchid=SUB_MCHID,
    )
    base = {"sub_mchid": SUB_MCHID, "out_order_no": order["out_order_no"], "description": "x"}
    with pytest.raises(ValidationError) as info:
        services.create_return(base, return_mchid=A, amount=301, submit=True)
    assert set(info.value.message_dict) == {"amount"}
    with pytest.raises(ValidationError) as info:
        services.create_return(base, return_mchid="1234567", amount=1, submit=True)
    assert set(info.value.message_dict) == {"return_mchid"}
    services.create_return(base, return_mchid=A, amount=200, submit=True)
    with pytest.raises(ValidationError):  # the pending 200 is reserved
        services.create_return(base, return_mchid=A, amount=101, submit=True)
    assert posts(configured) == []


def test_the_51st_return_of_a_sharing_order_is_refused_locally(configured):
    order = seed(configured, [{"account": A, "amount": 10_000}])
    clawbacks.sync_order(
        out_order_no=order["out_order_no"],
        transaction_id=order["transaction_id"],
        sub_mchid=SUB_MCHID,
    )
    base = {"sub_mchid": SUB_MCHID, "out_order_no": order["out_order_no"], "description": "x"}
    for _ in range(ledger.MAX_RETURNS_PER_ORDER):
        services.create_return(base, return_mchid=A, amount=1)
    with pytest.raises(ValidationError) as info:
        services.create_return(base, return_mchid=A, amount=1)
    assert set(info.value.message_dict) == {"out_order_no"}
    assert ProfitSharingReturn.objects.count() == 50 and posts(configured) == []


def test_short_balance_waits_for_a_top_up_then_the_same_request_succeeds(configured):
    order = seed(configured, [{"account": A, "amount": 500}])
    configured.set_receiver_balance(A, 100)
    clawback, _ = clawbacks.create_or_get_clawback(fields(order, amount=300), submit=True)
    [row] = clawback.returns.all()
    row = services.submit(row)
    assert row.state == ReturnState.PROCESSING and row.awaiting_topup
    assert "可用余额不足" in row.last_error_message
    assert polling.process_due()["processing"] == 1  # re-sent, still short
    row.refresh_from_db()
    assert row.state == ReturnState.PROCESSING and row.awaiting_topup
    configured.set_receiver_balance(A, 1000)  # the receiver tops up
    row = clawbacks.retry_now(row)
    assert row.state == ReturnState.SUCCEEDED and not row.awaiting_topup
    sent = [c for c in posts(configured) if c.get("out_return_no") == row.out_return_no]
    assert len(sent) == 3 and len({c["body_sha256"] for c in sent}) == 1  # identical
    assert ProfitSharingReturn.objects.count() == 1
    clawback.refresh_from_db()
    assert clawback.state == ClawbackState.COMPLETED


def test_time_out_closed_then_claw_back_again(configured, signal_log):
    order = seed(configured, [{"account": A, "amount": 500}])
    configured.set_receiver_balance(A, 0)
    clawback, _ = clawbacks.create_or_get_clawback(fields(order, amount=200), submit=True)
    [first] = clawback.returns.all()
    first = services.submit(first)
    assert first.awaiting_topup
    configured.advance_clock(FIVE_DAYS)
    first = clawbacks.retry_now(first)
    assert first.state == ReturnState.FAILED and first.fail_reason == "TIME_OUT_CLOSED"
    clawback.refresh_from_db()
    assert clawback.state == ClawbackState.INCOMPLETE
    configured.set_receiver_balance(A, None)
    second = clawbacks.claw_back_again(first, submit=True)
    assert second.out_return_no != first.out_return_no and second.replaces_id == first.pk
    assert second.amount == 200 and second.clawback_id == clawback.pk
    clawback.refresh_from_db()
    assert clawback.state == ClawbackState.OPEN
    assert services.submit(second).state == ReturnState.SUCCEEDED
    clawback.refresh_from_db()
    assert clawback.state == ClawbackState.COMPLETED
    with pytest.raises(ValidationError):
        clawbacks.claw_back_again(first)  # replaced already
    names = Counter(
        ProfitSharingEvent.objects.filter(clawback=clawback).values_list("signal", flat=True)
    )
    assert names == {"clawback_incomplete": 1, "clawback_completed": 1}


def test_claw_back_again_reads_the_order_as_wechat_has_it_now(configured):
    """The order is synced before the new return: its amount is what WeChat Pay allows now."""
    order = seed(configured, [{"account": A, "amount": 500}])
    configured.set_receiver_balance(A, 0)
    clawback, _ = clawbacks.create_or_get_clawback(fields(order, amount=200), submit=True)
    [first] = clawback.returns.all()
    services.submit(first)
    configured.advance_clock(FIVE_DAYS)
    first = clawbacks.retry_now(first)
    assert first.fail_reason == "TIME_OUT_CLOSED"
    configured.set_receiver_balance(A, None)
    # Meanwhile WeChat Pay's order changed: A's line now holds 150 fen (the mirror: 500).
    configured.seed_order(order["out_order_no"], receivers=[{"account": A, "amount": 150}],
                          sub_mchid=SUB_MCHID, transaction_id=order["transaction_id"])  # fmt: skip
    second = clawbacks.claw_back_again(first, submit=True)
    assert second.amount == 150
    assert services.submit(second).state == ReturnState.SUCCEEDED


def test_a_refusal_wechat_nevertheless_holds_follows_wechat(configured):
    """Queried once before rejecting: a refused create that WeChat knows is not rejected."""
    order = seed(configured, [{"account": A, "amount": 500}])
    base = {"sub_mchid": SUB_MCHID, "out_order_no": order["out_order_no"], "description": "x"}
    configured.set_receiver_balance(A, 0)
    row = services.submit(services.create_return(base, return_mchid=A, amount=100, submit=True))
    gets = [c for c in configured.calls() if c["method"] == "GET"]
    assert row.state == ReturnState.PROCESSING and row.awaiting_topup and gets == []
    over = services.submit(services.create_return(base, return_mchid=A, amount=450, submit=True))
    assert over.state == ReturnState.REJECTED  # 剩余可回退的金额不足, and WeChat does not hold it
    assert "剩余可回退的金额不足" in over.last_error_message
    confirm = [c for c in configured.calls() if c["method"] == "GET"]
    assert len(confirm) == 1 and confirm[0].get("out_return_no") == over.out_return_no


def test_body_sha256_is_what_was_sent(configured):
    order = seed(configured, [{"account": A, "amount": 500}])
    row = services.submit(
        services.create_return(
            sub_mchid=SUB_MCHID,
            out_order_no=order["out_order_no"],
            return_mchid=A,
            amount=10,
            description="hash",
            submit=True,
        )
    )
    [call] = [c for c in posts(configured) if c.get("out_return_no") == row.out_return_no]
    body = row.to_request().body()
    import json

    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    assert call["body_sha256"] == hashlib.sha256(raw).hexdigest()


@requires_postgres
def test_two_clawbacks_racing_for_one_receiver_never_over_reserve(configured):
    order = seed(configured, [{"account": A, "amount": 300}])
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def claw(number: str) -> None:
        try:
            barrier.wait()
            clawbacks.create_or_get_clawback(fields(order, out_clawback_no=number, amount=200))
            outcomes.append("made")
        except ValidationError as exc:
            outcomes.append(",".join(exc.message_dict))
        finally:
            connection.close()

    threads = [threading.Thread(target=claw, args=(unique_no("CR"),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["amount", "made"]
    reserved = sum(ProfitSharingReturn.objects.values_list("amount", flat=True))
    assert reserved == 200 <= 300
