"""System checks: report a malformed ``WXPAY_PROFITSHARING`` by key, at ``manage.py check``.

Ids are ``wxpay_profitsharing.E001``..., so a project can silence one in
``SILENCED_SYSTEM_CHECKS``. Messages name the key and the problem, never the secret.
"""

from __future__ import annotations

import difflib
import errno
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.db import DatabaseError

from . import shared_quota
from .alarm_models import AlarmKind, CredentialAlarm
from .conf import (
    DEFAULTS,
    SECRET_KEYS,
    SETTINGS_NAME,
    TASK_BACKENDS,
    unset_variable,
    wxpay_settings,
)
from .dbtime import (
    LOAD_TIME_ZONES,
    converts_time_zones,
    isolation_level,
    needs_time_zone_tables,
)
from .merchants import MERCHANT_KEYS, merchants
from .wechatpay import crypto
from .wechatpay.client import TRANSPORTS, is_loopback_host
from .wechatpay.errors import InvalidRequest
from .wechatpay.transport import call_deadline
from .wechatpay.validation import MAX_NOTIFY_URL, validate_notify_url

MCHID_RE = re.compile(r"[0-9]{1,32}")
PUBLIC_KEY_ID_RE = re.compile(r"PUB_KEY_ID_[0-9A-Za-z]+")


def _label(s: Any, key: str) -> str:
    """How a message names ``key``: the merchant's own key, or the site's."""
    label = getattr(s, "label", None)
    return label(key) if callable(label) else f"{SETTINGS_NAME}['{key}']"


def _error(s: Any, key: str, msg: str, hint: str, number: int) -> checks.Error:
    return checks.Error(
        f"{_label(s, key)} {msg}", hint=hint, id=f"wxpay_profitsharing.E{number:03d}"
    )


