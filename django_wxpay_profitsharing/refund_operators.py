"""What an operator does for a refund job that waits for one: proceed, retry, send an
ABNORMAL refund to the merchant's bank account, cancel, try again after CLOSED.

Each action is one row of ``refund_decisions.OPERATOR_ACTIONS`` (state x attention x
action); an action the table does not open for the job as it stands is refused, and a
cancel only while no money has moved (no unfreeze, clawback return or refund sent).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.functional import Promise

from .clients import client_for
from .refund_decisions import operator_rule
from .refund_jobs import MONEY_MOVED, NOT_NOW, nothing_moved
from .refund_machine import write
from .refund_models import Refund, RefundJob
from .refund_pacing import PacedClient
from .refund_states import OperatorAction
from .wechatpay import WeChatPayClient
from .wechatpay.refunds import AbnormalRefundRequest
from .wechatpay.words import AbnormalRefundType


class ActionNotOpen(Exception):
    """The action is not open to the job as it stands; ``message`` says why."""

    def __init__(self, message: str | Promise) -> None:
        super().__init__(str(message))
        self.message = message


def next_number(job: RefundJob, number: int) -> str:
    """The refund number of attempt ``number``: the shop's own, then ``<it>-<n>``."""
    suffix = f"-{number}"
    return f"{job.out_refund_no[: 64 - len(suffix)]}{suffix}"


def to_merchant_bank(job: RefundJob, client: WeChatPayClient | None = None) -> None:
    """发起异常退款 (MERCHANT_BANK_CARD) for the job's ABNORMAL refund; the client's errors
    pass through (nothing is changed then)."""
    attempt = job.refunds.order_by("-number").first()
    if attempt is None or not attempt.refund_id:
        raise ActionNotOpen(NOT_NOW)
    paced = PacedClient(client or client_for(job.mchid), job.mchid)
    paced.apply_abnormal_refund(
        AbnormalRefundRequest(
            refund_id=attempt.refund_id, out_refund_no=attempt.out_refund_no,
            type=AbnormalRefundType.MERCHANT_BANK_CARD, sub_mchid=job.sub_mchid or None,
        )
    )  # fmt: skip


def act(
    pk: int, action: OperatorAction, *, by: Any, client: WeChatPayClient | None = None
) -> RefundJob:
    """Carry out an operator's ``action`` on the job; :class:`ActionNotOpen` if not open.

    The desk checks who may act; this checks what the job as it stands allows.
    """
    job = RefundJob.objects.get(pk=pk)
    rule = operator_rule(job.state, job.attention or None, action)
    if rule is None:
        raise ActionNotOpen(NOT_NOW)
    if action is OperatorAction.TO_MERCHANT_BANK:
        to_merchant_bank(job, client)  # the call first: nothing changes if it fails
    with transaction.atomic():
        job = RefundJob.objects.select_for_update().get(pk=pk)
        if operator_rule(job.state, job.attention or None, action) is None:
            raise ActionNotOpen(NOT_NOW)  # another operator acted meanwhile
        if rule.only_if_nothing_moved and not nothing_moved(job):
            raise ActionNotOpen(MONEY_MOVED)
        if rule.new_attempt:
            previous = job.refunds.order_by("-number").get()
            number = previous.number + 1
            Refund.objects.create(
                job=job, number=number, mchid=job.mchid, out_refund_no=next_number(job, number),
                replaces=previous, amount=previous.amount, total=previous.total,
                reason=previous.reason, notify_url=previous.notify_url,
            )  # fmt: skip
            job.needs_query = False
        write(job, rule.decision, timezone.now())
        job.save()
    return job
