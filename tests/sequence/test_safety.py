"""Safety models against analytic results, and refusals that name the limit pushed past."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hifield.errors import HardwareLimitError, SafetyLimitError
from hifield.hardware.scanner import Scanner
from hifield.sequence import GreProtocol, check, raise_for_violations
from hifield.sequence.safety import assess, check_safety, gradient_rms_window, pns_percent, rf_pulses, windowed_max_mean
from hifield.sequence.safety_models import PnsCoil, pns_coil_for, sar_constant_w_per_kg_per_t2
from hifield.units import GAMMA_BAR_HZ_PER_T

pp = pytest.importorskip("pypulseq")

LOOSE = dict(max_grad=500, grad_unit="mT/m", max_slew=5000, slew_unit="T/m/s")
SMALL = GreProtocol(matrix=64, tr_s=0.02, te_s=0.006)


def block_pulse_train(flip_rad: float, duration_s: float, tr_s: float, n: int):
    system = pp.Opts(**LOOSE)
    seq = pp.Sequence(system=system)
    rf = pp.make_block_pulse(flip_angle=flip_rad, duration=duration_s, delay=system.rf_dead_time, system=system)
    for _ in range(n):
        seq.add_block(rf)
        seq.add_block(pp.make_delay(tr_s - pp.calc_duration(rf)))
    return seq


def test_sar_constant_quadratic_in_field_and_radius():
    k3 = sar_constant_w_per_kg_per_t2(3.0, 0.1)
    assert sar_constant_w_per_kg_per_t2(6.0, 0.1) == pytest.approx(4 * k3)
    assert sar_constant_w_per_kg_per_t2(3.0, 0.2) == pytest.approx(4 * k3)
    # sigma omega^2 R^2 / (10 rho) by hand at 3 T, R = 0.1 m, sigma = 0.5 S/m, rho = 1000 kg/m^3
    omega = 2 * math.pi * GAMMA_BAR_HZ_PER_T * 3.0
    assert k3 == pytest.approx(0.5 * omega**2 * 0.01 / 1e4)


def test_b1_rms_of_block_pulses_is_analytic():
    flip, tau, tr = math.radians(90), 1e-3, 0.01
    seq = block_pulse_train(flip, tau, tr, 20)
    b1 = flip / (2 * math.pi * GAMMA_BAR_HZ_PER_T * tau)
    pulses = rf_pulses(seq)
    assert pulses.times_s.size == 20
    np.testing.assert_allclose(pulses.peak_t, b1, rtol=1e-9)
    np.testing.assert_allclose(pulses.energy_t2_s, b1**2 * tau, rtol=1e-6)
    report = assess(seq, Scanner.preset("3T"))
    assert report.b1_rms_t == pytest.approx(b1 * math.sqrt(tau / tr), rel=1e-6)


def test_sar_windows_equal_for_steady_train_and_scale_with_flip_squared():
    scanner = Scanner.preset("3T")
    r1 = assess(block_pulse_train(math.radians(30), 1e-3, 0.01, 50), scanner)
    r2 = assess(block_pulse_train(math.radians(60), 1e-3, 0.01, 50), scanner)
    k_head = sar_constant_w_per_kg_per_t2(3.0, 0.1)
    assert r1.sar_head_6min_w_per_kg == pytest.approx(k_head * r1.b1_rms_t**2, rel=1e-9)
    assert r1.sar_head_10s_w_per_kg == pytest.approx(r1.sar_head_6min_w_per_kg, rel=1e-9)
    assert r2.sar_head_6min_w_per_kg == pytest.approx(4 * r1.sar_head_6min_w_per_kg, rel=1e-6)
    assert r2.sar_whole_body_10s_w_per_kg == pytest.approx(4 * r1.sar_whole_body_10s_w_per_kg, rel=1e-6)


def test_windowed_mean_finds_the_worst_window():
    # 60 s of sequence: one burst of energy 10 in the first 5 s, nothing after
    t = np.concatenate([np.linspace(0, 5, 50, endpoint=False), [30.0]])
    e = np.concatenate([np.full(50, 0.2), [0.0]])
    assert windowed_max_mean(t, e, 60.0, 10.0) == pytest.approx(1.0)
    assert windowed_max_mean(t, e, 60.0, 360.0) == pytest.approx(10 / 60)


@pytest.mark.parametrize("ramp_s", [0.1e-3, 0.2e-3, 0.5e-3, 1e-3])
def test_pns_single_ramp_reaches_100_percent_on_the_iec_hyperbola(ramp_s):
    coil = PnsCoil(chronaxie_s=360e-6, rheobase_t_per_s=20.0, effective_length_m=0.324)
    slew = coil.min_slew_t_per_m_per_s * (1 + coil.chronaxie_s / ramp_s)  # T/m/s
    system = pp.Opts(**LOOSE)
    seq = pp.Sequence(system=system)
    amp = slew * ramp_s * GAMMA_BAR_HZ_PER_T
    g = pp.make_trapezoid("x", amplitude=amp, rise_time=ramp_s, fall_time=ramp_s, flat_time=0.1, system=system)
    seq.add_block(g)
    total, per_axis = pns_percent(seq, coil)
    assert total == pytest.approx(100.0, rel=2e-3)
    assert per_axis[1] == 0 and per_axis[2] == 0


def test_pns_published_values():
    """Slew rates at threshold for the XRMW coil quoted in the reference notes: 284/173/106/84 T/m/s."""
    coil = PnsCoil(chronaxie_s=360e-6, rheobase_t_per_s=20.0, effective_length_m=0.324)
    for ramp, expected in [(0.1e-3, 284), (0.2e-3, 173), (0.5e-3, 106), (1e-3, 84)]:
        assert coil.min_slew_t_per_m_per_s * (1 + coil.chronaxie_s / ramp) == pytest.approx(expected, abs=0.6)


def test_pns_combines_axes_as_root_sum_square():
    coil = pns_coil_for(3.0)
    system = pp.Opts(**LOOSE)
    one, three = pp.Sequence(system=system), pp.Sequence(system=system)
    gx = pp.make_trapezoid("x", amplitude=40e-3 * GAMMA_BAR_HZ_PER_T, rise_time=4e-4, flat_time=0.1, system=system)
    gy = pp.make_trapezoid("y", amplitude=40e-3 * GAMMA_BAR_HZ_PER_T, rise_time=4e-4, flat_time=0.1, system=system)
    gz = pp.make_trapezoid("z", amplitude=40e-3 * GAMMA_BAR_HZ_PER_T, rise_time=4e-4, flat_time=0.1, system=system)
    one.add_block(gx)
    three.add_block(gx, gy, gz)
    assert pns_percent(three, coil)[0] == pytest.approx(math.sqrt(3) * pns_percent(one, coil)[0], rel=1e-9)


def test_gradient_rms_of_a_constant_gradient():
    system = pp.Opts(**LOOSE)
    seq = pp.Sequence(system=system)
    amp = 20e-3 * GAMMA_BAR_HZ_PER_T
    g = pp.make_trapezoid("y", amplitude=amp, rise_time=1e-3, flat_time=8e-3, system=system)
    for _ in range(10):
        seq.add_block(g)
        seq.add_block(pp.make_delay(10e-3))
    # per 20 ms: flat 8 ms at G plus two 1 ms ramps (integral G^2 t / 3 each)
    expected = 20e-3 * math.sqrt((8e-3 + 2 * 1e-3 / 3) / 20e-3)
    assert gradient_rms_window(seq, 0.2)[1] == pytest.approx(expected, rel=1e-9)
    assert gradient_rms_window(seq, 0.2)[0] == 0


@pytest.mark.parametrize(
    "preset", [pytest.param(p, marks=[] if p == "3T" else [pytest.mark.slow]) for p in ("1.5T", "3T", "5T", "7T")]
)
def test_default_gre_report_is_within_every_limit(preset):
    scanner = Scanner.preset(preset)
    report = assess(GreProtocol().build(scanner), scanner)
    assert report.pns_percent < 80
    assert report.sar_whole_body_6min_w_per_kg < 2
    assert report.b1_peak_t < scanner.rf.max_b1_t


def limits_of(protocol, preset, mode="normal"):
    scanner = Scanner.preset(preset)
    return {v.limit: v for v in check(protocol.build(scanner), scanner, mode=mode)}


@pytest.mark.parametrize(
    ("preset", "limit", "maximum"),
    [("5T", "whole-body SAR (6 min) in normal mode", 2.0), ("7T", "head SAR (6 min) in normal mode", 3.2)],
)
def test_sar_refused_for_short_tr_large_flip(preset, limit, maximum):
    p = SMALL.with_changes(flip_angle_rad=math.radians(90), tr_s=0.012, te_s=0.005)
    found = limits_of(p, preset)
    assert limit in found
    v = found[limit]
    assert v.kind == "safety" and v.maximum == maximum and v.value > maximum
    assert "longer TR" in v.hint
    with pytest.raises(SafetyLimitError, match=limit.split(" (")[0]):
        raise_for_violations(list(found.values()))


def test_first_level_mode_allows_more_whole_body_sar():
    p = SMALL.with_changes(flip_angle_rad=math.radians(75), tr_s=0.012, te_s=0.005)
    normal = limits_of(p, "5T")
    first = limits_of(p, "5T", mode="first_level")
    assert "whole-body SAR (6 min) in normal mode" in normal
    assert not any("whole-body SAR (6 min)" in k for k in first)


def test_rf_peak_refused_for_short_large_flip_pulse():
    p = SMALL.with_changes(flip_angle_rad=math.radians(90), rf_duration_s=0.0005, tr_s=0.2)
    found = limits_of(p, "7T")
    assert "RF peak B1" in found
    assert found["RF peak B1"].maximum == pytest.approx(13.0)
    assert found["RF peak B1"].kind == "hardware"


def test_pns_refused_in_fast_gradient_mode():
    found = limits_of(SMALL.with_changes(gradient_mode="fast"), "3T")
    assert "PNS in normal mode" in found
    assert found["PNS in normal mode"].value > 80
    with pytest.raises(SafetyLimitError, match=r"PNS in normal mode is [0-9.]+ % of threshold, above the limit of 80"):
        raise_for_violations([found["PNS in normal mode"]])


def test_gradient_duty_cycle_refused_for_strong_readout_at_short_tr():
    # 128 x 1000 Hz/px over 45 mm: a 67 mT/m readout and its spoiler nearly all the time at TR 7 ms
    p = GreProtocol(
        matrix=128,
        fov_m=0.045,
        readout_bandwidth_hz_per_pixel=1000,
        tr_s=0.007,
        te_s=0.0025,
        rf_duration_s=0.001,
        flip_angle_rad=0.2,
        gradient_mode="fast",
    )
    found = limits_of(p, "3T")
    assert "gradient RMS (duty cycle) on x over 10 s" in found
    assert found["gradient RMS (duty cycle) on x over 10 s"].maximum == pytest.approx(45.0)
    assert found["gradient RMS (duty cycle) on x over 10 s"].value > 45.0
    with pytest.raises(HardwareLimitError, match="gradient RMS"):
        raise_for_violations(list(found.values()))


# --- calibration of the PNS model (issue 19): IEC default vs pypulseq's SAFE model on the same waveforms ---------


def _community_flash():
    from .community import community_flash

    return community_flash(64)


def test_community_flash_passes_normal_mode_at_3t():
    """pypulseq's write_gradient_echo layout at 28 mT/m and 150 T/m/s runs on 3 T scanners in normal mode."""
    seq = _community_flash()
    scanner = Scanner.preset("3T")
    report = assess(seq, scanner)
    assert 50 < report.pns_percent < 80
    assert not [v for v in check_safety(seq, scanner) if "PNS" in v.limit]


