"""The README, followed by a newcomer: the wheel in a fresh virtualenv and a new project.

Builds the wheel, installs it into a new virtualenv, creates a project with
``django-admin startproject``, applies the README's configuration snippets *as written*
(read from README.md by their ``<!-- readme-snippet: NAME -->`` markers, so a README that
drifts fails here), migrates, checks (warnings are errors: an unknown key is W002),
starts ``wxpay-simulator`` from the virtualenv, seeds the sharing order with the README's
own request body, and creates and submits a return with the README's code. Then the
schema snippet's ``/api/docs/`` must load its scripts from the project's static files.

Why a virtualenv that sees this one's site-packages: the dependencies (Django, DRF,
cryptography...) are the same distributions either way, and installing them again from
an index would make the test slow and need the network. The package under test is
the one thing installed into it, from the wheel, and the test asserts that it is the
wheel's copy that runs (not this checkout, which is kept off the path).

Slow (about 10 s, a third of it building the wheel); runs in the SQLite pass only.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import pytest
import requests

from .conftest import FIRST_PASS

ROOT = Path(__file__).resolve().parent.parent
SNIPPET = re.compile(r"<!-- readme-snippet: ([\w-]+) -->\n```[a-z]*\n(.*?)\n```", re.S)

pytest.importorskip(
    "drf_spectacular_sidecar", reason="the README's schema snippet needs drf-spectacular-sidecar"
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not FIRST_PASS,
        reason="the wheel is the same on every database: run in the first SQLite pass only",
    ),
]


def readme_snippets() -> dict[str, str]:
    return dict(SNIPPET.findall((ROOT / "README.md").read_text("utf-8")))


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would put this checkout on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    return {**env, **extra}


def run(*args: str | Path, cwd: Path, timeout: float = 120) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=clean_env(), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def shared_site_dirs() -> list[str]:
    """This interpreter's package directories (not the checkout, not the stdlib)."""
    stdlib = {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}
    dirs = []
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if path == ROOT or str(path) in stdlib or not path.is_dir():
            continue
        if "site-packages" in path.parts or "dist-packages" in path.parts:
            dirs.append(str(path))
    return list(dict.fromkeys(dirs))


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A new virtualenv holding the wheel, seeing this one's dependencies."""
    work = tmp_path_factory.mktemp("wheel")
    started = time.monotonic()
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", work / "dist", ROOT,
        cwd=work, timeout=300)  # fmt: skip
    (wheel,) = (work / "dist").glob("django_wxpay_profitsharing-*.whl")
    built = time.monotonic()
    env_dir = work / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", env_dir, cwd=work)
    python = env_dir / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=work)
    Path(site.strip(), "zz_dependencies.pth").write_text("\n".join(shared_site_dirs()) + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
        "--no-index", "--ignore-installed", wheel, cwd=work)  # fmt: skip
    ready = time.monotonic() - built
    print(f"wheel built in {built - started:.1f} s, virtualenv ready in {ready:.1f} s")
    return env_dir


@pytest.fixture
def simulator(venv, tmp_path):
    """``wxpay-simulator`` from the virtualenv, as the README starts it (on a free port)."""
    state_dir = tmp_path / "wxsim"
    proc = subprocess.Popen(
        [str(venv / "bin" / "wxpay-simulator"), "--state-dir", str(state_dir), "--port", "0",
         "--processing-seconds", "0", "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=clean_env(), cwd=tmp_path,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    line = lines.get(timeout=30)
    assert line.startswith("WXPAY_SIMULATOR_READY "), line
    yield state_dir, line.split()[1]
    proc.stdin.close()
    proc.wait(10)


def test_the_readme_configuration_in_a_new_project(venv, simulator, tmp_path):
    started = time.monotonic()
    state_dir, base_url = simulator
    snippets = readme_snippets()
    python = venv / "bin" / "python"
    run(python, "-m", "django", "startproject", "proj", tmp_path, cwd=tmp_path)
    settings, urls = tmp_path / "proj" / "settings.py", tmp_path / "proj" / "urls.py"
    simulator_settings = snippets["simulator-settings"].replace(
        '"/tmp/wxsim"', repr(str(state_dir))
    )
    assert simulator_settings != snippets["simulator-settings"], "the README's state dir moved"
    with settings.open("a") as f:
        for block in (snippets["settings"], simulator_settings, snippets["schema-settings"]):
            f.write("\n\n" + block + "\n")
        f.write('\nSTATIC_ROOT = BASE_DIR / "static"\n')
    with urls.open("a") as f:
        f.write("\n\n" + snippets["urls"] + "\n\n" + snippets["schema-urls"] + "\n")

    manage = (python, tmp_path / "manage.py")
    which = "import django_wxpay_profitsharing as p; print(p.__file__)"
    where = run(*manage, "shell", "-v", "0", "-c", which, cwd=tmp_path)
    assert str(venv) in where and str(ROOT) not in where, where
    run(*manage, "migrate", "--noinput", "-v", "0", cwd=tmp_path)
    run(*manage, "check", "--fail-level", "WARNING", cwd=tmp_path)

    # The sharing order, seeded with the README's own request body and route.
    seed = snippets["seed-order"]
    body = json.loads(re.search(r"-d '([^']+)'", seed).group(1))
    route = re.search(r"http://127\.0\.0\.1:8765(/\S+)", seed).group(1)
    requests.post(base_url + route, json=body, timeout=10).raise_for_status()

    out = run(*manage, "shell", "-v", "0", "-c", snippets["create-and-submit"], cwd=tmp_path)
    number, state = out.split()
    assert number.startswith("R") and state == "succeeded", out
    returned = requests.get(f"{base_url}/_simulator/returns", timeout=10).json()["returns"]
    assert [(r["out_return_no"], r["result"]) for r in returned] == [(number, "SUCCESS")]

    # /api/docs/ from the schema snippet: its scripts come from our static files.
    page = run(*manage, "shell", "-v", "0", "-c", (
        "from django.test import Client; r = Client(HTTP_HOST='localhost').get('/api/docs/'); "
        "print(r.status_code); print(r.content.decode())"), cwd=tmp_path)  # fmt: skip
    status, html = page.split("\n", 1)
    assert status == "200"
    scripts = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert scripts and all(s.startswith("/static/drf_spectacular_sidecar/") for s in scripts), (
        scripts
    )
    schema = run(*manage, "shell", "-v", "0", "-c", (
        "from django.test import Client; "
        "print(Client(HTTP_HOST='localhost').get('/api/schema/?format=json').status_code)"),
        cwd=tmp_path)  # fmt: skip
    assert schema.strip() == "200"
    print(f"project configured, migrated and used in {time.monotonic() - started:.1f} s")
