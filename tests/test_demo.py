"""``make demo`` as a newcomer runs it: a busy port, and a second run that starts afresh.

- A port in use (someone else's server answering on it): the demo exits non-zero before
  starting anything, with a message naming the port, and prints no URL, so no one logs in
  to the other server. Through ``make``, whose exit status must follow.
- Every ``make demo`` starts from the seeded data (the README's walkthrough can be
  replayed); ``--keep`` continues the previous run; ``make clean`` removes the state.

Slow (each demo run migrates a new SQLite database); first SQLite pass only.
"""

from __future__ import annotations

import http.server
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from .test_browser import free_port
from .test_example_shop import pytestmark  # noqa: F401  (slow, first SQLite pass, sidecar)

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "example_project" / "demo.py"
DRAFTS = [f"RDEMO{n:04d}" for n in range(1, 6)]


class SomeoneElse(http.server.BaseHTTPRequestHandler):
    """Another program's server: it answers every path, the admin's login included."""

    def do_GET(self) -> None:
        body = b"someone else's server"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def busy_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SomeoneElse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def demo_env() -> dict[str, str]:
    dropped = ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    return {**env, "SHOP_LANGUAGE": "en"}


@pytest.mark.parametrize("which", ["shop", "simulator"])
def test_make_demo_on_a_busy_port_fails_naming_it(busy_port, tmp_path, which):
    shop, simulator = (busy_port, free_port()) if which == "shop" else (free_port(), busy_port)
    state = tmp_path / "demo"
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "-o", ".venv/.installed", "demo",
         f"PY={sys.executable}", f"DEMO_PORT={shop}", f"SIM_PORT={simulator}",
         f"DEMO_STATE={state}"],
        cwd=ROOT, env=demo_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    said = result.stdout + result.stderr
    assert result.returncode != 0, said
    assert f"Port {busy_port} on 127.0.0.1" in said and "already in use" in said, said
    assert "http://" not in said and "Admin:" not in said, said
    assert not state.exists(), "nothing was started or reset"


class DemoRun:
    """``demo.py`` in the background; its console read line by line."""

    def __init__(self, state: Path, *args: str) -> None:
        self.port, self.simulator_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, str(DEMO), "--port", str(self.port),
             "--simulator-port", str(self.simulator_port), "--state-dir", str(state), *args],
            cwd=ROOT, env=demo_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.said: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                assert self.proc.poll() is None, "".join(self.said)
                continue
            self.said.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no {pattern!r} in: {''.join(self.said)}")

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(
            method, self.url + path, auth=("admin", "admin"), timeout=30, **kwargs
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(30)


def returns_of(run: DemoRun) -> dict[str, str]:
    response = run.api("GET", "/api/wxpay/returns/?limit=100")
    assert response.status_code == 200, response.text
    return {r["out_return_no"]: r["state"] for r in response.json()["results"]}


def test_every_demo_starts_from_the_seeded_data_unless_kept(tmp_path):
    state = tmp_path / "demo"
    first = DemoRun(state)
    try:
        assert "A fresh demo" in first.wait_for("fresh demo|Continuing")
        admin = first.wait_for(r"Admin:")
        assert f"{first.url}/admin/" in admin
        assert returns_of(first) == dict.fromkeys(DRAFTS, "draft")
        # The walkthrough's first step, by API: the drafts are submitted.
        ids = [r["id"] for r in first.api("GET", "/api/wxpay/returns/").json()["results"]]
        submitted = first.api("POST", "/api/wxpay/returns/bulk-submit/", json={"ids": ids})
        assert submitted.status_code in (200, 202), submitted.text
        assert set(returns_of(first).values()) != {"draft"}
    finally:
        assert first.stop() == 0

    again = DemoRun(state)
    try:
        again.wait_for(r"Admin:")
        assert returns_of(again) == dict.fromkeys(DRAFTS, "draft"), "not reset"
        again.api("POST", "/api/wxpay/returns/bulk-submit/", json={"ids": ids[:1]})
    finally:
        assert again.stop() == 0

    kept = DemoRun(state, "--keep")
    try:
        assert "Continuing the previous demo" in kept.wait_for("fresh demo|Continuing")
        kept.wait_for(r"Admin:")
        assert list(returns_of(kept).values()).count("draft") == 4
    finally:
        assert kept.stop() == 0


def test_a_state_dir_no_demo_made_is_never_emptied(tmp_path):
    """``--state-dir`` mistyped as someone's directory: refused, nothing deleted."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    result = subprocess.run(
        [sys.executable, str(DEMO), "--port", str(free_port()), "--simulator-port",
         str(free_port()), "--state-dir", str(mine)],
        cwd=ROOT, env=demo_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1 and "no demo made it" in result.stderr, result.stderr
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_make_clean_removes_what_the_demo_keeps():
    planned = subprocess.run(
        ["make", "-n", "clean"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    removed = planned.split()
    assert ".demo" in removed
    sys.path.insert(0, str(ROOT / "example_project"))
    try:
        import demo
    finally:
        sys.path.remove(str(ROOT / "example_project"))
    assert demo.STATE_DIR == ROOT / ".demo"
    settings = (ROOT / "example_project" / "shop" / "settings.py").read_text("utf-8")
    assert 'DEMO_DIR = BASE_DIR.parent / ".demo"' in settings
    assert 'DEMO_DIR / "shop.sqlite3"' in settings and 'DEMO_DIR / "simulator"' in settings
