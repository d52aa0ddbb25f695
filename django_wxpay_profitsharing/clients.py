"""The process's WeChat Pay client, built from the settings once and shared.

Why apart from ``conf.py``: settings are plain values; the client is a live object
with a connection pool, built on first use, shared by every thread, and closed and
rebuilt when the settings change. The service layer is handed its client from here by
its public functions, so the transition code never reaches up into settings for one.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from .conf import SETTINGS_NAME, wxpay_settings
from .wechatpay import WeChatPayClient

_client_lock = threading.Lock()
_client: WeChatPayClient | None = None


def get_client() -> WeChatPayClient:
    """The process-wide ``WeChatPayClient`` (one HTTP pool), built on first use.

    Raises ``ImproperlyConfigured`` naming the bad key, never its value.
    """
    global _client
    with _client_lock:
        if _client is None:
            _client = build_client()
        return _client


def client_options() -> dict[str, Any]:
    """The client's keyword arguments from the settings (no positional credentials)."""
    s = wxpay_settings
    kwargs: dict[str, Any] = {
        "base_url": s.BASE_URL,
        "timeout": tuple(s.TIMEOUT) if isinstance(s.TIMEOUT, list | tuple) else s.TIMEOUT,
        "allow_insecure_http": s.ALLOW_INSECURE_HTTP,
        "transport": s.TRANSPORT,
        "pool_maxsize": max(int(s.POOL_SIZE), 1) * 2,
        "certificate_refresh_interval": float(s.CERTIFICATE_REFRESH_INTERVAL),
    }
    if s.CA_BUNDLE:
        kwargs["ca_bundle"] = s.CA_BUNDLE
    if s.WECHATPAY_PUBLIC_KEY or s.WECHATPAY_PUBLIC_KEY_ID:
        kwargs["wechatpay_public_key"] = s.WECHATPAY_PUBLIC_KEY
        kwargs["wechatpay_public_key_id"] = s.WECHATPAY_PUBLIC_KEY_ID
    if s.APIV3_KEY:
        kwargs["apiv3_key"] = s.APIV3_KEY
    if s.PLATFORM_CERTIFICATES:
        kwargs["platform_certificates"] = list(s.PLATFORM_CERTIFICATES)
    return kwargs


def build_client(**overrides: Any) -> WeChatPayClient:
    """A new client from the settings (``overrides`` replace client keyword arguments)."""
    s = wxpay_settings
    kwargs = {**client_options(), **overrides}
    try:
        return WeChatPayClient(s.MCHID, s.MERCHANT_SERIAL_NO, s.PRIVATE_KEY, **kwargs)
    except (ValueError, TypeError, OSError) as exc:
        # The client's messages name the problem, never key material.
        raise ImproperlyConfigured(f"{SETTINGS_NAME}: {exc}") from None


def reset_client() -> None:
    """Close and forget the shared client (settings changed, or tests)."""
    global _client
    with _client_lock:
        if _client is not None:
            _client.close()
        _client = None


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME:
        reset_client()


setting_changed.connect(_on_setting_changed)
