"""Tests of building every sampling pattern by name."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.errors import ConfigError
from hifield.hardware import Scanner
from hifield.sampling.grid2d import SamplingPattern2D
from hifield.sampling.registry import (
    CARTESIAN_PATTERNS,
    caipi_factors,
    make_any_pattern,
    make_noncartesian_pattern,
)


@pytest.mark.parametrize("name", ["variable-density", "partial-fourier", "poisson"])
@pytest.mark.parametrize("accel", [2.0, 4.0, 6.0])
def test_effective_acceleration_by_name_2d(name: str, accel: float) -> None:
    p = make_any_pattern(name, 320, acceleration=accel, n_calibration=16, seed=1)
    assert abs(p.acceleration - accel) / accel < 0.02
    assert p.mask.shape == (1, 320, 1)
    assert p.mask[0, 160 - 8 : 160 + 8, 0].all()
    assert sorted(p.order.tolist()) == np.flatnonzero(p.mask[0, :, 0]).tolist()


def test_poisson_and_caipi_by_name_3d() -> None:
    p = make_any_pattern("poisson", (48, 64), acceleration=5, n_calibration=12, corner_cut=True)
    assert isinstance(p, SamplingPattern2D) and abs(p.acceleration - 5) / 5 < 0.02
    c = make_any_pattern("caipi", (48, 64), acceleration=6, n_calibration=0)
    assert c.name == "caipirinha" and c.acceleration == pytest.approx(6.0)
    assert make_any_pattern("poisson", (8, 16), acceleration=1).n_acquired == 128


def test_caipi_factors() -> None:
    for r in range(1, 30):
        ry, rz = caipi_factors(r)
        assert ry * rz == r and ry >= rz


def test_full_pattern_at_r1() -> None:
    for name in CARTESIAN_PATTERNS:
        if name == "partial-fourier":
            continue
        assert make_any_pattern(name, 64, acceleration=1).n_acquired == 64


@pytest.mark.parametrize(
    ("name", "kwargs", "needle"),
    [
        ("radial", {}, "non-Cartesian pattern and this protocol is Cartesian"),
        ("spiral", {}, "non-Cartesian pattern and this protocol is Cartesian"),
        ("hexagonal", {}, "unknown sampling pattern 'hexagonal'"),
        ("partial-fourier", {"acceleration": 1.2}, "partial Fourier 0.625 alone gives R = 1.6"),
        ("caipirinha", {"acceleration": 2.5}, "must be an integer"),
        ("poisson", {"acceleration": 0.5}, "acceleration must be a number >= 1"),
        ("poisson", {"acceleration": 4, "n_calibration": 400}, "does not fit"),
        ("equispaced", {"shape": (8, 64)}, "2D-scan pattern"),
    ],
)
def test_bad_names_and_requests(name: str, kwargs: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {"acceleration": 4, **kwargs}
    shape = args.pop("shape", 128)
    with pytest.raises(ConfigError, match=needle) as info:
        make_any_pattern(name, shape, **args)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_noncartesian_by_name() -> None:
    g = Scanner.preset("3T").gradients
    r = make_noncartesian_pattern("radial", 128, fov_m=0.24, gradients=g, acceleration=4)
    s = make_noncartesian_pattern("spiral", 64, fov_m=0.24, gradients=g, acceleration=2, n_interleaves=4)
    sos = make_noncartesian_pattern(
        "stack-of-stars", 64, fov_m=0.24, gradients=g, acceleration=2, n_partitions=4, fov_z_m=0.1
    )
    assert (r.name, s.name, sos.name) == ("radial", "spiral", "stack-of-stars")
    assert abs(r.acceleration - 4) / 4 < 0.02 and abs(s.acceleration - 2) / 2 < 0.02
    with pytest.raises(ConfigError, match="unknown non-Cartesian pattern"):
        make_noncartesian_pattern("rosette", 64, fov_m=0.24, gradients=g, acceleration=2)
