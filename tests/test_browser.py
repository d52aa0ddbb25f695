"""End to end in headless Chromium: the README's demo walkthrough, step by step.

Runs the example project as ``make demo`` does (``manage.py runserver`` and the poller
``wxpay_process_returns --loop``, against the session's simulator, which keeps returns
PROCESSING for a moment as the demo's does), then does what README.md, "The demo,
step by step", tells a newcomer to do, in the same order: log in, select the five draft
returns, "Submit to WeChat Pay", confirm, watch them succeed; then refund order
SHOP0100 with "Refund this order": the refund job's plan (unfreeze, claw back from its
two merchant receivers, the shop funding the personal one's share), confirmed, followed
until the order is refunded and the simulator's books show the customer's money back.

The browser is English, so labels are the English msgids of the Chinese ones the
README quotes. A screenshot of each step goes to ``test-output/browser/``, and those the
admin guide shows to ``docs/img/`` as well, at every run: its pictures are the admin as
it is now, never older (``test_docs`` checks that each picture the guide shows is taken
here). The shop's changelist is checked to fit 1400 px without scrolling sideways. After
the walkthrough the README's curl examples must still work, and the documentation site,
opened from disk, must link no directory, fit its tables in the column and draw the
state diagram. Skipped, with the reason, when Debian's chromium and chromedriver are not
installed (``make browser``).
"""

from __future__ import annotations

import datetime
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"
OUTPUT = ROOT / "test-output" / "browser"
DOCS_IMG = ROOT / "docs" / "img"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WIDTH = 1400
DRAFTS = [f"RDEMO{n:04d}" for n in range(1, 6)]

pytest.importorskip(
    "drf_spectacular_sidecar", reason="the example shop serves /api/docs/ with the sidecar"
)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromedriver are not installed"
    ),
    # the demo shop keeps its own SQLite database, whatever the pass
    pytest.mark.first_pass_only,
]


def admin_models() -> list[str]:
    """Every model the app registers in the admin, as the English index lists it."""
    from django.contrib import admin
    from django.utils import translation
    from django.utils.text import capfirst

    with translation.override("en"):
        return sorted(
            str(capfirst(model._meta.verbose_name_plural))
            for model in admin.site._registry
            if model._meta.app_label == "wxpay_profitsharing"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Shop:
    url: str
    manage: list[str]
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.manage, *args], env=self.env, cwd=EXAMPLE, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip


