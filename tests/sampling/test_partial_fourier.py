"""Tests of partial-Fourier phase-encode patterns, alone and combined with undersampling."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.data import RawData, RawHeader
from hifield.errors import ConfigError
from hifield.sampling import undersample
from hifield.sampling.partial_fourier import partial_fourier_lines, partial_fourier_window


@pytest.mark.parametrize("n_lines", [128, 256, 320])
@pytest.mark.parametrize("fraction", [5 / 8, 6 / 8, 7 / 8])
@pytest.mark.parametrize("accel", [1.0, 2.0, 3.0])
def test_effective_acceleration_within_two_percent(n_lines: int, fraction: float, accel: float) -> None:
    p = partial_fourier_lines(n_lines, fraction=fraction, acceleration=accel, n_calibration=16, seed=2)
    expected = accel / fraction
    assert abs(p.acceleration - expected) / expected < 0.02


def test_window_is_asymmetric_and_centre_sampled() -> None:
    p = partial_fourier_lines(256, fraction=5 / 8, acceleration=1.0, kind="full")
    lines = np.flatnonzero(p.mask[0, :, 0])
    assert lines[0] == 256 - 160 and lines[-1] == 255 and lines.size == 160
    assert p.mask[0, 128 - 8 : 128 + 8, 0].all()
    low = partial_fourier_lines(256, fraction=5 / 8, kind="full", side="low")
    np.testing.assert_array_equal(np.flatnonzero(low.mask[0, :, 0]), np.arange(160))
    assert low.order[0] == 159  # the low side starts at its far edge, coming down through the centre


def test_calibration_lines_and_equispaced_spacing() -> None:
    p = partial_fourier_lines(256, fraction=6 / 8, acceleration=3, kind="equispaced", n_calibration=12)
    lines = np.flatnonzero(p.mask[0, :, 0])
    assert p.mask[0, 122:134, 0].all() and p.calibration_lines == 12
    outside = lines[(lines < 122) | (lines >= 134)]
    assert np.all((outside - 128) % 3 == 0)
    assert p.name == "partial-fourier+equispaced"


def test_same_seed_same_pattern() -> None:
    a = partial_fourier_lines(192, fraction=5 / 8, acceleration=2, seed=4)
    b = partial_fourier_lines(192, fraction=5 / 8, acceleration=2, seed=4)
    c = partial_fourier_lines(192, fraction=5 / 8, acceleration=2, seed=5)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert not np.array_equal(a.mask, c.mask)


def test_undersample_scan_time() -> None:
    n = 64
    rng = np.random.default_rng(0)
    k = (rng.standard_normal((2, 1, n, n)) + 1j * rng.standard_normal((2, 1, n, n))).astype(np.complex64)
    header = RawHeader(
        b0_t=3.0,
        fov_m=(0.005, 0.2, 0.2),
        matrix=(1, n, n),
        te_s=0.004,
        tr_s=0.01,
        flip_angle_rad=0.3,
        scan_time_s=n * 0.01,
        scan_time_full_s=n * 0.01,
    )
    raw = RawData(kspace=k, header=header)
    p = partial_fourier_lines(n, fraction=5 / 8, acceleration=2, n_calibration=8, seed=0)
    out = undersample(raw, p)
    assert out.header.scan_time_s == pytest.approx(raw.header.scan_time_s * p.n_acquired / n)
    assert np.all(out.kspace[..., : n - 40, :] == 0)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"fraction": 0.4}, "fraction must be in"),
        ({"fraction": 1.2}, "fraction must be in"),
        ({"fraction": 0.5, "n_calibration": 8}, "does not fit the 0.5 partial-Fourier window"),
        ({"acceleration": 0.5}, "acceleration must be a number >= 1"),
        ({"acceleration": 30, "n_calibration": 24}, "fewer than the 24 calibration lines"),
        ({"kind": "spiral"}, "unknown partial-Fourier line choice"),
        ({"kind": "full", "acceleration": 2}, "takes every window line"),
    ],
)
def test_bad_input(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        partial_fourier_lines(128, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_window_size() -> None:
    assert partial_fourier_window(100, 0.5).size == 50
    assert partial_fourier_window(101, 0.5).size == 51  # always reaches the centre line 50
    assert partial_fourier_window(64, 1.0).size == 64
