"""Payments, the money of theirs still frozen, and 解冻剩余资金.

Why payments: a refund names a payment, must repeat its total, must come within 365
days of its success and in its mode, and is paid from the payment's frozen money while
its splits are open, from the merchant's available balance once they are over. A
sharing order names its payment by ``transaction_id``.

The rules (official pages: 解冻剩余资金 https://pay.weixin.qq.com/doc/v3/partner/4012466860,
查询剩余待分金额, the profit-sharing FAQ https://pay.weixin.qq.com/doc/v3/merchant/4014547102):

- a payment is seeded (``POST /_simulator/payments``) in the partner form (with a
  ``sub_mchid``) or the direct form; 查询订单 finds it only in its own form, and its
  ``trade_state`` reads ``REFUND`` once a refund of it succeeded;
- its frozen (unsplit) amount is its total less the lines of the sharing orders that
  name it (but CLOSED lines) and less the refunds paid from frozen money (but CLOSED
  ones); a profit-sharing payment's splits are *open* while some of it is frozen
  and it was not unfrozen (when splits and refunds took it all, they are over);
- 解冻剩余资金 with a *new* out_order_no moves the frozen rest to the payer's available
  balance (when one is set) at once and answers a sharing order that is PROCESSING,
  with the line "解冻给分账方" to the payer, and FINISHED after ``processing_seconds``;
  with nothing frozen, 403 NOT_ENOUGH "分账金额为0"; a number already used (a split's
  or an earlier unfreeze's) answers that order and unfreezes nothing, as WeChat Pay
  treats a replay; a payment taken without profit sharing, 400 INVALID_REQUEST;
- a payment still frozen ``frozen_days`` (default 30) after its success is unfrozen
  by itself when the clock passes that day, its frozen rest made available.

The payments share the ledger's clock and its balances (one account, one balance,
whether it receives splits or pays refunds).
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ApiError
from .ledger import Ledger
from .ledger_records import BEIJING, MERCHANT_ID, Order, Receiver, format_time
from .order_seeds import TRANSACTION_ID_RE, SeedError
from .refund_validation import PaymentQuery, UnfreezeRequest

if TYPE_CHECKING:
    from .refunds import Refund

DAY = 86400
UNFREEZE_LINE = "解冻给分账方"


@dataclass
class Payment:
    mchid: str
    sub_mchid: str | None
    transaction_id: str
    out_trade_no: str
    total: int
    success_at: float
    profit_sharing: bool
    frozen_days: int
    #: When its splits ended (an unfreeze, or the frozen period over); None: open.
    unfrozen_at: float | None = None
    #: When the last refund request of it came (the 60-second spacing).
    last_refund_request_at: float | None = None
    #: Refunds of it (``refunds.Refund``), in the order they were accepted.
    refunds: list[Refund] = field(default_factory=list)

    @property
    def payer(self) -> str:
        """The account the payment's money belongs to: the sub-merchant, or the merchant."""
        return self.sub_mchid or self.mchid

    def entity(self, refunded: bool) -> dict[str, Any]:
        """查询订单's answer, in the payment's own form."""
        if self.sub_mchid:
            head: dict[str, Any] = {
                "sp_appid": "wxd678efh567hg6787",
                "sp_mchid": self.mchid,
                "sub_mchid": self.sub_mchid,
            }
            payer = {"sp_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
        else:
            head = {"appid": "wxd678efh567hg6787", "mchid": self.mchid}
            payer = {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
        return {
            **head,
            "out_trade_no": self.out_trade_no,
            "transaction_id": self.transaction_id,
            "trade_type": "JSAPI",
            "trade_state": "REFUND" if refunded else "SUCCESS",
            "trade_state_desc": "转入退款" if refunded else "支付成功",
            "bank_type": "OTHERS",
            "attach": "",
            "success_time": format_time(self.success_at),
            "payer": payer,
            "amount": {
                "total": self.total,
                "payer_total": self.total,
                "currency": "CNY",
                "payer_currency": "CNY",
            },
        }


@dataclass
class UnfreezeOrder(Order):
    """The sharing order of an unfreeze: PROCESSING until ``finishes_at``, then FINISHED."""

    finishes_at: float = 0.0
    clock: Callable[[], float] = field(default=lambda: 0.0, repr=False)

    def entity(self) -> dict[str, Any]:
        if self.state == "PROCESSING" and self.clock() >= self.finishes_at:
            self.state, self.finished_at = "FINISHED", self.finishes_at
            for line in self.receivers:
                line.result = "SUCCESS"
        return super().entity()


class PaymentBook:
    """Every payment, by (mchid, sub_mchid or "", transaction_id); thread-safe.

    ``lock`` is shared with the refunds (``refunds.py``): a payment and its refunds
    change together. It is always taken before the ledger's own lock.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self.payments: dict[tuple[str, str, str], Payment] = {}

    def reset(self) -> None:
        with self.lock:
            self.payments.clear()

    # -- seeding and views -------------------------------------------------------------
    def seed(self, spec: Any) -> dict[str, Any]:
        """Add a payment (``POST /_simulator/payments``); returns its view."""
        payment = self._parse(spec)
        with self.lock:
            key = (payment.mchid, payment.sub_mchid or "", payment.transaction_id)
            if any(k[0] == key[0] and k[2] == key[2] for k in self.payments):
                raise SeedError(f"transaction_id {payment.transaction_id} is already a payment")
            self.payments[key] = payment
            return self.view(payment)

    def _parse(self, spec: Any) -> Payment:
        if not isinstance(spec, dict):
            raise SeedError("the payment must be a JSON object")
        known = {
            "mchid",
            "sub_mchid",
            "transaction_id",
            "out_trade_no",
            "total",
            "success_time",
            "profit_sharing",
            "frozen_days",
        }
        unknown = sorted(set(spec) - known)
        if unknown:
            raise SeedError(f"unknown payment field(s): {', '.join(unknown)}")
        mchid = spec.get("mchid") or self.ledger.mchid
        if mchid not in self.ledger.merchants:
            raise SeedError(f"mchid {mchid} is not a merchant this simulator serves")
        sub_mchid = spec.get("sub_mchid") or None
        if sub_mchid is not None and not (isinstance(sub_mchid, str) and sub_mchid.isdigit()):
            raise SeedError("sub_mchid must be a string of digits, null or absent")
        now = self.ledger.now()
        transaction_id = spec.get("transaction_id") or self.new_id("4200", now)
        if not (isinstance(transaction_id, str) and TRANSACTION_ID_RE.fullmatch(transaction_id)):
            raise SeedError("transaction_id must be 1-32 digits or letters")
        out_trade_no = spec.get("out_trade_no") or f"T{transaction_id[-16:]}"
        total = spec.get("total")
        if isinstance(total, bool) or not isinstance(total, int) or total < 1:
            raise SeedError("total must be a positive integer (fen)")
        success_at = _time(spec.get("success_time"), now)
        sharing = spec.get("profit_sharing", True)
        days = spec.get("frozen_days", 30)
        if not isinstance(sharing, bool):
            raise SeedError("profit_sharing must be true or false")
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise SeedError("frozen_days must be a positive integer")
        return Payment(
            mchid, sub_mchid, transaction_id, str(out_trade_no), total, success_at, sharing, days
        )

    def new_id(self, prefix: str, now: float) -> str:
        """28 digits like WeChat's ids: prefix, Beijing time, a counter."""
        stamp = dt.datetime.fromtimestamp(int(now), BEIJING).strftime("%Y%m%d%H%M%S")
        return f"{prefix}{stamp}{next(self._ids) % 10**10:010d}"

    def find(self, mchid: str, transaction_id: str, sub_mchid: str | None = None) -> Payment | None:
        """The payment in exactly this form (``sub_mchid`` None: the direct form)."""
        return self.payments.get((mchid, sub_mchid or "", transaction_id))

    def find_any(self, mchid: str, transaction_id: str) -> Payment | None:
        """The payment of ``mchid`` with that id, in whichever form."""
        return next(
            (p for (m, _, tx), p in self.payments.items() if m == mchid and tx == transaction_id),
            None,
        )

    def view(self, payment: Payment) -> dict[str, Any]:
        """The control surface's view: the payment, its frozen amount and its refunds."""
        now = self.ledger.now()
        self.settle(payment, now)
        return {
            "mchid": payment.mchid,
            "sub_mchid": payment.sub_mchid,
            "transaction_id": payment.transaction_id,
            "out_trade_no": payment.out_trade_no,
            "total": payment.total,
            "success_time": format_time(payment.success_at),
            "profit_sharing": payment.profit_sharing,
            "frozen_days": payment.frozen_days,
            "unsplit_amount": self.frozen(payment),
            "splits_open": self.splits_open(payment),
            "refunds": [r.out_refund_no for r in payment.refunds],
        }

    # -- money -------------------------------------------------------------------------
    def frozen(self, payment: Payment) -> int:
        """What of the payment is still frozen (0 once unfrozen)."""
        if not payment.profit_sharing or payment.unfrozen_at is not None:
            return 0
        shared = self.ledger.shared_total(payment.mchid, payment.sub_mchid, payment.transaction_id)
        from_frozen = sum(r.frozen_part for r in payment.refunds if r.status != "CLOSED")
        return max(0, payment.total - shared - from_frozen)

    def splits_open(self, payment: Payment) -> bool:
        """True while the payment is in its split phase: frozen money left, not unfrozen."""
        return self.frozen(payment) > 0

    def settle(self, payment: Payment, now: float) -> None:
        """Unfreeze by itself once the frozen period is over (the clock may have moved)."""
        if not payment.profit_sharing or payment.unfrozen_at is not None:
            return
        due = payment.success_at + payment.frozen_days * DAY
        if now >= due:
            rest = self.frozen(payment)
            payment.unfrozen_at = due
            self.ledger.move_balance(payment.payer, rest)

    def check_split(self, spec: Any) -> None:
        """A seeded sharing order naming a payment must fit in its frozen amount."""
        if not isinstance(spec, dict) or not spec.get("transaction_id"):
            return
        with self.lock:
            mchid = spec.get("mchid") or self.ledger.mchid
            payment = self.find(mchid, spec["transaction_id"], spec.get("sub_mchid") or None)
            if payment is None:
                return
            self.settle(payment, self.ledger.now())
            lines = spec.get("receivers") or []
            amount = sum(r.get("amount", 0) for r in lines if isinstance(r, dict))
            previous = self.ledger.order(
                spec.get("out_order_no", ""), spec.get("sub_mchid") or "", mchid
            )
            already = sum(r["amount"] for r in previous["receivers"]) if previous else 0
            if not self.splits_open(payment):
                raise SeedError("the payment's splits are over (nothing is frozen): no more splits")
            if amount - already > self.frozen(payment):
                raise SeedError("the split exceeds the payment's unsplit amount")

    # -- the WeChat Pay calls ----------------------------------------------------------
    def query(self, req: PaymentQuery, mchid: str) -> dict[str, Any]:
        """查询订单 in the form the path says, in the books of the signing merchant."""
        if req.mchid != mchid:
            raise ApiError(400, "INVALID_REQUEST", "请求中的商户号与签名商户号不一致")
        with self.lock:
            payment = self.find(mchid, req.transaction_id, req.sub_mchid if req.partner else None)
            if payment is None:
                raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
            self.settle(payment, self.ledger.now())
            refunded = any(r.status == "SUCCESS" for r in payment.refunds)
            return payment.entity(refunded)

    def amounts(self, transaction_id: str, mchid: str) -> dict[str, Any]:
        """查询剩余待分金额 (no sub_mchid in either mode)."""
        with self.lock:
            payment = self.find_any(mchid, transaction_id)
            if payment is None:
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "记录不存在")
            if not payment.profit_sharing:
                raise ApiError(400, "INVALID_REQUEST", "非分账订单不支持此查询")
            self.settle(payment, self.ledger.now())
            return {"transaction_id": transaction_id, "unsplit_amount": self.frozen(payment)}

    def unfreeze(self, req: UnfreezeRequest, processing: float, mchid: str) -> dict[str, Any]:
        """解冻剩余资金: see the module's rules."""
        with self.lock:
            payment = self.find(mchid, req.transaction_id, req.sub_mchid)
            if payment is None:
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "记录不存在")
            if not payment.profit_sharing:
                raise ApiError(400, "INVALID_REQUEST", "非分账订单不支持解冻剩余资金")
            earlier = self.ledger.order_entity(mchid, req.sub_mchid, req.out_order_no)
            if earlier is not None:
                return earlier  # a replay: that order as it is, nothing unfrozen
            now = self.ledger.now()
            self.settle(payment, now)
            rest = self.frozen(payment)
            if rest == 0:
                raise ApiError(403, "NOT_ENOUGH", "分账金额为0")
            payment.unfrozen_at = now
            self.ledger.move_balance(payment.payer, rest)
            line = Receiver(
                MERCHANT_ID,
                payment.payer,
                rest,
                "PENDING",
                UNFREEZE_LINE,
                None,
                self.new_id("3601", now),
            )
            order = UnfreezeOrder(
                req.sub_mchid,
                req.out_order_no,
                self.new_id("3008", now),
                req.transaction_id,
                [line],
                "PROCESSING",
                now,
                mchid=mchid,
                finishes_at=now + max(processing, 0.0),
                clock=self.ledger.now,
            )
            self.ledger.add_order(order)
            return order.entity()


def _time(value: Any, default: float) -> float:
    """A seed's time: absent (``default``), unix seconds, or RFC 3339 with an offset."""
    if value is None:
        return default
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.timestamp()
    raise SeedError("success_time must be unix seconds or an RFC 3339 time with an offset")
