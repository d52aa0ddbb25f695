"""The simulated books: sharing orders, their receivers, and the returns made against them.

Why lazy: a return answered ``PROCESSING`` becomes ``SUCCESS``/``FAILED`` when it is
*looked at* after its processing time, computed from the clock at that moment. No
background thread, nothing to race with, and a test can shift the clock
(:meth:`Ledger.advance_clock`) to see the 5-day ``TIME_OUT_CLOSED`` or the 180-day limit.

Rules (WeChat Pay's 请求分账回退 and 查询分账结果 pages,
https://pay.weixin.qq.com/docs/partner/apis/profit-sharing/return-orders/create-return-order.html
and https://pay.weixin.qq.com/docs/partner/apis/profit-sharing/orders/query-order.html,
the error comments of wechatpay-go ``services/profitsharing/api_return_orders.go``, with
this project's decisions):

- each merchant served has its own books: orders are keyed by (mchid, sub_mchid or "",
  out_order_no) and (mchid, sub_mchid or "", order_id), returns by (mchid, sub_mchid or
  "", out_return_no), the mchid being the one the request's Authorization names
  (default, and for a seed without ``mchid``: the first merchant); a return names its
  sharing order within its merchant. Receivers (flags, balances) and the clock are
  shared: a receiver is one account whoever pays it. The partner form names a
  sub-merchant, the direct form none; any 1-32 digit
  sub_mchid passes validation and simply finds no order unless one was seeded for it;
  each order has a ``transaction_id`` (seeded or generated, 28 digits ``4200...``) and
  each receiver line a ``detail_id`` (``3601...``), both kept when an order is re-seeded;
- 查询分账结果 answers the ``OrdersEntity`` (receiver lines in seeding order, each with
  ``fail_reason`` only when given for a CLOSED line and ``finish_time`` only once the
  line is not PENDING); an unknown order, or a ``transaction_id`` that is not the
  order's, is 404 RESOURCE_NOT_EXISTS "记录不存在";
- create check order: idempotency (same out_return_no: same fields -> the stored entity,
  different -> 400 INVALID_REQUEST), order exists (404 RESOURCE_NOT_EXISTS
  "分账单不存在"), order FINISHED (400 INVALID_REQUEST "分账单未完成，不能发起回退"),
  return_mchid not the payer itself (the "解冻给分账方" line: 400 INVALID_REQUEST
  "分账回退出资商户不允许和接收商户相同"), a line for return_mchid (400 INVALID_REQUEST
  "回退方不存在"), a MERCHANT_ID line (400 INVALID_REQUEST "不支持'分账给个人'的分账单发起
  分账回退"), whose result is SUCCESS (400 INVALID_REQUEST "仅支持对分账结果为SUCCESS的
  接收方发起分账回退"), receiver allows returns (403 NO_AUTH), 180 days since the split,
  at most 50 returns per order (400 INVALID_REQUEST), amount within what is left (400
  INVALID_REQUEST "剩余可回退的金额不足"); PROCESSING and SUCCESS returns hold their
  amount, FAILED ones free it;
- receiver balance (``POST /_simulator/receivers`` ``balance``, fen; null = unlimited,
  the default): a return beyond it is answered **403 NOT_ENOUGH "可用余额不足，请充值后
  重新发起"** and yet recorded, PROCESSING, holding its amount (WeChat's FAQ: the query
  then shows PROCESSING). The status and code are this simulator's decision: the sources
  give only the message; NOT_ENOUGH/403 is what WeChat answers for money that is short
  elsewhere (请求分账 "分账金额不足") and what the client's error table already reads as a
  refusal. Only the *identical* request (same out_return_no, same fields) goes on
  ("原单重试"): re-sent while still short, the same 403; re-sent after a top-up, it is
  accepted (processing time from then on) and debits the balance. A new out_return_no
  for the held money meets "剩余可回退的金额不足". Still PROCESSING 5 days after its
  creation, it is FAILED TIME_OUT_CLOSED, and a re-send answers that entity;
- an accepted return debits the receiver's balance (when one is set); a debited return
  that ends FAILED gives the amount back;
- results: processing time 0 -> final at once; otherwise PROCESSING until then, then
  FAILED ACCOUNT_ABNORMAL if the receiver was abnormal at creation or became abnormal
  while processing, else SUCCESS; still PROCESSING after 5 days -> FAILED TIME_OUT_CLOSED;
- ``finish_time`` is present only once the result is final (it is the moment the result
  was reached, not the moment it was observed); times are ``YYYY-MM-DDTHH:MM:SS+08:00``.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError
from .validation import CreateRequest, OrderQueryRequest, QueryRequest

PROCESSING, SUCCESS, FAILED = "PROCESSING", "SUCCESS", "FAILED"
MERCHANT_ID = "MERCHANT_ID"
RECEIVER_TYPES = ("MERCHANT_ID", "PERSONAL_OPENID", "PERSONAL_SUB_OPENID")
RECEIVER_RESULTS = ("SUCCESS", "PENDING", "CLOSED")
ORDER_STATES = ("FINISHED", "PROCESSING")
#: fail_reason of a CLOSED receiver line (the ``OrderReceiverDetail`` model of 查询分账结果,
#: e.g. TheNorthMemory/wechatpay-openapi ``docs/v3/profitsharing/orders.yaml``).
RECEIVER_FAIL_REASONS = (
    "ACCOUNT_ABNORMAL",
    "NO_RELATION",
    "RECEIVER_HIGH_RISK",
    "RECEIVER_REAL_NAME_NOT_VERIFIED",
    "NO_AUTH",
    "RECEIVER_RECEIPT_LIMIT",
    "PAYER_ACCOUNT_ABNORMAL",
    "INVALID_REQUEST",
)
DEFAULT_DESCRIPTION = "分给商户"
TRANSACTION_ID_RE = re.compile(r"[0-9A-Za-z]{1,32}")
SHORT_BALANCE = (403, "NOT_ENOUGH", "可用余额不足，请充值后重新发起")
MAX_RETURNS_PER_ORDER = 50
RETURN_WINDOW_SECONDS = 180 * 86400
PROCESSING_TIMEOUT_SECONDS = 5 * 86400
BEIJING = dt.timezone(dt.timedelta(hours=8))


def format_time(timestamp: float) -> str:
    """RFC 3339 in Beijing time, seconds precision (what the simulator emits)."""
    return dt.datetime.fromtimestamp(int(timestamp), BEIJING).strftime("%Y-%m-%dT%H:%M:%S+08:00")


@dataclass
class Receiver:
    type: str
    account: str
    amount: int
    result: str = SUCCESS
    description: str = DEFAULT_DESCRIPTION
    fail_reason: str | None = None
    detail_id: str = ""

    def entity(self, at: float) -> dict[str, Any]:
        """One ``OrderReceiverDetail``, fields in wechatpay-go's order."""
        body: dict[str, Any] = {
            "amount": self.amount,
            "description": self.description,
            "type": self.type,
            "account": self.account,
            "result": self.result,
        }
        if self.fail_reason:
            body["fail_reason"] = self.fail_reason
        body["create_time"] = format_time(at)
        if self.result != "PENDING":
            body["finish_time"] = format_time(at)
        body["detail_id"] = self.detail_id
        return body


