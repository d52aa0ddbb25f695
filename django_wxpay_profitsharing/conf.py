"""Settings of django-wxpay-profitsharing, read lazily from one dict.

Usage in a project's settings::

    WXPAY_PROFITSHARING = {
        "MCHID": "1900000100",                       # merchant or service-provider id
        "MERCHANT_SERIAL_NO": "5157F09EFDC096DE...",  # serial of the merchant API certificate
        "PRIVATE_KEY": "/etc/wxpay/apiclient_key.pem",  # a path, PEM text, or "env:VAR"
        "WECHATPAY_PUBLIC_KEY": "/etc/wxpay/pub_key.pem",
        "WECHATPAY_PUBLIC_KEY_ID": "PUB_KEY_ID_0114232220032024...",
        # or/and platform certificates, downloaded with the APIv3 key:
        "APIV3_KEY": "env:WXPAY_APIV3_KEY",
    }

Like DRF's ``api_settings``: defaults live in ``DEFAULTS``, values are read on first
use (so ``override_settings`` works) and dropped on ``setting_changed``; unknown
names raise ``AttributeError``. Nothing is validated at import time: the ``checks``
package reports problems through ``manage.py check`` with ids ``wxpay_profitsharing.E00x``.

Secrets are never stored in the database: ``PRIVATE_KEY`` and ``APIV3_KEY`` (and the
public key) may be a path, PEM/plain text, or ``"env:NAME"`` to read an environment
variable at use time.
"""

from __future__ import annotations

import enum
import os
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from .wechatpay.sensitive import sensitive_variables

SETTINGS_NAME = "WXPAY_PROFITSHARING"

DEFAULTS: dict[str, Any] = {
    # Several merchants in one site (merchants.py): {mchid: {per-merchant keys}}; empty,
    # the top-level credentials below are the one merchant.
    "MERCHANTS": {},
    "DEFAULT_MCHID": "",  # the merchant used when a create names none
    "MERCHANT_PROVIDER": None,  # import string of a callable returning MERCHANTS' entries
    # Credentials and endpoint (one merchant; per merchant inside MERCHANTS).
    "MCHID": "",
    "MERCHANT_SERIAL_NO": "",
    "PRIVATE_KEY": "",
    "APIV3_KEY": "",
    "WECHATPAY_PUBLIC_KEY": "",
    "WECHATPAY_PUBLIC_KEY_ID": "",
    "PLATFORM_CERTIFICATES": [],
    "BASE_URL": "https://api.mch.weixin.qq.com",
    "CA_BUNDLE": None,
    "ALLOW_INSECURE_HTTP": False,
    "TIMEOUT": (3.05, 10),
    # "urllib3" (keep-alive pools, one deadline a call), "requests", or a factory's import string
    # ``factory(base_url, *, timeout, ca_bundle, pool_maxsize) -> Transport`` (tests).
    "TRANSPORT": "urllib3",
    "CERTIFICATE_REFRESH_INTERVAL": 60.0,  # min seconds between certificate downloads
    # Behaviour.
    # An API create by a user with the submit permission is sent at once (else a draft).
    "SUBMIT_ON_CREATE": True,
    # The API create answers at once (201, pending) and submits after commit in the background.
    "SUBMIT_IN_BACKGROUND": False,
    # Two people for money movement: whoever created a return may not submit it.
    "REQUIRE_SEPARATE_SUBMITTER": False,
    "OUT_RETURN_NO_PREFIX": "R",
    "OUT_RETURN_NO_GENERATOR": "django_wxpay_profitsharing.numbering.generate_out_return_no",
    "RETRY_BACKOFF": (2.0, 300.0),  # seconds: first delay, cap (doubling, jittered)
    "POLL_BACKOFF": (5.0, 600.0),  # seconds: first delay, cap, for PROCESSING returns
    "GET_RETRY_BACKOFF": (0.1, 2.0),  # seconds: the client's own retries of a failed query
    "LEASE_SECONDS": 60.0,  # how long a claimed return is left alone by others
    "PROCESS_BATCH_SIZE": 100,
    # Scale-out (pool.py, ratelimit.py, task_backends.py and tasks.py).
    "POOL_SIZE": 16,
    "RATE_LIMIT_QPS": 25.0,
    # One quota per merchant shared by every process (shared_quota.py): a Redis URL, or None.
    "RATE_LIMIT_STORE": None,
    "RATE_LIMIT_STORE_PREFIX": "wxpay_ps",
    # Seconds one poller pass claims new returns for, then delivers left-over signals.
    "PASS_SECONDS": 50.0,
    # Deliveries of one signal event whose receivers raise, before it waits for an operator.
    "SIGNAL_DELIVERY_ATTEMPTS": 5,
    "TASK_BACKEND": "auto",  # "auto" (Celery if configured), "celery", "thread", "inline"
    "BULK_BACKGROUND_THRESHOLD": 20,
    # Who sees and acts on which merchant's rows (access.py): every merchant by default.
    "MERCHANT_SCOPE": "django_wxpay_profitsharing.access.every_merchant",
    # Refunds (refund_jobs.py).
    "NOTIFY_URL": "",  # where WeChat Pay POSTs refund notifications: the app's notifications/
    "REFUND_ALLOW_UNFREEZE": True,  # unfreeze a payment's frozen rest when a refund needs it
    "REFUND_SPACING_SECONDS": 65.0,  # between two refund requests of one payment (WeChat: 60)
    "REFUND_POLL_BACKOFF": (60.0, 1800.0),  # seconds: first query after a refund, cap
    "REFUND_SPLIT_WAIT": 600.0,  # seconds between looks while a payment's splits are open
    "REFUND_ATTENTION_AFTER": 86400.0,  # a refund processing longer asks for an operator
    # REST API.
    "API_PERMISSION_CLASSES": [
        "django_wxpay_profitsharing.api.permissions.ProfitSharingReturnPermissions"
    ],
    "API_PAGE_SIZE": 50,
    # Reconciliation (reconcile.py): the largest daily bill read, as sent and uncompressed.
    "BILL_MAX_BYTES": 1024 * 1024 * 1024,
}

