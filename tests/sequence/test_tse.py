"""Spin echo, TSE and IR-TSE: echo timing, effective-TE ordering, inversion time, SAR refusal."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hifield.errors import ConfigError, SequenceError
from hifield.hardware.scanner import Scanner
from hifield.sequence import check, check_timing, get_protocol
from hifield.sequence.library.tse import IrTseProtocol, SpinEchoProtocol, TseProtocol, order_lines_for_train

from .helpers import adc_centre_times, adc_labels

SMALL_TSE = TseProtocol(matrix=32, tr_s=0.6, te_s=0.048, echo_spacing_s=0.012, echo_train_length=8)


def test_order_puts_centre_line_on_effective_echo():
    for etl, centre_echo in [(4, 0), (8, 3), (16, 7), (5, 2)]:
        shots = order_lines_for_train(list(range(64)), 64, etl, centre_echo)
        flat = [line for shot in shots for line in shot if line is not None]
        assert sorted(flat) == list(range(64))
        where = [(s, e) for s, shot in enumerate(shots) for e, line in enumerate(shot) if line == 32]
        assert where[0][1] == centre_echo


def test_tse_effective_te_and_echo_spacing_from_the_sequence():
    built = SMALL_TSE.build(Scanner.preset("3T"))
    check_timing(built)
    labels = adc_labels(built.seq)
    t_centre = adc_centre_times(built.seq, built.n_readout_samples)
    t_exc = built.seq.rf_times()[0]
    # echo spacing: consecutive ADC centres within a shot
    np.testing.assert_allclose(np.diff(t_centre[:8]), 0.012, atol=1e-9)
    # the centre line (LIN 16) sits on echo 4 (0-based 3) at TE = 48 ms after its excitation
    index = next(i for i, lab in enumerate(labels) if lab["LIN"] == 16)
    assert labels[index]["ECO"] == 3
    shot = index // 8
    assert t_centre[index] - t_exc[shot] == pytest.approx(0.048, abs=10e-6)
    assert built.te_s == pytest.approx(0.048, abs=10e-6)
    assert built.duration_s == pytest.approx(4 * 0.6, rel=1e-6)  # 32 lines / 8 echoes = 4 shots
    assert built.echo_train_length == 8
    assert built.echo_spacing_s == pytest.approx(0.012)
    assert sorted(built.phase_encode_lines.tolist()) == list(range(32))


def test_tse_refocusing_pulses_are_cpmg():
    built = SMALL_TSE.build(Scanner.preset("3T"), phase_encode_lines=range(8))
    _t, fp_exc, t_ref, fp_ref = built.seq.rf_times()
    assert len(t_ref) == 8
    np.testing.assert_allclose(np.asarray(fp_exc)[1], math.pi / 2)
    np.testing.assert_allclose(np.asarray(fp_ref)[1], 0.0)


def test_spin_echo_te_from_the_sequence():
    p = SpinEchoProtocol(matrix=32, tr_s=0.1, te_s=0.02)
    built = p.build(Scanner.preset("3T"))
    t_centre = adc_centre_times(built.seq, built.n_readout_samples)
    t_exc, _fp, t_ref, _ = built.seq.rf_times()
    np.testing.assert_allclose(t_centre - np.asarray(t_exc), 0.02, atol=20e-6)
    np.testing.assert_allclose(np.asarray(t_ref) - np.asarray(t_exc), 0.01, atol=20e-6)
    assert built.duration_s == pytest.approx(32 * 0.1, rel=1e-6)
    assert built.scanning_sequence == "SE"


def test_fewer_lines_fewer_shots():
    full = SMALL_TSE.build(Scanner.preset("3T"))
    half = SMALL_TSE.build(Scanner.preset("3T"), phase_encode_lines=range(0, 32, 2))
    assert half.duration_s == pytest.approx(full.duration_s / 2, rel=1e-9)


def test_inversion_time_from_the_sequence():
    p = IrTseProtocol(matrix=32, tr_s=2.0, ti_s=0.3, te_s=0.024, echo_spacing_s=0.012, echo_train_length=8)
    built = p.build(Scanner.preset("3T"))
    t_exc = built.seq.rf_times()[0]
    seq = built.seq
    rf_centres = []
    t = 0.0
    for block_id in seq.block_events:
        block = seq.get_block(block_id)
        if block.rf is not None and block.rf.use == "inversion":
            rf_centres.append(t + block.rf.delay + block.rf.center)
        t += seq.block_durations[block_id]
    assert len(rf_centres) == 4
    np.testing.assert_allclose(np.asarray(t_exc) - np.asarray(rf_centres), 0.3, atol=2e-6)
    assert built.ti_s == pytest.approx(0.3, abs=10e-6)
    assert built.scanning_sequence == "IR\\SE"


def test_flair_and_stir_defaults():
    flair, stir = get_protocol("flair_2d"), get_protocol("stir_2d")
    # FLAIR nulls CSF (T1 4.3 s at 3 T) with finite TR: TI = T1 ln(2 / (1 + exp(-TR/T1)))
    t1_csf = 4.3
    assert flair.ti_s == pytest.approx(t1_csf * math.log(2 / (1 + math.exp(-flair.tr_s / t1_csf))), rel=0.02)
    # STIR nulls fat (T1 382 ms at 3 T): TI = T1 ln 2
    assert stir.ti_s == pytest.approx(0.382 * math.log(2), rel=0.01)


def test_te_must_be_multiple_of_echo_spacing():
    with pytest.raises(ConfigError, match=r"te_ms = 50 must be a whole multiple"):
        TseProtocol(te_s=0.05, echo_spacing_s=0.012)
    with pytest.raises(ConfigError, match=r"te_ms = 240 must be a whole multiple .*echo_train_length = 16"):
        TseProtocol(te_s=0.24, echo_spacing_s=0.012)


def test_too_short_echo_spacing_refused():
    with pytest.raises(SequenceError, match="echo spacing echo_spacing_ms = 3 ms is below the minimum"):
        TseProtocol(te_s=0.048, echo_spacing_s=0.003).build(Scanner.preset("3T"))


def test_short_tr_tse_at_5t_refused_for_sar():
    p = TseProtocol(tr_s=0.5)
    scanner = Scanner.preset("5T")
    limits = {v.limit: v for v in check(p.build(scanner, phase_encode_lines=range(0, 256, 4)), scanner)}
    assert "whole-body SAR (6 min) in normal mode" in limits
    assert limits["whole-body SAR (6 min) in normal mode"].kind == "safety"


def test_tse_refocusing_pulse_peak_b1_refused_at_7t():
    p = TseProtocol(refocusing_duration_s=0.0015)
    scanner = Scanner.preset("7T")
    limits = {v.limit for v in check(p.build(scanner, phase_encode_lines=range(16)), scanner)}
    assert "RF peak B1" in limits


def _rf_events(built):
    """(start time [s], frequency offset [Hz], slice-select amplitude [Hz/m]) of every RF pulse."""
    out, t = [], 0.0
    for block_id, duration in built.seq.block_durations.items():
        block = built.seq.get_block(block_id)
        if block.rf is not None:
            out.append((t + block.rf.delay, block.rf.freq_offset, block.gz.amplitude))
        t += duration
    return np.asarray(out)


def test_tse_multi_slice_plays_every_slice_interleaved_within_tr():
    p = SMALL_TSE.with_changes(n_slices=3, slice_gap_m=0.001, tr_s=1.0)
    built = p.build(Scanner.preset("3T"), phase_encode_lines=list(range(8)))
    check_timing(built)
    assert built.duration_s == pytest.approx(1.0)  # one shot of 8 echoes per slice, all slices within one TR
    np.testing.assert_allclose(built.slice_positions_m, [-0.006, 0.0, 0.006])
    slc = [lab["SLC"] for lab in adc_labels(built.seq)]
    assert slc == [0] * 8 + [2] * 8 + [1] * 8
    # excitation + 8 refocusing pulses per slice, each shifted in frequency to its slice's z
    rf = _rf_events(built).reshape(3, 9, 3)
    z = rf[..., 1] / rf[..., 2]
    np.testing.assert_allclose(z, np.repeat([[-0.006], [0.006], [0.0]], 9, axis=1), atol=1e-12)
    # TE holds for every slice: echo 4 (0-based 3) comes TE after each excitation's start (same pulse each time)
    t_centre = adc_centre_times(built.seq, built.n_readout_samples).reshape(3, 8)
    np.testing.assert_allclose(np.diff(t_centre[:, 3] - rf[:, 0, 0]), 0.0, atol=1e-9)


def test_tse_stack_needs_room_in_tr():
    with pytest.raises(SequenceError, match=r"repetition time tr_ms = 600 ms .* fewer slices"):
        SMALL_TSE.with_changes(n_slices=8).build(Scanner.preset("3T"))


def test_tse_stack_sar_scales_with_slices():
    from hifield.sequence.safety import assess

    scanner = Scanner.preset("7T")
    one = assess(SMALL_TSE.with_changes(tr_s=1.0).build(scanner, phase_encode_lines=list(range(16))), scanner)
    p3 = SMALL_TSE.with_changes(tr_s=1.0, n_slices=3)
    three = assess(p3.build(scanner, phase_encode_lines=list(range(16))), scanner)
    assert three.sar_head_6min_w_per_kg == pytest.approx(3 * one.sar_head_6min_w_per_kg, rel=1e-6)


def test_flair_stack_interleaves_inversions_within_ti():
    """A FLAIR stack: inversions of later slices play during the TI of earlier ones; TI is kept."""
    p = get_protocol("flair_2d").with_changes(n_slices=6, matrix=32, echo_train_length=8, te_s=0.048, tr_s=4.0)
    built = p.build(Scanner.preset("3T"), phase_encode_lines=list(range(8)))
    check_timing(built)
    assert built.duration_s == pytest.approx(4.0)
    assert built.ti_s == pytest.approx(2.5, abs=5e-4)  # slot lengths on the 10 us raster, ~20 slots within TI
    assert sorted({lab["SLC"] for lab in adc_labels(built.seq)}) == list(range(6))
    rf = _rf_events(built)
    z = rf[:, 1] / rf[:, 2]
    inv_amp = rf[0, 2]  # the first pulse is an inversion (thicker slab: lower slice-select amplitude)
    is_inv = np.isclose(rf[:, 2], inv_amp)
    assert is_inv.sum() == 6 and rf.shape[0] == 6 * (1 + 1 + 8)
    for zs in built.slice_positions_m:
        t_inv = rf[is_inv & np.isclose(z, zs, atol=1e-9), 0]
        exc = ~is_inv & np.isclose(z, zs, atol=1e-9)
        t_exc = rf[exc, 0][0]  # the excitation comes first among this slice's pulses
        assert t_inv.size == 1
        # inversion start to excitation start: TI, give or take the two pulses' centre offsets (< 5 ms)
        assert abs((t_exc - t_inv[0]) - built.ti_s) < 0.005
