"""The vectorised Bloch kernel against the matrix exponential of the Bloch equations, on both of its pulse paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

pp = pytest.importorskip("pypulseq")

from hifield.sim.engines.bloch import RECEIVER_PHASE, bloch_signal  # noqa: E402
from hifield.sim.engines.bloch_program import OP_RF, compile_sequence  # noqa: E402

SYS = pp.Opts(rf_raster_time=1e-6, rf_dead_time=0, rf_ringdown_time=0, adc_dead_time=0)


def _generator(omega_x: float, omega_y: float, omega_z: float, t1: float, t2: float) -> np.ndarray:
    """4 x 4 generator of ``d(Mx, My, Mz, 1)/dt`` for ``dM/dt = M × Ω`` with relaxation."""
    return np.array(
        [
            [-1.0 / t2, omega_z, -omega_y, 0.0],
            [-omega_z, -1.0 / t2, omega_x, 0.0],
            [omega_y, -omega_x, -1.0 / t1, 1.0 / t1],
            [0.0, 0.0, 0.0, 0.0],
        ]
    )


def _expected(program, off_hz: float, t1: float, t2: float) -> complex:  # type: ignore[no-untyped-def]
    """Exact solution through the program's operations (constant RF on each pulse: hard pulses)."""
    dw = 2.0 * math.pi * off_hz
    m = np.array([0.0, 0.0, 1.0, 1.0])
    for k in range(program.n_ops):
        if program.op[k] == OP_RF:
            p = int(program.pulse[k])
            rate = (
                program.rf_w[program.pulse_start[p] : program.pulse_stop[p]]
                / program.rf_dt[program.pulse_start[p] : program.pulse_stop[p]]
            )
            assert np.allclose(rate, rate[0])  # a hard pulse: one constant rotation rate
            omega = rate[0] * np.exp(-1j * program.phase[k])
            m = scipy.linalg.expm(_generator(omega.real, omega.imag, dw, t1, t2) * program.dt[k]) @ m
        else:
            assert not program.area[k].any()  # no gradients in this sequence
            m = scipy.linalg.expm(_generator(0.0, 0.0, dw, t1, t2) * program.dt[k]) @ m
        if program.adc[k] >= 0:
            return complex(m[0], m[1]) * complex(program.demod[program.adc[k]]) * RECEIVER_PHASE
    raise AssertionError("no ADC sample")


def test_hard_pulses_on_the_series_and_the_exact_rotation_paths_match_the_matrix_exponential() -> None:
    """A 1 ms 90° hard pulse (0.0016 rad per 1 µs sample: the branch-free Taylor path), a 10 µs 180° pulse of phase
    90° (0.31 rad per sample: the cos/sin path) and free precession, for off-resonances from 0 to 20 kHz (up to
    0.13 rad per sample on their own), with T1 and T2 acting during the pulses."""
    seq = pp.Sequence(SYS)
    seq.add_block(pp.make_block_pulse(math.pi / 2, duration=1e-3, system=SYS))
    seq.add_block(pp.make_delay(2e-3))
    seq.add_block(pp.make_block_pulse(math.pi, duration=10e-6, phase_offset=math.pi / 2, system=SYS))
    seq.add_block(pp.make_adc(1, dwell=1e-6, delay=1.5e-3, system=SYS))
    program = compile_sequence(seq)
    assert np.count_nonzero(program.op == OP_RF) == 2
    t1, t2 = 0.3, 0.02
    offsets = np.array([0.0, 37.0, -450.0, 3000.0, 20000.0])
    n = offsets.size
    got = bloch_signal(
        program,
        positions_m=np.zeros((n, 3)),
        t1_s=t1,
        t2_s=t2,
        off_resonance_hz=offsets,
        sensitivities=np.eye(n),  # one "coil" per voxel: each row is one voxel's signal
    )[:, 0]
    expected = np.array([_expected(program, f, t1, t2) for f in offsets])
    assert np.abs(expected).min() > 0.1
    # Strang splitting of relaxation inside the pulses is second order in the 1 µs step
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)


def test_isochromats_of_one_voxel_sum_like_separate_voxels() -> None:
    """Isochromats with frequency offsets inside one voxel (the vectorised loop, mixed pulse paths) give the same
    signal as the same spins simulated one per voxel."""
    seq = pp.Sequence(SYS)
    seq.add_block(pp.make_block_pulse(math.pi, duration=10e-6, system=SYS))
    seq.add_block(pp.make_adc(4, dwell=1e-4, delay=1e-3, system=SYS))
    program = compile_sequence(seq)
    offsets = np.array([-30000.0, -100.0, 0.0, 250.0, 8000.0, 30000.0, 7.0])
    weights = np.array([0.1, 0.2, 0.05, 0.25, 0.1, 0.2, 0.1])
    together = bloch_signal(
        program,
        positions_m=np.zeros((1, 3)),
        t1_s=1.0,
        t2_s=0.1,
        iso_offsets_m=np.zeros((offsets.size, 3)),
        iso_off_resonance_hz=offsets,
        iso_weights=weights,
    )[0]
    apart = bloch_signal(
        program,
        positions_m=np.zeros((offsets.size, 3)),
        t1_s=1.0,
        t2_s=0.1,
        off_resonance_hz=offsets,
        weights=weights,
    )[0]
    np.testing.assert_allclose(together, apart, rtol=0, atol=1e-12)
