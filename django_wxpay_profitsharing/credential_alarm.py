"""Credentials that fail are loud: WeChat Pay refusing a merchant's key is seen at once.

Why: with a wrong private key or serial every call is refused (``SIGN_ERROR``), and
with a wrong WeChat Pay public key every answer fails to verify; the returns and
refunds then wait, retried quietly, and an operator would hear of it from a customer.
So every call of every merchant's client is observed (the client's ``on_call`` hook,
installed by ``clients.py``): a refusal of our credentials, or an answer that does not
verify, is logged at ERROR naming the merchant and raises a :class:`CredentialAlarm`
row (the admin's changelists show it as a banner, ``check --deploy`` names it, the
poller counts it); the merchant's next call that WeChat Pay accepts and that verifies
clears it.

Why a row, not a log line only: the poller (or a Celery worker) meets the refusal,
the operator reads the admin served by another process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.utils import timezone

from .alarm_models import AlarmKind, CredentialAlarm
from .wechatpay import errors
from .wechatpay.error_table import meaning_of
from .wechatpay.errors import Meaning
from .wechatpay.models import CallInfo

logger = logging.getLogger("django_wxpay_profitsharing")

REFUSED, UNVERIFIED = AlarmKind.REFUSED, AlarmKind.UNVERIFIED
#: At most one clearing write per merchant and process in this many seconds.
CLEAR_EVERY = 30.0

_lock = threading.Lock()
_raised: set[str] = set()  # merchants this process knows to be alarmed
_last_clear: dict[str, float] = {}
_counting = threading.local()  # .tally: the CallTally the calls on this thread count in


@dataclass
class CallTally:
    """The calls a poller's pass made, and how many of them failed for our credentials.

    Why: a pass whose every call was refused (a wrong key, serial or public key) moved
    nothing, and its exit status must say so to the cron that ran it. Shared by the
    pass's threads, each counting in it under :func:`counting`.
    """

    calls: int = 0
    refused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, *, refused: bool) -> None:
        with self._lock:
            self.calls += 1
            self.refused += int(refused)

    def all_refused(self) -> bool:
        """Whether there were calls and WeChat Pay refused (or we could not verify) all."""
        return self.calls > 0 and self.refused == self.calls


@contextmanager
def counting(tally: CallTally) -> Iterator[CallTally]:
    """Count the calls this thread makes meanwhile (any merchant's client) in ``tally``."""
    previous = getattr(_counting, "tally", None)
    _counting.tally = tally
    try:
        yield tally
    finally:
        _counting.tally = previous


def took_signature(info: CallInfo) -> bool:
    """Whether WeChat Pay took the call's signature: a verified answer, or a refusal of the
    request's business (WeChat Pay checks the signature first: 401 otherwise)."""
    if info.outcome == "ok":
        return True
    return info.outcome == "api_error" and info.status is not None and 400 <= info.status < 500


def kind_of(info: CallInfo) -> str | None:
    """Whether a call says our credentials failed, and how (None: they did not)."""
    if info.outcome == "signature_error":
        return UNVERIFIED
    if info.outcome == "api_error" and info.status is not None:
        if meaning_of(info.status, info.error_code or "") is Meaning.CREDENTIALS:
            return REFUSED
    return None


def raise_alarm(mchid: str, kind: str, info: CallInfo) -> None:
    """Log at ERROR and keep the alarm (its ``since`` kept while it stands)."""
    logger.error(
        "WeChat Pay %s merchant %s's credentials (%s %s %s): check its %s",
        "refused" if kind == REFUSED else "answers do not verify for",
        mchid,
        info.method,
        info.path.split("?")[0],
        info.error_code or info.status or "-",
        "MCHID, MERCHANT_SERIAL_NO and PRIVATE_KEY"
        if kind == REFUSED
        else "WECHATPAY_PUBLIC_KEY, WECHATPAY_PUBLIC_KEY_ID or platform certificates",
    )
    now = timezone.now()
    try:
        alarm, created = CredentialAlarm.objects.get_or_create(
            mchid=mchid, defaults={"kind": kind, "code": (info.error_code or "")[:64]}
        )
        if not created:
            CredentialAlarm.objects.filter(pk=alarm.pk).update(
                kind=kind, code=(info.error_code or "")[:64], last_seen=now
            )
    except DatabaseError:
        logger.exception("could not record the credential alarm of merchant %s", mchid)
        return
    with _lock:
        _raised.add(mchid)


def clear_alarm(mchid: str) -> None:
    """The merchant's call went through: no alarm stands (written at most every 30 s)."""
    now = time.monotonic()
    with _lock:
        if mchid not in _raised and now - _last_clear.get(mchid, -CLEAR_EVERY) < CLEAR_EVERY:
            return
        _raised.discard(mchid)
        _last_clear[mchid] = now
    try:
        if CredentialAlarm.objects.filter(mchid=mchid).delete()[0]:
            logger.warning("WeChat Pay accepts merchant %s's credentials again", mchid)
    except DatabaseError:
        logger.exception("could not clear the credential alarm of merchant %s", mchid)


def observer(mchid: str) -> Callable[[CallInfo], None]:
    """The ``on_call`` hook of one merchant's client."""

    def observe(info: CallInfo) -> None:
        kind = kind_of(info)
        tally: CallTally | None = getattr(_counting, "tally", None)
        if tally is not None:
            tally.count(refused=kind is not None)
        if kind is not None:
            raise_alarm(mchid, kind, info)
        elif took_signature(info):
            clear_alarm(mchid)

    return observe


def forget() -> None:
    """Drop this process's memory of alarms (settings changed, or tests)."""
    with _lock:
        _raised.clear()
        _last_clear.clear()


# ----------------------------------------------------------------- asking outright
#: The number a probe asks about: no shop uses it, so WeChat Pay knows no such return.
PROBE_NUMBER = "WXPAYCREDENTIALCHECK"


@dataclass(frozen=True)
class Probe:
    """What one signed call said of a merchant's credentials."""

    mchid: str
    ok: bool
    verdict: str  # "accepted", "refused", "unverified", "unreachable", "not_configured"
    detail: str


def probe(mchid: str, client_of: Callable[[str], Any]) -> Probe:
    """One cheap signed call for ``mchid`` (查询分账回退结果 of a number nobody uses).

    WeChat Pay answering "no such return", signed and verified, means it takes the
    merchant's signature (mchid, serial, private key) and the configured public key
    verifies its answers; the call's own observer raises or clears the alarm.
    """
    try:
        client = client_of(mchid)
        client.query_return(out_return_no=PROBE_NUMBER, out_order_no=PROBE_NUMBER)
    except ImproperlyConfigured as exc:
        return Probe(mchid, False, "not_configured", str(exc))
    except errors.SignatureError as exc:
        return Probe(mchid, False, UNVERIFIED, f"the answer did not verify: {exc}")
    except errors.APIError as exc:
        if exc.meaning is Meaning.CREDENTIALS:
            return Probe(mchid, False, REFUSED, f"{exc.code or exc.status}: {exc.message}")
        return Probe(mchid, True, "accepted", f"answered {exc.code or exc.status} (signed)")
    except errors.TransportError as exc:
        return Probe(mchid, False, "unreachable", str(exc))
    return Probe(mchid, True, "accepted", "answered (signed)")
