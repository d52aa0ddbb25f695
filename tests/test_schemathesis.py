"""schemathesis against the example shop's OpenAPI schema, on the live shop.

Why the example project, run as its own process: it is what an integrator copies,
and its schema is what another service codes against. Its settings (drf-spectacular,
django-filter, session + basic authentication) are not the test suite's, so the shop
runs as a real server (``manage.py runserver``) on its own database (a fresh SQLite
file, or a fresh PostgreSQL database when the suite runs on PostgreSQL), talking to
the simulator, with a superuser so every operation is reachable.

For every operation in ``/api/schema/``, generated valid and invalid requests must
never produce a 500, and every response must conform to the schema: documented
status code, content type and body shape.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import ON_MYSQL, ON_POSTGRES, RECEIVER, SUB_MCHID, TZ_OFF, at_scale

pytestmark = [
    pytest.mark.skipif(
        ON_MYSQL or TZ_OFF,
        reason="the shop under test keeps SQLite or PostgreSQL: their own passes run it",
    ),
    # The shop is a runserver process with a database of its own, on PostgreSQL in the
    # PostgreSQL pass: it reaches the database without asking for a fixture.
    pytest.mark.every_pass,
]

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "example_project"
USER, PASSWORD = "schemathesis", "schemathesis-pw-1"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: Per operation and mode; the PostgreSQL pass repeats it smaller (``conftest.at_scale``).
MAX_EXAMPLES = {GenerationMode.POSITIVE: at_scale(25, 10), GenerationMode.NEGATIVE: at_scale(15, 6)}
AUTH = {"authorization", "cookie", "x-csrftoken", "sessionid", "csrftoken"}
OUTPUT = ROOT / "test-output" / "schemathesis.txt"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ShopDatabase:
    """A database of the shop's own: a SQLite file, or a new PostgreSQL database."""

    def __init__(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
        self.pg = None
        if ON_POSTGRES:
            import psycopg

            parts = urlsplit(os.environ["DATABASE_URL"])
            self.name = f"{parts.path.lstrip('/') or 'postgres'}_shop_{os.getpid()}"
            self.pg = psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True)
            self.pg.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
            self.pg.execute(f'CREATE DATABASE "{self.name}"')
            # Connections kept: runserver would open one per request (~10 ms on a
            # loaded machine) for each of the run's hundreds of requests.
            self.url = parts._replace(path=f"/{self.name}", query="conn_max_age=60").geturl()

    def drop(self) -> None:
        if self.pg is not None:
            self.pg.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.pg.close()


