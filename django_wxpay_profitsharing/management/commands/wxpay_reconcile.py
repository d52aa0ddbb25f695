"""``manage.py wxpay_reconcile [--date YYYY-MM-DD] [--mchid ...] [--sub-mchid ...]``.

Reconciles one Beijing day's profit-sharing bill against the local returns
(``reconcile.py``) and prints a summary. Exit status, for cron and monitoring:

== ===========================================================================
0  every return in the bill matched, and nothing local is missing from it
1  discrepancies (listed, and kept in the admin under reconciliation runs)
2  no result: the bill could not be had or checked, the database refused the
   run (nothing written), or bad arguments
== ===========================================================================

So 1 always means discrepancies, never a crash: every failure (a transport error, an
odd ``download_url``, a hash mismatch, a bill the parser refuses, a full disk, and
anything unforeseen) is exit 2 with one line on stderr, never a traceback (an
unforeseen error's traceback goes to the ``django_wxpay_profitsharing`` logger at
INFO, for whoever keeps it). At most :data:`SHOWN` discrepancies are listed (all
with ``--verbosity 2``); the admin lists them all, filtered by run.

The date defaults to yesterday in ``TIME_ZONE``; bills are ready after about 10:00
Beijing time the next day, so schedule it in the late morning.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from ...reconcile import ReconciliationError, default_bill_date, reconcile
from ...reconcile_words import describe
from ...wechatpay import errors, validation

EXIT_DISCREPANCIES = 1
EXIT_NO_BILL = 2
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: Discrepancies listed at the default verbosity.
SHOWN = 50
logger = logging.getLogger("django_wxpay_profitsharing")


def one_line(text: str, limit: int = 500) -> str:
    """A message as one line of at most ``limit`` characters (stderr, cron's mail)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class Command(BaseCommand):
    help = "Reconcile a day's WeChat Pay profit-sharing bill against the local returns."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--date", help="The Beijing date of the bill, YYYY-MM-DD (default: yesterday)."
        )
        parser.add_argument("--mchid", help="The merchant (default: the configured MCHID).")
        parser.add_argument(
            "--sub-mchid", help="One sub-merchant's bill (default: every sub-merchant's)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bill_date = self._date(options["date"])
        mchid = self._merchant(options["mchid"], "--mchid")
        sub_mchid = self._merchant(options["sub_mchid"], "--sub-mchid")
        scope = f"{bill_date} mchid={mchid or '(configured)'} sub_mchid={sub_mchid or '(all)'}"
        try:
            run = reconcile(bill_date, mchid=mchid, sub_mchid=sub_mchid)
        except (ReconciliationError, ImproperlyConfigured, DatabaseError) as exc:
            self.stdout.write(f"Reconciliation {scope}: no result.")
            raise CommandError(one_line(str(exc)), returncode=EXIT_NO_BILL) from None
        except Exception as exc:  # unforeseen: still "no result", never a traceback
            logger.info("wxpay_reconcile %s failed", scope, exc_info=True)
            self.stdout.write(f"Reconciliation {scope}: no result.")
            problem = one_line(f"unexpected {type(exc).__name__}: {exc}")
            raise CommandError(problem, returncode=EXIT_NO_BILL) from None
        self.stdout.write(
            f"Reconciliation {scope}: {run.rows} bill rows, {run.return_rows} returns, "
            f"{run.matched} matched, {run.discrepancy_count} discrepancies "
            f"(bill SHA1 {run.hash_value or 'none: no bill for that day'})."
        )
        shown = run.discrepancies.order_by("pk")
        if int(options["verbosity"]) < 2:
            shown = shown[:SHOWN]
        for item in shown.iterator(chunk_size=2000):
            self.stdout.write(f"  {item.kind:<18} {item.out_return_no}: {describe(item)}")
        if run.discrepancy_count > SHOWN and int(options["verbosity"]) < 2:
            self.stdout.write(
                f"  ... and {run.discrepancy_count - SHOWN} more: the admin's discrepancies "
                f"of this run, or --verbosity 2."
            )
        if run.discrepancy_count:
            raise CommandError(
                f"{run.discrepancy_count} discrepancies on {bill_date}",
                returncode=EXIT_DISCREPANCIES,
            )

    @staticmethod
    def _date(text: str | None) -> dt.date:
        if text is None:
            return default_bill_date()
        if DATE_RE.fullmatch(text.strip()):
            try:
                return dt.date.fromisoformat(text.strip())
            except ValueError:
                pass
        raise CommandError(f"--date must be YYYY-MM-DD, not {text!r}.", returncode=EXIT_NO_BILL)

    @staticmethod
    def _merchant(text: str | None, option: str) -> str | None:
        if text is None:
            return None
        try:
            return validation.validate_mchid(text.strip(), option.lstrip("-").replace("-", "_"))
        except errors.InvalidRequest as exc:
            raise CommandError(f"{option}: {exc.message}.", returncode=EXIT_NO_BILL) from None
