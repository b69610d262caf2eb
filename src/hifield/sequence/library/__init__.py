"""The protocol library: one module per sequence family, each building a pypulseq sequence."""

from hifield.sequence.library import bssfp, epi, gre, gre3d, radial, spiral, tse

__all__ = ["bssfp", "epi", "gre", "gre3d", "radial", "spiral", "tse"]
