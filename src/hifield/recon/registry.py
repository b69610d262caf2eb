"""The reconstruction registry: ``reconstruct(raw, method=...)`` dispatches to one method per name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.data import CoilMaps, Image, ImageHeader, RawData
from hifield.errors import ConfigError, ReconstructionError
from hifield.recon import cartesian
from hifield.recon.coil_maps import estimate_coil_maps
from hifield.recon.config import CsConfig, FftConfig, GrappaConfig, PartialFourierConfig, SenseConfig, TvConfig

MethodConfig = FftConfig | SenseConfig | CsConfig | TvConfig | GrappaConfig | PartialFourierConfig


@dataclass(frozen=True)
class _Method:
    run: Callable[[NDArray[np.complex64], NDArray[np.bool_], NDArray[np.complex64] | None, Any], NDArray[Any]]
    config_type: type
    needs_maps: bool
    description: str


def _pf() -> Any:
    from hifield.recon import partial_fourier

    return partial_fourier


def _grappa_needs_acs(*_: Any) -> NDArray[Any]:
    raise AssertionError("GRAPPA runs through reconstruct(), which finds its calibration block")


_METHODS: dict[str, _Method] = {
    "fft": _Method(
        lambda k, m, s, c: cartesian.recon_fft(k),
        FftConfig,
        False,
        "zero-filled inverse FFT, root-sum-of-squares over coils",
    ),
    "sense": _Method(
        lambda k, m, s, c: cartesian.recon_sense(k, m, s, c),  # type: ignore[arg-type]
        SenseConfig,
        True,
        "CG-SENSE with ESPIRiT maps and Tikhonov regularisation",
    ),
    "cs": _Method(
        lambda k, m, s, c: cartesian.recon_cs(k, m, s, c),  # type: ignore[arg-type]
        CsConfig,
        True,
        "L1-wavelet compressed sensing (FISTA, random wavelet shifts)",
    ),
    "grappa": _Method(
        _grappa_needs_acs,
        GrappaConfig,
        False,
        "GRAPPA k-space interpolation from the ACS block, root-sum-of-squares",
    ),
    "pocs": _Method(
        lambda k, m, s, c: _pf().recon_pocs(k, m, c),
        PartialFourierConfig,
        False,
        "partial Fourier by POCS (low-resolution phase), root-sum-of-squares",
    ),
    "homodyne": _Method(
        lambda k, m, s, c: _pf().recon_homodyne(k, m, c),
        PartialFourierConfig,
        False,
        "partial Fourier by homodyne detection, root-sum-of-squares",
    ),
    "tv": _Method(
        lambda k, m, s, c: cartesian.recon_tv(k, m, s, c),  # type: ignore[arg-type]
        TvConfig,
        True,
        "total-variation regularised SENSE (primal-dual)",
    ),
}


def recon_methods() -> tuple[str, ...]:
    """Names accepted by :func:`reconstruct`'s ``method``.

    Examples
    --------
    >>> "sense" in recon_methods()
    True
    """
    return tuple(_METHODS)


def describe_method(method: str) -> str:
    """One-line description of a reconstruction method."""
    return _lookup(method).description


def method_config(method: str) -> type:
    """The configuration dataclass of a method (instantiate it with keyword arguments)."""
    return _lookup(method).config_type


def _lookup(method: str) -> _Method:
    try:
        return _METHODS[method]
    except KeyError:
        raise ConfigError(f"unknown reconstruction method {method!r}; choose one of: {', '.join(_METHODS)}") from None


def _check_maps(maps: NDArray[np.complex64], kspace_shape: tuple[int, ...]) -> NDArray[np.complex64]:
    maps = np.asarray(maps)
    if maps.ndim == 4:
        maps = maps[None]
    expected = tuple(kspace_shape[-4:])
    if maps.ndim != 5 or maps.shape[1:] != expected:
        raise ReconstructionError(
            f"coil maps of shape {maps.shape} do not match k-space (coil, k2, k1, k0) = {expected}; "
            "estimate maps from this data or pass maps shaped (maps, coil, z, y, x)"
        )
    return maps.astype(np.complex64, copy=False)


def _reconstruct_noncartesian(
    raw: RawData, method: str, spec: _Method, coil_maps: CoilMaps | None, config: Any
) -> Image:
    from hifield.recon import noncartesian

    shape = noncartesian.check_layout(raw)
    if method not in ("fft", "sense", "cs", "tv"):
        raise ReconstructionError(
            f"method {method!r} reconstructs Cartesian data only; "
            f"for {raw.header.trajectory} data use fft, sense, cs or tv"
        )
    weights = noncartesian.density_weights(raw, getattr(config, "density", "trajectory"))
    maps: NDArray[np.complex64] | None = None
    if spec.needs_maps:
        if coil_maps is None:
            coil_maps = estimate_coil_maps(raw, method=getattr(config, "coil_method", "espirit"))
        maps = _check_maps(coil_maps.maps, (raw.kspace.shape[-4], *shape))
    kspace = np.asarray(raw.kspace)
    frames = kspace.reshape((-1, *kspace.shape[-4:])).astype(np.complex64, copy=False)
    out = np.empty((frames.shape[0], 1, *shape), dtype=np.complex64)
    for i, frame in enumerate(frames):
        x = noncartesian.reconstruct_frame(raw, frame, method, maps, config, weights)
        out[i] = cartesian.combine_maps(np.asarray(x, dtype=np.complex64))
    data = out.reshape((*kspace.shape[:-4], 1, *shape))
    header = ImageHeader(affine=raw.header.affine_array(), acquisition=raw.header, recon_method=method)
    return Image(data=data, header=header)


def reconstruct(
    raw: RawData,
    *,
    method: str = "sense",
    coil_maps: CoilMaps | None = None,
    config: MethodConfig | None = None,
) -> Image:
    """Reconstruct Cartesian raw data into an image in the units of the input (no hidden normalisation).

    Parameters
    ----------
    raw
        K-space ``(*other, coil, k2, k1, k0)`` on the full grid with zeros where not acquired, its mask and header.
    method
        One of :func:`recon_methods`: ``"fft"`` (zero-filled RSS), ``"sense"`` (CG-SENSE), ``"cs"`` (L1-wavelet),
        ``"tv"`` (total variation).
    coil_maps
        Sensitivities ``(maps, coil, z, y, x)``; estimated with ``config.coil_method`` (ESPIRiT by default) from
        the calibration region when None and the method needs them. The same maps serve every ``other`` index.
    config
        The method's configuration dataclass (:mod:`hifield.recon.config`); None uses its defaults.

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
        NaN or infinite k-space, missing calibration for coil maps, maps that do not match the data, or
        non-Cartesian data without density compensation weights.
    """
    spec = _lookup(method)
    if config is None:
        config = spec.config_type()
    elif not isinstance(config, spec.config_type):
        raise ConfigError(
            f"method {method!r} takes a {spec.config_type.__name__}, got a {type(config).__name__}; "
            f"pass {spec.config_type.__name__}(...) or None"
        )
    kspace = np.asarray(raw.kspace)
    if not np.all(np.isfinite(kspace)):
        raise ReconstructionError("k-space contains NaN or infinite values; check the data source or simulation")
    if raw.trajectory is not None:
        return _reconstruct_noncartesian(raw, method, spec, coil_maps, config)
    mask = np.asarray(raw.sampling_mask)
    maps: NDArray[np.complex64] | None = None
    if spec.needs_maps:
        if coil_maps is None:
            coil_maps = estimate_coil_maps(raw, method=getattr(config, "coil_method", "espirit"))
        maps = _check_maps(coil_maps.maps, kspace.shape)
    acs = None
    if method == "grappa":
        from hifield.recon.calibration import calibration_region

        acs = calibration_region(raw)
        if acs is None:
            raise ReconstructionError(
                "no fully sampled calibration (ACS) region found for GRAPPA; acquire ACS lines or use --recon fft"
            )
    frames = kspace.reshape((-1, *kspace.shape[-4:])).astype(np.complex64, copy=False)
    out = np.empty((frames.shape[0], 1, *kspace.shape[-3:]), dtype=np.complex64)
    for i, frame in enumerate(frames):
        y = np.where(mask, frame, np.complex64(0))
        if acs is not None:
            from hifield.recon.grappa import recon_grappa

            x = recon_grappa(y, mask, acs, config)  # type: ignore[arg-type]
        else:
            x = spec.run(y, mask, maps, config)
        out[i] = cartesian.combine_maps(np.asarray(x, dtype=np.complex64))
    data = out.reshape((*kspace.shape[:-4], 1, *kspace.shape[-3:]))
    header = ImageHeader(affine=raw.header.affine_array(), acquisition=raw.header, recon_method=method)
    return Image(data=data, header=header)
