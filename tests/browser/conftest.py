"""A real headless Chromium (Debian's package) driven by Playwright, against a live server.

Playwright's own browser download cannot reach the internet here, so it launches the system
Chromium. Where none is installed the tests skip, saying so, unless REQUIRE_BROWSER is set (CI
installs Chromium and sets it, so there a missing browser fails).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Route, sync_playwright
from playwright.sync_api import Page as BrowserPage

from tests.conftest import live_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium's own background traffic (updates, sync, field trials) is off: the page's requests
# are the only ones, and they must all go to the service.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("REQUIRE_BROWSER is set but no chromium is installed (apt-get install chromium)")
        pytest.skip("no Chromium on this machine: install Debian's chromium package to run the browser tests")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with live_server() as url:
        yield url


class Page:
    """A browser page that records every request, and fails any to a host other than the service's."""

    def __init__(self, browser: Browser, base: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page: BrowserPage = self.context.new_page()
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.route("**/*", self._route)

    def _route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith("data:") or urlsplit(url).netloc == urlsplit(self.base).netloc:
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    opened = Page(browser, server)
    yield opened
    opened.close()
    assert opened.foreign == [], f"the page asked other hosts: {opened.foreign}"
    assert opened.errors == [], f"the page's script failed: {opened.errors}"
