"""How every check message names a setting: the merchant's own key, or the site's.

Why shared: an id (``wxpay_profitsharing.E0NN``) and the key's name are spelt the same way
by each module of checks, so a project silences or finds one message by one name.
"""

from __future__ import annotations

from typing import Any

from django.core import checks

from ..conf import SETTINGS_NAME


def setting_label(s: Any, key: str) -> str:
    """How a message names ``key``: the merchant's own key, or the site's."""
    label = getattr(s, "label", None)
    return label(key) if callable(label) else f"{SETTINGS_NAME}['{key}']"


def setting_error(s: Any, key: str, msg: str, hint: str, number: int) -> checks.Error:
    return checks.Error(
        f"{setting_label(s, key)} {msg}", hint=hint, id=f"wxpay_profitsharing.E{number:03d}"
    )
