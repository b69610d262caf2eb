"""The ``bloch`` engine: isochromat Bloch simulation of any pypulseq sequence on a phantom, with multi-coil receive.

Model
-----
* The sequence is compiled from its pypulseq blocks (:mod:`hifield.sim.engines.bloch_program`): RF shapes on their
  own raster as piecewise-constant rotations (Rodrigues), relaxation by Strang splitting inside pulses and exactly
  between events, gradient areas integrated exactly from the piecewise-linear waveforms, ADC samples at their true
  times ``delay + (n + 1/2) dwell``, RF and ADC phase and frequency offsets (RF spoiling, slice offsets).
* Every phantom voxel carries isochromats spread over a band-limited voxel (:class:`BandVoxel`, the default
  ``BlochOptions.voxel_shape="band"``): a regular grid along the axis the sequence spoils, Kaiser-windowed sinc
  weights over several voxels, so the phantom is read as an object without detail finer than its grid (as the
  ``fast`` engine's FFT and MRzero read it) and every coherence pathway dephased by more than half a cycle per
  voxel cancels. Their number is chosen per tissue from the sequence's dephasing per interval, its length and the
  tissue's T2 (:mod:`hifield.sim.engines.bloch_isochromat_count`); the voxel's encoding response is divided out of
  the k-space. ``"box"`` (uniform over the voxel, on a rank-1 lattice) and ``"sinc"`` remain as options.
* Reversible decay R2' = 1/T2* - 1/T2: by default each tissue's signal is multiplied by ``exp(-R2' |tau|)`` with
  ``tau`` each sample's dephasing time (``BlochOptions.r2prime="echo"``), exact for gradient and spin echoes;
  ``"isochromats"`` gives the isochromats Lorentzian frequency offsets instead (physics-safety.md §3.1).
* Off-resonance: the phantom's B0 map plus each tissue's chemical-shift peaks (fat: its multi-peak spectrum, one
  simulation per peak weighted by its amplitude). B1+ scales every pulse by ``|phantom.b1_scale|`` when the phantom
  has one (1 otherwise; the B1+ phase is not applied).
* 2D: a phantom with one slice (``shape[0] == 1``) is simulated in-plane with ideal slice selection
  (:func:`~hifield.sim.engines.bloch_program.ideal_slice_selection`): every slice-selective pulse acts at its centre
  as the nominal pulse on all spins (of any off-resonance: fat is excited in its own displaced slice), and the
  spins spread along z over the slice thickness, so slice spoilers, crushers and slice-select lobes dephase them
  between pulses. ``BlochOptions(through_slice=n)`` instead spreads them over ``n`` slice thicknesses at their real
  z, so the slice profile of the pulses enters the signal.
* 3D: the phantom is processed in slabs of z planes (coil sensitivities computed per slab) and each tissue's voxels
  in chunks of ``BlochOptions.chunk_voxels`` per kernel call; pulse maps are computed once per class of voxels that
  share them (same off-resonance, B1+ and slab-select coordinate) in groups bounded by
  ``bloch_receive.MAX_TABLE_BYTES``, so memory is bounded by the chunk, not the phantom. The kernel runs the
  isochromats of a voxel as SIMD vectors (:mod:`hifield.sim.engines.bloch_kernel`).
* Receive: ``Σ_spins weight · sens_c(r) · (Mx + i My)`` at each ADC sample, demodulated by the ADC phase
  (``exp(i (-phase_offset + 2π freq_offset t))``, the sense of the RF phase in
  :mod:`~hifield.sim.engines.bloch_program`) and a fixed receiver phase of -90° so that an on-resonance
  excitation with RF phase 0 gives a real positive signal. Signal units follow :mod:`hifield.sim.noise` (image
  value = transverse magnetisation / M0 x voxel volume in mm^3 for an orthonormal FFT reconstruction).

Handedness: protons precess clockwise, ``m = Mx + i My ∝ exp(-i γ ΔB t)``, k-space encoding ``exp(-i 2π k·r)``
with pypulseq's ``k = ∫G dt``; a positive off-resonance therefore moves the object towards +x (readout gradient
positive) and fat (``Δf < 0``) towards -x, by ``Δf / (bandwidth per pixel)`` pixels.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from hifield.data import RawData, RawHeader
from hifield.errors import ConfigError, SequenceError
from hifield.sequence.events import readout_lines
from hifield.sim.engines.acquisition import acquisition_header, check_same_field
from hifield.sim.engines.bloch_isochromats import (
    BandVoxel,
    isochromat_offsets,
    lattice_points,
    lorentzian_offsets,
    voxel_transfer,
)
from hifield.sim.engines.bloch_program import IdealSlicePulses, Program, compile_sequence, ideal_slice_selection
from hifield.sim.engines.bloch_receive import MAX_TABLE_BYTES, N_BLOCKS, RECEIVER_PHASE, bloch_signal
from hifield.sim.noise import add_thermal_noise, kspace_noise_std
from hifield.sim.pattern import recorded_sampling
from hifield.units import GAMMA_BAR_HZ_PER_T

if TYPE_CHECKING:
    from hifield.hardware import Scanner
    from hifield.phantom import Phantom
    from hifield.sequence import BuiltSequence

__all__ = [
    "N_BLOCKS",
    "RECEIVER_PHASE",
    "BlochOptions",
    "bloch_signal",
    "isochromat_counts",
    "isochromat_offsets",
    "lattice_points",
    "lorentzian_offsets",
    "simulate_bloch",
    "voxel_transfer",
]

Tissue = tuple[int, Any, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], Any, Any]
"""One simulated tissue: phantom index, tissue, isochromat positions, frequencies, weights, peaks (ppm), amplitudes."""


@dataclass(frozen=True)
class BlochOptions:
    """Options of the ``bloch`` engine."""

    n_isochromats: int | None = None
    """Isochromats per phantom voxel (and per chemical-shift peak); None (default) chooses them per tissue from the
    sequence's spoiler moments, its length and the tissue's T2 (:mod:`hifield.sim.engines.bloch_isochromat_count`),
    and a count below that choice warns (``IsochromatWarning``)."""
    through_slice: float = 0.0
    """For 2D: spread isochromats over this many slice thicknesses along z (0: in-plane at the slice centre); their
    weights are scaled by the same factor, so an ideal rectangular profile of the nominal thickness gives the
    in-plane signal and a real pulse gives its slice-profile-integrated signal."""
    spread_positions: bool = True
    """Spread isochromat positions over the voxel (intravoxel gradient dephasing); False puts them at its centre."""
    voxel_shape: str = "band"
    """Spatial distribution of a voxel's isochromats: ``"band"`` (default: a band-limited voxel designed from the
    sequence, :class:`~hifield.sim.engines.bloch_isochromats.BandVoxel` and
    :func:`~hifield.sim.engines.bloch_isochromat_count.band_voxel`: Kaiser-windowed sinc weights over several
    voxels along the axes the sequence spoils, so pathways dephased by more than half a cycle per voxel cancel as
    they do for the ``fast`` engine and MRzero), ``"box"`` (uniform over the voxel, the former default: a
    piecewise-constant object, whose edges return a few percent of the spoiled pathways when a spoiler leaves a
    non-integer number of cycles per voxel) or ``"sinc"`` (Hann-windowed sinc over four voxels per axis). Either way
    the voxel's encoding response is divided out of the Cartesian k-space, so voxels encode as band-limited samples
    (like the ``fast`` engine's FFT) while their spins still dephase under spoilers."""
    r2prime: str = "echo"
    """How the reversible decay R2' = 1/T2* - 1/T2 enters: ``"echo"`` (default) multiplies each tissue's signal by
    ``exp(-R2' |tau|)``, ``tau`` the dephasing time of each sample (time since excitation, negated by refocusing
    pulses, :func:`~hifield.sim.engines.timeline.dephasing_times`): exact for gradient and spin echoes, whose
    pathways reaching a readout share one dephasing time, and the model of the ``fast`` engine and of EPG.
    ``"isochromats"`` gives each voxel's isochromats Lorentzian frequency offsets instead (any sequence, but its
    quantile sampling is off by a few percent at a thousand isochromats and converges slowly). A sequence without
    an excitation the timeline recognises falls back to ``"isochromats"``."""
    max_fat_peaks: int | None = None
    """Simulate only the strongest peaks of each multi-peak spectrum (None: all), renormalised to the same total."""
    chunk_voxels: int | None = None
    """Phantom voxels per kernel call (None: automatic, at most 2^16 voxels and 2^21 isochromats, fewer with many
    coils). A call's memory grows with it; the result does not depend on it beyond rounding (sum order)."""

    def __post_init__(self) -> None:
        if self.r2prime not in ("echo", "isochromats"):
            raise ConfigError(f"r2prime = {self.r2prime!r} is not one of 'echo', 'isochromats'")
        if self.chunk_voxels is not None and self.chunk_voxels < 1:
            raise ConfigError(f"chunk_voxels = {self.chunk_voxels} must be at least 1 (or None for automatic)")


@dataclass(frozen=True)
class _Grids:
    """The phantom's fine grid and the protocol's coarse grid of one simulation."""

    n: int
    """Protocol matrix (in-plane)."""
    fine_shape: tuple[int, int, int]
    """Phantom grid ``(z, y, x)``."""
    coarse_shape: tuple[int, int, int]
    """k-space grid ``(k2, k1, k0)``."""
    voxel: tuple[float, float, float]
    """Phantom voxel size [m] (z, y, x)."""
    fov_fine: tuple[float, float, float]
    """Extent of the phantom grid [m] (z, y, x)."""
    fov_m: float
    """Protocol field of view [m] (in-plane)."""
    slice_thickness: float
    """Slice thickness [m] of a 2D slice (the phantom's own when the protocol has none; 0 in 3D)."""

    @property
    def two_d(self) -> bool:
        """A single-slice phantom, simulated as a 2D slice."""
        return self.fine_shape[0] == 1


def _grids(phantom: Phantom, protocol: Any, scanner: Scanner) -> _Grids:
    """The grids of ``protocol`` on ``phantom``, after checking that both are at the scanner's field."""
    check_same_field(phantom, scanner)
    n = int(protocol.matrix)
    fine_shape = (int(phantom.shape[0]), int(phantom.shape[1]), int(phantom.shape[2]))
    voxel = phantom.voxel_size_m
    slice_thickness = protocol.slice_thickness_m or 0.0  # None for 3D protocols: they have a slab instead
    if fine_shape[0] == 1 and slice_thickness <= 0:
        slice_thickness = abs(float(np.linalg.norm(phantom.affine[:3, 0])))  # the phantom's own slice
    return _Grids(
        n=n,
        fine_shape=fine_shape,
        coarse_shape=(fine_shape[0], n, n),
        voxel=(voxel[0], voxel[1], voxel[2]),
        fov_fine=(voxel[0] * fine_shape[0], voxel[1] * fine_shape[1], voxel[2] * fine_shape[2]),
        fov_m=float(protocol.fov_m),
        slice_thickness=slice_thickness,
    )


@dataclass(frozen=True)
class _VoxelModel:
    """The isochromats of every tissue: their count (per phantom tissue index) and the band-limited design."""

    counts: dict[int, int]
    band: BandVoxel | None

    @property
    def largest(self) -> int:
        """The largest count of any tissue (sizes the kernel's chunks)."""
        return max(self.counts.values(), default=1)


def _iso_voxel(opts: BlochOptions, grids: _Grids) -> tuple[float, float, float]:
    """The extent [m] (z, y, x) the isochromats of a voxel spread over. z in 2D: the through-slice spread when asked
    for, else the slice thickness as the voxel size along z of the in-plane model (its spins dephase along z under
    slice spoilers and crushers; see :func:`~hifield.sim.engines.bloch_program.ideal_slice_selection`)."""
    if grids.two_d:
        z = opts.through_slice * grids.slice_thickness if opts.through_slice > 0 else grids.slice_thickness
    else:
        z = grids.voxel[0]
    return (z, grids.voxel[1], grids.voxel[2])


def _choose_isochromats(opts: BlochOptions, program: Program, phantom: Phantom, grids: _Grids) -> _VoxelModel:
    """The isochromat count of every tissue and the voxel design (:mod:`hifield.sim.engines.bloch_isochromat_count`).

    A band-limited voxel (the default) takes each tissue's own T2, so short-T2 tissues need fewer isochromats than
    CSF; the other shapes take one count for all, from the longest T2 that holds a share of the proton density. A
    count given in the options applies to every tissue and warns where it is below a tissue's need.
    """
    from hifield.sim.engines.bloch_isochromat_count import (
        band_isochromats_needed,
        band_voxel,
        isochromats_needed,
        phantom_t2_s,
        resolve_isochromats,
    )

    iso_voxel = _iso_voxel(opts, grids) if opts.spread_positions else (0.0, 0.0, 0.0)
    present = [i for i, t in enumerate(phantom.tissues) if t.pd > 0 and np.any(phantom.fractions[i] > 0)]
    if opts.voxel_shape != "band":
        need = isochromats_needed(program, iso_voxel, phantom_t2_s(phantom.tissues, phantom.fractions))
        count = resolve_isochromats(opts.n_isochromats, need)
        return _VoxelModel({i: count for i in present}, None)
    coarse = grids.coarse_shape
    kmax = (
        0.5 * coarse[0] / grids.fine_shape[0],
        0.5 * coarse[1] / grids.fine_shape[1],
        0.5 * coarse[2] / grids.fine_shape[2],
    )
    band = band_voxel(program, iso_voxel, kmax)
    needs = {i: band_isochromats_needed(program, iso_voxel, band, phantom.tissues[i].t2_s, kmax) for i in present}
    if opts.n_isochromats is None:
        return _VoxelModel({i: need.n_isochromats for i, need in needs.items()}, band)
    if needs:
        resolve_isochromats(opts.n_isochromats, max(needs.values(), key=lambda need: need.n_isochromats))
    return _VoxelModel({i: int(opts.n_isochromats) for i in present}, band)


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


def _check_memory(grids: _Grids, n_coils: int, chunk: int, program: Program) -> None:
    """Refuse a simulation whose working memory (one slab's sensitivities, accumulators, a chunk, tables) exceeds
    what the machine has."""
    from hifield.phantom.phantom import check_memory

    fine_shape = grids.fine_shape
    check_memory(
        min(int(np.prod(fine_shape)), max(chunk, fine_shape[1] * fine_shape[2])) * n_coils * 8.0  # one slab's maps
        + N_BLOCKS * n_coils * program.n_samples * 16.0  # per-block accumulators
        + chunk * (n_coils * 16.0 + 64.0)  # one chunk of voxels
        + 2.0 * MAX_TABLE_BYTES,  # pulse maps of one group of voxel classes, free-precession table
        what=f"the bloch simulation of a {fine_shape} phantom with {n_coils} coils",
    )


def _volume_weight(grids: _Grids, opts: BlochOptions) -> float:
    """Signal weight of a fine voxel: the coarse voxel's volume [mm^3] on the orthonormal FFT scale."""
    n, fine_shape, coarse_shape = grids.n, grids.fine_shape, grids.coarse_shape
    voxel_mm3 = float(grids.fov_m / n) ** 2 * 1e9
    voxel_mm3 *= grids.slice_thickness if grids.two_d else grids.fov_fine[0] / coarse_shape[0]
    weight = voxel_mm3 * np.sqrt(int(np.prod(coarse_shape))) / int(np.prod(fine_shape))
    if grids.two_d and opts.through_slice > 0:
        weight *= opts.through_slice  # isochromats spread over through_slice x the slice thickness
    return float(weight)


def _r2prime(tissue: Any) -> float:
    """R2' = 1/T2* - 1/T2 [1/s] of a tissue (0 when T2* is not shorter than T2)."""
    return 1.0 / tissue.t2star_s - 1.0 / tissue.t2_s if tissue.t2star_s < tissue.t2_s else 0.0


def _sample_dephasing_times(seq: Any, program: Program) -> NDArray[np.float64] | None:
    """Dephasing time ``tau`` of every ADC sample [s] (:func:`~hifield.sim.engines.timeline.dephasing_times`), or
    None when the sequence's timeline cannot be read (no excitation recognised) or does not match the program."""
    from hifield.sim.engines.timeline import dephasing_times, read_timeline

    try:
        timeline = read_timeline(seq, matrix=1, fov_m=1.0, cartesian=False)
    except SequenceError:
        return None
    if timeline.n_adc != program.n_adc:
        return None
    centre = dephasing_times(timeline)
    owner = np.repeat(np.arange(program.n_adc), program.adc_length)
    return np.asarray(centre[owner] + (program.sample_time - timeline.adc_time_s[owner]), dtype=np.float64)


def _tissue_isochromats(
    phantom: Phantom, grids: _Grids, opts: BlochOptions, model: _VoxelModel
) -> tuple[list[Tissue], list[tuple[float, NDArray[np.float64], NDArray[np.float64]]]]:
    """Per present tissue: its isochromats and chemical-shift peaks; and per tissue ``(signal share, isochromat
    positions, weights)`` for the voxel response."""
    two_d = grids.two_d
    iso_voxel = _iso_voxel(opts, grids)
    tissues: list[Tissue] = []
    transfers: list[tuple[float, NDArray[np.float64], NDArray[np.float64]]] = []
    for index, tissue in enumerate(phantom.tissues):
        n_voxels = int(np.count_nonzero(phantom.fractions[index] > 0))
        if tissue.pd <= 0 or n_voxels == 0:
            continue
        r2p = _r2prime(tissue) if opts.r2prime == "isochromats" else 0.0
        iso_pos, iso_dw, iso_weights = isochromat_offsets(
            model.counts[index],
            iso_voxel,
            r2p,
            spread_positions=opts.spread_positions,
            voxel_shape=opts.voxel_shape,
            uniform_axes=(two_d and opts.through_slice > 0, False, False),
            band=model.band,
        )
        transfers.append((n_voxels * tissue.pd, iso_pos, iso_weights))
        shifts = np.asarray(tissue.chemical_shift_ppm, dtype=np.float64)
        amps = np.asarray(tissue.peak_amplitudes, dtype=np.float64)
        if opts.max_fat_peaks is not None and shifts.size > opts.max_fat_peaks:
            keep = np.argsort(-amps, kind="stable")[: opts.max_fat_peaks]
            amps_kept = amps[keep] * amps.sum() / amps[keep].sum()
            shifts, amps = shifts[keep], amps_kept
        tissues.append((index, tissue, iso_pos, iso_dw, iso_weights, shifts, amps))
    return tissues, transfers


def _receive(
    program: Program,
    phantom: Phantom,
    scanner: Scanner,
    grids: _Grids,
    tissues: list[Tissue],
    *,
    chunk: int,
    volume_weight: float,
    tau_s: NDArray[np.float64] | None = None,
    ideal: IdealSlicePulses | None = None,
) -> NDArray[np.complex128]:
    """The received signal ``(coil, samples)`` of every tissue, slab by slab and chunk by chunk.

    Slabs of z planes (one slab in 2D): coil sensitivities are computed per slab, so memory is bounded by the chunk
    size rather than the phantom's; within a slab each tissue's voxels go to the kernel in chunks. With ``tau_s``
    (each sample's dephasing time), a tissue's signal decays by ``exp(-R2' |tau|)`` (``BlochOptions.r2prime``).
    ``ideal`` marks the pulses of an in-plane 2D program played as ideal slice selection
    (:func:`~hifield.sim.engines.bloch_program.ideal_slice_selection`).
    """
    fine_shape, voxel = grids.fine_shape, grids.voxel
    # Logical positions of the fine voxels: grid axes, origin at the centre voxel n // 2.
    axes_pos = [(np.arange(fine_shape[a]) - fine_shape[a] // 2) * voxel[a] for a in range(3)]
    if grids.two_d:
        axes_pos[0] = np.zeros(1)
    b1_map = getattr(phantom, "b1_scale", None)
    b0 = scanner.b0_t
    n_y, n_x = fine_shape[1], fine_shape[2]
    planes = max(1, min(fine_shape[0], chunk // (n_y * n_x)))
    signal = np.zeros((int(scanner.receive.n_coils), program.n_samples), dtype=np.complex128)
    for z0 in range(0, fine_shape[0], planes):
        z1 = min(z0 + planes, fine_shape[0])
        slab_affine = np.array(phantom.affine, dtype=np.float64)
        slab_affine[:3, 3] = slab_affine[:3, :3] @ np.array([z0, 0.0, 0.0]) + slab_affine[:3, 3]
        sens_slab = scanner.receive.sensitivities(slab_affine, (z1 - z0, n_y, n_x))
        for index, tissue, iso_pos, iso_dw, iso_weights, shifts, amps in tissues:
            decay = 1.0 if tau_s is None else np.exp(-_r2prime(tissue) * np.abs(tau_s))[np.newaxis, :]
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
                    signal += decay * bloch_signal(
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
                        ideal_pulses=ideal,
                    )
    return signal


def _to_kspace(
    signal: NDArray[np.complex128], program: Program, lines: tuple[NDArray, ...], grids: _Grids, n_ro: int
) -> tuple[NDArray[np.complex128], NDArray[np.bool_], int]:
    """Readouts placed on the Cartesian grid: reversed where flagged, oversampling removed, averages averaged.

    Returns k-space ``(coil, k2, k1, k0)``, the acquired ``(k2, k1)`` lines and the number of averages.
    """
    k1, k2, avg, rev = lines
    n, coarse_shape = grids.n, grids.coarse_shape
    readouts = signal.reshape(signal.shape[0], program.n_adc, n_ro)
    readouts = np.where(rev[np.newaxis, :, np.newaxis], readouts[..., ::-1], readouts)
    readouts = _remove_oversampling(readouts, n)
    n_avg = int(avg.max()) + 1
    kspace = np.zeros((signal.shape[0], n_avg, *coarse_shape), dtype=np.complex128)
    count = np.zeros((n_avg, coarse_shape[0], n), dtype=np.int64)
    for j in range(program.n_adc):
        kspace[:, avg[j], k2[j], k1[j], :] += readouts[:, j, :]
        count[avg[j], k2[j], k1[j]] += 1
    acquired = count.max(axis=0) > 0  # (k2, k1)
    kspace = kspace.sum(axis=1) / np.maximum(count.sum(axis=0), 1)[np.newaxis, :, :, np.newaxis]
    return kspace, acquired, n_avg


def _divide_voxel_response(
    kspace: NDArray[np.complex128],
    grids: _Grids,
    transfers: list[tuple[float, NDArray[np.float64], NDArray[np.float64]]],
) -> NDArray[np.complex128]:
    """Divide out the dominant tissue's voxel encoding response (in-plane; along z too in 3D), so that voxels encode
    as band-limited samples like the fast engine's FFT; the spins still dephase under spoilers."""
    coarse_shape = grids.coarse_shape
    fov_axes = (grids.fov_fine[0], grids.fov_m, grids.fov_m)
    k_axes = [(np.arange(coarse_shape[a]) - coarse_shape[a] // 2) / fov_axes[a] for a in range(3)]
    if grids.two_d:
        k_axes[0] = np.zeros(1)
    _, iso_pos, iso_weights = max(transfers, key=lambda t: t[0])  # the dominant tissue's isochromats
    transfer = voxel_transfer((k_axes[0], k_axes[1], k_axes[2]), iso_pos, iso_weights)
    return kspace / transfer[np.newaxis]


def _header(
    sequence: BuiltSequence,
    scanner: Scanner,
    phantom: Phantom,
    grids: _Grids,
    program: Program,
    *,
    n_ro: int,
    n_avg: int,
    acceleration: float,
) -> RawHeader:
    """The acquisition header of a Bloch-simulated scan."""
    dwell = float(sequence.readout_dwell_s)
    return acquisition_header(
        sequence, scanner, phantom, grids.fine_shape, grids.coarse_shape, slice_thickness_m=grids.slice_thickness,
        fov_z_m=grids.fov_fine[0], readout_dwell_s=dwell, pixel_bandwidth_hz=1.0 / (dwell * n_ro), n_averages=n_avg,
        acceleration=acceleration, scan_time_s=program.duration_s, trajectory="cartesian", engine="bloch",
    )  # fmt: skip


def _program(sequence: BuiltSequence, grids: _Grids, opts: BlochOptions) -> tuple[Program, IdealSlicePulses | None]:
    """The compiled sequence; for a 2D slice simulated in-plane, with ideal slice selection."""
    program = compile_sequence(sequence.seq)
    if grids.two_d and opts.through_slice == 0:  # in-plane: ideal slice selection, spins dephase along z
        return ideal_slice_selection(program)
    return program, None


def isochromat_counts(
    phantom: Phantom, sequence: BuiltSequence, scanner: Scanner, options: BlochOptions | None = None
) -> dict[str, int]:
    """Isochromats per voxel that :func:`simulate_bloch` uses for each tissue of ``phantom`` (by tissue name).

    Examples
    --------
    >>> import hifield as hf
    >>> from hifield.phantom import make_phantom
    >>> from hifield.sequence import GreProtocol
    >>> scanner = hf.Scanner.preset("3T", n_coils=1)
    >>> built = GreProtocol(matrix=16, fov_m=0.2).build(scanner)
    >>> counts = isochromat_counts(make_phantom("shepp-logan", b0_t=3.0, matrix=16, fov_m=0.2), built, scanner)
    >>> counts["csf"] >= counts["wm"] >= 64
    True
    """
    opts = options if options is not None else BlochOptions()
    grids = _grids(phantom, sequence.protocol, scanner)
    program, _ = _program(sequence, grids, opts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _choose_isochromats(opts, program, phantom, grids)
    return {phantom.tissues[i].name: count for i, count in model.counts.items()}


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
    grids = _grids(phantom, protocol, scanner)
    n, coarse_shape = grids.n, grids.coarse_shape
    program, ideal = _program(sequence, grids, opts)
    lines = _adc_lines(sequence.seq, program, n, grids.fov_m, coarse_shape[0], grids.fov_fine[0])
    model = _choose_isochromats(opts, program, phantom, grids)
    n_ro = int(program.adc_length[0])
    if np.any(program.adc_length != n_ro):
        raise SequenceError("the bloch engine needs every ADC of a Cartesian sequence to have the same sample count")
    n_coils = int(scanner.receive.n_coils)
    chunk = _spin_chunk(n_coils, model.largest) if opts.chunk_voxels is None else int(opts.chunk_voxels)
    _check_memory(grids, n_coils, chunk, program)

    tau_s = _sample_dephasing_times(sequence.seq, program) if opts.r2prime == "echo" else None
    if opts.r2prime == "echo" and tau_s is None:
        opts = dataclasses.replace(opts, r2prime="isochromats")
    tissues, transfers = _tissue_isochromats(phantom, grids, opts, model)
    signal = _receive(
        program, phantom, scanner, grids, tissues, chunk=chunk, volume_weight=_volume_weight(grids, opts), tau_s=tau_s,
        ideal=ideal,
    )  # fmt: skip
    kspace, acquired, n_avg = _to_kspace(signal, program, lines, grids, n_ro)
    if opts.spread_positions and model.largest > 1 and transfers:
        kspace = _divide_voxel_response(kspace, grids, transfers)
    noise_scan = None
    if noise:
        dwell = float(sequence.readout_dwell_s)
        std = kspace_noise_std(
            scanner.b0_t, dwell_s=dwell * n_ro / n, n_grid=int(np.prod(coarse_shape)), n_averages=n_avg
        )
        kspace, noise_scan = add_thermal_noise(kspace, scanner.receive.noise_covariance, std, rng)
    sampling = recorded_sampling(sequence, acquired)
    mask = np.broadcast_to(sampling.mask, coarse_shape)
    kspace_out: NDArray[np.complex64] = np.where(mask[np.newaxis], kspace, 0).astype(np.complex64)
    header = _header(
        sequence, scanner, phantom, grids, program, n_ro=n_ro, n_avg=n_avg, acceleration=sampling.acceleration
    )
    return RawData(
        kspace=kspace_out,
        header=header,
        mask=None if sampling.full else np.ascontiguousarray(mask),
        calibration=sampling.calibration,
        noise=noise_scan,
    )
