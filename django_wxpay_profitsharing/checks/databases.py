"""Database checks (``check --database``): what MySQL/MariaDB must offer the app.

Each asks the server once: the time-zone tables, and the transactions' isolation level.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from ..dbtime import LOAD_TIME_ZONES, converts_time_zones, isolation_level, needs_time_zone_tables


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
