"""The supported matrix is said once in noxfile.py; every other place must agree with it.

A shop reads the matrix in four places: the classifiers and bounds pip and PyPI show
(pyproject.toml, the simulator's too), and the tables in README.md and docs/install.md.
The sessions that ``make matrix`` runs are what was tested, so they are the reference:
a pair declared but not run, or run but not declared, or a bound that admits an
untested Django series, is a disagreement. Each check is shown to fail on a copy of the
real text with one thing changed.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import django
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
#: nox session name -> the database named in the tables and in the banner.
DATABASES = {"sqlite": "SQLite", "postgres": "PostgreSQL", "mariadb": "MariaDB"}
TABLE = re.compile(r"<!-- matrix:.*?-->\n(.*?)<!-- /matrix -->", re.DOTALL)

Triple = tuple[str, str, str]  # (database, Python, Django series)


@dataclasses.dataclass
class Declared:
    """What each place says, parsed: the sessions are what runs."""

    sessions: set[Triple]
    pyproject: str
    simulator_pyproject: str
    readme: str
    install_doc: str
    drf_tested: str


def next_minor(series: str) -> str:
    major, minor = series.split(".")
    return f"{major}.{int(minor) + 1}"


def nox_sessions() -> list[dict[str, object]]:
    listing = subprocess.run(
        [sys.executable, "-m", "nox", "--list", "--json", "-f", str(ROOT / "noxfile.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(listing.stdout)


def triples(sessions: list[dict[str, object]]) -> set[Triple]:
    found = set()
    for session in sessions:
        call_spec = session["call_spec"]
        assert isinstance(call_spec, dict)
        found.add((DATABASES[str(session["name"])], str(session["python"]), call_spec["django"]))
    return found


def table_triples(text: str) -> tuple[set[Triple], list[str], list[str]]:
    """The table between the matrix markers: (triples, Django series, Pythons)."""
    match = TABLE.search(text)
    if match is None:
        return set(), [], []
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in match.group(1).strip().splitlines()
    ]
    header, body = rows[0], rows[2:]
    series = [re.sub(r"^Django (\d+\.\d+).*$", r"\1", cell) for cell in header[1:]]
    found = set()
    for row in body:
        for dj, cell in zip(series, row[1:], strict=True):
            if cell.startswith("not supported"):
                continue
            found.update((db.strip(), row[0], dj) for db in cell.split(","))
    return found, series, [row[0] for row in body]


def classifiers(pyproject: str, prefix: str) -> set[str]:
    listed = tomllib.loads(pyproject)["project"]["classifiers"]
    version = re.compile(re.escape(prefix) + r"\d+\.\d+")
    return {c.removeprefix(prefix) for c in listed if version.fullmatch(c)}


def requirement(pyproject: str, name: str) -> SpecifierSet:
    for line in tomllib.loads(pyproject)["project"]["dependencies"]:
        req = Requirement(line)
        if req.name.lower() == name:
            return req.specifier
    return SpecifierSet()


def disagreements(declared: Declared) -> list[str]:
    """Every place that says something else than the sessions run."""
    found: list[str] = []
    sessions = declared.sessions
    pythons = {py for _, py, _ in sessions}
    series = {dj for _, _, dj in sessions}
    by_version = lambda v: tuple(map(int, v.split(".")))  # noqa: E731
    lowest_py, newest_dj = min(pythons, key=by_version), max(series, key=by_version)
    lowest_dj = min(series, key=by_version)
    pairs = {(py, dj) for _, py, dj in sessions}
    if {(py, dj) for db, py, dj in sessions if db == "SQLite"} != pairs:
        found.append("noxfile.py: a pair runs on a database server but not on SQLite")
    for db in ("PostgreSQL", "MariaDB"):
        on_server = {dj for d, _, dj in sessions if d == db}
        if not {lowest_dj, newest_dj} <= on_server:
            found.append(f"noxfile.py: {db} does not run both the LTS and the newest Django")
    for name, text in (
        ("pyproject.toml", declared.pyproject),
        ("simulator/pyproject.toml", declared.simulator_pyproject),
    ):
        if classifiers(text, "Programming Language :: Python :: ") != pythons:
            found.append(f"{name}: Python classifiers are not {sorted(pythons)}")
        if classifiers(text, "Framework :: Django :: ") != series:
            found.append(f"{name}: Django classifiers are not {sorted(series)}")
        if tomllib.loads(text)["project"]["requires-python"] != f">={lowest_py}":
            found.append(f"{name}: requires-python is not >={lowest_py}")
    django_bound = SpecifierSet(f">={lowest_dj},<{next_minor(newest_dj)}")
    if requirement(declared.pyproject, "django") != django_bound:
        found.append(f"pyproject.toml: the Django requirement is not {django_bound}")
    drf = requirement(declared.pyproject, "djangorestframework")
    untested = next_minor(declared.drf_tested)
    if f"<{untested}" not in {str(s) for s in drf} or not drf.contains(f"{declared.drf_tested}.0"):
        found.append(f"pyproject.toml: the DRF requirement does not end below {untested}")
    for name, text in (("README.md", declared.readme), ("docs/install.md", declared.install_doc)):
        in_table, columns, rows = table_triples(text)
        if in_table != sessions:
            found.append(f"{name}: the table differs: {sorted(in_table ^ sessions)}")
        if set(columns) != series or set(rows) != pythons:
            found.append(f"{name}: the table's columns or rows are not the sessions' versions")
        if f"({declared.drf_tested})" not in text:
            found.append(f"{name}: does not name DRF {declared.drf_tested}")
    return found


@functools.cache
def load_noxfile() -> ModuleType:
    """noxfile.py as a module (its tables: DJANGO, DRF_TESTED, BANNER), loaded once."""
    spec = importlib.util.spec_from_file_location("noxfile", ROOT / "noxfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def declared() -> Declared:
    return Declared(
        sessions=triples(nox_sessions()),
        pyproject=(ROOT / "pyproject.toml").read_text(),
        simulator_pyproject=(ROOT / "simulator" / "pyproject.toml").read_text(),
        readme=(ROOT / "README.md").read_text(),
        install_doc=(ROOT / "docs" / "install.md").read_text(),
        drf_tested=load_noxfile().DRF_TESTED,
    )


def test_the_declared_matrix_agrees_everywhere(declared):
    assert disagreements(declared) == []
    # The matrix issue 24 asks for: every pair on SQLite, the servers for newest and LTS.
    assert ("SQLite", "3.13", "6.1") in declared.sessions
    assert ("PostgreSQL", "3.11", "5.2") in declared.sessions
    assert len({(py, dj) for _, py, dj in declared.sessions}) == 7


def test_each_session_installs_one_django_series_within_the_bound():
    module = load_noxfile()
    for series, spec in module.DJANGO.items():
        assert Requirement(spec).specifier == SpecifierSet(f">={series},<{next_minor(series)}")


def _swap(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


MUTATIONS = {
    "a session dropped": lambda d: dataclasses.replace(
        d, sessions=d.sessions - {("SQLite", "3.12", "6.0")}
    ),
    "a server session dropped": lambda d: dataclasses.replace(
        d, sessions=d.sessions - {("MariaDB", "3.11", "5.2")}
    ),
    "a Python classifier missing": lambda d: dataclasses.replace(
        d,
        pyproject=_swap(d.pyproject, '"Programming Language :: Python :: 3.13",\n', ""),
    ),
    "a Django classifier missing in the simulator": lambda d: dataclasses.replace(
        d,
        simulator_pyproject=_swap(d.simulator_pyproject, '"Framework :: Django :: 6.0",\n', ""),
    ),
    "requires-python too low": lambda d: dataclasses.replace(
        d, pyproject=_swap(d.pyproject, 'requires-python = ">=3.11"', 'requires-python = ">=3.10"')
    ),
    "an untested Django allowed": lambda d: dataclasses.replace(
        d, pyproject=_swap(d.pyproject, '"django>=5.2,<6.2"', '"django>=5.2"')
    ),
    "an untested DRF allowed": lambda d: dataclasses.replace(
        d, pyproject=_swap(d.pyproject, ",<3.19", "")
    ),
    "a README cell changed": lambda d: dataclasses.replace(
        d, readme=_swap(d.readme, "| 3.12 | SQLite | SQLite |", "| 3.12 | SQLite | not supported |")
    ),
    "a docs row missing": lambda d: dataclasses.replace(
        d, install_doc=_swap(d.install_doc, "| 3.12 | SQLite | SQLite | SQLite |\n", "")
    ),
    "the README table gone": lambda d: dataclasses.replace(
        d, readme=_swap(d.readme, "<!-- /matrix -->", "")
    ),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_a_disagreement_is_found(declared, mutation):
    assert disagreements(MUTATIONS[mutation](declared))


def test_the_banner_names_python_django_and_database():
    module = load_noxfile()
    printed = subprocess.run(
        [sys.executable, "-c", module.BANNER, "SQLite"], capture_output=True, text=True, check=True
    ).stdout
    py = "{}.{}".format(*sys.version_info[:2])
    dj = "{}.{}".format(*django.VERSION[:2])
    assert printed.splitlines()[0] == f"== pytest on SQLite, Python {py}, Django {dj}"
