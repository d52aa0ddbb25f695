"""Model fields for WeChat Pay's identifiers: compared exactly, on every database.

Why: MySQL and MariaDB compare text with the column's collation, case-insensitive by
default, so ``rcase1`` would find ``RCASE1`` (and a unique key would refuse both). WeChat
Pay's numbers are case-sensitive. :class:`IdentifierField` asks for a binary collation
on MySQL/MariaDB and changes nothing elsewhere (PostgreSQL and SQLite compare exactly
already), so one migration works on all three.

``MAX_PK`` bounds the app's keys (64-bit, ``BigAutoField``): a door checks an id against it
before asking the database, which would overflow.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

#: The binary collation for utf8mb4 columns (case- and accent-sensitive, byte order).
MYSQL_BINARY_COLLATION = "utf8mb4_bin"


class IdentifierField(models.CharField):  # type: ignore[type-arg]
    """A ``CharField`` for an id or a number WeChat Pay compares case-sensitively."""

    def db_parameters(self, connection: BaseDatabaseWrapper) -> dict[str, Any]:
        params = super().db_parameters(connection)
        if connection.vendor == "mysql" and not self.db_collation:
            params["collation"] = MYSQL_BINARY_COLLATION
        return params


#: The largest 64-bit key: a bigger id names no row (and would overflow the database).
MAX_PK = 2**63 - 1
