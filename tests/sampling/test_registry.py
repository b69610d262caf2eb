"""Tests of the one name -> generator table of sampling patterns and its one validation."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.errors import ConfigError
from hifield.sampling import PATTERNS, TABLE, check_request, make_pattern, readout_subset
from hifield.sampling.grid2d import SamplingPattern2D
from hifield.sampling.registry import CARTESIAN_PATTERNS, NON_CARTESIAN_PATTERNS, caipi_factors


@pytest.mark.parametrize("name", ["variable-density", "partial-fourier", "poisson"])
@pytest.mark.parametrize("accel", [2.0, 4.0, 6.0])
def test_effective_acceleration_by_name_2d(name: str, accel: float) -> None:
    p = make_pattern(name, 320, acceleration=accel, n_calibration=16, seed=1)
    assert abs(p.acceleration - accel) / accel < 0.02
    assert p.mask.shape == (1, 320, 1)
    assert p.mask[0, 160 - 8 : 160 + 8, 0].all()
    assert sorted(p.order.tolist()) == np.flatnonzero(p.mask[0, :, 0]).tolist()


def test_poisson_and_caipi_by_name_3d() -> None:
    p = make_pattern("poisson", (48, 64), acceleration=5, n_calibration=12, corner_cut=True)
    assert isinstance(p, SamplingPattern2D) and abs(p.acceleration - 5) / 5 < 0.02
    c = make_pattern("caipi", (48, 64), acceleration=6, n_calibration=0)
    assert c.name == "caipirinha" and c.acceleration == pytest.approx(6.0)
    assert make_pattern("poisson", (8, 16), acceleration=1).n_acquired == 128


def test_caipi_factors() -> None:
    for r in range(1, 30):
        ry, rz = caipi_factors(r)
        assert ry * rz == r and ry >= rz


def test_one_table_covers_lines_planes_and_readouts() -> None:
    assert PATTERNS == tuple(TABLE)
    assert set(CARTESIAN_PATTERNS) | set(NON_CARTESIAN_PATTERNS) == set(PATTERNS)
    assert {TABLE[name].encoding for name in PATTERNS} == {"lines", "any", "readouts"}


def test_full_pattern_at_r1_for_every_cartesian_name() -> None:
    for name in CARTESIAN_PATTERNS:
        assert make_pattern(name, 64, acceleration=1).n_acquired == 64


def test_readout_subsets_by_name() -> None:
    radial = make_pattern("radial", 402, acceleration=4, trajectory="radial")
    assert radial.name == "radial subset" and radial.order.tolist() == list(range(100))
    spiral = make_pattern("spiral", 16, acceleration=4, trajectory="spiral")
    assert spiral.name == "spiral subset" and spiral.order.tolist() == [0, 4, 8, 12]
    assert spiral.acceleration == 4.0 and spiral.calibration_lines == 0
    full = make_pattern("radial", 30, acceleration=1, trajectory="radial")
    assert full.name == "radial subset" and full.n_acquired == 30
    np.testing.assert_array_equal(readout_subset(30, acceleration=3, golden=True).mask, radial_mask(30, 10))


def radial_mask(n: int, keep: int) -> np.ndarray:
    mask = np.zeros((1, n, 1), dtype=bool)
    mask[0, :keep, 0] = True
    return mask


@pytest.mark.parametrize(
    ("name", "kwargs", "needle"),
    [
        ("radial", {}, "non-Cartesian pattern and this protocol is Cartesian"),
        ("spiral", {}, "non-Cartesian pattern and this protocol is Cartesian"),
        ("poisson", {"trajectory": "radial"}, "a radial protocol plays a subset of its readouts"),
        ("hexagonal", {}, "unknown sampling pattern 'hexagonal'"),
        ("partial-fourier", {"acceleration": 1.2}, "partial Fourier 0.625 alone gives R = 1.6"),
        ("caipirinha", {"acceleration": 2.5}, "caipirinha acceleration must be a whole number; got 2.5"),
        ("equispaced", {"acceleration": 2.5}, "equispaced acceleration must be a whole number; got 2.5"),
        ("poisson", {"acceleration": 0.5}, "acceleration must be a number >= 1"),
        ("poisson", {"acceleration": 4, "n_calibration": 400}, "does not fit"),
        ("poisson", {"acceleration": 4, "n_calibration": -1}, "calibration lines must be an integer >= 0"),
        ("equispaced", {"shape": (8, 64)}, "2D-scan pattern"),
    ],
)
def test_bad_names_and_requests(name: str, kwargs: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {"acceleration": 4, **kwargs}
    shape = args.pop("shape", 128)
    with pytest.raises(ConfigError, match=needle) as info:
        make_pattern(name, shape, **args)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"acceleration": "0.5"}, "acceleration must be a number >= 1; got '0.5'"),
        ({"acceleration": "abc"}, "acceleration must be a number >= 1; got 'abc'"),
        ({"acceleration": float("inf")}, "acceleration must be a number >= 1; got inf"),
        ({"acceleration": True}, "acceleration must be a number >= 1; got True"),
        ({"acceleration": 2, "n_calibration": -3}, "calibration lines must be an integer >= 0; got -3"),
        ({"acceleration": 2, "n_calibration": 40, "n_lines": 32}, "calibration region of 40 lines does not fit"),
        ({"acceleration": 2.5, "pattern": "equispaced"}, "equispaced acceleration must be a whole number; got 2.5"),
        ({"acceleration": 2, "pattern": "zigzag"}, "unknown sampling pattern 'zigzag'"),
    ],
)
def test_one_check_one_message_per_rule(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_request(**kwargs)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


def test_the_acceleration_message_is_written_once() -> None:
    # every refusal of an acceleration below 1 comes from the one check, in the same words
    from pathlib import Path

    import hifield

    source = Path(hifield.__file__).parent
    hits = [p for p in source.rglob("*.py") if "acceleration must be a number >= 1" in p.read_text()]
    assert [p.relative_to(source).as_posix() for p in hits] == ["sampling/validation.py"]
