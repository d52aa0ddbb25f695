"""``DATABASE_URL`` to a Django ``DATABASES`` entry, for the test and example settings.

Kept tiny on purpose (postgres://, mysql:// and sqlite:/// only) so that neither needs
an extra dependency such as dj-database-url. MySQL/MariaDB tables are utf8mb4; the
identifier columns ask for a binary collation themselves (``fields.IdentifierField``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

#: Server databases by URL scheme: the engine, default user, host and port, and the
#: extra keys the backend needs.
SERVERS: dict[str, tuple[str, str, str, str, dict[str, Any]]] = {
    "postgres": ("django.db.backends.postgresql", "", "", "", {}),
    "postgresql": ("django.db.backends.postgresql", "", "", "", {}),
    "mysql": (
        "django.db.backends.mysql", "root", "127.0.0.1", "3306",
        {
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        },
    ),
}  # fmt: skip
SERVERS["mariadb"] = SERVERS["mysql"]


def database_from_url(url: str) -> dict[str, Any]:
    """The ``DATABASES`` entry for ``url``; ``?conn_max_age=N`` keeps connections N s."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if parts.scheme in SERVERS:
        engine, user, host, port, extra = SERVERS[parts.scheme]
        entry = {
            "ENGINE": engine,
            "NAME": unquote(parts.path.lstrip("/")) or "test",
            "USER": unquote(parts.username or user),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or host,
            "PORT": str(parts.port or port),
            **extra,
        }
        if "conn_max_age" in query:
            entry["CONN_MAX_AGE"] = int(query["conn_max_age"][0])
        return entry
    if parts.scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": parts.path or ":memory:",
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    raise ValueError(f"unsupported DATABASE_URL scheme: {parts.scheme}")


#: URL schemes by Django database vendor, for :func:`url_of`.
SCHEMES = {"postgresql": "postgres", "mysql": "mysql"}


def url_of(settings_dict: dict[str, Any], vendor: str) -> str:
    """The ``DATABASE_URL`` of a connection (the inverse of :func:`database_from_url`).

    Why: a worker process started by a test must open the very database the test
    process uses, which for tests is the test database Django created.
    """
    if vendor == "sqlite":
        return f"sqlite://{settings_dict['NAME']}"
    scheme = SCHEMES[vendor]
    auth = quote(settings_dict["USER"] or "", safe="")
    if settings_dict.get("PASSWORD"):
        auth += ":" + quote(settings_dict["PASSWORD"], safe="")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or ("5432" if vendor == "postgresql" else "3306")
    return f"{scheme}://{auth}@{host}:{port}/{settings_dict['NAME']}"
