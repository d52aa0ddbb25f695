"""The refund's own steps: 申请退款 under the attempt's number, and 查询单笔退款.

Why apart from the other steps (``refund_steps.py``): these two read WeChat Pay's refund,
check it against the attempt (a refund answered for another number or amount is a
mismatch, never a success) and turn its status into an outcome; the earlier steps
(inspect, unfreeze, clawbacks) never see a refund.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .answers import AnswerMismatch
from .dbtime import between
from .refund_models import Refund, RefundJob
from .refund_states import RefundOutcome, RefundStep
from .refund_steps import FAULTS, StepResult, _failed
from .wechatpay import WeChatPayClient
from .wechatpay.refunds import Refund as WireRefund
from .wechatpay.refunds import RefundRequest
from .wechatpay.words import RefundStatus

#: WeChat Pay's refund status -> outcome (a status it adds later reads as processing).
STATUS_OUTCOMES: dict[str, RefundOutcome] = {
    RefundStatus.SUCCESS: RefundOutcome.REFUND_SUCCESS,
    RefundStatus.CLOSED: RefundOutcome.REFUND_CLOSED,
    RefundStatus.ABNORMAL: RefundOutcome.REFUND_ABNORMAL,
    RefundStatus.PROCESSING: RefundOutcome.REFUND_PROCESSING,
}


def refund_problems(attempt: Refund, answer: WireRefund) -> list[str]:
    """What in WeChat Pay's refund contradicts the refund the attempt asked for."""
    wrong = ["out_refund_no"] if answer.out_refund_no != attempt.out_refund_no else []
    if answer.amount.refund and answer.amount.refund != attempt.amount:
        wrong.append("amount")
    if len(answer.refund_id) > 32 or len(answer.user_received_account) > 64:
        wrong.append("refund_id")
    return wrong


def _answered(result: StepResult, attempt: Refund, answer: WireRefund, *, long_after: Any) -> None:
    wrong = refund_problems(attempt, answer)
    if wrong:
        _failed(result, AnswerMismatch(wrong))
        return
    result.refund = answer
    outcome = STATUS_OUTCOMES.get(str(answer.status), RefundOutcome.REFUND_PROCESSING)
    accepted = answer.create_time
    if outcome is RefundOutcome.REFUND_PROCESSING and accepted and long_after(accepted):
        outcome = RefundOutcome.REFUND_PROCESSING_LONG
    result.outcome = outcome


def refund(job: RefundJob, attempt: Refund, client: WeChatPayClient) -> StepResult:
    """申请退款 under the attempt's number: its request as frozen at its first send."""
    result = StepResult(RefundStep.REFUND)
    try:
        request = RefundRequest(
            out_refund_no=attempt.out_refund_no,
            refund=attempt.amount,
            total=attempt.total,
            transaction_id=job.transaction_id,
            sub_mchid=job.sub_mchid or None,
            reason=attempt.reason or None,
            notify_url=attempt.notify_url or None,
        )
        answer = client.create_refund(request, on_call=result.calls.append)
    except FAULTS as exc:
        return _failed(result, exc)
    _answered(result, attempt, answer, long_after=lambda _accepted: False)
    return result


def query_refund(
    job: RefundJob,
    attempt: Refund,
    client: WeChatPayClient,
    step: RefundStep,
    now: datetime,
    attention_after: timedelta,
) -> StepResult:
    """查询单笔退款: what WeChat Pay holds under the attempt's number."""
    result = StepResult(step)
    try:
        answer = client.query_refund(
            attempt.out_refund_no, job.sub_mchid or None, on_call=result.calls.append
        )
    except FAULTS as exc:
        return _failed(result, exc)
    long = step is RefundStep.QUERY_REFUND and job.attention == ""

    def long_after(accepted: datetime) -> bool:
        return long and between(accepted, now) > attention_after

    _answered(result, attempt, answer, long_after=long_after)
    return result
