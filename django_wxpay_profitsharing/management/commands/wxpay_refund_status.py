"""``manage.py wxpay_refund_status OUT_REFUND_NO`` or ``--pk N``: one refund job, looked at now.

The job takes its next step at once, even if not due (``desk.refresh_refund``: WeChat
Pay is asked about the refund, the unfreeze or the clawbacks it waits for), then it is
printed: state, next step, attention, the plan in yuan, and every refund attempt with
WeChat Pay's ids. As with ``wxpay_return_status``, the number is always an
out_refund_no (even all digits: a shop's order number) and a row id only ever
``--pk N``. A later attempt's number (``<out_refund_no>-2``) finds its job too.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet

from ... import desk
from ...merchants import default_mchid
from ...money import yuan
from ...refund_models import RefundJob
from ...refund_states import Attention, RefundJobState
from ...refund_words import plan_rows
from ..one_row import add_row_arguments, named_row


class Command(BaseCommand):
    help = "Make one refund job look now (its next step, even if not due) and print it."

    def add_arguments(self, parser: CommandParser) -> None:
        add_row_arguments(parser, "out_refund_no", "refund job")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            job = named_row(options, "out_refund_no", "refund job", RefundJob, _candidates)
            if not options["no_refresh"]:
                moved = desk.refresh_refund(job, by=None, door=desk.Door.CODE)
                if moved.queued:  # a worker's run: what the database holds now is shown
                    self.stdout.write(f"Queued for the background ({moved.backend}).")
                job.refresh_from_db()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        self._print(job)

    def _print(self, job: RefundJob) -> None:
        attention = Attention(job.attention).label if job.attention else ""
        lines = [
            ("out_refund_no", job.out_refund_no),
            ("mchid", job.mchid),
            ("sub_mchid", job.sub_mchid),
            ("transaction_id", job.transaction_id),
            ("amount", f"{job.amount} fen ({yuan(job.amount)})"),
            ("reason", job.reason),
            ("state", f"{job.state} ({RefundJobState(job.state).label})"),
            ("next step", job.step or "-"),
            ("attention", f"{job.attention} ({attention})" if attention else "-"),
            ("unfrozen", yuan(job.unfrozen)),
            ("last error", " ".join(filter(None, (job.last_error_code, job.last_error_message)))),
            ("finished at", job.finished_at or ""),
        ]
        for name, value in lines:
            self.stdout.write(f"{name:>16}: {value}")
        self.stdout.write("plan:")
        for label, words in plan_rows(job.plan):
            self.stdout.write(f"{label!s:>28}: {words}")
        for attempt in job.refunds.select_related("replaces").order_by("number"):
            replaces = f", replaces {attempt.replaces.out_refund_no}" if attempt.replaces else ""
            self.stdout.write(
                f"refund {attempt.number}: {attempt.out_refund_no} {yuan(attempt.amount)}"
                f" refund_id={attempt.refund_id or '-'} status={attempt.status or '-'}"
                f" channel={attempt.channel or '-'}"
                f" received_into={attempt.user_received_account or '-'}"
                f" success_time={attempt.success_time or '-'}{replaces}"
            )
        for clawback in job.clawbacks.order_by("pk"):
            self.stdout.write(
                f"clawback {clawback.out_clawback_no}: {clawback.state} {yuan(clawback.amount)}"
            )


def _candidates(number: str) -> list[QuerySet[RefundJob]]:
    """The default merchant's job first, then any merchant's, then a later attempt's."""
    return [
        RefundJob.objects.filter(mchid=default_mchid(), out_refund_no=number),
        RefundJob.objects.filter(out_refund_no=number),
        RefundJob.objects.filter(refunds__out_refund_no=number),
    ]
