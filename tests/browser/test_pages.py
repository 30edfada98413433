"""The docs and the demo page in a real headless Chromium, every request answered by the service."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image
from playwright.sync_api import Browser, Locator, expect

from tests.browser.conftest import Page
from tests.conftest import live_server
from tests.images import mnist_digits, page_with_number

EXAMPLE = Path(__file__).resolve().parents[2] / "app" / "static" / "demo" / "example.png"
PNG_DATA = re.compile(r"data:image/png;base64,.+")
TIMEOUT = 60_000  # ms: the first inference in a fresh server, on a busy 2-core machine


def _denoise_operation(page: Page) -> Locator:
    """POST /denoise on the Swagger page, opened."""
    page.page.goto(f"{page.base}/docs")
    operation = page.page.locator("#operations-denoise-denoise_denoise_post")
    expect(operation).to_be_visible(timeout=TIMEOUT)
    operation.locator(".opblock-summary").click()
    return operation


def test_swagger_ui_renders_offline_and_try_it_out_shows_the_image(page: Page) -> None:
    operation = _denoise_operation(page)
    try_it = operation.get_by_role("button", name="Try it out")
    if try_it.count():
        try_it.click()
    operation.locator("input[type=file]").set_input_files(str(EXAMPLE))
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    expect(status).to_have_text("200", timeout=TIMEOUT)
    image = operation.locator(".live-responses-table img").first
    expect(image).to_be_visible(timeout=TIMEOUT)
    assert image.evaluate("img => img.complete && img.naturalWidth") == 28
    assert image.evaluate("img => img.getBoundingClientRect().width") >= 200  # shown enlarged


def test_swagger_ui_pictures_fit_digits_beside_the_parameter(page: Page) -> None:
    picture = _denoise_operation(page).locator("tr[data-param-name=fit] img")
    expect(picture).to_be_visible(timeout=TIMEOUT)
    assert "fit=digits" in (picture.get_attribute("alt") or "")
    assert picture.evaluate("img => img.complete && img.naturalWidth") > 100  # loaded, from this server


def _pixels(page: Page, selector: str) -> list[int]:
    """The grey levels of a decoded <img>, read back through a canvas in the page."""
    script = """img => {
        const canvas = document.createElement("canvas");
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext("2d");
        context.drawImage(img, 0, 0);
        const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
        return Array.from(data.filter((_, i) => i % 4 === 0));
    }"""
    pixels: list[int] = page.page.locator(selector).evaluate(script)
    return pixels


def test_demo_denoises_an_uploaded_noisy_digit(page: Page) -> None:
    browser_page = page.page
    browser_page.goto(f"{page.base}/demo")
    browser_page.locator("#file").set_input_files(str(EXAMPLE))
    denoised = browser_page.locator("#denoised")
    expect(denoised).to_have_attribute("src", PNG_DATA, timeout=TIMEOUT)
    browser_page.wait_for_function("() => document.getElementById('denoised').naturalWidth === 28")
    seen, out = _pixels(page, "#model-input"), _pixels(page, "#denoised")
    assert len(seen) == len(out) == 28 * 28
    assert sum(abs(a - b) for a, b in zip(seen, out, strict=True)) / len(out) > 10  # it changed the image
    expect(browser_page.locator("#facts")).to_be_visible()
    expect(browser_page.locator("#version")).to_have_text(re.compile(r"\d+"))
    assert browser_page.locator("#message").is_hidden()


def test_demo_denoises_a_drawing(page: Page) -> None:
    browser_page = page.page
    browser_page.goto(f"{page.base}/demo")
    box = browser_page.locator("#canvas").bounding_box()
    assert box is not None
    mouse = browser_page.mouse
    mouse.move(box["x"] + 100, box["y"] + 50)
    mouse.down()
    for x, y in [(180, 50), (150, 140), (120, 230)]:  # a 7
        mouse.move(box["x"] + x, box["y"] + y, steps=8)
    mouse.up()
    browser_page.locator("#sigma").fill("0")
    browser_page.get_by_role("button", name="Denoise the drawing").click()
    expect(browser_page.locator("#denoised")).to_have_attribute("src", PNG_DATA, timeout=TIMEOUT)
    browser_page.wait_for_function("() => document.getElementById('denoised').naturalWidth === 28")
    assert max(_pixels(page, "#denoised")) > 128  # the stroke came back


def test_demo_explains_an_unsupported_file(page: Page, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    browser_page = page.page
    browser_page.goto(f"{page.base}/demo")
    browser_page.locator("#file").set_input_files(str(notes))
    message = browser_page.locator("#message")
    expect(message).to_contain_text("415 Unsupported Media Type", timeout=TIMEOUT)
    expect(message).to_contain_text("PNG, JPEG, GIF, BMP, TIFF and WebP")


def test_demo_outlines_every_digit_of_a_number(page: Page, tmp_path: Path) -> None:
    number, _, _ = page_with_number(mnist_digits()[:3], gaps=[12, 12], sigma=0.1)
    upload = tmp_path / "number.png"
    Image.fromarray(number).save(upload)
    browser_page = page.page
    browser_page.goto(f"{page.base}/demo")
    browser_page.locator("#fit").select_option("digits")
    browser_page.locator("#file").set_input_files(str(upload))
    expect(browser_page.locator("#digits-found")).to_have_text("3", timeout=TIMEOUT)
    # The three digits side by side, and a red outline around each on what was sent.
    browser_page.wait_for_function("() => document.getElementById('denoised').naturalWidth === 3 * 28")
    red = browser_page.locator("#sent").evaluate(
        """canvas => {
            const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let red = 0;
            for (let i = 0; i < data.length; i += 4) red += data[i] > 180 && data[i + 1] < 80 && data[i + 2] < 80;
            return red;
        }"""
    )
    assert red > 3 * 50  # three outlines, each tens of pixels around


def test_demo_works_with_an_api_key(browser: Browser) -> None:
    with live_server(api_key="s3cret") as url:
        page = Page(browser, url)
        try:
            browser_page = page.page
            browser_page.goto(f"{url}/demo")
            browser_page.locator("#file").set_input_files(str(EXAMPLE))
            expect(browser_page.locator("#message")).to_contain_text("401", timeout=TIMEOUT)
            browser_page.locator("#api-key").fill("s3cret")
            browser_page.get_by_role("button", name="Send again with these options").click()
            expect(browser_page.locator("#denoised")).to_have_attribute("src", PNG_DATA, timeout=TIMEOUT)
            assert page.foreign == []
            assert page.errors == []
        finally:
            page.close()


def test_swagger_ui_shows_each_error_status_with_its_own_example(page: Page) -> None:
    operation = _denoise_operation(page)
    for status in ("400", "401", "413", "415", "422", "503"):
        row = operation.locator(f"tr.response[data-code='{status}']")
        expect(row).to_be_visible(timeout=TIMEOUT)
        # The example the row shows, as a person reads it: its own status and code, not another's.
        shown = row.locator(".example, .microlight").first.inner_text()
        assert f'"status": {status}' in shown, (status, shown[:200])
        assert "application/problem+json" in row.inner_text(), status
