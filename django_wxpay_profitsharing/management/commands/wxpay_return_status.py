"""``manage.py wxpay_return_status OUT_RETURN_NO``: show one return, refreshed first."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...conf import wxpay_settings
from ...models import ProfitSharingReturn, ReturnState
from ...services import refresh
from ...wechatpay import errors, validation

SHOWN_FIELDS = (
    "out_return_no",
    "state",
    "sub_mchid",
    "order_id",
    "out_order_no",
    "return_mchid",
    "amount",
    "description",
    "return_id",
    "result",
    "fail_reason",
    "create_time",
    "finish_time",
    "attempts",
    "next_attempt_at",
    "last_error_code",
    "last_error_message",
)


class Command(BaseCommand):
    help = "Refresh one return from WeChat Pay (when it is not final) and print it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out_return_no")
        parser.add_argument(
            "--no-refresh", action="store_true", help="Only show what the database holds."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        number = options["out_return_no"].strip()
        try:
            validation.validate_out_no(number, "out_return_no")
        except errors.InvalidRequest as exc:
            raise CommandError(f"Not a valid out_return_no {number!r}: {exc.message}.") from None
        row = (
            ProfitSharingReturn.objects.filter(
                mchid=wxpay_settings.MCHID, out_return_no=number
            ).first()
            or ProfitSharingReturn.objects.filter(out_return_no=number).first()
        )
        if row is None:
            raise CommandError(f"No return with out_return_no {number!r}.")
        if not options["no_refresh"] and not row.is_final:
            try:
                row = refresh(row)
            except ImproperlyConfigured as exc:
                raise CommandError(str(exc)) from None
        for name in SHOWN_FIELDS:
            value = getattr(row, name)
            if name == "state":
                value = f"{value} ({ReturnState(value).label})"
            if name == "amount":
                value = f"{value} fen (¥{row.amount_yuan:.2f})"
            self.stdout.write(f"{name:>20}: {'' if value is None else value}")
