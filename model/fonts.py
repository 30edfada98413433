"""Font families for the digit scorer's printed glyphs, split so that test families are never seen.

Fonts come from matplotlib's bundled set (the same on every machine) and the system's font
directories: the committed scorer used Debian's fonts-allerta fonts-anonymous-pro fonts-arapey
fonts-averia-gwf fonts-bebas-neue fonts-beteckna fonts-breip fonts-cabin fonts-cabinsketch
fonts-cantarell fonts-cherrybomb fonts-comfortaa fonts-comic-neue fonts-courier-prime
fonts-crosextra-caladea fonts-crosextra-carlito fonts-dejavu-core fonts-dejavu-extra
fonts-dkg-handwriting fonts-ebgaramond fonts-freefont-ttf fonts-gfs-didot fonts-hack
fonts-inconsolata fonts-isabella fonts-lato fonts-liberation fonts-liberation2 fonts-linuxlibertine
fonts-noto-mono fonts-oflb-asana-math fonts-open-sans fonts-roboto-unhinted fonts-urw-base35 (apt-get install them to
retrain it the same way; without them the splits hold matplotlib's designs only). Training on 67
more packages' designs did not flag more letters (docs/scorer-designs.json lists them).

Files are grouped into *designs*: every font whose family name starts with the same word (DejaVu
Sans, Serif and Mono are one design; so are the metric clones of the PostScript core fonts,
whatever their vendor), and each design goes whole to one split by a hash of its name, so no
glyph of a test design is ever seen in training or when the threshold is chosen.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SPLITS = ("train", "validation", "test")
SYSTEM_FONT_DIRS = (Path("/usr/share/fonts"),)
# Families that are one design under several names: metric clones of the PostScript core fonts
# (Helvetica, Times, Courier) from any vendor, URW's other base-35 clones, Computer Modern's cuts;
# otherwise a "held-out" family could be a renamed training one.
_ALIASES = {
    **dict.fromkeys(
        ("liberation", "nimbus", "freemono", "freesans", "freeserif", "courier", "arimo", "cousine", "tinos"),
        "core fonts",
    ),
    **dict.fromkeys(("c", "p", "z", "urw"), "urw base35"),
    **dict.fromkeys(("cmb", "cmr", "cmss", "cmtt", "cmti", "cmmi"), "computer modern"),
}
_PREFIXES = ("beteckna", "cabin", "ocr", "opendyslexic", "oxygen", "stix")  # one design under several names
# Fonts whose glyphs are not plain characters: keycaps in boxes, initials, symbols and dingbats in
# the place of letters and digits, a font of placeholder boxes.
_NOT_PLAIN = re.compile(r"keyboard|initials|symbol|dingbat|last resort|^d050000l$|^cmsy|^cmex", re.IGNORECASE)
# The hash's salt: the first that puts matplotlib's three designs (Computer Modern, DejaVu, STIX)
# in three different splits, so that every machine holds a design out for validation and for test.
_SALT = "7:"
_DIGITS = "0123456789"
_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz"


@dataclass(frozen=True)
class Design:
    """One font design: its name, the split it belongs to and its font files (every weight and style)."""

    name: str
    split: str
    files: tuple[str, ...]


def design_name(family: str) -> str:
    """The design a family belongs to: its first word (``Open Sans`` -> ``open``), aliases as one."""
    word = re.sub(r"\d+$", "", family.split()[0].lower()) if family.split() else family
    prefix = next((p for p in _PREFIXES if word.startswith(p)), None)
    return prefix or _ALIASES.get(word, word)


def split_of(design: str) -> str:
    """train (60 %), validation (20 %) or test (20 %), from a hash of the design's name: stable anywhere."""
    bucket = int(hashlib.sha256((_SALT + design).encode()).hexdigest(), 16) % 10
    return "train" if bucket < 6 else "validation" if bucket < 8 else "test"


def _bundled_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _renders_plain_characters(font: ImageFont.FreeTypeFont) -> bool:
    """Every digit and most letters drawn, each unlike the font's missing-glyph box (a symbol font fails)."""

    def pixels(char: str) -> bytes:
        canvas = Image.new("L", (96, 96), 0)
        ImageDraw.Draw(canvas).text((48, 48), char, fill=255, font=font, anchor="mm")
        return canvas.tobytes()

    blank, missing = bytes(96 * 96), pixels("\U0010fffd")

    def drawn(char: str) -> bool:
        image = pixels(char)
        return image not in (blank, missing)

    return all(drawn(c) for c in _DIGITS) and sum(drawn(c) for c in _LETTERS) >= 0.9 * len(_LETTERS)


@cache
def designs(bundled_only: bool = False) -> tuple[Design, ...]:
    """Every usable design found on this machine (or in matplotlib only), sorted by name."""
    directories = [_bundled_dir()] + ([] if bundled_only else [d for d in SYSTEM_FONT_DIRS if d.is_dir()])
    files: dict[str, list[str]] = defaultdict(list)
    for directory in directories:
        for path in sorted(p for p in directory.rglob("*") if p.suffix.lower() in (".ttf", ".otf")):
            try:
                font = ImageFont.truetype(str(path), 48)
            except OSError:
                continue  # a file FreeType cannot open is not a font here
            family = font.getname()[0] or path.stem
            if _NOT_PLAIN.search(family) or not _renders_plain_characters(font):
                continue
            files[design_name(family)].append(str(path))
    return tuple(Design(name, split_of(name), tuple(paths)) for name, paths in sorted(files.items()))


def split_designs(split: str, bundled_only: bool = False) -> tuple[Design, ...]:
    """The designs of one split: never empty, since matplotlib's own three fall in three splits."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {SPLITS}")
    return tuple(d for d in designs(bundled_only) if d.split == split)


@cache
def font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def random_font(chosen: tuple[Design, ...], rng: np.random.Generator, size: int) -> tuple[str, ImageFont.FreeTypeFont]:
    """A design (uniformly, so large families do not dominate), then one of its files: (design, font)."""
    design = chosen[int(rng.integers(len(chosen)))]
    return design.name, font(design.files[int(rng.integers(len(design.files)))], size)


def describe(bundled_only: bool = False) -> dict[str, list[str]]:
    """Design names per split, for a run's record."""
    return {split: [d.name for d in designs(bundled_only) if d.split == split] for split in SPLITS}


if __name__ == "__main__":
    for split, names in describe().items():
        print(f"{split} ({len(names)}): {', '.join(names)}")
    print(f"matplotlib only: {describe(bundled_only=True)}")
