"""Turning uploaded bytes into the model's input, and the model's output back into a PNG.

Plain Pillow and NumPy, no TensorFlow. The routes run large images through it in a worker thread;
small ones on the event loop, where that costs less than the hand-off (``is_cheap``).
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageChops, ImageFile, PngImagePlugin
from zlib_ng import zlib_ng

from app.framing import (
    CROP_SIDE,
    MAX_DIGITS,
    MIN_CONTRAST,
    SIDE,
    WORKING_SIDE,
    Framing,
    NoDigitFound,
    TooManyDigits,
    frame_digit,
    frame_digits,
    quantile,
    render_on_page,
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
_MAX_ASPECT = 8  # a working copy for framing is at most this many times as long as its shorter side
CHEAP_PIXELS = 128 * 128  # small enough to decode faster than a hand-off to a thread
_QUARTER_TURNS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
# What each EXIF orientation other than upright (1) takes to stand the image upright, on arrays
# (Pillow's exif_transpose would turn the full-size image, a copy as large as the decoded one).
_UPRIGHT: dict[int, Callable[[Pixels], Pixels]] = {
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: np.transpose,
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).T,
    8: np.rot90,
}
_TURNED = tuple(_UPRIGHT)

# Our own pixel limit (checked in open_image, before decoding) decides; Pillow's default limit
# would only add a warning below it.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
# PNG text chunks are inflated as the file opens, on the event loop for small images: Pillow's
# defaults (1 MB a chunk, 64 MB in all) let a 67 kB PNG of 63 zTXt chunks block it for 192 ms.
# Digits need no text: past these bounds the file is refused as corrupt (422).
PngImagePlugin.MAX_TEXT_CHUNK = 64 * 1024
PngImagePlugin.MAX_TEXT_MEMORY = 256 * 1024
Pixels = npt.NDArray[np.float32]

# Pillow identifies the format from the bytes; the filename and Content-Type are never trusted.
# Only these decoders are ever tried, so EPS (Ghostscript) and other plugins stay out of reach.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


class Invert(StrEnum):
    AUTO = "auto"
    TRUE = "true"
    FALSE = "false"


class Fit(StrEnum):
    """How an upload becomes the model's 28x28 input."""

    STRETCH = "stretch"  # the whole image resized to 28x28
    DIGIT = "digit"  # the digit found on the page, framed as MNIST frames its digits
    DIGITS = "digits"  # every digit found on the page (a number), each framed so
    AUTO = "auto"  # DIGITS for digits small on their page, STRETCH for an MNIST-like crop


class ImageError(Exception):
    """An upload the service cannot use; ``code`` is machine-readable, the message is for people."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Prepared:
    pixels: Pixels  # n x SIDE x SIDE in [0, 1], light digits on dark like MNIST: one per digit found
    inverted: bool  # the upload was dark on light and was inverted to get ``pixels``
    size: tuple[int, int]  # the upload's (width, height), upright (EXIF orientation applied)
    format: str
    framings: tuple[Framing, ...] = ()  # where each digit was found, with ``Fit.DIGIT`` and ``Fit.DIGITS``
    # A stretched upload's paper and ink (ink space): the model saw them as 0 and 1, and the answer
    # is drawn back at them. A framed answer is drawn at its framings' levels.
    levels: tuple[float, float] = (0.0, 1.0)


def sniff_format(data: bytes) -> str | None:
    """The image format the bytes start with, among the accepted ones."""
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Identify the upload from its bytes and read its header only; reject it before decoding."""
    if not data:
        raise ImageError(422, "empty_file", "the uploaded file is empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError(
            415,
            "unsupported_media_type",
            f"the file is not an image in a supported format ({', '.join(FORMATS)}); it starts with {data[:16]!r}",
        )
    try:
        image = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise ImageError(422, "too_many_pixels", f"the {fmt} image is too large: {exc}") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(422, "corrupt_image", f"the {fmt} image cannot be read: {exc}") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(
            422,
            "too_many_pixels",
            f"the {fmt} image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}",
        )
    if width < 1 or height < 1:
        raise ImageError(422, "corrupt_image", f"the {fmt} image has no pixels ({width}x{height})")
    return image


