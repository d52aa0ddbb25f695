"""The merchants a site serves: one (today's top-level keys), or several (``MERCHANTS``).

Why: a group with several merchant ids, or a platform with more than one
service-provider account, runs one site. Each merchant has its own credentials, and
optionally its own ``BASE_URL`` and ``RATE_LIMIT_QPS``; everything else (timeouts,
backoff, the pool) is the site's. ::

    WXPAY_PROFITSHARING = {
        "MERCHANTS": {
            "1900000100": {
                "MERCHANT_SERIAL_NO": "...",
                "PRIVATE_KEY": "/etc/wxpay/1900000100/apiclient_key.pem",  # path, PEM, env:VAR
                "WECHATPAY_PUBLIC_KEY": "env:WXPAY_PUB_1900000100",
                "WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_...",
                "RATE_LIMIT_QPS": 20,
            },
            "1900000200": {...},
        },
        "DEFAULT_MCHID": "1900000100",
        # or entries from elsewhere: "MERCHANT_PROVIDER": "myshop.wxpay.merchants",
    }

Without ``MERCHANTS`` (and ``MERCHANT_PROVIDER``) the top-level ``MCHID``,
``MERCHANT_SERIAL_NO``... are the one merchant, as before. Secrets stay paths, PEM text
or ``env:`` references: never in the database. ``MERCHANT_PROVIDER`` is the import
string of a callable returning the same dict (read when the settings are).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from .conf import SECRET_KEYS, SETTINGS_NAME, resolve_secret, wxpay_settings

#: Keys each merchant has for itself.
PER_MERCHANT_KEYS = (
    "MERCHANT_SERIAL_NO",
    "PRIVATE_KEY",
    "WECHATPAY_PUBLIC_KEY",
    "WECHATPAY_PUBLIC_KEY_ID",
    "APIV3_KEY",
    "PLATFORM_CERTIFICATES",
)
#: Keys a merchant may set for itself; absent, the site's value applies.
OVERRIDABLE_KEYS = ("BASE_URL", "RATE_LIMIT_QPS")
MERCHANT_KEYS = frozenset(PER_MERCHANT_KEYS + OVERRIDABLE_KEYS)


class UnknownMerchant(LookupError):
    """A mchid that is not configured."""


class MerchantSettings:
    """One merchant's view of the settings: its own keys, the site's for the rest.

    Attribute names are the settings' (``PRIVATE_KEY``, ``BASE_URL``...), so the
    system checks and the client builder read one merchant as they read the site.
    """

    def __init__(self, mchid: str, entry: Mapping[str, Any] | None) -> None:
        self.mchid = str(mchid)
        self._entry = entry  # None: the top-level keys are this merchant

    @property
    def user_settings(self) -> Mapping[str, Any]:
        """The raw values as written (for checks that must see ``env:NAME``)."""
        return wxpay_settings.user_settings if self._entry is None else self._entry

    def label(self, key: str) -> str:
        """How a message names one of this merchant's keys."""
        if self._entry is None or key not in MERCHANT_KEYS:
            return f"{SETTINGS_NAME}['{key}']"
        return f"{SETTINGS_NAME}['MERCHANTS']['{self.mchid}']['{key}']"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name == "MCHID":
            return self.mchid
        if self._entry is None or name not in MERCHANT_KEYS:
            return getattr(wxpay_settings, name)
        if name in self._entry:
            value = self._entry[name]
            return resolve_secret(value) if name in SECRET_KEYS else value
        if name in OVERRIDABLE_KEYS:
            return getattr(wxpay_settings, name)
        return [] if name == "PLATFORM_CERTIFICATES" else ""

    def __repr__(self) -> str:  # never a key
        return f"<MerchantSettings {self.mchid}>"


_lock = threading.Lock()
_merchants: dict[str, MerchantSettings] | None = None


def _entries() -> Mapping[str, Any] | None:
    """The configured ``{mchid: entry}``, or None for the one top-level merchant."""
    user = wxpay_settings.user_settings
    if user.get("MERCHANT_PROVIDER"):
        provided = import_string(user["MERCHANT_PROVIDER"])()
        return {**dict(provided), **dict(user.get("MERCHANTS") or {})}
    return user.get("MERCHANTS") or None


def merchants() -> dict[str, MerchantSettings]:
    """Every configured merchant by mchid (read once, again after settings change)."""
    global _merchants
    with _lock:
        if _merchants is None:
            entries = _entries()
            if entries is None:
                top = str(wxpay_settings.MCHID or "")
                _merchants = {top: MerchantSettings(top, None)}
            else:
                _merchants = {str(k): MerchantSettings(str(k), v) for k, v in entries.items()}
        return _merchants


def default_mchid() -> str:
    """``DEFAULT_MCHID``, else the one (or first) configured merchant."""
    configured = merchants()
    chosen = str(wxpay_settings.user_settings.get("DEFAULT_MCHID") or "")
    if chosen:
        return chosen
    return next(iter(configured), "")


def merchant(mchid: str | None = None) -> MerchantSettings:
    """One merchant's settings (``None``: the default); :class:`UnknownMerchant` if absent."""
    chosen = str(mchid) if mchid else default_mchid()
    try:
        return merchants()[chosen]
    except KeyError:
        raise UnknownMerchant(f"{chosen!r} is not a configured merchant") from None


def is_configured(mchid: str) -> bool:
    return str(mchid) in merchants()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    global _merchants
    if setting == SETTINGS_NAME:
        with _lock:
            _merchants = None


setting_changed.connect(_on_setting_changed)
