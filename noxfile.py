"""The versions shops run: the suite on every Python x Django pair the app supports.

``make matrix`` runs every session here (``make test`` runs the suite once, on the
project's own .venv). This file is where the supported matrix is declared: the
classifiers and bounds in pyproject.toml and the tables in README.md and
docs/install.md must say the same, which tests/test_matrix.py checks.

- SQLite for every supported pair. Django 6.0 and 6.1 need Python 3.12 or newer
  (their own ``python_requires``), so Python 3.11 runs Django 5.2 LTS only.
- PostgreSQL and MariaDB for the newest pair (Python 3.13, Django 6.1) and the LTS on
  the oldest Python (3.11, Django 5.2): the two ends of what shops run.

Each session installs the app, the simulator and the test extra with one Django series
(``Django>=6.1,<6.2``); the resolver picks the newest Django REST framework that the
app's bound allows (which is also the newest that each Django series is listed by).

What a session leaves to ``make test``: the browser test, the demo, the wheel install and
the benchmark smoke test (``LEFT_TO_MAKE_TEST``). They test the checkout's packaging and
tooling, which is the same on every Django, and take most of a pass's time. Hypothesis
runs its ``dev`` profile (a quarter of the CI examples) unless HYPOTHESIS_PROFILE says
otherwise: the properties do not depend on the Django version, and ``make test`` runs the
full count.

Databases: ``PG_URL`` and ``MYSQL_URL`` (defaults below, database ``matrix``; the test
databases are ``test_matrix_gw0`` and so on). Extra arguments go to pytest:
``nox -s "sqlite(py3.13-django6.1)" -- -k refund``.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import nox

#: Django series -> the requirement a session installs: one series each, its bound tested.
DJANGO = {
    "5.2": "Django>=5.2,<5.3",
    "6.0": "Django>=6.0,<6.1",
    "6.1": "Django>=6.1,<6.2",
}
#: Python -> the Django series it runs (Django 6.x requires Python 3.12+).
PYTHONS = {
    "3.11": ("5.2",),
    "3.12": ("5.2", "6.0", "6.1"),
    "3.13": ("5.2", "6.0", "6.1"),
}
#: (Python, Django) pairs that also run on PostgreSQL and on MariaDB: newest and LTS.
SERVER_PAIRS = (("3.13", "6.1"), ("3.11", "5.2"))
#: The Django REST framework series tested: the newest that lists Django 5.2, 6.0 and 6.1.
DRF_TESTED = "3.18"

PG_URL = os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/matrix")
MYSQL_URL = os.environ.get("MYSQL_URL", "mysql://root@127.0.0.1:3306/matrix")
LEFT_TO_MAKE_TEST = (
    "tests/test_browser.py",
    "tests/test_demo.py",
    "tests/test_wheel_install.py",
    "tests/test_bench_smoke.py",
)
WORKERS = os.environ.get("PYTEST_WORKERS", "2")

#: Prints the banner from inside the session's interpreter, with the versions installed.
BANNER = """
import sys, django, rest_framework
py = "%d.%d" % sys.version_info[:2]
dj = "%d.%d" % django.VERSION[:2]
print(f"== pytest on {sys.argv[1]}, Python {py}, Django {dj}", flush=True)
print(f"   (Python {sys.version.split()[0]}, Django {django.__version__},"
      f" Django REST framework {rest_framework.VERSION})", flush=True)
"""

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True


def _pairs(pairs: list[tuple[str, str]]) -> list[nox.param]:
    return [nox.param(py, dj, id=f"py{py}-django{dj}") for py, dj in pairs]


SQLITE_PAIRS = _pairs([(py, dj) for py, series in PYTHONS.items() for dj in series])


def _server_answers(url: str) -> bool:
    parts = urlsplit(url)
    port = parts.port or (5432 if parts.scheme.startswith("postgres") else 3306)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", port), 2).close()
    except OSError:
        return False
    return True


def _suite(session: nox.Session, django: str, database: str, url: str) -> None:
    if url and not _server_answers(url):
        # CI's machine runs both servers: there, a silent skip would hide the pass.
        if os.environ.get("CI", "").lower() in ("", "0", "false"):
            session.skip(f"{database} does not answer at {urlsplit(url).netloc}")
        session.error(f"{database} does not answer at {urlsplit(url).netloc}")
    session.install("-e", ".[test]", "-e", "./simulator", DJANGO[django])
    env = {
        "DATABASE_URL": url,
        "HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "dev"),
    }
    if database == "MariaDB":
        session.install("mysqlclient")
        session.run("python", "tests/prepare_mysql.py", url)
    session.run("python", "-c", BANNER, database, env=env, log=False)
    ignored = [f"--ignore={path}" for path in LEFT_TO_MAKE_TEST]
    selection = ["-m", "not slow", *ignored]
    session.run("pytest", "-n", WORKERS, *selection, *session.posargs, env=env)


@nox.session(tags=["sqlite"])
@nox.parametrize(("python", "django"), SQLITE_PAIRS)
def sqlite(session: nox.Session, django: str) -> None:
    """The suite on SQLite (an empty DATABASE_URL: tests/settings.py's default)."""
    _suite(session, django, "SQLite", "")


@nox.session(tags=["postgres"])
@nox.parametrize(("python", "django"), _pairs(list(SERVER_PAIRS)))
def postgres(session: nox.Session, django: str) -> None:
    """The suite on PostgreSQL (PG_URL)."""
    _suite(session, django, "PostgreSQL", PG_URL)


@nox.session(tags=["mariadb"])
@nox.parametrize(("python", "django"), _pairs(list(SERVER_PAIRS)))
def mariadb(session: nox.Session, django: str) -> None:
    """The suite on MariaDB (MYSQL_URL), its time-zone tables loaded first."""
    _suite(session, django, "MariaDB", MYSQL_URL)