def _check_identity(s: Any) -> Iterable[checks.CheckMessage]:
    if not MCHID_RE.fullmatch(str(s.MCHID or "")):
        yield _error(
            s, "MCHID", "is missing or not a merchant id (digits).", "e.g. '1900000100'.", 1
        )
    if not str(s.MERCHANT_SERIAL_NO or "").strip():
        yield _error(
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
            yield _error(
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
        yield _error(
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
            yield _error(
                s,
                "PRIVATE_KEY",
                f"names a key file that does not exist ({missing}).",
                "Put apiclient_key.pem there, or give PEM text or 'env:VAR'. To try the app "
                "without WeChat Pay keys, use the simulator's settings (settings_from_state_dir).",
                3,
            )
            return
        yield _error(
            s, "PRIVATE_KEY", f"is unusable: {exc}.", "Give an unencrypted RSA PEM key.", 3
        )


def _check_verification_keys(s: Any) -> Iterable[checks.CheckMessage]:
    apiv3_key = s.APIV3_KEY
    if apiv3_key and len(str(apiv3_key).encode()) != 32:
        yield _error(
            s,
            "APIV3_KEY",
            "is not 32 bytes long.",
            "The APIv3 key set in the merchant platform.",
            4,
        )
    key, key_id = s.WECHATPAY_PUBLIC_KEY, s.WECHATPAY_PUBLIC_KEY_ID
    if key_id and not key:
        yield _error(
            s,
            "WECHATPAY_PUBLIC_KEY",
            "is missing while WECHATPAY_PUBLIC_KEY_ID is set.",
            "Give the WeChat Pay public key (pub_key.pem) that belongs to that id.",
            5,
        )
    if key and not key_id:
        yield _error(
            s,
            "WECHATPAY_PUBLIC_KEY_ID",
            "is missing while WECHATPAY_PUBLIC_KEY is set.",
            "The id shown next to the key, 'PUB_KEY_ID_...'.",
            5,
        )
    if key_id and not PUBLIC_KEY_ID_RE.fullmatch(str(key_id)):
        yield _error(
            s,
            "WECHATPAY_PUBLIC_KEY_ID",
            "does not look like 'PUB_KEY_ID_...'.",
            "Copy it as shown.",
            5,
        )
    if key:
        yield from _check_public_key_material(s, key)
    if not key and not apiv3_key and not s.PLATFORM_CERTIFICATES:
        yield _error(
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
        yield _error(
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
        yield _error(s, "WECHATPAY_PUBLIC_KEY", f"is unusable: {problem}.", "Give a PEM key.", 6)


def _check_base_url(s: Any) -> Iterable[checks.CheckMessage]:
    """Plain HTTP to a remote host fails at the first call: say so at ``check``."""
    parts = urlsplit(str(s.BASE_URL or ""))
    if parts.scheme not in ("https", "http") or not parts.hostname:
        yield _error(
            s, "BASE_URL", "is not an https:// URL.", "e.g. 'https://api.mch.weixin.qq.com'.", 16
        )
    elif (
        parts.scheme == "http"
        and not is_loopback_host(parts.hostname)
        and not s.ALLOW_INSECURE_HTTP
    ):
        yield _error(
            s,
            "BASE_URL",
            "uses plain http to a host that is not loopback.",
            "Use https; plain http only to a local simulator, or set ALLOW_INSECURE_HTTP "
            "to True for a test stand-in on another host.",
            16,
        )
    elif parts.scheme == "http" and not settings.DEBUG:
        yield checks.Warning(
            f"{_label(s, 'BASE_URL')} is not https while DEBUG is False.",
            hint="WeChat Pay is only reached over HTTPS; plain HTTP is for a local simulator.",
            id="wxpay_profitsharing.W001",
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
            s, "TIMEOUT", "must be seconds or (connect, read) seconds.", "e.g. (3.05, 10).", 8
        )
    for key in ("RETRY_BACKOFF", "POLL_BACKOFF", "GET_RETRY_BACKOFF"):
        value = getattr(s, key)
        if not (
            isinstance(value, list | tuple)
            and len(value) == 2
            and all(isinstance(v, int | float) and v >= 0 for v in value)
        ):
            yield _error(s, key, "must be (first delay, cap) in seconds.", "e.g. (2.0, 300.0).", 9)
    if not (isinstance(s.POOL_SIZE, int) and s.POOL_SIZE >= 1):
        yield _error(s, "POOL_SIZE", "must be a positive integer.", "e.g. 16.", 10)
    if not (isinstance(s.RATE_LIMIT_QPS, int | float) and s.RATE_LIMIT_QPS >= 0):
        yield _error(s, "RATE_LIMIT_QPS", "must be a number >= 0 (0 = unlimited).", "e.g. 25.", 11)
    if isinstance(s.TRANSPORT, str) and s.TRANSPORT not in TRANSPORTS:
        yield _error(
            s, "TRANSPORT", f"must be one of {', '.join(TRANSPORTS)}.", "e.g. 'urllib3'.", 13
        )
    if s.TASK_BACKEND not in TASK_BACKENDS:
        choices = ", ".join(TASK_BACKENDS)
        yield _error(s, "TASK_BACKEND", f"must be one of {choices}.", "e.g. 'auto'.", 12)


#: A call must end well before its lease does: at most this share of ``LEASE_SECONDS``.
DEADLINE_SHARE_OF_LEASE = 0.5


def _check_deadline(s: Any) -> Iterable[checks.CheckMessage]:
    """The whole call's deadline is well below the lease, so no lease lapses mid-call."""
    lease = s.LEASE_SECONDS
    if not (isinstance(lease, int | float) and not isinstance(lease, bool) and lease > 0):
        yield _error(s, "LEASE_SECONDS", "must be a number of seconds > 0.", "e.g. 60.", 17)
        return
    try:
        deadline = call_deadline(s.TIMEOUT)
    except (TypeError, ValueError):
        return  # TIMEOUT itself is reported by E008
    if deadline > lease * DEADLINE_SHARE_OF_LEASE:
        yield _error(
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
        yield _error(s, "MERCHANTS", "must be a dict keyed by merchant id.", example, 19)
        return
    for mchid, entry in (entries or {}).items():
        if not MCHID_RE.fullmatch(str(mchid)) or not isinstance(entry, dict):
            problem = f"has an entry {str(mchid)[:32]!r} that is not a merchant id with its keys."
            yield _error(s, "MERCHANTS", problem, example, 19)
            continue
        unknown = sorted(set(entry) - MERCHANT_KEYS)
        if unknown:
            names = ", ".join(map(str, unknown))[:200]
            allowed = f"Per-merchant keys: {', '.join(sorted(MERCHANT_KEYS))}."
            problem = f"['{mchid}'] has keys that are not per-merchant: {names}."
            yield _error(s, "MERCHANTS", problem, allowed, 19)
    default = user.get("DEFAULT_MCHID")
    if default and entries and str(default) not in {str(k) for k in entries}:
        hint = "Name a configured merchant."
        yield _error(s, "DEFAULT_MCHID", "is not one of MERCHANTS.", hint, 20)


#: The smallest ``BILL_MAX_BYTES`` that makes sense: a bill of a few thousand rows.
MIN_BILL_BYTES = 1024 * 1024


def _check_bills(s: Any) -> Iterable[checks.CheckMessage]:
    value = s.BILL_MAX_BYTES
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= MIN_BILL_BYTES):
        yield _error(
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
        yield _error(s, "MERCHANT_SCOPE", f"cannot be imported: {exc}.", hint, 30)
        return
    if not callable(scope):
        hint = "An import string of a callable scope(user)."
        yield _error(s, "MERCHANT_SCOPE", "is not a callable.", hint, 30)


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
        yield _error(
            s,
            "NOTIFY_URL",
            f"is not an absolute https URL of at most {MAX_NOTIFY_URL} characters without "
            "a query string (plain http only to a loopback host).",
            "e.g. 'https://shop.example.com/api/wxpay/notifications/': the app's "
            "notifications/ route, as the internet reaches it.",
            31,
        )


def _check_notification_keys(s: Any) -> Iterable[checks.CheckMessage]:
    """With ``NOTIFY_URL`` set, a merchant without an APIv3 key cannot read its notices."""
    if s.NOTIFY_URL and not s.APIV3_KEY:
        yield checks.Warning(
            f"{_label(s, 'APIV3_KEY')} is not set while NOTIFY_URL is: WeChat Pay's "
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
        return [*messages, _error(wxpay_settings, "MERCHANT_PROVIDER", problem, hint, 19)]
    for merchant in configured:
        for part in MERCHANT_CHECKS:
            messages.extend(part(merchant))
    return messages


@checks.register(checks.Tags.database, "wxpay_profitsharing")
def check_time_zone_tables(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """MySQL without time-zone tables cannot convert to ``TIME_ZONE``: say so, and the fix.

    A database check (``manage.py check --database default``, and ``migrate``): it asks
    the server, once.
    """
    messages: list[checks.CheckMessage] = []
    for alias in databases or ():
        if needs_time_zone_tables(alias) and not converts_time_zones(alias):
            messages.append(
                checks.Warning(
                    f"The {alias!r} database has no time-zone tables, so it cannot convert "
                    f"times to TIME_ZONE {settings.TIME_ZONE!r}: date lookups (__date, "
                    "__year, dates()) in your own code return nothing.",
                    hint=f"Load them once: {LOAD_TIME_ZONES}.",
                    id="wxpay_profitsharing.W003",
                )
            )
    return messages


@checks.register(checks.Tags.database, "wxpay_profitsharing")
def check_isolation_level(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """A MySQL/MariaDB connection not at READ COMMITTED: say so, and the one-line fix.

    The app's own ledger holds under REPEATABLE READ too (it locks before it reads), but
    a shop's code reading the ledger in a transaction would see a snapshot older than
    the lock it waited for; Django's own default for MySQL is READ COMMITTED.
    """
    messages: list[checks.CheckMessage] = []
    for alias in databases or ():
        level = isolation_level(alias)
        if level is not None and level != "read-committed":
            messages.append(
                checks.Warning(
                    f"The {alias!r} database runs transactions at {level.upper()}, not READ "
                    "COMMITTED: a read after a row lock may not see what the lock waited for.",
                    hint=f"DATABASES[{alias!r}]['OPTIONS']['isolation_level'] = "
                    "'read committed' (Django's default for MySQL).",
                    id="wxpay_profitsharing.W030",
                )
            )
    return messages


@checks.register("wxpay_profitsharing")
def check_scale_out(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``RATE_LIMIT_STORE`` usable and answering; the pass's and the outbox's bounds.

    The store is asked once (a ping, a quarter-second timeout): when it does not answer,
    the calls still go on, each process under its own limit, and this warning says so.
    """
    s = wxpay_settings
    messages: list[checks.CheckMessage] = []
    if not (isinstance(s.PASS_SECONDS, int | float) and s.PASS_SECONDS > 0):
        problem = "must be a number of seconds > 0."
        messages.append(_error(s, "PASS_SECONDS", problem, "e.g. 50.", 41))
    attempts = s.SIGNAL_DELIVERY_ATTEMPTS
    if not (isinstance(attempts, int) and not isinstance(attempts, bool) and attempts >= 1):
        problem = "must be an integer >= 1."
        messages.append(_error(s, "SIGNAL_DELIVERY_ATTEMPTS", problem, "e.g. 5.", 42))
    url = s.RATE_LIMIT_STORE
    if not url:
        return messages
    example = "e.g. 'redis://127.0.0.1:6379/0', or None for a limit per process."
    scheme = urlsplit(url).scheme if isinstance(url, str) else ""
    if scheme not in shared_quota.STORE_SCHEMES:
        problem = f"must be a URL of {', '.join(f'{n}://' for n in shared_quota.STORE_SCHEMES)}."
        return [*messages, _error(s, "RATE_LIMIT_STORE", problem, example, 40)]
    try:
        shared_quota.store_for(url, str(s.RATE_LIMIT_STORE_PREFIX)).ping()
    except shared_quota.StoreMisconfigured as exc:
        messages.append(_error(s, "RATE_LIMIT_STORE", f"cannot be used: {exc}.", example, 40))
    except shared_quota.StoreUnavailable as exc:
        messages.append(
            checks.Warning(
                f"{SETTINGS_NAME}['RATE_LIMIT_STORE'] does not answer ({exc}): until it does, "
                "each process limits its own calls, and several processes together may "
                "exceed a merchant's WeChat Pay quota.",
                hint="Start the store, or check the URL; calls go on meanwhile.",
                id="wxpay_profitsharing.W040",
            )
        )
    return messages


@checks.register(checks.Tags.security, "wxpay_profitsharing", deploy=True)
def check_credential_alarms(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``check --deploy``: each merchant whose credentials WeChat Pay refuses right now.

    Read from the alarms the calls raised (``credential_alarm.py``); no call is made here
    (``wxpay_check_credentials`` asks WeChat Pay outright).
    """
    try:
        alarms = list(CredentialAlarm.objects.all())
    except DatabaseError:
        return []  # no database to read yet: nothing known
    return [
        checks.Error(
            f"WeChat Pay {'refuses' if alarm.kind == AlarmKind.REFUSED else 'cannot verify'} "
            f"the credentials of merchant {alarm.mchid} since {alarm.since:%Y-%m-%d %H:%M} "
            f"({alarm.code or '-'}): its returns and refunds wait.",
            hint="Fix its keys, then run manage.py wxpay_check_credentials.",
            id="wxpay_profitsharing.E050",
        )
        for alarm in alarms
    ]
