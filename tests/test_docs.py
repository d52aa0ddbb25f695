"""The documentation says what the code does: generated parts current, snippets shared.

``docs/generate.py --check`` fails when a generated page (settings, states, signals,
error codes, the simulator's ``--help``) no longer matches the code; the MkDocs build
is strict (a broken link or a missing picture fails) and loads nothing from a CDN.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from django_wxpay_profitsharing import conf
from wxpay_simulator.__main__ import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SNIPPET = re.compile(r"<!-- readme-snippet: ([\w-]+) -->\n(```[a-z]*\n.*?\n```)", re.S)


def snippets(path: Path) -> dict[str, str]:
    return dict(SNIPPET.findall(path.read_text("utf-8")))


def test_every_setting_has_a_description_and_a_row_in_the_reference():
    assert set(conf.DESCRIPTIONS) == set(conf.DEFAULTS)
    assert all(text.strip() for text in conf.DESCRIPTIONS.values())
    page = (DOCS / "settings.md").read_text("utf-8")
    for key in conf.DEFAULTS:
        assert f"| `{key}` |" in page, key


def test_the_generated_pages_are_up_to_date():
    result = subprocess.run(
        [sys.executable, str(DOCS / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def test_the_site_builds_strictly_and_loads_nothing_from_a_cdn(tmp_path):
    pytest.importorskip("mkdocs", reason="pip install mkdocs (the test extra has it)")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    pages = list(tmp_path.glob("*/index.html"))
    assert len(pages) >= 9
    for page in [tmp_path / "index.html", *pages]:
        html = page.read_text("utf-8")
        remote = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="((?:https?:)?//[^"]+)"', html)
        assert not remote, f"{page.relative_to(tmp_path)} loads {remote}"
    assert (tmp_path / "img" / "6-refund.png").exists()


def test_the_readme_snippets_are_the_ones_the_quickstart_and_pypi_show():
    readme = snippets(ROOT / "README.md")
    assert {"settings", "urls", "simulator-settings", "create-and-submit"} <= set(readme)
    for page in (DOCS / "quickstart.md", DOCS / "pypi.md"):
        for name, block in snippets(page).items():
            assert block == readme[name], f"{page.name}: snippet {name} differs from README.md"


def test_the_package_description_starts_with_pip_install():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    description = (ROOT / project["readme"]).read_text("utf-8")
    content = [line for line in description.splitlines() if line and not line.startswith("#")]
    assert content[:2] == ["```sh", 'pip install "django-wxpay-profitsharing[celery,openapi]"']
    assert "make " not in description
    readme = (ROOT / "README.md").read_text("utf-8")
    assert readme.index("make demo") < readme.index("make test") < readme.index("pip install")


def test_every_simulator_option_says_its_default():
    options = [a for a in build_parser()._actions if a.option_strings != ["-h", "--help"]]
    assert len(options) >= 12
    for action in options:
        assert action.help and ("default" in action.help or action.required), action.dest


def test_the_example_shops_api_docs_load_nothing_from_a_cdn(tmp_path):
    pytest.importorskip("drf_spectacular_sidecar", reason="pip install drf-spectacular-sidecar")
    probe = (
        "from django.test import Client; "
        "r = Client(HTTP_HOST='localhost').get('/api/docs/'); "
        "print(r.status_code); print(r.content.decode())"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "SHOP_SQLITE_PATH": str(tmp_path / "shop.sqlite3"),
        "WXPAY_SIMULATOR_DIR": str(tmp_path / "no-simulator"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT / "example_project",
    )
    assert result.returncode == 0, result.stderr
    status, html = result.stdout.split("\n", 1)
    assert status == "200"
    assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/static/drf_spectacular_sidecar/") for a in assets), assets
