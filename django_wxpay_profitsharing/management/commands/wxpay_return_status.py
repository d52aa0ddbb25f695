"""``manage.py wxpay_return_status OUT_RETURN_NO`` or ``--pk N``: one return, refreshed first.

The number is always an out_return_no, even all digits (``one_row.py`` says why).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet

from ... import desk
from ...merchants import default_mchid
from ...models.returns import ANSWER_FIELDS, IDENTITY_FIELDS, PROGRESS_FIELDS, ProfitSharingReturn
from ...states import ReturnState
from ..one_row import add_row_arguments, named_row

SHOWN_FIELDS = ("out_return_no", *IDENTITY_FIELDS, *PROGRESS_FIELDS, *ANSWER_FIELDS)


class Command(BaseCommand):
    help = "Refresh one return from WeChat Pay (when it is not final) and print it."

    def add_arguments(self, parser: CommandParser) -> None:
        add_row_arguments(parser, "out_return_no", "return")

    def handle(self, *args: Any, **options: Any) -> None:
        row = named_row(options, "out_return_no", "return", ProfitSharingReturn, _candidates)
        if not options["no_refresh"] and not row.is_final:
            try:
                desk.refresh(
                    ProfitSharingReturn.objects.filter(pk=row.pk), by=None, door=desk.Door.CODE
                )
                row.refresh_from_db()
            except ImproperlyConfigured as exc:
                raise CommandError(str(exc)) from None
        for name in SHOWN_FIELDS:
            value = getattr(row, name)
            if name == "state":
                value = f"{value} ({ReturnState(value).label})"
            if name == "amount":
                value = f"{value} fen (¥{row.amount_yuan:.2f})"
            self.stdout.write(f"{name:>20}: {'' if value is None else value}")


def _candidates(number: str) -> list[QuerySet[ProfitSharingReturn]]:
    """The default merchant's return first, then any merchant's."""
    return [
        ProfitSharingReturn.objects.filter(mchid=default_mchid(), out_return_no=number),
        ProfitSharingReturn.objects.filter(out_return_no=number),
    ]
