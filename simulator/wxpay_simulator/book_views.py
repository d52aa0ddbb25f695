"""What the books show: the control surface's views of orders and returns, and the money
that moved in a period, from which the daily bill is written (``bills.py``).

Reading settles what is due (a return's result is computed when it is looked at), under
the books' lock like every write.
"""

from __future__ import annotations

from typing import Any

from .books import Books
from .ledger_records import MERCHANT_ID, PROCESSING, SUCCESS, Order, format_time


class BookViews(Books):
    """The control surface's views and the bill's movements, over :class:`Books`."""

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
