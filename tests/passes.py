"""Which tests each pass of ``make test`` runs, and the banner that names the pass.

``make test`` runs the suite on SQLite, then again on SQLite with ``USE_TZ = False``, on
PostgreSQL and on MariaDB (or MySQL). Most tests (the decision table, the client, the
transports, the simulator, the docs, the wheel) cannot turn out differently on another
database or time-zone setting, so repeating them buys nothing but minutes. The first pass
runs every test; a later pass runs only the tests that reach the database:

- a test whose fixture closure holds one of :data:`DB_FIXTURES` (it asks for ``db``,
  ``transactional_db``, ``live_server``, ``django_db_setup``..., itself or through any
  fixture it uses), or that carries ``@pytest.mark.django_db``;
- a test marked ``@pytest.mark.every_pass``: it reaches the database another way (a
  ``manage.py`` subprocess against the test database, say);
- except a test marked ``@pytest.mark.first_pass_only``: it asks for the database, but
  its outcome cannot depend on which one (the wheel, the demo shop and the benchmarks
  keep their own SQLite database).

The ``USE_TZ = False`` pass takes the same selection: how a time is stored and compared
matters only where it reaches the database (``dbtime.for_db``, ``dbtime.between``).

Left-out tests are deselected (not skipped), and the terminal summary says how many and
why. ``tests/test_passes.py`` guards the rule.
"""

from __future__ import annotations

import os
import platform
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pytest

#: Fixtures that give a test the database; pytest-django's autouse fixtures (always in
#: the closure, whatever the test does) are not among them.
DB_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
        "django_db_setup",
        "_django_db_helper",
        "live_server",
        "django_db_createdb",
        "django_db_keepdb",
        "django_db_modify_db_settings",
    }
)
EVERY_PASS = "every_pass"
FIRST_PASS_ONLY = "first_pass_only"
MARKERS = (
    f"{EVERY_PASS}: reaches the database without a database fixture (a subprocess, say): "
    "runs in every pass",
    f"{FIRST_PASS_ONLY}: uses the database, but its outcome cannot depend on which one: "
    "runs in the first pass only",
)

#: Why a later pass leaves a test out, as the summary words it.
NO_DATABASE = "reach no database"
MARKED_FIRST_ONLY = f"marked {FIRST_PASS_ONLY}"


@dataclass(frozen=True)
class Pass:
    """One pass of the suite, as the environment names it."""

    database: str  # "sqlite", "postgresql", "mysql"
    use_tz: bool

    @property
    def first(self) -> bool:
        return self.database == "sqlite" and self.use_tz

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Pass:
        environ = os.environ if environ is None else environ
        url = environ.get("DATABASE_URL", "")
        scheme = url.split(":", 1)[0].split("+", 1)[0].lower() if url else "sqlite"
        database = {"postgres": "postgresql", "postgresql": "postgresql", "pgsql": "postgresql"}
        database |= {"mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite"}
        return cls(database.get(scheme, scheme), environ.get("WXPAY_TEST_USE_TZ", "1") != "0")


def reason_left_out(item: pytest.Item) -> str | None:
    """Why a later pass leaves ``item`` out, or None when it runs in every pass."""
    if item.get_closest_marker(FIRST_PASS_ONLY) is not None:
        return MARKED_FIRST_ONLY
    if item.get_closest_marker(EVERY_PASS) is not None:
        return None
    if item.get_closest_marker("django_db") is not None:
        return None
    if DB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return None
    return NO_DATABASE


def select(items: Iterable[pytest.Item], this_pass: Pass) -> tuple[list, dict[str, list]]:
    """The tests ``this_pass`` runs, and the ones it leaves out by reason."""
    if this_pass.first:
        return list(items), {}
    kept: list[pytest.Item] = []
    left_out: dict[str, list[pytest.Item]] = {}
    for item in items:
        reason = reason_left_out(item)
        if reason is None:
            kept.append(item)
        else:
            left_out.setdefault(reason, []).append(item)
    return kept, left_out


# -- the banner ------------------------------------------------------------------------


def server_name(vendor: str) -> str:
    """The database as a person names it: MariaDB and MySQL told apart by asking."""
    from django.db import connection

    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MySQL"}
    if vendor not in ("postgresql", "mysql"):
        return names.get(vendor, vendor)
    try:
        version = server_version(connection)
    except Exception as error:  # the banner never stops the pass; the tests will say why
        return f"{names[vendor]} (version unknown: {type(error).__name__})"
    if "mariadb" in version.lower():
        return f"MariaDB {version.split('-', 1)[0]}"
    if vendor == "postgresql":
        return f"PostgreSQL {version.split()[1] if ' ' in version else version}"
    return f"MySQL {version.split('-', 1)[0]}"


def server_version(connection) -> str:
    """``SELECT VERSION()`` over a connection of its own, to the server's own database:
    the test database does not exist yet, and pytest-django blocks the shared one."""
    params = connection.get_connection_params()
    if connection.vendor == "postgresql":
        params["dbname"] = "postgres"
    else:
        params.pop("database", None)
        params.pop("db", None)
    raw = connection.get_new_connection(params)
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT VERSION()")
        return str(cursor.fetchone()[0])
    finally:
        raw.close()


def banner(this_pass: Pass) -> str:
    import django
    from django.db import connection

    where = server_name(connection.vendor)
    if not this_pass.use_tz:
        where += " with USE_TZ = False"
    python = ".".join(platform.python_version_tuple()[:2])
    return f"== pytest on {where}, Python {python}, Django {django.VERSION[0]}.{django.VERSION[1]}"


# -- the hooks (imported into conftest.py) ----------------------------------------------

PASS = Pass.from_environ()
_LEFT_OUT = "wxpay_passes_left_out"


_COUNTS = pytest.StashKey[Counter]()


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    config.stash[_COUNTS] = Counter()


def pytest_report_header(config: pytest.Config) -> list[str]:
    scope = "every test" if PASS.first else "only the tests that reach the database"
    return [banner(PASS), f"== this pass runs {scope} (tests/passes.py)"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, left_out = select(items, PASS)
    if not left_out:
        return
    for reason, dropped in left_out.items():
        config.stash[_COUNTS][reason] += len(dropped)
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller prints the summary
        workeroutput[_LEFT_OUT] = dict(config.stash[_COUNTS])


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """xdist: every worker collects the same tests, so the first report is the count."""
    counts = getattr(node, "workeroutput", {}).get(_LEFT_OUT)
    stash = node.config.stash[_COUNTS]
    if counts and not stash:
        stash.update(counts)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    counts = config.stash.get(_COUNTS, Counter())
    if PASS.first or not counts:
        return
    why = "; ".join(f"{count} {reason}" for reason, count in sorted(counts.items()))
    terminalreporter.write_line(f"== left to the first pass: {sum(counts.values())} tests ({why})")
