"""The ledger holds under MySQL/MariaDB's REPEATABLE READ as under READ COMMITTED
(issue 20, item 3), and a connection not at READ COMMITTED is named by a check.

Under REPEATABLE READ a transaction reads from a snapshot taken at its first plain
read; the ledger check used to make one (finding the order) before it took the order's
row lock, so racing returns summed a ledger older than the lock: 60 of 60 made it on
one order (cap 50), up to 1445 fen reserved on a 1000-fen line. MySQL/MariaDB only.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from django_wxpay_profitsharing import checks, clawbacks, services
from django_wxpay_profitsharing.ledger import MAX_RETURNS_PER_ORDER
from django_wxpay_profitsharing.models import ProfitSharingReturn

from .conftest import ON_MYSQL, SUB_MCHID, unique_no
from .test_concurrency import in_threads

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not ON_MYSQL, reason="REPEATABLE READ as MySQL/MariaDB runs it"),
]
RECEIVER, LINE = "86693852", 1000
RACERS, EACH = 60, 20  # 60 x 20 fen asked of a 1000-fen line: 50 fit the fen, 50 the cap


def set_isolation(level: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SET SESSION TRANSACTION ISOLATION LEVEL {level}")


@pytest.mark.parametrize("level", ["READ COMMITTED", "REPEATABLE READ"])
def test_racing_returns_never_reserve_more_than_the_ledger_allows(configured, level):
    order = configured.seed_order(
        unique_no("PI"),
        receivers=[{"account": RECEIVER, "amount": LINE, "type": "MERCHANT_ID"}],
        sub_mchid=SUB_MCHID,
    )
    clawbacks.sync_order(out_order_no=order["out_order_no"],
                         transaction_id=order["transaction_id"], sub_mchid=SUB_MCHID)  # fmt: skip

    def race() -> tuple[str, int | str]:
        set_isolation(level)
        try:
            row = services.create_return(
                sub_mchid=SUB_MCHID, out_order_no=order["out_order_no"], return_mchid=RECEIVER,
                amount=EACH, description="race",
            )  # fmt: skip
        except ValidationError as exc:
            return "refused", ",".join(exc.message_dict)
        return "made", row.pk

    outcomes = in_threads(RACERS, race)
    made = [pk for kind, pk in outcomes if kind == "made"]
    reserved = sum(ProfitSharingReturn.objects.values_list("amount", flat=True))
    assert len(outcomes) == RACERS
    assert len(made) <= MAX_RETURNS_PER_ORDER and reserved <= LINE, (len(made), reserved)
    assert len(made) == LINE // EACH  # the lock serialises them: exactly what fits, no less


def test_a_connection_not_at_read_committed_is_named():
    set_isolation("REPEATABLE READ")
    [warning] = checks.check_isolation_level(databases=["default"])
    assert warning.id == "wxpay_profitsharing.W030" and "REPEATABLE-READ" in warning.msg
    set_isolation("READ COMMITTED")
    assert checks.check_isolation_level(databases=["default"]) == []
