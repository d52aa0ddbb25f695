"""Each WeChat Pay call of a refund job waits for the quota it counts against.

Why per call, not per step: one step can make several calls (the inspection asks
查询订单, 查询剩余待分金额, then 查询分账结果 for each sharing order of the payment), and
a token per step would start more calls a second than the quota allows. Why per
endpoint: WeChat Pay counts the refund endpoints (申请退款, 查询单笔退款, 发起异常退款) on
their own quota, 150 calls a second per merchant with at most 6 failing ones
(https://pay.weixin.qq.com/doc/v3/merchant/4012556457), beside the profit-sharing
endpoints' ``RATE_LIMIT_QPS``; each other endpoint of a job (查询订单, 查询剩余待分金额,
查询分账结果, 解冻剩余资金) is counted on its own, at ``RATE_LIMIT_QPS``.

A refused call (429 for the rate, not the 60-second spacing between two refunds of
one payment, which is the payment's and not the merchant's) slows the limiter of the
quota it was counted on, as the decision table's ``slow_down`` says.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .ratelimit import DEFAULT_QUOTA, limiter_for
from .wechatpay import errors

#: The quota each call of the client is counted on (``ratelimit.QUOTAS``); a call not
#: named here is counted on the returns' (``RATE_LIMIT_QPS``).
CALL_QUOTAS: dict[str, str] = {
    "create_refund": "refunds",
    "query_refund": "refunds",
    "apply_abnormal_refund": "refunds",
    "query_payment": "payment_query",
    "query_unsplit_amount": "unsplit_query",
    "query_order": "order_query",
    "unfreeze": "unfreeze",
}
#: Where a failed call of a quota is counted too (WeChat Pay's 6 failing refunds a second).
FAILURE_QUOTAS: dict[str, str] = {"refunds": "refund_failures"}


class PacedClient:
    """A merchant's client whose every call first takes a token of its quota.

    Only the client's public calls are paced; attributes are passed through. One
    instance serves one step of one job (it remembers the quota of its last call).
    """

    def __init__(self, client: Any, mchid: str) -> None:
        self._client = client
        self._mchid = mchid
        #: The quota of the last call made through this instance ("" before any).
        self.last_quota = ""

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or not callable(attribute):
            return attribute
        return self._paced(attribute, CALL_QUOTAS.get(name, DEFAULT_QUOTA))

    def _paced(self, method: Callable[..., Any], quota: str) -> Callable[..., Any]:
        def paced(*args: Any, **kwargs: Any) -> Any:
            limiter_for(self._mchid, quota).acquire()
            self.last_quota = quota
            try:
                return method(*args, **kwargs)
            except errors.APIError:
                failures = FAILURE_QUOTAS.get(quota)
                if failures:
                    limiter_for(self._mchid, failures).acquire()
                raise

        return paced

    def slow_down(self) -> None:
        """WeChat Pay said this merchant calls too often: the last call's quota slows."""
        if self.last_quota:
            limiter_for(self._mchid, self.last_quota).penalize()