@dataclass
class Order:
    sub_mchid: str | None
    out_order_no: str
    order_id: str
    transaction_id: str
    receivers: list[Receiver]
    state: str
    finished_at: float
    returns: list[Return] = field(default_factory=list)
    #: The merchant whose books hold the order (the payer of a direct-form order).
    mchid: str = ""

    @property
    def key(self) -> str:
        return self.sub_mchid or ""

    @property
    def payer(self) -> str:
        """Who paid the shares: the sub-merchant, or the merchant in the direct form."""
        return self.sub_mchid or self.mchid

    def entity(self) -> dict[str, Any]:
        """The ``OrdersEntity`` of 查询分账结果, fields in the documented order."""
        body: dict[str, Any] = {}
        if self.sub_mchid:
            body["sub_mchid"] = self.sub_mchid
        body.update(
            transaction_id=self.transaction_id,
            out_order_no=self.out_order_no,
            order_id=self.order_id,
            state=self.state,
            receivers=[rec.entity(self.finished_at) for rec in self.receivers],
        )
        return body


@dataclass
class OrderSpec:
    """A validated ``POST /_simulator/orders`` body."""

    mchid: str | None
    sub_mchid: str | None
    out_order_no: str
    order_id: str | None
    transaction_id: str | None
    receivers: list[Receiver]
    state: str


