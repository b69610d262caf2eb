"""The ``Reconstructor`` registry: one entry per method, each solving an :class:`EncodingProblem` with its config.

The CLI, the pipeline and the console read the choices from here (:func:`reconstructor_names`); ``reconstruct``
builds the encoding problem once and runs the chosen entry on every frame. This module imports no numerical code
until a reconstruction runs, so reading the names is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError, ReconstructionError, check_memory
from hifield.recon.config import CsConfig, FftConfig, GrappaConfig, PartialFourierConfig, SenseConfig, TvConfig
from hifield.recon.learned import LearnedConfig

if TYPE_CHECKING:  # pragma: no cover
    from hifield.data import CoilMaps, Image, RawData
    from hifield.recon.problem import EncodingProblem

Complex = NDArray[np.complex64]
MethodConfig = FftConfig | SenseConfig | CsConfig | TvConfig | GrappaConfig | PartialFourierConfig | LearnedConfig


@dataclass(frozen=True)
class Reconstructor:
    """A reconstruction method: what it is called, what it needs, and how it solves one frame.

    ``run(problem, config)`` reconstructs the current frame of ``problem`` (:class:`EncodingProblem`) and returns
    ``(maps or 1, z, y, x)`` in the units of the data; :func:`reconstruct` combines map sets and stacks frames.
    """

    name: str
    """Name used by ``reconstruct(method=...)``, ``hifield recon --method`` and ``hifield scan --recon``."""
    label: str
    """Short human-readable name (reports, progress lines, the console)."""
    description: str
    """One line: what the method does."""
    config_type: type
    """Its frozen configuration dataclass (:mod:`hifield.recon.config`)."""
    run: Callable[[EncodingProblem, Any], Complex]
    """Solves the problem's current frame with a ``config_type`` instance."""
    needs_coil_maps: bool = False
    """Uses coil sensitivities (estimated from the calibration region when none are given)."""
    needs_calibration: bool = False
    """Needs a fully sampled calibration (ACS) box in the data."""
    cartesian_only: bool = False
    """Reconstructs Cartesian data only (no NUFFT path)."""
    needs_partial_fourier: bool = False
    """Needs partial-Fourier data: one side of k1 or k0 not acquired."""
    learned: bool = False
    """A learned (AI) model: ``run`` returns ``(image, extras)`` with its uncertainty maps, and the image is marked
    AI-reconstructed (model and version) in its header's description."""


def _fft(problem: EncodingProblem, config: FftConfig) -> Complex:
    from hifield.recon.cartesian import rss

    images = problem.coil_images()
    return images if images.shape[0] == 1 else rss(images)


def _on_device(problem: EncodingProblem) -> Any:
    """``E^H y`` on the current device (:mod:`hifield.recon.device`): a numpy array, or a tensor on that device."""
    from hifield.recon.device import current_device, torch_device

    aty = problem.adjoint()
    device = current_device()
    if device == "cpu":
        return aty
    import torch

    return torch.from_numpy(np.ascontiguousarray(aty)).to(torch_device(device))


def _to_host(x: Any) -> Complex:
    from hifield.backend import is_tensor, to_numpy

    return to_numpy(x) if is_tensor(x) else x


def _sense(problem: EncodingProblem, config: SenseConfig) -> Complex:
    from hifield.recon.cartesian import solve_sense

    return _to_host(solve_sense(problem.normal, _on_device(problem), config))


def _cs(problem: EncodingProblem, config: CsConfig) -> Complex:
    from hifield.recon.cartesian import solve_cs

    return _to_host(solve_cs(problem.normal, _on_device(problem), problem.lipschitz(), config))


def _tv(problem: EncodingProblem, config: TvConfig) -> Complex:
    from hifield.recon.cartesian import solve_tv

    return _to_host(solve_tv(problem.normal, _on_device(problem), problem.lipschitz(), config))


def _grappa(problem: EncodingProblem, config: GrappaConfig) -> Complex:
    from hifield.recon.grappa import recon_grappa

    assert problem.mask is not None
    return recon_grappa(problem.y, problem.mask, problem.calibration, config)


def _pocs(problem: EncodingProblem, config: PartialFourierConfig) -> Complex:
    from hifield.recon.partial_fourier import recon_pocs

    assert problem.mask is not None
    return recon_pocs(problem.y, problem.mask, config)


def _homodyne(problem: EncodingProblem, config: PartialFourierConfig) -> Complex:
    from hifield.recon.partial_fourier import recon_homodyne

    assert problem.mask is not None
    return recon_homodyne(problem.y, problem.mask, config)


def _varnet(problem: EncodingProblem, config: LearnedConfig) -> Any:
    from hifield.recon.learned.infer import reconstruct_learned

    return reconstruct_learned("varnet", problem, config)


