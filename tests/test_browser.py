"""End to end in headless Chromium: the example shop's admin submits clawbacks.

Runs the example project as its own process (``manage.py runserver``) against the
session's simulator, logs in, selects the seeded returns, runs "Submit to WeChat Pay"
through its confirmation page and reads the result messages. A screenshot of each
step goes to ``test-output/browser/``. Skipped, with the reason, when Debian's
chromium and chromedriver are not installed (``make test`` installs them).
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

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"
OUTPUT = ROOT / "test-output" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER), reason="chromium and chromedriver are not installed"
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def shop(simproc, tmp_path):
    """The example project on a free port, migrated and seeded, using the simulator."""
    simproc.reset()
    simproc.configure(processing_seconds=0, latency_ms=0, qps_limit=0)
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
    for command in (["migrate", "--noinput", "-v", "0"], ["seed_demo", "--orders", "3"]):
        subprocess.run([*manage, *command], env=env, check=True, cwd=EXAMPLE, timeout=120)
    port = free_port()
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        cwd=EXAMPLE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(10)


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
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def test_admin_submits_returns_through_the_confirmation_page(shop, browser, simproc):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    OUTPUT.mkdir(parents=True, exist_ok=True)
    browser.get(f"{shop}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("admin")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    browser.get(f"{shop}/admin/wxpay_profitsharing/profitsharingreturn/")
    browser.save_screenshot(str(OUTPUT / "1-changelist.png"))
    assert "RDEMO0001" in browser.page_source

    browser.find_element(By.ID, "action-toggle").click()
    select = Select(browser.find_element(By.NAME, "action"))
    submit_value = next(
        o.get_attribute("value")
        for o in select.options
        if "submit" in (o.get_attribute("value") or "")
    )
    select.select_by_value(submit_value)
    browser.find_element(By.NAME, "index").click()

    page = browser.page_source
    browser.save_screenshot(str(OUTPUT / "2-confirmation.png"))
    assert "RDEMO0003" in page and "3" in page
    browser.find_element(By.CSS_SELECTOR, "form input[type=submit]").click()

    messages = browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    browser.save_screenshot(str(OUTPUT / "3-result.png"))
    assert "3 returns succeeded." in messages
    posted = {c["out_return_no"] for c in simproc.calls() if c["method"] == "POST"}
    assert posted == {"RDEMO0001", "RDEMO0002", "RDEMO0003"}
    states = {r["out_return_no"]: r["result"] for r in simproc.returns()}
    assert states == dict.fromkeys(posted, "SUCCESS")
