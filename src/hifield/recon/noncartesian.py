"""Non-Cartesian data: k-space layout, density compensation, centre coverage and Cartesian calibration k-space."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hifield.data import RawData
from hifield.errors import ReconstructionError
from hifield.ops import NUFFTOp, fftc, pipe_menon_density

Complex = NDArray[np.complex64]

NUFFT_THREADS: int | None = 1
"""finufft threads in the iterative solvers: one is faster here on a shared 2-core machine, where OpenMP threads
waiting for each other cost more than they gain; None uses finufft's default (all cores)."""


def check_layout(raw: RawData) -> tuple[int, int, int]:
    """Image grid ``(z, y, x)`` of non-Cartesian data, after checking that k-space matches the trajectory.

    Non-Cartesian k-space is stored as ``(*other, coil, *samples)`` with the trajectory's sample axes
    ``kspace_m.shape[:-1]`` (padded with leading 1s to three axes): 2D radial ``(coil, 1, n_spokes, n_samples)``,
    stack of stars ``(coil, n_partitions, n_spokes, n_samples)``. The grid is ``raw.header.matrix``.
    """
    assert raw.trajectory is not None
    samples = tuple(raw.trajectory.kspace_m.shape[:-1])
    padded = (1,) * (3 - len(samples)) + samples if len(samples) <= 3 else samples
    if int(np.prod(raw.kspace.shape[-3:])) != int(np.prod(samples)) or tuple(raw.kspace.shape[-3:]) != padded[-3:]:
        raise ReconstructionError(
            f"non-Cartesian k-space sample axes {raw.kspace.shape[-3:]} do not match the trajectory {samples}; "
            "store k-space as (*other, coil, *trajectory samples)"
        )
    m = raw.header.matrix
    return (int(m[0]), int(m[1]), int(m[2]))


def density_weights(raw: RawData, method: str) -> NDArray[np.float32]:
    """Density compensation per sample, 1 for Cartesian Nyquist density (shape of the trajectory's samples)."""
    assert raw.trajectory is not None
    traj = raw.trajectory
    shape = check_layout(raw)
    if method == "pipe-menon":
        return pipe_menon_density(traj.kspace_m, shape, raw.header.voxel_size_m)
    if traj.density is None:
        raise ReconstructionError(
            "non-Cartesian trajectory has no density compensation weights; "
            "pass a trajectory with density or choose density='pipe-menon'"
        )
    # the trajectory's weights are k-space areas [1/m^2 or 1/m^3]; divide by the Nyquist cell of the grid
    fov = raw.header.fov_m
    cell = 1.0
    for n, f in zip(shape, fov, strict=True):
        if n > 1:
            cell /= f
    ndim_traj = sum(1 for n in shape if n > 1)
    if ndim_traj == 3 and raw.trajectory.kspace_m.ndim == 4:
        cell *= fov[0]  # stack of stars: in-plane weights, partitions Cartesian
    return (np.asarray(traj.density, dtype=np.float64) / cell).astype(np.float32)


def nyquist_box(raw: RawData, *, largest: int = 64) -> int:
    """Side (in Nyquist cells ``1 / FOV``, even) of the largest central in-plane box whose every cell holds a sample.

    Radial spokes cover their centre densely; an interleaved spiral played with few interleaves leaves gaps between
    its turns even at the centre, where no self-calibration (ESPIRiT) is possible.

    Examples
    --------
    >>> import numpy as np
    >>> from hifield.data import RawData, RawHeader, Trajectory
    >>> ky, kx = np.meshgrid(np.arange(-8, 8) / 0.2, np.arange(-8, 8) / 0.2, indexing="ij")
    >>> k = np.stack([np.zeros_like(kx), ky, kx], axis=-1)  # a 16 x 16 Cartesian grid as a "trajectory"
    >>> header = RawHeader(b0_t=3.0, fov_m=(0.005, 0.2, 0.2), matrix=(1, 16, 16), te_s=0.005, tr_s=0.01,
    ...                    flip_angle_rad=0.2)
    >>> raw = RawData(kspace=np.zeros((1, 1, 16, 16), np.complex64), header=header, trajectory=Trajectory(k))
    >>> nyquist_box(raw)
    16
    """
    assert raw.trajectory is not None
    fov = raw.header.fov_m
    k = np.asarray(raw.trajectory.kspace_m, dtype=np.float64).reshape(-1, 3)
    ky, kx = k[:, 1] * fov[1], k[:, 2] * fov[2]
    best = 0
    for side in range(2, largest + 1, 2):
        edges = np.arange(-side / 2, side / 2 + 1e-9, 1.0) - 0.5
        counts, _, _ = np.histogram2d(ky, kx, bins=[edges, edges])
        if not np.all(counts > 0):
            break
        best = side
    return best


def calibration_kspace(raw: RawData, *, calib_size: int = 24, density: str = "trajectory") -> Complex:
    """Cartesian calibration k-space ``(coil, c2, c1, c0)`` fitted to the centre of non-Cartesian data.

    The samples inside the central box of ``calib_size`` Nyquist cells per axis are fitted, by a few conjugate-
    gradient iterations on the density-weighted normal equations, with a coarse image of ``calib_size`` pixels over
    the same field of view; its centred FFT is Cartesian k-space on the Nyquist lattice (consistent data, which
    ESPIRiT needs, unlike plain gridding).
    """
    from hifield.solvers import conjugate_gradient

    assert raw.trajectory is not None
    shape = check_layout(raw)
    weights = density_weights(raw, density).reshape(-1)
    fov = raw.header.fov_m
    k = np.asarray(raw.trajectory.kspace_m, dtype=np.float64).reshape(-1, 3)
    covered = nyquist_box(raw, largest=calib_size)
    if covered < 8:
        raise ReconstructionError(
            f"the centre of this non-Cartesian k-space is sampled below Nyquist (only a {covered}-cell central box is "
            "covered), so coil maps cannot be calibrated from it; play more interleaves, pass coil maps from a "
            "calibration scan, or use --recon fft"
        )
    calib_size = min(calib_size, covered)
    coarse = tuple(min(n, calib_size) if n > 1 else 1 for n in shape)
    inside = np.ones(k.shape[0], dtype=bool)
    for axis, (n, c) in enumerate(zip(shape, coarse, strict=True)):
        if n > 1:
            inside &= np.abs(k[:, axis]) * fov[axis] <= c / 2 - 0.5
    if inside.sum() < int(np.prod(coarse)):
        raise ReconstructionError(
            f"only {int(inside.sum())} non-Cartesian samples lie in the {coarse} calibration region; "
            "acquire a denser centre or use --recon fft"
        )
    n_coils = raw.kspace.shape[-4]
    frame = raw.kspace.reshape((-1, *raw.kspace.shape[-4:]))[0].reshape(n_coils, -1)[:, inside].astype(np.complex64)
    voxel = tuple(f / c for f, c in zip(fov, coarse, strict=True))
    op = NUFFTOp(k[inside], coarse, voxel, batch_shape=(n_coils,), eps=1e-5, n_threads=NUFFT_THREADS)
    w = weights[inside].astype(np.float32)

    def normal(x: Complex) -> Complex:
        return op.apply_adjoint((op.apply(x) * w).astype(np.complex64))

    x, _ = conjugate_gradient(normal, op.apply_adjoint((frame * w).astype(np.complex64)), max_iter=20, tol=1e-4)
    return np.ascontiguousarray(fftc(x)).astype(np.complex64)
