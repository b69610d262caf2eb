"""Multi-frequency interpolation of the B0 map in the fast engine: accuracy, segment count, bounded weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hifield.sim.engines.fast_offresonance import TOLERANCE, frequency_segments


def _worst_error(offset_hz: np.ndarray, times_s: np.ndarray, segments: list) -> float:
    """Largest error of the interpolated phase factor over every voxel and a dense set of times, by direct sum."""
    t = np.linspace(times_s.min(), times_s.max(), 401)[:, np.newaxis]
    exact = np.exp(-2j * np.pi * t * offset_hz.ravel()[np.newaxis])
    approx = sum(w.ravel()[np.newaxis] * np.exp(-2j * np.pi * fj * t) for fj, w in segments)
    return float(np.max(np.abs(approx - exact)))


@pytest.mark.parametrize(
    ("low_hz", "high_hz", "half_span_ms"),
    [
        (-107.0, 322.0, 1.92),  # the default 3 T scan's B0 residual and readout
        (-250.0, 250.0, 4.0),  # 7 T, long readout
        (-400.0, 600.0, 16.0),  # an EPI echo train
        (10.0, 12.0, 1.0),  # nearly uniform
    ],
)
def test_every_voxel_within_tolerance_at_every_time(low_hz: float, high_hz: float, half_span_ms: float) -> None:
    rng = np.random.default_rng(3)
    offset = rng.uniform(low_hz, high_hz, size=(37, 41))
    offset.flat[:2] = low_hz, high_hz
    times = np.sort(rng.uniform(-half_span_ms, half_span_ms, size=500)) * 1e-3
    segments = frequency_segments(offset, times)
    assert _worst_error(offset, times, segments) <= 1.5 * TOLERANCE


def test_far_fewer_segments_than_linear_interpolation_at_a_tenth_of_its_error() -> None:
    # The engine used linear interpolation between frequencies 0.045 / span apart (phase error up to ~1 %): 20
    # segments for the default 3 T scan. Least squares reaches 0.1 % with the time-bandwidth product + a few (9 here).
    offset = np.linspace(-107.1, 322.0, 1000)
    times = np.linspace(-1.92e-3, 1.92e-3, 256)
    linear = math.ceil((322.0 + 107.1) / (0.045 / 1.92e-3)) + 1
    segments = frequency_segments(offset, times)
    cycles = (322.0 + 107.1) * 3.84e-3
    assert len(segments) <= math.ceil(cycles) + 8 and 2 * len(segments) <= linear
    assert max(float(np.abs(w).max()) for _, w in segments) < 10.0  # no cancellation of large weights (complex64)


def test_a_uniform_map_is_one_exact_frequency() -> None:
    offset = np.full((4, 5), 42.0)
    (frequency, weight), *rest = frequency_segments(offset, np.linspace(-1e-3, 1e-3, 9))
    assert not rest and frequency == 42.0 and np.all(weight == 1.0)


def test_tighter_tolerance_needs_more_segments_and_meets_it() -> None:
    offset = np.linspace(-200.0, 200.0, 300)
    times = np.linspace(-3e-3, 3e-3, 128)
    loose = frequency_segments(offset, times, tolerance=1e-2)
    tight = frequency_segments(offset, times, tolerance=1e-5)
    assert len(tight) > len(loose)
    assert _worst_error(offset, times, tight) <= 2e-5
