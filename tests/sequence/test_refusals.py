"""One parameter pushed past one limit per case, for every protocol family: the refusal names that limit."""

from __future__ import annotations

import math

import pytest

from hifield.errors import HardwareLimitError, SequenceError
from hifield.hardware.scanner import Scanner
from hifield.sequence import check, get_protocol


def build(name, preset="3T", **changes):
    protocol = get_protocol(name).with_changes(**changes)
    n = getattr(protocol, "n_spokes", getattr(protocol, "n_interleaves", getattr(protocol, "matrix", 4)))
    lines = list(range(min(4, n)))
    return protocol.build(Scanner.preset(preset), phase_encode_lines=lines)


@pytest.mark.parametrize(
    "name",
    ["gre_t1_2d", "se_t1_2d", "gre_t1_3d", "mprage_3d", "epi_gre_2d", "epi_se_2d", "radial_gre_2d", "spiral_vd_2d"],
)
def test_too_short_te_names_te(name):
    with pytest.raises(SequenceError, match=r"echo time te_ms = 0\.6 ms is below the minimum"):
        build(name, te_s=0.0006)


@pytest.mark.parametrize(
    "name",
    [
        "gre_t1_2d",
        "se_t1_2d",
        "tse_t2_2d",
        "flair_2d",
        "gre_t1_3d",
        "bssfp_2d",
        "epi_gre_2d",
        "radial_gre_2d",
        "spiral_vd_2d",
    ],
)
def test_too_short_tr_names_tr(name):
    with pytest.raises(SequenceError, match=r"repetition time tr_ms = 2 ms is below the minimum"):
        build(name, tr_s=0.002)


@pytest.mark.parametrize(
    "name", ["gre_t1_2d", "se_t1_2d", "tse_t2_2d", "gre_t1_3d", "bssfp_2d", "radial_gre_2d", "epi_gre_2d"]
)
def test_tiny_fov_at_high_bandwidth_names_readout_gradient(name):
    with pytest.raises(HardwareLimitError, match=r"gradient amplitude on x is [0-9.]+ mT/m, above the limit of 80"):
        build(name, fov_m=0.01, readout_bandwidth_hz_per_pixel=4000.0)


@pytest.mark.parametrize("name", ["gre_t1_2d", "se_t1_2d", "tse_t2_2d", "bssfp_2d", "epi_gre_2d", "spiral_vd_2d"])
def test_thin_slice_with_short_pulse_names_slice_gradient(name):
    with pytest.raises(HardwareLimitError, match=r"gradient amplitude on z"):
        build(name, slice_thickness_m=0.0005, rf_duration_s=0.0002)


PEAK = {"flip_angle_rad": math.radians(170)}


@pytest.mark.parametrize(
    ("name", "preset", "changes"),
    [
        ("gre_t1_2d", "7T", {**PEAK, "rf_duration_s": 0.0006, "te_s": 0.008}),
        ("gre_t1_3d", "7T", {**PEAK, "rf_duration_s": 0.0003}),
        ("radial_gre_2d", "5T", {**PEAK, "rf_duration_s": 0.0003}),
        ("spiral_vd_2d", "7T", {**PEAK, "rf_duration_s": 0.0003}),
        ("bssfp_2d", "3T", {**PEAK, "rf_duration_s": 0.0003}),
        ("epi_gre_2d", "1.5T", {**PEAK, "rf_duration_s": 0.0008, "slice_thickness_m": 0.006}),
    ],
)
def test_large_flip_short_pulse_names_rf_peak(name, preset, changes):
    built = build(name, preset, **changes)
    limits = {v.limit: v for v in check(built, Scanner.preset(preset))}
    assert "RF peak B1" in limits
    assert limits["RF peak B1"].maximum == pytest.approx(Scanner.preset(preset).rf.max_b1_t * 1e6)


@pytest.mark.parametrize(
    ("name", "preset", "changes", "limit"),
    [
        ("gre_t1_2d", "5T", {"tr_s": 0.012, "te_s": 0.005, "flip_angle_rad": math.pi / 2}, "whole-body SAR (6 min)"),
        ("bssfp_2d", "5T", {"flip_angle_rad": math.radians(70)}, "whole-body SAR (6 min)"),
        ("bssfp_2d", "7T", {"flip_angle_rad": math.radians(60)}, "head SAR (6 min)"),
        ("tse_t2_2d", "5T", {"tr_s": 0.25}, "whole-body SAR (6 min)"),
        ("se_t1_2d", "7T", {"tr_s": 0.03, "te_s": 0.015}, "head SAR (6 min)"),
        (
            "radial_gre_2d",
            "7T",
            {"flip_angle_rad": math.pi / 2, "rf_duration_s": 0.002, "te_s": 0.004, "tr_s": 0.009},
            "head SAR (6 min)",
        ),
    ],
)
def test_sar_limit_named(name, preset, changes, limit):
    built = build(name, preset, **changes)
    limits = {v.limit for v in check(built, Scanner.preset(preset))}
    assert f"{limit} in normal mode" in limits


@pytest.mark.parametrize("name", ["gre_t1_2d", "epi_gre_2d", "radial_gre_2d", "bssfp_2d", "tse_t2_2d"])
def test_fast_gradient_mode_names_pns(name):
    built = build(name, gradient_mode="fast", readout_bandwidth_hz_per_pixel=1500.0)
    limits = {v.limit: v for v in check(built, Scanner.preset("3T"))}
    assert "PNS in normal mode" in limits
    assert limits["PNS in normal mode"].maximum == 80
