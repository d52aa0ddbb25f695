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

from ... import desk
from ...merchants import default_mchid
from ...models import MAX_PK, RefundJob
from ...refund_states import Attention, RefundJobState
from ...refund_words import plan_rows, yuan
from ...wechatpay import errors, validation


class Command(BaseCommand):
    help = "Make one refund job look now (its next step, even if not due) and print it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "out_refund_no", nargs="?", help="The job's out_refund_no (even if all digits)."
        )
        parser.add_argument("--pk", help="The job's row id instead of its out_refund_no.")
        parser.add_argument(
            "--no-refresh", action="store_true", help="Only show what the database holds."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        number, pk = options["out_refund_no"], options["pk"]
        if (number is None) == (pk is None):
            raise CommandError("Give either an OUT_REFUND_NO or --pk N, not both or neither.")
        try:
            job = self._by_pk(pk) if pk is not None else self._by_number(number)
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

    def _by_pk(self, text: str) -> RefundJob:
        text = text.strip()
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PK:
            raise CommandError(f"--pk must be a row id (a positive integer), not {text!r}.")
        job: RefundJob | None = RefundJob.objects.filter(pk=int(text)).first()
        if job is None:
            raise CommandError(f"No refund job with pk {text}.")
        return job

    def _by_number(self, text: str) -> RefundJob:
        number = text.strip()
        try:
            validation.validate_out_no(number, "out_refund_no")
        except errors.InvalidRequest as exc:
            raise CommandError(f"Not a valid out_refund_no {number!r}: {exc.message}.") from None
        found: list[RefundJob] = []
        for jobs in (
            RefundJob.objects.filter(mchid=default_mchid(), out_refund_no=number),
            RefundJob.objects.filter(out_refund_no=number),
            RefundJob.objects.filter(refunds__out_refund_no=number),  # a later attempt's
        ):
            found = list(jobs.order_by("pk")[:10])
            if found:
                break
        if not found:
            raise CommandError(f"No refund job with out_refund_no {number!r}.")
        if len(found) > 1:  # other merchants' numbers: which one is meant is not known
            pks = ", ".join(str(job.pk) for job in found)
            raise CommandError(
                f"out_refund_no {number!r} belongs to refunds of several merchants"
                f" (pk {pks}); give --pk."
            )
        return found[0]