@dataclass
class Return:
    sub_mchid: str | None
    order: Order
    out_return_no: str
    return_id: str
    return_mchid: str
    amount: int
    description: str
    created_at: float
    resolves_at: float
    doomed: bool
    result: str = PROCESSING
    fail_reason: str | None = None
    finished_at: float | None = None
    #: Refused for a short balance and waiting for the identical request (原单重试).
    awaiting_balance: bool = False
    #: The receiver's flags this return debited, and by how much (given back on failure).
    debited_from: ReceiverFlags | None = None
    debited: int = 0

    def settle(self, now: float) -> None:
        """Apply the outcome if its time has come (idempotent, called under the lock)."""
        if self.result != PROCESSING:
            return
        timeout_at = self.created_at + PROCESSING_TIMEOUT_SECONDS
        if self.resolves_at <= timeout_at and now >= self.resolves_at:
            self.result = FAILED if self.doomed else SUCCESS
            self.fail_reason = "ACCOUNT_ABNORMAL" if self.doomed else None
            self.finished_at = self.resolves_at
        elif self.resolves_at > timeout_at and now >= timeout_at:
            self.result, self.fail_reason, self.finished_at = FAILED, "TIME_OUT_CLOSED", timeout_at
        if self.result == FAILED:
            self._give_back()

    def debit(self, flags: ReceiverFlags | None) -> None:
        """Take the amount from the receiver's balance, when one is set."""
        if flags is not None and flags.balance is not None:
            flags.balance -= self.amount
            self.debited_from, self.debited = flags, self.amount

    def _give_back(self) -> None:
        flags, self.debited_from = self.debited_from, None
        if flags is not None and flags.balance is not None:
            flags.balance += self.debited
        self.debited = 0

    def entity(self) -> dict[str, Any]:
        """The ``ReturnOrdersEntity`` JSON object, fields in the documented order."""
        body: dict[str, Any] = {}
        if self.sub_mchid:
            body["sub_mchid"] = self.sub_mchid
        body.update(
            order_id=self.order.order_id,
            out_order_no=self.order.out_order_no,
            out_return_no=self.out_return_no,
            return_id=self.return_id,
            return_mchid=self.return_mchid,
            amount=self.amount,
            description=self.description,
            result=self.result,
        )
        if self.result == FAILED:
            body["fail_reason"] = self.fail_reason
        body["create_time"] = format_time(self.created_at)
        if self.finished_at is not None:
            body["finish_time"] = format_time(self.finished_at)
        return body


@dataclass
class ReceiverFlags:
    abnormal: bool = False
    return_enabled: bool = True
    #: Available balance in fen; None is unlimited.
    balance: int | None = None

    def view(self, account: str) -> dict[str, Any]:
        return {
            "account": account,
            "abnormal": self.abnormal,
            "return_enabled": self.return_enabled,
            "balance": self.balance,
        }


