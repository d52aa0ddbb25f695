"""One step of a refund job: the calls it makes, and the outcome they came back with.

The call half of claim -> call -> apply (``refund_jobs.py`` claims and applies): made
outside any transaction, it never raises for WeChat Pay's or the network's faults;
whatever happened becomes a :class:`~.refund_states.RefundOutcome`, which the decision
table (``refund_decisions.py``) reads. What the step learnt (the payment, the plan,
WeChat Pay's refund or unfreeze) travels in :class:`StepResult` to be written under the
job's lock. Here: inspecting the payment, the unfreeze and the clawbacks; the refund's
own two steps (申请退款, 查询单笔退款) are in ``refund_request_steps.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Sum

from . import clawbacks, order_sync, services
from .answers import AnswerMismatch
from .ledger import Blocked, order_ledger
from .models.clawbacks import ClawbackState
from .models.returns import ProfitSharingReturn
from .models.sharing_orders import ProfitSharingOrder
from .refund_decisions import STEP_OUTCOMES
from .refund_models import Refund, RefundJob
from .refund_plan import OrderShare, PaymentFacts, Plan, make_plan
from .refund_states import RefundJobState, RefundOutcome, RefundStep
from .states import Action, ReturnState
from .wechatpay import WeChatPayClient, errors
from .wechatpay.models import CallInfo, SharingOrder
from .wechatpay.payments import Payment as WirePayment
from .wechatpay.payments import UnfreezeRequest
from .wechatpay.refunds import Refund as WireRefund
from .wechatpay.words import SharingOrderState, TradeState

#: Lines whose share never comes back by a clawback (the payer's own unfreeze line and a
#: split still running are not shares of a receiver, or not yet).
NEVER_RETURNED = frozenset(Blocked) - {Blocked.OWN_LINE, Blocked.ORDER_NOT_FINISHED}
#: Jobs whose amount counts as refunded, or being refunded, against the payment.
RESERVING_STATES = frozenset(RefundJobState) - {
    RefundJobState.FAILED,
    RefundJobState.CANCELLED,
    RefundJobState.CLOSED,
}


@dataclass
class StepResult:
    """What one step made of its calls."""

    step: RefundStep
    outcome: RefundOutcome | None = None
    calls: list[CallInfo] = field(default_factory=list)
    error_code: str = ""
    error_message: str = ""
    payment: WirePayment | None = None
    plan: Plan | None = None
    refund: WireRefund | None = None
    unfreeze: SharingOrder | None = None


def outcome_of_error(exc: Exception, step: RefundStep) -> RefundOutcome:
    """The outcome of a call that raised, read in the light of the step's own outcomes."""
    if isinstance(exc, AnswerMismatch):
        return RefundOutcome.MISMATCH
    if isinstance(exc, errors.APIError):
        meaning = exc.meaning.value
        if (
            meaning in RefundOutcome.__members__.values()
            and RefundOutcome(meaning) in (STEP_OUTCOMES[step])
        ):
            return RefundOutcome(meaning)
        return RefundOutcome.RETRY_SAME if exc.retryable else RefundOutcome.REFUSED
    if isinstance(exc, errors.TransportError):
        return RefundOutcome.MAYBE_SENT if exc.maybe_sent else RefundOutcome.NOT_SENT
    if isinstance(exc, errors.InvalidRequest):
        return RefundOutcome.INVALID_LOCAL
    return RefundOutcome.UNVERIFIABLE  # a signature, or anything else the client raised


def _failed(result: StepResult, exc: Exception) -> StepResult:
    result.outcome = outcome_of_error(exc, result.step)
    if isinstance(exc, errors.APIError):
        result.error_code = exc.code or f"HTTP_{exc.status}"
        result.error_message = exc.message or str(exc)
    else:
        result.error_code = type(exc).__name__
        result.error_message = str(exc)
    return result


FAULTS = (errors.WeChatPayError, AnswerMismatch)


# ------------------------------------------------------------------------ inspect


def payment_facts(
    payment_pk: int | None, payment: WirePayment, *, exclude_job: int | None = None
) -> PaymentFacts:
    """What WeChat Pay says of the payment, with the refunds this site made of it."""
    others = RefundJob.objects.filter(payment=payment_pk, state__in=RESERVING_STATES)
    sent = Refund.objects.filter(job__payment=payment_pk, sent_at__isnull=False)
    if exclude_job is not None:
        others, sent = others.exclude(pk=exclude_job), sent.exclude(job=exclude_job)
    refunded = others.aggregate(total=Sum("amount"))["total"] or 0
    return PaymentFacts(
        total=payment.total,
        success_time=payment.success_time,
        paid=payment.trade_state in (TradeState.SUCCESS, TradeState.REFUND),
        refunded=refunded,
        refund_count=sent.count(),
    )


