"""``simulate()``: the scanner's physics — a phantom, a sequence and a scanner in, raw data out."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hifield.sim.engines import get_engine

if TYPE_CHECKING:
    from hifield.data import RawData
    from hifield.hardware import Scanner
    from hifield.phantom import Phantom
    from hifield.sequence import BuiltSequence


def simulate(
    phantom: Phantom,
    sequence: BuiltSequence,
    scanner: Scanner,
    *,
    engine: str = "fast",
    noise: bool = True,
    seed: int | None = 0,
    rng: np.random.Generator | None = None,
) -> RawData:
    """Simulate the acquisition of ``sequence`` on ``phantom`` in ``scanner``.

    Parameters
    ----------
    phantom
        Digital object; it must be at the scanner's field strength (``phantom.at_field(scanner.b0_t)``).
    sequence
        A built sequence (``protocol.build(scanner)``).
    scanner
        The scanner (field, receive array and its noise).
    engine
        Registered engine name (``hifield.sim.engine_names()``).
    noise
        Add thermal noise and record a noise scan.
    seed
        Seed of the noise; the same seed gives bit-identical data. Ignored when ``rng`` is given.
    rng
        Random generator to draw the noise from.

    Returns
    -------
    RawData
        Multi-coil k-space with its header; undersampled sequences give zeros at the lines not played.
    """
    generator = rng if rng is not None else np.random.default_rng(seed)
    return get_engine(engine)(phantom, sequence, scanner, noise=noise, rng=generator)
