"""app/imaging.py on its own: format sniffing, header checks, polarity, sizes, PNG encoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.imaging import (
    Fit,
    ImageError,
    Invert,
    capped_size,
    decode,
    encode_png,
    open_image,
    sniff_format,
)
from tests.images import encode, mnist_digits, page_with_digit, png_header

DIGIT = mnist_digits()[0]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
def test_formats_are_told_by_their_bytes(fmt: str) -> None:
    assert sniff_format(encode(Image.fromarray(DIGIT), fmt)) == fmt


@pytest.mark.parametrize("data", [b"%PDF-1.7", b"<svg", b"", b"GIF8"])
def test_other_bytes_are_no_format(data: bytes) -> None:
    assert sniff_format(data) is None


def test_too_many_pixels_is_refused_from_the_header() -> None:
    with pytest.raises(ImageError) as refused:
        open_image(png_header(9_000, 9_000), max_pixels=1_000_000)
    assert refused.value.code == "too_many_pixels"
    assert "9000x9000" in refused.value.message


def test_decode_gives_the_model_input_in_mnist_polarity() -> None:
    light_on_dark = decode(encode(Image.fromarray(DIGIT), "PNG"), Invert.AUTO, 10**7)
    dark_on_light = decode(encode(Image.fromarray(255 - DIGIT), "PNG"), Invert.AUTO, 10**7)
    assert light_on_dark.pixels.shape == (1, 28, 28)
    assert not light_on_dark.inverted
    assert dark_on_light.inverted
    np.testing.assert_allclose(light_on_dark.pixels, dark_on_light.pixels, atol=1e-6)
    assert light_on_dark.framings == ()


def test_decode_with_fit_digit_frames_the_page() -> None:
    page, _ = page_with_digit(DIGIT)
    prepared = decode(encode(Image.fromarray(page), "PNG"), Invert.AUTO, 10**7, Fit.DIGIT)
    assert len(prepared.framings) == 1
    assert prepared.size == (320, 240)
    with pytest.raises(ImageError, match="no digit"):
        decode(encode(Image.new("L", (320, 240), 255), "PNG"), Invert.AUTO, 10**7, Fit.DIGIT)


def test_encode_png_keeps_the_polarity_and_scales() -> None:
    pixels = (DIGIT / 255.0).astype(np.float32)
    same = Image.open(io.BytesIO(encode_png(pixels[np.newaxis], inverted=False)))
    flipped = Image.open(io.BytesIO(encode_png(pixels[np.newaxis], inverted=True, size=(56, 84))))
    assert same.size == (28, 28)
    assert flipped.size == (56, 84)
    assert np.asarray(same).max() > 200
    assert np.median(np.asarray(flipped)) > 200  # paper back to white


@pytest.mark.parametrize("compress", [True, False])
def test_the_28x28_answer_is_a_png_every_decoder_reads_pixel_for_pixel(compress: bool) -> None:
    outputs = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    outputs[:, :14] = 0.0  # half black: deflate has something to shrink
    png = encode_png(outputs, inverted=False, compress=compress)
    decoded = Image.open(io.BytesIO(png))
    decoded.load()  # checks every chunk's CRC and the compressed stream
    assert (decoded.format, decoded.mode, decoded.size) == ("PNG", "L", (84, 28))
    expected = np.rint(np.hstack(list(outputs)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(decoded), expected)
    raw = 28 * (84 + 1)  # each row and its filter byte
    assert (len(png) < raw) is compress  # stored, the pixels are all there as they are


@pytest.mark.parametrize(
    ("size", "cap", "expected"),
    [((100, 50), 200, (100, 50)), ((4000, 1000), 2048, (2048, 512)), ((1, 9000), 90, (1, 90))],
)
def test_capped_size_keeps_the_aspect(size: tuple[int, int], cap: int, expected: tuple[int, int]) -> None:
    assert capped_size(size, cap) == expected


def test_a_png_full_of_compressed_text_is_refused_before_it_is_inflated() -> None:
    import time

    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for index in range(63):  # each chunk inflates to 1 MB of nothing: the review's 67 kB file
        info.add_text(f"k{index}", "x" * 2**20, zip=True)
    data = encode(Image.new("L", (28, 28)), "PNG", pnginfo=info)
    assert len(data) < 100_000  # small on the wire
    started = time.perf_counter()
    with pytest.raises(ImageError) as refused:
        decode(data, Invert.AUTO, 10**8)
    assert refused.value.code == "corrupt_image"
    assert time.perf_counter() - started < 0.05  # was 192 ms with Pillow's defaults


@pytest.mark.parametrize(
    ("mode", "size", "fit", "expected"),
    [
        ("L", (100, 100_000), Fit.STRETCH, (100, 113)),  # long and thin: each axis by its own factor
        ("I;16", (3000, 3000), Fit.STRETCH, (116, 116)),  # 16-bit: reduced too
        ("F", (3000, 3000), Fit.STRETCH, (116, 116)),
        ("L", (4000, 3000), Fit.DIGIT, (364, 273)),  # framing keeps the page's shape
        ("L", (100, 100_000), Fit.DIGIT, (3, 2041)),  # ...up to 8:1: a strip is cut down from its length
    ],
)
def test_big_images_are_cut_down_before_any_float_copy(
    mode: str, size: tuple[int, int], fit: Fit, expected: tuple[int, int]
) -> None:
    from app.framing import WORKING_SIDE
    from app.imaging import _shrink

    keep = 28 * 4 if fit is Fit.STRETCH else WORKING_SIDE  # what prepare keeps for each fit
    assert _shrink(Image.new(mode, size), keep, uniform=fit is not Fit.STRETCH).size == expected


def test_16_bit_levels_do_not_depend_on_the_content() -> None:
    # A stroke at 255 and one at 256 of 65535 are both faint, and nearly equal.
    levels = []
    for value in (255, 256, 65535):
        pixels = np.zeros((28, 28), np.uint16)
        pixels[10:18, 10:18] = value
        prepared = decode(encode(Image.fromarray(pixels), "PNG"), Invert.FALSE, 10**8)
        levels.append(float(prepared.pixels.max()))
    assert levels[0] == pytest.approx(255 / 65535, abs=1e-4)
    assert levels[1] == pytest.approx(256 / 65535, abs=1e-4)
    assert levels[2] == pytest.approx(1.0)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_stands_the_image_up_as_pillow_would(orientation: int) -> None:
    from PIL import ImageOps

    stored = np.zeros((28, 28), np.uint8)
    stored[2:10, 3:6] = 255  # an L in one corner: every turn and flip tells apart
    stored[8:10, 3:14] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.fromarray(stored), "PNG", exif=exif)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data)))) / 255.0
    prepared = decode(data, Invert.FALSE, 10**7)
    np.testing.assert_array_equal(prepared.pixels[0], upright.astype(np.float32))


def test_a_palette_image_reads_as_its_gray_without_an_rgb_copy() -> None:
    rgb = Image.fromarray(np.stack([DIGIT, DIGIT // 2, 255 - DIGIT], axis=-1))
    palette = rgb.quantize(64)
    from_palette = decode(encode(palette, "PNG"), Invert.FALSE, 10**7).pixels[0]
    from_rgb = decode(encode(palette.convert("RGB"), "PNG"), Invert.FALSE, 10**7).pixels[0]
    np.testing.assert_allclose(from_palette, from_rgb, atol=1 / 255)


@pytest.mark.parametrize("side", [28, 600])
def test_transparency_flattens_onto_the_paper_as_full_size_floats_would(side: int) -> None:
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (side, side), dtype=np.uint8)
    alpha = rng.integers(0, 256, (side, side), dtype=np.uint8)
    rgba = Image.merge("RGBA", [Image.fromarray(gray)] * 3 + [Image.fromarray(alpha)])
    g, a = gray / 255.0, alpha / 255.0
    factor = max(1, side // (28 * 4))  # the early shrink: box means of the premultiplied gray and of alpha

    def box(values: np.ndarray) -> np.ndarray:
        n = side // factor * factor
        means: np.ndarray = values[:n, :n].reshape(n // factor, factor, n // factor, factor).mean(axis=(1, 3))
        return means

    premultiplied, covered = box(g * a), box(a)
    ink = premultiplied.sum() / covered.sum()
    expected = premultiplied + (1.0 if ink < 0.5 else 0.0) * (1 - covered)
    expected_28 = np.asarray(Image.fromarray(expected.astype(np.float32), "F").resize((28, 28), Image.Resampling.BOX))
    pixels = decode(encode(rgba, "PNG"), Invert.FALSE, 10**7).pixels[0]
    np.testing.assert_allclose(pixels, expected_28, atol=2 / 255)


def test_the_decoding_charge_follows_what_the_header_says() -> None:
    from app.imaging import DECODING_OVERHEAD, decoding_cost

    def cost(image: Image.Image, fmt: str, fit: Fit = Fit.STRETCH) -> int:
        return decoding_cost(open_image(encode(image, fmt), 10**9), fit) - DECODING_OVERHEAD

    assert cost(Image.new("L", (2000, 1000)), "PNG") == 2000 * 1000
    assert cost(Image.new("RGBA", (2000, 1000)), "PNG") == 2000 * 1000 * 6  # decoded, then gray and alpha
    assert cost(Image.new("I;16", (2000, 1000)), "PNG") == 2000 * 1000 * 6  # and as 32-bit to reduce
    # A JPEG is decoded at 1/8 scale when that still leaves what the fit keeps.
    assert cost(Image.new("RGB", (2000, 1000)), "JPEG") == 250 * 125 * 4
    assert cost(Image.new("RGB", (2000, 1000)), "JPEG", Fit.DIGIT) == 500 * 250 * 4


@pytest.mark.parametrize(
    ("size", "corner"),
    [
        ((2000, 1000), "bottom"),  # the review's page: its box ran 2 px past the bottom edge
        ((1000, 2000), "right"),
        ((2001, 999), "bottom-right"),
        ((777, 3001), "top-left"),
    ],
)
def test_a_digit_at_the_edge_of_any_page_is_boxed_on_the_page_and_drawn_back_there(
    size: tuple[int, int], corner: str
) -> None:
    width, height = size
    page = np.full((height, width), 255, np.uint8)
    side = min(width, height) // 5  # a digit-sized stroke, touching the edges the corner names
    ys = slice(height - side, height) if "bottom" in corner else slice(0, side)
    xs = slice(width - side // 3, width) if "right" in corner else slice(0, side // 3)
    if corner == "bottom":
        xs = slice(width // 2, width // 2 + side // 3)
    page[ys, xs] = 0
    prepared = decode(encode(Image.fromarray(page), "PNG"), Invert.AUTO, 10**8, Fit.DIGIT)
    (framing,) = prepared.framings
    box = framing.box
    assert box.x >= 0
    assert box.y >= 0
    assert box.x + box.width <= width
    assert box.y + box.height <= height
    # The box is the stroke's, within the rounding of the working copy (a few upload pixels).
    stroke = (xs.start, ys.start, xs.stop - xs.start, ys.stop - ys.start)
    tolerance = 2 + max(width, height) // 256
    assert all(abs(a - b) <= tolerance for a, b in zip((box.x, box.y, box.width, box.height), stroke, strict=True))
    # The model's input drawn back on the page at its size lands where the stroke was (within a
    # model pixel, in upload pixels, and the rounding).
    drawn = encode_png(prepared.pixels, prepared.inverted, size, prepared.framings)
    dark = np.argwhere(np.asarray(Image.open(io.BytesIO(drawn))) < 128)
    near = tolerance + max(box.width, box.height) / 20
    assert abs(dark[:, 0].min() - ys.start) <= near
    assert abs(dark[:, 0].max() + 1 - ys.stop) <= near
    assert abs(dark[:, 1].min() - xs.start) <= near
    assert abs(dark[:, 1].max() + 1 - xs.stop) <= near


def _scan(paper: float, sigma: float, side: int = 224, seed: int = 0) -> tuple[bytes, np.ndarray]:
    """DIGIT drawn dark on ``paper`` (a grey level in [0, 1]) at ``side`` px, noise added, JPEG."""
    ink = np.asarray(Image.fromarray(DIGIT).resize((side, side), Image.Resampling.BICUBIC), np.float64) / 255
    clean = paper * (1 - ink)
    noisy = np.clip(clean + sigma * np.random.default_rng(seed).standard_normal(clean.shape), 0, 1)
    return encode(Image.fromarray(np.rint(noisy * 255).astype(np.uint8)), "JPEG", quality=85), clean


def test_a_stretched_scan_reaches_the_model_at_mnist_levels_and_comes_back_at_its_own() -> None:
    # Noise clipped at white averages to a grey haze over white paper: the model's input has its
    # paper at 0 and its strokes at 1 all the same, and the answer's paper is white again.
    data, _ = _scan(paper=1.0, sigma=0.3)
    prepared = decode(data, Invert.AUTO, 10**7)
    frame = prepared.pixels[0]
    assert prepared.inverted
    assert np.median(frame) < 0.02
    assert np.quantile(frame, 0.98) > 0.95
    assert prepared.levels == (0.0, 1.0)
    # Grey paper (0.7) stays grey in the answer, the ink black.
    grey, _ = _scan(paper=0.7, sigma=0.05)
    prepared = decode(grey, Invert.AUTO, 10**7)
    paper, ink = prepared.levels
    assert abs((1 - paper) - 0.7) < 0.05  # ink space: the paper's darkness
    assert ink == 1.0
    answer = np.asarray(Image.open(io.BytesIO(encode_png(prepared.pixels, True, (224, 224), levels=prepared.levels))))
    assert abs(np.median(answer) / 255 - 0.7) < 0.05


def test_an_upload_of_the_models_own_size_reaches_it_as_it_is() -> None:
    # A noisy MNIST digit: its noise is what the model was trained on; no level is touched.
    noisy = np.clip(DIGIT / 255 + 0.5 * np.random.default_rng(1).standard_normal((28, 28)), 0, 1)
    pixels = np.rint(noisy * 255).astype(np.uint8)
    prepared = decode(encode(Image.fromarray(pixels), "PNG"), Invert.AUTO, 10**7)
    np.testing.assert_array_equal(prepared.pixels[0], pixels.astype(np.float32) / 255)
    assert prepared.levels == (0.0, 1.0)
