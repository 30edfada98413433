"""Finding the digits on a page and framing each as MNIST was framed; mapping the results back.

MNIST's recipe (LeCun et al.): the digit's bounding box scaled so that its longer side is 20 px,
aspect ratio kept, placed in 28x28 with its centre of mass at the centre. A model trained on it
expects exactly that, so a photo of a digit on paper is framed the same way before the model runs
(``frame_digit``; every digit of a number: ``frame_digits``), and the model's answers are drawn
back where the digits stood (``render_on_page``).

Everything here works in *ink space*: floats in [0, 1] with the ink light and the paper dark, the
polarity the model uses. Plain NumPy, SciPy and Pillow; no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from PIL import Image

# SciPy's ndimage is imported inside the functions that use it, not here: it takes longer to import
# than a worker takes to load its model, and only a page that is framed needs it. A starting worker
# is ready sooner, and warms it just after (``warm_up``, from app/main.py); Python's import lock
# makes a request that needs it meanwhile wait for that import rather than start another.

Pixels = npt.NDArray[np.float32]
Bounds = tuple[float, float, float, float]  # x0, y0, x1, y1

SIDE = 28  # the model's frame
DIGIT_SIDE = 20  # the longer side of the digit's box in that frame, as in MNIST
WORKING_SIDE = 256  # uploads are reduced to a working copy whose shorter side is at least this
DETECT_SIDE = 160  # the digit is looked for on a copy whose longer side is at most this
# Ink must stand this many times the paper's own spread (its noise, after smoothing) above it, and
# at least MIN_CONTRAST in [0, 1] units: a blank page, even a noisy one, has nothing that far out.
INK_SPREADS = 3.0
MIN_CONTRAST = 0.08
MIN_BLOB = 25  # pixels of the copy looked at: noise that passes the threshold comes in specks
SNAP = 1.5  # a digit whose scale to MNIST's is within this factor of 1 is not resampled
CENTRED = 3  # pixels: a 28x28 upload whose digit is this near its frame's place is not moved
AUTO_SHARE = 0.5  # fit=auto frames a digit whose box spans less than this share of the page
CROP_SIDE = 2 * 28  # and whose page is larger than this: no photo of a page is smaller
CLEAN_LEVELS = 0.1  # paper and ink this near white and black are taken as white and black
EDGE = 0.3  # the box reaches where the ink fades to this fraction of its level, as MNIST's reach its faint edges
# The detection's smoothing: a 5-tap binomial kernel on each axis, a Gaussian of sigma 1 to within
# a few percent, at a third of SciPy's cost for that Gaussian on a page.
_BINOMIAL = np.array([1, 4, 6, 4, 1], dtype=np.float32) / 16
SMOOTHING_GAIN = float((_BINOMIAL**2).sum())  # the noise std it leaves: the kernel's L2 norm, squared for 2-D
# Strokes apart from the largest one (the bar of a 5, the dot of a broken 4) are kept when they
# lie within this fraction of the digit's size from it and hold this fraction of its ink.
NEAR = 0.35
MIN_PART = 0.04
MAX_DIGITS = 32  # digits fit=digits frames on one upload by default (the MAX_DIGITS setting)
# fit=digits looks on a larger copy than fit=digit: the gaps between a number's digits must show.
DIGITS_DETECT_SIDE = 400
MAX_BLOBS = 256  # blobs considered for digits, the largest first: a page of text is not a number
WIDE = 1.05  # a group wider than this many times its line's height holds touching digits
# A group wider than this many heights whose ink, at its thinnest in the middle, is under TOUCH of
# its usual column: two digits that touch (one digit's strokes are not that thin across).
TOUCH_WIDTH = 0.7
TOUCH = 0.2
# fit=digits looks at full detail only around the blocks of an eighth-size copy that stand out
# (REGION_MARGIN blocks wider each side), unless that is more than REGION_SHARE of the page.
REGION_MARGIN = 2
REGION_SHARE = 0.5
MAD_TO_STD = 1.4826  # a normal distribution's standard deviation per median absolute deviation
# Blobs join at their sides, not corners (SciPy's default, built once: label() rebuilds it each call).
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


class NoDigitFound(Exception):
    """Nothing on the image stands out from the paper as ink."""


class TooManyDigits(Exception):
    """More digits on the image than a request may ask for (``MAX_DIGITS``)."""


@dataclass(frozen=True)
class Box:
    """A rectangle in upload pixels: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int

    def header(self) -> str:
        return f"{self.x},{self.y},{self.width},{self.height}"


@dataclass(frozen=True)
class Framing:
    """Where the digit was found and how the model's frame maps onto the page.

    A page point (x, y), in upload pixels, lands in the model's frame at
    ((x - left) * scale_x, (y - top) * scale_y): the two differ slightly where the working copy's
    sides were rounded separately. ``paper`` and ``ink`` are the page's levels in ink space: the
    model saw (value - paper) / (ink - paper).
    """

    box: Box
    page_size: tuple[int, int]
    left: float
    top: float
    scale_x: float
    scale_y: float
    paper: float
    ink: float

    @property
    def small_on_page(self) -> bool:
        """The digit is small beside its page (a photo or scan), not an MNIST-like crop.

        MNIST's digits are 20 px tall in 28: their box spans 0.71 of the frame. ``fit=auto``
        frames a digit whose box spans under half of the page's shorter side, on an upload larger
        than a crop can be (noise can cut an MNIST digit's box below half of its 28 px).
        """
        if min(self.page_size) <= CROP_SIDE:
            return False
        return max(self.box.width, self.box.height) < AUTO_SHARE * min(self.page_size)


