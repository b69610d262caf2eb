"""The protocol library: one module per sequence family, each building a pypulseq sequence."""

from hifield.sequence.library import gre, tse

__all__ = ["gre", "tse"]
