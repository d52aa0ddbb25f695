"""System checks: report a malformed ``WXPAY_PROFITSHARING`` by key, at ``manage.py check``.

Ids are ``wxpay_profitsharing.E001``..., so a project can silence one in
``SILENCED_SYSTEM_CHECKS``. Messages name the key and the problem, never the secret.

One module per kind of check: ``site_settings`` (the site's keys, and ``check_settings``,
which runs them with each merchant's), ``merchant_credentials`` (one merchant's ids and
keys), ``databases`` (what MySQL/MariaDB must offer), ``scale_out`` (the shared rate-limit
store, the pass's and the outbox's bounds) and ``credential_alarms`` (``check --deploy``).
Importing this package, as ``AppConfig.ready`` does, registers every check.
"""

from .credential_alarms import check_credential_alarms
from .databases import check_isolation_level, check_time_zone_tables
from .scale_out import check_scale_out
from .site_settings import check_settings

__all__ = [
    "check_credential_alarms",
    "check_isolation_level",
    "check_scale_out",
    "check_settings",
    "check_time_zone_tables",
]
