"""Fast normal operator of Cartesian SENSE, ``E^H E = S^H F^H M F S``, without fftshifts or needless FFT axes."""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from hifield._interrupt import interrupts_held
from hifield.backend import TensorCache, is_tensor, promoted, torch_module
from hifield.errors import ConfigError
from hifield.ops.base import Array, LinearOperator


class CartesianSenseNormalOp(LinearOperator):
    """``E^H E`` of ``E = mask . centred FFT . S`` for images ``(maps, z, y, x)`` (Hermitian: its own adjoint).

    Two exact shortcuts make it about twice as fast as composing the operators:

    * the FFT runs only along axes where the mask varies: along an axis where it is constant, ``F^H M F`` acts as
      the identity (fully sampled readouts need no FFT at all);
    * on even-sized axes the centred FFT is ``D F D`` with ``D = diag((-1)^n)`` up to a sign, so the shifts
      cancel in ``F^H M F`` once ``D`` is folded into the maps (the output of ``F D`` is already centred, so the
      mask is used as it is).

    Parameters
    ----------
    maps
        Sensitivities ``(maps, coil, z, y, x)``.
    mask
        Sampling mask (or real weights) broadcastable to ``(k2, k1, k0)``.

    Notes
    -----
    On numpy arrays of one map set with at least :data:`PARALLEL_ELEMENTS` coil-image elements, the coils are split
    into groups on a thread per core, each group's products, FFTs and coil sum on its own thread (1.6x faster than
    threaded FFTs alone at 256² with 8 coils on 2 cores: the products and sums are half the work).

    Torch tensors are computed natively in torch (``torch.einsum``, ``torch.fft``) on their device; the maps and
    weights are copied to that device on first use and kept for later calls.
    """

    def __init__(self, maps: NDArray[np.complexfloating], mask: NDArray[np.bool_] | NDArray[np.floating]) -> None:
        maps = np.asarray(maps)
        if maps.ndim != 5:
            raise ConfigError(f"coil maps must have shape (maps, coil, z, y, x); got {maps.shape}")
        spatial = maps.shape[2:]
        mask = np.broadcast_to(np.asarray(mask), spatial)
        axes = []
        for axis in range(3):
            first = mask[(slice(None),) * axis + (slice(0, 1),)]
            if spatial[axis] > 1 and not np.array_equal(mask, np.broadcast_to(first, spatial)):
                axes.append(axis - 3)
        self.fft_axes = tuple(axes)
        reduced = mask[tuple(slice(None) if a - 3 in axes else slice(0, 1) for a in range(3))]
        self._shift_free = all(spatial[a] % 2 == 0 for a in self.fft_axes)
        weights = reduced.astype(np.float32)
        maps_eff = maps
        if self._shift_free and self.fft_axes:
            sign = np.ones(spatial, dtype=np.float32)
            for a in self.fft_axes:
                n = spatial[a]
                shape = [1, 1, 1]
                shape[a] = n
                sign = sign * ((-1.0) ** np.arange(n)).astype(np.float32).reshape(shape)
            maps_eff = maps * sign
        self.maps = np.ascontiguousarray(maps_eff)
        self._maps_conj = np.conj(self.maps)
        self.weights = weights
        self._tensors = TensorCache()
        image_shape = (maps.shape[0], *spatial)
        super().__init__(image_shape, image_shape, name="SenseNormal")

    def _apply_torch(self, x: Any) -> Any:
        torch = torch_module()
        dtype = promoted(self.maps, x)
        maps = self._tensors.get("maps", self.maps, x, dtype)
        weights = self._tensors.get("weights", self.weights, x)
        xc = x.to(dtype)
        if maps.shape[0] == 1:
            coil = maps[0] * xc[0]
        else:
            coil = torch.einsum("mc...,m...->c...", maps, xc)
        if self.fft_axes:
            if self._shift_free:
                k = torch.fft.fftn(coil, dim=self.fft_axes, norm="ortho") * weights
                coil = torch.fft.ifftn(k, dim=self.fft_axes, norm="ortho")
            else:
                from hifield.ops.fft import fftc, ifftc

                coil = ifftc(fftc(coil, axes=self.fft_axes) * weights, axes=self.fft_axes)
        else:
            coil = coil * weights
        if maps.shape[0] == 1:
            out = (maps[0].conj() * coil).sum(dim=0)[None]
        else:
            out = torch.einsum("mc...,c...->m...", maps.conj(), coil)
        return out.to(x.dtype)

    def _coil_group(self, coils: slice, image: NDArray[np.complexfloating]) -> NDArray[np.complexfloating]:
        """``sum_c conj(S_c) F^H M F (S_c x)`` over a group of coils (one map set, shift-free), on one thread."""
        coil = self.maps[0][coils] * image
        k = scipy.fft.fftn(coil, axes=self.fft_axes, norm="ortho", workers=1, overwrite_x=True)
        k *= self.weights
        coil = scipy.fft.ifftn(k, axes=self.fft_axes, norm="ortho", workers=1, overwrite_x=True)
        coil *= self._maps_conj[0][coils]
        return coil.sum(axis=0)  # type: ignore[no-any-return]

    def _apply(self, x: Array) -> Array:
        if is_tensor(x):
            return self._apply_torch(x)
        n_coils = self.maps.shape[1]
        groups = _coil_groups(n_coils, self.maps[0].size)
        if groups > 1 and self.maps.shape[0] == 1 and self.fft_axes and self._shift_free:
            # the coils in groups on a thread per core: FFTs, products and the coil sum all run in parallel (numpy
            # and pocketfft release the GIL), where threaded FFTs alone leave the products on one core
            bounds = np.linspace(0, n_coils, groups + 1).astype(int)
            coils = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]
            with interrupts_held():  # a signal waits for the groups (milliseconds), then raises
                parts = list(_pool().map(self._coil_group, coils, [x[0]] * groups))
            out = parts[0]
            for part in parts[1:]:
                out += part
            return out[None].astype(x.dtype, copy=False)
        if self.maps.shape[0] == 1:
            coil = self.maps[0] * x[0]
        else:
            coil = np.einsum("mc...,m...->c...", self.maps, x)
        if self.fft_axes:
            if self._shift_free:
                k = scipy.fft.fftn(coil, axes=self.fft_axes, norm="ortho", workers=-1, overwrite_x=True)
                k *= self.weights
                coil = scipy.fft.ifftn(k, axes=self.fft_axes, norm="ortho", workers=-1, overwrite_x=True)
            else:
                from hifield.ops.fft import fftc, ifftc

                coil = ifftc(fftc(coil, axes=self.fft_axes) * self.weights, axes=self.fft_axes)
        else:
            coil = coil * self.weights
        if self.maps.shape[0] == 1:
            out = np.einsum("c...,c...->...", self._maps_conj[0], coil)[None]
        else:
            out = np.einsum("mc...,c...->m...", self._maps_conj, coil)
        return out.astype(x.dtype, copy=False)

    def _adjoint(self, y: Array) -> Array:
        return self._apply(y)

    def normal(self) -> LinearOperator:
        return self @ self


_POOL: tuple[int, ThreadPoolExecutor] | None = None
_CPUS = os.cpu_count() or 1
PARALLEL_ELEMENTS = 2**16
"""Coil-image elements (coils x voxels) from which the normal operator splits the coils over threads."""


def _coil_groups(n_coils: int, elements: int) -> int:
    """Thread groups for a normal operator of ``n_coils`` coils over ``elements`` coil-image elements."""
    if elements < PARALLEL_ELEMENTS:
        return 1
    return max(1, min(n_coils, _CPUS))


def _pool() -> ThreadPoolExecutor:
    """The module's worker threads, one per core; made anew in a forked child (whose copy has no threads)."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():
        _POOL = (os.getpid(), ThreadPoolExecutor(max_workers=_CPUS, thread_name_prefix="hifield-sense"))
    return _POOL[1]
