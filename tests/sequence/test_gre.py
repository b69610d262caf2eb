"""The 2D RF-spoiled GRE: builds on every preset, passes the checks, timing and labels as requested."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from hifield.errors import ConfigError, HardwareLimitError, SequenceError
from hifield.hardware.scanner import Scanner
from hifield.sequence import GreProtocol, check, check_timing
from hifield.sequence.checks import peak_gradient_and_slew
from hifield.units import GAMMA_BAR_HZ_PER_T

from .helpers import adc_labels

PRESETS = [pytest.param(p, marks=[] if p == "3T" else [pytest.mark.slow]) for p in ("1.5T", "3T", "5T", "7T")]
SMALL = GreProtocol(matrix=64, tr_s=0.02, te_s=0.005)


@pytest.fixture(scope="module")
def built_3t():
    return GreProtocol().build(Scanner.preset("3T"))


@pytest.mark.parametrize("preset", PRESETS)
def test_default_gre_builds_and_passes_checks_on_every_preset(preset):
    scanner = Scanner.preset(preset)
    built = GreProtocol().build(scanner)
    assert check(built, scanner) == []
    ok, report = built.seq.check_timing()
    assert ok, report
    check_timing(built)
    assert built.scanner_name == scanner.name


def test_duration_is_lines_times_tr(built_3t):
    p = GreProtocol()
    assert built_3t.duration_s == pytest.approx(p.matrix * p.tr_s, rel=1e-9)
    assert built_3t.duration_s == pytest.approx(built_3t.seq.duration()[0])


def test_te_tr_as_requested(built_3t):
    p = GreProtocol()
    raster = 10e-6
    assert abs(built_3t.tr_s - p.tr_s) <= raster
    assert abs(built_3t.te_s - p.te_s) <= raster
    assert built_3t.flip_angle_rad == pytest.approx(math.radians(70))


def test_te_measured_from_the_sequence_itself():
    """Time from the RF centre to the ADC sample at k = 0 equals the reported TE (checked via pypulseq's k-space)."""
    built = SMALL.build(Scanner.preset("3T"), phase_encode_lines=[32])
    seq = built.seq
    t_exc, _fp, _t_ref, _fp_ref = seq.rf_times()
    t_adc, _ = seq.adc_times()
    k_adc = seq.calculate_kspace()[0]
    centre = int(np.argmin(np.abs(k_adc[0]) + np.abs(k_adc[1])))
    assert centre == 32  # sample matrix // 2 sits at kx = 0 of line 32 (ky = 0)
    assert np.abs(k_adc[0][centre]) < 1e-6 * 64 / 0.24
    assert t_adc[centre] - t_exc[0] == pytest.approx(built.te_s, abs=1e-9)


def test_kspace_lines_and_labels_match_requested_order():
    lines = [5, 32, 0, 63, 17]
    built = SMALL.build(Scanner.preset("3T"), phase_encode_lines=lines)
    np.testing.assert_array_equal(built.phase_encode_lines, lines)
    k_adc = built.seq.calculate_kspace()[0]
    ky = k_adc[1].reshape(len(lines), 64)[:, 0]
    np.testing.assert_allclose(ky, (np.array(lines) - 32) / SMALL.fov_m, atol=1e-6)
    kx = k_adc[0].reshape(len(lines), 64)[0]
    np.testing.assert_allclose(kx, (np.arange(64) - 32) / SMALL.fov_m, atol=1e-3)
    lin = [entry["LIN"] for entry in adc_labels(built.seq)]
    assert lin == lines


def test_fewer_lines_proportionally_shorter():
    scanner = Scanner.preset("3T")
    full = SMALL.build(scanner)
    half = SMALL.build(scanner, phase_encode_lines=range(0, 64, 2))
    assert half.duration_s == pytest.approx(full.duration_s / 2, rel=1e-9)
    assert full.duration_for_lines(32) == pytest.approx(half.duration_s, rel=1e-9)


def test_averages_and_dummies_add_trs():
    scanner = Scanner.preset("3T")
    built = SMALL.with_changes(n_averages=2, n_dummy_scans=3).build(scanner, phase_encode_lines=[0, 1, 2])
    assert built.duration_s == pytest.approx((2 * 3 + 3) * SMALL.tr_s, rel=1e-9)
    assert built.seq.adc_times()[0].size == 2 * 3 * 64


def test_readout_gradient_matches_bandwidth_and_fov():
    built = SMALL.build(Scanner.preset("3T"), phase_encode_lines=[32])
    expected = built.pixel_bandwidth_hz * 64 / SMALL.fov_m / GAMMA_BAR_HZ_PER_T  # T/m
    from hifield.sequence.checks import gradient_waveforms

    t, g = gradient_waveforms(built.seq)[0]
    t_adc = built.seq.adc_times()[0]
    g_at_adc = np.interp(t_adc, t, g)
    np.testing.assert_allclose(g_at_adc, expected, rtol=1e-9)
    assert built.pixel_bandwidth_hz == pytest.approx(1 / (64 * built.readout_dwell_s))
    assert abs(built.pixel_bandwidth_hz - SMALL.readout_bandwidth_hz_per_pixel) < 0.02 * 260


def test_rf_spoiling_phases_are_quadratic():
    built = SMALL.build(Scanner.preset("3T"), phase_encode_lines=[0, 1, 2, 3])
    _t, fp, *_ = built.seq.rf_times()
    phases = np.degrees(np.asarray(fp[1])) % 360
    np.testing.assert_allclose(phases, [0, 117, 351, 342], atol=1e-6)
    adc_phases = np.degrees(built.seq.adc_times()[1][:, 1]) % 360
    np.testing.assert_allclose(adc_phases, phases, atol=1e-6)


def test_flip_angle_from_rf_waveform():
    built = SMALL.build(Scanner.preset("3T"), phase_encode_lines=[0])
    block = built.seq.get_block(1)
    rf = block.rf
    flip = 2 * np.pi * np.abs(np.sum(rf.signal) * (rf.t[1] - rf.t[0]))
    assert flip == pytest.approx(math.radians(70), rel=1e-6)


def test_header_facts(built_3t):
    assert built_3t.scanning_sequence == "GR"
    assert built_3t.sequence_variant == "SP"
    assert built_3t.trajectory == "cartesian"
    assert built_3t.n_readout_samples == 256
    assert built_3t.readout_oversampling == 1


def test_too_short_te_is_refused_naming_te():
    with pytest.raises(SequenceError, match=r"echo time te_ms = 1 ms is below the minimum"):
        GreProtocol(te_s=0.001).build(Scanner.preset("3T"))


def test_too_short_tr_is_refused_naming_tr():
    with pytest.raises(SequenceError, match=r"repetition time tr_ms"):
        GreProtocol(tr_s=0.005).build(Scanner.preset("3T"))


def test_impossible_fov_refused_naming_readout_gradient():
    with pytest.raises(HardwareLimitError, match=r"gradient amplitude on x is [0-9.]+ mT/m, above the limit of 80"):
        GreProtocol(fov_m=0.02, readout_bandwidth_hz_per_pixel=1000).build(Scanner.preset("3T"))


def test_limit_depends_on_scanner():
    # 40 mm FOV at 500 Hz/px (dwell 7.8 us on the ADC raster: 500.8 Hz/px) needs 256 * 500.8 / 0.04 Hz/m = 75.28 mT/m:
    # fine at 3 T (80), too much at 1.5 T (45)
    p = GreProtocol(fov_m=0.04, readout_bandwidth_hz_per_pixel=500, te_s=0.008)
    built = p.build(Scanner.preset("3T"))
    assert check(built, Scanner.preset("3T")) == []
    with pytest.raises(HardwareLimitError, match=r"gradient amplitude on x is 75.28 mT/m, above the limit of 45 mT/m"):
        p.build(Scanner.preset("1.5T"))


def test_thin_slice_short_pulse_refused_naming_z():
    with pytest.raises(HardwareLimitError, match="gradient amplitude on z"):
        GreProtocol(slice_thickness_m=0.0005, rf_duration_s=0.0004).build(Scanner.preset("3T"))


def test_check_catches_a_weaker_scanner():
    """A sequence built for 3 T played on a scanner with 30 mT/m and 40 T/m/s violates amplitude and slew."""
    built = GreProtocol().build(Scanner.preset("3T"))
    weak = Scanner.preset("3T")
    gradients = dataclasses.replace(weak.gradients, max_grad_t_per_m=0.03, max_slew_t_per_m_per_s=40.0)
    weak = weak.replace(gradients=gradients)
    limits = {v.limit for v in check(built, weak)}
    assert {"gradient amplitude on x", "slew rate on x", "slew rate on z"} <= limits


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"te_s": -1.0}, "te_ms"),
        ({"fov_m": 5.0}, "fov_mm"),
        ({"matrix": 7}, "matrix"),
        ({"matrix": 64.5}, "matrix"),
        ({"flip_angle_rad": 4.0}, "flip_angle_deg"),
        ({"readout_bandwidth_hz_per_pixel": 0.0}, "readout_bandwidth_hz_per_pixel"),
        ({"slice_thickness_m": float("nan")}, "slice_thickness_mm"),
    ],
)
def test_bad_values_are_one_line_config_errors(change, key):
    with pytest.raises(ConfigError) as info:
        GreProtocol(**change)
    message = str(info.value)
    assert key in message
    assert "allowed range" in message or "whole number" in message
    assert "\n" not in message


