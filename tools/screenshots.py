"""Screenshots of the docs flow and the demo page, for the README.

    .venv/bin/python tools/screenshots.py      # or: make screenshots

Serves the app on a loopback port, drives Debian's Chromium with Playwright through Try it out
and the demo page, and writes docs/figures/screenshot-docs.png and screenshot-demo.png.
"""

from __future__ import annotations

import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.main import create_app  # noqa: E402 (after the path, so it runs from anywhere)

FIGURES = ROOT / "docs" / "figures"
EXAMPLE = ROOT / "app" / "static" / "demo" / "example.png"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def main() -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("error: no chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    FIGURES.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{base}/docs")
            operation = page.locator("#operations-denoise-denoise_denoise_post")
            operation.locator(".opblock-summary").click()
            operation.locator("input[type=file]").set_input_files(str(EXAMPLE))
            operation.get_by_role("button", name="Execute").click()
            image = operation.locator(".live-responses-table img").first
            expect(image).to_be_visible(timeout=60_000)
            image.scroll_into_view_if_needed()
            page.screenshot(path=str(FIGURES / "screenshot-docs.png"))
            page.goto(f"{base}/demo")
            page.locator("#file").set_input_files(str(EXAMPLE))
            page.wait_for_function("() => document.getElementById('denoised').naturalWidth === 28", timeout=60_000)
            page.screenshot(path=str(FIGURES / "screenshot-demo.png"), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    print(f"wrote {FIGURES / 'screenshot-docs.png'} and {FIGURES / 'screenshot-demo.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
