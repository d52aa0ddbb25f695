"""The example shop's refund, played through its own page: run by ``tests/test_example_shop.py``.

Runs inside the example project (``shop.settings``; its SQLite file and the simulator's
state directory come from ``SHOP_SQLITE_PATH`` and ``WXPAY_SIMULATOR_DIR``): migrates,
seeds the demo, then plays each scenario through the shop's own code (the admin's
"Refund this order" page, its signal receivers) against the simulator, and prints one
JSON object: what the page, the shop's orders and the simulator's books say after each
step. The test asserts on it.

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
from django.utils import translation  # noqa: E402
from orders.models import Order  # noqa: E402

from django_wxpay_profitsharing import desk, refund_machine  # noqa: E402
from django_wxpay_profitsharing.models import (  # noqa: E402
    ProfitSharingReturn,
    RefundJob,
    ReturnState,
)
from django_wxpay_profitsharing.refund_states import ACTIVE_JOB_STATES  # noqa: E402
from django_wxpay_profitsharing.signals import refund_succeeded  # noqa: E402
from wxpay_simulator.testing import SimulatorProcess  # noqa: E402

OPEN = [ReturnState.PENDING, ReturnState.PROCESSING]
SUB_MCHID = "1900000109"


def settle() -> None:
    """Poll until no return and no refund job is under way, as the demo's poller would."""
    for _ in range(60):
        call_command("wxpay_process_returns", "--once", verbosity=0)
        refund_machine.process_due()
        returns_open = ProfitSharingReturn.objects.filter(state__in=OPEN).exists()
        if not returns_open and not RefundJob.objects.filter(state__in=ACTIVE_JOB_STATES).exists():
            return
    raise SystemExit("the returns and refund jobs did not settle")


def says(number: str) -> dict:
    order = Order.objects.get(number=number)
    return {
        "refunded": order.refunded_at is not None,
        "refund_no": order.refund_no,
        "event": str(order.refund_event_id) if order.refund_event_id else None,
        "note": order.refund_note,
    }


def press(user, number: str, step: str) -> list[str]:
    """A button of ``number``'s refund page ("plan" or "confirm"); the messages shown."""
    client = Client()
    client.force_login(user)
    pk = Order.objects.get(number=number).pk
    response = client.post(f"/admin/orders/order/{pk}/refund/", {"step": step}, follow=True)
    assert response.status_code == 200, response.status_code
    return [str(m) for m in response.context["messages"]]


def page(user, number: str, language: str = "en") -> str:
    """The refund page as ``user`` sees it, in ``language``."""
    pk = Order.objects.get(number=number).pk
    return shown(user, f"/admin/orders/order/{pk}/refund/", language)


def shown(user, url: str, language: str = "en") -> str:
    """A page of the shop's admin as ``user`` reads it in ``language``."""
    client = Client()
    client.force_login(user)
    with translation.override(language):
        response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def jobs(number: str) -> list[dict]:
    return list(
        RefundJob.objects.filter(out_refund_no=f"RF{number}").values("pk", "state", "amount")
    )


def someone_elses_job(number: str, transaction_id: str, amount: int) -> str:
    """A refund job under ``number``'s refund number, made by code, refunded to the end."""
    made = desk.create_refund(
        {"out_refund_no": f"RF{number}", "transaction_id": transaction_id,
         "sub_mchid": SUB_MCHID, "amount": amount, "reason": "not this order's"},
        by=None, door=desk.Door.CODE, send=True,
    )  # fmt: skip
    settle()
    return str(RefundJob.objects.get(pk=made.job.pk).state)


