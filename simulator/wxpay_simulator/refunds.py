"""Refunds: 申请退款, 查询单笔退款 and 发起异常退款, with WeChat Pay's rules.

Why lazy, like the returns: a refund is PROCESSING until the moment its outcome is due,
computed from the clock when it is looked at (a query, the control surface, or the
notifier's pass, which is what makes its notification go out). The clock can be
advanced (``POST /_simulator/clock``) to see the 7-day close, the 365-day window or
the frozen period end.

The checks of a create, in this order (申请退款, https://pay.weixin.qq.com/doc/v3/partner/4012886219
and https://pay.weixin.qq.com/doc/v3/merchant/4012556457; its FAQ for the rest):

1. the same out_refund_no again: the same fields answer the refund as it is now;
   other fields, 400 INVALID_REQUEST "订单金额或退款金额与之前请求不一致";
2. the payment, in the request's form: absent, 404 RESOURCE_NOT_EXISTS "订单不存在";
   present only in the other form (a partner payment refunded in direct mode, or the
   reverse), 400 INVALID_REQUEST "退款请求的交易模式与支付时不一致" (this simulator's
   words; WeChat Pay documents only that the modes must match);
3. ``amount.total`` not the payment's: 400 INVALID_REQUEST "订单金额与原订单不一致";
4. more than 365 days after the payment's success: 400 INVALID_REQUEST;
5. less than 60 s after the payment's previous refund request (any out_refund_no):
   429 FREQUENCY_LIMITED (each request that gets here starts a new 60 s);
6. 50 refunds of the payment already (CLOSED ones count): 400 INVALID_REQUEST;
7. more than the payment's total less its refunds (but CLOSED ones): 400 INVALID_REQUEST;
8. the money: while the payment's splits are open, a refund within its frozen amount is
   paid from it, a larger one is 403 RULE_LIMIT "申请退款金额大于剩余未分账金额，请等待
   分账完成后再试"; ``amount.from`` pays UNAVAILABLE from frozen and AVAILABLE from the
   balance, only while splits are open (else 400 INVALID_REQUEST). Otherwise the payer's
   available balance pays: short of it (a balance set and below the refund), the
   merchant's policy (``POST /_simulator/merchants``) decides: ``refuse`` (the default),
   403 NOT_ENOUGH and nothing kept (the same number may go again); ``hold``, accepted
   and PROCESSING until the balance suffices, CLOSED 7 days after its creation if it
   never does.

An accepted refund is SUCCESS ``processing_seconds`` after acceptance (the
``processing`` fault changes that), or ABNORMAL instead when the ``abnormal`` fault hit
its create; 发起异常退款 takes an ABNORMAL refund on (PROCESSING again, channel
OTHER_BANKCARD, SUCCESS after ``processing_seconds``). A refund paid partly from frozen
money through ``amount.from`` whose payment was unfrozen while it was processing ends
CLOSED. A CLOSED refund's money goes back where it came from.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError
from .ledger_records import format_time
from .payments import DAY, Payment, PaymentBook
from .refund_validation import AbnormalRequest, RefundRequest

SPACING_SECONDS = 60
MAX_REFUNDS = 50
WINDOW_DAYS = 365
HOLD_DAYS = 7
POLICIES = ("refuse", "hold")
FINAL = ("SUCCESS", "CLOSED")
#: States a notification announces (退款结果通知: REFUND.SUCCESS / CLOSED / ABNORMAL).
NOTIFIED = ("SUCCESS", "CLOSED", "ABNORMAL")


@dataclass
class Refund:
    mchid: str
    sub_mchid: str | None
    payment: Payment
    request: RefundRequest
    refund_id: str
    created_at: float
    resolves_at: float
    frozen_part: int
    available_part: int
    #: Accepted with the balance short (policy ``hold``): waiting for money.
    waiting_funds: bool = False
    #: The ``abnormal`` fault hit its create: it ends ABNORMAL instead of SUCCESS.
    doomed: bool = False
    status: str = "PROCESSING"
    channel: str = "ORIGINAL"
    user_received_account: str = "支付用户零钱"
    finished_at: float | None = None
    #: Statuses already handed to the notifier (each is announced once).
    announced: set[str] = field(default_factory=set)

    @property
    def out_refund_no(self) -> str:
        return self.request.out_refund_no

    def entity(self) -> dict[str, Any]:
        """The refund entity of 申请退款 / 查询单笔退款 / 发起异常退款."""
        req = self.request
        amount: dict[str, Any] = {"total": req.total, "refund": req.refund}
        if req.funds_from:
            amount["from"] = [{"account": a, "amount": n} for a, n in req.funds_from]
        amount.update(
            payer_total=req.total,
            payer_refund=req.refund,
            settlement_refund=req.refund,
            settlement_total=req.total,
            discount_refund=0,
            currency="CNY",
            refund_fee=0,
        )
        body: dict[str, Any] = {
            "refund_id": self.refund_id,
            "out_refund_no": req.out_refund_no,
            "transaction_id": self.payment.transaction_id,
            "out_trade_no": self.payment.out_trade_no,
            "channel": self.channel,
            "user_received_account": self.user_received_account,
        }
        if self.status == "SUCCESS" and self.finished_at is not None:
            body["success_time"] = format_time(self.finished_at)
        body.update(
            create_time=format_time(self.created_at),
            status=self.status,
            funds_account="UNAVAILABLE" if self.frozen_part else "AVAILABLE",
            amount=amount,
            promotion_detail=[],
        )
        return body


class RefundDesk:
    """The refunds of every payment; takes the payments' lock for everything."""

    def __init__(self, payments: PaymentBook, processing: Callable[[], float]) -> None:
        #: The settings' ``processing_seconds`` now (a refund whose money came late).
        self.processing = processing
        self.payments = payments
        self.ledger = payments.ledger
        self.refunds: dict[tuple[str, str, str], Refund] = {}
        self.policies: dict[str, str] = {}
        #: Called with each refund that reached a status to announce (the notifier).
        self.on_status: Callable[[Refund], None] = lambda refund: None

    def reset(self) -> None:
        with self.payments.lock:
            self.refunds.clear()
            self.policies.clear()

    def set_policy(self, account: str, policy: str) -> None:
        if policy not in POLICIES:
            raise ValueError(f"refund_when_short must be one of {', '.join(POLICIES)}")
        with self.payments.lock:
            self.policies[account] = policy

    # -- 申请退款 -----------------------------------------------------------------------
    def create(
        self, req: RefundRequest, mchid: str, processing: float, doomed: bool
    ) -> dict[str, Any]:
        with self.payments.lock:
            now = self.ledger.now()
            key = (mchid, req.sub_mchid or "", req.out_refund_no)
            known = self.refunds.get(key)
            if known is not None:
                if known.request.fields() != req.fields():
                    raise ApiError(400, "INVALID_REQUEST", "订单金额或退款金额与之前请求不一致")
                self._settle(known, now)
                return known.entity()
            payment = self._payment(req, mchid)
            self.payments.settle(payment, now)
            self._check(payment, req, now)
            frozen_part, available_part = self._fund(payment, req)
            short = bool(available_part) and not self.ledger.take_balance(
                payment.payer, available_part
            )
            if short and self.policies.get(payment.payer, "refuse") == "refuse":
                raise ApiError(403, "NOT_ENOUGH", "商户可用退款余额不足")
            refund = Refund(
                mchid,
                req.sub_mchid,
                payment,
                req,
                self.payments.new_id("5030", now),
                now,
                math.inf if short else now + max(processing, 0.0),
                frozen_part,
                available_part,
                waiting_funds=bool(short),
                doomed=doomed,
            )
            payment.refunds.append(refund)
            self.refunds[key] = refund
            self._settle(refund, now)
            return refund.entity()

    def _payment(self, req: RefundRequest, mchid: str) -> Payment:
        book = self.payments
        payment = None
        if req.transaction_id is not None:
            payment = book.find(mchid, req.transaction_id, req.sub_mchid)
            other = book.find_any(mchid, req.transaction_id)
        else:
            matching = [
                p
                for p in book.payments.values()
                if p.mchid == mchid and p.out_trade_no == req.out_trade_no
            ]
            payment = next((p for p in matching if p.sub_mchid == req.sub_mchid), None)
            other = matching[0] if matching else None
        if payment is None and other is not None:
            raise ApiError(400, "INVALID_REQUEST", "退款请求的交易模式与支付时不一致")
        if payment is None:
            raise ApiError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        return payment

    def _check(self, payment: Payment, req: RefundRequest, now: float) -> None:
        if req.total != payment.total:
            raise ApiError(400, "INVALID_REQUEST", "订单金额与原订单不一致")
        if now - payment.success_at > WINDOW_DAYS * DAY:
            raise ApiError(400, "INVALID_REQUEST", "订单已超过可退款的最大期限（365天）")
        last = payment.last_refund_request_at
        if last is not None and now - last < SPACING_SECONDS:
            raise ApiError(429, "FREQUENCY_LIMITED", "同一笔订单的退款请求需间隔1分钟")
        payment.last_refund_request_at = now
        if len(payment.refunds) >= MAX_REFUNDS:
            raise ApiError(400, "INVALID_REQUEST", "订单退款次数已达上限（50次）")
        refunded = sum(r.request.refund for r in payment.refunds if r.status != "CLOSED")
        if req.refund > payment.total - refunded:
            raise ApiError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")

    def _fund(self, payment: Payment, req: RefundRequest) -> tuple[int, int]:
        """(from frozen, from available) of an accepted refund, or the refusal."""
        frozen = self.payments.frozen(payment)
        if req.funds_from:
            if not self.payments.splits_open(payment):
                raise ApiError(400, "INVALID_REQUEST", "订单不在待分账或分账中，不支持指定出资账户")
            parts = dict(req.funds_from)
            if parts.get("UNAVAILABLE", 0) > frozen:
                raise ApiError(403, "RULE_LIMIT", "未结算出资金额大于剩余未分账金额")
            return parts.get("UNAVAILABLE", 0), parts.get("AVAILABLE", 0)
        if self.payments.splits_open(payment):
            if req.refund > frozen:
                raise ApiError(
                    403, "RULE_LIMIT", "申请退款金额大于剩余未分账金额，请等待分账完成后再试"
                )
            return req.refund, 0
        return 0, req.refund

    # -- 查询单笔退款 -----------------------------------------------------------------------
    def query(self, out_refund_no: str, sub_mchid: str | None, mchid: str) -> dict[str, Any]:
        with self.payments.lock:
            refund = self.refunds.get((mchid, sub_mchid or "", out_refund_no))
            if refund is None:
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
            self._settle(refund, self.ledger.now())
            return refund.entity()

    # -- 发起异常退款 -----------------------------------------------------------------------
    def apply_abnormal(
        self,
        req: AbnormalRequest,
        mchid: str,
        processing: float,
        decrypt: Callable[[str], str],
    ) -> dict[str, Any]:
        """Take an ABNORMAL refund on; ``decrypt`` opens the card's fields (never kept)."""
        with self.payments.lock:
            refund = self.refunds.get((mchid, req.sub_mchid or "", req.out_refund_no))
            if refund is None or refund.refund_id != req.refund_id:
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
            now = self.ledger.now()
            self._settle(refund, now)
            if refund.status != "ABNORMAL":
                raise ApiError(400, "INVALID_REQUEST", "退款单状态不是退款异常")
            if req.type == "USER_BANK_CARD":
                account, name = (decrypt(text) for text in req.encrypted)
                if not (account.isdigit() and name.strip()):
                    raise ApiError(400, "PARAM_ERROR", "银行卡号或姓名不正确")
                refund.user_received_account = f"{req.bank_type}用户银行卡"
            else:
                refund.user_received_account = "交易商户银行账户"
            refund.status, refund.channel, refund.doomed = "PROCESSING", "OTHER_BANKCARD", False
            refund.resolves_at = now + max(processing, 0.0)
            self._settle(refund, now)
            return refund.entity()

    # -- time --------------------------------------------------------------------------
    def settle_all(self) -> None:
        """Look at every refund now (the notifier's pass: outcomes that came due)."""
        with self.payments.lock:
            now = self.ledger.now()
            for refund in list(self.refunds.values()):
                self._settle(refund, now)

    def _settle(self, refund: Refund, now: float) -> None:
        if refund.status == "PROCESSING":
            self._advance(refund, now)
        if refund.status in NOTIFIED and refund.status not in refund.announced:
            refund.announced.add(refund.status)
            self.on_status(refund)

    def _advance(self, refund: Refund, now: float) -> None:
        payer = refund.payment.payer
        if refund.waiting_funds:
            if self.ledger.take_balance(payer, refund.available_part):
                refund.waiting_funds = False
                refund.resolves_at = now + max(self.processing(), 0.0)
            elif now >= refund.created_at + HOLD_DAYS * DAY:
                self._close(refund, refund.created_at + HOLD_DAYS * DAY, give_back=False)
                return
        if now < refund.resolves_at:
            return
        unfrozen = refund.payment.unfrozen_at
        if (
            refund.request.funds_from
            and refund.frozen_part
            and unfrozen is not None
            and refund.created_at <= unfrozen <= refund.resolves_at
        ):
            self._close(refund, refund.resolves_at, give_back=True)
        elif refund.doomed:
            refund.status = "ABNORMAL"
        else:
            refund.status, refund.finished_at = "SUCCESS", refund.resolves_at

    def _close(self, refund: Refund, at: float, *, give_back: bool) -> None:
        refund.status, refund.finished_at = "CLOSED", at
        if give_back and refund.available_part:
            self.ledger.move_balance(refund.payment.payer, refund.available_part)
        if refund.frozen_part and refund.payment.unfrozen_at is not None:
            self.ledger.move_balance(refund.payment.payer, refund.frozen_part)

    # -- views -------------------------------------------------------------------------
    def views(self, mchid: str | None = None) -> list[dict[str, Any]]:
        with self.payments.lock:
            now = self.ledger.now()
            out = []
            for (owner, sub, _), refund in self.refunds.items():
                if mchid is not None and owner != mchid:
                    continue
                self._settle(refund, now)
                out.append(
                    {
                        **refund.entity(),
                        "mchid": owner,
                        "sub_mchid": sub or None,
                        "notify_url": refund.request.notify_url,
                    }
                )
            return out
