"""What the browser tests share: Debian's Chromium (never downloaded), its flags, and a dashboard tab.

Importing this module skips the importing test module when /usr/bin/chromium is missing, except in CI (env CI
set), where that is a failure.
"""

import os
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing in CI: apt-get install -y chromium", pytrace=False)
    pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium); browser tests skipped outside CI",
                allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


class DashboardTab:
    """One browser tab on the dashboard, loaded, with its console errors collected."""

    def __init__(self, browser, url, width: int = 1500, height: int = 1250, timeout: float = 90.0):
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.errors = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url, timeout=timeout * 1000)
        self.page.wait_for_selector(".rouser-status pre", timeout=timeout * 1000)
        self.page.wait_for_function("() => window.Bokeh && window.Bokeh.documents.length > 0", timeout=60_000)

    def status(self) -> str:
        return self.page.locator(".rouser-status pre").inner_text()

    def wait_status(self, *prefixes, timeout=90.0) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.status()
            if text.startswith(prefixes):
                return text
            time.sleep(0.1)
        raise AssertionError(f"status never started with {prefixes}: {text!r}")

    def set_value(self, name: str, value: str) -> None:
        box = self.page.locator(f".rouser-input-{name} input")
        box.fill(value)
        box.press("Enter")

    def close(self):
        self.page.close()
