"""Checks of one merchant's credentials: its ids, keys and where WeChat Pay is reached.

Run for each configured merchant (``MERCHANT_CHECKS``), so a message names the merchant's
own key; a secret is described, never shown.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks

from ..conf import SECRET_KEYS, unset_variable
from ..wechatpay import crypto
from ..wechatpay.client import is_loopback_host
from ..wechatpay.validation import MCHID_RE
from .messages import setting_error, setting_label

PUBLIC_KEY_ID_RE = re.compile(r"PUB_KEY_ID_[0-9A-Za-z]+")


def _check_identity(s: Any) -> Iterable[checks.CheckMessage]:
    if not MCHID_RE.fullmatch(str(s.MCHID or "")):
        yield setting_error(
            s, "MCHID", "is missing or not a merchant id (digits).", "e.g. '1900000100'.", 1
        )
    if not str(s.MERCHANT_SERIAL_NO or "").strip():
        yield setting_error(
            s,
            "MERCHANT_SERIAL_NO",
            "is missing.",
            "The serial of your merchant API certificate (商户API证书序列号).",
            2,
        )


def _check_secret_sources(s: Any) -> Iterable[checks.CheckMessage]:
    """A secret read from an unset environment variable: name the variable, not a value."""
    for key in sorted(SECRET_KEYS):
        variable = unset_variable(s.user_settings.get(key))
        if variable:
            yield setting_error(
                s,
                key,
                f"reads the environment variable {variable}, which is not set.",
                f"Set {variable} in the environment of every process that uses the app.",
                14,
            )


def _missing_key_file(value: Any) -> str | None:
    """Say "no such file" when a key setting names a file that is not there.

    None when the value is no path (PEM text, say) or a file that exists (another check says
    what is wrong with it). The value is shown only when it can be nothing but a path: a
    file suffix or a leading ``~`` or ``.`` (base64 key material, pasted without its
    armour, has neither); any other missing "path" is described without being echoed.
    """
    text = str(value).strip()
    shown = bool(Path(text).suffix) or text[:1] in ("~", ".")
    if "\n" in text or not (shown or text[:1] in ("/", "\\") or text[1:3] in (":\\", ":/")):
        return None  # not a path: PEM text, or material the general message describes
    try:
        Path(text).stat()
        return None  # there: what is wrong with it is another message
    except ValueError:  # a NUL byte: no path at all
        return None
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
            return None  # there, but not readable: the general message says so
    if shown:
        return f"no such file: {text!r}"
    return "no such file (the value is not shown: it may be key material)"


def _check_private_key(s: Any) -> Iterable[checks.CheckMessage]:
    if unset_variable(s.user_settings.get("PRIVATE_KEY")):
        return  # reported by _check_secret_sources
    if not s.PRIVATE_KEY:
        yield setting_error(
            s,
            "PRIVATE_KEY",
            "is missing.",
            "A path to apiclient_key.pem, PEM text or 'env:VAR'.",
            3,
        )
        return
    try:
        crypto.load_private_key(s.PRIVATE_KEY)
    except crypto.CryptoError as exc:
        missing = _missing_key_file(s.PRIVATE_KEY)
        if missing:
            yield setting_error(
                s,
                "PRIVATE_KEY",
                f"names a key file that does not exist ({missing}).",
                "Put apiclient_key.pem there, or give PEM text or 'env:VAR'. To try the app "
                "without WeChat Pay keys, use the simulator's settings (settings_from_state_dir).",
                3,
            )
            return
        yield setting_error(
            s, "PRIVATE_KEY", f"is unusable: {exc}.", "Give an unencrypted RSA PEM key.", 3
        )


def _check_verification_keys(s: Any) -> Iterable[checks.CheckMessage]:
    apiv3_key = s.APIV3_KEY
    if apiv3_key and len(str(apiv3_key).encode()) != 32:
        yield setting_error(
            s,
            "APIV3_KEY",
            "is not 32 bytes long.",
            "The APIv3 key set in the merchant platform.",
            4,
        )
    key, key_id = s.WECHATPAY_PUBLIC_KEY, s.WECHATPAY_PUBLIC_KEY_ID
    if key_id and not key:
        yield setting_error(
            s,
            "WECHATPAY_PUBLIC_KEY",
            "is missing while WECHATPAY_PUBLIC_KEY_ID is set.",
            "Give the WeChat Pay public key (pub_key.pem) that belongs to that id.",
            5,
        )
    if key and not key_id:
        yield setting_error(
            s,
            "WECHATPAY_PUBLIC_KEY_ID",
            "is missing while WECHATPAY_PUBLIC_KEY is set.",
            "The id shown next to the key, 'PUB_KEY_ID_...'.",
            5,
        )
    if key_id and not PUBLIC_KEY_ID_RE.fullmatch(str(key_id)):
        yield setting_error(
            s,
            "WECHATPAY_PUBLIC_KEY_ID",
            "does not look like 'PUB_KEY_ID_...'.",
            "Copy it as shown.",
            5,
        )
    if key:
        yield from _check_public_key_material(s, key)
    if not key and not apiv3_key and not s.PLATFORM_CERTIFICATES:
        yield setting_error(
            s,
            "WECHATPAY_PUBLIC_KEY",
            "and APIV3_KEY are both missing: responses could not be verified.",
            "Configure the WeChat Pay public key, or the APIv3 key for platform certificates.",
            7,
        )


def _check_public_key_material(s: Any, key: Any) -> Iterable[checks.CheckMessage]:
    """WECHATPAY_PUBLIC_KEY must be WeChat Pay's public key, not a certificate."""
    try:
        crypto.load_public_key(key)
    except crypto.CertificateGivenAsKey as exc:
        yield setting_error(
            s,
            "WECHATPAY_PUBLIC_KEY",
            f"is a certificate: {exc}.",
            "Download the WeChat Pay public key (微信支付公钥, pub_key.pem) from the merchant "
            "platform (账户中心 > API安全) with its PUB_KEY_ID_...; its key never matches a "
            "certificate's. Platform certificates go in PLATFORM_CERTIFICATES.",
            15,
        )
    except crypto.CryptoError as exc:
        missing = _missing_key_file(key)
        problem = f"names a key file that does not exist ({missing})" if missing else exc
        yield setting_error(
            s, "WECHATPAY_PUBLIC_KEY", f"is unusable: {problem}.", "Give a PEM key.", 6
        )


