"""Tests of the tissue library: tabulated values, interpolation, fat model and sign convention."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hifield.errors import ConfigError
from hifield.phantom.tissues import (
    FAT_SIX_PEAK_AMPLITUDES,
    FAT_SIX_PEAK_PPM,
    chemical_shift_hz,
    tissue_names,
    tissue_properties,
)
from hifield.units import GAMMA_BAR_HZ_PER_T

# physics-safety.md §1.1 (ms): tissue -> {field: (T1, T2, T2*)}
TABLE = {
    "wm": {3.0: (1084, 71, 53.2), 7.0: (1220, 47, 26.8), 1.5: (884, 80, 66)},
    "gm": {3.0: (1820, 76, 66.0), 7.0: (2132, 47, 33.2), 1.5: (1124, 87, 84)},
    "fat": {1.5: (343, 58, None), 3.0: (382, 68, None)},
    "muscle": {1.5: (1008, 44, None), 3.0: (1412, 50, None)},
    "blood": {1.5: (1441, 290, None), 3.0: (1932, 275, None)},
    "liver": {1.5: (576, 46, None), 3.0: (812, 42, None)},
    "cartilage": {1.5: (1024, 30, None), 3.0: (1168, 27, None)},
}


@pytest.mark.parametrize("tissue", sorted(TABLE))
def test_tabulated_values_match_reference_table(tissue: str) -> None:
    for b0, (t1, t2, t2s) in TABLE[tissue].items():
        p = tissue_properties(tissue, b0)
        assert not p.interpolated
        assert p.t1_s == pytest.approx(t1 * 1e-3)
        assert p.t2_s == pytest.approx(t2 * 1e-3)
        if t2s is not None:
            assert p.t2star_s == pytest.approx(t2s * 1e-3)
        assert p.t2star_s <= p.t2_s
        assert p.source


def test_five_tesla_is_interpolated_and_matches_the_notes_column() -> None:
    # physics-safety.md §1.1, 5 T column (interpolated): WM 1164/59/35.6, GM 2002/62/44.2
    for name, (t1, t2, t2s) in {"wm": (1164, 59, 35.6), "gm": (2002, 62, 44.2)}.items():
        p = tissue_properties(name, 5.0)
        assert p.interpolated
        assert "interpolated" in p.source
        assert p.t1_s * 1e3 == pytest.approx(t1, abs=1.0)
        assert p.t2_s * 1e3 == pytest.approx(t2, abs=0.6)
        assert p.t2star_s * 1e3 == pytest.approx(t2s, abs=0.1)


def test_t1_power_law_and_t2_linear_between_fields() -> None:
    b = 4.2
    p = tissue_properties("wm", b)
    beta = math.log(1220 / 1084) / math.log(7 / 3)
    assert p.t1_s == pytest.approx(1.084 * (b / 3) ** beta)
    assert p.t2_s == pytest.approx(0.071 + (0.047 - 0.071) * (b - 3) / 4)
    r2s = 1 / 0.0532 + (1 / 0.0268 - 1 / 0.0532) * (b - 3) / 4
    assert p.t2star_s == pytest.approx(1 / r2s)


@pytest.mark.parametrize("name", ["gm", "wm", "csf", "fat", "muscle", "blood", "liver", "cartilage", "bone"])
def test_interpolation_is_continuous_monotone_t1_and_positive(name: str) -> None:
    fields = np.linspace(0.1, 11.7, 117)
    props = [tissue_properties(name, b) for b in fields]
    t1 = np.array([p.t1_s for p in props])
    t2 = np.array([p.t2_s for p in props])
    t2s = np.array([p.t2star_s for p in props])
    assert np.all(t1 > 0) and np.all(t2 > 0) and np.all(t2s > 0) and np.all(t2s <= t2 + 1e-12)
    assert np.all(np.diff(t1) >= -1e-12)  # T1 grows with field for every tissue in the library
    assert np.max(np.abs(np.diff(t2))) < 0.1 * t2.max()  # no jumps


def test_bad_input() -> None:
    with pytest.raises(ConfigError, match="unknown tissue"):
        tissue_properties("tumour", 3.0)
    with pytest.raises(ConfigError, match=r"outside 0\.1-11\.7"):
        tissue_properties("wm", 14.0)
    with pytest.raises(ConfigError, match="calibrated only"):
        tissue_properties("nist_nicl2_01", 7.0)
    assert "gm" in tissue_names()


def test_fat_models_and_sign_convention() -> None:
    six = tissue_properties("fat", 3.0)
    assert six.chemical_shift_ppm == FAT_SIX_PEAK_PPM
    assert sum(six.peak_amplitudes) == pytest.approx(1.0)
    np.testing.assert_allclose(six.peak_amplitudes, np.array(FAT_SIX_PEAK_AMPLITUDES) / 0.999)
    one = tissue_properties("fat", 3.0, fat_peaks="single")
    assert one.chemical_shift_ppm == (-3.4,)
    water = tissue_properties("wm", 3.0)
    assert (water.chemical_shift_ppm, water.peak_amplitudes) == ((0.0,), (1.0,))
    # fat resonates below water: -434 Hz at 3 T
    assert one.frequency_offsets_hz(3.0)[0] == pytest.approx(-434.3, abs=0.5)
    assert chemical_shift_hz(-3.4, 1.5) == pytest.approx(-217.1, abs=0.5)


def _voxel_signal(t: float, b0: float, fat_peaks: str) -> complex:
    """A 50/50 water/fat voxel in the project convention exp(-i 2π Δf t)."""
    fat = tissue_properties("fat", b0, fat_peaks=fat_peaks)
    s = 0.5 + 0j
    for ppm, amp in zip(fat.chemical_shift_ppm, fat.peak_amplitudes, strict=True):
        s += 0.5 * amp * np.exp(-2j * np.pi * chemical_shift_hz(ppm, b0) * t)
    return s


def test_in_phase_opposed_phase_two_echo_dixon() -> None:
    b0 = 3.0
    df = GAMMA_BAR_HZ_PER_T * b0 * 3.4e-6
    te_op, te_ip = 1 / (2 * df), 1 / df
    assert te_op * 1e3 == pytest.approx(1.15, abs=0.01)
    assert te_ip * 1e3 == pytest.approx(2.30, abs=0.01)
    assert abs(_voxel_signal(te_op, b0, "single")) < 1e-12
    assert abs(_voxel_signal(te_ip, b0, "single")) == pytest.approx(1.0)
    # the fat phase at a quarter period is +90°: fat precesses slower than water (lower frequency), and with
    # exp(-i 2 pi df t) a negative offset advances the phase
    s = _voxel_signal(te_op / 2, b0, "single") - 0.5
    assert np.angle(s) == pytest.approx(np.pi / 2)
    # six-peak model: a small residual at the single-peak opposed-phase time, not a null
    residual = abs(_voxel_signal(te_op, b0, "six"))
    assert 0.02 < residual < 0.3
    # two-point Dixon with the single-peak model separates water and fat exactly
    ip, op = _voxel_signal(te_ip, b0, "single"), _voxel_signal(te_op, b0, "single")
    assert abs((ip + op) / 2) == pytest.approx(0.5) and abs((ip - op) / 2) == pytest.approx(0.5)