@pytest.fixture(scope="module")
def shop(simproc, tmp_path_factory):
    """The example shop served by ``runserver`` on a free loopback port; yields its URL."""
    tmp = tmp_path_factory.mktemp("shop")
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text("", encoding="utf-8")
    database = ShopDatabase(tmp)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "DATABASE_URL": database.url,
        "WXPAY_SIMULATOR_DIR": str(simproc.state_dir),
        "DJANGO_DEBUG": "0",
        "SHOP_LANGUAGE": "en",
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
    }
    manage = [sys.executable, str(SHOP / "manage.py")]

    def run(*args):
        subprocess.run([*manage, *args], env=env, check=True, capture_output=True, timeout=120)

    run("migrate", "--noinput", "-v", "0")
    run("createsuperuser", "--noinput", "--username", USER, "--email", "s@example.com")
    port = free_port()
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if requests.get(f"{base}/api/schema/", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if server.poll() is not None:
                raise RuntimeError(f"the shop did not start: {server.stderr.read()}")
            time.sleep(0.1)
        else:
            raise RuntimeError("the shop did not answer in time")
        yield base
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        database.drop()


@pytest.fixture(scope="module")
def orders(simproc):
    """Sharing orders at the simulator, so that generated valid returns can succeed."""
    simproc.clear_faults()
    simproc.configure(processing_seconds=0, latency_ms=0, qps_limit=0)
    for number in ("P1", "P2", "0"):
        simproc.seed_order(number, sub_mchid=SUB_MCHID, amount=10**6)
        simproc.seed_order(number, amount=10**6)
    return RECEIVER


def operations(base: str):
    schema = schemathesis.openapi.from_url(f"{base}/api/schema/")
    found = [result.ok() for result in schema.get_all_operations()]
    assert found, "the schema lists no operation"
    return [op for op in found if "/api/wxpay/" in op.path]  # not the schema view itself


def logged_in(base: str) -> requests.Session:
    """A session-cookie login (one password hash), then the CSRF token on every call.

    Basic auth would hash the password on every request (PBKDF2, ~0.5 s each).
    """
    session = requests.Session()
    login = f"{base}/api-auth/login/"
    session.get(login, timeout=10)
    token = session.cookies["csrftoken"]
    answer = session.post(
        login,
        data={"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": login},
        timeout=30,
        allow_redirects=False,
    )
    assert answer.status_code == 302 and "sessionid" in session.cookies, answer.status_code
    session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
    return session


class Findings:
    """Every response of the run, and the first failure of each check per operation."""

    def __init__(self) -> None:
        self.tried: Counter = Counter()
        self.statuses: Counter = Counter()
        self.failures: dict[str, dict[str, str]] = {check.__name__: {} for check in CHECKS}


def exercise(operation, mode, base, session, findings: Findings) -> None:
    """Generated requests for one operation; each answer run through every check.

    Failures are collected rather than raised, so that one run (within its time
    budget) answers all the questions the tests below ask.
    """

    @settings(
        max_examples=MAX_EXAMPLES[mode],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        # The schema offers cookie or basic auth, so schemathesis makes up credentials;
        # drop them: the logged-in session's cookie is the authentication under test.
        if case.headers:
            case.headers = {k: v for k, v in case.headers.items() if k.lower() not in AUTH}
        if case.cookies:
            case.cookies = {k: v for k, v in case.cookies.items() if k.lower() not in AUTH}
        response = case.call(base_url=base, session=session)
        findings.tried[f"{mode.value} {operation.label}"] += 1
        findings.statuses[response.status_code] += 1
        for check in CHECKS:
            try:
                case.validate_response(response, checks=[check])
            except (AssertionError, BaseExceptionGroup) as exc:  # a failed check, kept
                seen = findings.failures[check.__name__]
                seen.setdefault(
                    f"{operation.label} -> {response.status_code}",
                    f"{case.as_curl_command()}\n{str(exc)[:600]}",
                )

    run()


@pytest.fixture(scope="module")
def findings(shop, orders) -> Findings:
    """One schemathesis run over every operation, valid and invalid requests."""
    session = logged_in(shop)
    found = Findings()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for operation in operations(shop):
            exercise(operation, mode, shop, session, found)
    lines = [f"{sum(found.tried.values())} requests, statuses {dict(found.statuses)}"]
    lines += [f"  {label}: {n}" for label, n in sorted(found.tried.items())]
    for check, failures in found.failures.items():
        lines.append(f"{check}: {len(failures)} failing operation/status pairs")
        lines += [f"  {where}" for where in sorted(failures)]
    OUTPUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return found


def report(failures: dict[str, str]) -> str:
    return "\n\n".join(f"{where}:\n{example}" for where, example in sorted(failures.items()))


@pytest.mark.slow
def test_api_is_really_exercised(findings):
    """Authenticated requests reach every operation and some succeed (no false green)."""
    # returns: list, create, bulk-submit; retrieve, submit, refresh, retry, claw-back-again
    # by pk and by out_return_no; clawbacks: list, create, retrieve, submit, cancel; orders:
    # list, sync; refunds: list, create, retrieve, submit, refresh, proceed, retry,
    # to-merchant-bank, cancel, try-again
    assert len(findings.tried) == 2 * 30, sorted(findings.tried)
    assert findings.statuses[401] + findings.statuses[403] == 0, findings.statuses
    assert sum(n for code, n in findings.statuses.items() if code < 300) >= 10


@pytest.mark.slow
def test_api_never_answers_500(findings):
    assert not findings.failures["not_a_server_error"], report(
        findings.failures["not_a_server_error"]
    )


@pytest.mark.slow
def test_api_responses_match_the_schema(findings):
    """Content type and body shape of every answer, errors included."""
    for name in ("content_type_conformance", "response_schema_conformance"):
        assert not findings.failures[name], report(findings.failures[name])


@pytest.mark.slow
def test_api_status_codes_are_documented(findings):
    """Every status the API answers (400, 404, 409, 202...) is in the schema."""
    failures = findings.failures["status_code_conformance"]
    assert not failures, f"undocumented statuses:\n{report(failures)}"