def is_cheap(image: Image.Image) -> bool:
    """Small enough to decode on the event loop: less work than handing it to a thread."""
    width, height = image.size
    return width * height <= CHEAP_PIXELS


# Bytes per pixel that preparing an image holds at its peak, by its mode as opened: the decoded
# pixels (Pillow stores every mode but these in 4 bytes a pixel) and the full-size copies ``_shrink``
# makes before it reduces (a 16-bit image as 32-bit; RGBA as gray and alpha; a palette as RGBA).
# bench.decoding measures each against what a decode really takes.
_PEAK_BYTES_PER_PIXEL = {"1": 2, "L": 1, "P": 2, "I;16": 6, "I;16B": 6, "I;16L": 6, "I;16N": 6}
_PEAK_BYTES_BY_FOUR_BYTE_MODE = {"LA": 6, "RGBA": 6, "PA": 10, "RGB": 4, "I": 4, "F": 4}
_PEAK_BYTES_OTHER_MODES = 8  # CMYK, YCbCr... decoded, then converted to RGB
DECODING_OVERHEAD = 16 * 1024 * 1024  # the working copy's float arrays, the framing, the answer


def decoding_cost(image: Image.Image, fit: Fit) -> int:
    """Bytes that ``prepare`` can hold at once for this opened image, from its header alone."""
    width, height = image.size
    drafted = image.format in ("JPEG", "MPO") and isinstance(image, ImageFile.ImageFile) and len(image.tile) == 1
    if drafted:  # ``prepare`` decodes it at 1/2, 1/4 or 1/8 scale
        keep = _keep(fit) // 2
        scale = next(s for s in (8, 4, 2, 1) if min(width // keep, height // keep) >= s)
        width, height = -(-width // scale), -(-height // scale)
    mode = image.mode
    if mode == "P" and "transparency" in image.info:
        mode = "PA"
    per_pixel = _PEAK_BYTES_PER_PIXEL.get(mode) or _PEAK_BYTES_BY_FOUR_BYTE_MODE.get(mode) or _PEAK_BYTES_OTHER_MODES
    return width * height * per_pixel + DECODING_OVERHEAD


def _keep(fit: Fit) -> int:
    """Pixels to keep on the shorter side: 28x28 needs little; finding a digit needs a page."""
    return SIDE * 4 if fit is Fit.STRETCH else WORKING_SIDE


def prepare(image: Image.Image, invert: Invert, fit: Fit = Fit.STRETCH, max_digits: int = MAX_DIGITS) -> Prepared:
    """Decode an opened upload into the model's 28x28 input (one per digit with ``Fit.DIGITS``).

    The image is closed on the way: its full-size pixels are released once a working copy is made.
    """
    fmt = image.format or "image"
    keep = _keep(fit)
    orientation = _orientation(image)
    width, height = image.size
    size = (height, width) if orientation in _QUARTER_TURNS else (width, height)  # before a draft shrinks it
    try:
        if fmt in ("JPEG", "MPO"):  # MPO: a phone's JPEG with a multi-picture block
            # Decode large JPEGs at 1/2, 1/4 or 1/8 scale: far less work for the same answer.
            image.draft("L" if image.mode == "L" else "RGB", (keep // 2, keep // 2))
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageError(422, "corrupt_image", f"the {fmt} image cannot be decoded: {exc}") from exc
    # 16-bit images span 0..65535 whatever they hold: scaled by that, a stroke at 255 stays faint
    # (normalised by its content it became full white, and one at 256 nearly black).
    full_scale = 65535.0 if image.mode.startswith("I;16") else None
    pixels = _to_gray(_shrink(image, keep, uniform=fit is not Fit.STRETCH), full_scale)
    if orientation in _TURNED:  # phone photos stand upright by their tag; turned once small
        pixels = np.ascontiguousarray(_UPRIGHT[orientation](pixels))
    if fit is not Fit.STRETCH:
        inverted = _decide_inversion(pixels, invert)
        ink = 1.0 - pixels if inverted else pixels
        try:
            framed = frame_digit(ink, size) if fit is Fit.DIGIT else frame_digits(ink, size, max_digits)
        except NoDigitFound as exc:
            if fit is not Fit.AUTO:
                raise ImageError(422, "no_digit_found", f"no digit was found on the {fmt} image: {exc}") from exc
        except TooManyDigits as exc:
            if fit is not Fit.AUTO:
                raise ImageError(422, "too_many_digits", f"on the {fmt} image: {exc}") from exc
        else:
            digits = framed if isinstance(framed, list) else [framed]
            # fit=auto: several digits on a page are a number; one is framed where it is small on its page.
            number = len(digits) > 1 and min(size) > CROP_SIDE
            if fit is not Fit.AUTO or number or digits[0][1].small_on_page:
                frames = np.stack([frame for frame, _ in digits])
                return Prepared(frames, inverted, size, fmt, tuple(framing for _, framing in digits))
    return _stretched(pixels, invert, size, fmt)


def _stretched(pixels: Pixels, invert: Invert, size: tuple[int, int], fmt: str) -> Prepared:
    """The whole image resized to the model's input (area-averaged), at MNIST's levels.

    An upload of the model's own size is left as it is: the noise the model was trained on.
    """
    if pixels.shape == (SIDE, SIDE):  # an MNIST-sized upload, the common case: nothing to resize
        resized = pixels
    else:
        resized = np.asarray(
            Image.fromarray(pixels, mode="F").resize((SIDE, SIDE), Image.Resampling.BOX), dtype=np.float32
        )
    inverted = _decide_inversion(resized, invert)
    if inverted:
        resized = 1.0 - resized
    levels = (0.0, 1.0)
    # Area-averaged, noise clipped at white or black becomes a haze over the paper (dark-on-light
    # scans: 0.13 where MNIST's paper is 0), which the model keeps in its strokes: the averaged
    # paper goes to 0 and the averaged strokes to 1, and the answer is drawn back at the page's
    # levels. Only where strokes stand out: a flat image (noise, a photo) is left as it is.
    if size != (SIDE, SIDE):
        zero, one = quantile(resized, 0.5), quantile(resized, 0.98)
        if one - zero >= _STROKE_CONTRAST:
            resized = (resized - zero) / (one - zero)
            levels = _page_levels(1.0 - pixels if inverted else pixels)
    return Prepared(np.clip(resized, 0.0, 1.0)[np.newaxis], inverted, size, fmt, levels=levels)


# A digit covers at most about 30 % of its image: this rank of its pixels is paper, even where noise
# clipped at white put half the paper's pixels at exactly white (a median there is noise).
_PAPER_RANK = 0.35
# Clipped noise averaged over a reduced copy lifts white paper by up to about 0.4 sigma (0.2 at
# sigma 0.5): paper within this of white is white, ink within it of black is black.
_HAZE = 0.2
_STROKE_CONTRAST = 0.25  # strokes this far above the paper, on the 28x28 copy, are set to MNIST's levels


def _page_levels(pixels: Pixels) -> tuple[float, float]:
    """The paper's and the ink's levels (ink space) of a working copy of the upload."""
    paper = quantile(pixels, _PAPER_RANK)
    top = quantile(pixels, 0.99)
    strokes = pixels[pixels > (paper + top) / 2]
    # The upper quartile: the strokes' edges, half paper, pull a median of them towards the paper.
    ink = quantile(strokes, 0.75) if strokes.size else top
    paper = 0.0 if paper < _HAZE else paper
    ink = 1.0 if ink > 1 - _HAZE else ink
    return (paper, ink) if ink - paper >= MIN_CONTRAST else (0.0, 1.0)


def decode(
    data: bytes, invert: Invert, max_pixels: int, fit: Fit = Fit.STRETCH, max_digits: int = MAX_DIGITS
) -> Prepared:
    """``open_image`` then ``prepare``: bytes to the model's input in one call."""
    return prepare(open_image(data, max_pixels), invert, fit, max_digits)


def _orientation(image: Image.Image) -> int | None:
    """The EXIF orientation tag, read from the header: nothing is decoded.

    Most uploads carry no EXIF block, and parsing one costs more than the rest of a small PNG's
    decoding; PNG, JPEG and WebP put theirs in ``info`` as they open (PNG's eXIf chunk comes before
    the pixels), so only a block that is there is parsed. TIFF keeps the tag among its own.
    """
    if image.format in ("GIF", "BMP") or (image.format != "TIFF" and "exif" not in image.info):
        return None
    try:
        value = image.getexif().get(0x0112)
    except Exception:  # a malformed block (Pillow raises several types): read the image as it is
        return None
    return value if isinstance(value, int) else None


def _shrink(image: Image.Image, keep: int, uniform: bool) -> Image.Image:
    """Normalise the mode and cut big images down early, so later float copies stay small.

    ``uniform``: one factor for both axes (framing needs the page's shape), from the shorter side,
    or from the longer one for a page over ``_MAX_ASPECT`` times as long as wide. Otherwise (a
    stretch to 28x28, which does not keep the shape anyway) each axis by its own factor, so that a
    long thin image is cut down too (a 100x100,000 PNG took 80 MB when it was not).
    Transparent images come back as "La": gray premultiplied by alpha, and alpha.
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        image = image.convert("I")  # Pillow cannot reduce 16-bit images
    elif image.mode in ("P", "PA"):
        # Straight to gray without transparency: a quarter of the memory of RGB, the same gray.
        transparent = image.mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if transparent else "L")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX, RGBa...
    width, height = image.size
    if uniform:
        # A 100x400,000 strip framed from its shorter side kept every pixel: 353 MB of float copies.
        factors = (max(min(width, height) // keep, -(-max(width, height) // (keep * _MAX_ASPECT))),) * 2
    else:
        factors = (width // keep, height // keep)
    factor = (max(1, factors[0]), max(1, factors[1]))
    if image.mode in ("LA", "RGBA"):
        # Pillow reduces these through a premultiplied copy as large as the decoded image; two
        # one-byte bands premultiplied here cost half of that, and flatten the same way.
        alpha = image.getchannel("A")
        gray = image.getchannel("L") if image.mode == "LA" else image.convert("L")
        image.close()
        premultiplied = ImageChops.multiply(gray, alpha)
        del gray
        if max(factor) >= 2:
            premultiplied, alpha = premultiplied.reduce(factor), alpha.reduce(factor)
        return Image.merge("La", (premultiplied, alpha))
    if max(factor) >= 2:  # 16-bit (as I) and float images too: Pillow reduces every mode left here
        reduced = image.reduce(factor)
        image.close()
        return reduced
    return image


def _to_gray(image: Image.Image, full_scale: float | None = None) -> Pixels:
    """Grayscale floats in [0, 1], transparency flattened onto the digit's own background.

    ``full_scale``: what 1.0 is for a wide (I) image of known depth; without it, float and 32-bit
    images are normalised by their range."""
    if image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float32)
        if full_scale is not None:
            scaled: Pixels = np.clip(values / full_scale, 0.0, 1.0)
            return scaled
        return _normalise_wide(values)
    if image.mode == "La":  # from _shrink: gray premultiplied by alpha, and alpha
        bands = image.split()
        premultiplied = np.asarray(bands[0], dtype=np.float32) / 255.0
        alpha = np.asarray(bands[1], dtype=np.float32) / 255.0
        # Ink drawn on a transparent canvas: dark ink sat on paper (white), light ink on black.
        covered = float(alpha.sum())
        ink = float(premultiplied.sum() / covered) if covered > 0 else 0.0
        background = 1.0 if ink < 0.5 else 0.0
        return premultiplied + background * (1.0 - alpha)
    if image.mode == "RGB":
        image = image.convert("L")
    return np.asarray(image, dtype=np.float32) / 255.0


def _normalise_wide(values: Pixels) -> Pixels:
    """Scale 16/32-bit integer or float pixels into [0, 1]."""
    if values.size == 0 or not np.all(np.isfinite(values)):
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if low >= 0.0 and high <= 1.0:
        return values
    if low >= 0.0 and high <= 255.0:
        return values / 255.0
    if low >= 0.0 and high <= 65535.0:
        return values / 65535.0
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def _decide_inversion(pixels: Pixels, invert: Invert) -> bool:
    if invert is Invert.AUTO:
        # The background covers most of a digit image; a light one (median above 0.5, i.e. most
        # pixels light: cheaper to count than a median) means dark ink on paper.
        return int(np.count_nonzero(pixels > 0.5)) * 2 > pixels.size
    return invert is Invert.TRUE


def rendering_cost(size: tuple[int, int], framed: bool) -> int:
    """Bytes that ``encode_png`` holds at once to draw an answer of ``size``: a digit drawn back on
    its page goes through float copies of the page (bench.decoding measures them: 63 MiB for
    2048x2048, 16 bytes a pixel); a stretched answer is one 8-bit resize."""
    width, height = size
    return width * height * (20 if framed else 2) + 2**20


def encode_png(
    pixels: Pixels,
    inverted: bool,
    size: tuple[int, int] | None = None,
    framings: tuple[Framing, ...] = (),
    levels: tuple[float, float] = (0.0, 1.0),
    compress: bool = True,
) -> bytes:
    """Model outputs (n x 28 x 28) as an 8-bit grayscale PNG, in the upload's polarity and levels.

    With ``framings`` and a ``size``, each digit is drawn back where it was found on a clean page;
    otherwise the outputs stand side by side (28 x 28n), resized to ``size`` if one is given.
    ``compress=False`` stores a 28x28 PNG's pixels as they are: for noisy images, which deflate
    hardly shrinks (a noisy 28x28 input: 629 bytes against 823 stored) at ten times the cost.
    """
    if framings and size is not None:
        values = render_on_page(pixels, framings, size)
    else:
        values = pixels[0] if len(pixels) == 1 else np.hstack(list(pixels))
        paper, ink = levels
        # One float copy, changed in place: a page drawn at 2048x2048 is 16 MiB a copy.
        values = np.clip(values * (ink - paper) + paper if levels != (0.0, 1.0) else values, 0.0, 1.0)
    del pixels
    if inverted:
        np.subtract(1.0, values, out=values)
    values *= 255.0
    gray = np.rint(values, out=values).astype(np.uint8)
    del values
    if size is None:
        return _small_png(gray, compress)
    image = Image.fromarray(gray, mode="L")
    del gray
    if size != image.size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # speed over a few bytes
    return buffer.getvalue()


# 1 KiB: more than a 28x28 image's 812 bytes, so nothing is lost on one digit.
_WINDOW_BITS = 10


def _small_png(gray: npt.NDArray[np.uint8], compress: bool = True) -> bytes:
    """An 8-bit grayscale PNG of ``gray``, written directly: for the 28x28 answers, Pillow's save
    machinery costs several times what compressing their 812 bytes does, on every request. Pages
    (``size`` given: large, where its row filters pay off) still go through Pillow.

    zlib-ng deflates them, not zlib: the same stream format and about the same size (208 bytes
    against 197 for an MNIST digit) in a quarter of the time, since for so small an input the
    per-call setup is most of the cost, and a batch answer encodes one per image. Its window is
    ``_WINDOW_BITS``, not the default 32 KiB: with that, zlib-ng asks for its whole state in one
    block over the 256 KiB from which the service maps every allocation (app/budget.py), and each
    call mapped, faulted in and unmapped its own: batches through the identity engine ran at half
    the speed (docs/zlib-ng-identity-ab.json)."""
    height, width = gray.shape
    rows = np.zeros((height, width + 1), np.uint8)  # each row led by its filter type: 0, none
    rows[:, 1:] = gray
    data = zlib_ng.compress(rows.data, 1 if compress else 0, _WINDOW_BITS)
    return _png_head(width, height) + _chunk(b"IDAT", data) + _PNG_END


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


@cache
def _png_head(width: int, height: int) -> bytes:
    """The signature and header of an 8-bit grayscale PNG of that size: the same for every 28x28 answer."""
    return _PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))


def capped_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``size`` scaled down, keeping its aspect, so that neither side exceeds ``max_side``."""
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))
