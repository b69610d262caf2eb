"""Both engines record the mask, calibration region and R of the pattern the sequence carries, not of its labels."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("pypulseq")

from hifield.errors import SequenceError
from hifield.hardware import Scanner
from hifield.phantom import shepp_logan_phantom
from hifield.sampling import SamplingPattern, on_grid, variable_density_lines
from hifield.sequence import GreProtocol, build_with_pattern
from hifield.sim import simulate
from hifield.sim.engines.bloch import BlochOptions, simulate_bloch

# few isochromats on purpose (speed): what a sequence needs is tested in tests/sim/test_bloch_isochromats.py
pytestmark = pytest.mark.filterwarnings("ignore::hifield.sim.engines.bloch_isochromat_count.IsochromatWarning")

N, FOV = 16, 0.24


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner.preset("3T", n_coils=2)


def _simulate(engine: str, phantom, built, scanner):  # type: ignore[no-untyped-def]
    if engine == "bloch":
        return simulate_bloch(
            phantom, built, scanner, noise=False, rng=np.random.default_rng(0), options=BlochOptions(n_isochromats=2)
        )
    return simulate(phantom, built, scanner, engine=engine, noise=False)


@pytest.mark.parametrize("engine", ["fast", "bloch"])
def test_engines_write_the_patterns_mask_acs_and_r(engine: str, scanner: Scanner) -> None:
    protocol = GreProtocol(matrix=N, fov_m=FOV, tr_s=0.05, flip_angle_rad=0.3)
    pattern = variable_density_lines(N, acceleration=2, n_calibration=4, seed=2)
    built = build_with_pattern(protocol, scanner, pattern, axis="k1")
    assert built.pattern is pattern and built.slice_thickness_m == protocol.slice_thickness_m
    phantom = shepp_logan_phantom(b0_t=3.0, matrix=2 * N, fov_m=FOV)
    raw = _simulate(engine, phantom, built, scanner)
    mask, calibration = on_grid(pattern, axis="k1", grid=(1, N))
    assert raw.mask is not None and raw.calibration is not None
    np.testing.assert_array_equal(np.broadcast_to(raw.mask, raw.kspace.shape[-3:])[..., :1], mask)
    np.testing.assert_array_equal(np.broadcast_to(raw.calibration, mask.shape), calibration)
    assert raw.header.acceleration == pattern.acceleration
    assert raw.header.scan_time_full_s == pytest.approx(raw.header.scan_time_s * pattern.acceleration)


@pytest.mark.parametrize("engine", ["fast", "bloch"])
def test_the_calibration_region_comes_from_the_pattern_not_the_readouts(engine: str, scanner: Scanner) -> None:
    # the readouts are the same; only the pattern knows which of them are calibration
    protocol = GreProtocol(matrix=N, fov_m=FOV, tr_s=0.05, flip_angle_rad=0.3)
    pattern = variable_density_lines(N, acceleration=2, n_calibration=4, seed=2)
    built = build_with_pattern(protocol, scanner, pattern, axis="k1")
    wider = np.zeros_like(pattern.calibration)
    wider[0, np.flatnonzero(pattern.mask[0, :, 0])[:3], 0] = True
    relabelled = dataclasses.replace(built, pattern=dataclasses.replace(pattern, calibration=wider))
    phantom = shepp_logan_phantom(b0_t=3.0, matrix=2 * N, fov_m=FOV)
    raw = _simulate(engine, phantom, relabelled, scanner)
    assert raw.calibration is not None
    np.testing.assert_array_equal(np.broadcast_to(raw.calibration, wider.shape), wider)


@pytest.mark.parametrize("engine", ["fast", "bloch"])
def test_a_pattern_that_disagrees_with_the_readouts_is_refused(engine: str, scanner: Scanner) -> None:
    protocol = GreProtocol(matrix=N, fov_m=FOV, tr_s=0.05, flip_angle_rad=0.3)
    built = protocol.build(scanner, phase_encode_lines=range(0, N, 2))
    other = np.zeros((1, N, 1), dtype=bool)
    other[0, 1::2, 0] = True
    wrong = SamplingPattern(mask=other, calibration=np.zeros_like(other), order=np.arange(1, N, 2), name="odd")
    phantom = shepp_logan_phantom(b0_t=3.0, matrix=2 * N, fov_m=FOV)
    with pytest.raises(SequenceError, match="odd pattern"):
        _simulate(engine, phantom, dataclasses.replace(built, pattern=wrong), scanner)


def test_a_sequence_without_a_pattern_takes_its_mask_from_its_readouts(scanner: Scanner) -> None:
    # a foreign .seq file or a protocol built on its own: the readouts place the mask, there is no ACS region
    protocol = GreProtocol(matrix=N, fov_m=FOV, tr_s=0.05, flip_angle_rad=0.3)
    built = protocol.build(scanner, phase_encode_lines=range(0, N, 2))
    assert built.pattern is None
    raw = simulate(shepp_logan_phantom(b0_t=3.0, matrix=2 * N, fov_m=FOV), built, scanner, noise=False)
    assert raw.mask is not None and raw.calibration is None
    assert raw.header.acceleration == 2.0
