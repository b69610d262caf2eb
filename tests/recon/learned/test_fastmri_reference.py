"""Shapes and operators compared with fastMRI's reference code (optional: skipped unless ``fastmri`` is installed,
e.g. ``pip install --no-deps fastmri``; never a dependency)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")
fastmri = pytest.importorskip("fastmri")

from hifield.recon.learned import nets  # noqa: E402


def _as_real(x: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(x)


def test_our_centred_fft_is_fastmris_fft2c_and_ifft2c() -> None:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((2, 3, 16, 12)) + 1j * rng.standard_normal((2, 3, 16, 12)))
    torch.testing.assert_close(_as_real(nets.fft2(x)), fastmri.fft2c(_as_real(x)))
    torch.testing.assert_close(_as_real(nets.ifft2(x)), fastmri.ifft2c(_as_real(x)))


def test_varnet_takes_and_returns_what_fastmris_varnet_does() -> None:
    from fastmri.models import VarNet as ReferenceVarNet

    torch.manual_seed(0)
    b, c, h, w = 1, 4, 32, 32
    rng = np.random.default_rng(1)
    lines = np.zeros(w, dtype=bool)
    lines[::4] = True
    lines[w // 2 - 4 : w // 2 + 4] = True
    k = (rng.standard_normal((b, c, h, w)) + 1j * rng.standard_normal((b, c, h, w))).astype(np.complex64)
    # fastMRI: k-space (b, coil, h, w, 2), mask over the last (phase-encode) axis; ours: complex, lines along y
    ref_mask = torch.from_numpy(lines).reshape(1, 1, 1, w, 1)
    ref_k = _as_real(torch.from_numpy(k)) * ref_mask
    ref = ReferenceVarNet(num_cascades=1, sens_chans=4, sens_pools=2, chans=4, pools=2)
    with torch.no_grad():
        ref_out = ref(ref_k, ref_mask.bool(), num_low_frequencies=None)
    ours = nets.VarNet(cascades=1, chans=4, levels=2, sens_chans=4)
    mask = torch.from_numpy(np.broadcast_to(lines[:, None], (w, h)).astype(np.float32))[None, None]
    y = torch.from_numpy(k.transpose(0, 1, 3, 2).copy()) * mask  # our phase-encode axis is y (second to last)
    with torch.no_grad():
        image, out_k, maps = ours(y, mask)
    assert ref_out.shape == (b, h, w) and image.shape == (b, w, h)  # one image per slice, coil axis combined
    assert out_k.shape == y.shape and maps.shape == y.shape
