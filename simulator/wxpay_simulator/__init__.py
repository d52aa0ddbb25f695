"""A local WeChat Pay APIv3 simulator for profit-sharing returns and refunds (its own process).

Endpoints: 请求分账回退 and 查询分账回退结果 (``/v3/profitsharing/return-orders``),
查询分账结果 (``GET /v3/profitsharing/orders/{out_order_no}``), the bill and
``/v3/certificates``; 查询订单, 查询剩余待分金额, 解冻剩余资金, 申请退款, 查询单笔退款 and
发起异常退款 (``refund_api.py``), and the 退款结果通知 it sends (``notifier.py``). Sharing
orders and payments themselves are seeded through the control surface (``control.py``,
``refund_control.py``).

Run ``python -m wxpay_simulator --state-dir DIR`` (or ``wxpay-simulator``); tests use
:class:`wxpay_simulator.testing.SimulatorProcess`. Its own distribution,
``django-wxpay-profitsharing-simulator``, so that a production install of
``django-wxpay-profitsharing`` carries no WeChat Pay stand-in. It imports only
``django_wxpay_profitsharing.wechatpay`` (crypto, the published algorithm the client is
tested against), never Django.

Modules, one job each: ``credentials`` (keys, certificates, credentials.json),
``signing`` (which key signs a response, rotation), ``auth`` (request signatures),
``validation`` (field rules), ``ledger`` (WeChat Pay's rules for sharing orders and
returns, results over time) over ``books`` (the state, one lock), ``book_views``
(views, the bill's movements), ``ledger_records`` and ``order_seeds``,
``bills`` (the daily profit-sharing bill and its download), ``faults`` (fault
selection), ``throttle`` (QPS windows), ``calls`` (call log),
``api`` (the /v3 endpoints), ``control`` (the /_simulator surface), ``server`` (HTTP),
``launch`` (assembly) and ``__main__`` (CLI); for refunds ``payments`` (payments,
frozen money, unfreezes), ``refunds`` (refunds and their rules), ``refund_validation``,
``refund_api``, ``refund_control`` and ``notifier`` (notifications, retries).

Choices where WeChat Pay's documentation leaves room :

- partner form = ``sub_mchid`` present (any 1-32 digits pass validation; the order is
  looked up under that sub-merchant), direct form = ``sub_mchid`` absent, null or "";
  both are served by the same simulator, keyed separately;
- unknown split order on create: 404 RESOURCE_NOT_EXISTS "分账单不存在" (so is an
  ``order_id`` that contradicts ``out_order_no``);
- same ``out_return_no`` with different fields: 400 INVALID_REQUEST; with the same
  fields: the stored entity (same ``return_id``/``create_time``, result as of now);
- more than 50 returns per order, or past 180 days since the split: 400 INVALID_REQUEST;
- only MERCHANT_ID lines whose result is SUCCESS, on a FINISHED order, and never the
  payer itself, can be returned from (400 INVALID_REQUEST, one message per reason);
  ``return_mchid`` must be digits (PARAM_ERROR, as WeChat refuses an openid);
- a receiver's balance (control surface) short of a return: 403 NOT_ENOUGH
  "可用余额不足，请充值后重新发起" (status and code chosen here; the sources give only
  the message), the return kept PROCESSING for the identical request (原单重试);
- 查询分账结果 for an unknown order, or with another ``transaction_id``: 404
  RESOURCE_NOT_EXISTS "记录不存在"; ``transaction_id`` missing: 400 PARAM_ERROR;
- ``finish_time`` is absent while PROCESSING; times are ``YYYY-MM-DDTHH:MM:SS+08:00``;
- ``description`` length counts characters; ``amount`` must be a JSON integer >= 1;
- a POST whose Content-Type is not JSON: 400 INVALID_REQUEST; unknown path: 404
  NOT_FOUND; wrong method: 405 METHOD_NOT_ALLOWED with ``Allow``; all signed;
- ``/v3/certificates`` is served in every mode; certificate rotation lives in memory
  (a restart is back to the persisted certificate);
- the bill (``bills.py``) is served for today too, in the layout documented in
  ``wechatpay/bill_parser.py``; its download answer is the one answer not signed;
- several merchants (``--merchants N``: the first mchid and the N-1 following ones),
  each with its own key pair, serial and APIv3 key; each request is verified against
  the merchant its Authorization names and acts on that merchant's books only; the
  QPS limit applies per merchant and endpoint; faults, receivers and the clock are
  shared (see ``credentials.py``, ``books.py``);
- faults act only on authenticated calls that passed their merchant's QPS limit;
- keep-alive connections idle for 8 s are closed (``--idle-timeout``), like WeChat Pay.
"""

from .app import Settings, Simulator
from .launch import build_server

#: Released together with django-wxpay-profitsharing, whose ``wechatpay`` it imports:
#: the same version, pinned both ways (its ``simulator`` extra, this distribution's
#: dependency).
__version__ = "0.1.0"

__all__ = ["Settings", "Simulator", "__version__", "build_server"]
