"""The same exchange over ``requests``, for shops that need what it adds.

Why keep it: ``HTTP11Transport`` speaks plain HTTP ``CONNECT`` proxies only; a shop
behind a SOCKS proxy (``requests[socks]``) or with its own ``HTTPAdapter`` sets
``TRANSPORT = "requests"`` and pays about 0.5 ms more CPU per call. The request
target is checked against what ``requests`` would put on the wire, so the bytes
signed are still the bytes sent.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

from .errors import InvalidRequest, TransportError
from .http11 import RawResponse
from .transport import IDLE_SECONDS, Timeout


def _certain_not_sent(exc: requests.RequestException) -> bool:
    """True only when the request provably never left: the connection never opened."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = repr(exc.args[0] if exc.args else exc)
        return any(
            marker in text
            for marker in ("NewConnectionError", "NameResolutionError", "Connection refused")
        )
    return False


class RequestsTransport:
    """One keep-alive ``requests.Session`` for every thread; no redirects, no cookies."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: Timeout = (3.05, 10),
        ca_bundle: str | None = None,
        pool_maxsize: int = 32,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.idle_seconds = idle_seconds
        self._verify: str | bool = ca_bundle or True
        self.session = requests.Session()
        # Proxies and .netrc are resolved once here, not on every call.
        self.session.trust_env = False
        self._proxies = get_environ_proxies(self.base_url)
        self._adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
        self.session.mount("https://", self._adapter)
        self.session.mount("http://", self._adapter)
        self._last_activity = time.monotonic()

    def __repr__(self) -> str:
        return f"<RequestsTransport {self.base_url}>"

    def close(self) -> None:
        self.session.close()

    def send(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> RawResponse:
        label = f"{method} {target.split('?', 1)[0]}"
        prepared = self.session.prepare_request(
            requests.Request(method, self.base_url + target, data=body or None, headers=headers)
        )
        if prepared.path_url != target:
            raise InvalidRequest("url", "the request target would not be sent as signed")
        if time.monotonic() - self._last_activity > self.idle_seconds:
            # The server has closed them by now; a POST on a dead one would end in an
            # "outcome unknown" that a fresh connection avoids.
            self._adapter.poolmanager.clear()
        try:
            response = self.session.send(
                prepared,
                timeout=self.timeout,
                verify=self._verify,
                proxies=self._proxies,
                allow_redirects=False,
            )
            self.session.cookies.clear()
        except requests.RequestException as exc:
            kind = type(exc).__name__
            raise TransportError(
                f"{label} failed: {kind}", maybe_sent=not _certain_not_sent(exc)
            ) from None
        finally:
            self._last_activity = time.monotonic()
        headers = {name.lower(): value for name, value in response.headers.items()}
        return RawResponse(response.status_code, headers, response.content)
