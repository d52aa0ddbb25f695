"""Checks of the site's own settings, and ``check_settings``, which runs every settings check.

The site's keys (transport, deadlines, bills, scope, notifications, the merchants' table)
are checked once; then each configured merchant's credentials
(``merchant_credentials.MERCHANT_CHECKS``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from django.core import checks

from ..conf import DEFAULTS, SETTINGS_NAME, TASK_BACKENDS, wxpay_settings
from ..merchants import MERCHANT_KEYS, merchants
from ..wechatpay.errors import InvalidRequest
from ..wechatpay.transport import call_deadline
from ..wechatpay.transport_choice import TRANSPORTS
from ..wechatpay.validation import MAX_NOTIFY_URL, MCHID_RE, validate_notify_url
from .merchant_credentials import MERCHANT_CHECKS
from .messages import setting_error


def _check_transport(s: Any) -> Iterable[checks.CheckMessage]:
    timeout = s.TIMEOUT
    valid_timeout = (isinstance(timeout, int | float) and timeout > 0) or (
        isinstance(timeout, list | tuple)
        and len(timeout) == 2
        and all(isinstance(t, int | float) and t > 0 for t in timeout)
    )
    if not valid_timeout:
        yield setting_error(
            s, "TIMEOUT", "must be seconds or (connect, read) seconds.", "e.g. (3.05, 10).", 8
        )
    for key in ("RETRY_BACKOFF", "POLL_BACKOFF", "GET_RETRY_BACKOFF"):
        value = getattr(s, key)
        if not (
            isinstance(value, list | tuple)
            and len(value) == 2
            and all(isinstance(v, int | float) and v >= 0 for v in value)
        ):
            yield setting_error(
                s, key, "must be (first delay, cap) in seconds.", "e.g. (2.0, 300.0).", 9
            )
    if not (isinstance(s.POOL_SIZE, int) and s.POOL_SIZE >= 1):
        yield setting_error(s, "POOL_SIZE", "must be a positive integer.", "e.g. 16.", 10)
    if not (isinstance(s.RATE_LIMIT_QPS, int | float) and s.RATE_LIMIT_QPS >= 0):
        yield setting_error(
            s, "RATE_LIMIT_QPS", "must be a number >= 0 (0 = unlimited).", "e.g. 25.", 11
        )
    if isinstance(s.TRANSPORT, str) and s.TRANSPORT not in TRANSPORTS:
        yield setting_error(
            s, "TRANSPORT", f"must be one of {', '.join(TRANSPORTS)}.", "e.g. 'urllib3'.", 13
        )
    if s.TASK_BACKEND not in TASK_BACKENDS:
        choices = ", ".join(TASK_BACKENDS)
        yield setting_error(s, "TASK_BACKEND", f"must be one of {choices}.", "e.g. 'auto'.", 12)


#: A call must end well before its lease does: at most this share of ``LEASE_SECONDS``.
DEADLINE_SHARE_OF_LEASE = 0.5


def _check_deadline(s: Any) -> Iterable[checks.CheckMessage]:
    """The whole call's deadline is well below the lease, so no lease lapses mid-call."""
    lease = s.LEASE_SECONDS
    if not (isinstance(lease, int | float) and not isinstance(lease, bool) and lease > 0):
        yield setting_error(s, "LEASE_SECONDS", "must be a number of seconds > 0.", "e.g. 60.", 17)
        return
    try:
        deadline = call_deadline(s.TIMEOUT)
    except (TypeError, ValueError):
        return  # TIMEOUT itself is reported by E008
    if deadline > lease * DEADLINE_SHARE_OF_LEASE:
        yield setting_error(
            s,
            "TIMEOUT",
            f"lets one call last {deadline:g} s, not well below LEASE_SECONDS ({lease:g} s): "
            "a lease could lapse while its holder still waits for WeChat Pay.",
            f"Keep connect + read at most {DEADLINE_SHARE_OF_LEASE:.0%} of LEASE_SECONDS, "
            "e.g. TIMEOUT (3.05, 10) with LEASE_SECONDS 60.",
            18,
        )


def _check_unknown_keys(s: Any) -> Iterable[checks.CheckMessage]:
    """A misspelt key (``SUBMIT_ON_CREATED``) would be ignored: name it, and the likely one."""
    for key in sorted(set(s.user_settings) - set(DEFAULTS), key=str):
        closest = difflib.get_close_matches(str(key), list(DEFAULTS), n=1)
        hint = (
            f"Did you mean '{closest[0]}'?"
            if closest
            else "See the settings reference for the valid keys."
        )
        yield checks.Warning(
            f"{SETTINGS_NAME}[{key!r}] is not a setting of this app and is ignored.",
            hint=hint,
            id="wxpay_profitsharing.W002",
        )


