"""hifield: an open, software-defined high-field MRI scanner (``import hifield as hf``).

The public API is re-exported here and loaded lazily, so ``import hifield`` stays fast
(no pypulseq, Numba, Dask, torch or matplotlib until they are used).

Examples
--------
>>> import hifield as hf
>>> hf.Scanner.preset("3T").b0_t
3.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hifield._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # data
    "RawData": "hifield.data",
    "RawHeader": "hifield.data",
    "Trajectory": "hifield.data",
    "Image": "hifield.data",
    "ImageHeader": "hifield.data",
    "CoilMaps": "hifield.data",
    # hardware
    "Scanner": "hifield.hardware",
    "GradientSystem": "hifield.hardware",
    "RFSystem": "hifield.hardware",
    "CoilArray": "hifield.hardware",
    # phantom
    "Phantom": "hifield.phantom",
    "brain_phantom": "hifield.phantom",
    "shepp_logan_phantom": "hifield.phantom",
    "make_phantom": "hifield.phantom",
    "tissue_properties": "hifield.phantom",
    # sequence
    "Protocol": "hifield.sequence",
    "ImagingProtocol": "hifield.sequence",
    "GreProtocol": "hifield.sequence",
    "BuiltSequence": "hifield.sequence",
    "Violation": "hifield.sequence",
    "check": "hifield.sequence",
    "raise_for_violations": "hifield.sequence",
    "load_protocol": "hifield.sequence",
    "save_protocol": "hifield.sequence",
    "protocol_names": "hifield.sequence",
    "get_protocol": "hifield.sequence",
    "build_with_pattern": "hifield.sequence",
    # sampling
    "SamplingPattern": "hifield.sampling",
    "variable_density_lines": "hifield.sampling",
    "undersample": "hifield.sampling",
    "make_pattern": "hifield.sampling",
    "poisson_disc": "hifield.sampling",
    # simulation
    "simulate": "hifield.sim",
    # reconstruction
    "reconstruct": "hifield.recon",
    "estimate_coil_maps": "hifield.recon",
    # metrics
    "nmse": "hifield.metrics",
    "psnr": "hifield.metrics",
    "ssim": "hifield.metrics",
    # pipeline
    "scan": "hifield.pipeline",
    "ScanConfig": "hifield.pipeline",
    "ScanResult": "hifield.pipeline",
    # studies (Dask, extra `dask`)
    "batch": "hifield.distributed",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from hifield.data import CoilMaps as CoilMaps
    from hifield.data import Image as Image
    from hifield.data import ImageHeader as ImageHeader
    from hifield.data import RawData as RawData
    from hifield.data import RawHeader as RawHeader
    from hifield.data import Trajectory as Trajectory
    from hifield.hardware import CoilArray as CoilArray
    from hifield.hardware import GradientSystem as GradientSystem
    from hifield.hardware import RFSystem as RFSystem
    from hifield.hardware import Scanner as Scanner
