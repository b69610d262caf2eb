"""Received signal of one tissue's voxels through a compiled Bloch program: drives the Numba kernel in bounded memory.

Voxels sharing every pulse map (same off-resonance, B1+ scale and the coordinates the pulses' gradients see) share
one pulse-map computation, done for groups of such classes whose table fits in ``MAX_TABLE_BYTES``; the
free-precession factors of the isochromats are tabulated once per call. The kernel
(:mod:`hifield.sim.engines.bloch_kernel`) is imported on first use (compiling it takes a few seconds once).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError
from hifield.sim.engines.bloch_program import OP_FREE, IdealSlicePulses, Program

N_BLOCKS = 8
"""Fixed number of voxel blocks summed separately (the result does not depend on the thread count)."""
RECEIVER_PHASE = complex(0.0, -1.0)
"""Receiver reference phase factor (-90 degrees): an on-resonance 90-degree pulse of phase 0 gives a real signal."""
MAX_ACC_BYTES = 2 * 1024**3
"""Largest accumulator memory of one call [bytes] (blocks x coils x samples)."""
MAX_TABLE_BYTES = 64 * 1024**2
"""Largest pulse-map or free-precession table of one call [bytes]."""


def _kernel() -> Any:
    from hifield.sim.engines import bloch_kernel

    return bloch_kernel


def _pulse_classes(
    pos: NDArray[np.float64], dw: NDArray[np.float64], b1: NDArray[np.float64], rf_area: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Voxel classes sharing every pulse map: same off-resonance, B1 scale and the coordinates the pulses' gradients
    see. Returns each voxel's class and the classes' ``(z, y, x, Δω, B1)`` rows, sorted."""
    used = np.any(rf_area != 0.0, axis=0) if rf_area.size else np.zeros(3, dtype=bool)
    keys = np.concatenate([pos * used[np.newaxis, :], dw[:, np.newaxis], b1[:, np.newaxis]], axis=1)
    classes, vox_class = np.unique(keys, axis=0, return_inverse=True)
    return np.ascontiguousarray(vox_class.reshape(pos.shape[0]).astype(np.int64)), classes


def _pulse_table(
    kernel: Any,
    program: Program,
    part: NDArray[np.float64],
    iso_off: NDArray[np.float64],
    iso_dw: NDArray[np.float64],
    rf: tuple[NDArray[np.float64], ...],
    ideal: IdealSlicePulses | None,
) -> NDArray[np.float64]:
    """Pulse maps ``(class, pulse, 12, iso)`` of the voxel classes ``part`` (rows ``z, y, x, Δω, B1``); the ideal
    pulses' maps are computed on resonance and wrapped as ``Rz(Δω t_after) A Rz(Δω t_before)`` (and ``b`` by the
    after rotation), the precession each spin does over the two halves of a pulse played at its centre."""
    rf_wx, rf_wy, rf_area, e1h, e2h = rf

    def maps(class_dw: NDArray[np.float64], spin_dw: NDArray[np.float64]) -> NDArray[np.float64]:
        table = kernel.pulse_map_table(
            np.ascontiguousarray(part[:, :3]), np.ascontiguousarray(class_dw), np.ascontiguousarray(part[:, 4]),
            iso_off, np.ascontiguousarray(spin_dw), program.rf_dt, rf_wx, rf_wy, rf_area, e1h, e2h,
            program.pulse_start, program.pulse_stop,
        )  # fmt: skip
        return np.asarray(table)

    if ideal is None or not np.any(ideal.selective):
        return maps(part[:, 3], iso_dw)
    table = maps(part[:, 3], iso_dw) if not np.all(ideal.selective) else None
    on_resonance = maps(np.zeros(part.shape[0]), np.zeros_like(iso_dw))
    if table is None:
        table = on_resonance
    chosen = np.flatnonzero(ideal.selective)
    dw = part[:, 3][:, np.newaxis] + iso_dw[np.newaxis, :]  # (class, iso) [rad/s]
    for p in chosen:
        m = on_resonance[:, p]  # (class, 12, iso); A[r, c] = m[3 c + r], b[r] = m[9 + r]
        a = np.stack([np.stack([m[:, 3 * c + r] for c in range(3)], axis=-1) for r in range(3)], axis=-2)
        b = m[:, 9:12]  # a: (class, iso, row, column); b: (class, 3, iso)
        rb, ra = _rotation_z(dw * ideal.before_s[p]), _rotation_z(dw * ideal.after_s[p])  # (class, iso, 3, 3)
        wrapped = ra @ a @ rb
        b_new = np.einsum("cirk,cki->cri", ra, b)
        out = np.empty_like(m)
        for r in range(3):
            for c in range(3):
                out[:, 3 * c + r] = wrapped[:, :, r, c]
            out[:, 9 + r] = b_new[:, r]
        table[:, p] = out
    return np.ascontiguousarray(table)


