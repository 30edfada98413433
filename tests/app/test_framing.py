"""app/framing.py on its own: finding a digit, framing it as MNIST did, drawing it back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy import ndimage

from app import framing
from app.framing import DIGIT_SIDE, SIDE, NoDigitFound, frame_digit, frame_digits, render_on_page
from tests.images import page_with_digit, page_with_number

Digits = npt.NDArray[np.uint8]


def _ink(page: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """A dark-on-light page in ink space (light ink on dark paper), as the service hands it over."""
    return (1.0 - page / 255.0).astype(np.float32)


@pytest.mark.parametrize(("height", "sigma"), [(40, 0.0), (90, 0.3), (180, 0.5)])
def test_the_box_is_found_under_noise(digits: Digits, height: int, sigma: float) -> None:
    page, true_box = page_with_digit(digits[0], size=(480, 360), at=(100, 50), height=height, sigma=sigma)
    _, framing = frame_digit(_ink(page), (480, 360))
    found = (framing.box.x, framing.box.y, framing.box.width, framing.box.height)
    assert all(abs(a - b) <= 2 + height // 20 for a, b in zip(found, true_box, strict=True)), (found, true_box)


def test_the_frame_is_mnist_framed(digits: Digits) -> None:
    page, _ = page_with_digit(digits[1], size=(400, 300), at=(30, 120), height=120, sigma=0.0)
    frame, _ = frame_digit(_ink(page), (400, 300))
    assert frame.shape == (SIDE, SIDE)
    rows, cols = np.nonzero(frame > 0.3)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 == pytest.approx(DIGIT_SIDE, abs=1.5)  # longer side 20 px
    cy, cx = ndimage.center_of_mass(frame)
    assert (cx + 0.5, cy + 0.5) == pytest.approx((SIDE / 2, SIDE / 2), abs=1.0)  # centred by mass


def test_a_reduced_working_copy_reports_upload_pixels(digits: Digits) -> None:
    page, true_box = page_with_digit(digits[2], size=(800, 600), at=(400, 200), height=150, sigma=0.1)
    working = _ink(page)[::2, ::2].copy()  # what the service frames a large upload on
    _, framing = frame_digit(working, (800, 600))
    assert abs(framing.box.x - true_box[0]) <= 4
    assert abs(framing.box.height - true_box[3]) <= 6


def test_render_on_page_inverts_the_framing(digits: Digits) -> None:
    page, _ = page_with_digit(digits[3], size=(300, 200), at=(80, 40), height=100, sigma=0.0)
    ink = _ink(page)
    frame, framing = frame_digit(ink, (300, 200))
    drawn = render_on_page(frame[np.newaxis], [framing], (300, 200))
    assert drawn.shape == (200, 300)
    # The framed digit drawn back lands on the original strokes (blurred by the 28x28 round trip).
    assert np.corrcoef(drawn.ravel(), ink.ravel())[0, 1] > 0.9
    half = render_on_page(frame[np.newaxis], [framing], (150, 100))
    assert half.shape == (100, 150)
    assert np.corrcoef(half.ravel(), ink[::2, ::2].ravel())[0, 1] > 0.85


def test_an_mnist_shaped_digit_is_left_as_it_is(digits: Digits) -> None:
    ink = (digits[4] / 255).astype(np.float32)
    frame, framing = frame_digit(ink, (28, 28))
    np.testing.assert_array_equal(frame, ink)  # no resampling: the noise the model knows
    assert (framing.scale_x, framing.scale_y, framing.left, framing.top) == (1.0, 1.0, 0.0, 0.0)
    np.testing.assert_allclose(render_on_page(frame[np.newaxis], [framing], (28, 28)), ink, atol=1e-6)


def test_uneven_light_does_not_hide_the_digit(digits: Digits) -> None:
    page, true_box = page_with_digit(digits[5], size=(400, 300), at=(250, 100), height=80, sigma=0.1)
    shadow = np.linspace(0.45, 1.0, 400)[np.newaxis, :]  # a page darker on the left
    shaded = np.clip(page * shadow, 0, 255).astype(np.uint8)
    _, framing = frame_digit(_ink(shaded), (400, 300))
    assert abs(framing.box.x - true_box[0]) <= 5
    assert abs(framing.box.width - true_box[2]) <= 8


@pytest.mark.parametrize("sigma", [0.0, 0.1, 0.3, 0.5, 0.8])
@pytest.mark.parametrize("shape", [(28, 28), (240, 320)])
def test_blank_pages_have_no_digit(sigma: float, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(7)
    ink = np.clip(sigma * rng.standard_normal(shape), 0, 1).astype(np.float32)  # paper and its noise
    with pytest.raises(NoDigitFound, match="stands out"):
        frame_digit(ink, (shape[1], shape[0]))


@pytest.mark.parametrize(("sigma", "at"), [(0.2, (40, 30)), (0.5, (600, 500)), (0.3, (0, 0))])
def test_a_number_on_a_sheet_is_found_as_on_the_whole_page(
    digits: Digits, monkeypatch: pytest.MonkeyPatch, sigma: float, at: tuple[int, int]
) -> None:
    """fit=digits looks closely only where the ink shows on a reduced copy: the digits it finds
    there are those it finds looking at every pixel."""
    number, _, _ = page_with_number(digits[:4], gaps=[6, 0, 10], height=50, margin=10, sigma=sigma)
    rng = np.random.default_rng(3)
    paper = np.clip(1 + sigma * rng.standard_normal((768, 1024)), 0, 1)
    sheet = np.rint(paper * 255).astype(np.uint8)
    x, y = at
    sheet[y : y + number.shape[0], x : x + number.shape[1]] = number
    ink = _ink(sheet)

    def boxes() -> list[tuple[int, int, int, int]]:
        return [(f.box.x, f.box.y, f.box.width, f.box.height) for _, f in frame_digits(ink, (1024, 768), 32)]

    in_the_window = boxes()
    monkeypatch.setattr(framing, "REGION_SHARE", 0.0)  # no window is small enough: the whole page
    on_the_whole_page = boxes()
    assert len(in_the_window) == len(on_the_whole_page) == 4
    for a, b in zip(in_the_window, on_the_whole_page, strict=True):
        assert max(abs(u - v) for u, v in zip(a, b, strict=True)) <= 1, (in_the_window, on_the_whole_page)


def test_a_number_cropped_close_keeps_its_ink(digits: Digits) -> None:
    """The paper's level is measured wider than a digit: a large digit's body is not taken for
    paper, which faded it (with an opening 20 px wide these frames' ink came to 0.71 on average)."""
    tops = []
    for first in range(0, 24, 2):
        page, _, _ = page_with_number(digits[first : first + 2], gaps=[12], height=130, margin=20, sigma=0.3)
        for frame, _ in frame_digits(_ink(page), (page.shape[1], page.shape[0]), 32):
            tops.append(float(np.quantile(frame, 0.95)))  # the strokes' level in the model's input
    assert np.mean(tops) > 0.8, tops


def test_blank_sheets_have_no_number() -> None:
    rng = np.random.default_rng(5)
    ink = np.clip(0.3 * rng.standard_normal((256, 342)), 0, 1).astype(np.float32)
    with pytest.raises(NoDigitFound, match="stands out"):
        frame_digits(ink, (1024, 768), 32)


def test_scipy_loads_when_a_page_is_first_framed_not_when_the_app_starts() -> None:
    """A starting worker does not wait for SciPy (app/framing.py's note on imports); warm_up loads it."""
    code = (
        "import sys, app.main\n"
        "assert 'scipy.ndimage' not in sys.modules, 'importing the app imported SciPy'\n"
        "from app import framing\n"
        "framing.warm_up()\n"
        "assert 'scipy.ndimage' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