@dataclass(frozen=True)
class _Found:
    """A digit found on the working copy of a page."""

    bounds: tuple[float, float, float, float]  # the tight box, working pixels (x0, y0, x1, y1)
    centre: tuple[float, float]  # the ink's centre of mass, working pixels
    shading: Pixels | float  # uneven light: the paper's departure from its level (0: even)
    paper: float  # the page's paper level outside the box (a median: noise does not bias it)
    ink: float  # the ink's level in the digit's strokes (likewise)
    mean_paper: float  # the paper as area-averaged pixels see it (clipped noise raises it)
    mean_gain: float  # how far smoothed ink stands above that


@dataclass(frozen=True)
class _PaperUnder:
    """The paper's level under a page: one number for even light, else a level per pixel."""

    level: Pixels | float
    base: float  # its median
    # A much reduced copy of the page, its paper taken away: where the ink may be (``_ink_region``).
    residual: Pixels
    cell: int  # page pixels per pixel of ``residual``, across and down


def frame_digit(ink: Pixels, page_size: tuple[int, int]) -> tuple[Pixels, Framing]:
    """Find the digit on ``ink`` (a working copy of the page) and frame it as MNIST: 28x28 input.

    ``page_size`` is the upload's (width, height); ``ink`` may be a reduced copy of it.
    Raises ``NoDigitFound`` when nothing stands out as ink.
    """
    detection = _detect(ink, DETECT_SIDE)
    coarse, largest = _digit_bounds(detection.mask)  # the whole page was looked at: no window to shift
    if largest < MIN_BLOB:
        raise NoDigitFound(detection.nothing_found())
    found = _refine(ink, detection, coarse, others=())
    found = replace(found, paper=_paper_level(ink, found.bounds, fallback=detection.level))
    return _frame(ink, _clean_levels(found), page_size, others=())


def warm_up() -> None:
    """Frame a drawn digit once: SciPy is imported and the code paths run before a request needs them."""
    page = np.zeros((60, 80), dtype=np.float32)
    page[15:45, 36:42] = 1.0  # a "1"
    frame_digit(page, (80, 60))


def frame_digits(ink: Pixels, page_size: tuple[int, int], max_digits: int) -> list[tuple[Pixels, Framing]]:
    """Every digit on ``ink`` framed as MNIST, in reading order (lines top to bottom, then left to right).

    Ink blobs are grouped into digits (the strokes of one digit stacked or near, as the bar of a 5),
    and a group as wide as several digits of its line is cut where the ink is thinnest. Only the
    part of the page where ink shows on a much reduced copy is looked at closely. A page
    with one digit is framed exactly as ``frame_digit`` frames it. Raises ``NoDigitFound``, and
    ``TooManyDigits`` past ``max_digits``.
    """
    detection, boxes = find_digits(ink)
    if not boxes:
        raise NoDigitFound(detection.nothing_found())
    if len(boxes) == 1:
        return [frame_digit(ink, page_size)]
    if len(boxes) > max_digits:
        raise TooManyDigits(f"{len(boxes)} digits found on the image, the limit is {max_digits}")
    found = [_refine(ink, detection, box, others=_near(box, boxes, margin=2.0), number=True) for box in boxes]
    # One paper for the page: the median outside every digit's box.
    union = (
        min(f.bounds[0] for f in found),
        min(f.bounds[1] for f in found),
        max(f.bounds[2] for f in found),
        max(f.bounds[3] for f in found),
    )
    paper = _paper_level(ink, union, fallback=detection.level)
    framed = []
    for index, digit in enumerate(found):
        others = tuple(f.bounds for j, f in enumerate(found) if j != index)
        framed.append(_frame(ink, _clean_levels(replace(digit, paper=paper)), page_size, others))
    return framed


def find_digits(ink: Pixels) -> tuple[Detection, list[Bounds]]:
    """The digits' boxes on ``ink`` (coarse, on the detection's copy), in reading order, and the
    detection they were found on: the first half of ``frame_digits``' work."""
    detection = _detect(ink, DIGITS_DETECT_SIDE, look_where_ink_is=True)
    boxes = _digit_boxes(detection)
    if detection.partial and (not boxes or detection.reaches_window_edge(boxes)):
        # Ink too faint for the reduced copy, or going on past the window: look at the whole page.
        detection = _detect(ink, DIGITS_DETECT_SIDE)
        boxes = _digit_boxes(detection)
    return detection, boxes


def _near(box: Bounds, boxes: Sequence[Bounds], margin: float) -> tuple[Bounds, ...]:
    """The boxes other than ``box`` that come within ``margin`` of it: the only ones its work can meet."""
    x0, y0, x1, y1 = box[0] - margin, box[1] - margin, box[2] + margin, box[3] + margin
    return tuple(b for b in boxes if b is not box and b[0] < x1 and b[2] > x0 and b[1] < y1 and b[3] > y0)