def main(sim: SimulatorProcess) -> None:
    setup_test_environment()  # the test client records each response's context
    call_command("migrate", "--noinput", verbosity=0)
    call_command("seed_demo", stdout=io.StringIO())
    users = get_user_model().objects
    admin = users.get(username="admin")
    change = Permission.objects.get(codename="change_order")
    stranger = users.create_user("stranger", password="x", is_staff=True)
    stranger.user_permissions.add(change)
    clerk = users.create_user("clerk", password="x", is_staff=True)
    clerk.user_permissions.add(change, Permission.objects.get(codename="add_refundjob"))
    seen: dict[str, object] = {}

    # 1. Someone who may not make refunds presses "Plan the refund": nothing is made.
    seen["stranger_plan_messages"] = press(stranger, "SHOP0100", "plan")
    seen["jobs_after_stranger"] = jobs("SHOP0100")

    # 2. The clerk plans SHOP0100's refund: a draft job, its plan on the page, nothing
    #    sent; the clerk may not approve it.
    seen["clerk_plan_messages"] = press(clerk, "SHOP0100", "plan")
    seen["plan_page"] = page(clerk, "SHOP0100")
    seen["plan_page_zh"] = page(clerk, "SHOP0100", "zh-hans")
    seen["orders_page"] = shown(admin, "/admin/orders/order/")
    seen["orders_page_zh"] = shown(admin, "/admin/orders/order/", "zh-hans")
    seen["plan"] = RefundJob.objects.get(out_refund_no="RFSHOP0100").plan
    seen["clerk_confirm_messages"] = press(clerk, "SHOP0100", "confirm")
    seen["jobs_after_clerk"] = jobs("SHOP0100")
    seen["sent_before_confirm"] = {"refunds": sim.refunds(), "returns": sim.returns()}
    seen["SHOP0100_planned"] = says("SHOP0100")

    # 3. refund_succeeded announced for that draft job: the row says otherwise.
    draft = RefundJob.objects.get(out_refund_no="RFSHOP0100")
    refund_succeeded.send(
        sender=RefundJob, instance=draft, previous_state="following", event_id=uuid.uuid4()
    )
    seen["SHOP0100_after_early_signal"] = says("SHOP0100")

    # 4. The operator presses "Plan" and "Confirm" twice each: one job, one refund, the
    #    customer refunded; the event redelivered changes nothing.
    seen["admin_messages"] = [
        *press(admin, "SHOP0100", "plan"),
        *press(admin, "SHOP0100", "confirm"),
        *press(admin, "SHOP0100", "plan"),
        *press(admin, "SHOP0100", "confirm"),
    ]
    settle()
    seen["jobs_after_admin"] = jobs("SHOP0100")
    seen["SHOP0100_refunded"] = says("SHOP0100")
    seen["refunded_page"] = page(admin, "SHOP0100")
    seen["refunded_page_zh"] = page(admin, "SHOP0100", "zh-hans")
    seen["simulator_refunds"] = sim.refunds()
    seen["simulator_returns"] = sim.returns()
    seen["simulator_payment"] = sim.payment(Order.objects.get(number="SHOP0100").transaction_id)
    job = RefundJob.objects.get(out_refund_no="RFSHOP0100")
    first_event = Order.objects.get(number="SHOP0100").refund_event_id
    for event_id in (first_event, uuid.uuid4()):
        refund_succeeded.send(
            sender=RefundJob, instance=job, previous_state="following", event_id=event_id
        )
    seen["SHOP0100_after_redelivery"] = says("SHOP0100")

    # 5. Refund jobs under another order's refund number (the shop numbered its refunds
    #    in advance) succeed: one of another payment, one of another amount.
    for number in ("SHOP0002", "SHOP0003"):
        Order.objects.filter(number=number).update(refund_no=f"RF{number}")
    other_payment = "4200000000000000000000000200"  # SHOP0200's (the README's)
    seen["foreign_payment_job"] = someone_elses_job("SHOP0003", other_payment, 30000)
    shop0002 = Order.objects.get(number="SHOP0002")
    seen["foreign_amount_job"] = someone_elses_job("SHOP0002", shop0002.transaction_id, 100)
    seen["SHOP0003_after_foreign"] = says("SHOP0003")
    seen["SHOP0002_after_foreign"] = says("SHOP0002")
    seen["SHOP0003_plan_messages"] = press(admin, "SHOP0003", "plan")
    seen["SHOP0002_plan_messages"] = press(admin, "SHOP0002", "plan")
    print(json.dumps(seen, ensure_ascii=False, default=str))


if __name__ == "__main__":
    config = {
        **settings.WXPAY_PROFITSHARING,
        "TASK_BACKEND": "inline",
        # Every wait is over at once: settle() moves everything on without sleeping.
        "RETRY_BACKOFF": (0.0, 0.0),
        "POLL_BACKOFF": (0.0, 0.0),
        "REFUND_POLL_BACKOFF": (0.0, 0.0),
        "REFUND_SPLIT_WAIT": 0.0,
    }
    simulator = SimulatorProcess.attach(settings.SIMULATOR_DIR)
    try:
        with override_settings(WXPAY_PROFITSHARING=config):
            main(simulator)
    finally:
        simulator.stop()