def clawed_back(job: RefundJob) -> int:
    """What the job's clawbacks brought back (their returns that succeeded), in fen."""
    returns = ProfitSharingReturn.objects.filter(
        clawback__refund_job=job, state=ReturnState.SUCCEEDED
    )
    return int(returns.aggregate(total=Sum("amount"))["total"] or 0)


def payment_problems(transaction_id: str, sub_mchid: str, payment: WirePayment) -> list[str]:
    """What in 查询订单's answer names another payment, or another mode of it."""
    wrong = ["transaction_id"] if payment.transaction_id != transaction_id else []
    if (payment.sub_mchid or "") != sub_mchid:
        wrong.append("sub_mchid")  # a refund must use the mode the payment was taken in
    return wrong


def shares(
    mchid: str,
    sub_mchid: str,
    transaction_id: str,
    client: WeChatPayClient,
    now: datetime,
    calls: list[CallInfo] | None = None,
) -> list[OrderShare]:
    """The payment's sharing orders the site knows, synced now, oldest first."""
    found = []
    orders = ProfitSharingOrder.objects.filter(
        mchid=mchid, sub_mchid=sub_mchid, transaction_id=transaction_id
    ).order_by("created", "pk")
    for mirror in orders:
        order = order_sync.sync_order(
            out_order_no=mirror.out_order_no, transaction_id=mirror.transaction_id,
            sub_mchid=mirror.sub_mchid or None, mchid=mirror.mchid, client=client,
            on_call=None if calls is None else calls.append,
        )  # fmt: skip
        ledger = order_ledger(order, now)
        found.append(
            OrderShare(
                out_order_no=order.out_order_no,
                returnable=sum(entry.returnable for entry in ledger),
                not_returnable=sum(
                    entry.shared - entry.returned
                    for entry in ledger
                    if entry.blocked in NEVER_RETURNED
                ),
                open=order.state != SharingOrderState.FINISHED,
            )
        )
    return found


@dataclass
class Gathered:
    """What WeChat Pay says of a payment now: the payment, its frozen money, its orders.

    ``unsplit`` None: the payment was not taken with profit sharing (no split can hold
    any of it back).
    """

    payment: WirePayment
    unsplit: int | None
    orders: list[OrderShare]


def gather(
    mchid: str,
    sub_mchid: str,
    transaction_id: str,
    client: WeChatPayClient,
    now: datetime,
    calls: list[CallInfo],
) -> Gathered:
    """查询订单, 查询剩余待分金额 and the sharing orders synced; raises the client's errors."""
    payment = client.query_payment(transaction_id, sub_mchid or None, on_call=calls.append)
    wrong = payment_problems(transaction_id, sub_mchid, payment)
    if wrong:
        raise AnswerMismatch(wrong)
    try:
        unsplit = client.query_unsplit_amount(transaction_id, on_call=calls.append).unsplit_amount
    except errors.APIError as exc:
        if exc.meaning is not errors.Meaning.NOT_SHARING_ORDER:
            raise
        return Gathered(payment, None, [])
    return Gathered(payment, unsplit, shares(mchid, sub_mchid, transaction_id, client, now, calls))


def plan_of(
    gathered: Gathered,
    amount: int,
    facts: PaymentFacts,
    *,
    allow_unfreeze: bool,
    now: datetime,
    in_balance: int = 0,
) -> Plan:
    """The plan for ``amount`` fen of the gathered payment (its first step in ``outcome``)."""
    if gathered.unsplit is None:
        plan = make_plan(amount, 0, [], allow_unfreeze=False, payment=facts, now=now)
        if plan.outcome is RefundOutcome.NOT_REFUNDABLE:
            return plan
        return Plan(RefundOutcome.NOT_SHARING_ORDER, amount, 0)
    return make_plan(
        amount, gathered.unsplit, gathered.orders, allow_unfreeze=allow_unfreeze,
        payment=facts, now=now, in_balance=in_balance,
    )  # fmt: skip


def inspect(
    job: RefundJob, client: WeChatPayClient, now: datetime, *, allow_unfreeze: bool
) -> StepResult:
    """The plan of now, for an approved job; PLAN_GREW when it needs more of the shop's
    own money than the approver saw."""
    result = StepResult(RefundStep.INSPECT)
    try:
        gathered = gather(job.mchid, job.sub_mchid, job.transaction_id, client, now, result.calls)
    except FAULTS as exc:
        return _failed(result, exc)
    result.payment = gathered.payment
    facts = payment_facts(job.payment_id, gathered.payment, exclude_job=job.pk)
    plan = plan_of(gathered, job.amount, facts, allow_unfreeze=allow_unfreeze, now=now,
                   in_balance=job.unfrozen + clawed_back(job))  # fmt: skip
    result.plan = plan
    grew = job.approved_shop_funds is not None and plan.shop_funds > job.approved_shop_funds
    result.outcome = RefundOutcome.PLAN_GREW if grew else plan.outcome
    if plan.refusal is not None:
        result.error_code, result.error_message = "NOT_REFUNDABLE", str(plan.refusal[1])
    return result


