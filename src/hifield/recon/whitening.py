"""Noise pre-whitening: decorrelate the receive channels with the noise covariance measured by the noise scan."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hifield.data import RawData
from hifield.errors import ReconstructionError


def noise_covariance(noise: NDArray[np.complexfloating]) -> NDArray[np.complex128]:
    """Sample covariance ``Psi = n n^H / N`` of a noise scan ``(coil, samples)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n = rng.standard_normal((2, 20000)) + 1j * rng.standard_normal((2, 20000))
    >>> np.round(noise_covariance(n).real, 1).tolist()
    [[2.0, 0.0], [0.0, 2.0]]
    """
    samples = np.asarray(noise, dtype=np.complex128)
    samples = samples.reshape(samples.shape[0], -1)
    return (samples @ samples.conj().T) / samples.shape[1]


def whitening_matrix(covariance: NDArray[np.complexfloating]) -> NDArray[np.complex128]:
    """``W = sqrt(mean(diag Psi)) L^-1`` with ``Psi = L L^H``: whitened channels are uncorrelated with equal variance,
    the mean per-channel noise variance (and so the signal units) of the data is kept.

    Raises
    ------
    ReconstructionError
        When the covariance is not positive definite (a dead or duplicated channel).
    """
    psi = np.asarray(covariance, dtype=np.complex128)
    try:
        lower = np.linalg.cholesky(psi)
    except np.linalg.LinAlgError:
        raise ReconstructionError(
            "the noise covariance is not positive definite (a dead or duplicated receive channel?); "
            "drop the channel or reconstruct without whitening"
        ) from None
    scale = float(np.sqrt(np.mean(np.real(np.diag(psi)))))
    return np.asarray(scale * np.linalg.inv(lower), dtype=np.complex128)


def scan_covariance(noise: NDArray[np.complexfloating], n_coils: int) -> NDArray[np.complex128]:
    """:func:`noise_covariance` of a noise scan ``(coil, samples)`` that must belong to data of ``n_coils`` channels.

    Raises
    ------
    ReconstructionError
        When the noise scan has another number of channels than the data.
    """
    if noise.shape[0] != n_coils:
        raise ReconstructionError(
            f"the noise scan has {noise.shape[0]} channels but k-space has {n_coils}; use the matching noise scan"
        )
    return noise_covariance(noise)


def prewhiten(raw: RawData) -> RawData:
    """Raw data with decorrelated receive channels, from the noise scan the acquisition carries.

    Each k-space sample vector over coils ``y`` becomes ``W y`` (:func:`whitening_matrix`), as does the noise scan, so
    a root-sum-of-squares or SENSE reconstruction afterwards weighs the channels by their noise (the SNR-optimal
    combination needs it when channels are coupled). Signal units are kept on average: the whitened noise has the
    mean variance of the original channels.

    Raises
    ------
    ReconstructionError
        When the raw data carry no noise scan, or its covariance is singular.

    Examples
    --------
    >>> import hifield as hf
    >>> scanner = hf.Scanner.preset("3T", n_coils=4)
    >>> seq = hf.get_protocol("gre_t1_2d").with_changes(matrix=32).build(scanner)
    >>> raw = hf.simulate(hf.shepp_logan_phantom(matrix=64, fov_m=seq.protocol.fov_m), seq, scanner, seed=0)
    >>> white = prewhiten(raw)
    >>> psi = noise_covariance(white.noise)
    >>> bool(np.abs(psi - np.diag(np.diag(psi))).max() < 0.1 * np.abs(np.diag(psi)).mean())
    True
    """
    if raw.noise is None:
        raise ReconstructionError(
            "the raw data carry no noise scan to whiten with; acquire one (ISMRMRD noise readouts) or skip whitening"
        )
    w = whitening_matrix(scan_covariance(raw.noise, raw.kspace.shape[-4]))
    kspace = np.einsum("ij,...jabc->...iabc", w, raw.kspace).astype(np.complex64)
    noise = (w @ raw.noise.astype(np.complex128)).astype(np.complex64)
    return raw.replace(kspace=kspace, noise=noise)
