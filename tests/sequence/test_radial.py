"""Golden-angle radial GRE: spokes through the centre at golden-angle steps, k spacing 1/(FOV x oversampling)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hifield.hardware.scanner import Scanner
from hifield.sequence import check_timing
from hifield.sequence.library.radial import GOLDEN_ANGLE_RAD, RadialProtocol

from .helpers import adc_centre_times, adc_labels


def test_golden_angle_value():
    assert math.degrees(GOLDEN_ANGLE_RAD) == pytest.approx(111.246, abs=1e-3)


def test_spokes_cross_the_centre_at_golden_angles():
    p = RadialProtocol(matrix=32, n_spokes=8, tr_s=0.01, te_s=0.004)
    built = p.build(Scanner.preset("3T"), phase_encode_lines=[0, 1, 2, 7])
    check_timing(built)
    n = built.n_readout_samples
    assert n == 64
    k = built.seq.calculate_kspace()[0]
    kx, ky = k[0].reshape(-1, n), k[1].reshape(-1, n)
    np.testing.assert_allclose(kx[:, n // 2], 0, atol=1e-6)
    np.testing.assert_allclose(ky[:, n // 2], 0, atol=1e-6)
    expected_angles = np.array([0, 1, 2, 7]) * GOLDEN_ANGLE_RAD
    np.testing.assert_allclose(built.spoke_angles_rad, expected_angles % (2 * np.pi))
    measured = np.arctan2(ky[:, -1], kx[:, -1])
    np.testing.assert_allclose(np.exp(1j * measured), np.exp(1j * expected_angles), atol=1e-9)
    radius = np.hypot(kx, ky)
    np.testing.assert_allclose(np.diff(radius[:, n // 2 :], axis=1), 1 / (0.24 * 2), rtol=1e-6)
    assert [lab["LIN"] for lab in adc_labels(built.seq)] == [0, 1, 2, 7]
    t_exc = np.asarray(built.seq.rf_times()[0])
    np.testing.assert_allclose(adc_centre_times(built.seq, n) - t_exc, 0.004, atol=10e-6)
    assert built.trajectory == "radial"
    assert built.duration_s == pytest.approx(4 * 0.01)
