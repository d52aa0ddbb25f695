"""The check of running on several processes: the shared rate-limit store and the bounds
of a pass and of the outbox's deliveries."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core import checks

from .. import shared_quota
from ..conf import SETTINGS_NAME, wxpay_settings
from .messages import setting_error


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
        messages.append(setting_error(s, "PASS_SECONDS", problem, "e.g. 50.", 41))
    attempts = s.SIGNAL_DELIVERY_ATTEMPTS
    if not (isinstance(attempts, int) and not isinstance(attempts, bool) and attempts >= 1):
        problem = "must be an integer >= 1."
        messages.append(setting_error(s, "SIGNAL_DELIVERY_ATTEMPTS", problem, "e.g. 5.", 42))
    url = s.RATE_LIMIT_STORE
    if not url:
        return messages
    example = "e.g. 'redis://127.0.0.1:6379/0', or None for a limit per process."
    scheme = urlsplit(url).scheme if isinstance(url, str) else ""
    if scheme not in shared_quota.STORE_SCHEMES:
        problem = f"must be a URL of {', '.join(f'{n}://' for n in shared_quota.STORE_SCHEMES)}."
        return [*messages, setting_error(s, "RATE_LIMIT_STORE", problem, example, 40)]
    try:
        shared_quota.store_for(url, str(s.RATE_LIMIT_STORE_PREFIX)).ping()
    except shared_quota.StoreMisconfigured as exc:
        messages.append(
            setting_error(s, "RATE_LIMIT_STORE", f"cannot be used: {exc}.", example, 40)
        )
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
