"""退款结果通知: signed, encrypted POSTs to the refund's ``notify_url``, retried.

Why a thread: WeChat Pay calls the shop, not the other way round. A refund's outcome
comes due with time, so the notifier looks at every refund a few times a second (the
same lazy settlement a query does), and each outcome to announce (SUCCESS, CLOSED, and
ABNORMAL) becomes one notification, POSTed exactly as WeChat Pay does
(https://pay.weixin.qq.com/doc/v3/merchant/4012082053): a JSON envelope whose
``resource`` is AEAD_AES_256_GCM-encrypted under the merchant's APIv3 key (the service
provider's in partner mode; associated data ``refund``), signed like an answer
(``Wechatpay-Serial``/``-Signature``/``-Timestamp``/``-Nonce``, the key chosen by the
simulator's mode).

Retries: until the shop answers 200 or 204, after 15s, 15s, 30s, 3m, 10m, 20m, 30m,
30m, 30m, 60m, 3h, 3h, 3h, 6h, 6h (24h4m, then given up), counted on the simulator's
clock, so advancing it (``POST /_simulator/clock``) brings the next attempt forward.

Only a loopback ``notify_url`` is called; any other is recorded and never contacted.

Faults (``POST /_simulator/faults`` with ``"endpoint": "notify"``): ``duplicate`` sends
a delivered notification once more; ``probe`` sends a ``WECHATPAY/SIGNTEST/`` copy first
(it does not count as an attempt); ``bad_signature`` and ``stale_timestamp`` spoil an
attempt, which the shop must refuse and which is then retried on the schedule.
"""

from __future__ import annotations

import http.client
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django_wxpay_profitsharing.wechatpay.crypto import aes_gcm_encrypt, make_nonce
from django_wxpay_profitsharing.wechatpay.validation import is_loopback_host

from .faults import FaultBook
from .ledger_records import format_time
from .refunds import Refund
from .signing import ResponseSigner

RETRY_SCHEDULE = (
    15,
    15,
    30,
    180,
    600,
    1200,
    1800,
    1800,
    1800,
    3600,
    10800,
    10800,
    10800,
    21600,
    21600,
)
SUMMARIES = {"SUCCESS": "退款成功", "CLOSED": "退款关闭", "ABNORMAL": "退款异常"}
DELIVERED = (200, 204)
#: Faults that spoil an attempt itself (the others add a copy before or after it).
SPOILERS = ("stale_timestamp", "bad_signature")
POLL_SECONDS = 0.1
TIMEOUT_SECONDS = 5.0


@dataclass
class Delivery:
    """One notification and every attempt to deliver it."""

    seq: int
    id: str
    mchid: str
    sub_mchid: str | None
    out_refund_no: str
    refund_status: str
    event_type: str
    notify_url: str
    body: bytes = field(repr=False)
    next_at: float | None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    delivered: bool = False
    skipped: str | None = None

    def view(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.id,
            "mchid": self.mchid,
            "sub_mchid": self.sub_mchid,
            "out_refund_no": self.out_refund_no,
            "refund_status": self.refund_status,
            "event_type": self.event_type,
            "notify_url": self.notify_url,
            "delivered": self.delivered,
            "skipped": self.skipped,
            "next_attempt_at": format_time(self.next_at) if self.next_at is not None else None,
            "attempts": [dict(a) for a in self.attempts],
        }


