"""The ``fast`` engine: per-readout echo signals from phase graphs of the real sequence, then FFT/NUFFT encoding.

Model:

1. Contrast. The sequence's RF and ADC events (:mod:`hifield.sim.engines.timeline`: flip angles, RF and receiver
   phases, exact times, the role of each pulse) drive an extended phase graph per tissue
   (:mod:`hifield.sim.engines.fast_echoes`), which gives the complex echo of every readout: RF-spoiled steady states
   with their real phase schedule (non-ideal spoiling included), CPMG echo trains (SE, TSE, with stimulated echoes
   for refocusing angles below 180 degrees), inversion preparation (FLAIR, STIR, MPRAGE), EPI echo trains. Balanced
   sequences (bSSFP) are solved per voxel in closed form, since their steady state depends on each voxel's
   off-resonance. By default the acquisition starts in the sequence's own steady state, as after preparation scans;
   ``steady_state=False`` plays it from full relaxation, as the ``bloch`` engine does. A B1+ map scales every flip
   angle per voxel (phase graphs on a grid of B1+ scales). The reversible T2' decay is ``exp(-|tau| / T2')`` with
   ``tau`` the time from the spin echo (from excitation for gradient echoes).
2. Encoding. The echo amplitudes of all readouts (readouts x tissues) are split by SVD into a few basis contrasts
   (one for a steady state, a handful for an echo train); each basis image (a sum over partial-volume tissue
   fractions, grouped by chemical-shift spectrum) is weighted by every coil's sensitivity and Fourier transformed on
   the phantom's finer grid, then cropped to the protocol's matrix (Cartesian) or sampled by NUFFT at the sequence's
   own k-space positions (radial, spiral). Simulating on a finer grid than the reconstruction avoids the "inverse
   crime".
3. Off-resonance. Each sample carries the phase ``exp(-i 2 pi (df_B0 + df_peak) tau)`` of its own time: B0 maps by
   frequency segments with linear interpolation, chemical shift exactly. Spins are therefore displaced along the
   readout by ``df / (bandwidth per pixel)`` pixels, and along the phase encoding of an EPI train by
   ``df * echo spacing * lines`` pixels, as on a real scanner.
4. Thermal noise, correlated by the array's noise covariance (see ``hifield.sim.noise``), and a noise scan.

Sign convention (the physical one for protons, gamma > 0: transverse magnetisation precesses as
``exp(-i gamma B t)``): the signal is ``s(t) = sum_r m(r) exp(-i 2 pi (k(t) . r + df(r) t))``. Spins with a positive
frequency offset ``df`` therefore appear displaced by ``+df / (bandwidth per pixel)`` pixels along the readout
(+x) and carry the phase ``-2 pi df TE``; fat (``df < 0``) moves towards -x. The Bloch engine and the tissue
library (fat at -3.4 ppm, -434 Hz at 3 T) use the same convention.

Assumptions (where ``fast`` and ``bloch`` differ on purpose): spoilers and crushers dephase fully within a voxel,
every excitation of a spin-echo train starts from spoiled magnetisation, and RF pulses act instantaneously with
their nominal flip angle across the slice (no slice profile; fat's slice displacement is not modelled).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from hifield.data import RawData, RawHeader
from hifield.errors import ConfigError, SequenceError, check_memory
from hifield.sim.engines.acquisition import acquisition_header, check_same_field
from hifield.sim.engines.fast_echoes import ContrastGroup, contrast_groups, select_slice
from hifield.sim.engines.fast_offresonance import frequency_segments
from hifield.sim.engines.timeline import Timeline, density_weights, read_timeline, readout_kspace
from hifield.sim.noise import add_thermal_noise, kspace_noise_std
from hifield.sim.pattern import recorded_sampling

if TYPE_CHECKING:
    from hifield.hardware import Scanner
    from hifield.phantom import Phantom
    from hifield.sequence import BuiltSequence


def spoiled_gre_signal(
    t1_s: NDArray[np.floating] | float,
    t2star_s: NDArray[np.floating] | float,
    *,
    flip_angle_rad: NDArray[np.floating] | float,
    tr_s: float,
    te_s: float,
) -> NDArray[np.float64]:
    """Steady-state transverse magnetisation of an ideally spoiled gradient echo per unit M0 (Ernst equation).

    Examples
    --------
    >>> import numpy as np
    >>> e1 = np.exp(-0.01 / 1.0)
    >>> s = spoiled_gre_signal(1.0, np.inf, flip_angle_rad=np.arccos(e1), tr_s=0.01, te_s=0.0)
    >>> bool(np.isclose(s, np.sqrt((1 - e1) / (1 + e1))))
    True
    """
    t1 = np.asarray(t1_s, dtype=np.float64)
    e1 = np.exp(-tr_s / t1)
    decay = np.exp(-te_s / np.asarray(t2star_s, dtype=np.float64))
    return np.sin(flip_angle_rad) * (1.0 - e1) / (1.0 - e1 * np.cos(flip_angle_rad)) * decay


def _crop_slices(fine: tuple[int, ...], coarse: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(f // 2 - c // 2, f // 2 - c // 2 + c) for f, c in zip(fine, coarse, strict=True))


def _low_rank(amplitudes: NDArray[np.complex128], tol: float = 1e-4) -> tuple[NDArray[np.complex128], ...]:
    """``amplitudes ~= coefficients @ mixing`` with the fewest components keeping the relative error below ``tol``.

    Returns ``coefficients`` ``(n_adc, rank)`` and ``mixing`` ``(rank, n_columns)``: the echo amplitudes of all
    readouts are combinations of ``rank`` basis contrasts (one for a steady state, a few for an echo train), so the
    encoding needs ``rank`` Fourier transforms per group instead of one per tissue.
    """
    u, s, vh = np.linalg.svd(amplitudes, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return u[:, :1] * 0, vh[:1] * 0
    energy = np.sqrt(np.cumsum(s[::-1] ** 2))[::-1]  # energy[k] = norm of the discarded tail from component k
    total = float(np.linalg.norm(s))
    rank = next((k for k in range(1, s.size) if energy[k] <= tol * total), s.size)
    return u[:, :rank] * s[:rank], vh[:rank]


def _check_grid(
    phantom: Phantom,
    protocol: Any,
    scanner: Scanner,
    fine_shape: tuple[int, int, int],
    fov_fine: list[float],
    *,
    cartesian: bool,
) -> None:
    """Refuse a phantom grid the engine cannot encode the protocol on (FOV, integer oversampling, field, slab)."""
    n = int(protocol.matrix)
    n_z_fine = fine_shape[0]
    for axis, label in ((1, "y"), (2, "x")):
        ratio = fine_shape[axis] / n
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-6 or abs(fov_fine[axis] - protocol.fov_m) > 1e-6:
            raise ConfigError(
                f"phantom grid ({fine_shape[axis]} voxels over {fov_fine[axis] * 1e3:.1f} mm along {label}) must cover "
                f"the protocol FOV of {protocol.fov_m * 1e3:.1f} mm with an integer multiple of its {n} voxels; "
                f"make the phantom with the same FOV and matrix x oversampling"
            )
    check_same_field(phantom, scanner)
    slab = protocol.slab_thickness_m
    partitions = protocol.n_partitions
    if (
        n_z_fine > 1
        and slab is not None
        and (abs(fov_fine[0] - float(slab)) > 1e-6 or (partitions is not None and int(partitions) != n_z_fine))
    ):
        raise ConfigError(
            f"3D phantom ({n_z_fine} planes over {fov_fine[0] * 1e3:.1f} mm) must match the slab of {protocol.name!r} "
            f"({partitions} partitions over {float(slab) * 1e3:.1f} mm); make the phantom on the partition grid"
        )
    if not cartesian and n_z_fine > 1:
        raise SequenceError(
            f"the fast engine encodes non-Cartesian readouts of 2D slices only; sequence {protocol.name!r} on a "
            f"{n_z_fine}-slice phantom: use a 2D phantom"
        )


def _readouts(
    sequence: BuiltSequence, n: int, fine_shape: tuple[int, int, int], fov_fine: list[float], *, cartesian: bool
) -> tuple[Timeline, NDArray[np.float64] | None, int, float, NDArray[np.float64] | None]:
    """The timeline of the simulated slice, the readouts' k-space (non-Cartesian; None for Cartesian), the samples
    per stored readout, their dwell [s] (oversampling removed) and, for Cartesian readouts, their offsets from the
    grid (:func:`grid_offsets`)."""
    protocol: Any = sequence.protocol
    every = read_timeline(
        sequence.seq, matrix=n, fov_m=float(protocol.fov_m), n_z=fine_shape[0], fov_z_m=fov_fine[0],
        cartesian=cartesian,
    )  # fmt: skip
    timeline = select_slice(every)
    samples = np.unique(timeline.adc_samples)
    if cartesian and (samples.size != 1 or int(samples[0]) % n):
        raise SequenceError(
            f"readouts of {sorted(samples.tolist())} samples do not match the {n}-point matrix (or a multiple of it); "
            f"the fast engine needs equal Cartesian readouts: use --engine bloch"
        )
    k_samples = None if cartesian else readout_kspace(sequence.seq, timeline)  # (n_adc, n_samples, 3)
    n_ro = n if cartesian else int(samples[0])
    oversampling = int(samples[0]) // n if cartesian else 1
    dwell = float(np.median(timeline.adc_dwell_s)) * oversampling  # per stored sample (oversampling removed)
    offsets = None
    if cartesian:
        offsets = grid_offsets(
            sequence.seq, timeline, every.adc_samples, n=n, n_z=fine_shape[0], fov_m=float(protocol.fov_m),
            fov_z_m=fov_fine[0],
        )  # fmt: skip
    return timeline, k_samples, n_ro, dwell, offsets


def grid_offsets(
    seq: Any,
    timeline: Timeline,
    samples_all: NDArray[np.int64],
    *,
    n: int,
    n_z: int,
    fov_m: float,
    fov_z_m: float,
) -> NDArray[np.float64]:
    """How far each Cartesian readout's samples lie from the grid ``(n_adc, 3)`` (z, y, x) [1/m].

    The stored sample ``n // 2`` of a readout belongs at ``kx = 0``, its line at ``ky = (k1 - n // 2) / fov`` (and
    ``kz = (k2 - n_z // 2) / fov_z`` in 3D); the sequence's own gradients put it at ``k + offset``. A readout whose
    samples straddle ``kx = 0`` symmetrically (pypulseq's ``write_gradient_echo`` layout: prephaser of half the
    readout area, samples at ``(j + 1/2)`` dwell) has ``offset_x = dk / 2``; a scanner reconstructs such data with
    the image multiplied by ``exp(-i 2 pi offset x)``, and so does the fast engine (:func:`_projector`). Oversampled
    readouts keep the offset of their raw samples. In 2D the z offset is 0 (z is not encoded). ``samples_all``: the
    sample count of every ADC of the sequence (``timeline.adc_index`` points into it).
    """
    from hifield.sequence.kspace import adc_kspace

    k = adc_kspace(seq)  # (3, all samples) x, y, z [1/m]
    counts = np.asarray(samples_all, dtype=np.int64)  # samples of every ADC of the sequence, in order
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    size = counts[timeline.adc_index]
    centre = np.where(timeline.adc_rev, size - 1 - size // 2, size // 2)
    at = k[:, first[timeline.adc_index] + centre]  # (3, n_adc) x, y, z
    offsets = np.zeros((timeline.n_adc, 3))
    offsets[:, 2] = at[0]
    offsets[:, 1] = at[1] - (timeline.adc_k1 - n // 2) / fov_m
    if n_z > 1:
        offsets[:, 0] = at[2] - (timeline.adc_k2 - n_z // 2) / fov_z_m
    return offsets


def _sample_times(
    timeline: Timeline,
    tau: NDArray[np.float64],
    k_samples: NDArray[np.float64] | None,
    *,
    n: int,
    n_z: int,
    n_ro: int,
    dwell: float,
) -> tuple[NDArray[np.float64], float]:
    """Sample times of every readout relative to its dephasing origin ``(n_adc, samples)`` [s], and the reference
    time ``tau0`` [s] of the k-space centre (where the off-resonance phase is applied in image space)."""
    direction = np.where(timeline.adc_rev, -1.0, 1.0)
    steps = (np.arange(n_ro) - n_ro // 2) * dwell
    tau_samples = tau[:, np.newaxis] + direction[:, np.newaxis] * steps[np.newaxis, :]
    if k_samples is None:
        centre = (timeline.adc_k1 == n // 2) & (timeline.adc_k2 == n_z // 2)
        tau0 = float(np.median(tau[centre])) if np.any(centre) else float(np.median(tau))
    else:
        nearest = np.argmin(np.linalg.norm(k_samples, axis=-1), axis=-1)
        tau0 = float(np.median(tau_samples[np.arange(timeline.n_adc), nearest]))
    return tau_samples, tau0


THREADED_FFT_ELEMENTS = 1 << 22
"""Smallest array [elements] whose FFTs run on every core: below it, threads cost more than they save (a 64 x 64
8-coil projection took twice as long and varied run to run on two cores; 256 x 256 was still faster on one)."""


def _fft(data: NDArray[Any], axis: int) -> NDArray[Any]:
    """Orthonormal FFT along ``axis``: NumPy's pocketfft on one thread for small arrays (the same transform as
    scipy.fft's, and it keeps ``import scipy`` out of a small simulation's process), scipy.fft on every core from
    :data:`THREADED_FFT_ELEMENTS` up."""
    if data.size < THREADED_FFT_ELEMENTS:
        return np.fft.fft(data, axis=axis, norm="ortho")
    import scipy.fft

    return scipy.fft.fft(data, axis=axis, norm="ortho", workers=-1)


def _fftn(data: NDArray[Any], axes: tuple[int, ...]) -> NDArray[Any]:
    """Orthonormal N-D FFT over ``axes``, with the thread choice of :func:`_fft`."""
    if data.size < THREADED_FFT_ELEMENTS:
        return np.fft.fftn(data, axes=axes, norm="ortho")
    import scipy.fft

    return scipy.fft.fftn(data, axes=axes, norm="ortho", workers=-1)


def _offset_ramps(
    offsets_m: NDArray[np.float64] | None, fine_shape: tuple[int, int, int], spacing_m: tuple[float, float, float]
) -> list[tuple[NDArray[np.intp] | None, NDArray[np.complex64] | None]]:
    """The readouts grouped by their offset from the grid (:func:`grid_offsets`), each group with the image ramp
    ``exp(-i 2 pi offset . r)`` on the fine grid (origin at voxel ``N // 2``) that moves its samples there.

    Returns ``[(rows, ramp)]``; ``rows`` None means every readout, ``ramp`` None means no offset (the grid itself).
    Offsets are compared in thousandths of a grid step (a phase error below 0.2 degrees across the field of view;
    the gradient amplitudes a .seq file stores put phase-encode areas some 1e-5 of a step off), and below that count
    as none.
    """
    if offsets_m is None or offsets_m.size == 0:
        return [(None, None)]
    steps = np.array([1.0 / (n * d) if n > 1 and d > 0 else 1.0 for n, d in zip(fine_shape, spacing_m, strict=True)])
    units = np.round(offsets_m / steps[np.newaxis, :] * 1e3).astype(np.int64)  # thousandths of a grid step
    keys, inverse = np.unique(units, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    out: list[tuple[NDArray[np.intp] | None, NDArray[np.complex64] | None]] = []
    for g, key in enumerate(keys):
        rows = None if keys.shape[0] == 1 else np.flatnonzero(inverse == g)
        if not np.any(key):
            out.append((rows, None))
            continue
        mean = offsets_m[inverse == g].mean(axis=0)  # [1/m] (z, y, x)
        ramp = np.ones(fine_shape, dtype=np.complex128)
        for axis in range(3):
            if mean[axis] == 0.0:
                continue
            r = (np.arange(fine_shape[axis]) - fine_shape[axis] // 2) * spacing_m[axis]
            shape = [1, 1, 1]
            shape[axis] = fine_shape[axis]
            ramp = ramp * np.exp(-2j * np.pi * mean[axis] * r).reshape(shape)
        out.append((rows, ramp.astype(np.complex64)))
    return out


def _projector(
    lines_k2k1: tuple[NDArray[np.int64], NDArray[np.int64]],
    k_samples: NDArray[np.float64] | None,
    fine_shape: tuple[int, int, int],
    coarse_shape: tuple[int, int, int],
    sens: NDArray[np.complexfloating],
    *,
    voxel_fine: tuple[float, float, float],
    offsets_m: NDArray[np.float64] | None = None,
    spacing_m: tuple[float, float, float] | None = None,
) -> Callable[[NDArray[np.complexfloating]], NDArray[np.complex64]]:
    """An image ``(z, y, x)`` on the fine grid -> every readout ``(coil, n_adc, samples)`` of it through the coils:
    centred FFT cropped to the protocol's grid (Cartesian; the readouts' ``(k2, k1)`` lines in ``lines_k2k1``, each
    moved by its offset from the grid ``offsets_m`` ``(n_adc, 3)`` [1/m] on fine voxels of ``spacing_m``), or
    NUFFT at the sequence's own k-space positions.

    The Cartesian projector transforms axis by axis, cropping after each one and keeping only the lines the
    timeline reads, and replaces the centring shifts of every coil image (two copies each) by a sign pattern: for
    an even length ``N``, ``fftshift(fft(ifftshift(x)))[k] = (-1)^(k - N/2) fft((-1)^n x)[k]``. The ``(-1)^n``
    pattern (and the offset ramp, when all readouts share one) is folded into the sensitivities once; the output
    signs are applied to the lines read.
    """
    n_coils = sens.shape[0]
    if k_samples is not None:
        from hifield.ops import NUFFTOp

        nufft = NUFFTOp(k_samples, fine_shape, voxel_fine, batch_shape=(n_coils,))
        sens64 = sens.astype(np.complex64)

        def project_nufft(image: NDArray[np.complexfloating]) -> NDArray[np.complex64]:
            return np.asarray(nufft @ (sens64 * image[np.newaxis].astype(np.complex64)))

        return project_nufft

    axes = (-3, -2, -1) if fine_shape[0] > 1 else (-2, -1)
    crop = _crop_slices(fine_shape, coarse_shape)
    k2, k1 = lines_k2k1
    ramps = _offset_ramps(offsets_m, fine_shape, spacing_m if spacing_m is not None else voxel_fine)
    if any(fine_shape[a] % 2 for a in axes):  # odd grids: the shifts themselves
        sens64 = sens.astype(np.complex64)

        def project_shifted(image: NDArray[np.complexfloating]) -> NDArray[np.complex64]:
            out = np.empty((n_coils, k1.size, coarse_shape[2]), dtype=np.complex64)
            for rows, ramp in ramps:
                moved = image if ramp is None else image * ramp
                coil_images = sens64 * moved[np.newaxis].astype(np.complex64)
                k_fine = np.fft.fftshift(_fftn(np.fft.ifftshift(coil_images, axes=axes), axes), axes=axes)
                sel = slice(None) if rows is None else rows
                out[:, sel] = k_fine[(slice(None), *crop)][:, k2[sel], k1[sel], :]
            return out

        return project_shifted

    def alternating(n: int) -> NDArray[np.float32]:
        return np.where(np.arange(n) % 2 == 0, 1.0, -1.0).astype(np.float32)

    def output_sign(axis: int) -> NDArray[np.float32]:
        n = fine_shape[axis]
        return alternating(n)[crop[axis]] * np.float32(-1.0 if (n // 2) % 2 else 1.0)  # (-1)^(k - N/2)

    pattern = np.ones(fine_shape, dtype=np.float32)
    for a in axes:
        shape = [1, 1, 1]
        shape[a] = fine_shape[a]
        pattern = pattern * alternating(fine_shape[a]).reshape(shape)
    single_ramp = ramps[0][1] if len(ramps) == 1 else None
    base = sens * pattern[np.newaxis]
    modulated = (base if single_ramp is None else base * single_ramp[np.newaxis]).astype(np.complex64)
    line_sign = output_sign(-2)[k1] * (output_sign(-3)[k2] if len(axes) == 3 else np.float32(1.0))
    signs = (line_sign[:, np.newaxis] * output_sign(-1)[np.newaxis, :]).astype(np.float32)  # (n_adc, k0)
    rows_y = crop[1].start + k1  # the fine grid's rows the timeline reads
    planes_z = crop[0].start + k2

    def lines_of(data: NDArray[np.complex64], sel: Any) -> NDArray[np.complex64]:
        data = _fft(data, -1)[..., crop[2]]
        data = _fft(data, -2)
        if len(axes) == 3:
            data = _fft(data, -3)
            return data[:, planes_z[sel], rows_y[sel], :]
        return data[:, 0, rows_y[sel], :]

    def project(image: NDArray[np.complexfloating]) -> NDArray[np.complex64]:
        if len(ramps) == 1:
            return lines_of(modulated * image[np.newaxis].astype(np.complex64), slice(None)) * signs[np.newaxis]
        out = np.empty((n_coils, k1.size, coarse_shape[2]), dtype=np.complex64)
        for rows, ramp in ramps:
            moved = image if ramp is None else image * ramp
            out[:, rows] = lines_of(modulated * moved[np.newaxis].astype(np.complex64), rows)
        return out * signs[np.newaxis]

    return project


READOUT_DECAY_TOL = 1e-4
"""Relative error allowed in the separable expansion of the decay between a readout's samples
(:func:`_readout_decay`)."""


def _readout_decay(
    group: ContrastGroup, tau_samples: NDArray[np.float64], tau_centre: NDArray[np.float64]
) -> list[tuple[NDArray[np.float64], NDArray[np.float64], float]]:
    """The decay between a readout's samples as a short sum ``D[j, s, c] ~= sum_q u_q[j, s] v_q[c]``.

    ``D[j, s, c] = exp(-R2_c (t_js - t_j) - R2'_c (|tau_js| - |tau_j|))`` is the decay of column ``c``'s tissue from
    the centre sample of readout ``j`` (where its echo amplitude is taken) to sample ``s``: T2 in real time, the
    reversible T2' in dephasing time (so it turns around at a spin echo inside the readout). Tissues decay at
    different rates, so the factor is not common to a group's columns; the singular value decomposition over the
    distinct ``(t - t_j, |tau| - |tau_j|)`` pairs, weighted by each column's share of the signal, keeps the fewest
    terms within :data:`READOUT_DECAY_TOL` (one term when all columns decay alike; none is needed without rates).
    Returns ``[(u_q (n_adc, samples), v_q (column,), weight_q)]``, ``weight_q = s_q / s_0`` the term's share (its
    basis contrasts need only be resolved to ``READOUT_DECAY_TOL / weight_q`` of itself).
    """
    rates = group.decay_per_s
    if rates is None:
        return [(np.ones(tau_samples.shape), np.ones(group.amplitudes.shape[1]), 1.0)]
    real_s = tau_samples - tau_centre[:, np.newaxis]
    reversible_s = np.abs(tau_samples) - np.abs(tau_centre)[:, np.newaxis]
    keys, inverse = np.unique(  # one complex key per (real, reversible) pair: a 1D unique, much faster than axis=0
        np.round(real_s.ravel(), 12) + 1j * np.round(reversible_s.ravel(), 12), return_inverse=True
    )
    pairs = np.stack([keys.real, keys.imag], axis=1)
    table = np.exp(-pairs @ np.asarray(rates, dtype=np.float64))  # (pair, column)
    maps = np.abs(group.maps.reshape(group.maps.shape[0], -1)).sum(axis=1)
    share = np.linalg.norm(group.amplitudes, axis=0) * maps[np.arange(table.shape[1]) % maps.size]
    share = share / share.max() if share.max() > 0 else np.ones_like(share)
    u, s, vh = np.linalg.svd(table * share[np.newaxis, :], full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return [(np.ones(tau_samples.shape), np.ones(table.shape[1]), 1.0)]
    tail = np.sqrt(np.cumsum(s[::-1] ** 2))[::-1]
    rank = next((k for k in range(1, s.size) if tail[k] <= READOUT_DECAY_TOL * float(np.linalg.norm(s))), s.size)
    # undo the weights on the column side (zero-weight columns carry no signal: their factor is irrelevant)
    safe = np.where(share > 0, share, 1.0)
    terms = []
    for q in range(rank):
        u_q = (u[:, q] * s[q])[inverse.ravel()].reshape(tau_samples.shape)
        terms.append((u_q, vh[q] / safe, float(s[q] / s[0])))
    return terms


def _encode(
    groups: list[ContrastGroup],
    sens: NDArray[np.complexfloating],
    project: Callable[[NDArray[np.complexfloating]], NDArray[np.complex64]],
    tau_samples: NDArray[np.float64],
    tau0: float,
    offset_hz: NDArray[np.float64],
    *,
    scale: float,
    tau_centre: NDArray[np.float64] | None = None,
) -> NDArray[np.complex128]:
    """Every readout ``(coil, n_adc, samples)``: per contrast group and basis contrast, the basis image through the
    coils and the projector, with the chemical-shift phase of each sample, the B0 map by multi-frequency
    interpolation (:func:`~hifield.sim.engines.fast_offresonance.frequency_segments`) and each tissue's T2 and T2'
    decay between the samples of a readout (:func:`_readout_decay`; not when ``tau_centre``, the dephasing time of
    each readout's centre sample, is None)."""
    offres_phase = np.exp(-2j * np.pi * offset_hz * tau0)
    segments = frequency_segments(offset_hz, tau_samples - tau0)
    segment_phases = [np.exp(-2j * np.pi * segment_hz * (tau_samples - tau0)) for segment_hz, _ in segments]
    lines = np.zeros((sens.shape[0], *tau_samples.shape), dtype=np.complex128)
    for group in groups:
        spectrum = np.zeros(tau_samples.shape, dtype=np.complex128)
        for df, amplitude in zip(group.peaks_hz, group.peak_amplitudes, strict=True):
            spectrum += amplitude * np.exp(-2j * np.pi * df * tau_samples)
        if tau_centre is None:
            terms = [(np.ones(tau_samples.shape), np.ones(group.amplitudes.shape[1]), 1.0)]
        else:
            terms = _readout_decay(group, tau_samples, tau_centre)
        for decay, column_factor, share in terms:
            tol = min(READOUT_DECAY_TOL / max(share, 1e-12), 0.5)  # a weak correction needs few basis contrasts
            coefficients, mixing = _low_rank(group.amplitudes * column_factor[np.newaxis, :], tol=tol)
            along = decay * spectrum * scale  # (n_adc, samples)
            for component in range(coefficients.shape[1]):
                basis = group.image(mixing[component]) * offres_phase  # (z, y, x)
                per_readout = coefficients[:, component, np.newaxis] * along
                for (_, weight), phase in zip(segments, segment_phases, strict=True):
                    lines += project(basis * weight) * (per_readout * phase)[np.newaxis]
    return lines


def simulate_fast(
    phantom: Phantom,
    sequence: BuiltSequence,
    scanner: Scanner,
    *,
    noise: bool = True,
    rng: np.random.Generator,
    steady_state: bool = True,
) -> RawData:
    """Simulate a Cartesian acquisition (2D or 3D) of any sequence with the signal-model engine.

    Contrast: the echo of every readout per tissue from phase graphs over the sequence's own RF and ADC timeline
    (:mod:`hifield.sim.engines.fast_echoes`): spoiled GRE, SE, TSE, IR (FLAIR, STIR), MPRAGE, EPI (gradient and
    spin echo, single-shot and segmented), and bSSFP per voxel. Encoding: the readouts' amplitudes are split into a
    few basis contrasts (SVD), each basis image is weighted by the coil sensitivities and Fourier transformed on the
    phantom's fine grid, and every readout takes its line with the off-resonance and chemical-shift phase of its
    own sample times (so EPI distortion along the phase-encode direction and T2* blurring across echo trains
    appear as on a real scanner).

    Parameters
    ----------
    phantom
        Digital object at the scanner's field; its grid must cover the protocol's field of view in-plane with an
        integer oversampling (e.g. 512 x 512 voxels for a 256 x 256 matrix over the same FOV).
    sequence
        A built Cartesian sequence (ours or a ``.seq`` file); only its readouts are acquired.
    scanner
        Receive array (sensitivities, noise covariance) and field.
    noise
        Add thermal noise and a noise scan.
    rng
        Random generator for the noise.
    steady_state
        Start the acquisition in the sequence's steady state, as after preparation (dummy) scans (default); with
        ``False`` the sequence is played from full relaxation, transients included, as the ``bloch`` engine does.

    Returns
    -------
    RawData
        k-space ``(coil, 1, k1, k0)`` for a 2D slice (``(coil, k2, k1, k0)`` for 3D), zero where not acquired;
        lines acquired several times (averages) are averaged.
    """
    return simulate_fast_many(phantom, [sequence], scanner, noise=[noise], rngs=[rng], steady_state=steady_state)[0]


def simulate_fast_many(
    phantom: Phantom,
    sequences: Sequence[BuiltSequence],
    scanner: Scanner,
    *,
    noise: Sequence[bool],
    rngs: Sequence[np.random.Generator],
    steady_state: bool = True,
) -> list[RawData]:
    """:func:`simulate_fast` of several sequences on the same phantom, sharing the encoding where they can.

    Cartesian sequences on the same grid with the same k-space-centre time (a fully sampled reference and its
    undersampled scan, say) are encoded together: the echo amplitudes of all their readouts are split into one set
    of basis contrasts, and every basis image is Fourier transformed once for the lines of all of them. Each result
    equals :func:`simulate_fast` of that sequence alone to round-off (the basis contrasts differ only in their
    truncation, below the engine's 1e-4 low-rank tolerance); the noise of sequence ``i`` is drawn from ``rngs[i]``.

    Examples
    --------
    >>> import hifield as hf
    >>> scanner = hf.Scanner.preset("3T", n_coils=4)
    >>> protocol = hf.get_protocol("gre_t1_2d").with_changes(matrix=32)
    >>> acq = hf.sequence.plan_acquisition(protocol, scanner, acceleration=2, n_calibration=8)
    >>> phantom = hf.shepp_logan_phantom(matrix=64, fov_m=protocol.fov_m)
    >>> full, half = simulate_fast_many(phantom, [acq.full, acq.accelerated], scanner, noise=[False, False],
    ...                                 rngs=[np.random.default_rng(0)] * 2)
    >>> one = simulate_fast(phantom, acq.accelerated, scanner, noise=False, rng=np.random.default_rng(0))
    >>> bool(np.allclose(half.kspace, one.kspace, rtol=0, atol=1e-5 * np.abs(one.kspace).max()))
    True
    """
    if not (len(sequences) == len(noise) == len(rngs)):
        raise ConfigError(f"give one noise flag and one generator per sequence: {len(sequences)} sequences, "
                          f"{len(noise)} flags, {len(rngs)} generators")  # fmt: skip
    plans = [_plan(phantom, sequence, scanner, steady_state=steady_state) for sequence in sequences]
    sens = scanner.receive.sensitivities(phantom.affine, plans[0].fine_shape) if plans else None
    offset_hz = phantom.off_resonance_hz.astype(np.float64)
    lines: list[NDArray[np.complex128] | None] = [None] * len(plans)
    for members in _shared_encodings(plans):
        encoded = _encode_together([plans[i] for i in members], sens, offset_hz)
        for i, block in zip(members, encoded, strict=True):
            lines[i] = block
    return [
        _finish(plan, block, phantom, scanner, noise=flag, rng=rng)
        for plan, block, flag, rng in zip(plans, lines, noise, rngs, strict=True)
        if block is not None
    ]


@dataclasses.dataclass
class _Plan:
    """What the engine needs to encode and package one sequence (see :func:`simulate_fast_many`)."""

    sequence: BuiltSequence
    cartesian: bool
    timeline: Timeline
    k_samples: NDArray[np.float64] | None
    offsets: NDArray[np.float64] | None
    n_ro: int
    dwell: float
    fine_shape: tuple[int, int, int]
    coarse_shape: tuple[int, int, int]
    slice_thickness: float
    groups: list[ContrastGroup]
    tau_samples: NDArray[np.float64]
    tau: NDArray[np.float64]
    tau0: float
    scale: float
    voxel_fine: tuple[float, float, float]
    fov_fine: tuple[float, float, float]


def _plan(phantom: Phantom, sequence: BuiltSequence, scanner: Scanner, *, steady_state: bool) -> _Plan:
    """Read one sequence's readouts, check the grid and memory, and run its contrast (phase graphs)."""
    protocol: Any = sequence.protocol  # any protocol with fov_m, matrix (and slice_thickness_m in 2D)
    cartesian = getattr(sequence, "trajectory", "cartesian") == "cartesian"
    n = int(protocol.matrix)
    fine_shape: tuple[int, int, int] = (int(phantom.shape[0]), int(phantom.shape[1]), int(phantom.shape[2]))
    n_z_fine = fine_shape[0]
    coarse_shape = (n_z_fine, n, n)
    fov_fine = [abs(float(np.linalg.norm(phantom.affine[:3, a]))) * fine_shape[a] for a in range(3)]
    _check_grid(phantom, protocol, scanner, fine_shape, fov_fine, cartesian=cartesian)
    timeline, k_samples, n_ro, dwell, offsets = _readouts(sequence, n, fine_shape, fov_fine, cartesian=cartesian)
    slice_thickness = protocol.slice_thickness_m or 0.0
    if n_z_fine == 1 and slice_thickness <= 0:
        slice_thickness = abs(float(np.linalg.norm(phantom.affine[:3, 0])))
    fine_size = int(np.prod(fine_shape))
    coarse_size = int(np.prod(coarse_shape))
    sens_bytes = 8.0 * scanner.receive.n_coils * fine_size
    check_memory(
        4 * sens_bytes + 16.0 * scanner.receive.n_coils * timeline.n_adc * n_ro,
        what=f"the fast engine's {scanner.receive.n_coils}-coil k-space of a {fine_shape} grid",
        hint="use fewer coils or a coarser phantom grid",
    )
    groups, tau = contrast_groups(phantom, timeline, scanner.b0_t, steady_state=steady_state)
    tau_samples, tau0 = _sample_times(timeline, tau, k_samples, n=n, n_z=n_z_fine, n_ro=n_ro, dwell=dwell)
    voxel_mm3 = float(np.prod([fov_fine[1] / n, fov_fine[2] / n])) * 1e9
    voxel_mm3 *= slice_thickness if n_z_fine == 1 else fov_fine[0] / coarse_shape[0]
    scale = voxel_mm3 * np.sqrt(coarse_size / fine_size)
    voxel_fine = (slice_thickness, fov_fine[1] / fine_shape[1], fov_fine[2] / fine_shape[2])
    return _Plan(
        sequence=sequence, cartesian=cartesian, timeline=timeline, k_samples=k_samples, offsets=offsets, n_ro=n_ro,
        dwell=dwell,
        fine_shape=fine_shape, coarse_shape=coarse_shape, slice_thickness=slice_thickness, groups=groups,
        tau_samples=tau_samples, tau=tau, tau0=tau0, scale=scale, voxel_fine=voxel_fine,
        fov_fine=(fov_fine[0], fov_fine[1], fov_fine[2]),
    )  # fmt: skip


def _same_optional(u: NDArray[Any] | None, v: NDArray[Any] | None) -> bool:
    """Both None, or arrays equal element by element."""
    if u is None or v is None:
        return u is None and v is None
    return bool(np.array_equal(u, v))


TAU0_TOLERANCE_S = 1e-12
"""Largest difference of k-space-centre times [s] for which two sequences share one encoding (round-off of the
sum of block durations; a phase error of 2 pi x 1 kHz x 1e-12 s is far below single precision)."""


def _shared_encodings(plans: list[_Plan]) -> list[list[int]]:
    """Indices of the plans encoded together: Cartesian plans whose projector and off-resonance reference agree
    (grid, matrix, readout length, voxel scale, ``tau0``, groups with the same maps, spectra and B1+ bins); the
    rest alone."""

    def compatible(a: _Plan, b: _Plan) -> bool:
        same_encoding = (a.fine_shape, a.coarse_shape, a.n_ro, a.scale, a.voxel_fine) == (
            b.fine_shape, b.coarse_shape, b.n_ro, b.scale, b.voxel_fine,
        ) and abs(a.tau0 - b.tau0) <= TAU0_TOLERANCE_S  # fmt: skip
        if not (a.cartesian and b.cartesian and same_encoding and len(a.groups) == len(b.groups)):
            return False
        for g, h in zip(a.groups, b.groups, strict=True):
            if (g.peaks_hz, g.peak_amplitudes) != (h.peaks_hz, h.peak_amplitudes) or g.maps.shape != h.maps.shape:
                return False
            if g.amplitudes.shape[1] != h.amplitudes.shape[1] or not np.array_equal(g.maps, h.maps):
                return False
            if not (
                _same_optional(g.b1_bin, h.b1_bin)
                and _same_optional(g.b1_weight, h.b1_weight)
                and _same_optional(g.decay_per_s, h.decay_per_s)
            ):
                return False
        return True

    buckets: list[list[int]] = []
    for i, plan in enumerate(plans):
        bucket = next((b for b in buckets if compatible(plans[b[0]], plan)), None)
        if bucket is None:
            buckets.append([i])
        else:
            bucket.append(i)
    return buckets


def _encode_together(
    plans: list[_Plan], sens: NDArray[np.complexfloating] | None, offset_hz: NDArray[np.float64]
) -> list[NDArray[np.complex128]]:
    """Every readout of each plan ``(coil, n_adc, samples)``, one shared encoding for all of them (see
    :func:`_shared_encodings`, which guarantees they share grid, groups and ``tau0``)."""
    assert sens is not None
    first = plans[0]
    if len(plans) == 1:
        k2k1 = (first.timeline.adc_k2, first.timeline.adc_k1)
        groups, tau_samples, tau, offsets = first.groups, first.tau_samples, first.tau, first.offsets
    else:
        k2k1 = (
            np.concatenate([p.timeline.adc_k2 for p in plans]),
            np.concatenate([p.timeline.adc_k1 for p in plans]),
        )
        groups = [
            dataclasses.replace(g, amplitudes=np.concatenate([p.groups[j].amplitudes for p in plans], axis=0))
            for j, g in enumerate(first.groups)
        ]
        tau_samples = np.concatenate([p.tau_samples for p in plans], axis=0)
        tau = np.concatenate([p.tau for p in plans])
        offsets = None if first.offsets is None else np.concatenate([p.offsets for p in plans if p.offsets is not None])
    spacing = tuple(f / s for f, s in zip(first.fov_fine, first.fine_shape, strict=True))
    project = _projector(
        k2k1, first.k_samples, first.fine_shape, first.coarse_shape, sens, voxel_fine=first.voxel_fine,
        offsets_m=offsets, spacing_m=(spacing[0], spacing[1], spacing[2]),
    )  # fmt: skip
    lines = _encode(groups, sens, project, tau_samples, first.tau0, offset_hz, scale=first.scale, tau_centre=tau)
    bounds = np.cumsum([0, *(p.timeline.n_adc for p in plans)])
    return [lines[:, bounds[i] : bounds[i + 1]] for i in range(len(plans))]


def _finish(
    plan: _Plan,
    lines: NDArray[np.complex128],
    phantom: Phantom,
    scanner: Scanner,
    *,
    noise: bool,
    rng: np.random.Generator,
) -> RawData:
    """Package one plan's readouts as raw data: the Cartesian grid (averages averaged), thermal noise, header."""
    sequence, timeline, coarse_shape = plan.sequence, plan.timeline, plan.coarse_shape
    if not plan.cartesian:
        return _non_cartesian_raw(
            lines, plan.k_samples, phantom, sequence, scanner, timeline, noise=noise, rng=rng, dwell=plan.dwell,
            coarse_shape=coarse_shape, fine_shape=plan.fine_shape, slice_thickness=plan.slice_thickness,
        )  # fmt: skip
    k2, k1 = timeline.adc_k2, timeline.adc_k1
    n_coils = lines.shape[0]
    kspace = np.zeros((n_coils, *coarse_shape), dtype=np.complex128)
    counts = np.zeros(coarse_shape[:2], dtype=np.int64)
    np.add.at(counts, (k2, k1), 1)
    for r in range(timeline.n_adc):
        kspace[:, k2[r], k1[r], :] += lines[:, r, :]
    acquired_mask = counts > 0
    kspace[:, acquired_mask, :] /= counts[acquired_mask][np.newaxis, :, np.newaxis]

    n_avg = sequence.protocol.n_averages
    noise_scan = None
    if noise:
        std = kspace_noise_std(scanner.b0_t, dwell_s=plan.dwell, n_grid=int(np.prod(coarse_shape)), n_averages=n_avg)
        kspace, noise_scan = add_thermal_noise(kspace, scanner.receive.noise_covariance, std, rng)
    sampling = recorded_sampling(sequence, acquired_mask)
    acquired: NDArray[np.complex64] = np.where(sampling.mask[np.newaxis], kspace, 0).astype(np.complex64)
    header = _header(
        sequence, scanner, phantom, plan.fine_shape, coarse_shape, dwell=plan.dwell,
        slice_thickness=plan.slice_thickness, acceleration=sampling.acceleration, trajectory="cartesian",
    )  # fmt: skip
    return RawData(
        kspace=acquired,
        header=header,
        mask=None if sampling.full else sampling.mask,
        calibration=sampling.calibration,
        noise=noise_scan,
    )


def _header(
    sequence: BuiltSequence,
    scanner: Scanner,
    phantom: Phantom,
    fine_shape: tuple[int, int, int],
    coarse_shape: tuple[int, int, int],
    *,
    dwell: float,
    slice_thickness: float,
    acceleration: float,
    trajectory: Literal["cartesian", "radial", "spiral", "other"],
) -> RawHeader:
    """The acquisition header of a simulated scan."""
    n_z_fine = fine_shape[0]
    fov_z = abs(float(np.linalg.norm(phantom.affine[:3, 0]))) * n_z_fine
    return acquisition_header(
        sequence, scanner, phantom, fine_shape, coarse_shape, slice_thickness_m=slice_thickness, fov_z_m=fov_z,
        readout_dwell_s=dwell, pixel_bandwidth_hz=1.0 / (dwell * coarse_shape[-1]),
        n_averages=sequence.protocol.n_averages, acceleration=acceleration,
        scan_time_s=sequence.duration_s, trajectory=trajectory, engine="fast",
    )  # fmt: skip


def _trajectory_kind(sequence: BuiltSequence) -> Literal["radial", "spiral", "other"]:
    """The header's trajectory label of a non-Cartesian sequence."""
    kind = getattr(sequence, "trajectory", "other")
    return "radial" if kind == "radial" else "spiral" if kind == "spiral" else "other"


def _non_cartesian_raw(
    lines: NDArray[np.complex128],
    k_samples: NDArray[np.float64] | None,
    phantom: Phantom,
    sequence: BuiltSequence,
    scanner: Scanner,
    timeline: Timeline,
    *,
    noise: bool,
    rng: np.random.Generator,
    dwell: float,
    coarse_shape: tuple[int, int, int],
    fine_shape: tuple[int, int, int],
    slice_thickness: float,
) -> RawData:
    """Package non-Cartesian readouts ``(coil, n_adc, samples)`` with their trajectory and density compensation."""
    from hifield.data import Trajectory

    assert k_samples is not None
    protocol: Any = sequence.protocol
    n = coarse_shape[-1]
    kspace = lines[:, np.newaxis]  # (coil, 1, n_adc, samples)
    noise_scan = None
    if noise:
        std = kspace_noise_std(
            scanner.b0_t,
            dwell_s=dwell,
            n_grid=int(np.prod(coarse_shape)),
            n_averages=protocol.n_averages,
        )
        kspace, noise_scan = add_thermal_noise(kspace, scanner.receive.noise_covariance, std, rng)
    density = density_weights(k_samples, matrix=n, fov_m=float(protocol.fov_m), slice_thickness_m=slice_thickness)
    # acceleration: Nyquist spokes (pi / 2 x matrix) or interleaves needed over those played
    nyquist = protocol.nyquist_readouts
    acceleration = max(nyquist / max(timeline.n_adc, 1), 1.0)
    header = _header(
        sequence, scanner, phantom, fine_shape, coarse_shape, dwell=dwell, slice_thickness=slice_thickness,
        acceleration=acceleration, trajectory=_trajectory_kind(sequence),
    )  # fmt: skip
    return RawData(
        kspace=kspace.astype(np.complex64),
        header=header,
        trajectory=Trajectory(kspace_m=k_samples, density=density),
        noise=noise_scan,
    )