def _check_merchants(s: Any) -> Iterable[checks.CheckMessage]:
    """``MERCHANTS`` is a dict of merchant ids; ``DEFAULT_MCHID`` one of them."""
    user = s.user_settings
    entries = user.get("MERCHANTS")
    example = "e.g. {'1900000100': {'PRIVATE_KEY': ...}}."
    if entries is not None and not isinstance(entries, dict):
        yield setting_error(s, "MERCHANTS", "must be a dict keyed by merchant id.", example, 19)
        return
    for mchid, entry in (entries or {}).items():
        if not MCHID_RE.fullmatch(str(mchid)) or not isinstance(entry, dict):
            problem = f"has an entry {str(mchid)[:32]!r} that is not a merchant id with its keys."
            yield setting_error(s, "MERCHANTS", problem, example, 19)
            continue
        unknown = sorted(set(entry) - MERCHANT_KEYS)
        if unknown:
            names = ", ".join(map(str, unknown))[:200]
            allowed = f"Per-merchant keys: {', '.join(sorted(MERCHANT_KEYS))}."
            problem = f"['{mchid}'] has keys that are not per-merchant: {names}."
            yield setting_error(s, "MERCHANTS", problem, allowed, 19)
    default = user.get("DEFAULT_MCHID")
    if default and entries and str(default) not in {str(k) for k in entries}:
        hint = "Name a configured merchant."
        yield setting_error(s, "DEFAULT_MCHID", "is not one of MERCHANTS.", hint, 20)


#: The smallest ``BILL_MAX_BYTES`` that makes sense: a bill of a few thousand rows.
MIN_BILL_BYTES = 1024 * 1024


def _check_bills(s: Any) -> Iterable[checks.CheckMessage]:
    value = s.BILL_MAX_BYTES
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= MIN_BILL_BYTES):
        yield setting_error(
            s,
            "BILL_MAX_BYTES",
            f"must be a number of bytes, at least {MIN_BILL_BYTES} (1 MiB).",
            "e.g. 1024 ** 3 (1 GiB, about four million bill rows).",
            21,
        )


def _check_merchant_scope(s: Any) -> Iterable[checks.CheckMessage]:
    """``MERCHANT_SCOPE`` imports, and is a callable of the user."""
    try:
        scope = s.MERCHANT_SCOPE
    except ImportError as exc:
        hint = "e.g. 'django_wxpay_profitsharing.access.merchant_groups'."
        yield setting_error(s, "MERCHANT_SCOPE", f"cannot be imported: {exc}.", hint, 30)
        return
    if not callable(scope):
        hint = "An import string of a callable scope(user)."
        yield setting_error(s, "MERCHANT_SCOPE", "is not a callable.", hint, 30)


def _check_notify_url(s: Any) -> Iterable[checks.CheckMessage]:
    """``NOTIFY_URL``: what WeChat Pay accepts as a refund's ``notify_url`` (申请退款,
    https://pay.weixin.qq.com/doc/v3/merchant/4012556457): an absolute https URL of at
    most 256 characters without a query string; plain http only to a loopback host
    (the simulator calls the site on the same machine)."""
    value = s.NOTIFY_URL
    if not value:
        return
    try:
        validate_notify_url(value)
    except InvalidRequest:
        yield setting_error(
            s,
            "NOTIFY_URL",
            f"is not an absolute https URL of at most {MAX_NOTIFY_URL} characters without "
            "a query string (plain http only to a loopback host).",
            "e.g. 'https://shop.example.com/api/wxpay/notifications/': the app's "
            "notifications/ route, as the internet reaches it.",
            31,
        )


#: Checks of the site's own settings.
SITE_CHECKS = (
    _check_unknown_keys,
    _check_merchants,
    _check_transport,
    _check_deadline,
    _check_bills,
    _check_merchant_scope,
    _check_notify_url,
)


@checks.register(checks.Tags.security, "wxpay_profitsharing")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Validate ``WXPAY_PROFITSHARING`` key by key, and each merchant's keys, naming it."""
    messages: list[checks.CheckMessage] = []
    for part in SITE_CHECKS:
        messages.extend(part(wxpay_settings))
    if any(m.id == "wxpay_profitsharing.E019" for m in messages):
        return messages
    try:
        configured = merchants().values()
    except ImportError as exc:
        problem = f"cannot be imported: {exc}."
        hint = "The import string of a callable returning MERCHANTS' entries."
        return [*messages, setting_error(wxpay_settings, "MERCHANT_PROVIDER", problem, hint, 19)]
    for merchant in configured:
        for part in MERCHANT_CHECKS:
            messages.extend(part(merchant))
    return messages
