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

import math
from typing import Any

from .book_views import BookViews
from .errors import ApiError
from .ledger_records import (
    KEEP,
    MERCHANT_ID,
    PROCESSING,
    SUCCESS,
    Keep,
    Order,
    ReceiverFlags,
    Return,
)
from .order_seeds import SeedError, parse_order_spec
from .validation import CreateRequest, OrderQueryRequest, QueryRequest

SHORT_BALANCE = (403, "NOT_ENOUGH", "可用余额不足，请充值后重新发起")
MAX_RETURNS_PER_ORDER = 50
RETURN_WINDOW_SECONDS = 180 * 86400


class Ledger(BookViews):
    """WeChat Pay's rules over the books: seeding, receivers' flags, and the API operations.

    Every method is thread-safe (the books' one short lock, :class:`books.Books`).
    """

    # -- seeding -----------------------------------------------------------------------
    def seed(self, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add sharing orders; re-seeding an (sub_mchid, out_order_no) replaces its receivers.

        Every spec is validated before any is stored; an ``order_id`` already taken by
        another order stops the batch at that order (``SeedError``). A re-seeded order
        keeps its order_id, transaction_id and the detail_id of each line it keeps,
        unless the spec names new ones.
        """
        parsed = [parse_order_spec(spec) for spec in specs]
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
