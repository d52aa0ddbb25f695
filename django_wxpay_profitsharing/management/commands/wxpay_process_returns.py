"""``manage.py wxpay_process_returns``: move due returns on (cron, or a long-running loop).

Each pass is bounded in time (``PASS_SECONDS``, or ``--seconds``): a backlog is worked
through pass after pass, or by several pollers at once, never by one pass for an hour.
Each pass also moves on the refund jobs due (``refund_machine.process_due``).

A pass whose every call WeChat Pay refused for the merchant's credentials (or whose
every answer did not verify) moved nothing: ``--once`` then exits with status 1 naming
what to check, so that the cron that runs it says so; ``--loop`` logs it and goes on.

Safe to run from cron on several hosts at once: rows are claimed with a lease (and
``SKIP LOCKED`` on PostgreSQL), so two runs never process the same return.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...credential_alarm import CallTally, counting
from ...outbox import retry_given_up
from ...polling import PassKey, process_due
from ...pool import drop_broken_connection
from ...refund_machine import process_due as process_due_refunds

logger = logging.getLogger("django_wxpay_profitsharing")
#: The most refund jobs one pass moves on.
REFUND_JOBS_A_PASS = 100
ALL_REFUSED = (
    "WeChat Pay refused every call of this pass for the merchant's credentials (or its "
    "answers did not verify): nothing moved. Check MCHID, MERCHANT_SERIAL_NO, PRIVATE_KEY "
    "and WECHATPAY_PUBLIC_KEY; manage.py wxpay_check_credentials names the merchant."
)


def positive_int(value: str, option: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise CommandError(f"{option} must be a positive integer, not {value!r}") from None
    if number < 1:
        raise CommandError(f"{option} must be a positive integer, not {value!r}")
    return number


def positive_float(value: str, option: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise CommandError(f"{option} must be a number of seconds, not {value!r}") from None
    if not (number > 0 and math.isfinite(number)):
        raise CommandError(f"{option} must be more than 0 seconds, not {value!r}")
    return number


class Command(BaseCommand):
    help = "Submit due pending returns and refresh due processing ones, then print a summary."

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--once", action="store_true", help="One pass (the default).")
        mode.add_argument("--loop", action="store_true", help="Repeat until interrupted.")
        parser.add_argument(
            "--interval", type=str, default=None, help="Seconds between passes with --loop."
        )
        parser.add_argument("--limit", type=str, default=None, help="At most N returns a pass.")
        parser.add_argument(
            "--seconds",
            type=str,
            default=None,
            help="Claim returns for at most this long a pass (default: PASS_SECONDS).",
        )
        parser.add_argument(
            "--retry-signals",
            action="store_true",
            help="First give signal events whose receivers kept raising their sends again.",
        )
        parser.add_argument(
            "--max-passes", type=str, default=None, help="With --loop: stop after N passes."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        limit = positive_int(options["limit"], "--limit") if options["limit"] is not None else None
        if options["interval"] is not None and not options["loop"]:
            raise CommandError("--interval only applies with --loop")
        interval = 10.0
        if options["interval"]:
            interval = positive_float(options["interval"], "--interval")
        seconds = positive_float(options["seconds"], "--seconds") if options["seconds"] else None
        if options["retry_signals"]:
            count = retry_given_up()
            self.stdout.write(f"{count} signal event(s) given their sends again.")
        max_passes = (
            positive_int(options["max_passes"], "--max-passes")
            if options["max_passes"] is not None
            else None
        )
        passes = 0
        try:
            while True:
                passes += 1
                try:
                    refused = self._one_pass(limit, seconds)
                except ImproperlyConfigured:
                    raise
                except Exception:
                    if not options["loop"]:
                        raise
                    # One bad pass (a database hiccup) never stops a long-running poller.
                    logger.exception("wxpay_process_returns: pass %d failed; going on", passes)
                    self.stderr.write(f"Pass {passes} failed; see the log. Going on.")
                    drop_broken_connection()
                else:
                    if refused and not options["loop"]:
                        raise CommandError(ALL_REFUSED)
                    if refused:  # a long-running poller says so and goes on
                        self.stderr.write(ALL_REFUSED)
                if not options["loop"] or (max_passes is not None and passes >= max_passes):
                    break
                time.sleep(interval)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            self.stdout.write("Interrupted.")

    def _one_pass(self, limit: int | None, seconds: float | None) -> bool:
        """One pass of returns, then refund jobs; whether every call it made was refused."""
        summary = process_due(limit=limit, seconds=seconds)
        parts = ", ".join(f"{name} {count}" for name, count in summary.items() if name != "claimed")
        self.stdout.write(f"Processed {summary['claimed']} due return(s): {parts}.")
        # Refund jobs: at most --limit, and at most REFUND_JOBS_A_PASS (the rest next pass).
        with counting(CallTally()) as refund_calls:
            refunds = process_due_refunds(min(limit or REFUND_JOBS_A_PASS, REFUND_JOBS_A_PASS))
        self.stdout.write(
            f"Moved {refunds} due refund job(s) on: calls {refund_calls.calls}, "
            f"credentials_refused {refund_calls.refused}."
        )
        calls = summary[PassKey.CALLS] + refund_calls.calls
        refused = summary[PassKey.CREDENTIALS_REFUSED] + refund_calls.refused
        if calls and refused == calls:
            logger.error(
                "wxpay_process_returns: WeChat Pay refused all %d call(s) of a pass", calls
            )
            return True
        return False
