"""What every engine shares: the field check, the fine (phantom) and coarse (protocol) grids, the acquisition header."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from hifield.data import RawHeader
from hifield.errors import ConfigError

if TYPE_CHECKING:
    from hifield.hardware import Scanner
    from hifield.phantom import Phantom
    from hifield.sequence import BuiltSequence


def check_same_field(phantom: Phantom, scanner: Scanner) -> None:
    """Raise :class:`~hifield.errors.ConfigError` unless the phantom was made at the scanner's field (to 1 uT)."""
    if abs(phantom.b0_t - scanner.b0_t) > 1e-6:
        raise ConfigError(
            f"phantom is at {phantom.b0_t:g} T but the scanner at {scanner.b0_t:g} T; "
            f"use phantom.at_field({scanner.b0_t:g})"
        )


def coarse_affine(
    fine_affine: NDArray[np.float64],
    fine_shape: tuple[int, int, int],
    coarse_shape: tuple[int, int, int],
    *,
    slice_thickness_m: float | None = None,
) -> NDArray[np.float64]:
    """Affine of the coarse grid whose centre voxel (n // 2) sits where the fine grid's centre voxel sits.

    With ``slice_thickness_m`` (a 2D slice) the through-slice column is rescaled to that thickness [m].

    Examples
    --------
    >>> a = coarse_affine(np.diag([1e-3, 1e-3, 1e-3, 1.0]), (1, 8, 8), (1, 4, 4), slice_thickness_m=5e-3)
    >>> np.diag(a)[:3].tolist()
    [0.005, 0.002, 0.002]
    """
    scale = np.array([f / c for f, c in zip(fine_shape, coarse_shape, strict=True)], dtype=np.float64)
    coarse = np.array(fine_affine, dtype=np.float64, copy=True)
    coarse[:3, :3] = fine_affine[:3, :3] * scale[np.newaxis, :]
    centre_fine = fine_affine @ np.array([fine_shape[0] // 2, fine_shape[1] // 2, fine_shape[2] // 2, 1.0])
    coarse[:3, 3] = centre_fine[:3] - coarse[:3, :3] @ np.array([c // 2 for c in coarse_shape], dtype=np.float64)
    if slice_thickness_m is not None:
        coarse[:3, 0] = coarse[:3, 0] / max(float(np.linalg.norm(coarse[:3, 0])), 1e-12) * slice_thickness_m
    return coarse


def acquisition_header(
    sequence: BuiltSequence,
    scanner: Scanner,
    phantom: Phantom,
    fine_shape: tuple[int, int, int],
    coarse_shape: tuple[int, int, int],
    *,
    slice_thickness_m: float,
    fov_z_m: float,
    readout_dwell_s: float,
    pixel_bandwidth_hz: float,
    n_averages: int,
    acceleration: float,
    scan_time_s: float,
    trajectory: Literal["cartesian", "radial", "spiral", "other"],
    engine: str,
) -> RawHeader:
    """The header of a simulated scan: the sequence's timing and names, the coarse grid's geometry, the engine.

    ``slice_thickness_m`` [m] is used for a 2D slice (one phantom plane), ``fov_z_m`` [m] (the slab) in 3D.
    """
    protocol: Any = sequence.protocol
    two_d = fine_shape[0] == 1
    affine = coarse_affine(
        phantom.affine, fine_shape, coarse_shape, slice_thickness_m=slice_thickness_m if two_d else None
    )
    return RawHeader(
        b0_t=scanner.b0_t,
        fov_m=(slice_thickness_m if two_d else fov_z_m, float(protocol.fov_m), float(protocol.fov_m)),
        matrix=coarse_shape,
        te_s=float(sequence.te_s),
        tr_s=float(sequence.tr_s),
        flip_angle_rad=float(sequence.flip_angle_rad),
        ti_s=getattr(sequence, "ti_s", None),
        slice_thickness_m=slice_thickness_m if two_d else None,
        pixel_bandwidth_hz=float(pixel_bandwidth_hz),
        readout_dwell_s=float(readout_dwell_s),
        echo_train_length=int(getattr(sequence, "echo_train_length", 1)),
        n_averages=int(n_averages),
        acceleration=float(acceleration),
        scan_time_s=float(scan_time_s),
        scan_time_full_s=float(scan_time_s) * float(acceleration),
        protocol_name=str(protocol.name),
        sequence_name=str(getattr(sequence, "sequence_name", protocol.name)),
        scanning_sequence=str(getattr(sequence, "scanning_sequence", "GR")),
        sequence_variant=str(getattr(sequence, "sequence_variant", "SP")),
        acquisition_type="2D" if two_d else "3D",
        trajectory=trajectory,
        affine=tuple(tuple(float(v) for v in row) for row in affine),
        system_model=scanner.name,
        engine=engine,
    )