def _frame(
    ink: Pixels, found: _Found, page_size: tuple[int, int], others: tuple[tuple[float, float, float, float], ...]
) -> tuple[Pixels, Framing]:
    """The digit ``found`` on ``ink`` framed as MNIST, and how the frame maps onto the page.

    ``others``: other digits' boxes (working pixels), painted over with paper where they leave this
    digit's own box, so that a neighbour's strokes do not reach into its frame.
    """
    page_width, page_height = page_size
    # Upload pixels per working pixel, for each axis: a reduced copy rounds each side on its own
    # (one factor for both put a 2000x1000 page's box 2 px past its bottom edge).
    x_up, y_up = page_width / ink.shape[1], page_height / ink.shape[0]
    x0, y0, x1, y1 = found.bounds
    scale = DIGIT_SIDE / max(x1 - x0, y1 - y0)  # model pixels per working pixel
    # Already about MNIST's size: not resampled, only moved by whole pixels. Resampling blends
    # neighbouring pixels' noise into correlated noise, which the model never saw in training.
    snapped = 1 / SNAP <= scale <= SNAP
    scale = 1.0 if snapped else scale
    # The ink's centre of mass at the frame's centre; clamped so the box stays inside the frame.
    cx, cy = found.centre
    span = SIDE / scale
    left = min(max(cx - span / 2, x1 - span), x0)
    top = min(max(cy - span / 2, y1 - span), y0)
    if snapped:
        left, top = float(round(left)), float(round(top))
        if ink.shape == (SIDE, SIDE) and max(abs(left), abs(top)) <= CENTRED:
            # An MNIST-shaped upload, centred within what noise lets the centre of mass tell:
            # left as it is (moving it by the noisy centre of mass cost 0.3 dB on noisy MNIST digits).
            left = top = 0.0
        # Paper to 0 and ink to 1, from medians: the identity for a page already at those levels,
        # so the model sees the noise it was trained on, not a stretched or shifted copy of it.
        zero, one = found.paper, found.ink
    else:
        # Reduced by area-averaging, the paper's clipped noise averages to a grey above the
        # paper: that grey is what goes to 0 (measured on the pages: docs/framing.md).
        zero, one = found.mean_paper, found.mean_paper + found.mean_gain
    # Levels are set on the 28x28 frame, not the page: resampling is linear, so it is the same,
    # at a fraction of the work. Outside the page is paper.
    region = (left, top, left + SIDE / scale, top + SIDE / scale)
    window = _window(ink, region, fill=zero)
    if not isinstance(found.shading, float):
        window -= _window(found.shading, region, fill=0.0)
    # Only the neighbours the frame reaches (a pixel more for its rounding) are painted over.
    others = _near(region, others, margin=1.0)
    if others:
        _paint_over(window, _origin(region), found.bounds, others, zero)
    raw = _resample(window, region)
    frame = (raw - zero) * (1 / max(one - zero, MIN_CONTRAST))
    # The ufuncs, not np.clip: its Python layer costs more than the clipping of 784 pixels.
    np.minimum(np.maximum(frame, 0.0, out=frame), 1.0, out=frame)
    # The box in upload pixels, on the page whatever the rounding.
    x = min(max(math.floor(x0 * x_up), 0), page_width - 1)
    y = min(max(math.floor(y0 * y_up), 0), page_height - 1)
    box = Box(
        x=x,
        y=y,
        width=min(max(1, math.ceil(x1 * x_up) - x), page_width - x),
        height=min(max(1, math.ceil(y1 * y_up) - y), page_height - y),
    )
    framing = Framing(
        box=box,
        page_size=page_size,
        left=left * x_up,
        top=top * y_up,
        scale_x=scale / x_up,
        scale_y=scale / y_up,
        paper=found.paper,
        ink=found.ink,
    )
    return frame, framing


def _origin(region: tuple[float, float, float, float]) -> tuple[int, int]:
    return math.floor(region[0]), math.floor(region[1])


def _paint_over(window: Pixels, origin: tuple[int, int], own: Bounds, others: tuple[Bounds, ...], paper: float) -> None:
    """Paint ``others`` (working pixels) with ``paper`` on ``window`` (whose corner is ``origin``),
    except inside the box ``own``: another digit's strokes do not reach into this one's frame."""
    kept = window[_slices(own, origin)].copy()
    for box in others:
        window[_slices(box, origin)] = paper
    window[_slices(own, origin)] = kept


def _slices(box: Bounds, origin: tuple[int, int]) -> tuple[slice, slice]:
    """The whole pixels ``box`` touches, as slices of an array whose corner is ``origin``."""
    ox, oy = origin
    return (
        slice(max(0, math.floor(box[1]) - oy), max(0, math.ceil(box[3]) - oy)),
        slice(max(0, math.floor(box[0]) - ox), max(0, math.ceil(box[2]) - ox)),
    )


