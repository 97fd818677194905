"""A real headless Chromium (Selenium, Debian's ``chromium`` and ``chromium-driver``) driving
TagDesk on pytest-django's ``live_server``, over freshly seeded demo data.

- Every test module here is marked ``browser``; scripts/test.sh runs them in their own serial step
  (the live server and the demo data need a transactional database, one at a time).
- Without the browser binaries the tests skip with the reason; CI (.ci/run) installs them.
- A failing test leaves a screenshot and the page source in var/browser-screens/.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

CHROMIUM = os.environ.get("TAGDESK_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TAGDESK_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENS = Path(django_settings.BASE_DIR) / "var" / "browser-screens"
PASSWORD = "TagDesk-demo-2026"
WAIT = 15  # seconds for any one thing to appear
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
    "--lang=zh-CN",
]


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


class Browser:
    """The driver plus the few moves every test makes, in the user's words."""

    def __init__(self, driver, base_url: str, downloads: Path) -> None:
        self.driver = driver
        self.base_url = base_url
        self.downloads = downloads

    # navigation
    def go(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def login(self, username: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.delete_all_cookies()
        self.go("/admin/login/?next=/admin/")
        self.find("#id_username").send_keys(username)
        self.find("#id_password").send_keys(PASSWORD)
        self.driver.find_element(By.CSS_SELECTOR, "#login-form input[type=submit]").click()
        self.wait_for(lambda: "/admin/login/" not in self.driver.current_url, "logged in")

    def logout(self) -> None:
        self.find("#logout-form button").click()
        self.wait_for(lambda: "logout" in self.driver.current_url or self.text(), "logged out")

    # reading
    def find(self, css: str):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, WAIT).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, css))
        )

    def all(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str = "body") -> str:
        return self.find(css).text

    def messages(self) -> str:
        found = self.all("ul.messagelist")
        return found[0].text if found else ""

    def wait_for(self, condition, what: str, timeout: float = WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = condition()
            except Exception:  # noqa: BLE001 - the page is still changing
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what} on {self.driver.current_url}")

    # acting
    def click(self, css: str) -> None:
        self.find(css).click()

    def submit(self, css: str) -> None:
        """Click a button that loads a new page and wait until the old page is gone, so that a
        condition checked next reads the new page, not the one it replaced (e.g. an import
        status that already says "done")."""
        old = self.find("html")
        self.find(css).click()
        self.wait_for(lambda: _is_stale(old), "the next page")

    def select(self, css: str, *, values=(), texts=()) -> None:
        from selenium.webdriver.support.ui import Select

        select = Select(self.find(css))
        for value in values:
            select.select_by_value(str(value))
        for text in texts:
            select.select_by_visible_text(text)

    def run_action(self, action: str, ids: list[int]) -> None:
        """Tick the rows of ``ids`` in a changelist and run an admin action on them."""
        for box in self.all("#result_list input.action-select"):
            if int(box.get_attribute("value")) in ids:
                box.click()
        self.select("select[name=action]", values=[action])
        self.click("button[name=index]")
        self.wait_for(lambda: not self.all("#result_list"), "the action's page")

    def downloaded(self, pattern: str) -> Path:
        regex = re.compile(pattern)

        def done():
            files = [
                p
                for p in self.downloads.iterdir()
                if regex.search(p.name) and not p.name.endswith(".crdownload")
            ]
            return files[0] if files else None

        return self.wait_for(done, f"a download matching {pattern}")


@pytest.fixture(scope="session")
def _browser_installed():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.skip(
            f"no browser here ({', '.join(missing)} missing): install the Debian packages "
            "chromium chromium-driver fonts-noto-cjk (.ci/run does) to run the browser tests"
        )


@pytest.fixture(scope="session")
def _chromium(_browser_installed, tmp_path_factory):
    os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager: no telemetry
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "intl.accept_languages": "zh-CN,zh",
        },
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    yield driver, downloads
    driver.quit()


@pytest.fixture
def demo(transactional_db, settings):
    """The demo data set, small, committed (the live server reads it from its own thread)."""
    from demo.seed import seed_demo

    settings.LANGUAGE_CODE = "zh-hans"
    return seed_demo(customers=16, events_per_customer=1)


@pytest.fixture
def browser(_browser_installed, demo, _chromium, live_server, request):
    # Order matters: the test database (``demo``) is set up before the live server, so the
    # server and its connections go first at the end of the session.
    driver, downloads = _chromium
    for old in downloads.iterdir():
        old.unlink()
    page = Browser(driver, live_server.url, downloads)
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        SCREENS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-120:]
        driver.save_screenshot(str(SCREENS / f"{name}.png"))
        (SCREENS / f"{name}.html").write_text(driver.page_source, encoding="utf-8")
    driver.delete_all_cookies()


def _is_stale(element) -> bool:
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    return False