def test_published_ge_coil_values_are_more_conservative_than_the_iec_default():
    from hifield.sequence.safety_models import GE_PNS_COILS, IEC_DEFAULT_PNS

    seq = _community_flash()
    iec = pns_percent(seq, IEC_DEFAULT_PNS)[0]
    for coil in GE_PNS_COILS.values():
        ge = pns_percent(seq, coil)[0]
        assert ge > 80 > iec


def _safe_percent(seq, hardware, *, until_s: float = 0.7) -> float:
    """pypulseq's SAFE prediction over the first ``until_s`` (its filters are slow on long, mostly idle sequences)."""
    _ok, norm, _components, _t = seq.calculate_pns(hardware, time_range=[0.0, until_s], do_plots=False)
    return 100 * float(norm.max())


def _fast_epi():
    from hifield.sequence.library.epi import EpiProtocol

    p = EpiProtocol(matrix=64, fov_m=0.2, readout_bandwidth_hz_per_pixel=2500, te_s=0.04, gradient_mode="fast")
    return p.build(Scanner.preset("3T")).seq


def test_iec_model_agrees_with_pypulseq_safe_model_on_the_same_waveforms():
    """Our convolution (hyperbolic) model against pypulseq's calc_pns with the SAFE description of the same
    strength-duration curve: the filters differ in shape (1/(c+t)^2 against an exponential), so they agree within
    25 % on a FLASH, a TSE and an EPI, and agree on the verdict."""
    from hifield.sequence.library.tse import TseProtocol
    from hifield.sequence.safety_models import IEC_DEFAULT_PNS, safe_hardware

    tse = TseProtocol(matrix=32, tr_s=0.4, echo_train_length=8).build(Scanner.preset("3T")).seq
    hw = safe_hardware(IEC_DEFAULT_PNS)
    for seq in (_community_flash(), tse, _fast_epi()):
        ours = pns_percent(seq, IEC_DEFAULT_PNS)[0]
        safe = _safe_percent(seq, hw)
        assert ours == pytest.approx(safe, rel=0.25)
        assert (ours > 100) == (safe > 100)