def render_on_page(outputs: Pixels, framings: Sequence[Framing], size: tuple[int, int]) -> Pixels:
    """The model's 28x28 ``outputs`` (one per framing) drawn back onto a clean page of ``size``.

    The inverse of ``frame_digit``'s transform, at ``size`` (the upload's, or a capped copy of it);
    outside the frames the page is plain paper. The result is in ink space, at the page's levels
    (the first framing's paper, the digits' median ink).
    """
    width, height = size
    page = np.zeros((height, width), dtype=np.float32)
    for output, framing in zip(outputs, framings, strict=True):
        page_width, page_height = framing.page_size
        # Output pixel centre (X + 0.5) -> upload (X + 0.5) * page_width / width -> the model frame.
        sx = page_width / width * framing.scale_x
        sy = page_height / height * framing.scale_y
        cx, cy = -framing.left * framing.scale_x, -framing.top * framing.scale_y
        # Only the frame's footprint is drawn (a pixel wider for the interpolation's reach): a
        # number's digits each cover a small part of the page.
        x0, x1 = max(0, math.floor(-cx / sx) - 1), min(width, math.ceil((SIDE - cx) / sx) + 1)
        y0, y1 = max(0, math.floor(-cy / sy) - 1), min(height, math.ceil((SIDE - cy) / sy) + 1)
        if x1 <= x0 or y1 <= y0:
            continue
        data = (sx, 0.0, cx + sx * x0, 0.0, sy, cy + sy * y0)
        drawn = Image.fromarray(np.ascontiguousarray(output), mode="F").transform(
            (x1 - x0, y1 - y0), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR, fillcolor=0.0
        )
        np.maximum(page[y0:y1, x0:x1], np.asarray(drawn, dtype=np.float32), out=page[y0:y1, x0:x1])
    paper = framings[0].paper
    ink = float(np.median([framing.ink for framing in framings]))
    # In place: each copy of a page drawn at 2048x2048 is 16 MiB.
    page *= ink - paper
    page += paper
    return np.clip(page, 0.0, 1.0, out=page)


MIN_PAGE_SIDE = 3


@dataclass(frozen=True)
class Detection:
    """Ink found on a small copy of the page: what stands out of the paper's own noise."""

    mask: npt.NDArray[np.bool_]  # the small copy's pixels that stand out as ink
    smooth: Pixels  # the small copy, paper removed, smoothed
    reduce: float  # working pixels per small pixel
    level: float  # the paper's level on ``smooth``
    threshold: float  # what ink must exceed on ``smooth``
    base: float  # the paper's median level (area-averaged pixels)
    shading: Pixels | float  # uneven light on the working copy (0: even)
    # Where ``mask`` and ``smooth`` lie on the small copy (x0, y0, x1, y1): all of it, or only the
    # part where ink stands out on a much reduced copy (``_detect``'s ``look_where_ink_is``).
    window: tuple[int, int, int, int]
    size: tuple[int, int]  # the small copy's width and height

    @property
    def origin(self) -> tuple[int, int]:
        return self.window[0], self.window[1]

    @property
    def partial(self) -> bool:
        """Only part of the page was looked at."""
        return self.window != (0, 0, *self.size)

    def reaches_window_edge(self, boxes: Sequence[Bounds]) -> bool:
        """Some box touches an edge of the window that is not the page's: its ink may go on past it."""
        x0, y0, x1, y1 = self.window
        width, height = self.size
        return any(
            (x0 > 0 and b[0] <= x0 + 1)
            or (y0 > 0 and b[1] <= y0 + 1)
            or (x1 < width and b[2] >= x1 - 1)
            or (y1 < height and b[3] >= y1 - 1)
            for b in boxes
        )

    def nothing_found(self) -> str:
        return (
            f"nothing stands out from the paper: the strongest mark is {float(self.smooth.max()) - self.level:.3f} "
            f"above it, a digit's ink must be at least {MIN_BLOB} pixels of the {self.smooth.shape[1]}x"
            f"{self.smooth.shape[0]} copy looked at, and {self.threshold - self.level:.3f} ({INK_SPREADS:g} times "
            f"the paper's noise after smoothing, and at least {MIN_CONTRAST})"
        )


def _detect(ink: Pixels, side: int, look_where_ink_is: bool = False) -> Detection:
    """Ink on a copy of ``ink`` whose longer side is at most ``side``: smoothed and thresholded.

    ``look_where_ink_is``: only around what stands out on the paper's much reduced copy, when that
    is a small part of the page (a number on a sheet): the work at full detail is done there alone.
    """
    height, width = ink.shape
    if min(height, width) < MIN_PAGE_SIDE:  # no room for a digit, nor for measuring the paper's noise
        raise NoDigitFound(f"the image is {width}x{height} pixels, too small to find a digit on")
    # Look on a small copy (area-averaged, which already removes most of the noise), then refine
    # the box on the working copy. Both costs stay small whatever the upload's size.
    reduce = max(1.0, max(width, height) / side)
    small = ink if reduce == 1.0 else _resize(ink, (max(1, round(width / reduce)), max(1, round(height / reduce))))
    paper_under = _paper_under(small)
    small_height, small_width = small.shape
    window = _ink_region(paper_under, small.shape) if look_where_ink_is else None
    x0, y0, x1, y1 = window or (0, 0, small_width, small_height)
    smooth = _smooth(small[y0:y1, x0:x1] - _crop(paper_under.level, y0, y1, x0, x1))
    # Ink is what stands far out of the paper's own noise. A threshold between two classes (Otsu)
    # would split the noise instead when the digit is a small part of the page. The noise is
    # measured on neighbour differences, which the ink (smooth at that scale) hardly touches, and
    # scaled by what the smoothing leaves of it. The mean absolute difference, not the median:
    # noise clipped at white or black leaves many equal neighbours, hidden from a median.
    # A window is mostly ink: there the paper's level comes from the reduced copy's blocks, means
    # of the paper as the smoothing's are, most of them paper (a sample of the page otherwise).
    level = quantile(smooth[::2, ::2] if window is None else paper_under.residual, 0.5)
    # Every eighth column (and row) is enough for a mean.
    mean_difference = (np.abs(np.diff(small[:, ::8], axis=0)).mean() + np.abs(np.diff(small[::8], axis=1)).mean()) / 2
    spread = float(mean_difference) * math.sqrt(math.pi) / 2 * SMOOTHING_GAIN
    threshold = level + max(INK_SPREADS * spread, MIN_CONTRAST)
    shading: Pixels | float = 0.0
    if not isinstance(paper_under.level, float):
        shading = paper_under.level - paper_under.base
        shading = shading if reduce == 1.0 else _resize(shading, (width, height))
    return Detection(
        mask=smooth > threshold,
        smooth=smooth,
        reduce=reduce,
        level=level,
        threshold=threshold,
        base=paper_under.base,
        shading=shading,
        window=(x0, y0, x1, y1),
        size=(small_width, small_height),
    )


