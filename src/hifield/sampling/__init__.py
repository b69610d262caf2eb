"""Undersampling patterns (seeded, reproducible) built into the acquisition order, and retrospective undersampling."""

from hifield.sampling.pattern import (
    PATTERNS,
    SamplingPattern,
    equispaced_lines,
    full_lines,
    make_pattern,
    undersample,
    variable_density_lines,
)

__all__ = [
    "PATTERNS",
    "SamplingPattern",
    "equispaced_lines",
    "full_lines",
    "make_pattern",
    "undersample",
    "variable_density_lines",
]