@pytest.fixture
def shop(simproc, tmp_path):
    """The example project as ``make demo`` runs it: migrated, seeded, site and poller."""
    simproc.reset()
    simproc.configure(processing_seconds=1, latency_ms=0, qps_limit=0)
    env = {
        **os.environ,
        "WXPAY_SIMULATOR_DIR": str(simproc.state_dir),
        "SHOP_SQLITE_PATH": str(tmp_path / "shop.sqlite3"),
        "SHOP_LANGUAGE": "en",
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DATABASE_URL", None)
    manage = [sys.executable, str(EXAMPLE / "manage.py")]
    for command in (["migrate", "--noinput", "-v", "0"], ["seed_demo"]):
        subprocess.run([*manage, *command], env=env, check=True, cwd=EXAMPLE, timeout=120)
    port = free_port()
    quiet = {"env": env, "cwd": EXAMPLE, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    server = subprocess.Popen([*manage, "runserver", f"127.0.0.1:{port}", "--noreload"], **quiet)
    poller = subprocess.Popen(
        [*manage, "wxpay_process_returns", "--loop", "--interval", "1"], **quiet
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    yield Shop(f"http://127.0.0.1:{port}", manage, env)
    for process in (server, poller):
        process.terminate()
        process.wait(10)
    simproc.configure(processing_seconds=0)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--lang=en-US",
        f"--window-size={WIDTH},900",
    ):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def shot(browser, name: str) -> None:
    """A screenshot in test-output/browser/, and in docs/img/ when the admin guide shows it."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(OUTPUT / name))
    if f"img/{name}" in (ROOT / "docs" / "admin.md").read_text("utf-8"):
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(OUTPUT / name, DOCS_IMG / name)


def sideways_overflow(browser) -> int:
    """How far the page, or the changelist's results table, scrolls sideways (px)."""
    return browser.execute_script(
        "const page = document.documentElement.scrollWidth - document.documentElement.clientWidth;"
        "const r = document.querySelector('#changelist .results');"
        "return Math.max(page, r ? r.scrollWidth - r.clientWidth : 0);"
    )


def assert_no_sideways_scroll(browser) -> None:
    overflow = sideways_overflow(browser)
    assert overflow <= 0, f"{browser.current_url} scrolls sideways by {overflow} px at {WIDTH} px"


def click_and_load(browser, element) -> None:
    """Click, and wait until the next page has replaced this one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = browser.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(browser, 20).until(expected_conditions.staleness_of(old))


def wait_for(browser, condition, timeout: float = 30.0, every: float = 1.0) -> None:
    """Reload until ``condition(page_source)`` holds, as a person pressing F5 would."""
    deadline = time.monotonic() + timeout
    while not condition(browser.page_source):
        assert time.monotonic() < deadline, f"gave up waiting on {browser.current_url}"
        time.sleep(every)
        browser.refresh()


def test_the_readme_walkthrough(shop, browser, simproc):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    # 2. Log in as admin / admin: every model of the app is on the index.
    browser.get(f"{shop.url}/admin/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("admin")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit]"))
    app = browser.find_element(By.CSS_SELECTOR, ".app-wxpay_profitsharing").text
    for model in admin_models():
        assert model in app, f"{model!r} is not on the admin index: {app}"
    shot(browser, "0-index.png")

    # 3. "WeChat Pay profit-sharing returns" > "profit-sharing returns": five drafts.
    click_and_load(browser, browser.find_element(By.LINK_TEXT, "Profit-sharing returns"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert sorted(r.find_element(By.CSS_SELECTOR, "th, td.field-out_return_no").text
                  for r in rows) == DRAFTS  # fmt: skip
    assert all("Draft" in r.text for r in rows)
    shot(browser, "1-drafts.png")
    time.sleep(2)  # the poller has had rounds: drafts are never sent by it
    assert not [c for c in simproc.calls() if c["method"] == "POST"]

    # 4. Select them all, "Submit to WeChat Pay", Go; the confirmation page; confirm.
    browser.find_element(By.ID, "action-toggle").click()
    Select(browser.find_element(By.NAME, "action")).select_by_visible_text("Submit to WeChat Pay")
    click_and_load(browser, browser.find_element(By.NAME, "index"))
    page = browser.find_element(By.ID, "content").text
    assert "5 returns for a total of" in page and all(no in page for no in DRAFTS)
    shot(browser, "2-confirmation.png")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "form input[type=submit]"))

    # 5. The simulator answers PROCESSING; the poller follows them to "Succeeded".
    # (The demo's poller may take some of them first, on a busy machine; the message then
    # counts those as skipped. Either way all five are sent once, checked below.)
    messages = browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    assert "submitted; WeChat Pay is processing" in messages, messages
    shot(browser, "3-processing.png")
    wait_for(browser, lambda page: page.count("Succeeded") >= 5)
    shot(browser, "4-succeeded.png")
    posted = {c["out_return_no"] for c in simproc.calls() if c["method"] == "POST"}
    assert posted == set(DRAFTS)
    assert {r["out_return_no"]: r["result"] for r in simproc.returns()} == dict.fromkeys(
        DRAFTS, "SUCCESS"
    )
    browser.get(f"{shop.url}/admin/orders/order/")
    assert_no_sideways_scroll(browser)
    shot(browser, "5-orders.png")

    # 6. Order SHOP0100, "Refund this order": three receivers, the personal one excluded;
    # "Plan the refund": the job's plan, in yuan, before anything is sent.
    click_and_load(browser, browser.find_element(By.LINK_TEXT, "SHOP0100"))
    refund_link = browser.find_element(By.CSS_SELECTOR, "#content .object-tools a.refund-link")
    assert refund_link.get_attribute("textContent").strip() == "Refund this order"
    click_and_load(browser, refund_link)
    receivers = browser.find_element(By.ID, "receivers").text
    excluded = browser.find_elements(By.CSS_SELECTOR, "#receivers tr.excluded")
    assert len(excluded) == 1 and "person (openid)" in excluded[0].text
    assert "¥30.00" in receivers and "PERSONAL_OPENID" not in receivers  # yuan and words
    assert "personal receivers cannot be returned from" in receivers
    click_and_load(browser, browser.find_element(By.ID, "plan-refund"))
    plan = browser.find_element(By.ID, "plan").text
    for line in (
        "Refund ¥600.00",
        "To unfreeze ¥540.00",
        "To claw back ¥50.00 (PSHOP0100 ¥50.00)",
        "From the shop's own balance ¥10.00: shared to personal receivers",
    ):
        assert line in plan, plan
    assert not simproc.refunds() and not [r for r in simproc.returns()
                                          if r["out_order_no"] == "PSHOP0100"]  # fmt: skip
    browser.execute_script(
        "arguments[0].scrollIntoView()", browser.find_element(By.ID, "job-state")
    )
    shot(browser, "6-refund.png")

    # "Confirm: refund 600.00 yuan": the job unfreezes, claws back from the two merchants,
    # refunds; the page follows it until the order is refunded.
    click_and_load(browser, browser.find_element(By.ID, "confirm-refund"))
    messages = browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    assert "the refund job is under way" in messages, messages
    try:
        wait_for(browser, lambda page: 'id="refunded"' in page, timeout=90, every=2.0)
    finally:
        attempts = browser.find_elements(By.ID, "refund-attempts")
        if attempts:
            browser.execute_script("arguments[0].scrollIntoView()", attempts[0])
        shot(browser, "7-refunded.png")
    progress = browser.find_element(By.ID, "clawback-returns").text
    assert progress.count("Succeeded") == 2, progress
    assert "Succeeded" in browser.find_element(By.ID, "refund-attempts").text
    clawed = sorted(
        (c["return_mchid"], c["amount"])
        for c in simproc.returns()
        if c["out_order_no"] == "PSHOP0100"
    )
    assert clawed == [("86693852", 3000), ("86693853", 2000)]
    # The simulator's books: the customer got the whole payment back.
    [refunded] = simproc.refunds()
    assert (refunded["out_refund_no"], refunded["status"]) == ("RFSHOP0100", "SUCCESS")
    assert refunded["amount"]["refund"] == refunded["amount"]["total"] == 60000
    browser.get(f"{shop.url}/admin/orders/order/?refunded_at__isnull=False")
    refunded_orders = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert [r.find_element(By.CSS_SELECTOR, "th").text for r in refunded_orders] == ["SHOP0100"]

    # The app's own screens of what happened: the sharing order's ledger, the clawbacks.
    browser.get(f"{shop.url}/admin/wxpay_profitsharing/profitsharingorder/")
    click_and_load(browser, browser.find_element(By.LINK_TEXT, "PSHOP0100"))
    lines = browser.find_element(By.CSS_SELECTOR, ".inline-group")
    assert "person (openid)" in lines.text and "86693853" in lines.text, lines.text
    browser.execute_script("arguments[0].scrollIntoView()", lines)
    shot(browser, "8-sharing-order.png")
    browser.get(f"{shop.url}/admin/wxpay_profitsharing/profitsharingclawback/")
    assert "PSHOP0100" in browser.find_element(By.ID, "result_list").text
    shot(browser, "9-clawbacks.png")
    # The day's bill against the returns (the simulator serves today's bill at once).
    today = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=8))).date()
    reconciled = shop.run("wxpay_reconcile", "--date", today.isoformat())
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    browser.get(f"{shop.url}/admin/wxpay_profitsharing/reconciliationrun/")
    (run,) = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert "1900000100" in run.text, run.text
    shot(browser, "10-reconciliation.png")

    # The README's curl examples, after the walkthrough, as written (another port).
    for command in readme_curls():
        method, url, auth, headers, data = command
        response = requests.request(
            method, url.replace("http://127.0.0.1:8000", shop.url), auth=auth,
            headers=headers, data=data, timeout=30,
        )  # fmt: skip
        assert response.status_code < 400, (url, data, response.status_code, response.text)
    # The README's refund by curl reaches the customer too (the poller follows it).
    deadline = time.monotonic() + 60
    while {r["out_refund_no"]: r["status"] for r in simproc.refunds()}.get(
        "RFCURL0001"
    ) != "SUCCESS":
        assert time.monotonic() < deadline, simproc.refunds()
        time.sleep(1)


def readme_curls() -> list[tuple[str, str, tuple[str, str], dict, bytes | None]]:
    """Every ``curl -u admin:admin`` of the README's demo sections, as request arguments."""
    readme = (ROOT / "README.md").read_text("utf-8")
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", readme, re.S):
        for command in block.replace("\\\n", " ").splitlines():
            words = shlex.split(command)
            if words[:3] != ["curl", "-u", "admin:admin"]:
                continue
            method, headers, data, url = "GET", {}, None, ""
            options = iter(words[3:])
            for word in options:
                if word == "-X":
                    method = next(options)
                elif word == "-H":
                    name, value = next(options).split(":", 1)
                    headers[name] = value.strip()
                elif word == "-d":
                    data, method = next(options).encode(), "POST" if method == "GET" else method
                else:
                    url = word
            commands.append((method, url, ("admin", "admin"), headers, data))
    assert len(commands) >= 4, commands
    return commands


@pytest.fixture(scope="module")
def docs_site(tmp_path_factory) -> Path:
    """The documentation, built as ``make docs`` builds it."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return site


def test_the_docs_site_opened_from_disk(docs_site, browser):
    """Pages open as files, tables fit their column, the diagram is drawn, no search hangs."""
    from selenium.webdriver.common.by import By

    pages = sorted(p for p in docs_site.glob("*.html") if p.name != "404.html")
    assert len(pages) >= 10
    for page in pages:
        browser.get(page.as_uri())
        assert browser.find_elements(By.CSS_SELECTOR, ".rst-content"), page.name
        # Asked of the loaded page: find_elements would wait the implicit 5 s for an
        # element that is rightly absent, on every page.
        searches = browser.execute_script(
            "return document.querySelectorAll('[role=search]').length"
        )
        assert searches == 0, page.name
        overflow = browser.execute_script(
            "const column = document.querySelector('.rst-content').getBoundingClientRect();"
            "const wide = [...document.querySelectorAll('.rst-content table')]"
            "  .map(t => t.getBoundingClientRect().right - column.right);"
            "return Math.max(0, document.documentElement.scrollWidth"
            "  - document.documentElement.clientWidth, ...wide);"
        )
        assert overflow <= 1, f"{page.name}: a table or the page is {overflow} px too wide"
    # The sidebar's links open pages, not directory listings.
    browser.get((docs_site / "index.html").as_uri())
    link = browser.find_element(By.LINK_TEXT, "State machine")
    click_and_load(browser, link)
    assert browser.current_url.endswith("/states.html"), browser.current_url
    diagram = browser.find_element(By.CSS_SELECTOR, "img[src='img/states.svg']")
    assert browser.execute_script("return arguments[0].naturalWidth", diagram) > 0
    OUTPUT.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(OUTPUT / "docs-states.png"))
