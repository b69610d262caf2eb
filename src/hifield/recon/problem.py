"""The encoding problem ``y = E x`` built once from ``RawData``: Cartesian (mask . FFT . maps) or NUFFT, per frame."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.backend import TensorCache, is_tensor, torch_module
from hifield.data import CoilMaps, RawData, RawHeader
from hifield.errors import ReconstructionError
from hifield.ops import CartesianSenseNormalOp, NUFFTOp, ifftc
from hifield.recon import noncartesian
from hifield.recon.cartesian import encoding_operator, lipschitz_bound
from hifield.recon.coil_maps import estimate_coil_maps

Complex = NDArray[np.complex64]
Box = tuple[slice, slice, slice]


@dataclass(frozen=True, eq=False)
class EncodingProblem:
    """Everything a reconstructor needs about how the image was encoded, and the data of one frame.

    Cartesian data are encoded by ``E = mask . centred FFT . S``; non-Cartesian data by the weighted NUFFT,
    ``E = sqrt(W) A S`` with the density compensation ``W``. The operators, coil maps, weights, mask and
    calibration region are built once by :func:`build_problem`; :meth:`at` gives the same problem for another
    frame (``other`` index) of the data. Images are ``(maps, z, y, x)`` and stay in the units of the data.
    """

    header: RawHeader
    """Acquisition header of the data."""
    shape: tuple[int, int, int]
    """Image grid ``(z, y, x)``."""
    frames: Complex
    """All frames of the k-space ``(n_frames, coil, *samples)``, complex64 (``other`` axes flattened)."""
    other_shape: tuple[int, ...]
    """The ``other`` axes that :attr:`frames` flattens."""
    y: Complex
    """Data of the current frame: Cartesian ``(coil, k2, k1, k0)`` with zeros where not acquired, non-Cartesian
    ``(coil, *trajectory samples)``."""
    mask: NDArray[np.bool_] | None = None
    """Acquired positions, broadcastable to ``(k2, k1, k0)`` (Cartesian only)."""
    calibration: Box | None = None
    """Fully sampled calibration box ``(k2, k1, k0)``, when a reconstructor needs one (Cartesian only)."""
    maps: Complex | None = None
    """Coil sensitivities ``(maps, coil, z, y, x)``, when a reconstructor needs them."""
    nufft: NUFFTOp | None = None
    """Non-uniform FFT of the trajectory, batched over coils (non-Cartesian only)."""
    weights: NDArray[np.float32] | None = None
    """Density compensation per sample, shaped like the NUFFT's samples (non-Cartesian only)."""
    noise: Complex | None = None
    """The noise scan ``(coil, samples)`` of the raw data, when it carries one: the receive noise of the data,
    e.g. for a test of whether an image's residual is more than noise."""
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)
    """Operators and norms built on first use, shared by every frame."""

    @property
    def cartesian(self) -> bool:
        """True for Cartesian data (no NUFFT)."""
        return self.nufft is None

    @property
    def n_coils(self) -> int:
        """Receive channels."""
        return int(self.frames.shape[1])

    @property
    def n_frames(self) -> int:
        """Frames (product of the ``other`` axes)."""
        return int(self.frames.shape[0])

    def at(self, index: int) -> EncodingProblem:
        """The same problem for frame ``index`` of the data (operators and maps shared, not rebuilt)."""
        return replace(self, y=self._frame_data(self.frames[index]))

    def _frame_data(self, frame: Complex) -> Complex:
        if self.nufft is None:
            assert self.mask is not None
            return np.where(self.mask, frame, np.complex64(0))
        return frame.reshape(self.n_coils, *self.nufft.sample_shape).astype(np.complex64)

    def _cached(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def _sensitivities(self) -> Complex:
        if self.maps is None:
            raise ReconstructionError("this reconstruction needs coil maps; build the problem with needs_coil_maps")
        return self.maps

    def coil_images(self) -> Complex:
        """Coil images ``(coil, z, y, x)`` of the current frame: zero-filled inverse FFT, or gridding ``A^H W y``."""
        if self.nufft is None:
            return ifftc(self.y).astype(np.complex64, copy=False)
        assert self.weights is not None
        return self.nufft.apply_adjoint((self.y * self.weights).astype(np.complex64))

    def adjoint(self) -> Complex:
        """``E^H y`` of the current frame, ``(maps, z, y, x)``."""
        maps = self._sensitivities()
        if self.nufft is None:
            encoding = self._cached("encoding", lambda: encoding_operator(maps, self.mask))  # type: ignore[arg-type]
            return encoding.H @ self.y  # type: ignore[no-any-return]
        return np.einsum("mc...,c...->m...", np.conj(maps), self.coil_images()).astype(np.complex64)

    def normal(self, x: Complex) -> Complex:
        """``E^H E x`` for an image ``x`` of shape ``(maps, z, y, x)``."""
        maps = self._sensitivities()
        if self.nufft is None:
            op = self._cached("normal", lambda: CartesianSenseNormalOp(maps, self.mask))  # type: ignore[arg-type]
            return op.apply(x)  # type: ignore[no-any-return]
        assert self.weights is not None
        if is_tensor(x):  # on the tensor's device: the maps and weights cross once, the NUFFT runs in torch
            cache = self._cached("tensors", TensorCache)
            maps_t = cache.get("maps", maps, x)
            weights_t = cache.get("weights", self.weights, x)
            coil_t = self.nufft.apply(torch_module().einsum("mc...,m...->c...", maps_t, x))
            back_t = self.nufft.apply_adjoint(coil_t * weights_t)
            return torch_module().einsum("mc...,c...->m...", maps_t.conj(), back_t)
        coil = np.einsum("mc...,m...->c...", maps, x)
        k = self.nufft.apply(coil.astype(np.complex64))
        back = self.nufft.apply_adjoint((k * self.weights).astype(np.complex64))
        return np.einsum("mc...,c...->m...", np.conj(maps), back).astype(np.complex64)

    def lipschitz(self) -> float:
        """``||E^H E||``: a per-pixel bound for Cartesian data, power iteration (seeded, 5 % margin) for the NUFFT."""
        maps = self._sensitivities()
        if self.nufft is None:
            return float(self._cached("lipschitz", lambda: lipschitz_bound(maps)))
        return float(self._cached("lipschitz", self._power_iteration))

    def _power_iteration(self, n_iter: int = 15) -> float:
        maps = self._sensitivities()
        x = np.random.default_rng(0).standard_normal((maps.shape[0], *self.shape)).astype(np.complex64)
        value = 1.0
        for _ in range(n_iter):
            y = self.normal(x)
            value = float(np.linalg.norm(y)) / max(float(np.linalg.norm(x)), 1e-30)
            x = (y / max(float(np.linalg.norm(y)), 1e-30)).astype(np.complex64)
        return 1.05 * value


def _check_maps(maps: NDArray[np.complex64], expected: tuple[int, ...]) -> Complex:
    maps = np.asarray(maps)
    if maps.ndim == 4:
        maps = maps[None]
    if maps.ndim != 5 or maps.shape[1:] != expected:
        raise ReconstructionError(
            f"coil maps of shape {maps.shape} do not match k-space (coil, k2, k1, k0) = {expected}; "
            "estimate maps from this data or pass maps shaped (maps, coil, z, y, x)"
        )
    return maps.astype(np.complex64, copy=False)


def build_problem(
    raw: RawData,
    *,
    coil_maps: CoilMaps | None = None,
    needs_coil_maps: bool = False,
    needs_calibration: bool = False,
    coil_method: str = "espirit",
    density: str = "trajectory",
) -> EncodingProblem:
    """The encoding problem of ``raw``, set to its first frame.

    Parameters
    ----------
    raw
        Cartesian k-space ``(*other, coil, k2, k1, k0)`` on the full grid with zeros where not acquired, or
        non-Cartesian k-space ``(*other, coil, *samples)`` with its trajectory (grid ``raw.header.matrix``).
    coil_maps
        Sensitivities ``(maps, coil, z, y, x)`` to use; estimated with ``coil_method`` from the calibration region
        when None and ``needs_coil_maps``.
    needs_coil_maps
        Attach (and check) coil maps.
    needs_calibration
        Find the fully sampled calibration box (Cartesian data).
    coil_method
        ``"espirit"`` or ``"walsh"``: how missing maps are estimated.
    density
        Non-Cartesian density compensation: ``"trajectory"`` (the trajectory's own weights) or ``"pipe-menon"``.

    Raises
    ------
    ReconstructionError
        Non-Cartesian samples that do not match the trajectory, missing density weights, maps that do not match the
        data, a missing calibration region (for maps or when ``needs_calibration``).
    """
    kspace = np.asarray(raw.kspace)
    n_coils = kspace.shape[-4]
    frames = kspace.reshape((-1, *kspace.shape[-4:])).astype(np.complex64, copy=False)
    other = tuple(kspace.shape[:-4])
    if raw.trajectory is None:
        shape = (int(kspace.shape[-3]), int(kspace.shape[-2]), int(kspace.shape[-1]))
        nufft, weights, mask = None, None, np.asarray(raw.sampling_mask)
    else:
        shape = noncartesian.check_layout(raw)
        weights = noncartesian.density_weights(raw, density)
        nufft = NUFFTOp(
            raw.trajectory.kspace_m,
            shape,
            raw.header.voxel_size_m,
            batch_shape=(n_coils,),
            eps=1e-4,
            n_threads=noncartesian.NUFFT_THREADS,
        )
        weights = weights.reshape(nufft.sample_shape).astype(np.float32)
        mask = None
    maps = None
    if needs_coil_maps:
        if coil_maps is None:
            coil_maps = estimate_coil_maps(raw, method=coil_method)  # type: ignore[arg-type]
        maps = _check_maps(coil_maps.maps, (n_coils, *shape))
    calibration = None
    if needs_calibration and raw.trajectory is None:
        from hifield.recon.calibration import calibration_region

        calibration = calibration_region(raw)
    problem = EncodingProblem(
        header=raw.header,
        shape=shape,
        frames=frames,
        other_shape=other,
        y=frames[0],
        mask=mask,
        calibration=calibration,
        maps=maps,
        nufft=nufft,
        weights=weights,
        noise=None if raw.noise is None else np.asarray(raw.noise, dtype=np.complex64),
    )
    return problem.at(0)
