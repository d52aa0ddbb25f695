"""End to end in headless Chromium: the README's demo walkthrough, step by step.

Runs the example project as ``make demo`` does (``manage.py runserver`` and the poller
``wxpay_process_returns --loop``, against the session's simulator, which keeps returns
PROCESSING for a moment as the demo's does), then does what README.md, "The demo,
step by step", tells a newcomer to do, in the same order: log in, select the five draft
returns, "Submit to WeChat Pay", confirm, watch them succeed and the shop's orders
become refundable; then refund order SHOP0100 with "Refund this order", which claws
back from its two merchant receivers and leaves the personal one out.

The browser is English, so labels are the English msgids of the Chinese ones the
README quotes. A screenshot of each step goes to ``test-output/browser/``; with
``DOCS_SCREENSHOTS=1`` also to ``docs/img/`` (the admin guide's pictures). The shop's
changelist is checked to fit 1400 px without scrolling sideways. Skipped, with the
reason, when Debian's chromium and chromedriver are not installed (``make browser``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import FIRST_PASS

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
    pytest.mark.skipif(
        not FIRST_PASS,
        reason="the demo shop keeps its own SQLite database: run in the first SQLite pass only",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    yield f"http://127.0.0.1:{port}"
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
    OUTPUT.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(OUTPUT / name))
    used_by_docs = f"img/{name}" in (ROOT / "docs" / "admin.md").read_text("utf-8")
    if os.environ.get("DOCS_SCREENSHOTS") == "1" and used_by_docs:
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

    # 2. Log in as admin / admin.
    browser.get(f"{shop}/admin/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("admin")
    click_and_load(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit]"))
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
    messages = browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    assert "5 returns were submitted; WeChat Pay is processing them." in messages, messages
    shot(browser, "3-processing.png")
    wait_for(browser, lambda page: page.count("Succeeded") >= 5)
    shot(browser, "4-succeeded.png")
    posted = {c["out_return_no"] for c in simproc.calls() if c["method"] == "POST"}
    assert posted == set(DRAFTS)
    assert {r["out_return_no"]: r["result"] for r in simproc.returns()} == dict.fromkeys(
        DRAFTS, "SUCCESS"
    )
    browser.get(f"{shop}/admin/orders/order/")
    assert_no_sideways_scroll(browser)
    wait_for(browser, lambda page: page.count('alt="True"') == 5)  # "refund may proceed"
    shot(browser, "5-orders.png")

    # 6. Order SHOP0100, "Refund this order": three receivers, the personal one excluded.
    click_and_load(browser, browser.find_element(By.LINK_TEXT, "SHOP0100"))
    refund_link = browser.find_element(By.CSS_SELECTOR, "#content .object-tools a.refund-link")
    assert refund_link.get_attribute("textContent").strip() == "Refund this order"
    click_and_load(browser, refund_link)
    receivers = browser.find_element(By.ID, "receivers").text
    excluded = browser.find_elements(By.CSS_SELECTOR, "#receivers tr.excluded")
    assert len(excluded) == 1 and "PERSONAL_OPENID" in excluded[0].text
    assert "personal receivers cannot be returned from" in receivers
    shot(browser, "6-refund.png")

    # "Claw back, then refund": one clawback, two returns, the page follows them.
    click_and_load(browser, browser.find_element(By.NAME, "refund"))
    state = browser.find_element(By.ID, "clawback-returns")
    assert len(state.find_elements(By.CSS_SELECTOR, "tbody tr")) == 2
    try:
        wait_for(browser, lambda page: "the refund may proceed" in page, every=2.0)
    finally:
        shot(browser, "7-clawback.png")
    progress = browser.find_element(By.ID, "clawback-returns").text
    assert progress.count("Succeeded") == 2 and "Completed" in browser.page_source
    shot(browser, "7-clawback.png")
    clawed = sorted(
        (c["return_mchid"], c["amount"])
        for c in simproc.returns()
        if c["out_order_no"] == "PSHOP0100"
    )
    assert clawed == [("86693852", 3000), ("86693853", 2000)]
