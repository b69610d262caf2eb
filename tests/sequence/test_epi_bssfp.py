"""EPI (k-space grid, TE, echo spacing, PNS) and balanced SSFP (zero moments, TE = TR/2, alternating phase)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from hifield.hardware.scanner import Scanner
from hifield.sequence import check, check_timing
from hifield.sequence.checks import gradient_waveforms
from hifield.sequence.library.bssfp import BssfpProtocol
from hifield.sequence.library.epi import EpiProtocol

from .helpers import adc_centre_times, adc_labels


def epi_kspace_grid(built):
    """Sampled k (1/m) per line after reversing REV lines: shape (lines, samples, 2)."""
    n = built.n_readout_samples
    k = built.seq.calculate_kspace()[0]
    kx = k[0].reshape(-1, n)
    ky = k[1].reshape(-1, n)
    labels = adc_labels(built.seq)
    for i, lab in enumerate(labels):
        if lab.get("REV"):
            kx[i] = kx[i][::-1]
            ky[i] = ky[i][::-1]
    return kx, ky, labels


@pytest.mark.parametrize("n_shots", [1, 4])
def test_epi_samples_the_cartesian_grid(n_shots):
    p = EpiProtocol(matrix=32, fov_m=0.2, te_s=0.03, n_shots=n_shots, tr_s=0.1)
    built = p.build(Scanner.preset("3T"))
    check_timing(built)
    kx, ky, labels = epi_kspace_grid(built)
    dk = 1 / 0.2
    expected_kx = (np.arange(32) - 16) * dk
    for i, lab in enumerate(labels):
        np.testing.assert_allclose(kx[i], expected_kx, atol=1e-6 * dk * 32)
        np.testing.assert_allclose(ky[i], (lab["LIN"] - 16) * dk, atol=1e-6 * dk * 32)
    assert sorted(lab["LIN"] for lab in labels) == list(range(32))
    assert {lab["SEG"] for lab in labels} == set(range(n_shots))


def test_epi_te_and_echo_spacing():
    p = EpiProtocol(matrix=32, fov_m=0.2, te_s=0.03, tr_s=0.1)
    built = p.build(Scanner.preset("3T"))
    t_centre = adc_centre_times(built.seq, built.n_readout_samples)
    np.testing.assert_allclose(np.diff(t_centre), built.echo_spacing_s, atol=1e-9)
    labels = adc_labels(built.seq)
    i = next(i for i, lab in enumerate(labels) if lab["LIN"] == 16)
    t_exc = built.seq.rf_times()[0][0]
    assert t_centre[i] - t_exc == pytest.approx(0.03, abs=10e-6)
    assert built.te_s == pytest.approx(0.03, abs=10e-6)


@pytest.mark.parametrize("spin_echo", [False, True])
@pytest.mark.parametrize("preset", ["1.5T", "3T", "7T"])
def test_reported_echo_spacing_is_the_time_between_readout_centres_at_every_field(preset, spin_echo):
    # the default 64-line EPI in normal gradient mode, whose slew rate the PNS limit sets per field: the echo
    # spacing the sequence reports (which the distortion and the header use) is the one it plays
    p = EpiProtocol(spin_echo=spin_echo, te_s=0.08 if spin_echo else 0.04)
    built = p.build(Scanner.preset(preset))
    t_centre = adc_centre_times(built.seq, built.n_readout_samples)
    assert t_centre.size == p.matrix
    np.testing.assert_allclose(np.diff(t_centre), built.echo_spacing_s, rtol=0, atol=1e-9)


def test_spin_echo_epi_refocuses_at_half_te():
    p = EpiProtocol(matrix=32, fov_m=0.2, te_s=0.06, spin_echo=True, tr_s=0.2, flip_angle_rad=math.pi / 2)
    built = p.build(Scanner.preset("3T"))
    t_exc, _f, t_ref, _g = built.seq.rf_times()
    assert t_ref[0] - t_exc[0] == pytest.approx(0.03, abs=10e-6)
    assert built.scanning_sequence == "SE\\EP"


def test_fast_epi_refused_for_pns():
    p = EpiProtocol(matrix=64, fov_m=0.2, readout_bandwidth_hz_per_pixel=4000, te_s=0.03, gradient_mode="fast")
    scanner = Scanner.preset("3T")
    found = {v.limit: v for v in check(p.build(scanner), scanner)}
    assert "PNS in normal mode" in found
    assert found["PNS in normal mode"].value > 80


def test_epi_too_short_te_names_te():
    from hifield.errors import SequenceError

    with pytest.raises(SequenceError, match="echo time te_ms = 10 ms"):
        EpiProtocol(te_s=0.01).build(Scanner.preset("3T"))


def _moment_between(wave, t0, t1):
    t, g = wave
    grid = np.linspace(t0, t1, 200001)
    return np.trapezoid(np.interp(grid, t, g), grid)


def test_bssfp_is_balanced_with_te_half_tr():
    p = BssfpProtocol(matrix=32, n_dummy_scans=2, tr_s=0.008)
    built = p.build(Scanner.preset("3T"), phase_encode_lines=[0, 5, 16, 31])
    check_timing(built)
    t_exc, fp, *_ = built.seq.rf_times()
    t_exc = np.asarray(t_exc)
    assert built.tr_s == pytest.approx(0.008)
    np.testing.assert_allclose(np.diff(t_exc[1:]), 0.008, atol=1e-9)
    # alpha/2 preparation TR/2 before the first alpha
    assert t_exc[1] - t_exc[0] == pytest.approx(0.004, abs=1e-6)
    waves = gradient_waveforms(built.seq)
    peak = max(np.abs(w[1]).max() for w in waves) * 0.008
    for a, b in itertools.pairwise(t_exc[1:]):
        for wave in waves:
            assert abs(_moment_between(wave, a, b)) < 1e-4 * peak
    phases = np.asarray(fp[1])[1:] % (2 * math.pi)
    np.testing.assert_allclose(np.abs(np.diff(phases)), math.pi, atol=1e-9)
    t_centre = adc_centre_times(built.seq, built.n_readout_samples)
    np.testing.assert_allclose(t_centre - t_exc[-4:], 0.004, atol=10e-6)
    assert built.te_s == pytest.approx(0.004, abs=10e-6)
    assert built.sequence_variant == "SS"


def test_bssfp_sar_over_limit_at_7t_with_large_flip():
    p = BssfpProtocol(flip_angle_rad=math.radians(70))
    scanner = Scanner.preset("7T")
    limits = {v.limit for v in check(p.build(scanner), scanner)}
    assert "head SAR (6 min) in normal mode" in limits


def test_partial_fourier_epi_reaches_a_shorter_te():
    from hifield.errors import SequenceError

    scanner = Scanner.preset("3T")
    with pytest.raises(SequenceError, match="echo time te_ms = 25 ms"):
        EpiProtocol(te_s=0.025).build(scanner)
    built = EpiProtocol(te_s=0.025, partial_fourier=0.75).build(scanner)
    assert built.phase_encode_lines.tolist() == list(range(16, 64))
    assert built.te_s == pytest.approx(0.025, abs=10e-6)
    assert check(built, scanner) == []


def test_partial_fourier_validated():
    from hifield.errors import ConfigError
    from hifield.sequence.library.radial import RadialProtocol

    with pytest.raises(ConfigError, match=r"partial_fourier = 0\.4 is outside the allowed range 0\.5 to 1"):
        EpiProtocol(partial_fourier=0.4)
    with pytest.raises(ConfigError, match="Cartesian protocols only"):
        RadialProtocol(partial_fourier=0.75)
