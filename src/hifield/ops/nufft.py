"""Non-uniform FFT operator (finufft) and iterative Pipe-Menon density compensation for non-Cartesian k-space."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.backend import is_tensor, torch_module
from hifield.errors import ConfigError
from hifield.ops.base import Array, LinearOperator


def _phases(
    kspace_m: NDArray[np.floating], image_shape: tuple[int, int, int], voxel_size_m: Sequence[float]
) -> list[NDArray[np.float64]]:
    """Per-axis phases ``2 pi k voxel`` wrapped to [-pi, pi) for the non-singleton image axes (z, y, x order)."""
    k = np.asarray(kspace_m, dtype=np.float64).reshape(-1, 3)
    out = []
    for axis in range(3):
        if image_shape[axis] > 1:
            phase = 2.0 * np.pi * k[:, axis] * float(voxel_size_m[axis])
            out.append(np.mod(phase + np.pi, 2.0 * np.pi) - np.pi)
    return out


class NUFFTOp(LinearOperator):
    """Non-uniform DFT from an image grid to k-space sample positions, scaled like the orthonormal FFT.

    Forward (finufft type 2): ``y_j = N^(-1/2) sum_r x(r) exp(-i 2 pi k_j . r)`` with ``r = (index - n // 2) * voxel``
    (the grid centre at 0, as for :func:`~hifield.ops.fftc`), so that on Cartesian sample positions it equals the
    centred orthonormal FFT. The adjoint is finufft type 1 with the opposite sign.

    Parameters
    ----------
    kspace_m
        Sample positions [1/m], shape ``(*samples, 3)`` ordered (kz, ky, kx); kz is ignored for a 2D grid.
    image_shape
        Grid ``(z, y, x)``; ``z == 1`` gives a 2D transform over (y, x).
    voxel_size_m
        Voxel size ``(dz, dy, dx)`` [m].
    batch_shape
        Leading axes transformed independently (e.g. ``(n_coils,)``).
    eps
        finufft tolerance (relative error of the transform).
    upsampfac
        finufft grid oversampling (None: 1.25 for ``eps >= 1e-5``, about three times faster, else 2.0).
    n_threads
        Threads for finufft (None: its default, all cores).

    Notes
    -----
    A ``torch.Tensor`` is transformed in torch on its own device (a GPU tensor stays on the GPU) by Kaiser-Bessel
    gridding (:class:`~hifield.ops.nufft_torch.TorchNUFFT`, accurate to ``eps``, at most 1e-4 for complex64);
    autograd flows through it. numpy arrays go through finufft.

    Examples
    --------
    >>> import numpy as np
    >>> from hifield.ops import fftc
    >>> n, fov = 8, 0.2
    >>> ky, kx = np.meshgrid((np.arange(n) - n // 2) / fov, (np.arange(n) - n // 2) / fov, indexing="ij")
    >>> k = np.stack([np.zeros_like(kx), ky, kx], axis=-1)
    >>> op = NUFFTOp(k, (1, n, n), (0.005, fov / n, fov / n))
    >>> x = np.random.default_rng(0).standard_normal((1, n, n)).astype(np.complex64)
    >>> bool(np.allclose((op @ x)[None], fftc(x), atol=1e-5))
    True
    """

    def __init__(
        self,
        kspace_m: NDArray[np.floating],
        image_shape: Sequence[int],
        voxel_size_m: Sequence[float],
        *,
        batch_shape: Sequence[int] = (),
        eps: float = 1e-6,
        upsampfac: float | None = None,
        n_threads: int | None = None,
    ) -> None:
        kspace_m = np.asarray(kspace_m)
        if kspace_m.shape[-1] != 3:
            raise ConfigError(f"k-space positions must end in an axis of 3 (kz, ky, kx); got {kspace_m.shape}")
        shape3 = tuple(int(n) for n in image_shape)
        if len(shape3) != 3:
            raise ConfigError(f"image shape must be (z, y, x); got {shape3}")
        self.image_shape = (shape3[0], shape3[1], shape3[2])
        self.sample_shape = tuple(kspace_m.shape[:-1])
        self.batch_shape = tuple(int(b) for b in batch_shape)
        self.eps = float(eps)
        self.upsampfac = float(upsampfac) if upsampfac is not None else (1.25 if eps >= 1e-5 else 2.0)
        self.n_threads = n_threads
        self._coords = _phases(kspace_m, self.image_shape, voxel_size_m)
        self._modes = tuple(n for n in self.image_shape if n > 1)
        self._scale = 1.0 / np.sqrt(float(np.prod(self.image_shape)))
        self._plans: dict[tuple[int, str], Any] = {}
        self._torch_plans: dict[float, Any] = {}
        super().__init__((*self.batch_shape, *self.image_shape), (*self.batch_shape, *self.sample_shape), name="NUFFT")

    def _plan(self, nufft_type: int, dtype: np.dtype[Any]) -> Any:
        import finufft

        key = (nufft_type, np.dtype(dtype).str)
        if key not in self._plans:
            n_trans = int(np.prod(self.batch_shape)) if self.batch_shape else 1
            isign = -1 if nufft_type == 2 else 1
            options: dict[str, Any] = {"upsampfac": self.upsampfac}
            if self.n_threads is not None:
                options["nthreads"] = int(self.n_threads)
            plan = finufft.Plan(
                nufft_type,
                self._modes,
                n_trans=n_trans,
                eps=self.eps,
                isign=isign,
                dtype=np.dtype(dtype).name,
                **options,
            )
            coords = [c.astype(np.float32 if dtype == np.complex64 else np.float64) for c in self._coords]
            # finufft pairs its first coordinate with the first mode axis (C order): (z,) y, x
            plan.setpts(*coords)
            self._plans[key] = plan
        return self._plans[key]

    def _torch(self, x: Any) -> Any:
        """The torch NUFFT (:class:`~hifield.ops.nufft_torch.TorchNUFFT`) for a tensor of ``x``'s precision."""
        torch = torch_module()
        double = x.dtype in (torch.float64, torch.complex128)
        eps = self.eps if double else max(self.eps, 1e-4)  # complex64: ~1e-4 is float precision's reach
        if eps not in self._torch_plans:
            from hifield.ops.nufft_torch import TorchNUFFT

            self._torch_plans[eps] = TorchNUFFT(self._coords, self._modes, eps)
        return self._torch_plans[eps]

    def _apply(self, x: Array) -> Array:
        if is_tensor(x):  # a tensor is transformed in torch on its device (a GPU tensor stays there)
            n_trans = int(np.prod(self.batch_shape)) if self.batch_shape else 1
            y = self._torch(x).forward(x.reshape(n_trans, *self._modes))
            return y.reshape(self.oshape) * self._scale
        dtype = np.complex64 if x.dtype in (np.complex64, np.float32) else np.complex128
        n_trans = int(np.prod(self.batch_shape)) if self.batch_shape else 1
        data = np.ascontiguousarray(x, dtype=dtype).reshape(n_trans, *self._modes)
        if n_trans == 1:
            data = data[0]
        y = self._plan(2, np.dtype(dtype)).execute(data)
        return (y.reshape(self.oshape) * self._scale).astype(dtype, copy=False)

    def _adjoint(self, y: Array) -> Array:
        if is_tensor(y):
            n_trans = int(np.prod(self.batch_shape)) if self.batch_shape else 1
            x = self._torch(y).adjoint(y.reshape(n_trans, -1))
            return x.reshape(self.ishape) * self._scale
        dtype = np.complex64 if y.dtype in (np.complex64, np.float32) else np.complex128
        n_trans = int(np.prod(self.batch_shape)) if self.batch_shape else 1
        data = np.ascontiguousarray(y, dtype=dtype).reshape(n_trans, -1)
        if n_trans == 1:
            data = data[0]
        x = self._plan(1, np.dtype(dtype)).execute(data)
        return (x.reshape(self.ishape) * self._scale).astype(dtype, copy=False)


def pipe_menon_density(
    kspace_m: NDArray[np.floating],
    image_shape: Sequence[int],
    voxel_size_m: Sequence[float],
    *,
    n_iter: int = 30,
    eps: float = 1e-4,
    n_threads: int | None = 1,
) -> NDArray[np.float32]:
    """Density-compensation weights by the iterative method of Pipe & Menon (1999): ``w <- w / (C * w)``.

    The convolution ``C`` with a compact positive k-space kernel is done with NUFFTs on a grid of twice the field of
    view: ``C w = A (g . A^H w)`` with ``g`` a Gaussian image-domain window whose k-space width is about one Nyquist
    cell. Weights are normalised so that Cartesian Nyquist sampling gets weight 1 (so a gridding reconstruction is
    in the units of the data, like the orthonormal FFT).

    Parameters
    ----------
    kspace_m
        Sample positions [1/m], shape ``(*samples, 3)``.
    image_shape
        Reconstruction grid ``(z, y, x)``.
    voxel_size_m
        Voxel size ``(dz, dy, dx)`` [m].
    n_iter
        Iterations.
    eps
        NUFFT tolerance.
    n_threads
        finufft threads (None: all cores).

    Returns
    -------
    numpy.ndarray
        Weights, shape ``kspace_m.shape[:-1]``, float32.
    """
    shape3 = tuple(int(n) for n in image_shape)
    big = tuple(2 * n if n > 1 else 1 for n in shape3)
    op = NUFFTOp(kspace_m, big, voxel_size_m, eps=eps, n_threads=n_threads)
    window = np.ones(big, dtype=np.float64)
    for axis, n in enumerate(big):
        if n > 1:
            r = np.arange(n) - n // 2
            sigma = shape3[axis] / 5.0
            shape = [1, 1, 1]
            shape[axis] = n
            window = window * np.exp(-0.5 * (r / sigma) ** 2).reshape(shape)

    def conv(w: NDArray[np.complex128], o: NUFFTOp) -> NDArray[np.float64]:
        return np.real(o.apply(window * o.apply_adjoint(w)))

    # normalisation: the same convolution of unit weights on the Cartesian Nyquist lattice, at the centre
    lattice_axes = [
        (np.arange(n) - n // 2) / (n * float(v)) if n > 1 else np.zeros(1)
        for n, v in zip(shape3, voxel_size_m, strict=True)
    ]
    kz, ky, kx = np.meshgrid(*lattice_axes, indexing="ij")
    lattice = np.stack([kz, ky, kx], axis=-1)
    lat_op = NUFFTOp(lattice, big, voxel_size_m, eps=eps, n_threads=n_threads)
    c0 = float(conv(np.ones(lattice.shape[:-1], dtype=np.complex128), lat_op)[tuple(n // 2 for n in shape3)])

    w = np.ones(op.oshape, dtype=np.complex128)
    for _ in range(n_iter):
        c = conv(w, op)
        w = w / np.maximum(np.abs(c), 1e-12)
    return (np.real(w) * c0).astype(np.float32)
