"""The fault matrix: every fault the simulator injects, 200 returns each, nothing lost.

Why a matrix on top of ``test_service_faults.py``: the small tests show that *one*
fault on *one* call is survived. Money is lost in the combinations: a fault on a
fraction of the calls while other returns of the same order are in flight, the
create of one return retried after its sibling took the remaining amount, a refresh
that fails after the submit succeeded, a certificate rotated between two calls.
Here each fault hits a random ~30 % of the create *and* query calls (fewer for the
slow timeouts) of 200 returns, then the faults clear and the poller runs to the end.

For every fault the test asserts, against the simulator's books (its truth):

- no return lost: every row is final, the simulator holds a return for every row
  that is not ``rejected`` and none for the rejected ones, and none we do not know;
- each row in the simulator's final state (``SUCCESS``/``FAILED``), with its amount
  and WeChat return id;
- amounts equal the simulator's ledger: per order and receiver, what the simulator
  counts as returned equals the sum of our succeeded rows;
- one signal per final return (its state's signal and ``return_finalized``, once);
- no unverified response used: the call that made a row final answered 2xx with a
  good signature and a fresh timestamp at the simulator.

A table (fault, returns, calls, retries, final states, re-posts, duplicates,
unverified answers used) is printed and written to ``test-output/fault_matrix.txt``
for the closing note.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from django.test import override_settings

from django_wxpay_profitsharing import polling, services
from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import (
    ProfitSharingReturn,
    ProfitSharingReturnCall,
    ReturnState,
)
from wxpay_simulator.testing.inprocess import InProcessSimulator

from .conftest import RECEIVER, SUB_MCHID, at_scale, unique_no, wxpay_config

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

OUTPUT = Path(__file__).resolve().parent.parent / "test-output" / "fault_matrix.txt"
ABNORMAL_RECEIVER = "86693853"  # marked abnormal: its returns end FAILED/ACCOUNT_ABNORMAL
#: Per fault: 50 orders in the first pass, 30 in the later ones (``conftest.at_scale``).
ORDERS = at_scale(50, 30)
RETURNS = 4 * ORDERS  # per order: 3 x 400 fen of 1000 to RECEIVER (one too many), 1 to ABNORMAL
PROCESSING_SECONDS = 0.4  # every create answers PROCESSING first, so refresh is exercised
POLL_DEADLINE = 90.0
UNVERIFIED_FAULTS = {"bad_signature", "stale_timestamp"}
#: faults after which the call has to be made again (latency and processing need none)
REDO_FAULTS = {"timeout_before", "timeout_after", "http_500", "reset", "rate_limit"}
REDO_FAULTS |= UNVERIFIED_FAULTS

# fault -> (parameters, ratio of the matching calls it hits, endpoint)
FAULTS = {
    "latency": ({"ms": 100}, 0.3, "any"),
    # Each hit costs a full read timeout (1 s) on SQLite's one-at-a-time runs: fewer hits.
    "timeout_before": ({"seconds": 1.5}, 0.03, "any"),
    "timeout_after": ({}, 0.3, "any"),
    "http_500": ({}, 0.3, "any"),
    "reset": ({}, 0.3, "any"),
    "rate_limit": ({"qps": 0}, 0.3, "any"),
    "bad_signature": ({}, 0.3, "any"),
    "stale_timestamp": ({"seconds": 900}, 0.3, "any"),
    "processing": ({"seconds": 1.5}, 0.3, "create"),
    "rotate_certificate": ({}, None, "any"),  # rotated every 40 returns, see below
}
STATE_SIGNAL = {
    ReturnState.SUCCEEDED: "return_succeeded",
    ReturnState.FAILED: "return_failed",
    ReturnState.REJECTED: "return_rejected",
}
RESULT_STATE = {"SUCCESS": ReturnState.SUCCEEDED, "FAILED": ReturnState.FAILED}

_table: dict[str, dict] = {}


@pytest.fixture(scope="module", autouse=True)
def fault_table(request):
    """Print and write the table once every fault has run (also when some failed)."""
    yield _table
    if not _table:
        return
    from django.db import connection

    text = f"database: {connection.vendor}\n" + render_table(_table)
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(text + "\n", encoding="utf-8")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n" + text)


def render_table(rows: dict[str, dict]) -> str:
    head = (
        "fault",
        "returns",
        "calls",
        "faulted",
        "retries",
        "final states (S/F/R)",
        "re-posts",
        "duplicates",
        "unverified used (2xx/4xx)",
        "seconds",
    )
    lines = []
    for fault in FAULTS:
        if fault not in rows:
            continue
        r = rows[fault]
        lines.append(
            (
                fault,
                str(r["returns"]),
                str(r["calls"]),
                str(r["faulted"]),
                str(r["retries"]),
                f"{r['succeeded']}/{r['failed']}/{r['rejected']}",
                str(r["reposts"]),
                str(r["duplicates"]),
                f"{r['unverified_2xx']}/{r['unverified_4xx']}",
                f"{r['seconds']:.1f}",
            )
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]

    def fmt(cells):
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([fmt(head), rule, *(fmt(line) for line in lines)])


@pytest.fixture(scope="module")
def cert_simulator(tmp_path_factory):
    """Certificate mode: the only mode where a platform certificate can rotate."""
    with InProcessSimulator(tmp_path_factory.mktemp("matrix-certsim"), mode="certificate") as sim:
        yield sim


def seed(sim) -> list[tuple[str, str, int]]:
    """ORDERS orders of 1000 fen to each receiver; 4 returns each (number, account, fen)."""
    orders, plan = [], []
    for _ in range(ORDERS):
        number = unique_no("PM")
        orders.append(
            {
                "out_order_no": number,
                "sub_mchid": SUB_MCHID,
                "receivers": [
                    {"type": "MERCHANT_ID", "account": RECEIVER, "amount": 1000},
                    {"type": "MERCHANT_ID", "account": ABNORMAL_RECEIVER, "amount": 1000},
                ],
            }
        )
        # 3 x 400 > 1000: whichever of the three WeChat sees last is refused.
        plan += [(number, RECEIVER, 400)] * 3 + [(number, ABNORMAL_RECEIVER, 100)]
    assert sim.seed_orders(orders) == ORDERS
    sim.mark_receiver(ABNORMAL_RECEIVER, abnormal=True)
    return plan


def create_rows(plan) -> list[int]:
    return [
        services.create_return(
            sub_mchid=SUB_MCHID,
            out_order_no=order_no,
            return_mchid=account,
            amount=amount,
            description="fault matrix",
            submit=True,
        ).pk
        for order_no, account, amount in plan
    ]


def open_pks(pks=None) -> list[int]:
    rows = ProfitSharingReturn.objects.open()
    if pks is not None:
        rows = rows.filter(pk__in=pks)
    return list(rows.values_list("pk", flat=True))


def run_under_fault(sim, fault, pks):
    """Submit every row, refresh the processing ones, one poll: all with the fault on."""
    params, ratio, endpoint = FAULTS[fault]
    if fault == "rotate_certificate":
        # A rotation between batches: the client must fetch the new certificate.
        for start in range(0, len(pks), 40):
            sim.set_fault("rotate_certificate")
            services.run_many(pks[start : start + 40], "submit")
    else:
        sim.set_fault(fault, endpoint=endpoint, ratio=ratio, **params)
        services.run_many(pks, "submit")
    sim.advance_clock(PROCESSING_SECONDS)
    services.run_many(open_pks(pks), "refresh")
    polling.process_due()


def poll_to_the_end(sim, pks):
    """The cron job with the faults gone: ``process_due`` until nothing is open.

    Between two passes 0.1 s passes at the simulator, so long processing ends.
    """
    deadline = time.monotonic() + POLL_DEADLINE
    while open_pks(pks) and time.monotonic() < deadline:
        polling.process_due()
        sim.advance_clock(0.1)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_matrix(request, fault, signal_log):
    sim = request.getfixturevalue("cert_simulator" if fault == "rotate_certificate" else "sim")
    sim.reset()
    sim.configure(processing_seconds=PROCESSING_SECONDS, latency_ms=0, qps_limit=0)
    config = wxpay_config(sim, TIMEOUT=(1, 1), POOL_SIZE=8, CERTIFICATE_REFRESH_INTERVAL=0)
    if fault == "rotate_certificate":
        config.pop("WECHATPAY_PUBLIC_KEY", None)
        config.pop("WECHATPAY_PUBLIC_KEY_ID", None)
    started = time.monotonic()
    try:
        with override_settings(WXPAY_PROFITSHARING=config):
            pks = create_rows(seed(sim))
            assert len(pks) == RETURNS
            run_under_fault(sim, fault, pks)
            sim.clear_faults()
            poll_to_the_end(sim, pks)
    finally:
        sim.clear_faults()
        reset_client()
    seconds = time.monotonic() - started

    rows = {row.pk: row for row in ProfitSharingReturn.objects.filter(pk__in=pks)}
    truth = {r["out_return_no"]: r for r in sim.returns()}
    sim_calls = [c for c in sim.calls() if c["endpoint"] != "other"]
    by_request_id = {c["request_id"]: c for c in sim_calls}

    # No return lost, none unknown, all final.
    assert len(rows) == RETURNS
    still_open = [r.out_return_no for r in rows.values() if not r.is_final]
    assert not still_open, f"{len(still_open)} returns never reached a final state"
    numbers = {r.out_return_no for r in rows.values()}
    assert set(truth) <= numbers, f"returns at WeChat we do not know: {set(truth) - numbers}"

    # Each row in the simulator's true final state, with its amount and return id.
    for row in rows.values():
        true = truth.get(row.out_return_no)
        if row.state == ReturnState.REJECTED:
            assert true is None, f"{row.out_return_no} rejected but exists at WeChat: {true}"
            assert row.last_error_code == "INVALID_REQUEST", row.last_error_code
            continue
        assert true is not None, f"{row.out_return_no} is {row.state} but unknown to WeChat"
        assert RESULT_STATE.get(true["result"]) == row.state, (row.out_return_no, true)
        assert (true["amount"], true["return_id"]) == (row.amount, row.return_id)
        assert (true.get("fail_reason") or "") == row.fail_reason

    # Amounts equal the simulator's ledger, per order and receiver.
    ours = defaultdict(int)
    for row in rows.values():
        if row.state == ReturnState.SUCCEEDED:
            ours[(row.out_order_no, row.return_mchid)] += row.amount
    for order_no in {row.out_order_no for row in rows.values()}:
        for receiver in sim.order(order_no)["receivers"]:
            key = (order_no, receiver["account"])
            assert receiver["returned"] == ours[key], (key, receiver, ours[key])

    # One signal per final return: its state's signal and return_finalized, once each.
    for row in rows.values():
        assert signal_log.names(row.pk) == [STATE_SIGNAL[row.state], "return_finalized"]
    duplicates = len(signal_log.events) - 2 * RETURNS

    # No unverified response used: the call that made each row final was verified.
    unverified_2xx = unverified_4xx = 0
    calls = defaultdict(list)
    for call in ProfitSharingReturnCall.objects.filter(profit_sharing_return__in=pks):
        calls[call.profit_sharing_return_id].append(call)
    for pk, row in rows.items():
        last = max(calls[pk], key=lambda c: c.pk)
        answered = by_request_id.get(last.request_id)
        assert answered is not None, (row.out_return_no, last.request_id)
        if answered["fault"] in UNVERIFIED_FAULTS:
            if row.state == ReturnState.REJECTED:
                unverified_4xx += 1  # error answers are not verified: see the report
            else:
                unverified_2xx += 1
    assert unverified_2xx == 0

    # The fault really happened (or the matrix proves nothing).
    faulted = Counter(c["fault"] for c in sim_calls if c["fault"])
    if fault == "rotate_certificate":
        rotations = -(-RETURNS // 40)
        downloads = [c for c in sim_calls if c["endpoint"] == "certificates"]
        assert len(downloads) >= rotations, "the client never fetched a rotated certificate"
        faulted[fault] = rotations
    else:
        assert faulted[fault] >= 5 * ORDERS // 50, faulted  # 5 at full size

    # Creates that reached WeChat's books (an identical re-post is absorbed by idempotency).
    posts = Counter(
        c["out_return_no"]
        for c in sim_calls
        if c["endpoint"] == "create"
        and c["status"] is not None
        and c["fault"] not in ("http_500", "rate_limit")
    )
    states = Counter(row.state for row in rows.values())
    _table[fault] = {
        "returns": RETURNS,
        "calls": len(sim_calls),
        "faulted": sum(faulted.values()),
        "retries": sum(n for name, n in faulted.items() if name in REDO_FAULTS),
        "succeeded": states[ReturnState.SUCCEEDED],
        "failed": states[ReturnState.FAILED],
        "rejected": states[ReturnState.REJECTED],
        "reposts": sum(n - 1 for n in posts.values()),
        "duplicates": duplicates,
        "unverified_2xx": unverified_2xx,
        "unverified_4xx": unverified_4xx,
        "seconds": seconds,
    }
    assert duplicates == 0
