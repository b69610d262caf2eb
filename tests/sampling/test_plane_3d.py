"""The (k2, k1) patterns of 3D protocols: square calibration block, acceleration, reproducibility, echo trains."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.errors import ConfigError
from hifield.sampling import make_pattern, on_grid, segment_trains


@pytest.mark.parametrize("name", ["poisson", "caipirinha"])
@pytest.mark.parametrize(("shape", "calib"), [((64, 48), 24), ((20, 160), 24), ((40, 40), 12)])
def test_plane_pattern_has_a_square_calibration_block_clipped_to_the_grid(
    name: str, shape: tuple[int, int], calib: int
) -> None:
    pattern = make_pattern(name, shape, acceleration=4, n_calibration=calib, seed=2)
    n2, n1 = shape
    c2, c1 = min(calib, n2), min(calib, n1)
    block = np.zeros(shape, dtype=bool)
    block[n2 // 2 - c2 // 2 : n2 // 2 - c2 // 2 + c2, n1 // 2 - c1 // 2 : n1 // 2 - c1 // 2 + c1] = True
    np.testing.assert_array_equal(pattern.calibration[:, :, 0], block)  # the whole block, nothing else
    assert pattern.mask[:, :, 0][block].all()
    # not a line pattern: every partition outside the block is sampled on some k1 lines but not on all of them
    outside = np.flatnonzero(~block.any(axis=1))
    rows = pattern.mask[outside, :, 0]
    assert outside.size == max(0, n2 - calib)
    if outside.size:
        assert rows.any(axis=1).mean() >= 0.5 and not rows.all(axis=1).any()
    assert pattern.mask[:, :, 0][~block].mean() < 0.5


@pytest.mark.parametrize("accel", [2.0, 4.0, 5.0])
def test_poisson_plane_reaches_the_requested_acceleration(accel: float) -> None:
    pattern = make_pattern("poisson", (64, 48), acceleration=accel, n_calibration=24, seed=0)
    assert abs(pattern.acceleration - accel) / accel <= 0.10


def test_caipirinha_plane_reaches_r_within_ten_percent_where_the_block_is_small() -> None:
    pattern = make_pattern("caipirinha", (128, 128), acceleration=4, n_calibration=12)
    assert abs(pattern.acceleration - 4) / 4 <= 0.10


def test_plane_pattern_is_reproducible_by_seed() -> None:
    a = make_pattern("poisson", (64, 48), acceleration=4, n_calibration=24, seed=7)
    b = make_pattern("poisson", (64, 48), acceleration=4, n_calibration=24, seed=7)
    c = make_pattern("poisson", (64, 48), acceleration=4, n_calibration=24, seed=8)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.order, b.order)
    assert not np.array_equal(a.mask, c.mask)


def test_on_grid_places_a_plane_pattern_as_it_is() -> None:
    pattern = make_pattern("poisson", (16, 12), acceleration=2, n_calibration=4, seed=0)
    mask, calibration = on_grid(pattern, axis="plane", grid=(16, 12))
    np.testing.assert_array_equal(mask, pattern.mask)
    np.testing.assert_array_equal(calibration, pattern.calibration)
    with pytest.raises(ConfigError, match="cannot sample this 12x12 grid"):
        on_grid(pattern, axis="plane", grid=(12, 12))


def test_full_plane_segments_into_one_linear_train_per_partition() -> None:
    points = np.argwhere(np.ones((6, 8), dtype=bool))
    trains = segment_trains(points, train_length=8)
    assert len(trains) == 6
    for k2, train in enumerate(trains):
        assert train[:, 0].tolist() == [k2] * 8 and train[:, 1].tolist() == list(range(8))


def test_undersampled_plane_plays_fewer_full_trains_that_sweep_k1() -> None:
    pattern = make_pattern("poisson", (64, 48), acceleration=4, n_calibration=24, seed=0)
    points = pattern.order_2d
    trains = segment_trains(points, train_length=48)
    assert len(trains) == int(np.ceil(len(points) / 48)) == 16  # R = 4: a quarter of the 64 inversions
    lengths = [len(t) for t in trains]
    assert max(lengths) <= 48 and max(lengths) - min(lengths) <= 1
    played = np.concatenate(trains)
    assert sorted(map(tuple, played.tolist())) == sorted(map(tuple, points.tolist()))  # each point once
    for train in trains:
        k1 = train[:, 1]
        assert np.all(np.diff(k1) >= 0)  # a linear k1 sweep
        centre = int(np.argmin(np.abs(k1 - 24)))
        assert abs(centre - len(train) / 2) <= 0.1 * len(train)  # the k1 centre mid-train, where TI points


def test_segment_trains_refuses_repeated_points() -> None:
    with pytest.raises(ConfigError, match="distinct"):
        segment_trains(np.array([[0, 1], [0, 1]]), train_length=4)
