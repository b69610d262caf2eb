"""The calibration (ACS) region is read from what the raw data state; detection only for data that state none."""

from __future__ import annotations

from types import ModuleType

import numpy as np

from hifield.data import RawData, RawHeader
from hifield.recon.calibration import calibration_region, needs_calibration_prescan, scan_coil_maps


def _raw(mask: np.ndarray | None, calibration: np.ndarray | None = None, n: int = 32) -> RawData:
    header = RawHeader(b0_t=3.0, fov_m=(0.005, 0.2, 0.2), matrix=(1, n, n), te_s=0.005, tr_s=0.01, flip_angle_rad=0.2)
    kspace = np.ones((2, 1, n, n), np.complex64)
    return RawData(kspace=kspace, header=header, mask=mask, calibration=calibration)


def _lines(n: int, rows: range) -> np.ndarray:
    mask = np.zeros((1, n, 1), dtype=bool)
    mask[0, list(rows), 0] = True
    return mask


def test_stated_region_is_used_even_inside_a_larger_sampled_block() -> None:
    # 12 central lines are sampled, but the pattern said only the central 8 are calibration
    mask = _lines(32, range(10, 22)) | _lines(32, range(0, 32, 4))
    raw = _raw(mask, calibration=_lines(32, range(12, 20)))
    assert calibration_region(raw) == (slice(0, 1), slice(12, 20), slice(0, 32))


def test_foreign_data_without_flags_fall_back_to_the_grown_box() -> None:
    mask = _lines(32, range(10, 22)) | _lines(32, range(0, 32, 4))
    assert calibration_region(_raw(mask)) == (slice(0, 1), slice(10, 22), slice(0, 32))


def test_fully_sampled_data_are_all_calibration() -> None:
    assert calibration_region(_raw(None)) == (slice(0, 1), slice(0, 32), slice(0, 32))
    assert calibration_region(_raw(None), max_size=8) == (slice(0, 1), slice(12, 20), slice(12, 20))


def test_a_non_box_region_is_grown_within_what_was_stated() -> None:
    calibration = np.zeros((1, 32, 1), dtype=bool)
    calibration[0, 12:20, 0] = True
    calibration[0, 25, 0] = True  # a stray line: the stated region is not a box
    mask = calibration | _lines(32, range(0, 32, 4))
    assert calibration_region(_raw(mask, calibration)) == (slice(0, 1), slice(12, 20), slice(0, 32))


def test_cartesian_data_never_need_a_prescan_and_the_prescan_runs_only_when_needed(simdata: ModuleType) -> None:
    raw, _, _ = simdata.make_raw(32, n_coils=4)
    assert not needs_calibration_prescan(raw)

    def prescan() -> RawData:
        raise AssertionError("the prescan must not run for self-calibrating data")

    maps, used = scan_coil_maps(raw, prescan=prescan)
    assert used is None and maps.maps.shape[-2:] == (32, 32)