def _ink_region(paper_under: _PaperUnder, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The part of the page (x0, y0, x1, y1) around the blocks of ``paper_under.residual`` that stand
    out of the paper, ``REGION_MARGIN`` blocks wider on each side; None where that is most of it."""
    residual, cell = paper_under.residual, paper_under.cell
    centre = quantile(residual, 0.5)
    # The blocks' own noise, from their median absolute deviation (the ink's blocks are few).
    spread = quantile(np.abs(residual - centre), 0.5) * MAD_TO_STD
    blocks = residual > centre + max(INK_SPREADS * spread, MIN_CONTRAST / 2)
    rows, cols = np.nonzero(blocks.any(axis=1))[0], np.nonzero(blocks.any(axis=0))[0]
    if not rows.size:
        return None
    height, width = shape
    x0, y0 = max(0, (int(cols[0]) - REGION_MARGIN) * cell), max(0, (int(rows[0]) - REGION_MARGIN) * cell)
    x1 = min(width, (int(cols[-1]) + 1 + REGION_MARGIN) * cell)
    y1 = min(height, (int(rows[-1]) + 1 + REGION_MARGIN) * cell)
    if (x1 - x0) * (y1 - y0) > REGION_SHARE * width * height:
        return None
    return x0, y0, x1, y1


def _refine(
    ink: Pixels,
    detection: Detection,
    coarse: tuple[float, float, float, float],
    others: tuple[tuple[float, float, float, float], ...],
    number: bool = False,
) -> _Found:
    """The digit in ``coarse`` (small pixels) measured on the working copy: its tight box, centre
    and levels. ``others``: other digits' coarse boxes, left out where they reach into this one's;
    ``number``: one digit of several (``frame_digits``)."""
    from scipy import ndimage  # imported on first use: see the note on imports above

    height, width = ink.shape
    reduce, base = detection.reduce, detection.base
    # Refine on the working copy, inside the coarse box grown by two small pixels.
    margin = 2 * reduce
    cx0, cy0 = max(0, math.floor(coarse[0] * reduce - margin)), max(0, math.floor(coarse[1] * reduce - margin))
    cx1, cy1 = min(width, math.ceil(coarse[2] * reduce + margin)), min(height, math.ceil(coarse[3] * reduce + margin))
    wx0, wy0, wx1, wy1 = detection.window
    if reduce == 1.0 and number and wx0 <= cx0 and wy0 <= cy0 and cx1 <= wx1 and cy1 <= wy1:
        # The detection looked at the working copy itself: its smoothing serves (a number's digits
        # would each smooth their region again).
        region_smooth = detection.smooth[cy0 - wy0 : cy1 - wy0, cx0 - wx0 : cx1 - wx0]
        if others:
            region_smooth = region_smooth.copy()  # painted over below
    else:
        region = ink[cy0:cy1, cx0:cx1] - _crop(detection.shading, cy0, cy1, cx0, cx1) - base
        region_smooth = ndimage.gaussian_filter(region, sigma=max(0.7, reduce / 2), mode="nearest")
    own = _scaled(coarse, reduce)
    if others:
        # Where another digit's box reaches into this region, outside this one's: paper.
        _paint_over(region_smooth, (cx0, cy0), own, tuple(_scaled(box, reduce) for box in others), 0.0)
    # The ink as the working copy sees it (strokes less averaged with paper than on the small
    # copy); the box reaches its faint edges, as MNIST's boxes do.
    gain = max(quantile(region_smooth, 0.98), detection.threshold - detection.level)
    inked = region_smooth > gain * EDGE
    # One digit of a number already has its strokes' box (``coarse``): only its faint edges are
    # left to reach, and labelling the region again would cost more than the rest of the refinement.
    fine = _grown(inked, _slices(own, (cx0, cy0))) if number else _digit_bounds(inked)[0]
    bounds = (cx0 + fine[0], cy0 + fine[1], cx0 + fine[2], cy0 + fine[3])
    # The centre of mass of the smoothed ink above the edge: noise, spread evenly over the box,
    # would pull a centre of the raw pixels towards the box's middle.
    weights = np.where(inked, region_smooth, 0.0)
    columns = weights.sum(axis=0)
    total = float(columns.sum())
    cx = float(columns @ np.arange(weights.shape[1])) / total
    cy = float(weights.sum(axis=1) @ np.arange(weights.shape[0])) / total
    centre = (cx0 + cx + 0.5, cy0 + cy + 0.5)
    # The level to draw the answer's ink with: a median of the pixels themselves, which noise
    # clipped at black or white does not bias (means, and so everything smoothed, it does).
    ink_level = quantile(ink[cy0:cy1, cx0:cx1][region_smooth > gain * 0.75], 0.5)
    return _Found(
        bounds=bounds,
        centre=centre,
        shading=detection.shading,
        paper=base,  # the page's own median is set by the caller (outside every digit's box)
        ink=ink_level,
        mean_paper=base,
        mean_gain=gain,
    )


def _grown(inked: npt.NDArray[np.bool_], core: tuple[slice, slice]) -> tuple[float, float, float, float]:
    """The box of ``inked`` inside ``core``, grown line by line on each side while the next line
    holds ink touching the edge's own: the faint edges of strokes, not specks of noise beside them."""
    rows, cols = core
    inside = inked[rows, cols]
    ys, xs = np.nonzero(inside.any(axis=1))[0], np.nonzero(inside.any(axis=0))[0]
    if not ys.size:
        return float(cols.start), float(rows.start), float(cols.stop), float(rows.stop)
    y0, y1 = rows.start + int(ys[0]), rows.start + int(ys[-1]) + 1
    x0, x1 = cols.start + int(xs[0]), cols.start + int(xs[-1]) + 1
    height, width = inked.shape
    edge = inked[y0, x0:x1]
    while y0 > 0 and (edge := edge & inked[y0 - 1, x0:x1]).any():
        y0 -= 1
    edge = inked[y1 - 1, x0:x1]
    while y1 < height and (edge := edge & inked[y1, x0:x1]).any():
        y1 += 1
    edge = inked[y0:y1, x0]
    while x0 > 0 and (edge := edge & inked[y0:y1, x0 - 1]).any():
        x0 -= 1
    edge = inked[y0:y1, x1 - 1]
    while x1 < width and (edge := edge & inked[y0:y1, x1]).any():
        x1 += 1
    return float(x0), float(y0), float(x1), float(y1)


def _scaled(box: Bounds, factor: float) -> Bounds:
    return box[0] * factor, box[1] * factor, box[2] * factor, box[3] * factor


def _clean_levels(found: _Found) -> _Found:
    """White paper and black ink as far as noise lets a median tell (noise clipped at white puts half
    the paper pixels at exactly white, and any ink sample tips the median off it)."""
    if found.paper < CLEAN_LEVELS and found.ink > 1 - CLEAN_LEVELS:
        return replace(found, paper=0.0, ink=1.0)
    return found


def _paper_level(ink: Pixels, bounds: tuple[float, float, float, float], fallback: float) -> float:
    """The median of the page outside the digit's box, from a sample of its pixels."""
    step = max(1, round(math.sqrt(ink.size / 5_000)))
    sample = ink[::step, ::step]
    # Sample row r is page row r * step: those before the box are r < y0 / step, and so on.
    x0, y0, x1, y1 = (math.ceil(edge / step) for edge in bounds)
    outside = np.concatenate(
        [sample[:y0].ravel(), sample[y1:].ravel(), sample[y0:y1, :x0].ravel(), sample[y0:y1, x1:].ravel()]
    )
    return quantile(outside, 0.5) if outside.size else fallback


def quantile(values: Pixels, q: float) -> float:
    """The value at rank ``q`` of ``values`` (nearest rank).

    One partition: ``np.median`` and ``np.percentile`` cost several times more in their Python
    layers than in the partition itself at these sizes, and framing makes five such calls.
    """
    flat = values.ravel()
    rank = round(q * (flat.size - 1))
    return float(np.partition(flat, rank)[rank])


def _quantiles(values: Pixels, qs: tuple[float, ...]) -> tuple[float, ...]:
    """Several nearest-rank quantiles of ``values`` from one sort."""
    ordered = np.sort(values, axis=None)
    return tuple(float(ordered[round(q * (ordered.size - 1))]) for q in qs)


def _crop(values: Pixels | float, y0: int, y1: int, x0: int, x1: int) -> Pixels | float:
    return values if isinstance(values, float) else values[y0:y1, x0:x1]


def _smooth(values: Pixels) -> Pixels:
    """``values`` blurred by the binomial kernel on each axis, edges repeated (SciPy's "nearest")."""
    height, width = values.shape
    padded = np.empty((height + 4, width + 4), dtype=np.float32)
    padded[2:-2, 2:-2] = values
    padded[:2, 2:-2], padded[-2:, 2:-2] = values[0], values[-1]
    padded[:, :2], padded[:, -2:] = padded[:, 2:3], padded[:, -3:-2]
    k0, k1, k2 = (float(v) for v in _BINOMIAL[:3])
    rows = (padded[:, :-4] + padded[:, 4:]) * k0
    rows += (padded[:, 1:-3] + padded[:, 3:-1]) * k1
    rows += padded[:, 2:-2] * k2
    smooth = (rows[:-4] + rows[4:]) * k0
    smooth += (rows[1:-3] + rows[3:-1]) * k1
    smooth += rows[2:-2] * k2
    return smooth.astype(np.float32, copy=False)  # float32 already (NumPy keeps it for Python floats)


def _resize(values: Pixels, size: tuple[int, int]) -> Pixels:
    """Area-averaged when reducing, bilinear when enlarging (Pillow, float pixels)."""
    reducing = size[0] < values.shape[1]
    resample = Image.Resampling.BOX if reducing else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(values, mode="F").resize(size, resample), dtype=np.float32)