#: One line per key for the settings reference (docs/settings.md is generated from these
#: and ``DEFAULTS`` by ``docs/generate.py``; a test fails when a key has no line).
DESCRIPTIONS: dict[str, str] = {
    "MERCHANTS": "Several merchants in one site: `{mchid: {per-merchant keys}}` (credentials, "
    "and optionally `BASE_URL`, `RATE_LIMIT_QPS`); empty: the top-level keys are the one merchant.",
    "DEFAULT_MCHID": "The merchant a create uses when it names none (one of `MERCHANTS`).",
    "MERCHANT_PROVIDER": "Import string of a callable returning `MERCHANTS`' entries, for "
    "merchants configured elsewhere (read when the settings are).",
    "MCHID": "Your merchant id, or the service provider's in partner mode (服务商模式). Required.",
    "MERCHANT_SERIAL_NO": "Serial number of the merchant API certificate (商户API证书序列号). "
    "Required.",
    "PRIVATE_KEY": "The merchant API private key (apiclient_key.pem): a path, PEM text or "
    '`"env:VAR"`. Required; never stored, logged or shown.',
    "APIV3_KEY": "The 32-byte APIv3 key, to download and decrypt platform certificates "
    "(platform-certificate mode). A secret like `PRIVATE_KEY`.",
    "WECHATPAY_PUBLIC_KEY": "The WeChat Pay public key (微信支付公钥, pub_key.pem; "
    "`-----BEGIN PUBLIC KEY-----`), never a certificate (check E015). Path, PEM or `env:VAR`.",
    "WECHATPAY_PUBLIC_KEY_ID": "The id shown beside that key, `PUB_KEY_ID_...`: answers signed "
    "with it are verified with `WECHATPAY_PUBLIC_KEY`.",
    "PLATFORM_CERTIFICATES": "Platform certificates given by hand (paths or PEM), besides those "
    "downloaded with `APIV3_KEY`.",
    "BASE_URL": "Where WeChat Pay answers. Plain http only to a loopback host (the simulator), "
    "unless `ALLOW_INSECURE_HTTP` (check E016).",
    "CA_BUNDLE": "A CA bundle for TLS (a path); None: certifi's when installed, else the "
    "system's. The simulator's `--tls` writes its own into the state directory.",
    "ALLOW_INSECURE_HTTP": "True allows plain http to a non-loopback `BASE_URL`: a simulator on "
    "another host (docker compose). Never for WeChat Pay.",
    "TIMEOUT": "`(connect, read)` seconds, or one number; no call lasts longer than their sum "
    "(check E018: well below `LEASE_SECONDS`).",
    "TRANSPORT": '`"urllib3"` (keep-alive pools), `"requests"` (its adapters), or the import '
    "string of a transport factory.",
    "CERTIFICATE_REFRESH_INTERVAL": "Least seconds between two downloads of the platform "
    "certificates (an unknown serial triggers one).",
    "SUBMIT_ON_CREATE": "An API create by a user with the submit permission is sent at once; "
    "False: every API create is a draft until submitted.",
    "SUBMIT_IN_BACKGROUND": "The API create answers at once (201, `pending`) and the submission "
    "runs in the background after commit, instead of inside the request.",
    "REQUIRE_SEPARATE_SUBMITTER": "Two people for money movement: whoever created a return may "
    "not submit it (admin, API and services alike).",
    "OUT_RETURN_NO_PREFIX": "Prefix of the generated out_return_no (商户回退单号).",
    "OUT_RETURN_NO_GENERATOR": "Import string of `generator(prefix) -> str` for new "
    "out_return_no values (time-ordered by default).",
    "RETRY_BACKOFF": "`(first delay, cap)` seconds between attempts whose outcome is unknown "
    "(doubling, jittered); the same out_return_no each time.",
    "POLL_BACKOFF": "`(first delay, cap)` seconds between queries of a `processing` return.",
    "GET_RETRY_BACKOFF": "`(first delay, cap)` seconds of the client's own immediate retries "
    "of a failed query.",
    "LEASE_SECONDS": "How long a claimed return is left to its claimant before another worker "
    "may take it over.",
    "PROCESS_BATCH_SIZE": "Returns one `wxpay_process_returns` round (or one Celery batch task) "
    "takes at most.",
    "POOL_SIZE": "Threads per process for concurrent calls to WeChat Pay.",
    "RATE_LIMIT_QPS": "Calls per second to WeChat Pay's return endpoints per merchant (0: "
    "unlimited): per process, or shared by every process with `RATE_LIMIT_STORE`.",
    "RATE_LIMIT_STORE": "A store every process and host reaches, to share each merchant's "
    "quota (`redis://host:6379/0`, through the `limits` library); None: each process limits "
    "itself. Unreachable: each process limits itself, logged, check W040.",
    "RATE_LIMIT_STORE_PREFIX": "Prefix of the quota keys in `RATE_LIMIT_STORE`: the same for "
    "every process that calls for the same merchants.",
    "PASS_SECONDS": "Seconds one `wxpay_process_returns` pass (or `process_due_returns` task) "
    "claims new returns for; then it delivers left-over signals, and the next pass goes on.",
    "SIGNAL_DELIVERY_ATTEMPTS": "Deliveries of one signal event whose receiver raises (backing "
    "off), before it is left for an operator (`wxpay_process_returns --retry-signals`).",
    "TASK_BACKEND": '`"auto"` (Celery when the project has loaded its own Celery app, '
    '`"thread"` otherwise), `"celery"`, `"thread"` or `"inline"`: where large batches run.',
    "BULK_BACKGROUND_THRESHOLD": "Batches larger than this (admin action, bulk API) go to the "
    "background; smaller ones run inside the request.",
    "API_PERMISSION_CLASSES": "DRF permission classes of the REST API (import strings); by "
    "default the model permissions, action by action.",
    "API_PAGE_SIZE": "Returns per page of the API's list (cursor pagination).",
    "NOTIFY_URL": "The absolute URL WeChat Pay POSTs refund notifications to (the app's "
    "`notifications/` route), sent as each refund's `notify_url`; https outside loopback "
    "(check E031). Empty: none sent (the merchant platform's own setting applies).",
    "REFUND_ALLOW_UNFREEZE": "A refund larger than what is still frozen of its payment "
    "unfreezes the rest first (解冻剩余资金); False: it waits for WeChat Pay's own unfreeze.",
    "REFUND_SPACING_SECONDS": "Seconds between two refund requests of one payment, kept by "
    "the app across processes (WeChat Pay asks for 60).",
    "REFUND_POLL_BACKOFF": "`(first, cap)` seconds between two queries of a refund being "
    "processed (doubling); notifications make the job look at once.",
    "REFUND_SPLIT_WAIT": "Seconds between two looks at a payment whose splits are still open "
    "(RULE_LIMIT).",
    "REFUND_ATTENTION_AFTER": "Seconds a refund may process before it asks for an operator "
    "(a short balance is likely; WeChat Pay closes it after 7 days).",
    "BILL_MAX_BYTES": "The largest daily bill reconciliation reads, in bytes, as downloaded and "
    "uncompressed (1 GiB, about four million rows); streamed to a temporary file, never held "
    "in memory.",
    "MERCHANT_SCOPE": "Import string of `scope(user)`: the `(mchid, sub_mchid)` pairs a user "
    "may see and act on (None: all). `django_wxpay_profitsharing.access.merchant_groups` reads "
    "groups named `wxpay:<mchid>` or `wxpay:<mchid>:<sub_mchid>`.",
}

