"""Simulation: ``simulate(phantom, sequence, scanner)`` through a registry of engines; receive noise models."""

from hifield.sim.engines import engine_names, get_batch_engine, get_engine, register_engine
from hifield.sim.engines.timeline import sequence_trajectory
from hifield.sim.simulate import simulate, simulate_many

__all__ = [
    "engine_names",
    "get_batch_engine",
    "get_engine",
    "register_engine",
    "sequence_trajectory",
    "simulate",
    "simulate_many",
]