def _paper_under(small: Pixels) -> _PaperUnder:
    """The paper's level under the page's pixels: the page without its ink.

    A grey opening wider than a stroke removes the (light, in ink space) strokes; a box filter
    smooths what is left. Done on a copy an eighth the size (the light varies slowly): a
    64th of the work. Enlarged back to ``small``'s size only where the light is uneven
    (a shadow, a gradient spanning more than a faint stroke would); even paper is one level.
    """
    from scipy import ndimage  # imported on first use: see the note on imports above

    height, width = small.shape
    # An eighth where that leaves 8 pixels a side, else a quarter: the opening's narrowest window
    # (5 pixels of ``tiny``) is then 40 of ``small``'s, wider than a number's digits on a page
    # cropped close to them (20 took the thick body of a digit for paper and faded it).
    cell = 8 if min(height, width) >= 64 else 4 if min(height, width) >= 32 else 1
    # Pillow's integer reduction (blocks of ``cell`` pixels averaged; the last ones partial).
    # A writable copy: SciPy copies a read-only input (Pillow's) before filtering it.
    tiny = small if cell == 1 else np.array(Image.fromarray(small, mode="F").reduce(cell), dtype=np.float32)
    side = max(5, round(max(tiny.shape) / 16) | 1)
    opened = ndimage.grey_opening(tiny, size=(side, side), mode="nearest")
    smoothed = np.asarray(ndimage.uniform_filter(opened, size=side, mode="nearest"), dtype=np.float32)
    low, base, high = _quantiles(smoothed, (0.05, 0.5, 0.95))
    if high - low <= MIN_CONTRAST:
        return _PaperUnder(level=base, base=base, residual=tiny - base, cell=cell)
    level = smoothed if smoothed.shape == small.shape else _resize(smoothed, (width, height))
    return _PaperUnder(level=level, base=base, residual=tiny - smoothed, cell=cell)