def _modl(problem: EncodingProblem, config: LearnedConfig) -> Any:
    from hifield.recon.learned.infer import reconstruct_learned

    return reconstruct_learned("modl", problem, config)


_REGISTRY: dict[str, Reconstructor] = {
    r.name: r
    for r in (
        Reconstructor(
            "fft",
            "zero-filled FFT (RSS)",
            "zero-filled inverse FFT (gridding for non-Cartesian data), root-sum-of-squares over coils",
            FftConfig,
            _fft,
        ),
        Reconstructor(
            "sense",
            "CG-SENSE",
            "CG-SENSE with ESPIRiT maps and Tikhonov regularisation",
            SenseConfig,
            _sense,
            needs_coil_maps=True,
        ),
        Reconstructor(
            "cs",
            "L1-wavelet compressed sensing",
            "L1-wavelet compressed sensing (FISTA, random wavelet shifts)",
            CsConfig,
            _cs,
            needs_coil_maps=True,
        ),
        Reconstructor(
            "grappa",
            "GRAPPA",
            "GRAPPA k-space interpolation from the ACS block, root-sum-of-squares",
            GrappaConfig,
            _grappa,
            needs_calibration=True,
            cartesian_only=True,
        ),
        Reconstructor(
            "pocs",
            "partial Fourier (POCS)",
            "partial Fourier by POCS (low-resolution phase), root-sum-of-squares",
            PartialFourierConfig,
            _pocs,
            cartesian_only=True,
            needs_partial_fourier=True,
        ),
        Reconstructor(
            "homodyne",
            "partial Fourier (homodyne)",
            "partial Fourier by homodyne detection, root-sum-of-squares",
            PartialFourierConfig,
            _homodyne,
            cartesian_only=True,
            needs_partial_fourier=True,
        ),
        Reconstructor(
            "tv",
            "TV-regularised SENSE",
            "total-variation regularised SENSE (primal-dual)",
            TvConfig,
            _tv,
            needs_coil_maps=True,
        ),
        Reconstructor(
            "varnet",
            "E2E-VarNet (learned)",
            "unrolled network with learned coil sensitivities, trained on hifield simulations (AI, needs torch)",
            LearnedConfig,
            _varnet,
            needs_calibration=True,
            cartesian_only=True,
            learned=True,
        ),
        Reconstructor(
            "modl",
            "MoDL (learned)",
            "unrolled denoiser with CG-SENSE data consistency, trained on hifield simulations (AI, needs torch)",
            LearnedConfig,
            _modl,
            needs_calibration=True,
            cartesian_only=True,
            learned=True,
        ),
    )
}


def reconstructor_names() -> tuple[str, ...]:
    """Names of every registered reconstructor, as :func:`reconstruct`'s ``method`` accepts them.

    Examples
    --------
    >>> "sense" in reconstructor_names() and "grappa" in reconstructor_names()
    True
    """
    return tuple(_REGISTRY)