def test_safe_example_hardware_gives_the_same_verdicts():
    """The SAFE example hardware published with safe_pns_prediction (and pypulseq): the community FLASH is within
    its limit, the fast EPI readout is over it, as with the IEC default."""
    from pypulseq.utils.safe_pns_prediction import safe_example_hw

    from hifield.sequence.safety_models import IEC_DEFAULT_PNS

    flash, epi = _community_flash(), _fast_epi()
    assert _safe_percent(flash, safe_example_hw(), until_s=0.2) < 100
    assert pns_percent(flash, IEC_DEFAULT_PNS)[0] < 80
    assert _safe_percent(epi, safe_example_hw(), until_s=0.2) > 100
    assert pns_percent(epi, IEC_DEFAULT_PNS)[0] > 100


def test_overstimulating_epi_readout_is_refused_even_in_first_level_mode():
    scanner = Scanner.preset("3T")
    for mode in ("normal", "first_level"):
        found = {v.limit: v for v in check_safety(_fast_epi(), scanner, mode=mode)}
        assert f"PNS in {mode} mode" in found


@pytest.mark.parametrize("preset", ["1.5T", "3T", "5T", "7T"])
def test_normal_mode_slew_is_derived_from_the_model(preset):
    """A full-amplitude ramp at the normal-mode slew on two axes at once is exactly at the normal-mode limit."""
    from hifield.sequence._design import DESIGN_SAFETY_MARGIN, design_slew_t_per_m_per_s

    scanner = Scanner.preset(preset)
    coil = pns_coil_for(scanner.b0_t)
    slew = design_slew_t_per_m_per_s(scanner, "normal")
    excursion = scanner.gradients.max_grad_t_per_m * (1 - DESIGN_SAFETY_MARGIN)
    ramp = excursion / slew
    assert 100 * math.sqrt(2) * slew / coil.threshold_slew_t_per_m_per_s(ramp) == pytest.approx(80.0)
    assert slew > 60.0  # faster than the 57 T/m/s of the former model at 1.5 T, 3 T and 7 T


