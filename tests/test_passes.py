"""The later passes of ``make test`` leave out no test that reaches the database.

The real suite is collected as a later pass collects it (``WXPAY_TEST_USE_TZ=0``, in a
subprocess), with a probe plugin that walks each test's fixture graph on its own (from
the names the test asks for, through every fixture's own arguments, not through
``item.fixturenames``) before ``tests/passes.py`` deselects, and records what is kept
after. A test whose graph reaches pytest-django's database fixtures, or that carries
``django_db``, must be kept unless marked ``first_pass_only``; a kept test must reach the
database or be marked ``every_pass``. The rule itself is also tried on made-up tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .passes import (
    EVERY_PASS,
    FIRST_PASS_ONLY,
    MARKED_FIRST_ONLY,
    NO_DATABASE,
    Pass,
    banner,
    reason_left_out,
    select,
)

ROOT = Path(__file__).resolve().parent.parent

#: Loaded into the collecting subprocess with ``-p``: one hook before the deselection,
#: one after, each writing what it sees.
PROBE = """
import json, os
import pytest

#: Where every database fixture of pytest-django leads.
DATABASE = {"_django_db_helper", "django_db_setup"}


def reaches_database(item):
    defs = item._fixtureinfo.name2fixturedefs
    seen, todo = set(), list(item._fixtureinfo.initialnames)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for fixturedef in defs.get(name, ()):
            todo.extend(fixturedef.argnames)
    return bool(seen & DATABASE) or item.get_closest_marker("django_db") is not None


def marks(item):
    return sorted(m for m in ("every_pass", "first_pass_only") if item.get_closest_marker(m))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    config._probe = {
        item.nodeid: {"database": reaches_database(item), "marks": marks(item)}
        for item in items
    }


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    out = {"all": session.config._probe, "kept": [item.nodeid for item in session.items]}
    with open(os.environ["PASSES_PROBE_OUT"], "w") as f:
        json.dump(out, f)
"""


@pytest.fixture(scope="module")
def later_pass(tmp_path_factory) -> dict:
    """The whole suite as the USE_TZ = False pass collects it, seen by the probe."""
    tmp = tmp_path_factory.mktemp("passes")
    (tmp / "passes_probe.py").write_text(PROBE, encoding="utf-8")
    out = tmp / "probe.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("DATABASE_URL", None)
    env |= {"WXPAY_TEST_USE_TZ": "0", "PASSES_PROBE_OUT": str(out)}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp), str(ROOT)])
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "passes_probe"]
    command += ["-p", "no:cacheprovider", "tests"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    seen = json.loads(out.read_text("utf-8"))
    seen["stdout"] = done.stdout
    return seen


def test_a_later_pass_keeps_every_test_that_reaches_the_database(later_pass):
    kept = set(later_pass["kept"])
    left_out = [
        nodeid
        for nodeid, test in later_pass["all"].items()
        if test["database"] and FIRST_PASS_ONLY not in test["marks"] and nodeid not in kept
    ]
    assert not left_out, f"{len(left_out)} database tests left out, e.g. {left_out[:5]}"


def test_a_later_pass_runs_nothing_that_cannot_differ(later_pass):
    extra = [
        nodeid
        for nodeid in later_pass["kept"]
        if not later_pass["all"][nodeid]["database"]
        and EVERY_PASS not in later_pass["all"][nodeid]["marks"]
    ]
    assert not extra, f"{len(extra)} tests without a database kept, e.g. {extra[:5]}"
    marked_out = [
        nodeid
        for nodeid, test in later_pass["all"].items()
        if FIRST_PASS_ONLY in test["marks"] and nodeid in later_pass["kept"]
    ]
    assert not marked_out, marked_out[:5]


def test_the_split_is_real_and_reported(later_pass):
    """Both sides are populated by tests this file names, and the summary says why."""
    everything, kept = later_pass["all"], set(later_pass["kept"])
    assert "tests/test_passes.py::test_the_split_is_real_and_reported" not in kept
    assert not everything["tests/test_passes.py::test_the_split_is_real_and_reported"]["database"]
    database = [n for n, t in everything.items() if t["database"] and n in kept]
    assert database and len(kept) < len(everything)
    schemathesis = [n for n in everything if n.startswith("tests/test_schemathesis.py::")]
    assert schemathesis and all(EVERY_PASS in everything[n]["marks"] for n in schemathesis)
    assert set(schemathesis) <= kept
    assert f"{len(everything) - len(kept)} tests (" in later_pass["stdout"]


@dataclass
class Made:
    """A made-up collected test: the fixtures in its closure and its markers."""

    fixturenames: list[str] = field(default_factory=list)
    markers: tuple[str, ...] = ()

    def get_closest_marker(self, name: str):
        return name if name in self.markers else None


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (Made(["sim", "configured"]), NO_DATABASE),
        (Made(["configured", "db"]), None),
        (Made(["transactional_db"]), None),
        (Made(["live_server", "transactional_db"]), None),
        (Made(["django_db_setup"]), None),
        (Made(["django_db_blocker"]), NO_DATABASE),  # autouse: in every test's closure
        (Made([], ("django_db",)), None),
        (Made([], (EVERY_PASS,)), None),
        (Made(["db"], (FIRST_PASS_ONLY,)), MARKED_FIRST_ONLY),
    ],
)
def test_the_rule_on_made_up_tests(item, reason):
    assert reason_left_out(item) == reason


def test_the_first_pass_runs_everything_and_the_others_choose():
    items = [Made(["db"]), Made(["sim"]), Made(["db"], (FIRST_PASS_ONLY,))]
    assert select(items, Pass("sqlite", use_tz=True)) == (items, {})
    for later in (Pass("sqlite", False), Pass("postgresql", True), Pass("mysql", True)):
        kept, left_out = select(items, later)
        assert kept == items[:1]
        assert left_out == {NO_DATABASE: items[1:2], MARKED_FIRST_ONLY: items[2:]}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, Pass("sqlite", True)),
        ({"WXPAY_TEST_USE_TZ": "0"}, Pass("sqlite", False)),
        ({"DATABASE_URL": "postgres://u@h/d"}, Pass("postgresql", True)),
        ({"DATABASE_URL": "postgresql://u@h/d"}, Pass("postgresql", True)),
        ({"DATABASE_URL": "mysql://root@h:3306/d"}, Pass("mysql", True)),
        ({"DATABASE_URL": "mariadb://root@h:3306/d"}, Pass("mysql", True)),
    ],
)
def test_the_pass_is_read_from_the_environment(environ, expected):
    assert Pass.from_environ(environ) == expected
    assert Pass.from_environ(environ).first == (expected == Pass("sqlite", True))


def test_the_banner_names_python_django_and_the_database():
    """SQLite here (this test reaches no database: the first pass runs it)."""
    import django

    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    versions = f"Python {python}, Django {django.VERSION[0]}.{django.VERSION[1]}"
    assert banner(Pass("sqlite", True)) == f"== pytest on SQLite, {versions}"
    assert banner(Pass("sqlite", False)) == f"== pytest on SQLite with USE_TZ = False, {versions}"
