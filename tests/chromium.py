"""Real headless Chromium for the browser tests (Debian's chromium + chromedriver, driven by Selenium).

Without them a browser test is skipped, or fails when AIDENTIFY_REQUIRE_CHROMIUM=1 (as .ci/run sets),
so CI never passes by skipping. Imported by the tests as ``chromium`` (tests/ is on sys.path).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
HEADLESS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
            "--disable-background-networking")


def require_chromium() -> None:
    """Skip (or fail under AIDENTIFY_REQUIRE_CHROMIUM=1) when Chromium, its driver or Selenium is missing."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    if missing:
        message = f"the browser test needs {', '.join(missing)} (apt-get install -y chromium chromium-driver)"
        if os.environ.get("AIDENTIFY_REQUIRE_CHROMIUM") == "1":
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def chromium(*arguments: str, logs: bool = False) -> Iterator[object]:
    """A headless Chromium WebDriver with ``arguments`` added (``--window-size=…``, fake camera…);
    ``logs`` records the console and every network event (``driver.get_log``). Quit at the end."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (*HEADLESS, *arguments):
        options.add_argument(argument)
    if logs:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, script: str, timeout: float = 30.0, state: str | None = None):
    """Poll a JavaScript expression until it is truthy and return its value; on timeout, fail
    naming it (and the value of the ``state`` expression, to see what the page was doing)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        time.sleep(0.1)
    shown = f"; page state: {str(driver.execute_script(f'return {state}'))[:2000]}" if state else ""
    raise AssertionError(f"timed out waiting for {script}{shown}")


def requested_urls(driver) -> list[str]:
    """Every URL the page asked the network stack for (Chrome's performance log of DevTools events)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls
