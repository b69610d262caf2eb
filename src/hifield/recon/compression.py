"""Coil compression: SVD (Buehrer et al. 2007; Huang et al. 2008) and geometric (Zhang et al. 2013) virtual coils."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from hifield.data import RawData
from hifield.errors import ConfigError, ReconstructionError
from hifield.ops import fftc, ifftc
from hifield.recon.calibration import calibration_data


def svd_compression_matrix(data: NDArray[np.complexfloating], n_virtual: int) -> NDArray[np.complex64]:
    """The ``(coil, n_virtual)`` matrix ``U`` with orthonormal columns: the strongest left singular vectors of
    ``data`` ``(coil, ...)``; virtual coils are ``U^H y``."""
    flat = np.asarray(data).reshape(data.shape[0], -1).astype(np.complex128)
    u, _, _ = np.linalg.svd(flat @ np.conj(flat.T))
    return u[:, :n_virtual].astype(np.complex64)


def compress_coils(
    raw: RawData,
    *,
    n_virtual: int,
    method: Literal["svd", "geometric"] = "svd",
) -> RawData:
    """Replace the receive channels by ``n_virtual`` virtual coils.

    ``"svd"``: one matrix for all of k-space, from the calibration region (all data when there is none).
    ``"geometric"``: one matrix per readout position ``x`` (k0 must be fully sampled), from the calibration data
    transformed to hybrid ``(k2, k1, x)`` space, each aligned to its neighbour by a unitary Procrustes rotation so
    that the virtual coils vary smoothly along x; it keeps more signal for the same ``n_virtual``.

    Both are unitary maps restricted to a subspace, so noise stays white and the image scale is kept; the noise
    scan (``raw.noise``) is compressed with the SVD matrix.

    Parameters
    ----------
    raw
        Cartesian raw data ``(*other, coil, k2, k1, k0)``.
    n_virtual
        Number of virtual coils (1 .. n_coils).
    method
        ``"svd"`` or ``"geometric"``.

    Returns
    -------
    RawData
        The same acquisition with ``n_virtual`` coils.
    """
    n_coils = raw.n_coils
    if not 1 <= n_virtual <= n_coils:
        raise ConfigError(f"n_virtual must be between 1 and the {n_coils} coils; got {n_virtual}")
    if method not in ("svd", "geometric"):
        raise ConfigError(f"unknown coil compression {method!r}; use 'svd' or 'geometric'")
    if raw.trajectory is not None and method == "geometric":
        raise ReconstructionError("geometric coil compression needs Cartesian data; use method='svd'")
    calib = calibration_data(raw) if raw.trajectory is None else None
    if calib is None:
        calib = raw.kspace.reshape((-1, *raw.kspace.shape[-4:]))[0]
    kspace = raw.kspace
    u_all = svd_compression_matrix(calib, n_virtual)
    noise = None if raw.noise is None else np.einsum("cv,cn->vn", np.conj(u_all), raw.noise).astype(np.complex64)
    if method == "svd":
        out = np.einsum("cv,...ckji->...vkji", np.conj(u_all), kspace).astype(np.complex64)
        return raw.replace(kspace=out, noise=noise)
    mask = raw.sampling_mask
    if not np.all(mask == mask.any(axis=-1, keepdims=True)):
        raise ReconstructionError("geometric coil compression needs fully sampled readouts (k0); use method='svd'")
    hybrid_cal = ifftc(calib, axes=(-1,))  # (coil, c2, c1, x)
    nx = hybrid_cal.shape[-1]
    mats = np.empty((nx, n_coils, n_virtual), dtype=np.complex64)
    for x in range(nx):
        mats[x] = svd_compression_matrix(hybrid_cal[..., x], n_virtual)
    for x in range(1, nx):
        # rotate the subspace basis to best match the previous position: min ||U_x Q - U_{x-1}||, Q unitary
        c = np.conj(mats[x].T) @ mats[x - 1]
        w, _, vh = np.linalg.svd(c)
        mats[x] = mats[x] @ (w @ vh)
    hybrid = ifftc(kspace, axes=(-1,))
    out = np.einsum("xcv,...ckjx->...vkjx", np.conj(mats), hybrid)
    return raw.replace(kspace=fftc(out, axes=(-1,)).astype(np.complex64), noise=noise)
