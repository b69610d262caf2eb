"""Echo trains of a (k2, k1) plane pattern: which points each inversion-prepared train (MPRAGE) plays, in order."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError


def segment_trains(points: NDArray[np.int64], *, train_length: int) -> list[NDArray[np.int64]]:
    """Split the (k2, k1) points of a 3D pattern into echo trains of at most ``train_length`` points each.

    The points are sorted by k1 (then k2) and dealt out in turn to ``ceil(n / train_length)`` trains, so every train
    sweeps k1 linearly from one edge to the other (the k1 centre near the middle of the train, where an MPRAGE's
    inversion time puts it) and the trains differ in length by at most one point. A fully sampled plane gives the
    conventional MPRAGE ordering: one partition per train, its k1 lines in linear order. Fewer points give fewer
    trains, so an inversion-prepared scan gets shorter by the acceleration while each train keeps its timing.

    Parameters
    ----------
    points
        ``(n, 2)`` (k2, k1) index pairs, each at most once.
    train_length
        Most points one train may play (the protocol's k1 lines per inversion).

    Returns
    -------
    list of ndarray
        The trains in playing order, each ``(m, 2)`` (k2, k1) pairs in acquisition order.

    Raises
    ------
    ConfigError
        For an empty point set, a train length below 1 or repeated points.

    Examples
    --------
    >>> full = np.argwhere(np.ones((3, 4), dtype=bool))
    >>> [t[:, 0].tolist() for t in segment_trains(full, train_length=4)]
    [[0, 0, 0, 0], [1, 1, 1, 1], [2, 2, 2, 2]]
    >>> segment_trains(full, train_length=4)[1][:, 1].tolist()
    [0, 1, 2, 3]
    """
    pts = np.asarray(points, dtype=np.int64).reshape(-1, 2)
    if pts.shape[0] == 0:
        raise ConfigError("a pattern with no (k2, k1) points plays no echo train; lower the acceleration")
    if train_length < 1:
        raise ConfigError(f"echo train length must be at least 1; got {train_length}")
    if np.unique(pts, axis=0).shape[0] != pts.shape[0]:
        raise ConfigError("the (k2, k1) points of a pattern must be distinct")
    ordered = pts[np.lexsort((pts[:, 0], pts[:, 1]))]  # k1 major, k2 minor
    n_trains = math.ceil(ordered.shape[0] / train_length)
    return [ordered[t::n_trains] for t in range(n_trains)]
