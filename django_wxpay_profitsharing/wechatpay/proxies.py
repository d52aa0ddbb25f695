"""Which proxy a transport goes through, and the urllib3 pool manager that does it.

Why its own module: ``https_proxy``/``no_proxy`` are read once, when a transport is
built, and ``no_proxy`` may name networks (``10.0.0.0/8``), which
``urllib.request.proxy_bypass`` does not understand. The manager speaks HTTP and
HTTPS proxies (CONNECT, with the URL's login as ``Proxy-Authorization``) and SOCKS
through ``urllib3.contrib.socks`` when PySocks is installed.
"""

from __future__ import annotations

import ipaddress
import ssl
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies

import urllib3

from .connections import socks_module, use_exchange_pools


def bypasses_proxy(host: str, no_proxy: str) -> bool:
    """Whether ``no_proxy`` (comma-separated) names ``host``.

    Entries are ``*``, host names (``example.com`` also covers its subdomains, a
    leading dot or ``*.`` is ignored), IP addresses, and CIDR networks
    (``10.0.0.0/8``, ``fd00::/8``), which ``urllib.request.proxy_bypass`` ignores.
    A ``:port`` after an entry is ignored: this transport speaks to one origin.
    """
    host = host.strip("[]").lower().rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if entry.startswith("[") and "]" in entry:  # [v6] or [v6]:port
            entry = entry[1 : entry.index("]")]
        elif entry.count(":") == 1:  # name:port or v4:port
            entry = entry.split(":", 1)[0]
        if "/" in entry:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            if address is not None and address.version == network.version:
                if address in network:
                    return True
            continue
        if address is not None:
            try:
                if ipaddress.ip_address(entry) == address:
                    return True
            except ValueError:
                pass
            continue
        name = entry.removeprefix("*").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def environment_proxy(base_url: str) -> str | None:
    """The ``https_proxy``/``all_proxy`` for this origin, unless ``no_proxy`` skips it.

    Read once, when the transport is built, not on every call. Plain http (a
    loopback simulator) never goes through a proxy.
    """
    parts = urlsplit(base_url)
    if parts.scheme != "https":
        return None
    proxies = getproxies()
    if bypasses_proxy(parts.hostname or "", proxies.get("no", "")):
        return None
    return proxies.get("https") or proxies.get("all") or None


def pool_manager(
    proxy: str | None, *, pool_maxsize: int, ssl_context: ssl.SSLContext | None
) -> urllib3.PoolManager:
    """A pool manager for one origin: direct, through an HTTP(S) proxy, or SOCKS."""
    options: dict[str, Any] = {"num_pools": 2, "maxsize": pool_maxsize, "block": False}
    if ssl_context is not None:
        options["ssl_context"] = ssl_context
    if proxy is None:
        return use_exchange_pools(urllib3.PoolManager(**options))
    parts = urlsplit(proxy)
    if not parts.hostname:
        raise ValueError("the proxy must be a URL with a host")
    if parts.scheme.startswith("socks"):
        socks = socks_module()
        return use_exchange_pools(socks.SOCKSProxyManager(proxy, **options))
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"unsupported proxy scheme {parts.scheme!r}")
    headers = {}
    if parts.username:
        login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers = urllib3.make_headers(proxy_basic_auth=login)
    netloc = parts.netloc.rsplit("@", 1)[-1]  # the login goes in a header, not the URL
    return use_exchange_pools(
        urllib3.ProxyManager(f"{parts.scheme}://{netloc}", proxy_headers=headers, **options)
    )
