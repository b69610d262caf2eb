"""Image reconstruction: coil maps (ESPIRiT, Walsh) and a registry of methods behind ``reconstruct``."""

from hifield.recon.calibration import CALIBRATION_PRESCAN_BELOW, needs_calibration_prescan, scan_coil_maps
from hifield.recon.coil_maps import estimate_coil_maps
from hifield.recon.compression import compress_coils
from hifield.recon.config import CsConfig, FftConfig, GrappaConfig, PartialFourierConfig, SenseConfig, TvConfig
from hifield.recon.noncartesian import nyquist_box
from hifield.recon.registry import describe_method, method_config, recon_methods, reconstruct
from hifield.recon.whitening import prewhiten

__all__ = [
    "CALIBRATION_PRESCAN_BELOW",
    "CsConfig",
    "FftConfig",
    "GrappaConfig",
    "PartialFourierConfig",
    "SenseConfig",
    "TvConfig",
    "compress_coils",
    "describe_method",
    "estimate_coil_maps",
    "method_config",
    "needs_calibration_prescan",
    "nyquist_box",
    "prewhiten",
    "recon_methods",
    "reconstruct",
    "scan_coil_maps",
]
