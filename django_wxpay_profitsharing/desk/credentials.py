"""The desk's question to WeChat Pay: does it take each merchant's credentials now?

What a shop runs right after deploying (``manage.py wxpay_check_credentials``): one
cheap signed call per merchant, whose answer says whether WeChat Pay takes the key and
serial and whether the configured public key verifies its answers.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..clients import client_for
from ..credential_alarm import Probe, probe
from ..merchants import merchants


def check_credentials(mchids: Iterable[str] | None = None) -> list[Probe]:
    """One probe per merchant (``None``: every configured one), in mchid order."""
    chosen = sorted(mchids) if mchids is not None else sorted(merchants())
    return [probe(mchid, client_for) for mchid in chosen]
