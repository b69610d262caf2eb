"""The encoding problem built once from RawData: its pieces, its adjoint and normal operators, its frames."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from hifield.data import CoilMaps, Trajectory
from hifield.errors import ReconstructionError
from hifield.ops import NUFFTOp, fftc, ifftc
from hifield.recon import build_problem


def _radial(simdata: ModuleType, n: int = 24, n_coils: int = 3):
    """Two frames of radial data on an ``n`` grid, the true maps, and the NUFFT that made them."""
    img = simdata.phantom_image(n)
    maps = simdata.smooth_coil_maps(n_coils, (n, n))
    n_spokes, n_samples, fov = 30, 2 * n, 0.2
    radius = (np.arange(n_samples) - n_samples // 2) / (2 * fov)
    angle = np.arange(n_spokes) * np.pi / n_spokes
    k = np.stack([0 * angle[:, None] * radius, np.sin(angle)[:, None] * radius, np.cos(angle)[:, None] * radius], -1)
    density = np.full(k.shape[:-1], 1.0 / fov**2, dtype=np.float32)
    raw, _, _ = simdata.make_raw(n, n_coils)
    op = NUFFTOp(k, (1, n, n), raw.header.voxel_size_m, batch_shape=(n_coils,), eps=1e-6)
    y = (op @ (maps * img[None]).astype(np.complex64)).reshape(n_coils, 1, n_spokes, n_samples)
    raw = raw.replace(
        kspace=np.stack([y, 2 * y]).astype(np.complex64),
        mask=None,
        trajectory=Trajectory(kspace_m=k, density=density),
    )
    return raw, maps


def test_cartesian_problem_matches_the_explicit_encoding(simdata: ModuleType) -> None:
    n = 24
    mask = simdata.equispaced_mask(n, n, r=2, n_acs=8)
    raw, _, maps = simdata.make_raw(n, 4, mask=mask, noise=0.01)
    problem = build_problem(raw, coil_maps=CoilMaps(maps[None]), needs_coil_maps=True, needs_calibration=True)
    assert problem.cartesian and problem.n_frames == 1 and problem.n_coils == 4 and problem.shape == (1, n, n)
    box = problem.calibration
    assert box is not None and box[1].start <= n // 2 - 4 and box[1].stop >= n // 2 + 4
    x = np.random.default_rng(1).standard_normal((1, 1, n, n)).astype(np.complex64)
    ex = fftc(maps * x) * mask  # E x written out
    np.testing.assert_allclose(problem.normal(x), np.sum(np.conj(maps) * ifftc(ex), axis=0)[None], atol=1e-5)
    # <E x, y> = <x, E^H y>
    lhs = np.vdot(ex, problem.y)
    rhs = np.vdot(x, problem.adjoint())
    assert lhs == pytest.approx(rhs, rel=1e-4)
    assert problem.lipschitz() == pytest.approx(1.0, rel=1e-5)  # unit-RSS maps
    # the noise scan travels with the problem (None when the data carry none)
    assert problem.noise is None
    scan = np.full((4, 16), 0.5 + 0.5j, np.complex64)
    np.testing.assert_array_equal(build_problem(raw.replace(noise=scan)).noise, scan)


def test_nufft_problem_is_built_once_and_serves_every_frame(simdata: ModuleType) -> None:
    raw, maps = _radial(simdata)
    problem = build_problem(raw, coil_maps=CoilMaps(maps[None]), needs_coil_maps=True)
    assert not problem.cartesian and problem.n_frames == 2 and problem.mask is None
    second = problem.at(1)
    assert second.nufft is problem.nufft and second.maps is problem.maps and second.weights is problem.weights
    np.testing.assert_allclose(second.adjoint(), 2 * problem.adjoint(), rtol=1e-5, atol=1e-6)
    x = np.random.default_rng(2).standard_normal((1, 1, 24, 24)).astype(np.complex64)
    # E^H E is Hermitian positive semi-definite, and ||E^H E|| bounds it
    assert np.vdot(x, problem.normal(x)).real > 0
    assert abs(np.vdot(x, problem.normal(x)).imag) < 1e-4 * abs(np.vdot(x, problem.normal(x)))
    ratio = np.linalg.norm(problem.normal(x)) / np.linalg.norm(x)
    assert ratio <= problem.lipschitz() and problem.lipschitz() == second.lipschitz()


def test_problem_without_maps_refuses_the_normal_operator(simdata: ModuleType) -> None:
    raw, _, _ = simdata.make_raw(16, 2)
    problem = build_problem(raw)
    assert problem.maps is None and problem.calibration is None
    assert problem.coil_images().shape == (2, 1, 16, 16)
    with pytest.raises(ReconstructionError, match="coil maps"):
        problem.adjoint()
