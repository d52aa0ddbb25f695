"""Request authentication, as WeChat Pay does it: signature, clock window, nonce replay.

Why strict about the target: WeChat Pay verifies the request target exactly as it came
in on the request line (percent-encoding, parameter order, even a stray ``?&``), so a
client that signs one form and sends another fails here as it would in production.
Nothing is normalised before verifying.

A request that fails here is answered 401 SIGN_ERROR and never executed; a nonce is
only remembered once its signature verified, so garbage cannot burn a client's nonce.

Each request is verified against the merchant its ``Authorization`` names: an mchid
the simulator does not serve, or a serial_no that is not that merchant's (another
merchant's key included), fails here.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from django_wxpay_profitsharing.wechatpay.crypto import (
    CryptoError,
    parse_authorization,
    request_message,
    verify,
)

WINDOW_SECONDS = 300
_NONCE = re.compile(r"[0-9A-Za-z]{1,32}")


@dataclass(frozen=True)
class AuthResult:
    """``ok`` or the reason (for the 401 detail and the call log; no secrets)."""

    ok: bool
    reason: str = ""
    mchid: str = ""


def named_merchant(authorization: str | None) -> tuple[str | None, str | None]:
    """(mchid, serial_no) as an ``Authorization`` names them, unverified (for the call log).

    Best effort, never raises: (None, None) when the header cannot be read.
    """
    if not authorization:
        return None, None
    try:
        fields = parse_authorization(authorization.strip())
    except CryptoError:
        return None, None
    return fields.get("mchid"), fields.get("serial_no")


class Authenticator:
    """Verifies ``Authorization`` against the registered merchant keys."""

    def __init__(self, keys: dict[tuple[str, str], rsa.RSAPublicKey]) -> None:
        # mchid -> SERIAL uppercased -> that merchant's API public key
        self._keys: dict[str, dict[str, rsa.RSAPublicKey]] = {}
        for (mchid, serial), key in keys.items():
            self._keys.setdefault(mchid, {})[serial.upper()] = key
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], float] = {}
        self._order: deque[tuple[float, tuple[str, str]]] = deque()

    def reset(self) -> None:
        """Forget every nonce (the control surface's reset)."""
        with self._lock:
            self._seen.clear()
            self._order.clear()

    def authenticate(
        self,
        method: str,
        target: str,
        authorization: str | None,
        body: bytes,
        now: float | None = None,
    ) -> AuthResult:
        """Check one request; ``target`` is the raw path?query from the request line."""
        if not authorization:
            return AuthResult(False, "missing Authorization header")
        try:
            fields = parse_authorization(authorization.strip())
        except CryptoError as exc:
            return AuthResult(False, f"malformed Authorization: {exc}")
        mchid, serial = fields["mchid"], fields["serial_no"]
        serials = self._keys.get(mchid)
        if serials is None:
            return AuthResult(False, "unknown mchid")
        key = serials.get(serial.upper())
        if key is None:
            return AuthResult(False, "serial_no is not this merchant's")
        stamp, nonce = fields["timestamp"], fields["nonce_str"]
        if not stamp.isdigit():
            return AuthResult(False, "timestamp is not a number")
        now = time.time() if now is None else now
        if abs(now - int(stamp)) > WINDOW_SECONDS:
            return AuthResult(False, "timestamp outside the accepted window")
        if not _NONCE.fullmatch(nonce):
            return AuthResult(False, "nonce_str must be 1-32 letters or digits")
        message = request_message(method, target, stamp, nonce, body)
        if not verify(key, message, fields["signature"]):
            return AuthResult(False, "signature does not verify")
        if not self._remember(mchid, nonce, now):
            return AuthResult(False, "nonce_str already used")
        return AuthResult(True, mchid=mchid)

    def _remember(self, mchid: str, nonce: str, now: float) -> bool:
        """Record a nonce for twice the window; False if it was seen within it."""
        key = (mchid, nonce)
        horizon = now - 2 * WINDOW_SECONDS
        with self._lock:
            order = self._order
            while order and order[0][0] < horizon:
                _, old = order.popleft()
                if self._seen.get(old, 0.0) < horizon:
                    self._seen.pop(old, None)
            seen = self._seen.get(key)
            if seen is not None and seen >= horizon:
                return False
            self._seen[key] = now
            order.append((now, key))
            return True
