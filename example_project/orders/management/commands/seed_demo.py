"""``manage.py seed_demo``: the demo's data, in the simulator and in the shop.

- a superuser ``admin`` / ``admin``;
- every order's payment in the simulator (``POST /_simulator/payments``; its total is
  the order's), and its sharing order, which names that payment: WeChat Pay splits a
  payment, and a refund names the payment;
- orders SHOP0001... each shared to one merchant receiver, with a *draft* return
  (RDEMO0001...) of everything shared that waits for the operator: nothing sends a
  draft until someone selects it and runs "Submit to WeChat Pay" (提交到微信支付);
- order SHOP0100 (600 yuan), shared to two merchant receivers and one personal receiver,
  to be refunded with "Refund this order": the refund job unfreezes what is still
  frozen, claws back from the two merchants, and the shop funds the personal receiver's
  share, which WeChat Pay never returns;
- payment and sharing order PSHOP0200 (simulator only, no shop order), two merchant
  receivers, for the README's curl examples: the walkthrough never touches it, so they
  work after it.

Run again, it says what it found. The simulator keeps its books in memory, so its
payments and sharing orders are seeded whenever it does not have them (with fixed
transaction ids, so the shop's rows still match); the shop's rows are created once.
"""

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from django_wxpay_profitsharing.conf import wxpay_settings
from django_wxpay_profitsharing.models import ProfitSharingReturn
from django_wxpay_profitsharing.services import create_or_get_return
from orders.models import Order
from wxpay_simulator.testing import SimulatorError, SimulatorProcess

RECEIVER = "86693852"
SECOND_RECEIVER = "86693853"
PERSONAL_OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
SUB_MCHID = "1900000109"
REFUND_ORDER = "SHOP0100"
#: The README's curl examples return from this one (3000 + 2000 fen to two merchants)
#: and refund a part of its payment.
API_ORDER = "SHOP0200"
API_ORDER_TOTAL = 50000


def transaction_id_for(number: str) -> str:
    """A fixed 28-digit transaction id per order, the same in every run."""
    return "42000" + number.removeprefix("SHOP").rjust(23, "0")


def sharing_orders(count: int) -> list[tuple[str, list[dict]]]:
    """``(shop order number, receivers)`` of every seeded sharing order."""
    simple = [
        (f"SHOP{n:04d}", [{"type": "MERCHANT_ID", "account": RECEIVER, "amount": 1000 * n}])
        for n in range(1, count + 1)
    ]
    mixed = [
        {"type": "MERCHANT_ID", "account": RECEIVER, "amount": 3000, "description": "平台"},
        {"type": "MERCHANT_ID", "account": SECOND_RECEIVER, "amount": 2000, "description": "门店"},
        {"type": "PERSONAL_OPENID", "account": PERSONAL_OPENID, "amount": 1000,
         "description": "导购佣金"},
    ]  # fmt: skip
    return [*simple, (REFUND_ORDER, mixed)]


def api_order_receivers() -> list[dict]:
    return [
        {"type": "MERCHANT_ID", "account": RECEIVER, "amount": 3000},
        {"type": "MERCHANT_ID", "account": SECOND_RECEIVER, "amount": 2000},
    ]


class Command(BaseCommand):
    help = (
        "Seed the demo: superuser admin/admin, sharing orders in the simulator, draft "
        "returns waiting to be submitted, and an order with three receivers to refund."
    )

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=5, help="single-receiver orders")

    def handle(self, *args, orders, **options):
        if not wxpay_settings.BASE_URL.startswith("http://127.0.0.1"):
            raise CommandError(
                "seed_demo only talks to a local simulator (start it with make demo)"
            )
        try:
            simulator = SimulatorProcess.attach(settings.SIMULATOR_DIR)
        except (OSError, KeyError, ValueError) as exc:
            raise CommandError(f"no simulator state in {settings.SIMULATOR_DIR}: {exc}") from None
        try:
            self._seed(simulator, orders)
        except (SimulatorError, requests.RequestException) as exc:
            raise CommandError(f"the simulator did not accept the demo's data: {exc}") from None
        finally:
            simulator.stop()  # the connection only: the simulator goes on

    def _seed(self, simulator: SimulatorProcess, orders: int) -> None:
        user_model = get_user_model()
        if not user_model.objects.filter(username="admin").exists():
            user_model.objects.create_superuser("admin", "admin@example.com", "admin")
        created_orders = created_returns = 0
        for number, receivers in sharing_orders(orders):
            out_order_no = f"P{number}"
            shared = sum(r["amount"] for r in receivers)
            self._seed_simulator(simulator, number, shared * 10, receivers)
            _order, created = Order.objects.get_or_create(
                number=number,
                defaults={
                    "sub_mchid": SUB_MCHID,
                    "sharing_out_order_no": out_order_no,
                    "transaction_id": transaction_id_for(number),
                    "total_fen": shared * 10,
                    "shared_fen": shared,
                },
            )
            created_orders += created
            if number == REFUND_ORDER:
                continue  # refunded with a refund job, from the order's page
            _row, created = create_or_get_return(
                sub_mchid=SUB_MCHID,
                out_order_no=out_order_no,
                return_mchid=RECEIVER,
                amount=shared,
                description=f"订单 {number} 退款前回退",
                out_return_no=f"RDEMO{number.removeprefix('SHOP')}",
                submit=False,  # a draft: it waits for the operator
            )
            created_returns += created
        self._seed_simulator(simulator, API_ORDER, API_ORDER_TOTAL, api_order_receivers())
        total = orders + 1
        if created_orders or created_returns:
            self.stdout.write(
                f"Seeded {created_orders} orders and {created_returns} draft returns "
                f"(order {REFUND_ORDER} has two merchant receivers and one personal one)."
            )
        else:
            drafts = ProfitSharingReturn.objects.filter(state="draft").count()
            self.stdout.write(
                f"Found the demo data already: {total} orders, {drafts} draft returns "
                "waiting to be submitted."
            )

    @staticmethod
    def _seed_simulator(
        simulator: SimulatorProcess, number: str, total: int, receivers: list[dict]
    ) -> None:
        """The order's payment and its sharing order, unless the simulator has them."""
        transaction_id = transaction_id_for(number)
        try:
            simulator.payment(transaction_id)
            return  # seeded already: this simulator has run seed_demo before
        except SimulatorError:
            pass  # not there: seeded now
        simulator.seed_payment(
            total, sub_mchid=SUB_MCHID, transaction_id=transaction_id, out_trade_no=number
        )
        simulator.seed_order(
            f"P{number}", receivers, sub_mchid=SUB_MCHID, transaction_id=transaction_id
        )
