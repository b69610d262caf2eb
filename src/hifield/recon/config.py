"""Typed, frozen configurations of the reconstruction methods (one dataclass per method)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CoilMethod = Literal["espirit", "walsh"]
DensityMethod = Literal["trajectory", "pipe-menon"]


@dataclass(frozen=True)
class FftConfig:
    """Zero-filled inverse FFT; coils combined by root-sum-of-squares (no noise whitening).

    A single-coil acquisition keeps its complex image; several coils give the real, non-negative RSS image
    stored as complex64. Non-Cartesian data are gridded: adjoint NUFFT of the density-compensated samples.
    """

    density: DensityMethod = "trajectory"
    """Non-Cartesian density compensation: the trajectory's own weights, or iterative Pipe-Menon weights."""


@dataclass(frozen=True)
class SenseConfig:
    """CG-SENSE: conjugate gradients on ``(E^H E + lambda I) x = E^H y`` with ``E = mask . FFT . coil maps``.

    ``E`` has unit gain (orthonormal FFT, maps with ``sum_c |S_c|^2 = 1``), so ``lambda`` is dimensionless and the
    result scales linearly with the data: no normalisation is needed or applied.
    """

    lambda_rel: float = 1e-3
    """Tikhonov weight ``lambda`` relative to the unit gain of ``E^H E`` (dimensionless)."""
    max_iter: int = 30
    """Maximum CG iterations."""
    tol: float = 1e-4
    """Relative residual at which CG stops."""
    coil_method: CoilMethod = "espirit"
    """Coil maps estimated when none are given."""
    density: DensityMethod = "trajectory"
    """Non-Cartesian density compensation: the trajectory's own weights, or iterative Pipe-Menon weights."""


@dataclass(frozen=True)
class CsConfig:
    """L1-wavelet compressed sensing: ``min_x 0.5 ||E x - y||^2 + lambda ||W x||_1`` by FISTA.

    ``lambda = lambda_rel * max |W E^H y|`` over the wavelet detail coefficients (the approximation band is not
    penalised), so the weight follows the data scale and the image is returned in the units of the input.
    """

    lambda_rel: float = 0.001
    """Regularisation weight relative to ``max |W E^H y|`` (dimensionless)."""
    wavelet: str = "db2"
    """PyWavelets name of an orthogonal wavelet."""
    level: int = 4
    """Wavelet decomposition levels."""
    max_iter: int = 40
    """Maximum FISTA iterations (stopping early regularises too, as in BART's default of 30)."""
    tol: float = 1e-4
    """Relative change at which FISTA stops."""
    random_shift: bool = True
    """Random circular shift of the wavelet grid at each iteration (cycle spinning, like BART)."""
    seed: int = 0
    """Seed of the random shifts (same seed, bit-identical result)."""
    coil_method: CoilMethod = "espirit"
    """Coil maps estimated when none are given."""
    density: DensityMethod = "trajectory"
    """Non-Cartesian density compensation: the trajectory's own weights, or iterative Pipe-Menon weights."""


@dataclass(frozen=True)
class TvConfig:
    """Total-variation regularised SENSE: ``min_x 0.5 ||E x - y||^2 + lambda ||grad x||_{2,1}`` (isotropic TV).

    ``lambda = lambda_rel * max |grad E^H y|`` so the weight follows the data scale; solved by primal-dual
    iterations (PDHG with the data term handled by its gradient, Condat-Vu).
    """

    lambda_rel: float = 0.005
    """Regularisation weight relative to ``max |grad E^H y|`` (dimensionless)."""
    max_iter: int = 100
    """Maximum iterations."""
    tol: float = 1e-4
    """Relative change at which the iterations stop."""
    coil_method: CoilMethod = "espirit"
    """Coil maps estimated when none are given."""
    density: DensityMethod = "trajectory"
    """Non-Cartesian density compensation: the trajectory's own weights, or iterative Pipe-Menon weights."""


@dataclass(frozen=True)
class GrappaConfig:
    """GRAPPA: each missing k1 line is a weighted sum of acquired neighbours across all coils.

    The kernel spans ``kernel_lines`` acquired lines (R apart) by ``kernel_readout`` readout samples; its weights
    are fitted on the calibration (ACS) block by Tikhonov-regularised least squares with
    ``lambda = lambda_rel * trace(S^H S) / n`` (relative to the source energy, so scale-free). Coils are combined by
    root-sum-of-squares.
    """

    kernel_lines: int = 2
    """Acquired lines in the kernel (even; 2 or 4)."""
    kernel_readout: int = 5
    """Readout samples in the kernel (odd)."""
    lambda_rel: float = 1e-4
    """Tikhonov weight relative to the mean source energy (dimensionless)."""


@dataclass(frozen=True)
class PartialFourierConfig:
    """Partial Fourier along k1 or k0 (whichever has a missing side): POCS or homodyne, per coil, then RSS.

    The phase comes from the symmetric centre of k-space (Hann-windowed); the missing side is filled by
    ``n_iter`` POCS iterations, or compensated by homodyne's ramp filter of half-width ``transition`` times the
    symmetric band.
    """

    n_iter: int = 10
    """POCS iterations."""
    transition: float = 1.0
    """Homodyne ramp half-width relative to the symmetric band (0 < transition <= 1)."""
