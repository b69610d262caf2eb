"""The protocol library: one module per sequence family, each building a pypulseq sequence."""

from hifield.sequence.library import gre, gre3d, tse

__all__ = ["gre", "gre3d", "tse"]
