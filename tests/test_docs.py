"""The documentation says what the code does: generated parts current, snippets shared.

``docs/generate.py --check`` fails when a generated page (settings, states, signals,
error codes, the simulator's ``--help``, the state diagram) no longer matches the code;
the MkDocs build is strict (a broken link or a missing picture fails), and the site it
builds works opened from disk: no directory links, nothing from a CDN, no search box
that cannot work there, the state diagram an SVG drawn from the decision table.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from django_wxpay_profitsharing import conf
from django_wxpay_profitsharing.states import ReturnState
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


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs", reason="pip install mkdocs (the test extra has it)")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return out


def site_pages(site: Path) -> list[Path]:
    """The pages a reader opens (404.html is a web server's, with absolute links)."""
    return sorted(p for p in site.rglob("*.html") if p.name != "404.html")


REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.I)
#: What a page loads by itself (never an <a>, which only goes somewhere when clicked).
LOADED = re.compile(
    r"<(?:script|link|img|iframe|source|embed|object|audio|video)\b[^>]*?"
    r"\s(?:src|href|data)=\"([^\"]+)\"",
    re.I,
)


def test_the_site_opens_from_disk_every_link_a_file(site):
    """No directory URLs: every local link and resource names a file that is there."""
    pages = site_pages(site)
    assert len(pages) >= 10 and not list(site.glob("*/index.html"))
    for page in pages:
        html = page.read_text("utf-8")
        for target in re.findall(r'\s(?:href|src)="([^"]+)"', html):
            if REMOTE.match(target) or target.startswith("#"):
                continue
            path = target.split("#", 1)[0].split("?", 1)[0]
            resolved = (page.parent / path).resolve()
            assert not path.endswith("/") and resolved.is_file(), (
                f"{page.relative_to(site)} links {target!r}, which is no file"
            )


def test_the_site_loads_nothing_from_a_cdn(site):
    for page in site_pages(site):
        html = page.read_text("utf-8")
        remote = [u for u in LOADED.findall(html) if REMOTE.match(u)]
        assert not remote, f"{page.relative_to(site)} loads {remote}"
    for sheet in site.rglob("*.css"):
        css = sheet.read_text("utf-8", "replace")
        urls = re.findall(r"url\(\s*['\"]?([^'\")]+)", css) + re.findall(
            r"@import\s+['\"]([^'\"]+)", css
        )
        remote = [u for u in urls if REMOTE.match(u) and not u.startswith("data:")]
        assert not remote, f"{sheet.relative_to(site)} loads {remote}"


def test_the_site_has_no_search_that_cannot_work_from_disk(site):
    """A search index is fetched by script, which a page opened from disk may not do."""
    for page in site_pages(site):
        html = page.read_text("utf-8")
        assert 'role="search"' not in html and "search.html" not in html, page.name
    assert "no search box" in (DOCS / "index.md").read_text("utf-8")


def test_the_state_diagram_is_drawn_from_the_table(site):
    html = (site / "states.html").read_text("utf-8")
    assert '<img alt="The states of a return' in html and 'src="img/states.svg"' in html
    assert "mermaid" not in html
    svg = (site / "img" / "states.svg").read_text("utf-8")
    assert svg.lstrip().startswith("<!--") and "<svg" in svg and "<script" not in svg
    for state in ReturnState:
        assert f">{state.value}</text>" in svg, state
    for outcome in ("balance_short", "invalid_local"):  # read from decisions.TABLE
        assert outcome in svg


def test_the_admin_guide_shows_only_pictures_the_browser_test_takes():
    """Each picture is retaken at every browser test run: none can show an older admin."""
    shown = set(re.findall(r"\]\(img/([\w.-]+\.png)\)", (DOCS / "admin.md").read_text("utf-8")))
    taken = set(
        re.findall(
            r'shot\(browser, "([\w.-]+\.png)"\)',
            (ROOT / "tests" / "test_browser.py").read_text("utf-8"),
        )
    )
    assert shown and shown <= taken, f"not taken by tests/test_browser.py: {shown - taken}"
    assert "0-index.png" in shown  # every model of the app, as the admin's index lists them
    stale = {p.name for p in (DOCS / "img").glob("*.png")} - shown
    assert not stale, f"pictures no page shows: {stale}"


def test_the_readme_snippets_are_the_ones_the_quickstart_and_pypi_show():
    readme = snippets(ROOT / "README.md")
    assert {"settings", "urls", "simulator-settings", "create-and-submit", "install-wheels"} <= set(
        readme
    )
    for page in (DOCS / "quickstart.md", DOCS / "pypi.md", DOCS / "install.md"):
        for name, block in snippets(page).items():
            assert block == readme[name], f"{page.name}: snippet {name} differs from README.md"


@pytest.mark.parametrize("page", ["README.md", "docs/pypi.md", "docs/quickstart.md"])
def test_the_simulator_settings_come_before_migrate(page):
    """Followed in order, a page reaches ``migrate`` with settings that pass ``check``.

    The example's key paths name files a newcomer does not have: the simulator's
    settings, which replace them, must come first (they came after ``migrate``, which
    then failed on the example paths).
    """
    text = (ROOT / page).read_text("utf-8")
    configure = text[text.index("Configure") :]
    assert configure.index("readme-snippet: simulator-settings") < configure.index(
        "manage.py migrate"
    )


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
