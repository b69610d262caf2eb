"""Variable-density spiral: reaches k_max within the limits; interleaves rotated; ring spacing follows density."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hifield.hardware.scanner import Scanner
from hifield.sequence import check, check_timing
from hifield.sequence.library.spiral import SpiralProtocol, design_spiral


@pytest.mark.parametrize("density", [1.0, 0.5])
def test_spiral_design_limits_and_ring_spacing(density):
    gmax, smax, raster = 1.7e6, 6.8e9, 1e-5  # Hz/m (40 mT/m), Hz/m/s (160 T/m/s)
    g = design_spiral(
        fov_m=0.24,
        matrix=128,
        n_interleaves=8,
        density=density,
        max_grad_hz_per_m=gmax,
        max_slew_hz_per_m_per_s=smax,
        raster_s=raster,
    )
    assert np.abs(g).max() <= gmax * 1.0001
    slew = np.abs(np.diff(g)) / raster
    assert slew.max() <= smax * 1.05
    k = np.cumsum(g) * raster
    kmax = 128 / (2 * 0.24)
    assert abs(k[-1]) == pytest.approx(kmax, rel=0.02)
    # radial spacing of successive turns of one interleaf at the edge: n_interleaves / FOV(k_max)
    theta = np.unwrap(np.angle(k[5:]))
    r = np.abs(k[5:])
    turn_end = theta[-1] - 2 * np.pi
    r_prev = np.interp(turn_end, theta, r)
    spacing = r[-1] - r_prev
    r_mid = 0.5 * (r[-1] + r_prev)
    fov_mid = 0.24 * (1 - (1 - density) * r_mid / kmax)  # FOV(r) falls linearly to density x FOV at k_max
    assert spacing == pytest.approx(8 / fov_mid, rel=0.03)


def test_spiral_sequence_interleaves_and_te():
    p = SpiralProtocol(matrix=64, n_interleaves=4, tr_s=0.02)
    built = p.build(Scanner.preset("3T"))
    check_timing(built)
    assert check(built, Scanner.preset("3T")) == []
    n = built.n_readout_samples
    k = built.seq.calculate_kspace()[0]
    kx, ky = k[0].reshape(4, n), k[1].reshape(4, n)
    assert np.abs(kx[:, 0]).max() < 2 and np.abs(ky[:, 0]).max() < 2  # starts at the centre (1/m)
    end_angles = np.angle(kx[:, -1] + 1j * ky[:, -1])
    np.testing.assert_allclose(np.exp(1j * np.diff(end_angles)), np.exp(1j * np.pi / 2), atol=1e-6)
    np.testing.assert_allclose(built.spoke_angles_rad, np.arange(4) * np.pi / 2)
    t_exc = np.asarray(built.seq.rf_times()[0])
    np.testing.assert_allclose(np.diff(t_exc), 0.02, atol=1e-9)
    t_adc0 = built.seq.adc_times()[0].reshape(4, n)[:, 0]
    np.testing.assert_allclose(t_adc0 - t_exc, built.te_s + 0.5 * p.adc_dwell_s, atol=1e-9)
    assert built.trajectory == "spiral"
    assert built.duration_s == pytest.approx(4 * 0.02)
    assert math.isclose(np.hypot(kx[0, -1], ky[0, -1]), 64 / 0.48, rel_tol=0.03)


def test_spiral_rewinder_returns_to_the_centre():
    built = SpiralProtocol(matrix=64, n_interleaves=4, tr_s=0.02).build(Scanner.preset("3T"), phase_encode_lines=[1])
    k_traj = np.asarray(built.seq.calculate_kspace()[1])
    kmax = 64 / 0.48
    assert np.abs(k_traj[0, -1]) < 1e-3 * kmax and np.abs(k_traj[1, -1]) < 1e-3 * kmax
