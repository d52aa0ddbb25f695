"""The example shop's refund under attack (issue 20): run by ``tests/test_example_shop.py``.

Runs inside the example project (``shop.settings``; its SQLite file and the simulator's
state directory come from ``SHOP_SQLITE_PATH`` and ``WXPAY_SIMULATOR_DIR``): migrates,
seeds the demo, then plays each scenario through the shop's own code (the admin's
"Refund this order" page, its signal receivers) and prints one JSON object: what the
shop's orders say after each step. The test asserts on it.

Why a script: the example project is a Django project of its own, with its own apps
and settings; the test suite's process is configured for ``tests.settings``.
"""

from __future__ import annotations

import io
import json
import os
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "example_project"))
os.environ["DJANGO_SETTINGS_MODULE"] = "shop.settings"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Permission  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings, setup_test_environment  # noqa: E402
from orders.models import Order  # noqa: E402

from django_wxpay_profitsharing import clawbacks, services  # noqa: E402
from django_wxpay_profitsharing.models import (  # noqa: E402
    ProfitSharingClawback,
    ProfitSharingReturn,
    ReturnState,
)
from django_wxpay_profitsharing.signals import clawback_completed  # noqa: E402

OPEN = [ReturnState.PENDING, ReturnState.PROCESSING]


def settle() -> None:
    """Poll until no return is open, as the demo's poller would."""
    for _ in range(30):
        call_command("wxpay_process_returns", "--once", verbosity=0)
        if not ProfitSharingReturn.objects.filter(state__in=OPEN).exists():
            return
    raise SystemExit("the returns did not settle")


def return_by_hand(out_order_no: str, amount: int) -> None:
    """A single return, created, submitted and followed to its end."""
    row = services.create_return(
        sub_mchid="1900000109",
        out_order_no=out_order_no,
        return_mchid="86693852",
        amount=amount,
        description=f"{amount} 分",
    )
    services.submit(row)
    settle()


def says(number: str) -> dict:
    order = Order.objects.get(number=number)
    return {
        "refundable": order.refund_may_proceed,
        "refund_no": order.refund_no,
        "clawback": getattr(getattr(order, "clawback", None), "out_clawback_no", None),
        "note": order.clawback_note,
    }


def press_refund(user, number: str) -> list[str]:
    """The admin's "Claw back, then refund" button on ``number``'s refund page."""
    client = Client()
    client.force_login(user)
    pk = Order.objects.get(number=number).pk
    response = client.post(f"/admin/orders/order/{pk}/refund/", follow=True)
    assert response.status_code == 200, response.status_code
    return [str(m) for m in response.context["messages"]]


def main() -> None:
    setup_test_environment()  # the test client records each response's context
    call_command("migrate", "--noinput", verbosity=0)
    call_command("seed_demo", stdout=io.StringIO())
    admin = get_user_model().objects.get(username="admin")
    clerk = get_user_model().objects.create_user("clerk", password="x", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="change_order"))
    seen: dict[str, object] = {}

    # 1. Someone makes a 1-fen clawback on another order (PSHOP0200) under the refund
    #    number SHOP0003's page will use; the operator then presses "Refund" on SHOP0003;
    #    then that clawback completes.
    foreign, _ = clawbacks.create_or_get_clawback(
        {
            "out_clawback_no": "RFSHOP0003",
            "out_order_no": "PSHOP0200",
            "transaction_id": "4200000000000000000000000200",
            "sub_mchid": "1900000109",
            "amount": 1,
            "description": "not SHOP0003's",
        },
        created_by=admin,
    )
    seen["foreign_refund_messages"] = press_refund(admin, "SHOP0003")
    clawbacks.submit_clawback(foreign, by=admin)
    settle()
    foreign.refresh_from_db()
    seen["foreign_state"] = foreign.state
    seen["SHOP0003_after_foreign"] = says("SHOP0003")

    # 2. A 1-fen return typed by hand on SHOP0002's sharing order (2000 fen shared).
    return_by_hand("PSHOP0002", 1)
    seen["SHOP0002_after_one_fen"] = says("SHOP0002")
    return_by_hand("PSHOP0002", 1999)
    seen["SHOP0002_after_all"] = says("SHOP0002")

    # 3. SHOP0100's clawback, made by a clerk who may not submit it (drafts), is
    #    announced complete with nothing back (a receiver must read the rows).
    seen["clerk_refund_messages"] = press_refund(clerk, "SHOP0100")
    clawback = ProfitSharingClawback.objects.get(out_clawback_no="RFSHOP0100")
    clawback_completed.send(
        sender=ProfitSharingClawback,
        instance=clawback,
        previous_state="submitted",
        event_id=uuid.uuid4(),
    )
    seen["SHOP0100_after_early_signal"] = says("SHOP0100")

    # 4. The operator who may submit presses again: the same clawback, sent, complete.
    seen["admin_refund_messages"] = press_refund(admin, "SHOP0100")
    settle()
    seen["SHOP0100_after_clawback"] = says("SHOP0100")
    print(json.dumps(seen, ensure_ascii=False))


if __name__ == "__main__":
    config = {**settings.WXPAY_PROFITSHARING, "TASK_BACKEND": "inline"}
    with override_settings(WXPAY_PROFITSHARING=config):
        main()