class Notifier:
    """Builds, signs, sends and retries the refund notifications (a daemon thread)."""

    def __init__(
        self,
        *,
        settle: Callable[[], None],
        clock: Callable[[], float],
        apiv3_key: Callable[[str], str],
        signer: ResponseSigner,
        mode: Callable[[], str],
        faults: FaultBook,
    ) -> None:
        self.settle, self.clock, self.apiv3_key = settle, clock, apiv3_key
        self.signer, self.mode, self.faults = signer, mode, faults
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._deliveries: list[Delivery] = []
        self._seq = 0
        self._thread: threading.Thread | None = None

    # -- the state ---------------------------------------------------------------------
    def announce(self, refund: Refund) -> None:
        """Queue the notification of ``refund``'s status (called when it is reached)."""
        url = refund.request.notify_url
        if not url:
            return
        body = self._envelope(refund)
        host = urlsplit(url).hostname or ""
        with self._lock:
            self._seq += 1
            delivery = Delivery(
                self._seq,
                json.loads(body)["id"],
                refund.mchid,
                refund.sub_mchid,
                refund.out_refund_no,
                refund.status,
                f"REFUND.{refund.status}",
                url,
                body,
                next_at=self.clock(),
            )
            if not is_loopback_host(host):
                delivery.skipped, delivery.next_at = "not a loopback notify_url: never called", None
            self._deliveries.append(delivery)
        self.wake()

    def views(self) -> list[dict[str, Any]]:
        with self._lock:
            return [d.view() for d in self._deliveries]

    def reset(self) -> None:
        with self._lock:
            self._deliveries.clear()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        """Run the notifier's thread (once; it is a daemon, it ends with the process)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="wxpay-simulator-notifier", daemon=True
                )
                self._thread.start()

    # -- the loop ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
            try:
                self.settle()
                self._deliver_due()
            except Exception:  # a simulator bug must not end notifications for good
                import traceback

                traceback.print_exc()

    def _deliver_due(self) -> None:
        now = self.clock()
        with self._lock:
            due = [d for d in self._deliveries if d.next_at is not None and d.next_at <= now]
        for delivery in due:
            self._attempt(delivery)

    def _attempt(self, delivery: Delivery) -> None:
        faults = {f.name: f for f in self.faults.draw("notify")}
        if "probe" in faults:
            self._send(delivery, probe=True, note="probe")
        status, error = self._send(delivery, faults=faults)
        now = self.clock()
        with self._lock:
            attempt = {
                "at": format_time(now),
                "status": status,
                "error": error,
                "fault": next((n for n in faults if n in SPOILERS), None),
            }
            delivery.attempts.append(attempt)
            failures = sum(1 for a in delivery.attempts if a["status"] not in DELIVERED)
            if status in DELIVERED:
                delivery.delivered, delivery.next_at = True, None
            elif failures > len(RETRY_SCHEDULE):
                delivery.next_at = None  # 24h4m of retries: WeChat Pay gives up
            else:
                delivery.next_at = now + RETRY_SCHEDULE[failures - 1]
        if status in DELIVERED and "duplicate" in faults:
            self._send(delivery, note="duplicate")

    def _send(
        self,
        delivery: Delivery,
        *,
        faults: dict[str, Any] | None = None,
        probe: bool = False,
        note: str = "",
    ) -> tuple[int | None, str | None]:
        """POST the notification once; (the shop's status, or None and why)."""
        faults = faults or {}
        stamp = int(time.time())
        if "stale_timestamp" in faults:
            stamp -= int(faults["stale_timestamp"].params["seconds"])
        signed = self.signer.sign(
            delivery.body,
            mode=self.mode(),
            requested_serial=None,
            timestamp=stamp,
            nonce=secrets.token_hex(16).upper(),
            tamper=probe,
        )
        headers = {
            "Content-Type": "application/json",
            "Request-ID": uuid.uuid4().hex.upper(),
            **signed.as_dict(),
        }
        if "bad_signature" in faults:
            sig = headers["Wechatpay-Signature"]
            headers["Wechatpay-Signature"] = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
        parts = urlsplit(delivery.notify_url)
        target = parts.path or "/"
        kind = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = kind(parts.hostname or "", parts.port, timeout=TIMEOUT_SECONDS)
        try:
            connection.request("POST", target, body=delivery.body, headers=headers)
            response = connection.getresponse()
            response.read()
            status: int | None = response.status
            error = None
        except (OSError, http.client.HTTPException) as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
        if note:
            with self._lock:
                delivery.attempts.append(
                    {
                        "at": format_time(self.clock()),
                        "status": status,
                        "error": error,
                        "fault": note,
                        "extra": True,
                    }
                )
        return status, error

    # -- the message -------------------------------------------------------------------
    def _envelope(self, refund: Refund) -> bytes:
        """The notification's JSON body, its resource encrypted (built once, re-signed
        at each attempt)."""
        owner: dict[str, Any] = (
            {"sp_mchid": refund.mchid, "sub_mchid": refund.sub_mchid}
            if refund.sub_mchid
            else {"mchid": refund.mchid}
        )
        entity = refund.entity()
        plaintext: dict[str, Any] = {
            **owner,
            "transaction_id": entity["transaction_id"],
            "out_trade_no": entity["out_trade_no"],
            "refund_id": entity["refund_id"],
            "out_refund_no": entity["out_refund_no"],
            "refund_status": refund.status,
        }
        if "success_time" in entity:
            plaintext["success_time"] = entity["success_time"]
        plaintext["user_received_account"] = entity["user_received_account"]
        amount = entity["amount"]
        plaintext["amount"] = {
            k: amount[k] for k in ("total", "refund", "payer_total", "payer_refund")
        }
        nonce = make_nonce(12)
        data = json.dumps(plaintext, ensure_ascii=False, separators=(",", ":")).encode()
        envelope = {
            "id": str(uuid.uuid4()),
            "create_time": format_time(self.clock()),
            "resource_type": "encrypt-resource",
            "event_type": f"REFUND.{refund.status}",
            "summary": SUMMARIES[refund.status],
            "resource": {
                "original_type": "refund",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": aes_gcm_encrypt(self.apiv3_key(refund.mchid), nonce, "refund", data),
                "associated_data": "refund",
                "nonce": nonce,
            },
        }
        return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
