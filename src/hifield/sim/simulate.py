"""``simulate()``: the scanner's physics — a phantom, a sequence and a scanner in, raw data out."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hifield.sim.engines import get_batch_engine, get_engine

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
    steady_state: bool = True,
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
    steady_state
        ``True``: the acquisition starts in the sequence's own steady state, as after preparation (dummy) scans;
        ``False``: the events are played from full relaxation, as written (a community ``.seq`` on a scanner). Only
        engines that model the steady state take it (``fast``); ``bloch`` always plays from rest.

    Returns
    -------
    RawData
        Multi-coil k-space with its header; undersampled sequences give zeros at the lines not played.
    """
    generator = rng if rng is not None else np.random.default_rng(seed)
    run = get_engine(engine)
    if not steady_state and "steady_state" in inspect.signature(run).parameters:
        return run(phantom, sequence, scanner, noise=noise, rng=generator, steady_state=False)  # type: ignore[call-arg]
    return run(phantom, sequence, scanner, noise=noise, rng=generator)


def simulate_many(
    phantom: Phantom,
    sequences: Sequence[BuiltSequence],
    scanner: Scanner,
    *,
    engine: str = "fast",
    noise: Sequence[bool],
    seeds: Sequence[int | None],
) -> list[RawData]:
    """Simulate several sequences on the same phantom: ``[simulate(phantom, s, scanner, noise=n, seed=k) ...]``.

    Engines with a joint form share work between the sequences (the ``fast`` engine encodes a fully sampled
    reference and its undersampled scan with one set of Fourier transforms; the results equal the one-by-one
    simulation to round-off, and the noise of each comes from its own seed); the others simulate one by one.

    Examples
    --------
    >>> import hifield as hf
    >>> scanner = hf.Scanner.preset("3T", n_coils=4)
    >>> protocol = hf.get_protocol("gre_t1_2d").with_changes(matrix=32)
    >>> acq = hf.sequence.plan_acquisition(protocol, scanner, acceleration=2, n_calibration=8)
    >>> phantom = hf.shepp_logan_phantom(matrix=64, fov_m=protocol.fov_m)
    >>> ref, raw = simulate_many(phantom, [acq.full, acq.accelerated], scanner, noise=[False, True], seeds=[0, 0])
    >>> alone = simulate(phantom, acq.accelerated, scanner, noise=True, seed=0)
    >>> bool(np.allclose(raw.kspace, alone.kspace, rtol=0, atol=1e-5 * np.abs(alone.kspace).max()))
    True
    """
    if len(noise) != len(sequences) or len(seeds) != len(sequences):
        from hifield.errors import ConfigError

        raise ConfigError(
            f"give one noise flag and one seed per sequence: {len(sequences)} sequences, {len(noise)} flags, "
            f"{len(seeds)} seeds"
        )
    batch = get_batch_engine(engine)
    rngs = [np.random.default_rng(seed) for seed in seeds]
    if batch is None:
        run = get_engine(engine)
        return [run(phantom, s, scanner, noise=n, rng=g) for s, n, g in zip(sequences, noise, rngs, strict=True)]
    return batch(phantom, sequences, scanner, noise=noise, rngs=rngs)