def test_with_changes_validates_and_rejects_unknown_fields():
    assert GreProtocol().with_changes(matrix=128).matrix == 128
    with pytest.raises(ConfigError, match="unknown GreProtocol field"):
        GreProtocol().with_changes(te_ms=5)


def test_bad_phase_encode_lines():
    with pytest.raises(ConfigError, match=r"outside 0\.\.63"):
        SMALL.build(Scanner.preset("3T"), phase_encode_lines=[64])
    with pytest.raises(ConfigError, match="empty"):
        SMALL.build(Scanner.preset("3T"), phase_encode_lines=[])


@pytest.mark.parametrize("bandwidth", [130.0, 250.0, 333.0, 977.0])
def test_odd_bandwidths_pass_the_timing_check(bandwidth):
    built = SMALL.with_changes(readout_bandwidth_hz_per_pixel=bandwidth, te_s=0.009).build(Scanner.preset("3T"))
    check_timing(built)
    assert built.pixel_bandwidth_hz == pytest.approx(bandwidth, rel=0.01)


def test_multi_slice_interleaved_within_tr():
    p = SMALL.with_changes(n_slices=3, slice_gap_m=0.001, tr_s=0.05)
    built = p.build(Scanner.preset("3T"), phase_encode_lines=[10, 32])
    check_timing(built)
    assert built.duration_s == pytest.approx(2 * 0.05)
    np.testing.assert_allclose(built.slice_positions_m, [-0.006, 0.0, 0.006])
    assert [lab["SLC"] for lab in adc_labels(built.seq)] == [0, 2, 1, 0, 2, 1]
    assert [lab["LIN"] for lab in adc_labels(built.seq)] == [10, 10, 10, 32, 32, 32]
    t_exc, fp, *_ = built.seq.rf_times()
    freqs = np.asarray(fp[0])
    gz_amp = built.seq.get_block(1).gz.amplitude
    np.testing.assert_allclose(freqs / gz_amp, [-0.006, 0.006, 0.0] * 2, atol=1e-12)
    # TE holds for every slice
    t_centre = np.asarray(built.seq.adc_times()[0]).reshape(6, 64)[:, 32]
    np.testing.assert_allclose(t_centre - np.asarray(t_exc), built.te_s, atol=1e-9)


