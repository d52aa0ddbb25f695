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

from .conf import SECRET_KEYS, SETTINGS_NAME, unset_variable, wxpay_settings
from .wechatpay import WeChatPayClient, crypto
from .wechatpay.sensitive import sensitive_variables

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


def _secret_problem() -> str | None:
    """The first secret read from an unset environment variable, as a message."""
    s = wxpay_settings
    for name in sorted(SECRET_KEYS):
        variable = unset_variable(s.user_settings.get(name))
        if variable:
            return (
                f"{SETTINGS_NAME}['{name}'] reads the environment variable {variable}, "
                "which is not set"
            )
    return None


@sensitive_variables()
def client_options() -> dict[str, Any]:
    """The client's keyword arguments from the settings (keys loaded, never echoed)."""
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
        try:
            public_key = s.WECHATPAY_PUBLIC_KEY and crypto.load_public_key(s.WECHATPAY_PUBLIC_KEY)
        except crypto.CryptoError as exc:
            raise ImproperlyConfigured(f"{SETTINGS_NAME}['WECHATPAY_PUBLIC_KEY']: {exc}") from None
        kwargs["wechatpay_public_key"] = public_key or None
        kwargs["wechatpay_public_key_id"] = s.WECHATPAY_PUBLIC_KEY_ID
    if s.APIV3_KEY:
        kwargs["apiv3_key"] = s.APIV3_KEY
    if s.PLATFORM_CERTIFICATES:
        kwargs["platform_certificates"] = list(s.PLATFORM_CERTIFICATES)
    return kwargs


@sensitive_variables()
def build_client(**overrides: Any) -> WeChatPayClient:
    """A new client from the settings (``overrides`` replace client keyword arguments).

    Errors name the setting and the problem, never the value (a key pasted without
    its PEM armour must not come back in an error message or a log).
    """
    s = wxpay_settings
    problem = _secret_problem()
    if problem:
        raise ImproperlyConfigured(problem)
    if not s.PRIVATE_KEY:
        raise ImproperlyConfigured(f"{SETTINGS_NAME}['PRIVATE_KEY'] is missing")
    try:
        private_key = crypto.load_private_key(s.PRIVATE_KEY)
    except crypto.CryptoError as exc:
        raise ImproperlyConfigured(f"{SETTINGS_NAME}['PRIVATE_KEY']: {exc}") from None
    kwargs = {**client_options(), **overrides}
    try:
        return WeChatPayClient(s.MCHID, s.MERCHANT_SERIAL_NO, private_key, **kwargs)
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
