"""Tests of CAIPIRINHA shifted-lattice sampling: alias positions against the analytic reciprocal lattice."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hifield.errors import ConfigError
from hifield.sampling.caipi import alias_positions, caipi_lattice, caipirinha


@pytest.mark.parametrize(("ry", "rz", "shift"), [(2, 2, 0), (2, 2, 1), (3, 1, 1), (3, 2, 1), (4, 2, 2), (2, 3, 1)])
def test_psf_peaks_at_analytic_alias_positions(ry: int, rz: int, shift: int) -> None:
    shape = (48, 48)
    p = caipirinha(shape, ry=ry, rz=rz, shift=shift, calibration=(0, 0))
    assert p.acceleration == pytest.approx(ry * rz)
    psf = p.psf()
    peaks = {(int(z), int(y)) for z, y in np.argwhere(psf > 0.5)}
    assert peaks == alias_positions(ry, rz, shift, shape)
    assert len(peaks) == ry * rz
    np.testing.assert_allclose(psf[psf > 0.5], 1.0, atol=1e-9)
    assert p.psf_peak_sidelobe() == pytest.approx(1.0)


def _min_alias_distance(ry: int, rz: int, shift: int, shape: tuple[int, int]) -> float:
    n2, n1 = shape
    best = np.inf
    for z, y in alias_positions(ry, rz, shift, shape):
        if (z, y) == (0, 0):
            continue
        dz, dy = min(z, n2 - z) / n2, min(y, n1 - y) / n1
        best = min(best, float(np.hypot(dz, dy)))
    return best


def test_shift_moves_aliases_apart() -> None:
    # 1x3 with shift 1: the nearest alias moves from FOV/3 to sqrt(2)/3 FOV
    assert _min_alias_distance(3, 1, 0, (48, 48)) == pytest.approx(1 / 3)
    assert _min_alias_distance(3, 1, 1, (48, 48)) == pytest.approx(np.sqrt(2) / 3)


def test_lattice_rows_and_shift() -> None:
    m = caipi_lattice((8, 12), ry=3, rz=2, shift=1)
    rows = np.flatnonzero(m.any(axis=1))
    np.testing.assert_array_equal(rows, [0, 2, 4, 6])
    first = [int(np.flatnonzero(m[r])[0]) for r in rows]
    # successive sampled rows step by the shift (mod ry)
    assert all((b - a) % 3 == 1 for a, b in itertools.pairwise(first))
    assert m[4, 6]  # the centre (n // 2) is always sampled


def test_calibration_and_corner_cut() -> None:
    p = caipirinha((64, 64), ry=2, rz=2, shift=1, calibration=(16, 16), corner_cut=True, order="centre-out")
    assert p.mask[24:40, 24:40, 0].all()
    assert p.calibration_lines == 256
    assert tuple(p.order_2d[0]) == (32, 32)
    assert p.acceleration > 4.0  # corner cut outweighs the calibration block here
    q = caipirinha((64, 64), ry=2, rz=2, shift=1, calibration=(16, 16))
    assert q.acceleration < 4.0


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"ry": 0, "rz": 2}, "ry must be an integer >= 1"),
        ({"ry": 2, "rz": 2, "shift": 2}, "shift must be an integer in 0..1"),
        ({"ry": 2, "rz": 2, "calibration": (100, 4)}, "does not fit"),
        ({"ry": 80, "rz": 1}, "does not fit"),
    ],
)
def test_bad_input(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        caipirinha((32, 32), **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
