"""A WeChat Pay APIv3 client for profit sharing and refunds (no Django here).

Endpoints: 请求分账回退 (``create_return``), 查询分账回退结果 (``query_return``),
查询分账结果 (``query_order``: what each receiver got, so what can be clawed back),
申请分账账单 and its download (``apply_bill``, ``download_bill_file``: rules in ``bills.py``)
here; 查询订单, 查询剩余待分金额 and 解冻剩余资金 in ``payment_calls.py``; 申请退款,
查询单笔退款 and 发起异常退款 in ``refund_calls.py``; the platform certificate
download, signing and verification in ``client_core.py``, the transport chosen by
``transport_choice.py``.
APIv3 notifications are read by ``notifications.py``, with no client needed.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from . import bills, errors, validation
from .client_core import (
    CERTIFICATES_PATH,
    USER_AGENT,
    ClientCore,
    OnCall,
    percent_encode,
)
from .error_table import Endpoint
from .models import ReturnOrder, ReturnRequest, SharingOrder
from .notifications import NotificationKeys
from .payment_calls import PaymentCalls
from .refund_calls import RefundCalls
from .sensitive import sensitive_variables
from .transport import Download
from .transport_choice import TRANSPORTS
from .validation import is_loopback_host

__all__ = [
    "CERTIFICATES_PATH",
    "ORDERS_PATH",
    "RETURN_ORDERS_PATH",
    "TRANSPORTS",
    "USER_AGENT",
    "WeChatPayClient",
    "is_loopback_host",
    "percent_encode",
]

RETURN_ORDERS_PATH = "/v3/profitsharing/return-orders"
ORDERS_PATH = "/v3/profitsharing/orders"


def _unsigned_file(headers: Any, raw: bytes, request_id: str) -> None:
    """The ``check`` of a bill download: its answer is not signed (the hash checks it)."""


class WeChatPayClient(PaymentCalls, RefundCalls, ClientCore):
    """One merchant's client: signs requests, verifies answers, speaks every endpoint.

    Public-key mode: ``wechatpay_public_key`` + ``wechatpay_public_key_id``.
    Certificate mode: ``apiv3_key`` (certificates downloaded from ``/v3/certificates``
    and refreshed when a response names an unknown serial), optionally seeded with
    ``platform_certificates``. Both at once during a migration. Partner-mode calls
    name the sub-merchant (``sub_mchid``); this client's ``mchid`` is then the service
    provider's.
    """

    @sensitive_variables()
    def create_return(
        self, request: ReturnRequest, *, on_call: OnCall | None = None
    ) -> ReturnOrder:
        """``POST /v3/profitsharing/return-orders`` (请求分账回退). Never retried here.

        ``request`` was validated when it was made, so nothing invalid is sent.
        """
        data = self._call(
            "POST",
            RETURN_ORDERS_PATH,
            body=request.body(),
            on_call=on_call,
            endpoint=Endpoint.CREATE_RETURN,
        )
        return self._typed("a return order", ReturnOrder.from_dict, data)

    @sensitive_variables()
    def query_return(
        self,
        *,
        out_return_no: str,
        out_order_no: str,
        sub_mchid: str | None = None,
        on_call: OnCall | None = None,
    ) -> ReturnOrder:
        """``GET /v3/profitsharing/return-orders/{out_return_no}`` (查询分账回退结果)."""
        params = validation.validate_query_request(
            out_return_no=out_return_no, out_order_no=out_order_no, sub_mchid=sub_mchid
        )
        path = f"{RETURN_ORDERS_PATH}/{percent_encode(params.pop('out_return_no'))}"
        query: dict[str, str] = {k: params[k] for k in ("sub_mchid", "out_order_no") if k in params}
        data = self._call("GET", path, query=query, on_call=on_call, endpoint=Endpoint.QUERY_RETURN)
        return self._typed("a return order", ReturnOrder.from_dict, data)

    @sensitive_variables()
    def query_order(
        self,
        out_order_no: str,
        transaction_id: str,
        sub_mchid: str | None = None,
        *,
        on_call: OnCall | None = None,
    ) -> SharingOrder:
        """``GET /v3/profitsharing/orders/{out_order_no}`` (查询分账结果).

        ``transaction_id`` is required by WeChat Pay; ``sub_mchid`` in partner mode.
        Retried on transient faults like every GET.
        """
        params = validation.validate_order_query_request(
            out_order_no=out_order_no, transaction_id=transaction_id, sub_mchid=sub_mchid
        )
        path = f"{ORDERS_PATH}/{percent_encode(params['out_order_no'])}"
        query: dict[str, str] = {
            k: params[k] for k in ("sub_mchid", "transaction_id") if k in params
        }
        data = self._call(
            "GET", path, query=query, on_call=on_call, endpoint=Endpoint.QUERY_SHARING_ORDER
        )
        return self._typed("a sharing order", SharingOrder.from_dict, data)

    @sensitive_variables()
    def apply_bill(
        self,
        bill_date: date | str,
        sub_mchid: str | None = None,
        tar_type: str | None = "GZIP",
        *,
        on_call: OnCall | None = None,
    ) -> bills.BillLink:
        """``GET /v3/profitsharing/bills`` (申请分账账单): where to fetch the day's bill.

        ``bill_date`` (a Beijing date) must lie within the last three months and not
        after today, else :class:`~.errors.InvalidRequest` naming it, nothing sent.
        ``tar_type`` None asks for an uncompressed file.
        """
        today = bills.beijing_today(self.clock())
        day = bills.check_bill_date(bill_date, today)
        query = bills.bill_query(day, sub_mchid, tar_type)
        data = self._call(
            "GET", bills.BILLS_PATH, query=query, on_call=on_call, endpoint=Endpoint.APPLY_BILL
        )
        return self._typed("a bill link", bills.BillLink.from_dict, data)

    @sensitive_variables()
    def download_bill(
        self,
        link_or_url: bills.BillLink | str,
        hash_value: str | None = None,
        *,
        max_size: int = bills.MAX_BILL_BYTES,
        on_call: OnCall | None = None,
    ) -> bytes:
        """A small bill's uncompressed bytes, once their SHA1 equals ``hash_value``.

        In memory: for a day's bill of any size, :meth:`download_bill_file`.
        """
        with self.download_bill_file(
            link_or_url, hash_value, max_size=max_size, on_call=on_call
        ) as bill:
            return b"".join(bill.plain())

    @sensitive_variables()
    def download_bill_file(
        self,
        link_or_url: bills.BillLink | str,
        hash_value: str | None = None,
        *,
        max_size: int = bills.MAX_BILL_BYTES,
        read_seconds: float = bills.DOWNLOAD_SECONDS,
        directory: str | None = None,
        on_call: OnCall | None = None,
    ) -> bills.BillDownload:
        """The bill streamed to a temporary file, its SHA1 checked: read it, then close it.

        The request is signed; the answer is a file WeChat Pay does not sign, so it is
        not verified as an answer: the hash is the check (``bills.BillDownload``). The
        URL must be on the configured base URL (else ``BillURLRefused``, nothing sent).
        One attempt: the URL lives 30 seconds, so on failure apply for a new one.
        ``max_size`` bounds the file as sent and unpacked; ``read_seconds`` the
        download after connecting, as a whole.
        """
        announced: str | None = hash_value
        if isinstance(link_or_url, bills.BillLink):
            url, announced = link_or_url.download_url, hash_value or link_or_url.hash_value
        else:
            url = link_or_url
        if not announced:
            raise errors.InvalidRequest("hash_value", "is needed to check the downloaded bill")
        target = bills.download_target(self.base_url, url)
        bill = bills.BillDownload(announced, max_size, directory)
        try:
            download = Download(bill, max_size, read_seconds)
            self._send(
                "GET",
                target,
                b"",
                on_call,
                0,
                _unsigned_file,
                Endpoint.DOWNLOAD_BILL,
                download=download,
            )
            bill.verify()
        except BaseException:
            bill.close()
            raise
        return bill

    def notification_keys(self) -> NotificationKeys:
        """This merchant's keys for :func:`~.notifications.read_notification`.

        WeChat Pay's keys are this client's (the public key, and the platform
        certificates it downloaded, refreshed once for an unknown serial); the APIv3
        key is needed to decrypt, so a client made without one cannot read them.
        """
        if self._apiv3_key is None:
            raise errors.WeChatPayError("reading notifications needs the APIv3 key")
        return NotificationKeys(
            self.mchid, self._apiv3_key, self.verifier.key_for, self._refresh_certificates
        )