class Keep(enum.Enum):
    """A receiver setting the control surface call leaves as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP


class SeedError(ValueError):
    """A control-surface order that cannot be seeded (answered 400 with the message)."""


class Ledger:
    """All business state behind one short lock; every method is thread-safe."""

    def __init__(self, mchid: str = "", merchants: tuple[str, ...] = ()) -> None:
        #: The default merchant (the first served): whose books a request or seed
        #: without an mchid uses. A direct-form order's payer is its merchant (a
        #: partner order's its sub_mchid), which can never be returned from.
        self.mchid = mchid
        self.merchants = frozenset(merchants or (mchid,))
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._clock_offset = 0.0
        self._clear()

    def _clear(self) -> None:
        # Keys: (mchid, sub_mchid or "", number).
        self._orders: dict[tuple[str, str, str], Order] = {}
        self._orders_by_id: dict[tuple[str, str, str], Order] = {}
        self._returns: dict[tuple[str, str, str], Return] = {}
        self._flags: dict[str, ReceiverFlags] = {}

    # -- clock -------------------------------------------------------------------------
    def now(self) -> float:
        """Wall-clock seconds, shifted by the control surface's clock offset."""
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> float:
        """Move the ledger's clock forward (or back); returns the total offset."""
        with self._lock:
            self._clock_offset += seconds
            return self._clock_offset

    def reset(self) -> None:
        """Forget orders, returns, receiver flags and the clock offset."""
        with self._lock:
            self._clear()
            self._clock_offset = 0.0

    def _new_id(self, prefix: str, now: float) -> str:
        """28 digits like WeChat's ids: prefix, Beijing time, a process-wide counter."""
        stamp = dt.datetime.fromtimestamp(int(now), BEIJING).strftime("%Y%m%d%H%M%S")
        return f"{prefix}{stamp}{next(self._ids) % 10**10:010d}"

    # -- seeding -----------------------------------------------------------------------
    def seed(self, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add sharing orders; re-seeding an (sub_mchid, out_order_no) replaces its receivers.

        Every spec is validated before any is stored; an ``order_id`` already taken by
        another order stops the batch at that order (``SeedError``). A re-seeded order
        keeps its order_id, transaction_id and the detail_id of each line it keeps,
        unless the spec names new ones.
        """
        parsed = [_parse_order_spec(spec) for spec in specs]
        for spec in parsed:
            if spec.mchid is not None and spec.mchid not in self.merchants:
                raise SeedError(f"mchid {spec.mchid} is not a merchant this simulator serves")
        with self._lock:
            now = self.now()
            views = []
            for spec in parsed:
                mchid = spec.mchid or self.mchid
                key = (mchid, spec.sub_mchid or "", spec.out_order_no)
                previous = self._orders.get(key)
                order_id = spec.order_id or (
                    previous.order_id if previous else self._new_id("3008", now)
                )
                other = self._orders_by_id.get((mchid, key[1], order_id))
                if other is not None and other is not previous:
                    raise SeedError(f"order_id {order_id} belongs to another order")
                transaction_id = spec.transaction_id or (
                    previous.transaction_id if previous else self._new_id("4200", now)
                )
                known = (
                    {(r.type, r.account): r.detail_id for r in previous.receivers}
                    if (previous)
                    else {}
                )
                for rec in spec.receivers:
                    rec.detail_id = known.get((rec.type, rec.account)) or self._new_id("3601", now)
                order = Order(
                    spec.sub_mchid,
                    spec.out_order_no,
                    order_id,
                    transaction_id,
                    spec.receivers,
                    spec.state,
                    now,
                    mchid=mchid,
                )
                if previous is not None:
                    order.returns = previous.returns
                    self._orders_by_id.pop((mchid, key[1], previous.order_id), None)
                    for ret in order.returns:
                        ret.order = order
                self._orders[key] = order
                self._orders_by_id[(mchid, key[1], order_id)] = order
                views.append(self._order_view(order, now))
            return views

    # -- receivers ---------------------------------------------------------------------
    def mark_receiver(
        self,
        account: str,
        *,
        abnormal: bool | None = None,
        return_enabled: bool | None = None,
        balance: int | Keep | None = KEEP,
    ) -> dict[str, Any]:
        """Flag a receiver and/or set its available balance (None: unlimited).

        Becoming abnormal dooms its returns still processing. A new balance is what is
        available from now on; returns waiting for a top-up wait for their re-send.
        """
        with self._lock:
            flags = self._flags.setdefault(account, ReceiverFlags())
            if abnormal is not None:
                if abnormal and not flags.abnormal:
                    now = self.now()
                    for ret in self._returns.values():
                        if ret.return_mchid == account:
                            ret.settle(now)
                            if ret.result == PROCESSING:
                                ret.doomed = True
                flags.abnormal = abnormal
            if return_enabled is not None:
                flags.return_enabled = return_enabled
            if balance is not KEEP:
                flags.balance = balance
            return flags.view(account)

    # -- the API operations --------------------------------------------------------------
    def create_return(
        self, req: CreateRequest, processing_seconds: float, mchid: str | None = None
    ) -> dict[str, Any]:
        """Apply the create rules in ``mchid``'s books; the entity or ``ApiError``."""
        scope = (mchid or self.mchid, req.sub_mchid or "")
        with self._lock:
            now = self.now()
            existing = self._returns.get((*scope, req.out_return_no))
            if existing is not None:
                if not _same_request(existing, req):
                    raise ApiError(
                        400,
                        "INVALID_REQUEST",
                        "商户回退单号已被使用，且请求参数与原请求不一致",
                    )
                existing.settle(now)
                if existing.awaiting_balance and existing.result == PROCESSING:
                    self._retry_short(existing, now, processing_seconds)
                return existing.entity()
            order = self._find_order(scope, req.order_id, req.out_order_no)
            shared = self._returnable_share(order, req.return_mchid)
            flags = self._flags.get(req.return_mchid)
            if not (flags or ReceiverFlags()).return_enabled:
                raise ApiError(403, "NO_AUTH", "回退方未开通分账回退功能")
            if now - order.finished_at > RETURN_WINDOW_SECONDS:
                raise ApiError(400, "INVALID_REQUEST", "已超过分账回退的时限（180天）")
            if len(order.returns) >= MAX_RETURNS_PER_ORDER:
                raise ApiError(
                    400, "INVALID_REQUEST", f"同一分账单最多发起{MAX_RETURNS_PER_ORDER}次分账回退"
                )
            if req.amount > shared - _taken(order, req.return_mchid, now):
                raise ApiError(400, "INVALID_REQUEST", "剩余可回退的金额不足")
            doomed = flags is not None and flags.abnormal
            short = not doomed and _short(flags, req.amount)
            ret = Return(
                sub_mchid=req.sub_mchid,
                order=order,
                out_return_no=req.out_return_no,
                return_id=self._new_id("3005", now),
                return_mchid=req.return_mchid,
                amount=req.amount,
                description=req.description,
                created_at=now,
                resolves_at=math.inf if short else now + max(processing_seconds, 0.0),
                doomed=doomed,
                awaiting_balance=short,
            )
            if not (short or doomed):
                ret.debit(flags)
            ret.settle(now)
            order.returns.append(ret)
            self._returns[(*scope, req.out_return_no)] = ret
            if short:
                raise ApiError(*SHORT_BALANCE)
            return ret.entity()

    def _returnable_share(self, order: Order, account: str) -> int:
        """What ``account`` got on ``order`` if WeChat lets it be returned from; else raise."""
        if order.state != "FINISHED":
            raise ApiError(400, "INVALID_REQUEST", "分账单未完成，不能发起回退")
        if account == order.payer:
            raise ApiError(400, "INVALID_REQUEST", "分账回退出资商户不允许和接收商户相同")
        lines = [r for r in order.receivers if r.account == account]
        if not lines:
            raise ApiError(400, "INVALID_REQUEST", "回退方不存在")
        merchant = [r for r in lines if r.type == MERCHANT_ID]
        if not merchant:
            raise ApiError(400, "INVALID_REQUEST", "不支持'分账给个人'的分账单发起分账回退")
        shared = sum(r.amount for r in merchant if r.result == SUCCESS)
        if not shared:
            raise ApiError(400, "INVALID_REQUEST", "仅支持对分账结果为SUCCESS的接收方发起分账回退")
        return shared

    def _retry_short(self, ret: Return, now: float, processing_seconds: float) -> None:
        """The identical request of a return refused for a short balance (原单重试)."""
        flags = self._flags.get(ret.return_mchid)
        if _short(flags, ret.amount):
            raise ApiError(*SHORT_BALANCE)
        ret.awaiting_balance = False
        ret.doomed = flags is not None and flags.abnormal
        ret.resolves_at = now + max(processing_seconds, 0.0)
        if not ret.doomed:
            ret.debit(flags)
        ret.settle(now)

    def query_order(self, req: OrderQueryRequest, mchid: str | None = None) -> dict[str, Any]:
        """查询分账结果: the order entity, or 404 RESOURCE_NOT_EXISTS "记录不存在"."""
        with self._lock:
            order = self._orders.get((mchid or self.mchid, req.sub_mchid or "", req.out_order_no))
            if order is None or order.transaction_id != req.transaction_id:
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "记录不存在")
            return order.entity()

    def query_return(self, req: QueryRequest, mchid: str | None = None) -> dict[str, Any]:
        """The entity with its result as of now, or 404 RESOURCE_NOT_EXISTS."""
        with self._lock:
            ret = self._returns.get((mchid or self.mchid, req.sub_mchid or "", req.out_return_no))
            if ret is None or ret.order.out_order_no != req.out_order_no:
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "记录不存在")
            ret.settle(self.now())
            return ret.entity()

    def _find_order(
        self, scope: tuple[str, str], order_id: str | None, out_order_no: str | None
    ) -> Order:
        by_no = self._orders.get((*scope, out_order_no)) if out_order_no else None
        by_id = self._orders_by_id.get((*scope, order_id)) if order_id else None
        order = by_no or by_id
        if order is None or (out_order_no and order_id and by_no is not by_id):
            raise ApiError(404, "RESOURCE_NOT_EXISTS", "分账单不存在")
        return order

    # -- payments, unfreezes and refunds (``payments.py``, ``refunds.py``) ---------------
    def shared_total(self, mchid: str, sub_mchid: str | None, transaction_id: str) -> int:
        """What the sharing orders naming a payment gave away (every line but CLOSED ones)."""
        with self._lock:
            return sum(
                line.amount
                for order in self._orders.values()
                if order.mchid == mchid
                and order.key == (sub_mchid or "")
                and order.transaction_id == transaction_id
                for line in order.receivers
                if line.result != "CLOSED"
            )

    def order_entity(
        self, mchid: str, sub_mchid: str | None, out_order_no: str
    ) -> dict[str, Any] | None:
        """The ``OrdersEntity`` of an order, or None (an unfreeze's number already used)."""
        with self._lock:
            order = self._orders.get((mchid, sub_mchid or "", out_order_no))
            return None if order is None else order.entity()

    def add_order(self, order: Order) -> None:
        """Keep an order made by the simulator itself (an unfreeze's)."""
        with self._lock:
            self._orders[(order.mchid, order.key, order.out_order_no)] = order
            self._orders_by_id[(order.mchid, order.key, order.order_id)] = order

    def move_balance(self, account: str, amount: int) -> None:
        """Add ``amount`` to the account's available balance, when one is set."""
        with self._lock:
            flags = self._flags.get(account)
            if flags is not None and flags.balance is not None:
                flags.balance += amount

    def take_balance(self, account: str, amount: int) -> bool:
        """Debit ``amount`` when the balance allows it (an unset balance always does)."""
        with self._lock:
            flags = self._flags.get(account)
            if flags is None or flags.balance is None:
                return True
            if flags.balance < amount:
                return False
            flags.balance -= amount
            return True

    # -- views for the control surface -------------------------------------------------
    def returns(self, mchid: str | None = None) -> list[dict[str, Any]]:
        """Every return (of ``mchid``; None: of every merchant) with its current result.

        Each entity as WeChat answers it, plus the ``mchid`` whose books hold it.
        """
        with self._lock:
            now = self.now()
            out = []
            for (owner, _, _), ret in self._returns.items():
                if mchid is not None and owner != mchid:
                    continue
                ret.settle(now)
                out.append({**ret.entity(), "mchid": owner})
            return out

    def order(
        self, out_order_no: str, sub_mchid: str | None = None, mchid: str | None = None
    ) -> dict[str, Any] | None:
        """An order with per-receiver returned/returnable amounts; None if unknown.

        ``sub_mchid`` None matches any sub-merchant (first seeded wins), "" the direct
        form; ``mchid`` None is the default merchant's books.
        """
        owner = mchid or self.mchid
        with self._lock:
            if sub_mchid is not None:
                order = self._orders.get((owner, sub_mchid, out_order_no))
            else:
                matching = (o for (m, _, no), o in self._orders.items() if m == owner)
                order = next((o for o in matching if o.out_order_no == out_order_no), None)
            return None if order is None else self._order_view(order, self.now())

    def _order_view(self, order: Order, now: float) -> dict[str, Any]:
        receivers = []
        for rec in order.receivers:
            returned = processing = 0
            for ret in order.returns:
                if ret.return_mchid != rec.account:
                    continue
                ret.settle(now)
                if ret.result == SUCCESS:
                    returned += ret.amount
                elif ret.result == PROCESSING:
                    processing += ret.amount
            eligible = (
                order.state == "FINISHED"
                and rec.type == MERCHANT_ID
                and rec.result == SUCCESS
                and rec.account != order.payer
            )
            receivers.append(
                {
                    "type": rec.type,
                    "account": rec.account,
                    "amount": rec.amount,
                    "result": rec.result,
                    "fail_reason": rec.fail_reason,
                    "description": rec.description,
                    "detail_id": rec.detail_id,
                    "returned": returned,
                    "processing": processing,
                    "returnable": rec.amount - returned - processing if eligible else 0,
                }
            )
        return {
            "mchid": order.mchid,
            "sub_mchid": order.sub_mchid,
            "out_order_no": order.out_order_no,
            "order_id": order.order_id,
            "transaction_id": order.transaction_id,
            "state": order.state,
            "finish_time": format_time(order.finished_at),
            "receivers": receivers,
            "return_count": len(order.returns),
        }

    # -- the daily bill ----------------------------------------------------------------
    def movements(
        self, start: float, end: float, sub_mchid: str | None, mchid: str | None = None
    ) -> list[dict[str, Any]]:
        """The money that moved in ``[start, end)`` in ``mchid``'s books (None: the default
        merchant's), for the bill (``simulator/bills.py``).

        Split rows: each SUCCESS receiver line of an order that finished then, but the
        payer's own line (解冻给分账方 is not a split to a receiver). Return rows: each
        return that reached SUCCESS then (its finish_time); failed and processing returns
        are not in the bill, like failed splits. ``sub_mchid`` None: every sub-merchant
        and the direct form; otherwise that sub-merchant's only.
        """
        rows: list[dict[str, Any]] = []
        with self._lock:
            now = self.now()
            owner = mchid or self.mchid
            for order in self._orders.values():
                if order.mchid != owner or (sub_mchid is not None and order.key != sub_mchid):
                    continue
                payer = order.payer
                common = {
                    "sub_mchid": order.sub_mchid or "",
                    "transaction_id": order.transaction_id,
                    "order_id": order.order_id,
                    "out_order_no": order.out_order_no,
                }
                if start <= order.finished_at < end:
                    for rec in order.receivers:
                        if rec.result != SUCCESS or rec.account == payer:
                            continue
                        rows.append(
                            {
                                **common,
                                "kind": "split",
                                "time": order.finished_at,
                                "sponsor": payer,
                                "detail_id": rec.detail_id,
                                "return_id": "",
                                "out_return_no": "",
                                "receiver_type": rec.type,
                                "receiver_account": rec.account,
                                "amount": rec.amount,
                                "description": rec.description,
                            }
                        )
                for ret in order.returns:
                    ret.settle(now)
                    finished = ret.finished_at
                    if ret.result != SUCCESS or finished is None or not start <= finished < end:
                        continue
                    rows.append(
                        {
                            **common,
                            "kind": "return",
                            "time": ret.created_at,
                            "sponsor": ret.return_mchid,
                            "detail_id": "",
                            "return_id": ret.return_id,
                            "out_return_no": ret.out_return_no,
                            "receiver_type": MERCHANT_ID,
                            "receiver_account": ret.return_mchid,
                            "amount": ret.amount,
                            "description": ret.description,
                        }
                    )
        rows.sort(key=lambda row: (row["time"], row["kind"], row["out_order_no"]))
        return rows