def _check_base_url(s: Any) -> Iterable[checks.CheckMessage]:
    """Plain HTTP to a remote host fails at the first call: say so at ``check``."""
    parts = urlsplit(str(s.BASE_URL or ""))
    if parts.scheme not in ("https", "http") or not parts.hostname:
        yield setting_error(
            s, "BASE_URL", "is not an https:// URL.", "e.g. 'https://api.mch.weixin.qq.com'.", 16
        )
    elif (
        parts.scheme == "http"
        and not is_loopback_host(parts.hostname)
        and not s.ALLOW_INSECURE_HTTP
    ):
        yield setting_error(
            s,
            "BASE_URL",
            "uses plain http to a host that is not loopback.",
            "Use https; plain http only to a local simulator, or set ALLOW_INSECURE_HTTP "
            "to True for a test stand-in on another host.",
            16,
        )
    elif parts.scheme == "http" and not settings.DEBUG:
        yield checks.Warning(
            f"{setting_label(s, 'BASE_URL')} is not https while DEBUG is False.",
            hint="WeChat Pay is only reached over HTTPS; plain HTTP is for a local simulator.",
            id="wxpay_profitsharing.W001",
        )


def _check_notification_keys(s: Any) -> Iterable[checks.CheckMessage]:
    """With ``NOTIFY_URL`` set, a merchant without an APIv3 key cannot read its notices."""
    if s.NOTIFY_URL and not s.APIV3_KEY:
        yield checks.Warning(
            f"{setting_label(s, 'APIV3_KEY')} is not set while NOTIFY_URL is: WeChat Pay's "
            "notifications to this merchant cannot be decrypted and are refused (its "
            "refunds are followed by polling alone).",
            hint="Set the APIv3 key of the merchant platform (API安全), as for "
            "platform certificates.",
            id="wxpay_profitsharing.W032",
        )


#: Checks of one merchant's credentials (run for each configured merchant).
MERCHANT_CHECKS = (
    _check_identity,
    _check_secret_sources,
    _check_private_key,
    _check_verification_keys,
    _check_base_url,
    _check_notification_keys,
)