def _digit_bounds(mask: npt.NDArray[np.bool_]) -> tuple[tuple[float, float, float, float], int]:
    """Bounds (x0, y0, x1, y1) of the largest blob in ``mask`` and of the blobs near it; its size."""
    from scipy import ndimage  # imported on first use: see the note on imports above

    labels, count = ndimage.label(mask, _CROSS)
    if count == 0:
        return (0.0, 0.0, float(mask.shape[1]), float(mask.shape[0])), 0
    sizes = _sizes(labels, mask, count)
    slices = ndimage.find_objects(labels)
    largest = int(np.argmax(sizes))
    y, x = slices[largest]
    x0, y0, x1, y1 = x.start, y.start, x.stop, y.stop
    reach = NEAR * max(x1 - x0, y1 - y0)
    for index, (ys, xs) in enumerate(slices):
        if index == largest or sizes[index] < MIN_PART * sizes[largest]:
            continue
        gap_x = max(0, xs.start - x1, x0 - xs.stop)
        gap_y = max(0, ys.start - y1, y0 - ys.stop)
        if max(gap_x, gap_y) <= reach:
            x0, y0, x1, y1 = min(x0, xs.start), min(y0, ys.start), max(x1, xs.stop), max(y1, ys.stop)
    return (float(x0), float(y0), float(x1), float(y1)), int(sizes[largest])


def _sizes(labels: npt.NDArray[np.int32], mask: npt.NDArray[np.bool_], count: int) -> npt.NDArray[np.intp]:
    """Pixels in each of ``count`` blobs: counted over the ink alone, a small part of the page."""
    return np.bincount(labels[mask], minlength=count + 1)[1:]


