"""Undersampling patterns (seeded, reproducible) built into the acquisition order, and retrospective undersampling."""

from hifield.sampling.caipi import caipirinha
from hifield.sampling.grid2d import SamplingPattern2D
from hifield.sampling.noncartesian import GOLDEN_ANGLE_RAD, NonCartesianPattern, golden_angle_radial
from hifield.sampling.partial_fourier import partial_fourier_lines
from hifield.sampling.pattern import (
    PATTERNS,
    SamplingPattern,
    equispaced_lines,
    full_lines,
    make_pattern,
    undersample,
    variable_density_lines,
    with_calibration,
)
from hifield.sampling.poisson import poisson_disc
from hifield.sampling.registry import (
    CARTESIAN_PATTERNS,
    NON_CARTESIAN_PATTERNS,
    make_any_pattern,
    make_noncartesian_pattern,
)
from hifield.sampling.spiral import variable_density_spiral

__all__ = [
    "CARTESIAN_PATTERNS",
    "GOLDEN_ANGLE_RAD",
    "NON_CARTESIAN_PATTERNS",
    "PATTERNS",
    "NonCartesianPattern",
    "SamplingPattern",
    "SamplingPattern2D",
    "caipirinha",
    "equispaced_lines",
    "full_lines",
    "golden_angle_radial",
    "make_any_pattern",
    "make_noncartesian_pattern",
    "make_pattern",
    "partial_fourier_lines",
    "poisson_disc",
    "undersample",
    "variable_density_lines",
    "variable_density_spiral",
    "with_calibration",
]
