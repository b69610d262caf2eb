"""Unrolled networks on torch: an E2E-VarNet-style network and a MoDL-style network, built on hifield's operators.

Both reconstruct one 2D slice at a time. K-space is ``(batch, coil, y, x)`` complex64 (one slice's ``(coil, k1,
k0)``), the mask ``(batch, 1, y, x)`` real (1 where acquired). Every Fourier transform is hifield's centred
orthonormal FFT (:func:`hifield.ops.fft.fftc`), which takes torch tensors through :mod:`hifield.backend`; MoDL's data
consistency solves ``(E^H E + lambda I) x = E^H y + lambda z`` by conjugate gradients with
:class:`hifield.ops.CartesianSenseNormalOp` applied to tensors (autograd flows through it).

* :class:`VarNet` (after Sriram et al. 2020): sensitivities estimated from the calibration (ACS) lines by a small
  U-Net per coil, then ``cascades`` steps ``k <- k - eta M (k - y) - F S R(S^H F^H k)`` with a small U-Net ``R`` per
  cascade (soft data consistency), and a final hard projection ``k <- M y + (1 - M) k`` so that the output agrees
  with every acquired sample exactly.
* :class:`MoDL` (after Aggarwal et al. 2019): ``x <- CG(E^H E + lambda I, E^H y + lambda D(x))`` with one
  shared U-Net ``D`` and a learned ``lambda``, with given (ESPIRiT) maps, then one exact data-consistency step
  ``x <- S^H F^H (M y + (1 - M) F S x)`` (:func:`final_dc`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from hifield.ops import CartesianSenseNormalOp
from hifield.ops.fft import fftc, ifftc

AXES = (-2, -1)
EPS = 1e-12


def fft2(x: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2D FFT over the last two axes (hifield's ``fftc`` on a tensor)."""
    return fftc(x, axes=AXES)  # type: ignore[arg-type,return-value]


