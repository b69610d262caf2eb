"""The ``bloch`` engine: isochromat Bloch simulation of any pypulseq sequence on a phantom, with multi-coil receive.

Model
-----
* The sequence is compiled from its pypulseq blocks (:mod:`hifield.sim.engines.bloch_program`): RF shapes on their
  own raster as piecewise-constant rotations (Rodrigues), relaxation by Strang splitting inside pulses and exactly
  between events, gradient areas integrated exactly from the piecewise-linear waveforms, ADC samples at their true
  times ``delay + (n + 1/2) dwell``, RF and ADC phase and frequency offsets (RF spoiling, slice offsets).
* Every phantom voxel carries ``n_isochromats`` isochromats. Their off-resonance offsets are the quantiles of a
  Lorentzian of half width ``R2' = 1/T2* - 1/T2`` (physics-safety.md §3.1), so the ensemble decays as
  ``exp(-R2' |t - t_SE|)`` on top of T2 and refocuses in spin echoes. Their positions fill the voxel (a rank-1
  lattice whose projection on every axis is a regular grid), so spoiler gradients dephase within a voxel as on a
  scanner; the voxel's encoding response is then divided out of the k-space
  so voxels encode as band-limited samples (``BlochOptions.voxel_shape="sinc"`` instead spreads them with
  Hann-windowed sinc weights over four voxels per axis, a band-limited voxel; experimental).
* Off-resonance: the phantom's B0 map plus each tissue's chemical-shift peaks (fat: its multi-peak spectrum, one
  simulation per peak weighted by its amplitude). B1+ scales every pulse by ``|phantom.b1_scale|`` when the phantom
  has one (1 otherwise; the B1+ phase is not applied).
* 2D: a phantom with one slice (``shape[0] == 1``) is simulated in-plane at the slice centre (z = 0 of the slice
  select); ``BlochOptions(through_slice=n)`` spreads the isochromats over ``n`` times the slice thickness instead,
  so the slice profile of the pulse enters the signal.
* 3D: the phantom is processed in slabs of z planes (coil sensitivities computed per slab) and each tissue's voxels
  in chunks of ``BlochOptions.chunk_voxels`` per kernel call; pulse maps are computed once per class of voxels that
  share them (same off-resonance, B1+ and slab-select coordinate) in groups bounded by ``_MAX_TABLE_BYTES``, so
  memory is bounded by the chunk, not the phantom. The kernel runs the isochromats of a voxel as SIMD vectors
  (:mod:`hifield.sim.engines.bloch_kernel`).
* Receive: ``Σ_spins weight · sens_c(r) · (Mx + i My)`` at each ADC sample, demodulated by the ADC phase
  (``exp(+i (phase_offset + 2π freq_offset t))``) and a fixed receiver phase of -90° so that an on-resonance
  excitation with RF phase 0 gives a real positive signal. Signal units follow :mod:`hifield.sim.noise` (image
  value = transverse magnetisation / M0 x voxel volume in mm^3 for an orthonormal FFT reconstruction).

Handedness: protons precess clockwise, ``m = Mx + i My ∝ exp(-i γ ΔB t)``, k-space encoding ``exp(-i 2π k·r)``
with pypulseq's ``k = ∫G dt``; a positive off-resonance therefore moves the object towards +x (readout gradient
positive) and fat (``Δf < 0``) towards -x, by ``Δf / (bandwidth per pixel)`` pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from hifield.data import RawData, RawHeader
from hifield.errors import ConfigError, SequenceError
from hifield.sequence.events import readout_lines
from hifield.sim.engines.bloch_program import OP_FREE, Program, compile_sequence
from hifield.sim.noise import correlated_noise, kspace_noise_std
from hifield.sim.pattern import recorded_sampling
from hifield.units import GAMMA_BAR_HZ_PER_T

if TYPE_CHECKING:
    from hifield.hardware import Scanner
    from hifield.phantom import Phantom
    from hifield.sequence import BuiltSequence

NOISE_SCAN_SAMPLES = 256
"""Samples per coil in the noise scan (no RF, receiver on)."""
N_BLOCKS = 8
"""Fixed number of voxel blocks summed separately (the result does not depend on the thread count)."""
RECEIVER_PHASE = complex(0.0, -1.0)
"""Receiver reference phase factor (-90 degrees): an on-resonance 90-degree pulse of phase 0 gives a real signal."""
_MAX_ACC_BYTES = 2 * 1024**3
_MAX_TABLE_BYTES = 64 * 1024**2


@dataclass(frozen=True)
class BlochOptions:
    """Options of the ``bloch`` engine."""

    n_isochromats: int = 64
    """Isochromats per phantom voxel (and per chemical-shift peak)."""
    through_slice: float = 0.0
    """For 2D: spread isochromats over this many slice thicknesses along z (0: in-plane at the slice centre); their
    weights are scaled by the same factor, so an ideal rectangular profile of the nominal thickness gives the
    in-plane signal and a real pulse gives its slice-profile-integrated signal."""
    spread_positions: bool = True
    """Spread isochromat positions over the voxel (intravoxel gradient dephasing); False puts them at its centre."""
    voxel_shape: str = "box"
    """Spatial distribution of a voxel's isochromats: ``"box"`` (default; uniform over the voxel) or ``"sinc"``
    (experimental: a band-limited voxel, Hann-windowed sinc weights over four voxels per axis, like MRzero's
    default voxel). Either
    way the voxel's encoding response is divided out of the Cartesian k-space, so voxels encode as band-limited
    samples (like the ``fast`` engine's FFT) while their spins still dephase under spoilers."""
    max_fat_peaks: int | None = None
    """Simulate only the strongest peaks of each multi-peak spectrum (None: all), renormalised to the same total."""
    chunk_voxels: int | None = None
    """Phantom voxels per kernel call (None: automatic, at most 2^16 voxels and 2^21 isochromats, fewer with many
    coils). A call's memory grows with it; the result does not depend on it beyond rounding (sum order)."""

    def __post_init__(self) -> None:
        if self.chunk_voxels is not None and self.chunk_voxels < 1:
            raise ConfigError(f"chunk_voxels = {self.chunk_voxels} must be at least 1 (or None for automatic)")


def lorentzian_offsets(n: int, r2prime_per_s: float) -> NDArray[np.float64]:
    """Deterministic Lorentzian quantiles ``R2' tan(π (u - 1/2))``, ``u = (j + 1/2) / n`` [rad/s].

    The ensemble average of ``exp(-i Δω t)`` over them approaches ``exp(-R2' |t|)``.

    Examples
    --------
    >>> w = lorentzian_offsets(1000, 10.0)
    >>> bool(abs(np.mean(np.cos(w * 0.05)) - np.exp(-0.5)) < 0.01)
    True
    """
    if n < 1:
        raise ConfigError(f"n_isochromats = {n} must be at least 1")
    if r2prime_per_s <= 0 or n == 1:
        return np.zeros(n)
    u = (np.arange(n) + 0.5) / n
    return float(r2prime_per_s) * np.tan(np.pi * (u - 0.5))


def lattice_points(n: int, dim: int) -> NDArray[np.float64]:
    """``n`` points of a rank-1 lattice in ``[0, 1)^dim``: ``frac((j + 1/2) g / n)`` with ``g = (1, g_2, ...)``
    coprime to ``n`` near the golden-ratio multiples, so every 1D projection is the regular grid ``(j + 1/2) / n``.

    A regular grid along each axis makes an integer number of dephasing cycles across a voxel cancel exactly
    (up to ``n / 2`` cycles), much better than random or Kronecker points for gradient spoiling.

    Examples
    --------
    >>> p = lattice_points(8, 2)
    >>> sorted(np.round(p[:, 1] * 16).astype(int).tolist())
    [1, 3, 5, 7, 9, 11, 13, 15]
    """
    phi = 2.0
    for _ in range(64):
        phi = (1.0 + phi) ** (1.0 / (dim + 1))
    gens = [1]
    for d in range(1, dim):
        g = max(1, round(n / phi ** (d + 1)) % max(n, 1))
        while math.gcd(g, n) != 1 or g in gens:
            g += 1
            if g >= n:
                g = 1
                break
        gens.append(g)
    j = np.arange(n)[:, None]
    return np.mod((j * np.asarray(gens)[None, :]) % n + 0.5, n) / n


def isochromat_offsets(
    n: int,
    voxel_m: tuple[float, float, float],
    r2prime_per_s: float,
    *,
    spread_positions: bool = True,
    voxel_shape: str = "box",
    uniform_axes: tuple[bool, bool, bool] = (False, False, False),
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Isochromats of one voxel: position offsets ``(n, 3)`` [m] (z, y, x), Lorentzian off-resonance offsets
    ``(n,)`` [rad/s] and weights ``(n,)`` summing to 1.

    Positions form a rank-1 lattice (:func:`lattice_points`) over the voxel (``voxel_shape="box"``, uniform
    weights) or over four voxels per axis with Hann-windowed ``sinc`` weights (``"sinc"``: a band-limited voxel,
    whose magnetisation pathways dephased by more than half a cycle per voxel cancel, as for a continuous
    object). Axes with zero size are not spread; ``uniform_axes`` are spread uniformly over their size whatever the
    shape (e.g. the through-slice axis of a 2D slice). The frequency quantiles are paired with the positions by a fixed
    lattice permutation so that neither correlates with the other.
    """
    dw = lorentzian_offsets(n, r2prime_per_s)
    if not spread_positions or n == 1:
        return np.zeros((n, 3)), dw, np.full(n, 1.0 / n)
    u = lattice_points(n, 4)
    order = np.argsort(u[:, 3], kind="stable")
    unit = u[:, [2, 1, 0]] - 0.5  # x regular, y and z lattice, in [-1/2, 1/2)
    size = np.asarray(voxel_m, dtype=np.float64)
    if voxel_shape == "box":
        return unit * size[None, :], dw[order], np.full(n, 1.0 / n)
    if voxel_shape != "sinc":
        raise ConfigError(f"voxel_shape = {voxel_shape!r} is not one of 'box', 'sinc'")
    span = 4.0
    x = unit * span  # voxel units, [-2, 2)
    weights = np.ones(n)
    for axis in range(3):
        if uniform_axes[axis]:
            x[:, axis] = unit[:, axis]
        elif size[axis] > 0:
            weights = weights * np.sinc(x[:, axis]) * np.cos(np.pi * x[:, axis] / span) ** 2
    weights = weights / weights.sum()
    return x * size[None, :], dw[order], weights


def voxel_transfer(
    k_m: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]],
    offsets_m: NDArray[np.float64],
    weights: NDArray[np.float64],
) -> NDArray[np.complex128]:
    """Encoding response ``Σ_i w_i exp(-i 2π k·r_i)`` of a voxel's isochromats on a Cartesian grid ``(kz, ky, kx)``
    [1/m] (separable only when the positions are, so it is summed exactly)."""
    kz, ky, kx = (np.asarray(a, dtype=np.float64) for a in k_m)
    out = np.zeros((kz.size, ky.size, kx.size), dtype=np.complex128)
    for r, w in zip(offsets_m, weights, strict=True):
        out += w * (
            np.exp(-2j * np.pi * kz * r[0])[:, None, None]
            * np.exp(-2j * np.pi * ky * r[1])[None, :, None]
            * np.exp(-2j * np.pi * kx * r[2])[None, None, :]
        )
    return out


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


def _free_table(
    program: Program, iso_off: NDArray[np.float64], iso_dw: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Isochromat factor ``exp(-i (A·o_i + δω_i dt))`` of every ``OP_FREE`` step (shared by all voxels: the kernel
    multiplies it by the voxel-centre factor), and each operation's row in it (-1 for others); an empty table when it
    would need more than ``_MAX_TABLE_BYTES``."""
    free = np.flatnonzero(program.op == OP_FREE)
    index = np.full(program.n_ops, -1, dtype=np.int64)
    if free.size * iso_off.shape[0] * 16 > _MAX_TABLE_BYTES:
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
    if need > _MAX_ACC_BYTES:
        raise ConfigError(
            f"the bloch engine would need {need / 1024**3:.1f} GiB for its accumulators ({sens.shape[0]} coils x "
            f"{program.n_samples} samples); the limit is {_MAX_ACC_BYTES / 1024**3:.0f} GiB: use fewer coils or "
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
    # the maps are computed for groups of classes whose table fits in _MAX_TABLE_BYTES (bounded memory).
    vox_class, classes = _pulse_classes(pos, dw, b1, rf_area)
    n_class = classes.shape[0]
    class_bytes = max(1, program.pulse_start.size * 12 * iso_off.shape[0] * 8)
    group = max(1, _MAX_TABLE_BYTES // class_bytes)
    order = np.argsort(vox_class, kind="stable")
    bounds = np.searchsorted(vox_class[order], np.arange(0, n_class + group, group))
    signal = np.zeros((sens.shape[0], program.n_samples), dtype=np.complex128)
    for g in range(bounds.size - 1):
        sel = order[bounds[g] : bounds[g + 1]]
        if sel.size == 0:
            continue
        c0 = g * group
        part = classes[c0 : c0 + group]
        table = kernel.pulse_map_table(
            np.ascontiguousarray(part[:, :3]),
            np.ascontiguousarray(part[:, 3]),
            np.ascontiguousarray(part[:, 4]),
            iso_off,
            iso_dw,
            program.rf_dt,
            rf_wx,
            rf_wy,
            rf_area,
            e1h,
            e2h,
            program.pulse_start,
            program.pulse_stop,
        )
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


def _spin_chunk(n_coils: int, n_isochromats: int) -> int:
    """Voxels per kernel call: at most ~2^16 voxels and ~2^21 isochromats, fewer with many coils."""
    return max(1, min(2**16 // max(1, n_coils // 8), 2**21 // max(1, n_isochromats)))


def _adc_lines(seq: Any, program: Program, n: int, fov_m: float, n_z: int, fov_z_m: float) -> tuple[NDArray, ...]:
    """k1 line, k2 partition, average index and reversal flag of every ADC event (labels, else the k-space)."""
    lines = readout_lines(
        seq,
        program.adc_first + program.adc_length // 2,
        matrix=n,
        fov_m=fov_m,
        n_z=n_z,
        fov_z_m=fov_z_m,
        blocks=program.adc_block,
    )
    return lines["k1"], lines["k2"], lines["avg"], lines["rev"]


def _remove_oversampling(lines: NDArray[np.complex128], n: int) -> NDArray[np.complex128]:
    """Crop a readout oversampled by an integer factor to ``n`` samples (FFT, keep the central FOV, FFT back)."""
    n_ro = lines.shape[-1]
    if n_ro == n:
        return lines
    if n_ro % n:
        raise SequenceError(f"readouts have {n_ro} samples, not a multiple of the matrix {n}; check the sequence")
    img = np.fft.fftshift(np.fft.ifft(np.fft.ifftshift(lines, axes=-1), axis=-1, norm="ortho"), axes=-1)
    start = n_ro // 2 - n // 2
    img = img[..., start : start + n]
    return np.fft.fftshift(np.fft.fft(np.fft.ifftshift(img, axes=-1), axis=-1, norm="ortho"), axes=-1)


def simulate_bloch(
    phantom: Phantom,
    sequence: BuiltSequence,
    scanner: Scanner,
    *,
    noise: bool = True,
    rng: np.random.Generator,
    options: BlochOptions | None = None,
) -> RawData:
    """Simulate ``sequence`` played on ``phantom`` in ``scanner`` by isochromat Bloch simulation.

    The sequence's gradient channels x, y, z act along the phantom grid's x, y, z axes with the origin at the grid
    centre voxel ``n // 2`` (the sequence is played in the phantom's own frame, like the ``fast`` engine's FFT).
    Each ADC is placed on the Cartesian grid by its ``LIN``/``PAR`` labels (else by the k-space of its centre
    sample); ``AVG`` repetitions are averaged, ``REV`` readouts reversed, oversampled readouts cropped.

    Parameters
    ----------
    phantom
        Digital object at the scanner's field; a single-slice phantom is simulated as a 2D slice.
    sequence
        A built sequence (its pypulseq ``seq`` is what is simulated; the protocol gives matrix and FOV).
    scanner
        Field, receive array and noise covariance.
    noise
        Add thermal noise and a noise scan.
    rng
        Random generator for the noise.
    options
        Engine options (isochromats per voxel, through-slice spread, fat peaks).

    Returns
    -------
    RawData
        k-space ``(coil, k2, k1, k0)`` (``k2 = 1`` for 2D), zero where not acquired, with its header.

    Raises
    ------
    ConfigError
        Phantom at another field, or memory needed beyond the limit.
    SequenceError
        A sequence without ADC, a block the engine cannot play, or readouts that do not fit the grid.
    """
    opts = options if options is not None else BlochOptions()
    protocol: Any = sequence.protocol
    n = int(protocol.matrix)
    fine_shape = (int(phantom.shape[0]), int(phantom.shape[1]), int(phantom.shape[2]))
    two_d = fine_shape[0] == 1
    if abs(phantom.b0_t - scanner.b0_t) > 1e-6:
        raise ConfigError(
            f"phantom is at {phantom.b0_t:g} T but the scanner at {scanner.b0_t:g} T; "
            f"use phantom.at_field({scanner.b0_t:g})"
        )
    voxel = phantom.voxel_size_m
    fov_fine = [voxel[a] * fine_shape[a] for a in range(3)]
    coarse_shape = (fine_shape[0], n, n)
    slice_thickness = protocol.slice_thickness_m or 0.0  # None for 3D protocols: they have a slab instead
    if two_d and slice_thickness <= 0:
        slice_thickness = abs(float(np.linalg.norm(phantom.affine[:3, 0])))  # the phantom's own slice
    program = compile_sequence(sequence.seq)
    k1, k2, avg, rev = _adc_lines(sequence.seq, program, n, float(protocol.fov_m), coarse_shape[0], fov_fine[0])
    n_ro = int(program.adc_length[0])
    if np.any(program.adc_length != n_ro):
        raise SequenceError("the bloch engine needs every ADC of a Cartesian sequence to have the same sample count")

    # Logical positions of the fine voxels: grid axes, origin at the centre voxel n // 2.
    axes_pos = [(np.arange(fine_shape[a]) - fine_shape[a] // 2) * voxel[a] for a in range(3)]
    if two_d:
        axes_pos[0] = np.zeros(1)
    n_coils = int(scanner.receive.n_coils)
    fine_size = int(np.prod(fine_shape))
    from hifield.phantom.phantom import check_memory

    chunk = _spin_chunk(n_coils, opts.n_isochromats) if opts.chunk_voxels is None else int(opts.chunk_voxels)
    check_memory(
        min(fine_size, max(chunk, fine_shape[1] * fine_shape[2])) * n_coils * 8.0  # sensitivities of one slab
        + N_BLOCKS * n_coils * program.n_samples * 16.0  # per-block accumulators
        + chunk * (n_coils * 16.0 + 64.0)  # one chunk of voxels
        + 2.0 * _MAX_TABLE_BYTES,  # pulse maps of one group of voxel classes, free-precession table
        what=f"the bloch simulation of a {fine_shape} phantom with {n_coils} coils",
    )
    b1_map = getattr(phantom, "b1_scale", None)
    coarse_size = int(np.prod(coarse_shape))
    voxel_mm3 = float(protocol.fov_m / n) ** 2 * 1e9
    voxel_mm3 *= slice_thickness if two_d else fov_fine[0] / coarse_shape[0]
    volume_weight = voxel_mm3 * np.sqrt(coarse_size) / fine_size
    if two_d and opts.through_slice > 0:
        volume_weight *= opts.through_slice  # isochromats spread over through_slice x the slice thickness
    iso_voxel = (opts.through_slice * slice_thickness if two_d else voxel[0], voxel[1], voxel[2])
    b0 = scanner.b0_t

    # Per tissue: isochromats and chemical-shift peaks.
    tissues: list[tuple[int, Any, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], Any, Any]] = []
    transfers: list[tuple[float, NDArray[np.float64], NDArray[np.float64]]] = []
    for index, tissue in enumerate(phantom.tissues):
        n_voxels = int(np.count_nonzero(phantom.fractions[index] > 0))
        if tissue.pd <= 0 or n_voxels == 0:
            continue
        r2p = 1.0 / tissue.t2star_s - 1.0 / tissue.t2_s if tissue.t2star_s < tissue.t2_s else 0.0
        iso_pos, iso_dw, iso_weights = isochromat_offsets(
            opts.n_isochromats,
            iso_voxel,
            r2p,
            spread_positions=opts.spread_positions,
            voxel_shape=opts.voxel_shape,
            uniform_axes=(two_d, False, False),
        )
        transfers.append((n_voxels * tissue.pd, iso_pos, iso_weights))
        shifts = np.asarray(tissue.chemical_shift_ppm, dtype=np.float64)
        amps = np.asarray(tissue.peak_amplitudes, dtype=np.float64)
        if opts.max_fat_peaks is not None and shifts.size > opts.max_fat_peaks:
            keep = np.argsort(-amps, kind="stable")[: opts.max_fat_peaks]
            amps_kept = amps[keep] * amps.sum() / amps[keep].sum()
            shifts, amps = shifts[keep], amps_kept
        tissues.append((index, tissue, iso_pos, iso_dw, iso_weights, shifts, amps))

    # Slabs of z planes (one slab in 2D): coil sensitivities are computed per slab, so memory is bounded by the
    # chunk size rather than the phantom's; within a slab each tissue's voxels go to the kernel in chunks.
    n_y, n_x = fine_shape[1], fine_shape[2]
    planes = max(1, min(fine_shape[0], chunk // (n_y * n_x)))
    signal = np.zeros((n_coils, program.n_samples), dtype=np.complex128)
    for z0 in range(0, fine_shape[0], planes):
        z1 = min(z0 + planes, fine_shape[0])
        slab_affine = np.array(phantom.affine, dtype=np.float64)
        slab_affine[:3, 3] = slab_affine[:3, :3] @ np.array([z0, 0.0, 0.0]) + slab_affine[:3, 3]
        sens_slab = scanner.receive.sensitivities(slab_affine, (z1 - z0, n_y, n_x))
        for index, tissue, iso_pos, iso_dw, iso_weights, shifts, amps in tissues:
            fraction = phantom.fractions[index][z0:z1]
            flat = np.flatnonzero(fraction.reshape(-1) > 0)
            zz, yy, xx = np.unravel_index(flat, (z1 - z0, n_y, n_x))
            for start in range(0, flat.size, chunk):
                sel = slice(start, start + chunk)
                iz, iy, ix = zz[sel], yy[sel], xx[sel]
                pos = np.stack([axes_pos[0][iz + z0], axes_pos[1][iy], axes_pos[2][ix]], axis=-1)
                base_hz = phantom.off_resonance_hz[iz + z0, iy, ix].astype(np.float64)
                weight = fraction[iz, iy, ix].astype(np.float64) * tissue.pd * volume_weight
                sens = sens_slab[:, iz, iy, ix].astype(np.complex128)
                b1_chunk = 1.0 if b1_map is None else np.abs(b1_map[iz + z0, iy, ix]).astype(np.float64)
                for shift_ppm, amplitude in zip(shifts, amps, strict=True):
                    df = GAMMA_BAR_HZ_PER_T * b0 * shift_ppm * 1e-6
                    signal += bloch_signal(
                        program,
                        positions_m=pos,
                        t1_s=tissue.t1_s,
                        t2_s=tissue.t2_s,
                        off_resonance_hz=base_hz + df,
                        weights=weight * amplitude,
                        b1_scale=b1_chunk,
                        sensitivities=sens,
                        iso_offsets_m=iso_pos,
                        iso_off_resonance_hz=iso_dw / (2.0 * math.pi),
                        iso_weights=iso_weights,
                    )

    readouts = signal.reshape(n_coils, program.n_adc, n_ro)
    readouts = np.where(rev[np.newaxis, :, np.newaxis], readouts[..., ::-1], readouts)
    readouts = _remove_oversampling(readouts, n)
    n_avg = int(avg.max()) + 1
    kspace = np.zeros((n_coils, n_avg, *coarse_shape), dtype=np.complex128)
    count = np.zeros((n_avg, coarse_shape[0], n), dtype=np.int64)
    for j in range(program.n_adc):
        kspace[:, avg[j], k2[j], k1[j], :] += readouts[:, j, :]
        count[avg[j], k2[j], k1[j]] += 1
    acquired = count.max(axis=0) > 0  # (k2, k1)
    kspace = kspace.sum(axis=1) / np.maximum(count.sum(axis=0), 1)[np.newaxis, :, :, np.newaxis]
    if opts.spread_positions and opts.n_isochromats > 1 and transfers:
        # divide out the voxel's encoding response (in-plane; along z too in 3D) so that voxels encode as
        # band-limited samples like the fast engine's FFT; the spins still dephase under spoilers
        fov_axes = (fov_fine[0], float(protocol.fov_m), float(protocol.fov_m))
        k_axes = [(np.arange(coarse_shape[a]) - coarse_shape[a] // 2) / fov_axes[a] for a in range(3)]
        if two_d:
            k_axes[0] = np.zeros(1)
        _, iso_pos, iso_weights = max(transfers, key=lambda t: t[0])  # the dominant tissue's isochromats
        transfer = voxel_transfer((k_axes[0], k_axes[1], k_axes[2]), iso_pos, iso_weights)
        kspace = kspace / transfer[np.newaxis]
    dwell = float(sequence.readout_dwell_s)
    noise_scan = None
    if noise:
        std = kspace_noise_std(b0, dwell_s=dwell * n_ro / n, n_grid=coarse_size, n_averages=n_avg)
        cov = scanner.receive.noise_covariance
        kspace = kspace + correlated_noise(kspace.shape, cov, std, rng)
        noise_scan = correlated_noise((n_coils, NOISE_SCAN_SAMPLES), cov, std, rng)
    sampling = recorded_sampling(sequence, acquired)
    mask = np.broadcast_to(sampling.mask, coarse_shape)
    kspace_out: NDArray[np.complex64] = np.where(mask[np.newaxis], kspace, 0).astype(np.complex64)
    acceleration = sampling.acceleration
    affine = phantom.affine.copy()
    scale = np.array([f / c for f, c in zip(fine_shape, coarse_shape, strict=True)], dtype=np.float64)
    affine[:3, :3] = phantom.affine[:3, :3] * scale[np.newaxis, :]
    centre = phantom.affine @ np.array([fine_shape[0] // 2, fine_shape[1] // 2, fine_shape[2] // 2, 1.0])
    affine[:3, 3] = centre[:3] - affine[:3, :3] @ np.array([c // 2 for c in coarse_shape], dtype=np.float64)
    if two_d:
        affine[:3, 0] = affine[:3, 0] / max(float(np.linalg.norm(affine[:3, 0])), 1e-12) * slice_thickness
    header = RawHeader(
        b0_t=b0,
        fov_m=(slice_thickness if two_d else fov_fine[0], float(protocol.fov_m), float(protocol.fov_m)),
        matrix=coarse_shape,
        te_s=float(sequence.te_s),
        tr_s=float(sequence.tr_s),
        flip_angle_rad=float(sequence.flip_angle_rad),
        ti_s=getattr(sequence, "ti_s", None),
        slice_thickness_m=slice_thickness if two_d else None,
        pixel_bandwidth_hz=float(1.0 / (dwell * n_ro)),
        readout_dwell_s=dwell,
        echo_train_length=int(getattr(sequence, "echo_train_length", 1)),
        n_averages=n_avg,
        acceleration=float(acceleration),
        scan_time_s=float(program.duration_s),
        scan_time_full_s=float(program.duration_s) * float(acceleration),
        protocol_name=str(protocol.name),
        sequence_name=str(getattr(sequence, "sequence_name", protocol.name)),
        scanning_sequence=str(getattr(sequence, "scanning_sequence", "GR")),
        sequence_variant=str(getattr(sequence, "sequence_variant", "SP")),
        acquisition_type="2D" if two_d else "3D",
        trajectory="cartesian",
        affine=tuple(tuple(float(v) for v in row) for row in affine),
        system_model=scanner.name,
        engine="bloch",
    )
    return RawData(
        kspace=kspace_out,
        header=header,
        mask=None if sampling.full else np.ascontiguousarray(mask),
        calibration=sampling.calibration,
        noise=noise_scan,
    )
