"""The learned networks: exact data consistency, adjoint operators, shapes (torch only)."""

from __future__ import annotations

import numpy as np
import pytest

from hifield.ops.fft import fftc, ifftc

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")

from hifield.recon.learned import nets  # noqa: E402
from hifield.recon.learned.uncertainty import encoding  # noqa: E402


def _data(b: int = 2, c: int = 4, n: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    y = (rng.standard_normal((b, c, n, n)) + 1j * rng.standard_normal((b, c, n, n))).astype(np.complex64)
    lines = np.zeros(n, dtype=np.float32)
    lines[::4] = 1
    lines[n // 2 - 3 : n // 2 + 3] = 1
    mask = np.broadcast_to(lines[:, None], (n, n))[None, None].repeat(b, axis=0).astype(np.float32)
    return torch.from_numpy(y * mask), torch.from_numpy(mask)


def _vdot(a: torch.Tensor, b: torch.Tensor) -> complex:
    return complex(torch.vdot(a.reshape(-1), b.reshape(-1)).item())


def test_varnet_output_equals_the_data_on_sampled_lines_and_has_the_documented_shapes() -> None:
    torch.manual_seed(0)
    y, mask = _data()
    model = nets.VarNet(cascades=2, chans=4, levels=2, sens_chans=4)
    with torch.no_grad():
        image, k, maps = model(y, mask)
    assert image.shape == (2, 32, 32) and k.shape == y.shape and maps.shape == y.shape
    sampled = mask.expand_as(y) > 0
    assert torch.equal(k[sampled], y[sampled])  # exact, not approximately
    assert not torch.equal(k[~sampled], torch.zeros_like(k[~sampled]))  # the network filled the rest
    norm = (maps.abs() ** 2).sum(dim=1)
    assert torch.allclose(norm, torch.ones_like(norm), atol=1e-4)


def test_acs_mask_is_the_central_run_of_sampled_lines() -> None:
    _, mask = _data(b=1)
    acs = nets.acs_mask(mask)[0, 0, :, 0]
    assert acs.nonzero().flatten().tolist() == list(range(12, 19))  # line 12 of the ::4 lattice adjoins the block


def test_modl_data_consistency_step_solves_its_equation_exactly_on_a_single_coil() -> None:
    # one coil, unit sensitivity: (E^H E + lam I) x = E^H y + lam z is diagonal in k-space, so on sampled lines
    # F x = (y + lam F z) / (1 + lam) and elsewhere F x = F z, exactly
    n = 16
    rng = np.random.default_rng(1)
    mask = np.zeros((n, n), dtype=np.float32)
    mask[::3] = 1
    y = (fftc(rng.standard_normal((n, n)).astype(np.complex64), axes=(0, 1)) * mask).astype(np.complex64)
    z = rng.standard_normal((n, n)).astype(np.complex64)
    model = nets.MoDL(iterations=1, cg_iter=4, chans=4)
    lam = float(torch.exp(model.log_lam.detach()))
    op = nets.sense_normal_op(np.ones((1, n, n), np.complex64), mask)
    aty = torch.from_numpy(ifftc(y, axes=(0, 1)).astype(np.complex64))
    with torch.no_grad():
        x = model.dc(op, aty, torch.from_numpy(z)).numpy()
    kx, kz = fftc(x, axes=(0, 1)), fftc(z, axes=(0, 1))
    expected = np.where(mask > 0, (y + lam * kz) / (1 + lam), kz)
    np.testing.assert_allclose(kx, expected, atol=1e-4 * np.abs(expected).max())


def test_modl_forward_shapes_and_gradients_flow_through_the_cg_on_hifield_operators() -> None:
    torch.manual_seed(0)
    y, mask = _data(b=2, c=3, n=16)
    maps = torch.ones(2, 3, 16, 16, dtype=torch.complex64) / np.sqrt(3)
    model = nets.MoDL(iterations=2, cg_iter=3, chans=4)
    x = model(y, mask, maps)
    assert x.shape == (2, 16, 16) and x.dtype == torch.complex64
    x.abs().mean().backward()
    assert model.log_lam.grad is not None and torch.isfinite(model.log_lam.grad)


def test_the_fourier_and_sensitivity_steps_of_the_networks_are_adjoint_pairs() -> None:
    rng = np.random.default_rng(2)
    shape = (2, 3, 12, 10)

    def rand(*s: int) -> torch.Tensor:
        return torch.from_numpy(rng.standard_normal(s) + 1j * rng.standard_normal(s))  # complex128

    k, img, maps = rand(*shape), rand(2, 12, 10), rand(*shape)
    # <F x, k> = <x, F^H k>
    x = rand(*shape)
    assert abs(_vdot(nets.fft2(x), k) - _vdot(x, nets.ifft2(k))) < 1e-10 * abs(_vdot(x, nets.ifft2(k)))
    # <F S x, k> = <x, S^H F^H k>
    lhs = _vdot(nets.sens_expand(img, maps), k)
    rhs = _vdot(img, nets.sens_reduce(k, maps))
    assert abs(lhs - rhs) < 1e-10 * abs(rhs)


def test_the_encoding_and_normal_operators_of_the_uncertainty_maps_are_adjoint() -> None:
    rng = np.random.default_rng(3)
    n, c = 12, 3
    maps = (rng.standard_normal((c, n, n)) + 1j * rng.standard_normal((c, n, n))).astype(np.complex128)
    mask = (rng.random((n, n)) > 0.5).astype(np.float64)
    e = encoding(maps, mask)
    x = rng.standard_normal(e.ishape) + 1j * rng.standard_normal(e.ishape)
    y = rng.standard_normal(e.oshape) + 1j * rng.standard_normal(e.oshape)
    assert abs(np.vdot(e @ x, y) - np.vdot(x, e.H @ y)) < 1e-10 * abs(np.vdot(x, e.H @ y))
    # the normal operator MoDL runs on tensors is E^H E of the same encoding
    op = nets.sense_normal_op(maps.astype(np.complex64), mask)
    xt = torch.from_numpy(x.astype(np.complex64))
    np.testing.assert_allclose(op.apply(xt).numpy(), (e.H @ (e @ x)).astype(np.complex64), atol=1e-4)


def test_modl_output_agrees_with_the_data_on_sampled_lines_coil_by_coil() -> None:
    # one unit coil: the final step puts the data on the sampled lines exactly; fully sampled data come back as is
    torch.manual_seed(0)
    y, mask = _data(b=1, c=1, n=16)
    maps = torch.ones(1, 1, 16, 16, dtype=torch.complex64)
    model = nets.MoDL(iterations=1, cg_iter=2, chans=4)
    with torch.no_grad():
        k = nets.fft2(model(y, mask, maps))
    sampled = mask[0, 0] > 0
    torch.testing.assert_close(k[0][sampled], y[0, 0][sampled], rtol=1e-5, atol=1e-5 * float(y.abs().max()))
    full = torch.ones_like(mask)
    with torch.no_grad():
        x = model(y, full, maps)
    torch.testing.assert_close(x, nets.ifft2(y)[:, 0], rtol=1e-5, atol=1e-5 * float(y.abs().max()))
