"""Numba kernel of the Bloch engine: isochromats through a compiled step program, summed per voxel and per coil.

Imported only by the ``bloch`` engine (compiling it takes a few seconds the first time; ``cache=True`` keeps the
machine code on disk afterwards). See :mod:`hifield.sim.engines.bloch_program` for the program and conventions.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

OP_RF = 2
OP_REPEAT = 1


@njit(cache=True, fastmath=False, inline="always")
def _rotate(vx: float, vy: float, vz: float, ux: float, uy: float, uz: float, c: float, s: float, cc: float):  # type: ignore[no-untyped-def]
    """Rotate v for ``dv/dt = v × Ω`` over one step, ``u = Ω dt``: ``v cosθ - (u × v) S + u (u·v) C``."""
    crx = uy * vz - uz * vy
    cry = uz * vx - ux * vz
    crz = ux * vy - uy * vx
    dot = (ux * vx + uy * vy + uz * vz) * cc
    return (vx * c - crx * s + ux * dot, vy * c - cry * s + uy * dot, vz * c - crz * s + uz * dot)


@njit(cache=True, fastmath=False, inline="always")
def _rodrigues(ux: float, uy: float, uz: float):  # type: ignore[no-untyped-def]
    """``(cosθ, sinθ/θ, (1 - cosθ)/θ²)`` for the rotation vector u (θ = |u|), by series for small θ."""
    t2 = ux * ux + uy * uy + uz * uz
    if t2 < 1e-4:
        s = 1.0 - t2 / 6.0 * (1.0 - t2 / 20.0 * (1.0 - t2 / 42.0 * (1.0 - t2 / 72.0)))
        cc = 0.5 * (1.0 - t2 / 12.0 * (1.0 - t2 / 30.0 * (1.0 - t2 / 56.0 * (1.0 - t2 / 90.0))))
        return 1.0 - t2 * cc, s, cc
    t = np.sqrt(t2)
    c = np.cos(t)
    return c, np.sin(t) / t, (1.0 - c) / t2


@njit(cache=True, fastmath=False)
def _pulse_map(  # type: ignore[no-untyped-def]
    out, start, stop, rf_dt, rf_wx, rf_wy, rf_area, rf_e1h, rf_e2h, x, y, z, dw, b1
):
    """Affine map ``M -> A M + b`` of one pulse for one spin; ``out`` = (A row-major 9, b 3)."""
    a = np.zeros((4, 3))
    a[0, 0] = 1.0
    a[1, 1] = 1.0
    a[2, 2] = 1.0
    for j in range(start, stop):
        e1 = rf_e1h[j]
        e2 = rf_e2h[j]
        ux = b1 * rf_wx[j]
        uy = b1 * rf_wy[j]
        uz = rf_area[j, 0] * z + rf_area[j, 1] * y + rf_area[j, 2] * x + dw * rf_dt[j]
        c, s, cc = _rodrigues(ux, uy, uz)
        for v in range(4):
            vx = a[v, 0] * e2
            vy = a[v, 1] * e2
            vz = a[v, 2] * e1
            if v == 3:
                vz += 1.0 - e1
            vx, vy, vz = _rotate(vx, vy, vz, ux, uy, uz, c, s, cc)
            vz = vz * e1
            if v == 3:
                vz += 1.0 - e1
            a[v, 0] = vx * e2
            a[v, 1] = vy * e2
            a[v, 2] = vz
    # columns v = 0..2 are the images of the unit vectors: A[i, v] = a[v, i]
    for i in range(3):
        for v in range(3):
            out[3 * i + v] = a[v, i]
        out[9 + i] = a[3, i]


@njit(parallel=True, cache=True, fastmath=False)
def simulate_voxels(  # type: ignore[no-untyped-def]
    op,
    dt,
    area,
    adc,
    pulse,
    phase,
    e1,
    e2,
    rf_dt,
    rf_wx,
    rf_wy,
    rf_area,
    rf_e1h,
    rf_e2h,
    pulse_start,
    pulse_stop,
    vox_pos,
    vox_dw,
    vox_b1,
    vox_weight,
    sens,
    iso_off,
    iso_dw,
    iso_w,
    vox_class,
    map_table,
    n_samples,
    n_blocks,
):
    """Sum of weighted transverse magnetisation over all isochromats, per block, coil and ADC sample.

    Parameters (all float64 / int64 / complex128 arrays)
    ----------------------------------------------------
    op, dt, area, adc, pulse, phase
        The program's operations (see ``Program``).
    e1, e2
        ``exp(-dt / T1)``, ``exp(-dt / T2)`` per operation for the tissue simulated.
    rf_dt, rf_wx, rf_wy, rf_area, rf_e1h, rf_e2h, pulse_start, pulse_stop
        Pulse samples; ``rf_e1h``/``rf_e2h`` are half-step relaxation factors (Strang splitting).
    vox_pos (V, 3), vox_dw (V,), vox_b1 (V,), vox_weight (V,)
        Voxel centre (z, y, x) [m], off-resonance [rad/s], B1+ scale, signal weight.
    sens (C, V)
        Receive sensitivity of each coil at each voxel.
    iso_off (I, 3), iso_dw (I,), iso_w (I,)
        Isochromat position offsets inside a voxel [m], off-resonance offsets [rad/s] and weights (summing to 1;
        negative weights are allowed: the signal is linear in each isochromat's M0).
    vox_class (V,), map_table (n_class, I, n_pulses, 12)
        Precomputed pulse maps of each voxel class and isochromat (see :func:`pulse_map_table`); an empty table
        (``n_class == 0``) makes the kernel compute each spin's maps on the fly.
    n_samples, n_blocks
        ADC samples in the program; voxels are split into ``n_blocks`` contiguous blocks (fixed, so the sum order
        and hence the result does not depend on the thread count).

    Returns
    -------
    ndarray, complex128, (n_blocks, C, n_samples)
        ``Σ weight · sens · (Mx + i My)`` at each ADC sample (before receiver demodulation).
    """
    n_vox = vox_pos.shape[0]
    n_coils = sens.shape[0]
    n_iso = iso_off.shape[0]
    n_ops = op.shape[0]
    n_pulses = pulse_start.shape[0]
    use_table = map_table.shape[0] > 0
    acc = np.zeros((n_blocks, n_coils, n_samples), dtype=np.complex128)
    for b in prange(n_blocks):
        v0 = (n_vox * b) // n_blocks
        v1 = (n_vox * (b + 1)) // n_blocks
        tmp_re = np.zeros(n_samples)
        tmp_im = np.zeros(n_samples)
        maps = np.zeros((max(n_pulses, 1), 12))
        have = np.zeros(max(n_pulses, 1), dtype=np.bool_)
        for v in range(v0, v1):
            w = vox_weight[v]
            if w == 0.0:
                continue
            tmp_re[:] = 0.0
            tmp_im[:] = 0.0
            for i in range(n_iso):
                z = vox_pos[v, 0] + iso_off[i, 0]
                y = vox_pos[v, 1] + iso_off[i, 1]
                x = vox_pos[v, 2] + iso_off[i, 2]
                dw = vox_dw[v] + iso_dw[i]
                b1 = vox_b1[v]
                have[:] = False
                mx = 0.0
                my = 0.0
                mz = 1.0
                wi = iso_w[i]
                cr = 1.0
                ci = 0.0
                for k in range(n_ops):
                    kind = op[k]
                    if kind == OP_RF:
                        p = pulse[k]
                        if use_table:
                            m = map_table[vox_class[v], i, p]
                        elif not have[p]:
                            _pulse_map(
                                maps[p],
                                pulse_start[p],
                                pulse_stop[p],
                                rf_dt,
                                rf_wx,
                                rf_wy,
                                rf_area,
                                rf_e1h,
                                rf_e2h,
                                x,
                                y,
                                z,
                                dw,
                                b1,
                            )
                            have[p] = True
                            m = maps[p]
                        else:
                            m = maps[p]
                        c = np.cos(phase[k])
                        s = np.sin(phase[k])
                        rx = mx * c - my * s
                        ry = mx * s + my * c
                        ax = m[0] * rx + m[1] * ry + m[2] * mz + m[9]
                        ay = m[3] * rx + m[4] * ry + m[5] * mz + m[10]
                        mz = m[6] * rx + m[7] * ry + m[8] * mz + m[11]
                        mx = ax * c + ay * s
                        my = -ax * s + ay * c
                        continue
                    if kind != OP_REPEAT:
                        ph = area[k, 0] * z + area[k, 1] * y + area[k, 2] * x + dw * dt[k]
                        cr = np.cos(ph)
                        ci = -np.sin(ph)
                    f2 = e2[k]
                    nx = (mx * cr - my * ci) * f2
                    my = (mx * ci + my * cr) * f2
                    mx = nx
                    f1 = e1[k]
                    mz = mz * f1 + (1.0 - f1)
                    j = adc[k]
                    if j >= 0:
                        tmp_re[j] += wi * mx
                        tmp_im[j] += wi * my
            for c_ in range(n_coils):
                sw = sens[c_, v] * w
                for j in range(n_samples):
                    acc[b, c_, j] += sw * complex(tmp_re[j], tmp_im[j])
    return acc


@njit(parallel=True, cache=True, fastmath=False)
def pulse_map_table(  # type: ignore[no-untyped-def]
    class_pos,
    class_dw,
    class_b1,
    iso_off,
    iso_dw,
    rf_dt,
    rf_wx,
    rf_wy,
    rf_area,
    rf_e1h,
    rf_e2h,
    pulse_start,
    pulse_stop,
):
    """Pulse maps ``(n_class, I, n_pulses, 12)`` of every voxel class (position, off-resonance, B1 scale) and
    isochromat."""
    n_class = class_pos.shape[0]
    n_iso = iso_off.shape[0]
    n_pulses = pulse_start.shape[0]
    out = np.zeros((n_class, n_iso, n_pulses, 12))
    for q in prange(n_class * n_iso):
        c = q // n_iso
        i = q - c * n_iso
        for p in range(n_pulses):
            _pulse_map(
                out[c, i, p],
                pulse_start[p],
                pulse_stop[p],
                rf_dt,
                rf_wx,
                rf_wy,
                rf_area,
                rf_e1h,
                rf_e2h,
                class_pos[c, 2] + iso_off[i, 2],
                class_pos[c, 1] + iso_off[i, 1],
                class_pos[c, 0] + iso_off[i, 0],
                class_dw[c] + iso_dw[i],
                class_b1[c],
            )
    return out
