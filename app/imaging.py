"""Turning uploaded bytes into the model's input, and the model's output back into a PNG.

Plain Pillow and NumPy, no TensorFlow. The routes run large images through it in a worker thread;
small ones on the event loop, where that costs less than the hand-off (``is_cheap``).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, PngImagePlugin

from app.framing import SIDE, WORKING_SIDE, Framing, NoDigitFound, frame_digit, render_on_page

CHEAP_PIXELS = 128 * 128  # small enough to decode faster than a hand-off to a thread
_TURNED = (2, 3, 4, 5, 6, 7, 8)  # EXIF orientations other than upright (1)
_QUARTER_TURNS = (5, 6, 7, 8)  # those that swap width and height

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
    AUTO = "auto"  # DIGIT for a digit small on its page, STRETCH for an MNIST-like crop


class ImageError(Exception):
    """An upload the service cannot use; ``code`` is machine-readable, the message is for people."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Prepared:
    pixels: Pixels  # SIDE x SIDE in [0, 1], light digit on dark background like MNIST
    inverted: bool  # the upload was dark on light and was inverted to get ``pixels``
    size: tuple[int, int]  # the upload's (width, height), upright (EXIF orientation applied)
    format: str
    framing: Framing | None = None  # where the digit was found, with ``Fit.DIGIT``


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


def prepare(image: Image.Image, invert: Invert, fit: Fit = Fit.STRETCH) -> Prepared:
    """Decode an opened upload into the model's 28x28 input."""
    fmt = image.format or "image"
    # Only as many pixels as the fit needs: 28x28 for a stretch; enough to find and crop a digit.
    keep = SIDE * 4 if fit is Fit.STRETCH else WORKING_SIDE
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
    if orientation in _TURNED:
        try:
            ImageOps.exif_transpose(image, in_place=True)  # phone photos stand upright by their tag
        except Exception:  # a malformed EXIF block: the pixels are fine, read them as they are
            size = image.size
    # 16-bit images span 0..65535 whatever they hold: scaled by that, a stroke at 255 stays faint
    # (normalised by its content it became full white, and one at 256 nearly black).
    full_scale = 65535.0 if image.mode.startswith("I;16") else None
    pixels = _to_gray(_shrink(image, keep, uniform=fit is not Fit.STRETCH), full_scale)
    if fit is not Fit.STRETCH:
        inverted = _decide_inversion(pixels, invert)
        try:
            frame, framing = frame_digit(1.0 - pixels if inverted else pixels, size)
        except NoDigitFound as exc:
            if fit is Fit.DIGIT:
                raise ImageError(422, "no_digit_found", f"no digit was found on the {fmt} image: {exc}") from exc
        else:
            if fit is Fit.DIGIT or framing.small_on_page:
                return Prepared(frame, inverted, size, fmt, framing)
    return _stretched(pixels, invert, size, fmt)


def _stretched(pixels: Pixels, invert: Invert, size: tuple[int, int], fmt: str) -> Prepared:
    """The whole image resized to the model's input (area-averaged)."""
    if pixels.shape == (SIDE, SIDE):  # an MNIST-sized upload, the common case: nothing to resize
        resized = pixels
    else:
        resized = np.asarray(
            Image.fromarray(pixels, mode="F").resize((SIDE, SIDE), Image.Resampling.BOX), dtype=np.float32
        )
    inverted = _decide_inversion(resized, invert)
    if inverted:
        resized = 1.0 - resized
    return Prepared(np.clip(resized, 0.0, 1.0), inverted, size, fmt)


def decode(data: bytes, invert: Invert, max_pixels: int, fit: Fit = Fit.STRETCH) -> Prepared:
    """``open_image`` then ``prepare``: bytes to the model's input in one call."""
    return prepare(open_image(data, max_pixels), invert, fit)


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

    ``uniform``: one factor for both axes, from the shorter side (framing needs the page's shape).
    Otherwise (a stretch to 28x28, which does not keep the shape anyway) each axis by its own factor,
    so that a long thin image is cut down too (a 100x100,000 PNG took 80 MB when it was not).
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        image = image.convert("I")
    elif image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode == "PA":
        image = image.convert("RGBA")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        image = image.convert("RGB")  # 1, CMYK, YCbCr, LAB, HSV, RGBX, RGBa...
    width, height = image.size
    factors = (min(width, height) // keep,) * 2 if uniform else (width // keep, height // keep)
    if max(factors) >= 2:  # 16-bit (as I) and float images too: Pillow reduces every mode left here
        image = image.reduce((max(1, factors[0]), max(1, factors[1])))
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
    alpha: Pixels | None = None
    if image.mode in ("LA", "RGBA"):
        alpha = np.asarray(image.getchannel("A"), dtype=np.float32) / 255.0
        image = image.convert("LA").getchannel("L") if image.mode == "RGBA" else image.getchannel("L")
    elif image.mode == "RGB":
        image = image.convert("L")
    gray = np.asarray(image, dtype=np.float32) / 255.0
    if alpha is None:
        return gray
    # Ink drawn on a transparent canvas: dark ink sat on paper (white), light ink on black.
    covered = float(alpha.sum())
    ink = float((gray * alpha).sum() / covered) if covered > 0 else 0.0
    background = 1.0 if ink < 0.5 else 0.0
    return gray * alpha + background * (1.0 - alpha)


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


def encode_png(
    pixels: Pixels, inverted: bool, size: tuple[int, int] | None = None, framing: Framing | None = None
) -> bytes:
    """The model's output as an 8-bit grayscale PNG, in the upload's polarity and optionally size.

    With a ``framing`` and a ``size``, the digit is drawn back where it was found on a clean page.
    """
    if framing is not None and size is not None:
        pixels = render_on_page(pixels, framing, size)
    values = 1.0 - pixels if inverted else pixels
    image = Image.fromarray(np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8), mode="L")
    if size is not None and size != image.size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # tiny images: speed over a few bytes
    return buffer.getvalue()


def capped_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``size`` scaled down, keeping its aspect, so that neither side exceeds ``max_side``."""
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))
