"""Times as the database takes them, under ``USE_TZ = True`` or ``False``, on any backend.

Why: WeChat Pay's times carry an offset (``+08:00``); Django refuses an aware datetime
for a database when ``USE_TZ = False`` (as many Chinese projects run, with
``TIME_ZONE = "Asia/Shanghai"``). :func:`for_db` turns WeChat's aware times into the
project's local naive time then, and leaves them aware otherwise.

And: with ``USE_TZ = True`` and a non-UTC ``TIME_ZONE``, MySQL/MariaDB convert times
with ``CONVERT_TZ``, which answers NULL on a server whose time-zone tables were never
loaded; the admin's date drill-down then crashes. :func:`converts_time_zones` probes
once per connection, so the admin can leave the drill-down out, and a system check can
name the one-line fix.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

#: The fix the check and the README give, for MySQL and for MariaDB.
LOAD_TIME_ZONES = (
    "mysql_tzinfo_to_sql /usr/share/zoneinfo | mysql -u root mysql "
    "(MariaDB: mariadb-tzinfo-to-sql /usr/share/zoneinfo | mariadb -u root mysql)"
)

#: The probe's answers by (database alias, TIME_ZONE): a settings change asks anew.
_probed: dict[tuple[str, str], bool] = {}


def for_db(value: datetime | None) -> datetime | None:
    """``value`` as a database field of this project takes it (naive local when no USE_TZ)."""
    if value is None or settings.USE_TZ or timezone.is_naive(value):
        return value
    return timezone.make_naive(value)


def between(earlier: datetime, later: datetime) -> timedelta:
    """``later - earlier`` when one is WeChat's (aware) and one the site's (naive without USE_TZ).

    A naive time is the project's local time in ``TIME_ZONE``, as Django stores it then.
    """
    return _aware(later) - _aware(earlier)


def _aware(value: datetime) -> datetime:
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def needs_time_zone_tables(alias: str = "default") -> bool:
    """Whether this database converts times itself with named zones (MySQL, USE_TZ, not UTC)."""
    connection = connections[alias]
    return (
        connection.vendor == "mysql"
        and bool(settings.USE_TZ)
        and str(settings.TIME_ZONE or "UTC") not in ("UTC", "Etc/UTC")
    )


def converts_time_zones(alias: str = "default") -> bool:
    """False when the database cannot convert to ``TIME_ZONE`` (tables not loaded).

    True where no conversion is needed, and when the database cannot be asked (the
    question is then left to the first query, as Django leaves it).
    """
    if not needs_time_zone_tables(alias):
        return True
    key = (alias, str(settings.TIME_ZONE))
    if key not in _probed:
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT CONVERT_TZ('2000-01-01 00:00:00', 'UTC', %s)", [key[1]])
                row = cursor.fetchone()
        except DatabaseError:
            return True
        _probed[key] = row is not None and row[0] is not None
    return _probed[key]


def isolation_level(alias: str = "default") -> str | None:
    """A MySQL/MariaDB connection's transaction isolation ("read-committed", ...).

    ``None`` for other databases, or when the server cannot be asked. Why it matters:
    see ``ledger.lock_order`` (REPEATABLE READ reads from a snapshot).
    """
    connection = connections[alias]
    if connection.vendor != "mysql":
        return None
    # MySQL 8 and MariaDB 11.1+ name it transaction_isolation; older MariaDB tx_isolation.
    for variable in ("transaction_isolation", "tx_isolation"):
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT @@SESSION.{variable}")
                row = cursor.fetchone()
        except DatabaseError:
            continue
        if row is not None and row[0]:
            return str(row[0]).lower().replace(" ", "-")
    return None