def test_normal_mode_design_is_rebuilt_below_the_limit():
    """At 1.5 T the derived slew lets the GRE's three simultaneous ramps reach 81 %; the build backs the slew off."""
    scanner = Scanner.preset("1.5T")
    built = GreProtocol().build(scanner)
    assert assess(built, scanner).pns_percent <= 80


@pytest.mark.parametrize(("n", "m"), [(1, 1), (7, 3), (3, 7), (5000, 2001), (70_000, 2001)])
def test_pns_overlap_add_equals_direct_convolution(n, m):
    from hifield.sequence.safety import _overlap_add

    rng = np.random.default_rng(n + m)
    signal, kernel = rng.standard_normal(n), rng.standard_normal(m)
    expected = np.convolve(signal, kernel)
    np.testing.assert_allclose(_overlap_add(signal, kernel), expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_checking_a_sequence_imports_no_scipy_signal():
    """scipy.signal costs about 0.5 s of every command that checks a sequence (PNS convolution is numpy's FFT)."""
    import subprocess
    import sys

    code = (
        "import sys; from hifield.hardware import Scanner; from hifield.sequence import GreProtocol, check; "
        "s = Scanner.preset('3T'); check(GreProtocol(matrix=32).build(s), s); print('scipy.signal' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "False"
