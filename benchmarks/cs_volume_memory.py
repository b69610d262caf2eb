"""Peak memory of the memory-bounded 3D CS (hifield.recon.chunked) on a 256 x 256 x 176 volume with 16 coils.

Synthetic data: a block object with smooth analytic 3D coil maps (made per coil for the k-space, per group of
x-slices for the reconstruction, so the 16-coil map set is never held whole), a variable-density Poisson disc over
(k2, k1) at R = 4 with a 24 x 24 calibration block. The traced peak (``tracemalloc``, started before the k-space is
allocated) counts the k-space; ``ru_maxrss`` adds the interpreter and libraries. The peak is reached in the first
group of x-slices, so ``--max-iter`` (FISTA iterations per group) changes the time, not the peak.

Usage: ``python benchmarks/cs_volume_memory.py [--group 8] [--max-iter 5] [--out benchmarks/results/...]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np


def _grid(shape: tuple[int, int, int], xs: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nz, ny, nx = shape
    axes = [np.linspace(-1, 1, n, dtype=np.float32) for n in (nz, ny, nx)]
    return np.meshgrid(axes[0], axes[1], axes[2][xs], indexing="ij")


def raw_map(c: int, n_coils: int, grid: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Unnormalised sensitivity of coil ``c``: coils on two rings around the head, smooth falloff and phase."""
    z, y, x = grid
    a = 2 * np.pi * (c // 2) / max(n_coils // 2, 1)
    cz = 0.6 if c % 2 else -0.6
    dist2 = (z - cz) ** 2 + (y - 1.3 * np.sin(a)) ** 2 + (x - 1.3 * np.cos(a)) ** 2
    return (np.exp(1j * (a + 0.3 * x)) / (1.0 + dist2 / 0.8)).astype(np.complex64)


def rss_norm(n_coils: int, grid: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """``sqrt(sum_c |raw_map_c|^2)``, accumulated one coil at a time."""
    total = np.zeros(grid[0].shape, dtype=np.float32)
    for c in range(n_coils):
        total += np.abs(raw_map(c, n_coils, grid)) ** 2
    return np.sqrt(total)


def coil_maps(n_coils: int, shape: tuple[int, int, int], xs: slice) -> np.ndarray:
    """Maps ``(coil, z, y, len(xs))`` with unit RSS."""
    grid = _grid(shape, xs)
    maps = np.stack([raw_map(c, n_coils, grid) for c in range(n_coils)])
    return maps / np.sqrt(np.sum(np.abs(maps) ** 2, axis=0, keepdims=True))


def main() -> None:
    """Build the data, reconstruct in chunks, print and write the peak memory against the estimate."""
    from hifield.ops import fftc
    from hifield.recon.chunked import chunked_cs_memory_bytes, reconstruct_cs_chunked
    from hifield.recon.config import CsConfig
    from hifield.sampling import make_pattern

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[176, 256, 256], help="z y x (partitions, k1, readout)")
    parser.add_argument("--coils", type=int, default=16)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--max-iter", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    shape = (args.shape[0], args.shape[1], args.shape[2])
    nz, ny, nx = shape
    load = os.getloadavg()

    tracemalloc.start()
    pattern = make_pattern("poisson", (nz, ny), acceleration=4, n_calibration=24, seed=0)
    mask = pattern.mask[:, :, 0]
    z, y, x = np.ogrid[-1 : 1 : nz * 1j, -1 : 1 : ny * 1j, -1 : 1 : nx * 1j]
    obj = ((np.abs(z) < 0.6) & (y**2 + x**2 < 0.5)).astype(np.complex64)
    kspace = np.empty((args.coils, nz, ny, nx), dtype=np.complex64)
    grid = _grid(shape, slice(None))
    norm = rss_norm(args.coils, grid)
    for c in range(args.coils):
        kspace[c] = fftc(raw_map(c, args.coils, grid) / norm * obj) * mask[:, :, None]
    del obj, grid, norm
    tracemalloc.reset_peak()
    setup_current, _ = tracemalloc.get_traced_memory()
    start = time.perf_counter()
    cpu0 = time.process_time()
    image = reconstruct_cs_chunked(
        kspace, mask, lambda xs: coil_maps(args.coils, shape, xs), group=args.group,
        config=CsConfig(max_iter=args.max_iter),
    )  # fmt: skip
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    estimate = chunked_cs_memory_bytes(args.coils, shape, group=args.group)
    result = {
        "shape_zyx": list(shape),
        "coils": args.coils,
        "group": args.group,
        "max_iter": args.max_iter,
        "kspace_gib": round(kspace.nbytes / 2**30, 3),
        "held_before_recon_gib": round(setup_current / 2**30, 3),
        "traced_peak_gib": round(peak / 2**30, 3),
        "estimate_gib": round(estimate / 2**30, 3),
        "recon_peak_above_held_gib": round((peak - setup_current) / 2**30, 3),
        "recon_estimate_without_kspace_gib": round(
            chunked_cs_memory_bytes(args.coils, shape, group=args.group, include_kspace=False) / 2**30, 3
        ),
        "ru_maxrss_gib": round(maxrss / 2**30, 3),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "loadavg_1_5_15": [round(v, 2) for v in load],
        "image_finite": bool(np.isfinite(image).all()),
    }
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
