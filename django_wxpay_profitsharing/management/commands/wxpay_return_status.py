"""``manage.py wxpay_return_status OUT_RETURN_NO`` or ``--pk N``: one return, refreshed first.

Why two spellings and never a guess: a shop's out_return_no may be all digits
(its order number), so "2" is always an out_return_no here and a row id is only
ever given as ``--pk 2``. Giving both, or neither, is refused.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import desk
from ...merchants import default_mchid
from ...models import (
    ANSWER_FIELDS,
    IDENTITY_FIELDS,
    MAX_PK,
    PROGRESS_FIELDS,
    ProfitSharingReturn,
    ReturnState,
)
from ...wechatpay import errors, validation

SHOWN_FIELDS = ("out_return_no", *IDENTITY_FIELDS, *PROGRESS_FIELDS, *ANSWER_FIELDS)


class Command(BaseCommand):
    help = "Refresh one return from WeChat Pay (when it is not final) and print it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "out_return_no", nargs="?", help="The return's out_return_no (even if all digits)."
        )
        parser.add_argument("--pk", help="The return's row id instead of its out_return_no.")
        parser.add_argument(
            "--no-refresh", action="store_true", help="Only show what the database holds."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        number, pk = options["out_return_no"], options["pk"]
        if (number is None) == (pk is None):
            raise CommandError("Give either an OUT_RETURN_NO or --pk N, not both or neither.")
        row = self._by_pk(pk) if pk is not None else self._by_number(number)
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

    def _by_pk(self, text: str) -> ProfitSharingReturn:
        text = text.strip()
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PK:
            raise CommandError(f"--pk must be a row id (a positive integer), not {text!r}.")
        row: ProfitSharingReturn | None = ProfitSharingReturn.objects.filter(pk=int(text)).first()
        if row is None:
            raise CommandError(f"No return with pk {text}.")
        return row

    def _by_number(self, text: str) -> ProfitSharingReturn:
        number = text.strip()
        try:
            validation.validate_out_no(number, "out_return_no")
        except errors.InvalidRequest as exc:
            raise CommandError(f"Not a valid out_return_no {number!r}: {exc.message}.") from None
        mine = ProfitSharingReturn.objects.filter(mchid=default_mchid(), out_return_no=number)
        found: list[ProfitSharingReturn] = list(mine[:1]) or list(
            ProfitSharingReturn.objects.filter(out_return_no=number).order_by("pk")[:10]
        )
        if not found:
            raise CommandError(f"No return with out_return_no {number!r}.")
        if len(found) > 1:  # other merchants' numbers: which one is meant is not known
            pks = ", ".join(str(row.pk) for row in found)
            raise CommandError(
                f"out_return_no {number!r} belongs to returns of several merchants"
                f" (pk {pks}); give --pk."
            )
        return found[0]