def reconstructor(name: str) -> Reconstructor:
    """The registered reconstructor ``name`` (its label, needs, config type and solver).

    Raises
    ------
    ConfigError
        For an unknown name; the message lists the registered ones.

    Examples
    --------
    >>> reconstructor("sense").needs_coil_maps, reconstructor("grappa").cartesian_only
    (True, True)
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown reconstruction method {name!r}; choose one of: {', '.join(_REGISTRY)}") from None


_MEMORY_HINT = "compress the coils, reconstruct fewer frames at a time, use a smaller grid or raise --max-memory"


def _grid(raw: RawData) -> tuple[int, int, int]:
    shape = raw.header.matrix if raw.trajectory is not None else np.shape(raw.kspace)[-3:]
    return (int(shape[0]), int(shape[1]), int(shape[2]))


def _describe(raw: RawData) -> str:
    return f"{raw.n_coils} coils on a {'x'.join(map(str, _grid(raw)))} grid"


def memory_needed(raw: RawData, method: str) -> float:
    """Peak bytes ``reconstruct(raw, method=method)`` needs once coil maps exist (estimating them is checked apart).

    See :func:`hifield.recon.memory.reconstruction_memory_bytes` for the model and where its factors come from.
    """
    from hifield.recon import memory

    kspace_shape = np.shape(raw.kspace)  # (*other, coil, k2, k1, k0) or (*other, coil, *samples)
    n_samples = None if raw.trajectory is None else int(np.prod(kspace_shape[-3:]))
    return memory.reconstruction_memory_bytes(
        method,
        n_coils=raw.n_coils,
        image_shape=_grid(raw),
        n_frames=int(np.prod(kspace_shape[:-4])),
        n_samples=n_samples,
    )


def reconstruct(
    raw: RawData,
    *,
    method: str = "sense",
    coil_maps: CoilMaps | None = None,
    config: MethodConfig | None = None,
    device: str | None = None,
) -> Image:
    """Reconstruct raw data into an image in the units of the input (no hidden normalisation).

    Parameters
    ----------
    raw
        K-space ``(*other, coil, k2, k1, k0)`` on the full grid with zeros where not acquired, its mask and header.
    method
        One of :func:`reconstructor_names`: ``"fft"`` (zero-filled RSS), ``"sense"`` (CG-SENSE), ``"cs"``
        (L1-wavelet), ``"tv"`` (total variation), ``"grappa"``, ``"pocs"`` or ``"homodyne"`` (partial Fourier).
    coil_maps
        Sensitivities ``(maps, coil, z, y, x)``; estimated with ``config.coil_method`` (ESPIRiT by default) from
        the calibration region when None and the method needs them. The same maps serve every ``other`` index.
    config
        The method's configuration dataclass (:mod:`hifield.recon.config`); None uses its defaults.
    device
        Where CG-SENSE, CS and TV compute (:mod:`hifield.recon.device`): ``"cpu"`` (numpy), ``"cuda"``/``"cuda:N"``
        (torch on a GPU) or ``"torch"`` (torch on the CPU); None keeps the current one (``use_device``, else
        ``"cpu"``). The other methods compute on the CPU whatever the device.

    Returns
    -------
    Image
        Complex64 data ``(*other, 1, z, y, x)``; ESPIRiT map sets are combined by RSS with the first set's phase.

    Non-Cartesian data (``raw.trajectory`` set; k-space ``(*other, coil, *samples)``) go through the NUFFT on the
    grid ``raw.header.matrix``: ``"fft"`` grids the density-compensated samples, the others solve the weighted
    least-squares problem ``||W^(1/2) (A S x - y)||^2`` plus their regulariser.

    Raises
    ------
    ConfigError
        Unknown method, or a config of another method's type.
    ReconstructionError
        NaN or infinite k-space, missing calibration for coil maps or GRAPPA, maps that do not match the data,
        non-Cartesian data for a Cartesian-only method, or non-Cartesian data without density compensation weights.
    """
    from hifield.data import Image, ImageHeader
    from hifield.recon.cartesian import combine_maps
    from hifield.recon.problem import build_problem

    spec = reconstructor(method)
    if config is None:
        config = spec.config_type()
    elif not isinstance(config, spec.config_type):
        raise ConfigError(
            f"method {method!r} takes a {spec.config_type.__name__}, got a {type(config).__name__}; "
            f"pass {spec.config_type.__name__}(...) or None"
        )
    if device is not None:
        from hifield.recon.device import validate_device

        device = validate_device(device)  # a missing torch or GPU is refused before any work
    if not np.all(np.isfinite(np.asarray(raw.kspace))):
        raise ReconstructionError("k-space contains NaN or infinite values; check the data source or simulation")
    if spec.cartesian_only and raw.trajectory is not None:
        usable = ", ".join(r.name for r in _REGISTRY.values() if not r.cartesian_only)
        raise ReconstructionError(
            f"method {method!r} reconstructs Cartesian data only; for {raw.header.trajectory} data use {usable}"
        )
    check_memory(memory_needed(raw, method), what=f"{spec.label} of {_describe(raw)}", hint=_MEMORY_HINT)
    problem = build_problem(
        raw,
        coil_maps=coil_maps,
        needs_coil_maps=spec.needs_coil_maps,
        needs_calibration=spec.needs_calibration,
        coil_method=getattr(config, "coil_method", "espirit"),
        density=getattr(config, "density", "trajectory"),
    )
    if spec.needs_calibration and problem.calibration is None:
        raise ReconstructionError(
            f"no fully sampled calibration (ACS) region found for {spec.label}; acquire ACS lines or use --recon fft"
        )
    out = np.empty((problem.n_frames, 1, *problem.shape), dtype=np.complex64)
    extras: dict[str, Any] = {}
    from hifield.recon.device import use_device

    for i in range(problem.n_frames):
        with use_device(device):
            x = spec.run(problem if i == 0 else problem.at(i), config)
        if spec.learned:
            x, frame_extras = x
            for name, value in frame_extras.items():
                extras.setdefault(name, np.zeros(out.shape, dtype=np.float32))[i] = value
        out[i] = combine_maps(np.asarray(x, dtype=np.complex64))
    data = out.reshape((*problem.other_shape, 1, *problem.shape))
    description = ""
    if spec.learned:
        from hifield.recon.learned.infer import describe

        description = describe(method, config)  # type: ignore[arg-type]
    header = ImageHeader(
        affine=raw.header.affine_array(), acquisition=raw.header, recon_method=method, description=description
    )
    extras = {name: value.reshape(data.shape) for name, value in extras.items()}
    return Image(data=data, header=header, extras=extras)
