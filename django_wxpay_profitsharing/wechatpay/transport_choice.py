"""Which transport a client sends through: urllib3 (the default), ``requests``, or the
caller's own (an instance, used as it is, or a factory given the client's options).

Why apart from the client's core: the choice is made once, when a client is built, and
the ``requests`` transport module is imported only when it is the one asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from .transport import Transport, Urllib3Transport, environment_proxy

TRANSPORTS = ("urllib3", "requests")


def make_transport(
    base_url: str,
    transport: str | Transport | Callable[..., Transport],
    timeout: Any,
    ca_bundle: str | None,
    pool_maxsize: int,
) -> Transport:
    """The transport a client of ``base_url`` built with these options sends through."""
    options = {"timeout": timeout, "ca_bundle": ca_bundle, "pool_maxsize": pool_maxsize}
    if not isinstance(transport, str):
        if hasattr(transport, "send"):
            return cast(Transport, transport)  # an instance, used as it is
        # A factory: ``factory(base_url, timeout=..., ca_bundle=..., pool_maxsize=...)``.
        return transport(base_url, **options)
    if transport == "urllib3":
        proxy = environment_proxy(base_url)
        return Urllib3Transport(base_url, proxy=proxy, **options)
    if transport == "requests":
        from .requests_transport import RequestsTransport

        return RequestsTransport(base_url, **options)
    raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)} or a Transport")
