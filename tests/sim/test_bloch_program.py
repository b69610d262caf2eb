"""The sequence compiler of the bloch engine: exact gradient areas, ADC times and RF phases against pypulseq."""

from __future__ import annotations

import math

import numpy as np
import pytest

pp = pytest.importorskip("pypulseq")

from hifield.sim.engines.bloch_program import OP_FREE, OP_REPEAT, OP_RF, compile_sequence  # noqa: E402

SYS = pp.Opts(max_grad=40, grad_unit="mT/m", max_slew=150, slew_unit="T/m/s", rf_dead_time=100e-6)


def _mixed_sequence():  # type: ignore[no-untyped-def]
    """RF with a slice gradient, an arbitrary gradient, an extended trapezoid and ramp-sampled readouts."""
    seq = pp.Sequence(SYS)
    rf, gz, gzr = pp.make_sinc_pulse(
        flip_angle=0.3, duration=1e-3, slice_thickness=5e-3, system=SYS, return_gz=True, delay=SYS.rf_dead_time
    )
    t = np.arange(60) * SYS.grad_raster_time
    arb = pp.make_arbitrary_grad("y", 2e5 * np.sin(np.pi * t / t[-1]) ** 2, first=0.0, last=0.0, system=SYS)
    ext = pp.make_extended_trapezoid(
        "x", times=np.array([0, 1e-4, 3e-4, 5e-4]), amplitudes=np.array([0, -3e5, -1e5, 0])
    )
    gx = pp.make_trapezoid("x", flat_area=64 / 0.24, flat_time=2e-3, system=SYS)
    adc = pp.make_adc(100, duration=gx.rise_time + gx.flat_time, delay=0, system=SYS)  # samples on the ramp too
    for k in range(3):
        rf.phase_offset = 0.5 * k
        adc.phase_offset = 0.5 * k
        seq.add_block(rf, gz)
        seq.add_block(gzr, arb)
        seq.add_block(ext)
        seq.add_block(gx, adc)
        seq.add_block(pp.make_delay(1e-3))
    return seq


def test_gradient_areas_at_adc_samples_match_pypulseq_kspace() -> None:
    seq = _mixed_sequence()
    program = compile_sequence(seq)
    k_adc = np.asarray(seq.calculate_kspace()[0])  # (x, y, z) [1/m], excitation resets k
    k = np.zeros(3)
    ours = np.zeros((program.n_samples, 3))
    for i in range(program.n_ops):
        if program.op[i] == OP_RF:
            # k restarts at the pulse centre: keep the area played after the centre of the pulse's own steps
            p = program.pulse[i]
            sl = slice(program.pulse_start[p], program.pulse_stop[p])
            t = np.cumsum(program.rf_dt[sl])
            after = t > t[-1] / 2
            k = program.rf_area[sl][after].sum(axis=0) / (2 * math.pi)
            continue
        k = k + program.area[i] / (2 * math.pi)
        if program.adc[i] >= 0:
            ours[program.adc[i]] = k
    np.testing.assert_allclose(ours[:, ::-1], k_adc.T, atol=1e-6)


def test_adc_times_phases_and_operation_kinds() -> None:
    seq = _mixed_sequence()
    program = compile_sequence(seq)
    t_adc = np.asarray(seq.adc_times()[0]) if hasattr(seq, "adc_times") else None
    assert program.n_adc == 3 and program.n_samples == 300
    if t_adc is not None:
        np.testing.assert_allclose(program.sample_time, t_adc, atol=1e-9)
    # identical pulses share one compiled pulse; their phases follow the RF phase offsets, in the sense opposite to
    # the precession (the kernel turns the axis by -phase; the receiver demodulates by exp(-i adc.phase_offset))
    assert program.pulse_start.size == 1
    np.testing.assert_allclose(program.phase[program.op == OP_RF], [0.0, -0.5, -1.0])
    np.testing.assert_allclose(np.angle(program.demod[[0, 100, 200]]), [0.0, -0.5, -1.0], atol=1e-12)
    # flat-top samples reuse the previous rotation; ramp samples do not
    kinds = program.op[program.adc >= 0]
    assert np.count_nonzero(kinds == OP_REPEAT) > 50 and np.count_nonzero(kinds == OP_FREE) >= 6
    assert program.duration_s == pytest.approx(float(seq.duration()[0]))
    assert program.raster_steps() > 3 * 1000  # every 1 us RF sample of all three pulses counts
