"""Generation of ``out_return_no`` values.

Time-ordered (they sort by creation time as text, which keeps indexes and admin
listings tidy), at most 64 characters, and drawn only from ``[0-9A-Za-z_-]``: the
characters every version of WeChat Pay's documentation accepts.

The time is Beijing time (UTC+8, the zone of WeChat Pay's merchant platform, its bills
and every date an operator reads there), whatever the server's clock or ``TIME_ZONE``:
a number made at 01:00 in Beijing says 01:00, not the previous day's 17:00 in UTC. A
fixed offset sorts exactly like UTC, so the order of the numbers is unchanged.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from .wechatpay.bills import BEIJING

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no look-alikes


def generate_out_return_no(prefix: str = "R") -> str:
    """``<prefix><Beijing yyyymmddHHMMSSffffff><10 random base32 chars>``, e.g. R2026...Q7."""
    stamp = datetime.now(BEIJING).strftime("%Y%m%d%H%M%S%f")
    tail = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    value = f"{prefix}{stamp}{tail}"
    if len(value) > 64:
        raise ValueError("OUT_RETURN_NO_PREFIX is too long: numbers must fit in 64 characters")
    return value
