"""A built sequence: the pypulseq object plus the acquisition facts a simulator, reconstruction and DICOM need."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from hifield.sampling import SamplingPattern
    from hifield.sequence.protocol import ImagingProtocol


@dataclass(frozen=True)
class BuiltSequence:
    """A pypulseq sequence built from a protocol for one scanner.

    The ADC events carry pypulseq labels (``LIN`` = k1 index, ``AVG``, ``SLC``, ``PAR`` where relevant) so that a
    generic reader can place each readout line.
    """

    seq: Any = field(repr=False)
    """The ``pypulseq.Sequence``."""
    protocol: ImagingProtocol
    """The protocol it was built from."""
    scanner_name: str
    """Name of the scanner it was designed for."""
    duration_s: float
    """Total duration from ``seq.duration()`` [s]."""
    phase_encode_lines: NDArray[np.int64]
    """k1 index of each acquired line, in acquisition order (one entry per ADC of one average)."""
    n_readout_samples: int
    """ADC samples per readout (including oversampling)."""
    readout_dwell_s: float
    """ADC dwell time [s]."""
    te_s: float
    """Actual echo time [s]."""
    tr_s: float
    """Actual repetition time [s]."""
    flip_angle_rad: float
    """Excitation flip angle [rad]."""
    readout_oversampling: int = 1
    """Readout oversampling factor."""
    trajectory: str = "cartesian"
    """k-space trajectory kind (``cartesian``, ``radial``, ``spiral``)."""
    scanning_sequence: str = "GR"
    """DICOM (0018,0020) Scanning Sequence (GR, SE, IR, EP)."""
    sequence_variant: str = "SP"
    """DICOM (0018,0021) Sequence Variant (SP spoiled, SS steady state, MP magnetisation prepared, NONE)."""
    sequence_name: str = "fl2d"
    """DICOM (0018,0024) Sequence Name."""
    pixel_bandwidth_hz: float = 0.0
    """Receiver bandwidth per pixel, actual after dwell rounding [Hz] (DICOM (0018,0095))."""
    n_averages: int = 1
    """Number of averages played."""
    ti_s: float | None = None
    """Inversion time [s], for inversion-prepared sequences."""
    echo_train_length: int = 1
    """Echoes per excitation."""
    n_dummy_scans: int = 0
    """TRs played without ADC before acquisition."""
    partition_lines: NDArray[np.int64] | None = None
    """k2 (partition) indices for 3D sequences, in acquisition order (the outer loop); ``None`` for 2D. A sequence
    built from ``plane_points`` holds the k2 index of every readout here (and the k1 index in
    ``phase_encode_lines``)."""
    plane_points: NDArray[np.int64] | None = None
    """``(n_readouts, 2)`` (k2, k1) index pairs in acquisition order of a 3D sequence that plays a 2D phase-encode
    pattern (Poisson disc, CAIPIRINHA) instead of whole partitions; ``None`` otherwise."""
    spoke_angles_rad: NDArray[np.float64] | None = None
    """In-plane angle of each radial spoke / spiral interleaf, in acquisition order [rad]; ``None`` for Cartesian."""
    slice_positions_m: NDArray[np.float64] | None = None
    """z position of each slice (index = SLC label) [m]; ``None`` for 3D or single-slice families."""
    echo_spacing_s: float | None = None
    """Echo spacing of echo trains (TSE, EPI) [s]."""
    time_per_line_s: float | None = None
    """Scan time each phase-encode line adds [s] (``None``: one TR per line; TR / echo-train length for TSE)."""
    pattern: SamplingPattern | None = None
    """The sampling pattern it plays (mask, order, calibration region), attached by
    :func:`hifield.sequence.with_pattern`; ``None`` for a sequence that carries none (a foreign ``.seq`` file, a
    protocol built on its own), whose readouts then place the mask."""
    pattern_axis: str = "k1"
    """What the pattern's lines index: ``"k1"`` (phase-encode lines), ``"k2"`` (partitions of a slab, every k1 line
    of an acquired partition is played), ``"plane"`` (the (k2, k1) points of a slab, see ``plane_points``) or
    ``"readouts"`` (radial spokes, spiral interleaves)."""
    slice_thickness_m: float | None = None
    """Thickness of the slice (2D) [m], with ``slice_positions_m`` the slice geometry; ``None`` for 3D slabs and
    sequences that carry no pattern."""

    @property
    def n_lines(self) -> int:
        """Number of acquired phase-encode lines per average."""
        return int(self.phase_encode_lines.size)

    @property
    def readout_duration_s(self) -> float:
        """ADC duration of one readout [s]."""
        return self.n_readout_samples * self.readout_dwell_s

    def duration_for_lines(self, n_lines: int) -> float:
        """Predicted scan time [s] for ``n_lines`` phase-encode lines with the same timing.

        Examples
        --------
        >>> from hifield.hardware.scanner import Scanner
        >>> from hifield.sequence import GreProtocol
        >>> b = GreProtocol(matrix=32, tr_s=0.02).build(Scanner.preset("3T"))
        >>> round(b.duration_for_lines(16), 3)
        0.32
        """
        per_line = self.tr_s if self.time_per_line_s is None else self.time_per_line_s
        overhead = self.duration_s - self.n_averages * self.n_lines * per_line
        return float(overhead + self.n_averages * n_lines * per_line)
