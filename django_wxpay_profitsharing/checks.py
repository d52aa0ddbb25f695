"""System checks: report a malformed ``WXPAY_PROFITSHARING`` by key, at ``manage.py check``.

Ids are ``wxpay_profitsharing.E001``..., so a project can silence one in
``SILENCED_SYSTEM_CHECKS``. Messages name the key and the problem, never the secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core import checks

from .conf import SETTINGS_NAME, wxpay_settings
from .wechatpay import crypto
from .wechatpay.client import TRANSPORTS

MCHID_RE = re.compile(r"[0-9]{1,32}")
PUBLIC_KEY_ID_RE = re.compile(r"PUB_KEY_ID_[0-9A-Za-z]+")


def _error(key: str, msg: str, hint: str, number: int) -> checks.Error:
    return checks.Error(
        f"{SETTINGS_NAME}['{key}'] {msg}", hint=hint, id=f"wxpay_profitsharing.E{number:03d}"
    )


def _check_identity(s: Any) -> Iterable[checks.CheckMessage]:
    if not MCHID_RE.fullmatch(str(s.MCHID or "")):
        yield _error("MCHID", "is missing or not a merchant id (digits).", "e.g. '1900000100'.", 1)
    if not str(s.MERCHANT_SERIAL_NO or "").strip():
        yield _error(
            "MERCHANT_SERIAL_NO",
            "is missing.",
            "The serial of your merchant API certificate (商户API证书序列号).",
            2,
        )


def _check_private_key(s: Any) -> Iterable[checks.CheckMessage]:
    if not s.PRIVATE_KEY:
        yield _error(
            "PRIVATE_KEY", "is missing.", "A path to apiclient_key.pem, PEM text or 'env:VAR'.", 3
        )
        return
    try:
        crypto.load_private_key(s.PRIVATE_KEY)
    except crypto.CryptoError as exc:
        yield _error("PRIVATE_KEY", f"is unusable: {exc}.", "Give an unencrypted RSA PEM key.", 3)


def _check_verification_keys(s: Any) -> Iterable[checks.CheckMessage]:
    apiv3_key = s.APIV3_KEY
    if apiv3_key and len(str(apiv3_key).encode()) != 32:
        yield _error(
            "APIV3_KEY", "is not 32 bytes long.", "The APIv3 key set in the merchant platform.", 4
        )
    key, key_id = s.WECHATPAY_PUBLIC_KEY, s.WECHATPAY_PUBLIC_KEY_ID
    if key_id and not key:
        yield _error(
            "WECHATPAY_PUBLIC_KEY",
            "is missing while WECHATPAY_PUBLIC_KEY_ID is set.",
            "Give the WeChat Pay public key (pub_key.pem) that belongs to that id.",
            5,
        )
    if key and not key_id:
        yield _error(
            "WECHATPAY_PUBLIC_KEY_ID",
            "is missing while WECHATPAY_PUBLIC_KEY is set.",
            "The id shown next to the key, 'PUB_KEY_ID_...'.",
            5,
        )
    if key_id and not PUBLIC_KEY_ID_RE.fullmatch(str(key_id)):
        yield _error(
            "WECHATPAY_PUBLIC_KEY_ID",
            "does not look like 'PUB_KEY_ID_...'.",
            "Copy it as shown.",
            5,
        )
    if key:
        try:
            crypto.load_public_key(key)
        except crypto.CryptoError as exc:
            yield _error("WECHATPAY_PUBLIC_KEY", f"is unusable: {exc}.", "Give a PEM key.", 6)
    if not key and not apiv3_key and not s.PLATFORM_CERTIFICATES:
        yield _error(
            "WECHATPAY_PUBLIC_KEY",
            "and APIV3_KEY are both missing: responses could not be verified.",
            "Configure the WeChat Pay public key, or the APIv3 key for platform certificates.",
            7,
        )


def _check_transport(s: Any) -> Iterable[checks.CheckMessage]:
    timeout = s.TIMEOUT
    valid_timeout = (isinstance(timeout, int | float) and timeout > 0) or (
        isinstance(timeout, list | tuple)
        and len(timeout) == 2
        and all(isinstance(t, int | float) and t > 0 for t in timeout)
    )
    if not valid_timeout:
        yield _error(
            "TIMEOUT", "must be seconds or (connect, read) seconds.", "e.g. (3.05, 10).", 8
        )
    for key in ("RETRY_BACKOFF", "POLL_BACKOFF"):
        value = getattr(s, key)
        if not (
            isinstance(value, list | tuple)
            and len(value) == 2
            and all(isinstance(v, int | float) and v >= 0 for v in value)
        ):
            yield _error(key, "must be (first delay, cap) in seconds.", "e.g. (2.0, 300.0).", 9)
    if not (isinstance(s.POOL_SIZE, int) and s.POOL_SIZE >= 1):
        yield _error("POOL_SIZE", "must be a positive integer.", "e.g. 16.", 10)
    if not (isinstance(s.RATE_LIMIT_QPS, int | float) and s.RATE_LIMIT_QPS >= 0):
        yield _error("RATE_LIMIT_QPS", "must be a number >= 0 (0 = unlimited).", "e.g. 25.", 11)
    if isinstance(s.TRANSPORT, str) and s.TRANSPORT not in TRANSPORTS:
        yield _error("TRANSPORT", f"must be one of {', '.join(TRANSPORTS)}.", "e.g. 'http11'.", 13)
    if s.TASK_BACKEND not in ("auto", "celery", "thread", "inline"):
        yield _error(
            "TASK_BACKEND", "must be one of auto, celery, thread, inline.", "e.g. 'auto'.", 12
        )
    if not str(s.BASE_URL).startswith("https://") and not settings.DEBUG:
        yield checks.Warning(
            f"{SETTINGS_NAME}['BASE_URL'] is not https while DEBUG is False.",
            hint="WeChat Pay is only reached over HTTPS; plain HTTP is for a local simulator.",
            id="wxpay_profitsharing.W001",
        )


@checks.register(checks.Tags.security, "wxpay_profitsharing")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Validate ``WXPAY_PROFITSHARING`` key by key."""
    s = wxpay_settings
    messages: list[checks.CheckMessage] = []
    for part in (_check_identity, _check_private_key, _check_verification_keys, _check_transport):
        messages.extend(part(s))
    return messages
