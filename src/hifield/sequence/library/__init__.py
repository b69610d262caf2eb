"""The protocol library: one module per sequence family, each building a pypulseq sequence."""
