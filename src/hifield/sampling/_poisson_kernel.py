"""Numba kernel of the variable-radius Poisson-disc sampler (imported only when a Poisson disc is made)."""

# ruff: noqa: NPY002  (Numba supports only the legacy np.random API, seeded inside the kernel)
from __future__ import annotations

from typing import Any

import numba
import numpy as np


@numba.njit(cache=True)
def free(i2: int, i1: int, r: float, taken: Any) -> bool:
    n2, n1 = taken.shape
    reach = int(np.ceil(r))
    r2 = r * r
    for d2 in range(-reach, reach + 1):
        j2 = i2 + d2
        if j2 < 0 or j2 >= n2:
            continue
        for d1 in range(-reach, reach + 1):
            j1 = i1 + d1
            if j1 < 0 or j1 >= n1:
                continue
            if taken[j2, j1] and d2 * d2 + d1 * d1 < r2:
                return False
    return True


@numba.njit(cache=True)
def poisson_disc(radius: Any, allowed: Any, fixed: Any, seed: int, n_candidates: int) -> Any:
    np.random.seed(seed)
    n2, n1 = radius.shape
    taken = fixed.copy()
    active = np.empty(n2 * n1, dtype=np.int64)
    n_active = 0
    for i in range(n2 * n1):
        if fixed.ravel()[i]:
            active[n_active] = i
            n_active += 1
    if n_active == 0:
        # start from a random allowed point
        for _ in range(100 * n2 * n1):
            i = np.random.randint(0, n2 * n1)
            if allowed.ravel()[i]:
                taken.ravel()[i] = True
                active[0] = i
                n_active = 1
                break
    # Bridson: grow from active points with candidates in the annulus [r, 2r]
    while n_active > 0:
        a = np.random.randint(0, n_active)
        p = active[a]
        p2, p1 = p // n1, p % n1
        rp = radius[p2, p1]
        found = False
        for _ in range(n_candidates):
            ang = 2.0 * np.pi * np.random.random()
            dist = rp * (1.0 + np.random.random())
            c2 = int(np.round(p2 + dist * np.sin(ang)))
            c1 = int(np.round(p1 + dist * np.cos(ang)))
            if c2 < 0 or c2 >= n2 or c1 < 0 or c1 >= n1:
                continue
            if not allowed[c2, c1] or taken[c2, c1]:
                continue
            if free(c2, c1, radius[c2, c1], taken):
                taken[c2, c1] = True
                active[n_active] = c2 * n1 + c1
                n_active += 1
                found = True
                break
        if not found:
            n_active -= 1
            active[a] = active[n_active]
    # dart throwing over the whole grid in random order: the result is maximal (no gap could take a point)
    for i in np.random.permutation(n2 * n1):
        c2, c1 = i // n1, i % n1
        if allowed[c2, c1] and not taken[c2, c1] and free(c2, c1, radius[c2, c1], taken):
            taken[c2, c1] = True
    return taken
