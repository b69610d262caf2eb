"""Image reconstruction: the encoding problem, a registry of reconstructors behind ``reconstruct``, coil maps.

Names load lazily, so reading the registry (``reconstructor_names()``, as the CLI does at start) imports no FFT,
NUFFT or solver code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hifield._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "CsConfig": "hifield.recon.config",
    "FftConfig": "hifield.recon.config",
    "GrappaConfig": "hifield.recon.config",
    "PartialFourierConfig": "hifield.recon.config",
    "SenseConfig": "hifield.recon.config",
    "TvConfig": "hifield.recon.config",
    "EncodingProblem": "hifield.recon.problem",
    "build_problem": "hifield.recon.problem",
    "Reconstructor": "hifield.recon.registry",
    "reconstruct": "hifield.recon.registry",
    "reconstructor": "hifield.recon.registry",
    "reconstructor_names": "hifield.recon.registry",
    "compress_coils": "hifield.recon.compression",
    "estimate_coil_maps": "hifield.recon.coil_maps",
    "prewhiten": "hifield.recon.whitening",
    "CALIBRATION_PRESCAN_BELOW": "hifield.recon.calibration",
    "needs_calibration_prescan": "hifield.recon.calibration",
    "scan_coil_maps": "hifield.recon.calibration",
    "nyquist_box": "hifield.recon.noncartesian",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from hifield.recon.calibration import CALIBRATION_PRESCAN_BELOW as CALIBRATION_PRESCAN_BELOW
    from hifield.recon.calibration import needs_calibration_prescan as needs_calibration_prescan
    from hifield.recon.calibration import scan_coil_maps as scan_coil_maps
    from hifield.recon.coil_maps import estimate_coil_maps as estimate_coil_maps
    from hifield.recon.compression import compress_coils as compress_coils
    from hifield.recon.config import CsConfig as CsConfig
    from hifield.recon.config import FftConfig as FftConfig
    from hifield.recon.config import GrappaConfig as GrappaConfig
    from hifield.recon.config import PartialFourierConfig as PartialFourierConfig
    from hifield.recon.config import SenseConfig as SenseConfig
    from hifield.recon.config import TvConfig as TvConfig
    from hifield.recon.noncartesian import nyquist_box as nyquist_box
    from hifield.recon.problem import EncodingProblem as EncodingProblem
    from hifield.recon.problem import build_problem as build_problem
    from hifield.recon.registry import Reconstructor as Reconstructor
    from hifield.recon.registry import reconstruct as reconstruct
    from hifield.recon.registry import reconstructor as reconstructor
    from hifield.recon.registry import reconstructor_names as reconstructor_names
