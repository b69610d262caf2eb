"""Built sequences carry their sampling pattern: attached in one place, for 2D, 3D and non-Cartesian protocols."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pypulseq")

from hifield.errors import ConfigError
from hifield.hardware import Scanner
from hifield.sampling import equispaced_lines
from hifield.sequence import (
    MATRIX_LIMITS,
    GreProtocol,
    calibration_prescan,
    check_matrix,
    get_protocol,
    plan_acquisition,
    with_pattern,
)


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner.preset("3T", n_coils=2)


def test_2d_protocol_is_accelerated_along_k1(scanner: Scanner) -> None:
    acquisition = plan_acquisition(GreProtocol(matrix=32), scanner, acceleration=2, n_calibration=8, seed=1)
    built = acquisition.accelerated
    assert built.pattern_axis == "k1" and acquisition.pattern is built.pattern
    assert sorted(set(built.phase_encode_lines.tolist())) == sorted(built.pattern.order.tolist())
    assert built.pattern.calibration_lines == 8
    assert acquisition.full.pattern is not None and acquisition.full.pattern.name == "full"
    assert built.slice_thickness_m == GreProtocol().slice_thickness_m


def test_3d_protocol_with_a_line_pattern_is_accelerated_along_partitions_with_a_capped_calibration(
    scanner: Scanner,
) -> None:
    protocol = get_protocol("gre_t1_3d").with_changes(matrix=32)
    acquisition = plan_acquisition(protocol, scanner, pattern="equispaced", acceleration=2, n_calibration=24)
    built = acquisition.accelerated
    assert built.pattern_axis == "k2" and built.slice_thickness_m is None
    assert built.pattern.n_lines == protocol.n_partitions
    assert sorted(set(built.partition_lines.tolist())) == sorted(built.pattern.order.tolist())
    assert acquisition.n_calibration_requested == 24
    assert built.pattern.calibration_lines == protocol.n_partitions // 4


@pytest.mark.parametrize("pattern", ["variable-density", "poisson", "caipirinha"])
def test_3d_protocol_is_accelerated_over_its_k2_k1_plane_by_default(scanner: Scanner, pattern: str) -> None:
    protocol = get_protocol("gre_t1_3d").with_changes(matrix=32, n_partitions=32, slab_thickness_m=0.064)
    acquisition = plan_acquisition(protocol, scanner, pattern=pattern, acceleration=4, n_calibration=12)
    built = acquisition.accelerated
    assert built.pattern_axis == "plane" and built.pattern.mask.shape == (32, 32, 1)
    assert built.pattern.name == ("caipirinha" if pattern == "caipirinha" else "poisson")
    assert built.pattern.calibration_lines == 12 * 12  # a square block in (k2, k1)
    assert built.plane_points is not None
    np.testing.assert_array_equal(built.plane_points, built.pattern.order_2d)  # a GRE plays the pattern's order
    assert built.phase_encode_lines.tolist() == built.plane_points[:, 1].tolist()
    per_readout = acquisition.full.duration_s / acquisition.full.pattern.mask.sum() / protocol.matrix
    assert built.duration_s == pytest.approx(per_readout * built.pattern.n_acquired, rel=0.01)


def test_mprage_plays_a_plane_pattern_in_fewer_full_inversion_trains(scanner: Scanner) -> None:
    protocol = get_protocol("mprage_3d").with_changes(matrix=32, n_partitions=32)
    acquisition = plan_acquisition(protocol, scanner, acceleration=4, n_calibration=12, seed=3)
    built, full = acquisition.accelerated, acquisition.full
    assert built.pattern_axis == "plane"
    points = built.plane_points
    assert sorted(map(tuple, points.tolist())) == sorted(map(tuple, built.pattern.order_2d.tolist()))
    n_trains = int(np.ceil(len(points) / protocol.matrix))
    assert n_trains == 8  # 32 x 32 / 4 points in trains of 32: a quarter of the 32 inversions
    assert full.duration_s / built.duration_s == pytest.approx(32 / n_trains, rel=0.01)
    assert built.ti_s == pytest.approx(full.ti_s, abs=protocol.tr_s)  # the centre of k1 still at TI
    # each train sweeps k1 linearly, as the fully sampled trains do
    trains = np.array_split(points, n_trains)
    assert all(np.all(np.diff(t[:, 1]) >= 0) for t in trains)
    with pytest.raises(ConfigError, match="plane_points repeats"):
        protocol.build(scanner, plane_points=[[16, 16], [16, 16]])


@pytest.mark.parametrize(("name", "golden"), [("radial_gre_2d", True), ("spiral_vd_2d", False)])
def test_non_cartesian_protocols_play_a_readout_subset(scanner: Scanner, name: str, golden: bool) -> None:
    protocol = get_protocol(name).with_changes(matrix=32)
    acquisition = plan_acquisition(protocol, scanner, pattern="poisson", acceleration=4)  # pattern ignored
    built = acquisition.accelerated
    assert built.pattern_axis == "readouts" and built.pattern.calibration_lines == 0
    assert built.phase_encode_lines.tolist() == built.pattern.order.tolist()
    assert built.pattern.n_lines == acquisition.full.n_lines == acquisition.full.pattern.n_acquired
    if golden:
        assert built.pattern.order.tolist() == list(range(built.n_lines))


def test_a_partial_fourier_protocol_carries_the_lines_it_plays(scanner: Scanner) -> None:
    from hifield.sequence import with_own_pattern

    built = with_own_pattern(GreProtocol(matrix=32, partial_fourier=0.75).build(scanner))
    assert built.pattern is not None and built.pattern.name == "as built"
    assert built.pattern.n_acquired == 24 and built.pattern.calibration_lines == 0


def test_with_pattern_refuses_a_sequence_that_plays_other_lines(scanner: Scanner) -> None:
    built = GreProtocol(matrix=32).build(scanner, phase_encode_lines=range(0, 32, 2))
    with pytest.raises(ConfigError, match="does not play the k1 lines of its equispaced pattern"):
        with_pattern(built, equispaced_lines(32, acceleration=4, n_calibration=0), axis="k1")


def test_calibration_prescan_carries_its_calibration_lines(scanner: Scanner) -> None:
    built = calibration_prescan(GreProtocol(matrix=64), scanner)
    assert built.pattern is not None and built.pattern.n_acquired == built.pattern.calibration_lines == 24
    assert built.phase_encode_lines.tolist() == list(range(20, 44))


def test_one_matrix_limit_for_protocols_cli_and_scan_config() -> None:
    low, high = MATRIX_LIMITS
    assert (low, high) == (GreProtocol.SPECS["matrix"].low, GreProtocol.SPECS["matrix"].high)
    assert check_matrix(low) == low and check_matrix(str(high)) == high
    for bad in (low - 1, high + 1, "abc", 64.0, True):
        with pytest.raises(ConfigError, match=f"matrix must be an integer between {low} and {high}"):
            check_matrix(bad)
    GreProtocol(matrix=low)  # the protocol accepts what the check accepts
    with pytest.raises(ConfigError):
        GreProtocol(matrix=low - 1)