def ifft2(k: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2D inverse FFT over the last two axes (hifield's ``ifftc`` on a tensor)."""
    return ifftc(k, axes=AXES)  # type: ignore[arg-type,return-value]


def sens_expand(x: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """``F S x``: image ``(b, y, x)`` -> coil k-space ``(b, coil, y, x)``."""
    return fft2(maps * x[:, None])


def sens_reduce(k: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """``S^H F^H k``: coil k-space ``(b, coil, y, x)`` -> image ``(b, y, x)``."""
    return (maps.conj() * ifft2(k)).sum(dim=1)


def hard_dc(k: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``M y + (1 - M) k``: the acquired samples replaced by the data, exactly."""
    return torch.where(mask > 0, y, k)


def rss(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Root-sum-of-squares over ``dim``."""
    return torch.sqrt((x.real**2 + x.imag**2).sum(dim=dim))


class UNet(nn.Module):
    """A small U-Net on real channels: ``levels`` poolings, ``chans`` features at the top, instance norm."""

    def __init__(self, in_ch: int, out_ch: int, chans: int = 16, levels: int = 2) -> None:
        super().__init__()

        def block(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(i, o, 3, padding=1, bias=False),
                nn.InstanceNorm2d(o),
                nn.LeakyReLU(0.2),
                nn.Conv2d(o, o, 3, padding=1, bias=False),
                nn.InstanceNorm2d(o),
                nn.LeakyReLU(0.2),
            )

        self.levels = levels
        self.down = nn.ModuleList()
        ch = in_ch
        for lev in range(levels):
            self.down.append(block(ch, chans * 2**lev))
            ch = chans * 2**lev
        self.bottom = block(ch, ch * 2)
        self.up_t = nn.ModuleList()
        self.up = nn.ModuleList()
        ch = ch * 2
        for lev in reversed(range(levels)):
            o = chans * 2**lev
            self.up_t.append(nn.ConvTranspose2d(ch, o, 2, stride=2))
            self.up.append(block(2 * o, o))
            ch = o
        self.out = nn.Conv2d(ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(n, in_ch, h, w)`` to ``(n, out_ch, h, w)`` (padded to a multiple of ``2**levels`` inside)."""
        h, w = x.shape[-2:]
        m = 2**self.levels
        ph, pw = (-h) % m, (-w) % m
        x = nn.functional.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "constant")
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
            x = nn.functional.avg_pool2d(x, 2)
        x = self.bottom(x)
        for up_t, layer in zip(self.up_t, self.up, strict=True):
            x = up_t(x)
            x = layer(torch.cat([x, skips.pop()], dim=1))
        return self.out(x)[..., :h, :w]  # type: ignore[no-any-return]


class NormUNet(nn.Module):
    """U-Net on complex images: real/imaginary channels, normalised per sample by mean and standard deviation."""

    def __init__(self, chans: int, levels: int) -> None:
        super().__init__()
        self.unet = UNet(2, 2, chans, levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map complex ``(n, h, w)`` to complex ``(n, h, w)``."""
        r = torch.stack([x.real, x.imag], dim=1)
        mean = r.mean(dim=(-2, -1), keepdim=True)
        std = r.std(dim=(-2, -1), keepdim=True) + 1e-6
        out = self.unet((r - mean) / std) * std + mean
        return torch.complex(out[:, 0], out[:, 1])


def acs_mask(mask: torch.Tensor) -> torch.Tensor:
    """The central run of fully sampled k1 lines (the ACS block) of ``mask`` ``(b, 1, y, x)``, as a mask."""
    lines = mask[:, 0].amax(dim=-1) > 0  # (b, y)
    out = torch.zeros_like(mask)
    n = lines.shape[-1]
    for b in range(lines.shape[0]):
        c = n // 2
        lo, hi = c, c
        while lo - 1 >= 0 and lines[b, lo - 1]:
            lo -= 1
        while hi + 1 < n and lines[b, hi + 1]:
            hi += 1
        if lines[b, c]:
            out[b, :, lo : hi + 1] = 1
    return out


class SensitivityNet(nn.Module):
    """Coil sensitivities from the ACS block: a U-Net per coil on low-resolution coil images, then RSS-normalised."""

    def __init__(self, chans: int = 8, levels: int = 2) -> None:
        super().__init__()
        self.net = NormUNet(chans, levels)

    def forward(self, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Maps ``(b, coil, y, x)`` with ``sum_c |S_c|^2 = 1`` from k-space ``y`` and its mask."""
        b, c, h, w = y.shape
        low = ifft2(y * acs_mask(mask))
        maps = self.net(low.reshape(b * c, h, w)).reshape(b, c, h, w)
        return maps / (rss(maps)[:, None] + EPS)


class VarNet(nn.Module):
    """E2E-VarNet-style unrolled network: learned sensitivities, U-Net regularisers, soft then hard consistency.

    Parameters
    ----------
    cascades
        Unrolled steps.
    chans, levels
        Features and poolings of each cascade's U-Net.
    sens_chans
        Features of the sensitivity U-Net.
    """

    def __init__(self, cascades: int = 6, chans: int = 12, levels: int = 2, sens_chans: int = 8) -> None:
        super().__init__()
        self.sens = SensitivityNet(sens_chans, levels)
        self.regs = nn.ModuleList(NormUNet(chans, levels) for _ in range(cascades))
        self.eta = nn.Parameter(torch.ones(cascades))

    def forward(self, y: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruct ``y`` ``(b, coil, h, w)``: returns the image ``S^H F^H k`` ``(b, h, w)``, the output coil
        k-space ``k`` (equal to ``y`` where ``mask`` is 1) and the estimated maps ``(b, coil, h, w)``."""
        maps = self.sens(y, mask)
        k = y.clone()
        for eta, reg in zip(self.eta, self.regs, strict=True):
            soft = eta * mask * (k - y)
            k = k - soft - sens_expand(reg(sens_reduce(k, maps)), maps)
        k = hard_dc(k, y, mask)
        return sens_reduce(k, maps), k, maps


def sense_normal_op(maps: np.ndarray[Any, Any], mask: np.ndarray[Any, Any]) -> CartesianSenseNormalOp:
    """hifield's ``E^H E`` of one slice: maps ``(coil, y, x)``, mask ``(y, x)``; images ``(1, 1, y, x)``."""
    return CartesianSenseNormalOp(np.asarray(maps)[None, :, None], np.asarray(mask)[None])


def cg_solve(normal: Any, rhs: torch.Tensor, lam: torch.Tensor, n_iter: int) -> torch.Tensor:
    """Conjugate gradients for ``(normal + lam I) x = rhs`` on a tensor, differentiable (no in-place updates)."""
    x = torch.zeros_like(rhs)
    r = rhs
    p = r
    rr = torch.vdot(r.reshape(-1), r.reshape(-1)).real
    for _ in range(n_iter):
        ap = normal(p) + lam * p
        alpha = rr / (torch.vdot(p.reshape(-1), ap.reshape(-1)).real + EPS)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = torch.vdot(r.reshape(-1), r.reshape(-1)).real
        p = r + (rr_new / (rr + EPS)) * p
        rr = rr_new
    return x


class MoDL(nn.Module):
    """MoDL-style network: a shared U-Net denoiser alternated with CG data consistency on hifield's ``E^H E``.

    Parameters
    ----------
    iterations
        Unrolled denoise / data-consistency steps.
    cg_iter
        CG iterations per data-consistency step.
    chans, levels
        Features and poolings of the denoiser U-Net.
    """

    def __init__(self, iterations: int = 5, cg_iter: int = 8, chans: int = 16, levels: int = 2) -> None:
        super().__init__()
        self.denoiser = NormUNet(chans, levels)
        self.log_lam = nn.Parameter(torch.tensor(-1.0))
        self.iterations = iterations
        self.cg_iter = cg_iter

    def dc(self, op: CartesianSenseNormalOp, aty: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Data consistency: ``argmin_x ||E x - y||^2 + lambda ||x - z||^2`` for one slice ``(h, w)`` by CG."""
        lam = torch.exp(self.log_lam)

        def normal(v: torch.Tensor) -> torch.Tensor:
            return op.apply(v[None, None])[0, 0]  # type: ignore[arg-type]

        return cg_solve(normal, aty + lam * z, lam, self.cg_iter)

    def forward(self, y: torch.Tensor, mask: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``y`` ``(b, coil, h, w)`` with maps ``(b, coil, h, w)``: the image ``(b, h, w)``."""
        ops = [sense_normal_op(maps[i].detach().numpy(), mask[i, 0].detach().numpy()) for i in range(y.shape[0])]
        aty = sens_reduce(y * mask, maps)
        x = aty
        for _ in range(self.iterations):
            z = self.denoiser(x)
            x = torch.stack([self.dc(ops[i], aty[i], z[i]) for i in range(y.shape[0])])
        return final_dc(x, y, mask, maps)


def final_dc(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """``S^H F^H (M y + (1 - M) F S x)``: the coil k-space of ``x`` with its acquired samples replaced by the data
    (exactly, as :func:`hard_dc`), combined with the maps.

    With maps of unit RSS, fully sampled data give ``S^H F^H y`` exactly; where the maps vanish (outside the
    object, where ESPIRiT crops them) the image is zero, as nothing there is measured.
    """
    return sens_reduce(hard_dc(sens_expand(x, maps), y, mask), maps)


def build_model(kind: str, params: dict[str, int]) -> nn.Module:
    """A :class:`VarNet` (``kind="varnet"``) or :class:`MoDL` (``"modl"``) with the given size parameters."""
    if kind == "varnet":
        return VarNet(**params)
    if kind == "modl":
        return MoDL(**params)
    raise ValueError(f"unknown learned model {kind!r}; choose varnet or modl")