IMPORT_STRINGS = {"OUT_RETURN_NO_GENERATOR", "API_PERMISSION_CLASSES", "MERCHANT_SCOPE"}
SECRET_KEYS = {"PRIVATE_KEY", "APIV3_KEY", "WECHATPAY_PUBLIC_KEY"}


class TaskBackend(enum.StrEnum):
    """What ``TASK_BACKEND`` may be: where background work runs (``task_backends.py``)."""

    #: Celery when a Celery app is configured, else the thread pool.
    AUTO = "auto"
    CELERY = "celery"
    THREAD = "thread"
    #: No background: everything runs on the caller's thread.
    INLINE = "inline"


#: The values ``TASK_BACKEND`` may take.
TASK_BACKENDS = tuple(TaskBackend)
ENV_PREFIX = "env:"


@sensitive_variables()
def resolve_secret(value: Any) -> Any:
    """Turn ``"env:NAME"`` into the environment variable's value (or "" when unset)."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        return os.environ.get(value[len(ENV_PREFIX) :], "")
    return value


def unset_variable(value: Any) -> str | None:
    """NAME when ``value`` is ``"env:NAME"`` and NAME is unset or empty, else None.

    Why: an unset variable resolves to "", which would be reported as a missing
    setting (or pass, for an optional one); the operator needs the variable's name.
    """
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        return None if os.environ.get(name) else name
    return None


class ProfitSharingSettings:
    """Attribute access to ``settings.WXPAY_PROFITSHARING`` with defaults."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    @property
    def user_settings(self) -> dict[str, Any]:
        return getattr(settings, SETTINGS_NAME, None) or {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(f"Invalid {SETTINGS_NAME} setting: {name!r}")
        if name in self._cache:
            return self._cache[name]
        value = self.user_settings.get(name, DEFAULTS[name])
        if name in SECRET_KEYS:
            value = resolve_secret(value)
        if name == "TRANSPORT" and isinstance(value, str) and "." in value:
            value = import_string(value)
        if name in IMPORT_STRINGS:
            value = (
                [import_string(v) if isinstance(v, str) else v for v in value]
                if isinstance(value, list | tuple)
                else import_string(value)
                if isinstance(value, str)
                else value
            )
        self._cache[name] = value
        return value

    def reload(self) -> None:
        self._cache.clear()


wxpay_settings = ProfitSharingSettings()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME:
        wxpay_settings.reload()


setting_changed.connect(_on_setting_changed)
