"""Reconciliation at a platform's volumes: a bill past the old 8 MiB cap, 150,000
discrepancies written in chunks (MariaDB's default ``max_allowed_packet`` is 16 MiB).

Memory staying flat up to a million rows is measured by ``bench/bench_reconcile.py``.
"""

from __future__ import annotations

import random
import re
import string

import pytest
from django.db import connection

from django_wxpay_profitsharing.clients import get_client
from django_wxpay_profitsharing.models import DiscrepancyKind, ReconciliationRun
from django_wxpay_profitsharing.reconcile import WRITE_BATCH
from django_wxpay_profitsharing.wechatpay.bills import beijing_today
from django_wxpay_profitsharing.wechatpay.exchange import MAX_BODY

from .conftest import SUB_MCHID, at_scale, wxpay_config
from .test_commands_and_checks import ids
from .test_reconcile import run_command, succeeded, today
from .test_reconcile_failures import bill_of, serve_bill

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
INTO_DISCREPANCIES = re.compile(r'\s*INSERT INTO [`"]?wxpay_profitsharing_discrepancy[`"]?\s', re.I)
#: Orders seeded per control call (each about 400 bytes of JSON; the surface takes 1 MiB).
SEED_BATCH = 1000


def random_orders(count: int, seed: int) -> list[dict]:
    """Orders whose bill rows hardly compress: about 200 bytes of GZIP per row."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits

    def text(n: int) -> str:
        return "".join(rng.choices(alphabet, k=n))

    return [
        {
            "sub_mchid": SUB_MCHID,
            "out_order_no": text(64),
            "order_id": text(64),
            "receivers": [
                {
                    "account": str(rng.randrange(10**31, 10**32)),
                    "amount": rng.randrange(1, 10**6),
                    "description": text(80),
                }
            ],
        }
        for _ in range(count)
    ]


@pytest.mark.real_simulator  # a real socket, through the transport's real caps
@pytest.mark.timeout(600)
@pytest.mark.first_pass_only  # the transport's cap: no database changes how a bill streams
def test_a_bill_over_the_old_8_mib_cap_through_the_command(configured, order):
    """The transport refused any answer over 8 MiB: a bill of ~45,000 rows, exit 2."""
    mine = [succeeded(order, 100), succeeded(order, 250)]
    orders = random_orders(48_000, seed=20)
    for start in range(0, len(orders), SEED_BATCH):
        configured.seed_orders(orders[start : start + SEED_BATCH])
    client = get_client()
    with client.download_bill_file(client.apply_bill(beijing_today(client.clock()))) as bill:
        sent = bill.file.seek(0, 2)
    assert sent > MAX_BODY, f"the bill is {sent} bytes as sent: not past the old cap"

    status, out = run_command("--date", today().isoformat())
    assert status == 0, out[-2000:]
    run = ReconciliationRun.objects.get()
    rows = 1 + len(orders) + len(mine)  # the fixture's order, the seeded ones, the returns
    assert (run.rows, run.return_rows, run.matched, run.discrepancy_count) == (rows, 2, 2, 0)
    assert len(run.hash_value) == 40


def test_150000_discrepancies_are_written_in_chunks_and_listed_in_part(
    configured, order, monkeypatch
):
    """One INSERT of 150,000 rows is beyond MariaDB's default packet: chunks of 1000.

    The full count in the first pass; a later pass shows the chunks on its database with
    6,000 (``conftest.at_scale``).
    """
    count = at_scale(150_000, 6_000)
    mchid = configured.credentials["mchid"]
    # Numbers as long as the generated ones (R + time + random: 31 characters)
    rows = [(mchid, SUB_MCHID, f"R20261207014534{n:07d}XJZEADD6N", "0.01") for n in range(count)]
    serve_bill(monkeypatch, bill_of(*rows))
    inserts: list[tuple[int, int]] = []

    def watch(execute, sql, params, many, context):
        if INTO_DISCREPANCIES.match(sql):
            # PostgreSQL (Django 5.2+) binds a column as one array (INSERT ... UNNEST).
            values = sum(len(p) if isinstance(p, list | tuple) else 1 for p in params or ())
            inserts.append((len(sql) + sum(len(str(p)) for p in params or ()), values))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        status, out = run_command("--date", today().isoformat())
    assert status == 1, out[-2000:]
    run = ReconciliationRun.objects.get()
    assert (run.return_rows, run.discrepancy_count) == (count, count)
    assert run.discrepancies.filter(kind=DiscrepancyKind.MISSING_LOCALLY).count() == count
    fields = 7  # run, out_return_no, kind, local_amount, wechat_amount, facts, detail
    assert sum(values for _, values in inserts) == count * fields
    assert max(values for _, values in inserts) <= WRITE_BATCH * fields  # SQLite: fewer
    assert max(size for size, _ in inserts) < 1024 * 1024  # far below any packet limit
    # cron's mail lists the first 50, and says where the rest are
    listed = [line for line in out.splitlines() if line.startswith("  missing_locally")]
    assert len(listed) == 50 and f"and {count - 50} more" in out


@pytest.mark.parametrize(
    ("value", "refused"),
    [(0, True), ("1G", True), (True, True), (1024, True), (1024**2, False), (2**40, False)],
)
def test_bill_max_bytes_is_checked(sim, value, refused):
    found = ids(**{**wxpay_config(sim), "BILL_MAX_BYTES": value})
    assert ("wxpay_profitsharing.E021" in found) is refused