# ------------------------------------------------------------------------ unfreeze


def unfreeze(job: RefundJob, client: WeChatPayClient) -> StepResult:
    """解冻剩余资金 under the job's own new out_order_no (the identical one on retries)."""
    result = StepResult(RefundStep.UNFREEZE)
    try:
        request = UnfreezeRequest(
            transaction_id=job.transaction_id,
            out_order_no=job.unfreeze_out_order_no,
            description=f"解冻以退款 {job.out_refund_no}"[:80],
            sub_mchid=job.sub_mchid or None,
        )
        result.unfreeze = client.unfreeze(request, on_call=result.calls.append)
    except FAULTS as exc:
        return _failed(result, exc)
    result.outcome = RefundOutcome.UNFREEZE_ACCEPTED
    return result


def confirm_unfreeze(job: RefundJob, client: WeChatPayClient) -> StepResult:
    """查询分账结果 of the unfreeze: FINISHED means the money is in the available balance."""
    result = StepResult(RefundStep.CONFIRM_UNFREEZE)
    try:
        order = client.query_order(
            job.unfreeze_out_order_no, job.transaction_id, job.sub_mchid or None,
            on_call=result.calls.append,
        )  # fmt: skip
    except FAULTS as exc:
        return _failed(result, exc)
    if order.out_order_no != job.unfreeze_out_order_no:
        return _failed(result, AnswerMismatch(["out_order_no"]))
    result.unfreeze = order
    finished = order.state == SharingOrderState.FINISHED
    result.outcome = (
        RefundOutcome.UNFREEZE_FINISHED if finished else RefundOutcome.UNFREEZE_PROCESSING
    )
    return result


# ------------------------------------------------------------------------ clawbacks


def clawback_number(job: RefundJob, index: int) -> str:
    """The job's ``index``-th clawback: its own number, the same on every retry."""
    return f"RJ{job.pk}C{index}"


def claw_back(
    job: RefundJob, client: WeChatPayClient, *, returns_client: WeChatPayClient | None = None
) -> StepResult:
    """The plan's clawbacks, made (idempotent on their numbers) and sent now.

    ``client`` syncs the sharing orders; the returns are sent through ``returns_client``
    (``client`` when not given), whose calls the returns' own machinery paces.
    """
    result = StepResult(RefundStep.CLAW_BACK)
    pending: list[int] = []
    try:
        for index, (out_order_no, amount) in enumerate(job.plan.get("clawbacks", []), 1):
            order = ProfitSharingOrder.objects.get(
                mchid=job.mchid, sub_mchid=job.sub_mchid, out_order_no=out_order_no
            )
            clawback, _created = clawbacks.create_or_get_clawback(
                {"out_clawback_no": clawback_number(job, index), "out_order_no": out_order_no,
                 "transaction_id": order.transaction_id, "sub_mchid": job.sub_mchid or None,
                 "amount": amount, "description": f"退款 {job.out_refund_no}"[:80],
                 "mchid": job.mchid},
                submit=True, client=client, refund_job=job, on_call=result.calls.append,
            )  # fmt: skip
            pending += clawback.returns.filter(state="pending").values_list("pk", flat=True)
    except ValidationError as exc:
        result.outcome = RefundOutcome.CLAWBACK_INCOMPLETE
        result.error_code, result.error_message = "CLAWBACK_REFUSED", "; ".join(exc.messages)
        return result
    except FAULTS as exc:
        _failed(result, exc)
        result.outcome = RefundOutcome.RETRY_SAME
        return result
    services.run_many(pending, Action.SUBMIT, client=returns_client or client)
    result.outcome = RefundOutcome.CLAWBACKS_MADE
    return result


def await_clawback(job: RefundJob) -> StepResult:
    """The job's clawbacks: all completed, one incomplete, or still under way."""
    result = StepResult(RefundStep.AWAIT_CLAWBACK)
    states = set(job.clawbacks.values_list("state", flat=True))
    if ClawbackState.INCOMPLETE in states:
        result.outcome = RefundOutcome.CLAWBACK_INCOMPLETE
    elif states and states <= {ClawbackState.COMPLETED}:
        result.outcome = RefundOutcome.CLAWBACK_COMPLETED
    else:
        result.outcome = RefundOutcome.CLAWBACK_OPEN
    return result
