"""The process's WeChat Pay clients, one per merchant, built once and shared.

Why apart from ``conf.py``: settings are plain values; a client is a live object with
its keys, certificate store and connection pool, built on first use, shared by every
thread, and closed and rebuilt when the settings change. The service layer is handed
its client from here by its public functions (the merchant's own, by the row's
``mchid``), so the transition code never reaches up into settings for one.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from . import credential_alarm
from .conf import SECRET_KEYS, SETTINGS_NAME, unset_variable
from .merchants import MerchantSettings, UnknownMerchant, merchant
from .wechatpay import WeChatPayClient, crypto
from .wechatpay.sensitive import sensitive_variables

_client_lock = threading.Lock()
_clients: dict[str, WeChatPayClient] = {}


def client_for(mchid: str | None = None) -> WeChatPayClient:
    """The merchant's ``WeChatPayClient`` (``None``: the default merchant's).

    Raises ``ImproperlyConfigured`` naming the bad key (and the merchant), never its
    value; an mchid that is not configured is ``ImproperlyConfigured`` too.
    """
    try:
        settings = merchant(mchid)
    except UnknownMerchant as exc:
        raise ImproperlyConfigured(f"{SETTINGS_NAME}: {exc}") from None
    with _client_lock:
        client = _clients.get(settings.mchid)
        if client is None:
            client = _clients[settings.mchid] = build_client(settings)
        return client


def get_client() -> WeChatPayClient:
    """The default merchant's client (the one merchant, for a one-merchant site)."""
    return client_for(None)


def _secret_problem(s: MerchantSettings) -> str | None:
    """The first secret read from an unset environment variable, as a message."""
    for name in sorted(SECRET_KEYS):
        variable = unset_variable(s.user_settings.get(name))
        if variable:
            return f"{s.label(name)} reads the environment variable {variable}, which is not set"
    return None


@sensitive_variables()
def client_options(s: MerchantSettings) -> dict[str, Any]:
    """The client's keyword arguments for one merchant (keys loaded, never echoed)."""
    kwargs: dict[str, Any] = {
        "base_url": s.BASE_URL,
        "timeout": tuple(s.TIMEOUT) if isinstance(s.TIMEOUT, list | tuple) else s.TIMEOUT,
        "allow_insecure_http": s.ALLOW_INSECURE_HTTP,
        "transport": s.TRANSPORT,
        "pool_maxsize": max(int(s.POOL_SIZE), 1) * 2,
        "certificate_refresh_interval": float(s.CERTIFICATE_REFRESH_INTERVAL),
        "get_retry_backoff": tuple(s.GET_RETRY_BACKOFF),
    }
    if s.CA_BUNDLE:
        kwargs["ca_bundle"] = s.CA_BUNDLE
    if s.WECHATPAY_PUBLIC_KEY or s.WECHATPAY_PUBLIC_KEY_ID:
        try:
            public_key = s.WECHATPAY_PUBLIC_KEY and crypto.load_public_key(s.WECHATPAY_PUBLIC_KEY)
        except crypto.CryptoError as exc:
            raise ImproperlyConfigured(f"{s.label('WECHATPAY_PUBLIC_KEY')}: {exc}") from None
        kwargs["wechatpay_public_key"] = public_key or None
        kwargs["wechatpay_public_key_id"] = s.WECHATPAY_PUBLIC_KEY_ID
    if s.APIV3_KEY:
        kwargs["apiv3_key"] = s.APIV3_KEY
    if s.PLATFORM_CERTIFICATES:
        kwargs["platform_certificates"] = list(s.PLATFORM_CERTIFICATES)
    return kwargs


@sensitive_variables()
def build_client(s: MerchantSettings | None = None, **overrides: Any) -> WeChatPayClient:
    """A new client for one merchant (default: the default merchant).

    ``overrides`` replace client keyword arguments. Errors name the setting and the
    problem, never the value (a key pasted without its PEM armour must not come back
    in an error message or a log).
    """
    if s is None:
        try:
            s = merchant(None)
        except UnknownMerchant as exc:
            raise ImproperlyConfigured(f"{SETTINGS_NAME}: {exc}") from None
    problem = _secret_problem(s)
    if problem:
        raise ImproperlyConfigured(problem)
    if not s.PRIVATE_KEY:
        raise ImproperlyConfigured(f"{s.label('PRIVATE_KEY')} is missing")
    try:
        private_key = crypto.load_private_key(s.PRIVATE_KEY)
    except crypto.CryptoError as exc:
        raise ImproperlyConfigured(f"{s.label('PRIVATE_KEY')}: {exc}") from None
    # Every call observed: refused credentials are logged and raise an alarm.
    kwargs = {"on_call": credential_alarm.observer(s.mchid), **client_options(s), **overrides}
    try:
        return WeChatPayClient(s.MCHID, s.MERCHANT_SERIAL_NO, private_key, **kwargs)
    except (ValueError, TypeError, OSError) as exc:
        # The client's messages name the problem, never key material.
        raise ImproperlyConfigured(f"{SETTINGS_NAME} (merchant {s.mchid}): {exc}") from None


def reset_client() -> None:
    """Close and forget every shared client (settings changed, or tests)."""
    with _client_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()
    credential_alarm.forget()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME:
        reset_client()


setting_changed.connect(_on_setting_changed)