def _taken(order: Order, account: str, now: float) -> int:
    """Amount held by PROCESSING and SUCCESS returns to ``account`` on ``order``."""
    total = 0
    for ret in order.returns:
        if ret.return_mchid == account:
            ret.settle(now)
            if ret.result in (PROCESSING, SUCCESS):
                total += ret.amount
    return total


def _same_request(ret: Return, req: CreateRequest) -> bool:
    """A retry is the same request when every field it names matches the stored return."""
    return (
        (req.order_id is None or req.order_id == ret.order.order_id)
        and (req.out_order_no is None or req.out_order_no == ret.order.out_order_no)
        and req.return_mchid == ret.return_mchid
        and req.amount == ret.amount
        and req.description == ret.description
    )


def _short(flags: ReceiverFlags | None, amount: int) -> bool:
    """True when the receiver has a balance and it is below ``amount``."""
    return flags is not None and flags.balance is not None and amount > flags.balance


def _optional_text(item: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str | None:
    value = item.get(name) or None
    if value is not None and not (isinstance(value, str) and pattern.fullmatch(value)):
        raise SeedError(f"{name} must match {pattern.pattern}, null or absent")
    return value


def _parse_receiver(item: Any) -> Receiver:
    if not isinstance(item, dict):
        raise SeedError("each receiver must be a JSON object")
    rtype = item.get("type") or MERCHANT_ID
    account, amount = item.get("account"), item.get("amount")
    result = item.get("result") or SUCCESS
    if rtype not in RECEIVER_TYPES:
        raise SeedError(f"receiver type must be one of {', '.join(RECEIVER_TYPES)}")
    if not isinstance(account, str) or not account:
        raise SeedError("receiver account must be a non-empty string")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
        raise SeedError("receiver amount must be a positive integer (fen)")
    if result not in RECEIVER_RESULTS:
        raise SeedError(f"receiver result must be one of {', '.join(RECEIVER_RESULTS)}")
    fail_reason = item.get("fail_reason") or None
    if fail_reason is not None:
        if result != "CLOSED":
            raise SeedError("fail_reason is only for a CLOSED receiver")
        if fail_reason not in RECEIVER_FAIL_REASONS:
            raise SeedError(f"fail_reason must be one of {', '.join(RECEIVER_FAIL_REASONS)}")
    description = item.get("description") or DEFAULT_DESCRIPTION
    if not isinstance(description, str) or not 1 <= len(description) <= 80:
        raise SeedError("receiver description must be a string of 1-80 characters")
    return Receiver(rtype, account, amount, result, description, fail_reason)


def _parse_order_spec(spec: Any) -> OrderSpec:
    """Validate one seeded order; raises ``SeedError`` naming the problem."""
    if not isinstance(spec, dict):
        raise SeedError("each order must be a JSON object")
    mchid = spec.get("mchid") or None
    if mchid is not None and not (isinstance(mchid, str) and mchid.isdigit()):
        raise SeedError("mchid must be a string of digits, null or absent")
    sub_mchid = spec.get("sub_mchid") or None
    if sub_mchid is not None and not (isinstance(sub_mchid, str) and sub_mchid.isdigit()):
        raise SeedError("sub_mchid must be a string of digits, null or absent")
    out_order_no = spec.get("out_order_no")
    if not isinstance(out_order_no, str) or not out_order_no or len(out_order_no) > 64:
        raise SeedError("out_order_no must be a non-empty string of at most 64 characters")
    order_id = spec.get("order_id") or None
    if order_id is not None and (not isinstance(order_id, str) or len(order_id) > 64):
        raise SeedError("order_id must be a string of at most 64 characters")
    transaction_id = _optional_text(spec, "transaction_id", TRANSACTION_ID_RE)
    state = spec.get("state") or "FINISHED"
    if state not in ORDER_STATES:
        raise SeedError(f"state must be one of {', '.join(ORDER_STATES)}")
    raw = spec.get("receivers")
    if not isinstance(raw, list) or not raw:
        raise SeedError("receivers must be a non-empty list")
    merged: dict[tuple[str, str], Receiver] = {}
    for item in raw:
        receiver = _parse_receiver(item)
        known = merged.get((receiver.type, receiver.account))
        if known is None:
            merged[(receiver.type, receiver.account)] = receiver
        elif (known.result, known.fail_reason, known.description) != (
            receiver.result,
            receiver.fail_reason,
            receiver.description,
        ):
            raise SeedError(f"receiver {receiver.account} is listed twice with different lines")
        else:
            known.amount += receiver.amount
    return OrderSpec(
        mchid, sub_mchid, out_order_no, order_id, transaction_id, list(merged.values()), state
    )