def test_multi_slice_needs_room_in_tr():
    with pytest.raises(SequenceError, match=r"repetition time tr_ms = 20 ms .* fewer slices"):
        SMALL.with_changes(n_slices=8).build(Scanner.preset("3T"), phase_encode_lines=[0])


def test_multi_slice_multiplies_sar():
    from hifield.sequence.safety import assess

    scanner = Scanner.preset("3T")
    one = assess(SMALL.with_changes(tr_s=0.06).build(scanner, phase_encode_lines=[0, 1]), scanner)
    three = assess(SMALL.with_changes(tr_s=0.06, n_slices=3).build(scanner, phase_encode_lines=[0, 1]), scanner)
    assert three.sar_whole_body_6min_w_per_kg == pytest.approx(3 * one.sar_whole_body_6min_w_per_kg, rel=1e-9)


def test_within_real_limit_but_over_design_margin_still_reports_te():
    """78 mT/m readout: over the 95 % design margin (76) but under the 3 T limit (80); the TE error must surface."""
    # 32 x 3000 Hz/px over 28.6 mm needs 96 kHz / 0.0286 m = 3.36 MHz/m = 78.8 mT/m
    p = GreProtocol(matrix=32, fov_m=0.0286, readout_bandwidth_hz_per_pixel=3000.0, te_s=0.0006, tr_s=0.05)
    with pytest.raises(SequenceError, match=r"echo time te_ms = 0\.6 ms is below the minimum"):
        p.build(Scanner.preset("3T"))
    built = p.with_changes(te_s=0.01).build(Scanner.preset("3T"))
    peaks, _ = peak_gradient_and_slew(built.seq)
    assert 0.076 < peaks[0] < 0.080
    assert not [v for v in check(built, Scanner.preset("3T")) if v.kind == "hardware"]
