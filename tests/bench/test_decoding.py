"""bench/decoding.py: what the decoding budget charges covers what decoding really holds."""

from __future__ import annotations

import sys

import pytest

from bench.decoding import measure

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads the peak from /proc/self/status")


def test_the_charge_covers_the_peak_of_every_kind_of_upload() -> None:
    # 3000x3000 (9 MP): large enough that a full-size copy shows (9 MiB per byte a pixel).
    rows = measure(3000)
    for row in rows:
        assert row["peak_mib"] <= row["charged_mib"], row
    # The measurement sees decoding at all: a 9 MP RGBA image holds 4 bytes a pixel once decoded.
    rgba = next(row for row in rows if row["case"] == "RGBA PNG")
    assert rgba["peak_mib"] >= 9e6 * 4 / 2**20
