"""Thermal receive noise: its level from field strength and readout timing, and correlated multi-coil draws.

Signal units in hifield's simulator: a voxel's image value is its transverse magnetisation relative to the
equilibrium magnetisation of water (M0 = 1) times its volume in mm^3. Thermal noise then follows the standard
model (physics-safety.md §3.3): image SNR ∝ voxel volume · sqrt(total ADC time) · f(B0), with the field dependence
SNR ∝ B0^beta (beta = 1.65 for brain with receive arrays, Pohmann, Speck & Scheffler, MRM 2016;75:801) applied as a
noise level ∝ B0^-beta at a fixed signal scale.

For an orthonormal Fourier encoding of a grid of ``n_grid`` voxels, a k-space sample acquired with dwell time
``dwell_s`` carries complex noise of standard deviation

    sigma = c(B0) / sqrt(dwell_s * n_grid * n_averages),   c(B0) = C_REF * (B0_REF / B0) ** beta,

so that the fully sampled image has SNR = value / c(B0) * sqrt(total ADC time).
``C_REF`` is calibrated so that white matter in a 3 T T1-weighted 2D FLASH (0.94 x 0.94 x 5 mm, TR 250 ms,
70 degrees, 260 Hz/pixel, 16-channel head array, root-sum-of-squares) has an image SNR of about 40, a typical
clinical figure.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

B0_REF_T: float = 3.0
"""Reference field of the noise calibration [T]."""
C_REF: float = 0.02
"""Noise constant at the reference field [mm^3 · s^0.5] (see module docstring)."""
BETA_HEAD: float = 1.65
"""Exponent of SNR versus B0 for head receive arrays (Pohmann 2016)."""
NOISE_SCAN_SAMPLES = 256
"""Samples per coil in the noise scan (no RF, receiver on)."""


def kspace_noise_std(
    b0_t: float, *, dwell_s: float, n_grid: int, n_averages: int = 1, beta: float = BETA_HEAD
) -> float:
    """Standard deviation of the complex thermal noise per k-space sample (white, before coil correlation).

    Parameters
    ----------
    b0_t
        Main field [T].
    dwell_s
        ADC dwell time [s].
    n_grid
        Voxels of the fully sampled reconstruction grid (orthonormal FFT scaling).
    n_averages
        Signal averages.
    beta
        Exponent of SNR against B0.

    Examples
    --------
    >>> s3 = kspace_noise_std(3.0, dwell_s=1e-5, n_grid=256 * 256)
    >>> s7 = kspace_noise_std(7.0, dwell_s=1e-5, n_grid=256 * 256)
    >>> round(s3 / s7, 3) == round((7 / 3) ** 1.65, 3)
    True
    """
    from hifield.hardware.fields import snr_field_factor

    c = C_REF / snr_field_factor(b0_t, exponent=beta, reference_b0_t=B0_REF_T)
    return float(c / np.sqrt(dwell_s * n_grid * n_averages))


def correlated_noise(
    shape: tuple[int, ...], covariance: NDArray[np.complexfloating], std: float, rng: np.random.Generator
) -> NDArray[np.complex64]:
    """Complex Gaussian noise with the coil axis at position ``-4`` (or ``0`` for ``(coil, n)`` shapes) correlated by
    ``covariance`` (coil x coil, diagonal ~1) and scaled by ``std``.

    Each complex sample has ``E|n_c|^2 = std^2 * covariance[c, c]``.
    """
    chol = np.linalg.cholesky(np.asarray(covariance, dtype=np.complex128))
    n_coils = chol.shape[0]
    coil_axis = 0 if len(shape) == 2 else len(shape) - 4
    if shape[coil_axis] != n_coils:
        raise ValueError(f"noise covariance is {n_coils} x {n_coils} but the data have {shape[coil_axis]} coils")
    white = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * (std / np.sqrt(2.0))
    moved = np.moveaxis(white, coil_axis, -1)
    coloured = moved @ chol.T
    return np.moveaxis(coloured, -1, coil_axis).astype(np.complex64)


def add_thermal_noise(
    kspace: NDArray[np.complex128], covariance: NDArray[np.complexfloating], std: float, rng: np.random.Generator
) -> tuple[NDArray[np.complex128], NDArray[np.complex64]]:
    """``kspace`` (coil axis first) plus correlated thermal noise, and the noise scan that goes with it.

    Draws the data's noise first, then a noise scan ``(coil, NOISE_SCAN_SAMPLES)`` of the same level and coil
    correlation (no RF, receiver on), both from ``rng`` (:func:`correlated_noise`).

    Examples
    --------
    >>> noisy, scan = add_thermal_noise(np.zeros((2, 1, 4, 4)), np.eye(2), 0.1, np.random.default_rng(0))
    >>> noisy.shape, scan.shape
    ((2, 1, 4, 4), (2, 256))
    """
    noisy: NDArray[np.complex128] = kspace + correlated_noise(kspace.shape, covariance, std, rng)
    scan = correlated_noise((int(np.shape(covariance)[0]), NOISE_SCAN_SAMPLES), covariance, std, rng)
    return noisy, scan