def _digit_boxes(detection: Detection) -> list[Bounds]:
    """The digits' boxes on the detection's copy, in reading order: its ink blobs grouped into
    digits, and a group as wide as several digits cut where the ink is thinnest."""
    from scipy import ndimage  # imported on first use: see the note on imports above

    labels, count = ndimage.label(detection.mask, _CROSS)
    if count == 0:
        return []
    sizes = _sizes(labels, detection.mask, count)
    if int(sizes.max()) < MIN_BLOB:
        return []
    # Specks of noise past the threshold are small beside any stroke.
    kept = [i for i in np.argsort(sizes)[::-1][:MAX_BLOBS] if sizes[i] >= max(MIN_BLOB, MIN_PART * sizes.max())]
    slices = ndimage.find_objects(labels)
    pieces = [(slices[i][1].start, slices[i][0].start, slices[i][1].stop, slices[i][0].stop) for i in kept]
    groups = _group_strokes(pieces)
    boxes: list[Bounds] = []  # on the detection's window
    for line in _lines([_union([pieces[i] for i in g]) for g in groups], groups):
        heights = sorted(box[3] - box[1] for box, _ in line)
        height = heights[len(heights) // 2]
        for box, members in line:
            if box[2] - box[0] > TOUCH_WIDTH * height:  # MNIST's digits are at most as wide as tall
                ids = np.array([kept[i] + 1 for i in members])
                boxes.extend(_cut(detection, labels, ids, box, max(height, box[3] - box[1])))
            else:
                boxes.append((float(box[0]), float(box[1]), float(box[2]), float(box[3])))
    ox, oy = detection.origin
    return [(x0 + ox, y0 + oy, x1 + ox, y1 + oy) for x0, y0, x1, y1 in boxes]


def _group_strokes(pieces: list[tuple[int, int, int, int]]) -> list[list[int]]:
    """Pieces that belong to one digit, joined: stacked (the bar of a 5 above its body), or a short
    piece beside a taller one within ``NEAR`` of its height (the broken stroke of a 4)."""
    parent = list(range(len(pieces)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, (ax0, ay0, ax1, ay1) in enumerate(pieces):
        for b in range(a + 1, len(pieces)):
            bx0, by0, bx1, by1 = pieces[b]
            overlap_x = min(ax1, bx1) - max(ax0, bx0)
            gap_x, gap_y = max(0, bx0 - ax1, ax0 - bx1), max(0, by0 - ay1, ay0 - by1)
            tall = max(ay1 - ay0, by1 - by0)
            stacked = overlap_x >= 0.5 * min(ax1 - ax0, bx1 - bx0) and gap_y <= NEAR * tall
            short = min(ay1 - ay0, by1 - by0) < 0.5 * tall and max(gap_x, gap_y) <= NEAR * tall
            if stacked or short:
                parent[root(a)] = root(b)
    groups: dict[int, list[int]] = {}
    for i in range(len(pieces)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _union(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def _lines(
    boxes: list[tuple[int, int, int, int]], groups: list[list[int]]
) -> list[list[tuple[tuple[int, int, int, int], list[int]]]]:
    """Groups in reading order: lines top to bottom (a group joins a line it overlaps by half its
    height), each left to right."""
    lines: list[list[tuple[tuple[int, int, int, int], list[int]]]] = []
    for box, members in sorted(zip(boxes, groups, strict=True), key=lambda item: item[0][1]):
        for line in lines:
            top, bottom = min(b[1] for b, _ in line), max(b[3] for b, _ in line)
            if min(bottom, box[3]) - max(top, box[1]) >= 0.5 * min(box[3] - box[1], bottom - top):
                line.append((box, members))
                break
        else:
            lines.append([(box, members)])
    return [sorted(line, key=lambda item: item[0][0]) for line in lines]


def _cut(
    detection: Detection, labels: npt.NDArray[np.int32], ids: npt.NDArray[np.int64], box: Bounds, height: float
) -> list[Bounds]:
    """A group cut into the digits it holds, in ``height``-tall lines: cut in two where the ink is
    thinnest in its middle half while it is wider than a digit can be (or while that thinnest place
    is a mere touch), each part again; each part's box is its own ink's."""
    x0, y0, x1, y1 = (round(v) for v in box)
    window = labels[y0:y1, x0:x1]
    mask = window == ids[0] if len(ids) == 1 else np.isin(window, ids)
    profile = (detection.smooth[y0:y1, x0:x1] * mask).sum(axis=0)
    inked = profile[profile > 0]
    typical = quantile(inked, 0.5) if inked.size else 0.0

    def parts(start: int, stop: int) -> list[tuple[int, int]]:
        width = stop - start
        if width <= TOUCH_WIDTH * height:
            return [(start, stop)]
        low, high = start + width // 4, stop - width // 4
        cut = low + int(np.argmin(profile[low:high])) if high > low else start + width // 2
        touch = profile[cut] <= TOUCH * typical
        if width <= WIDE * height and not touch:
            return [(start, stop)]
        # Each side must stand as tall as a digit: a 9's loop beside its tail is not one.
        if min(_ink_height(mask[:, start:cut]), _ink_height(mask[:, cut:stop])) < 0.5 * height:
            return [(start, stop)]
        return parts(start, cut) + parts(cut, stop)

    found: list[Bounds] = []
    for start, stop in parts(0, x1 - x0):
        rows = np.nonzero(mask[:, start:stop].any(axis=1))[0]
        if rows.size:
            found.append((float(x0 + start), float(y0 + rows[0]), float(x0 + stop), float(y0 + rows[-1] + 1)))
    return found


def _ink_height(mask: npt.NDArray[np.bool_]) -> int:
    rows = np.nonzero(mask.any(axis=1))[0]
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


def _window(values: Pixels, region: Bounds, fill: float) -> Pixels:
    """The whole pixels of ``values`` under ``region`` (x0, y0, x1, y1), from its floor corner to its
    ceiling one; ``fill`` where it reaches past the edges."""
    height, width = values.shape
    ix0, iy0 = _origin(region)
    ix1, iy1 = math.ceil(region[2]), math.ceil(region[3])
    window = np.full((iy1 - iy0, ix1 - ix0), fill, dtype=np.float32)
    sx0, sy0 = max(ix0, 0), max(iy0, 0)
    sx1, sy1 = min(ix1, width), min(iy1, height)
    if sx1 > sx0 and sy1 > sy0:
        window[sy0 - iy0 : sy1 - iy0, sx0 - ix0 : sx1 - ix0] = values[sy0:sy1, sx0:sx1]
    return window


def _resample(window: Pixels, region: Bounds) -> Pixels:
    """``window`` (``_window``'s pixels under ``region``) resampled to 28x28.

    Reducing averages areas (Pillow's BOX filter), which is itself a good denoiser for a large
    digit; enlarging interpolates.
    """
    x0, y0, x1, y1 = region
    ix0, iy0 = _origin(region)
    if window.shape == (SIDE, SIDE) and (x0, y0) == (ix0, iy0):
        return window  # whole pixels: nothing to resample
    reducing = (x1 - x0) >= SIDE
    resample = Image.Resampling.BOX if reducing else Image.Resampling.BILINEAR
    image = Image.fromarray(window, mode="F").resize(
        (SIDE, SIDE), resample, box=(x0 - ix0, y0 - iy0, x1 - ix0, y1 - iy0)
    )
    return np.asarray(image, dtype=np.float32)