def _rotation_z(phi: NDArray[np.float64]) -> NDArray[np.float64]:
    """Matrices ``(..., 3, 3)`` of the free precession by ``phi`` [rad] (protons: clockwise)."""
    c, s = np.cos(phi), np.sin(phi)
    out = np.zeros((*phi.shape, 3, 3))
    out[..., 0, 0], out[..., 0, 1] = c, s
    out[..., 1, 0], out[..., 1, 1] = -s, c
    out[..., 2, 2] = 1.0
    return out


def _free_table(
    program: Program, iso_off: NDArray[np.float64], iso_dw: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Isochromat factor ``exp(-i (A·o_i + δω_i dt))`` of every ``OP_FREE`` step (shared by all voxels: the kernel
    multiplies it by the voxel-centre factor), and each operation's row in it (-1 for others); an empty table when it
    would need more than ``MAX_TABLE_BYTES``."""
    free = np.flatnonzero(program.op == OP_FREE)
    index = np.full(program.n_ops, -1, dtype=np.int64)
    if free.size * iso_off.shape[0] * 16 > MAX_TABLE_BYTES:
        return index, np.zeros((0, iso_off.shape[0])), np.zeros((0, iso_off.shape[0]))
    index[free] = np.arange(free.size)
    phase = program.area[free] @ iso_off.T + program.dt[free, np.newaxis] * iso_dw[np.newaxis, :]
    return index, np.ascontiguousarray(np.cos(phase)), np.ascontiguousarray(-np.sin(phase))


def bloch_signal(
    program: Program,
    *,
    positions_m: NDArray[np.floating],
    t1_s: float,
    t2_s: float,
    off_resonance_hz: NDArray[np.floating] | float = 0.0,
    weights: NDArray[np.floating] | float = 1.0,
    b1_scale: NDArray[np.floating] | float = 1.0,
    sensitivities: NDArray[np.complexfloating] | None = None,
    iso_offsets_m: NDArray[np.floating] | None = None,
    iso_off_resonance_hz: NDArray[np.floating] | None = None,
    iso_weights: NDArray[np.floating] | None = None,
    ideal_pulses: IdealSlicePulses | None = None,
) -> NDArray[np.complex128]:
    """Received signal of a set of voxels of one tissue (one T1, T2) through a compiled program.

    Parameters
    ----------
    program
        From :func:`~hifield.sim.engines.bloch_program.compile_sequence`.
    positions_m
        Voxel centres ``(V, 3)`` in (z, y, x) [m] (gradient channels z, y, x).
    t1_s, t2_s
        Relaxation times [s] (``np.inf`` for none).
    off_resonance_hz
        Per-voxel frequency offset ``(V,)`` or scalar [Hz] (B0 map plus chemical shift).
    weights
        Per-voxel signal weight (M0 x volume factor), ``(V,)`` or scalar.
    b1_scale
        Per-voxel B1+ scale of every pulse, ``(V,)`` or scalar.
    sensitivities
        Receive sensitivities ``(C, V)``; None for one uniform coil.
    iso_offsets_m, iso_off_resonance_hz
        Isochromats of each voxel: position offsets ``(I, 3)`` [m] and frequency offsets ``(I,)`` [Hz]; each
        contributes ``1 / I`` of the voxel's weight unless ``iso_weights`` (summing to 1) are given. None: one
        isochromat at the voxel centre.
    iso_weights
        Relative weights ``(I,)`` of the isochromats (default uniform).
    ideal_pulses
        The pulses of a program from :func:`~hifield.sim.engines.bloch_program.ideal_slice_selection` that play as
        ideal rotations: their maps are computed on resonance and wrapped by each spin's precession over the pulse's
        two halves.

    Returns
    -------
    ndarray, complex128, (C, n_samples)
        Demodulated ADC samples in program order.
    """
    pos = np.ascontiguousarray(np.atleast_2d(np.asarray(positions_m, dtype=np.float64)))
    n_vox = pos.shape[0]

    def per_voxel(value: Any, dtype: Any) -> NDArray[Any]:
        arr = np.asarray(value, dtype=dtype)
        return np.ascontiguousarray(np.broadcast_to(arr, (n_vox,)) if arr.ndim == 0 else arr.reshape(n_vox))

    dw = 2.0 * np.pi * per_voxel(off_resonance_hz, np.float64)
    b1 = per_voxel(b1_scale, np.float64)
    if iso_offsets_m is None:
        iso_off = np.zeros((1, 3))
        iso_dw = np.zeros(1)
    else:
        iso_off = np.ascontiguousarray(np.asarray(iso_offsets_m, dtype=np.float64).reshape(-1, 3))
        iso_dw = (
            2.0
            * np.pi
            * np.asarray(
                np.zeros(iso_off.shape[0]) if iso_off_resonance_hz is None else iso_off_resonance_hz, dtype=np.float64
            ).reshape(iso_off.shape[0])
        )
    w = per_voxel(weights, np.float64)
    iso_w = (
        np.full(iso_off.shape[0], 1.0 / iso_off.shape[0])
        if iso_weights is None
        else np.ascontiguousarray(np.asarray(iso_weights, dtype=np.float64).reshape(iso_off.shape[0]))
    )
    sens = (
        np.ones((1, n_vox), dtype=np.complex128)
        if sensitivities is None
        else np.ascontiguousarray(np.asarray(sensitivities, dtype=np.complex128).reshape(-1, n_vox))
    )
    n_blocks = min(N_BLOCKS, max(n_vox, 1))
    need = n_blocks * sens.shape[0] * program.n_samples * 16
    if need > MAX_ACC_BYTES:
        raise ConfigError(
            f"the bloch engine would need {need / 1024**3:.1f} GiB for its accumulators ({sens.shape[0]} coils x "
            f"{program.n_samples} samples); the limit is {MAX_ACC_BYTES / 1024**3:.0f} GiB: use fewer coils or "
            f"a smaller matrix, or the fast engine"
        )
    e1 = np.exp(-program.dt / t1_s) if np.isfinite(t1_s) else np.ones_like(program.dt)
    e2 = np.exp(-program.dt / t2_s) if np.isfinite(t2_s) else np.ones_like(program.dt)
    e1h = np.exp(-0.5 * program.rf_dt / t1_s) if np.isfinite(t1_s) else np.ones_like(program.rf_dt)
    e2h = np.exp(-0.5 * program.rf_dt / t2_s) if np.isfinite(t2_s) else np.ones_like(program.rf_dt)
    kernel = _kernel()
    rf_wx = np.ascontiguousarray(program.rf_w.real)
    rf_wy = np.ascontiguousarray(program.rf_w.imag)
    rf_area = np.ascontiguousarray(program.rf_area)
    area = np.ascontiguousarray(program.area)
    free_index, free_re, free_im = _free_table(program, iso_off, iso_dw)
    # Voxels sharing every pulse map (same off-resonance, B1 and pulse-gradient coordinates) share one computation;
    # the maps are computed for groups of classes whose table fits in MAX_TABLE_BYTES (bounded memory).
    vox_class, classes = _pulse_classes(pos, dw, b1, rf_area)
    n_class = classes.shape[0]
    class_bytes = max(1, program.pulse_start.size * 12 * iso_off.shape[0] * 8)
    group = max(1, MAX_TABLE_BYTES // class_bytes)
    order = np.argsort(vox_class, kind="stable")
    bounds = np.searchsorted(vox_class[order], np.arange(0, n_class + group, group))
    signal = np.zeros((sens.shape[0], program.n_samples), dtype=np.complex128)
    for g in range(bounds.size - 1):
        sel = order[bounds[g] : bounds[g + 1]]
        if sel.size == 0:
            continue
        c0 = g * group
        part = classes[c0 : c0 + group]
        table = _pulse_table(kernel, program, part, iso_off, iso_dw, (rf_wx, rf_wy, rf_area, e1h, e2h), ideal_pulses)
        acc_re, acc_im = kernel.simulate_voxels(
            program.op,
            program.dt,
            area,
            program.adc,
            program.pulse,
            program.phase,
            e1,
            e2,
            free_index,
            free_re,
            free_im,
            pos[sel],
            dw[sel],
            w[sel],
            np.ascontiguousarray(sens[:, sel]),
            iso_off,
            iso_dw,
            iso_w,
            np.ascontiguousarray(vox_class[sel] - c0),
            table,
            program.n_samples,
            min(n_blocks, sel.size),
        )
        signal += acc_re.sum(axis=0) + 1j * acc_im.sum(axis=0)
    return np.asarray(signal * (program.demod * RECEIVER_PHASE)[np.newaxis, :])
