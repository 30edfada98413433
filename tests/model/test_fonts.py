"""model/fonts.py: designs, their splits, and what counts as a usable font."""

from __future__ import annotations

import numpy as np
import pytest

from model.fonts import SPLITS, design_name, designs, random_font, split_designs, split_of


@pytest.mark.parametrize(
    ("family", "design"),
    [
        ("DejaVu Sans Mono", "dejavu"),
        ("DejaVu Serif", "dejavu"),
        ("BetecknaGSCondensed", "beteckna"),
        ("Liberation Sans", "core fonts"),
        ("Nimbus Roman", "core fonts"),
        ("FreeSerif", "core fonts"),
        ("C059", "urw base35"),
        ("cmr10", "computer modern"),
        ("cmtt10", "computer modern"),
        ("STIXGeneral", "stix"),
        ("Open Sans Condensed", "open"),
    ],
)
def test_families_of_one_design_share_its_name(family: str, design: str) -> None:
    assert design_name(family) == design


def test_every_machine_holds_a_design_out_for_validation_and_test() -> None:
    bundled = {d.name: d.split for d in designs(bundled_only=True)}
    assert bundled == {"computer modern": "train", "dejavu": "validation", "stix": "test"}
    for split in SPLITS:
        assert split_designs(split, bundled_only=True)


def test_splits_are_disjoint_and_every_design_is_in_one() -> None:
    found = designs()
    names = [d.name for d in found]
    assert len(names) == len(set(names))
    by_split = [{d.name for d in split_designs(split)} for split in SPLITS]
    assert set().union(*by_split) == set(names)
    assert sum(len(s) for s in by_split) == len(names)
    assert all(d.split == split_of(d.name) for d in found)


def test_symbol_fonts_are_not_designs() -> None:
    names = {d.name for d in designs()}
    files = [f for d in designs() for f in d.files]
    assert not any(name.startswith(("cmsy", "cmex")) for name in names)
    assert not any("cmex10" in f or "cmsy10" in f for f in files)


def test_random_font_draws_from_the_given_designs_only() -> None:
    chosen = split_designs("test", bundled_only=True)
    rng = np.random.default_rng(0)
    drawn = {random_font(chosen, rng, 30)[0] for _ in range(20)}
    assert drawn == {d.name for d in chosen}


def test_an_unknown_split_is_named() -> None:
    with pytest.raises(ValueError, match="'holdout'"):
        split_designs("holdout")
