"""Numba kernel of the Bloch engine: isochromats through a compiled step program, summed per voxel and per coil.

Imported only by the ``bloch`` engine (compiling it takes a few seconds the first time; ``cache=True`` keeps the
machine code on disk afterwards). See :mod:`hifield.sim.engines.bloch_program` for the program and conventions.

Layout: the kernel runs voxel by voxel (voxels split into a fixed number of blocks, in parallel over blocks) and
holds the ``I`` isochromats of one voxel in contiguous arrays, so every update loops over isochromats innermost and
compiles to SIMD code. Two exact factorisations save most transcendental functions:

* a free step's precession ``exp(-i (A·(r_v + o_i) + (Δω_v + δω_i) dt))`` is the product of the voxel-centre factor
  (one ``cos``/``sin`` per voxel and step) and an isochromat factor ``exp(-i (A·o_i + δω_i dt))`` shared by every
  voxel of a tissue (``free_re``/``free_im``, precomputed once per call);
* a pulse's affine map is computed once per isochromat and re-applied, rotated by the RF phase offset, at every
  repetition; inside a pulse the Rodrigues coefficients use their Taylor series whenever every rotation of the step
  is below 0.2 rad (always, on a 1 µs RF raster), which is branch-free and vectorises.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from hifield.sim.engines.bloch_program import OP_FREE, OP_RF

_FASTMATH = {"reassoc", "contract", "nsz"}
"""Let LLVM vectorise the sums over isochromats and fuse multiply-adds (no change beyond rounding; no NaN/Inf
assumptions)."""
_SERIES_T2 = 0.04
"""Squared rotation angle [rad^2] (0.2 rad) below which the Rodrigues coefficients are evaluated by their Taylor
series (truncation error below 1e-18)."""


@njit(cache=True, fastmath=_FASTMATH, inline="always")
def _series(t2: float):  # type: ignore[no-untyped-def]
    """``(cosθ, sinθ/θ, (1 - cosθ)/θ²)`` by their Taylor series in ``θ² = t2`` to the ``θ^10`` term (truncation below
    1e-18 for t2 < 0.04, i.e. exact to rounding)."""
    s = 1.0 - t2 * (1.0 / 6.0) * (
        1.0 - t2 * (1.0 / 20.0) * (1.0 - t2 * (1.0 / 42.0) * (1.0 - t2 * (1.0 / 72.0) * (1.0 - t2 * (1.0 / 110.0))))
    )
    cc = 0.5 * (
        1.0
        - t2
        * (1.0 / 12.0)
        * (1.0 - t2 * (1.0 / 30.0) * (1.0 - t2 * (1.0 / 56.0) * (1.0 - t2 * (1.0 / 90.0) * (1.0 - t2 * (1.0 / 132.0)))))
    )
    return 1.0 - t2 * cc, s, cc


@njit(cache=True, fastmath=_FASTMATH)
def _pulse_maps(  # type: ignore[no-untyped-def]
    out, pulse_start, pulse_stop, rf_dt, rf_wx, rf_wy, rf_area, rf_e1h, rf_e2h, zs, ys, xs, dws, b1
):
    """Affine maps ``M -> A M + b`` of every pulse for a set of isochromats.

    ``out`` has shape ``(n_pulses, 12, I)``: rows ``3 v + axis`` hold ``A[axis, v]`` (v = 0..2, the images of the
    unit vectors) and ``b[axis]`` (v = 3), for isochromats at ``(zs, ys, xs)`` [m] with off-resonance ``dws``
    [rad/s] and B1+ scale ``b1``. Each RF sample is a half relaxation, the rotation about ``u = Ω dt``
    (``v cosθ - (u × v) sinθ/θ + u (u·v) (1 - cosθ)/θ²``) and a half relaxation (Strang splitting). The
    Rodrigues coefficients of a sample are computed for all isochromats first (Taylor series when every angle of
    the sample is below 0.2 rad, else ``cos``/``sin``), then each of the four vectors is updated in its own loop.
    """
    n = zs.shape[0]
    zmax = 0.0
    ymax = 0.0
    xmax = 0.0
    dmax = 0.0
    for i in range(n):
        zmax = max(zmax, abs(zs[i]))
        ymax = max(ymax, abs(ys[i]))
        xmax = max(xmax, abs(xs[i]))
        dmax = max(dmax, abs(dws[i]))
    work = np.empty((4, n))
    uu = work[0]
    cos_ = work[1]
    sinc_ = work[2]
    vers_ = work[3]
    for p in range(pulse_start.shape[0]):
        a = out[p]
        a[:, :] = 0.0
        for i in range(n):
            a[0, i] = 1.0
            a[4, i] = 1.0
            a[8, i] = 1.0
        for j in range(pulse_start[p], pulse_stop[p]):
            e1 = rf_e1h[j]
            e2 = rf_e2h[j]
            ux = b1 * rf_wx[j]
            uy = b1 * rf_wy[j]
            az = rf_area[j, 0]
            ay = rf_area[j, 1]
            ax = rf_area[j, 2]
            d = rf_dt[j]
            uxy = ux * ux + uy * uy
            bound = abs(az) * zmax + abs(ay) * ymax + abs(ax) * xmax + dmax * d
            if uxy + bound * bound < _SERIES_T2:  # every isochromat takes the series: branch-free, vectorised
                for i in range(n):
                    uz = az * zs[i] + ay * ys[i] + ax * xs[i] + dws[i] * d
                    c, s, cc = _series(uxy + uz * uz)
                    uu[i] = uz
                    cos_[i] = c
                    sinc_[i] = s
                    vers_[i] = cc
            else:
                for i in range(n):
                    uz = az * zs[i] + ay * ys[i] + ax * xs[i] + dws[i] * d
                    t2 = uxy + uz * uz
                    if t2 < _SERIES_T2:
                        c, s, cc = _series(t2)
                    else:
                        t = np.sqrt(t2)
                        c = np.cos(t)
                        s = np.sin(t) / t
                        cc = (1.0 - c) / t2
                    uu[i] = uz
                    cos_[i] = c
                    sinc_[i] = s
                    vers_[i] = cc
            for v in range(4):
                vx_ = a[3 * v]
                vy_ = a[3 * v + 1]
                vz_ = a[3 * v + 2]
                off = 1.0 - e1 if v == 3 else 0.0
                for i in range(n):
                    uz = uu[i]
                    c = cos_[i]
                    s = sinc_[i]
                    cc = vers_[i]
                    vx = vx_[i] * e2
                    vy = vy_[i] * e2
                    vz = vz_[i] * e1 + off
                    crx = uy * vz - uz * vy
                    cry = uz * vx - ux * vz
                    crz = ux * vy - uy * vx
                    dot = (ux * vx + uy * vy + uz * vz) * cc
                    vx_[i] = (vx * c - crx * s + ux * dot) * e2
                    vy_[i] = (vy * c - cry * s + uy * dot) * e2
                    vz_[i] = (vz * c - crz * s + uz * dot) * e1 + off


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
def simulate_voxels(  # type: ignore[no-untyped-def]
    op,
    dt,
    area,
    adc,
    pulse,
    phase,
    e1,
    e2,
    free_index,
    free_re,
    free_im,
    vox_pos,
    vox_dw,
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
    free_index (n_ops,), free_re (F, I), free_im (F, I)
        Row of each ``OP_FREE`` operation in the isochromat precession table ``exp(-i (A·o_i + δω_i dt))``
        (-1 for other operations); an empty table (``F == 0``) makes the kernel evaluate every isochromat's
        precession directly.
    vox_pos (V, 3), vox_dw (V,), vox_weight (V,)
        Voxel centre (z, y, x) [m], off-resonance [rad/s], signal weight.
    sens (C, V)
        Receive sensitivity of each coil at each voxel.
    iso_off (I, 3), iso_dw (I,), iso_w (I,)
        Isochromat position offsets inside a voxel [m], off-resonance offsets [rad/s] and weights (summing to 1;
        negative weights are allowed: the signal is linear in each isochromat's M0).
    vox_class (V,), map_table (n_class, n_pulses, 12, I)
        Pulse maps of each voxel class (B1+ scale included; see :func:`pulse_map_table`) and each voxel's class.
    n_samples, n_blocks
        ADC samples in the program; voxels are split into ``n_blocks`` contiguous blocks (fixed, so the sum order
        and hence the result does not depend on the thread count).

    Returns
    -------
    acc_re, acc_im : ndarray, float64, (n_blocks, C, n_samples)
        Real and imaginary parts of ``Σ weight · sens · (Mx + i My)`` at each ADC sample (before demodulation).
    """
    n_vox = vox_pos.shape[0]
    n_coils = sens.shape[0]
    n_iso = iso_off.shape[0]
    n_ops = op.shape[0]
    use_free = free_re.shape[0] > 0
    acc_re = np.zeros((n_blocks, n_coils, n_samples))
    acc_im = np.zeros((n_blocks, n_coils, n_samples))
    for b in prange(n_blocks):
        v0 = (n_vox * b) // n_blocks
        v1 = (n_vox * (b + 1)) // n_blocks
        tmp_re = np.zeros(n_samples)
        tmp_im = np.zeros(n_samples)
        zs = np.empty(n_iso)
        ys = np.empty(n_iso)
        xs = np.empty(n_iso)
        dws = np.empty(n_iso)
        mx = np.empty(n_iso)
        my = np.empty(n_iso)
        mz = np.empty(n_iso)
        cr = np.ones(n_iso)
        ci = np.zeros(n_iso)
        for v in range(v0, v1):
            w = vox_weight[v]
            if w == 0.0:
                continue
            pz = vox_pos[v, 0]
            py = vox_pos[v, 1]
            px = vox_pos[v, 2]
            dv = vox_dw[v]
            for i in range(n_iso):
                zs[i] = pz + iso_off[i, 0]
                ys[i] = py + iso_off[i, 1]
                xs[i] = px + iso_off[i, 2]
                dws[i] = dv + iso_dw[i]
                mx[i] = 0.0
                my[i] = 0.0
                mz[i] = 1.0
                cr[i] = 1.0
                ci[i] = 0.0
            maps = map_table[vox_class[v]]
            tmp_re[:] = 0.0
            tmp_im[:] = 0.0
            for k in range(n_ops):
                kind = op[k]
                if kind == OP_RF:
                    m = maps[pulse[k]]
                    c = np.cos(phase[k])
                    s = np.sin(phase[k])
                    for i in range(n_iso):
                        rx = mx[i] * c - my[i] * s
                        ry = mx[i] * s + my[i] * c
                        qz = mz[i]
                        ax = m[0, i] * rx + m[3, i] * ry + m[6, i] * qz + m[9, i]
                        ay = m[1, i] * rx + m[4, i] * ry + m[7, i] * qz + m[10, i]
                        mz[i] = m[2, i] * rx + m[5, i] * ry + m[8, i] * qz + m[11, i]
                        mx[i] = ax * c + ay * s
                        my[i] = -ax * s + ay * c
                    continue
                if kind == OP_FREE:
                    gz = area[k, 0]
                    gy = area[k, 1]
                    gx = area[k, 2]
                    d = dt[k]
                    if use_free:
                        ph = gz * pz + gy * py + gx * px + dv * d
                        vr = np.cos(ph)
                        vi = -np.sin(ph)
                        row = free_index[k]
                        for i in range(n_iso):
                            fr = free_re[row, i]
                            fi = free_im[row, i]
                            cr[i] = vr * fr - vi * fi
                            ci[i] = vr * fi + vi * fr
                    else:
                        for i in range(n_iso):
                            ph = gz * zs[i] + gy * ys[i] + gx * xs[i] + dws[i] * d
                            cr[i] = np.cos(ph)
                            ci[i] = -np.sin(ph)
                f2 = e2[k]
                f1 = e1[k]
                g1 = 1.0 - f1
                j = adc[k]
                if j >= 0:
                    sr = 0.0
                    si = 0.0
                    for i in range(n_iso):
                        nx = (mx[i] * cr[i] - my[i] * ci[i]) * f2
                        ny = (mx[i] * ci[i] + my[i] * cr[i]) * f2
                        mx[i] = nx
                        my[i] = ny
                        mz[i] = mz[i] * f1 + g1
                        sr += iso_w[i] * nx
                        si += iso_w[i] * ny
                    tmp_re[j] += sr
                    tmp_im[j] += si
                else:
                    for i in range(n_iso):
                        nx = (mx[i] * cr[i] - my[i] * ci[i]) * f2
                        my[i] = (mx[i] * ci[i] + my[i] * cr[i]) * f2
                        mx[i] = nx
                        mz[i] = mz[i] * f1 + g1
            for c_ in range(n_coils):
                swr = sens[c_, v].real * w
                swi = sens[c_, v].imag * w
                ar = acc_re[b, c_]
                ai = acc_im[b, c_]
                for j in range(n_samples):
                    ar[j] += swr * tmp_re[j] - swi * tmp_im[j]
                    ai[j] += swr * tmp_im[j] + swi * tmp_re[j]
    return acc_re, acc_im


@njit(parallel=True, cache=True, fastmath=_FASTMATH)
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
    """Pulse maps ``(n_class, n_pulses, 12, I)`` of every voxel class (position, off-resonance, B1 scale) and
    isochromat (rows as in :func:`_pulse_maps`)."""
    n_class = class_pos.shape[0]
    n_iso = iso_off.shape[0]
    n_pulses = pulse_start.shape[0]
    out = np.zeros((n_class, n_pulses, 12, n_iso))
    for c in prange(n_class):
        zs = class_pos[c, 0] + iso_off[:, 0]
        ys = class_pos[c, 1] + iso_off[:, 1]
        xs = class_pos[c, 2] + iso_off[:, 2]
        dws = class_dw[c] + iso_dw
        _pulse_maps(
            out[c], pulse_start, pulse_stop, rf_dt, rf_wx, rf_wy, rf_area, rf_e1h, rf_e2h, zs, ys, xs, dws, class_b1[c]
        )
    return out
