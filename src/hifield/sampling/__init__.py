"""Undersampling patterns (seeded, reproducible): one name -> generator table, one validation, retrospective use."""

from hifield.sampling.caipi import caipirinha
from hifield.sampling.grid2d import SamplingPattern2D
from hifield.sampling.partial_fourier import partial_fourier_lines
from hifield.sampling.pattern import (
    SamplingPattern,
    centre_lines,
    equispaced_lines,
    full_lines,
    on_grid,
    played_lines,
    undersample,
    variable_density_lines,
)
from hifield.sampling.poisson import poisson_disc
from hifield.sampling.registry import (
    CARTESIAN_PATTERNS,
    NON_CARTESIAN_PATTERNS,
    PATTERNS,
    TABLE,
    make_pattern,
    readout_subset,
)
from hifield.sampling.trains import segment_trains
from hifield.sampling.validation import SamplingRequest, check_request, partition_calibration

__all__ = [
    "CARTESIAN_PATTERNS",
    "NON_CARTESIAN_PATTERNS",
    "PATTERNS",
    "TABLE",
    "SamplingPattern",
    "SamplingPattern2D",
    "SamplingRequest",
    "caipirinha",
    "centre_lines",
    "check_request",
    "equispaced_lines",
    "full_lines",
    "make_pattern",
    "on_grid",
    "partial_fourier_lines",
    "partition_calibration",
    "played_lines",
    "poisson_disc",
    "readout_subset",
    "segment_trains",
    "undersample",
    "variable_density_lines",
]
