"""``manage.py seed_demo``: a demo superuser, sharing orders in the simulator, returns to submit."""

import requests
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from django_wxpay_profitsharing.conf import wxpay_settings
from django_wxpay_profitsharing.services import create_or_get_return
from orders.models import Order

RECEIVER = "86693852"
SUB_MCHID = "1900000109"


class Command(BaseCommand):
    help = "Seed the demo: superuser admin/admin, 5 sharing orders, 5 pending clawbacks."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=5)

    def handle(self, *args, orders, **options):
        if not wxpay_settings.BASE_URL.startswith("http://127.0.0.1"):
            raise CommandError(
                "seed_demo only talks to a local simulator (start it with make demo)"
            )
        user_model = get_user_model()
        if not user_model.objects.filter(username="admin").exists():
            user_model.objects.create_superuser("admin", "admin@example.com", "admin")
        control = wxpay_settings.BASE_URL.rstrip("/") + "/_simulator/orders"
        for n in range(1, orders + 1):
            number = f"SHOP{n:04d}"
            out_order_no = f"P{number}"
            shared = 1000 * n
            try:
                response = requests.post(
                    control,
                    json={
                        "sub_mchid": SUB_MCHID,
                        "out_order_no": out_order_no,
                        "receivers": [
                            {"type": "MERCHANT_ID", "account": RECEIVER, "amount": shared}
                        ],
                    },
                    timeout=5,
                )
                response.raise_for_status()
            except requests.RequestException as exc:
                raise CommandError(f"the simulator did not accept the demo orders: {exc}") from None
            Order.objects.update_or_create(
                number=number,
                defaults={
                    "sub_mchid": SUB_MCHID,
                    "sharing_out_order_no": out_order_no,
                    "total_fen": shared * 10,
                    "shared_fen": shared,
                },
            )
            create_or_get_return(
                sub_mchid=SUB_MCHID,
                out_order_no=out_order_no,
                return_mchid=RECEIVER,
                amount=shared // 2,
                description=f"订单 {number} 退款前回退",
                out_return_no=f"RDEMO{n:04d}",
                submit=False,
            )
        self.stdout.write(f"Seeded {orders} orders and {orders} pending returns.")
