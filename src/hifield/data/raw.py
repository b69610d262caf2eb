"""Raw data: multi-coil k-space with its acquisition header, sampling mask, trajectory and noise scan."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError

TrajectoryType = Literal["cartesian", "radial", "goldenangle", "spiral", "epi", "other"]


@dataclass(frozen=True)
class RawHeader:
    """Everything a reconstruction, a report or a DICOM/ISMRMRD writer needs to know about an acquisition.

    All values SI. Geometry is (z, y, x) like the arrays: ``k2, k1, k0`` encode ``z, y, x``;
    ``k0`` is the readout (frequency-encoding) direction, ``k1`` the phase-encoding direction.
    """

    b0_t: float
    """Main magnetic field [T]."""
    fov_m: tuple[float, float, float]
    """Field of view of the reconstructed image ``(z, y, x)`` [m]; for 2D, z is the slice thickness."""
    matrix: tuple[int, int, int]
    """Reconstructed matrix ``(n_z, n_y, n_x)``; for a 2D slice ``n_z == 1``."""
    te_s: float
    """Echo time [s]."""
    tr_s: float
    """Repetition time [s]."""
    flip_angle_rad: float
    """Nominal excitation flip angle [rad]."""
    ti_s: float | None = None
    """Inversion time [s], None without an inversion pulse."""
    slice_thickness_m: float | None = None
    """Slice thickness [m] of a 2D acquisition (None for 3D)."""
    pixel_bandwidth_hz: float = 0.0
    """Receiver bandwidth per pixel along the readout [Hz/pixel]."""
    readout_dwell_s: float = 0.0
    """ADC dwell time between readout samples [s]."""
    echo_train_length: int = 1
    """Echoes per excitation (1 for GRE and SE)."""
    n_averages: int = 1
    """Number of signal averages."""
    acceleration: float = 1.0
    """Effective acceleration factor: fully sampled lines / acquired lines."""
    scan_time_s: float = 0.0
    """Duration of the acquisition as played [s]."""
    scan_time_full_s: float = 0.0
    """Duration the same protocol takes fully sampled [s]."""
    protocol_name: str = ""
    """Name of the protocol, e.g. ``"gre_t1_2d"``."""
    sequence_name: str = ""
    """Short sequence name, e.g. ``"*fl2d1"``-style ``"hf_gre2d"``."""
    scanning_sequence: str = "GR"
    """DICOM ScanningSequence code(s): SE, IR, GR, EP, RM (backslash separated)."""
    sequence_variant: str = "SP"
    """DICOM SequenceVariant code(s): NONE, SK, MTC, SS, TRSS, SP, MP, OSP."""
    acquisition_type: Literal["2D", "3D"] = "2D"
    """DICOM MRAcquisitionType."""
    trajectory: TrajectoryType = "cartesian"
    """Trajectory type as ISMRMRD names it."""
    affine: tuple[tuple[float, ...], ...] = field(
        default_factory=lambda: tuple(tuple(float(v) for v in row) for row in np.eye(4))
    )
    """4 x 4 affine of the image grid: index (z, y, x, 1) -> LPS position (z, y, x, 1) [m] (see data.geometry)."""
    system_vendor: str = "hifield"
    """Manufacturer written to ISMRMRD and DICOM."""
    system_model: str = ""
    """Scanner model (the preset's name)."""
    engine: str = ""
    """Simulation engine that produced the data, '' for measured or imported data."""
    patient_name: str = "hifield^phantom"
    """DICOM PatientName of the digital subject."""
    patient_id: str = "HIFIELD-0001"
    """DICOM PatientID of the digital subject."""

    def replace(self, **changes: object) -> RawHeader:
        """Copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def affine_array(self) -> NDArray[np.float64]:
        """The affine as a (4, 4) float64 array."""
        return np.asarray(self.affine, dtype=np.float64)

    @property
    def voxel_size_m(self) -> tuple[float, float, float]:
        """Voxel size ``(dz, dy, dx)`` [m]."""
        return (
            self.fov_m[0] / self.matrix[0],
            self.fov_m[1] / self.matrix[1],
            self.fov_m[2] / self.matrix[2],
        )


@dataclass(frozen=True)
class Trajectory:
    """Non-Cartesian k-space sample positions.

    ``kspace_m`` has shape ``(*readouts, n_samples, 3)`` in (kz, ky, kx) order [1/m]; ``density`` (optional,
    same leading shape without the last axis) are density-compensation weights.
    """

    kspace_m: NDArray[np.float64]
    """Sample positions [1/m], shape ``(..., 3)`` ordered (kz, ky, kx)."""
    density: NDArray[np.float32] | None = None
    """Density-compensation weights, shape ``kspace_m.shape[:-1]``."""


@dataclass(frozen=True)
class RawData:
    """Multi-coil k-space of one acquisition.

    Cartesian k-space is stored on the full grid ``(*other, coil, k2, k1, k0)`` (complex64) with zeros where
    nothing was acquired; ``mask`` says which positions were acquired.
    """

    kspace: NDArray[np.complex64]
    """K-space, shape ``(*other, coil, k2, k1, k0)``, complex64, in the scanner's signal units."""
    header: RawHeader
    """Acquisition header."""
    mask: NDArray[np.bool_] | None = None
    """Acquired positions, shape ``(k2, k1, k0)`` broadcastable to ``kspace``; None means fully sampled."""
    calibration: NDArray[np.bool_] | None = None
    """Fully sampled calibration (ACS) positions, shape like ``mask``; None if there are none."""
    trajectory: Trajectory | None = None
    """Non-Cartesian sample positions; None for Cartesian data."""
    noise: NDArray[np.complex64] | None = None
    """Noise scan (no RF), shape ``(coil, n_samples)``, complex64, same units as ``kspace``."""

    def __post_init__(self) -> None:
        if self.kspace.ndim < 4:
            raise ConfigError(
                f"k-space must have shape (*other, coil, k2, k1, k0); got {self.kspace.ndim} axes {self.kspace.shape}"
            )
        if self.mask is not None and self.mask.ndim != 3:
            raise ConfigError(f"sampling mask must have shape (k2, k1, k0); got {self.mask.shape}")

    @property
    def n_coils(self) -> int:
        """Number of receive channels."""
        return int(self.kspace.shape[-4])

    @property
    def sampling_mask(self) -> NDArray[np.bool_]:
        """The sampling mask broadcast to ``(k2, k1, k0)`` (all True when fully sampled)."""
        shape = self.kspace.shape[-3:]
        if self.mask is None:
            return np.ones(shape, dtype=bool)
        return np.broadcast_to(self.mask, shape)

    def replace(self, **changes: object) -> RawData:
        """Copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
