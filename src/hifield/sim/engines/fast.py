"""The ``fast`` engine: per-voxel steady-state echo signals from signal equations, then Fourier encoding by FFT.

Model (valid for the Cartesian steady-state sequences it accepts):

1. Each tissue's echo is the steady state of the RF-spoiled gradient echo, computed by the extended phase graph of
   the real excitation train with the sequence's quadratic phase increment (non-ideal spoiling included: it
   differs from the Ernst equation by a few per cent for long-T2 tissue). The approach to steady state is not
   modelled: the engine assumes the acquisition starts in steady state, as after preparation (dummy) scans; the
   ``bloch`` engine plays the sequence as written, transients included. With a B1+ map (flip angle varying per
   voxel) the engine uses the ideally spoiled steady state per voxel, the Ernst equation
   ``S = PD sin(a) (1 - E1) / (1 - E1 cos(a)) exp(-TE / T2*)``.
2. Voxel signals are sums over partial-volume tissue fractions, grouped by chemical-shift spectrum (water; the
   multi-peak fat model). Each group's image is weighted by every coil's sensitivity and Fourier transformed on
   the phantom's finer grid; the k-space is cropped to the protocol's matrix (the object is sampled more finely than
   it is reconstructed, which avoids the "inverse crime" of simulating and reconstructing on one grid).
3. Off-resonance: each voxel's B0 offset and each chemical-shift peak act at the true sample times
   ``TE + (n - N/2) dwell`` of the readout (B0 maps by frequency segments with linear interpolation, chemical
   shift exactly), so off-resonant spins are displaced by ``df / (bandwidth per pixel)`` pixels along x and carry
   the phase ``-2 pi df TE``, as on a real scanner. A B1+ map on the phantom scales the flip angle per voxel.
4. Thermal noise, correlated by the array's noise covariance (see ``hifield.sim.noise``), and a noise scan.

Sign convention (the physical one for protons, gamma > 0: transverse magnetisation precesses as
``exp(-i gamma B t)``): the signal is ``s(t) = sum_r m(r) exp(-i 2 pi (k(t) . r + df(r) t))``. Spins with a positive
frequency offset ``df`` therefore appear displaced by ``+df / (bandwidth per pixel)`` pixels along the readout
(+x) and carry the phase ``-2 pi df TE``; fat (``df < 0``) moves towards -x. The Bloch engine and the tissue
library (fat at -3.4 ppm, -434 Hz at 3 T) use the same convention.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from hifield.data import RawData, RawHeader
from hifield.errors import ConfigError, SequenceError
from hifield.sim.noise import correlated_noise, kspace_noise_std
from hifield.units import GAMMA_BAR_HZ_PER_T

if TYPE_CHECKING:
    from hifield.hardware import Scanner
    from hifield.phantom import Phantom
    from hifield.sequence import BuiltSequence

NOISE_SCAN_SAMPLES = 256
"""Samples per coil in the noise scan (no RF, receiver on)."""

STEADY_STATE_EXCITATIONS = 300
"""Shortest excitation train run through the EPG to reach the RF-spoiled steady state."""


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


def _require_spoiled_gre(sequence: BuiltSequence) -> None:
    """Refuse, in one line, sequences this engine cannot model."""
    kind = getattr(sequence, "scanning_sequence", "GR")
    if kind != "GR" or getattr(sequence, "trajectory", "cartesian") != "cartesian":
        raise SequenceError(
            f"the fast engine models Cartesian spoiled gradient echoes only; sequence {sequence.protocol.name!r} "
            f"({kind}) needs another engine, e.g. --engine bloch"
        )


def _echo_train(
    sequence: BuiltSequence, t1_s: float, t2_s: float, t2star_s: float, n_excitations: int
) -> NDArray[np.complex128]:
    """Echo of every excitation of an RF-spoiled GRE train (EPG with the sequence's quadratic RF phase), per unit M0.

    Includes the approach to steady state from full relaxation and the non-ideal spoiling of a finite phase
    increment; the T2' part of T2* multiplies as ``exp(-TE (1/T2* - 1/T2))``. The train is rotated so that its
    steady state is real and positive (the receiver follows the RF phase).
    """
    from hifield.sim.epg import epg_spoiled_gre

    increment = float(getattr(sequence.protocol, "rf_spoiling_increment_deg", 117.0))
    phases = np.radians((increment * np.arange(n_excitations) * (np.arange(n_excitations) + 1) / 2.0) % 360.0)
    echoes = epg_spoiled_gre(
        flip_angle_rad=sequence.flip_angle_rad,
        tr_s=sequence.tr_s,
        te_s=sequence.te_s,
        t1_s=t1_s,
        t2_s=t2_s,
        rf_phases_rad=phases,
        n_states=min(n_excitations + 2, 400),
    )
    r2prime = max(1.0 / t2star_s - 1.0 / t2_s, 0.0)
    echoes = echoes * np.exp(-sequence.te_s * r2prime)
    final = echoes[-1]
    return echoes * (np.conj(final) / abs(final)) if abs(final) > 0 else echoes


def _frequency_segments(offset_hz: NDArray[np.float64], step_hz: float) -> list[tuple[float, NDArray[np.float64]]]:
    """Split a frequency map into segments with linear-interpolation weights (time-segmented off-resonance).

    Returns ``(f_j, w_j)`` pairs with ``sum_j w_j = 1`` per voxel and ``sum_j w_j f_j = f``; the readout phase
    ``exp(i 2 pi f t)`` is then approximated by ``sum_j w_j exp(i 2 pi f_j t)`` with an error below
    ``(pi step t)^2 / 2``.
    """
    if not np.any(offset_hz):
        return [(0.0, np.ones_like(offset_hz))]
    low = int(np.floor(offset_hz.min() / step_hz))
    high = int(np.ceil(offset_hz.max() / step_hz))
    segments = []
    for j in range(low, high + 1):
        weight = np.clip(1.0 - np.abs(offset_hz / step_hz - j), 0.0, None)
        if np.any(weight):
            segments.append((j * step_hz, weight))
    return segments


def _fine_to_coarse_affine(
    fine_affine: NDArray[np.float64], fine_shape: tuple[int, int, int], coarse_shape: tuple[int, int, int]
) -> NDArray[np.float64]:
    """Affine of the coarse grid whose centre voxel (n // 2) sits where the fine grid's centre voxel sits."""
    scale = np.array([f / c for f, c in zip(fine_shape, coarse_shape, strict=True)], dtype=np.float64)
    coarse = fine_affine.copy()
    coarse[:3, :3] = fine_affine[:3, :3] * scale[np.newaxis, :]
    centre_fine = fine_affine @ np.array([fine_shape[0] // 2, fine_shape[1] // 2, fine_shape[2] // 2, 1.0])
    coarse[:3, 3] = centre_fine[:3] - coarse[:3, :3] @ np.array([c // 2 for c in coarse_shape], dtype=np.float64)
    return coarse


def _crop_slices(fine: tuple[int, ...], coarse: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(slice(f // 2 - c // 2, f // 2 - c // 2 + c) for f, c in zip(fine, coarse, strict=True))


def simulate_fast(
    phantom: Phantom,
    sequence: BuiltSequence,
    scanner: Scanner,
    *,
    noise: bool = True,
    rng: np.random.Generator,
) -> RawData:
    """Simulate a Cartesian spoiled gradient-echo acquisition with the signal-model engine.

    Parameters
    ----------
    phantom
        Digital object at the scanner's field; its grid must cover the protocol's field of view in-plane with an
        integer oversampling (e.g. 512 x 512 voxels for a 256 x 256 matrix over the same FOV).
    sequence
        A built Cartesian gradient-echo sequence; only its ``phase_encode_lines`` are acquired.
    scanner
        Receive array (sensitivities, noise covariance) and field.
    noise
        Add thermal noise and a noise scan.
    rng
        Random generator for the noise.

    Returns
    -------
    RawData
        k-space ``(coil, 1, k1, k0)`` for a 2D slice (``(coil, k2, k1, k0)`` for 3D), zero where not acquired.
    """
    _require_spoiled_gre(sequence)
    protocol: Any = sequence.protocol  # any Cartesian protocol with fov_m, matrix, slice_thickness_m
    n = int(protocol.matrix)
    fine_shape: tuple[int, int, int] = (int(phantom.shape[0]), int(phantom.shape[1]), int(phantom.shape[2]))
    n_z_fine = fine_shape[0]
    coarse_shape = (n_z_fine, n, n)
    fov_fine = [abs(float(np.linalg.norm(phantom.affine[:3, a]))) * fine_shape[a] for a in range(3)]
    for axis, label in ((1, "y"), (2, "x")):
        ratio = fine_shape[axis] / n
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-6 or abs(fov_fine[axis] - protocol.fov_m) > 1e-6:
            raise ConfigError(
                f"phantom grid ({fine_shape[axis]} voxels over {fov_fine[axis] * 1e3:.1f} mm along {label}) must cover "
                f"the protocol FOV of {protocol.fov_m * 1e3:.1f} mm with an integer multiple of its {n} voxels; "
                f"make the phantom with the same FOV and matrix x oversampling"
            )
    if abs(phantom.b0_t - scanner.b0_t) > 1e-6:
        raise ConfigError(
            f"phantom is at {phantom.b0_t:g} T but the scanner at {scanner.b0_t:g} T; "
            f"use phantom.at_field({scanner.b0_t:g})"
        )

    sens = scanner.receive.sensitivities(phantom.affine, fine_shape)  # (coil, z, y, x)
    n_coils = sens.shape[0]
    b0 = scanner.b0_t
    te = sequence.te_s
    dwell = sequence.readout_dwell_s
    # Readout sample times relative to the echo (echo at sample n // 2), along k0.
    t_readout = (np.arange(n) - n // 2) * dwell
    offset_hz = phantom.off_resonance_hz.astype(np.float64)
    offres_phase = np.exp(-2j * np.pi * offset_hz * te)
    # Off-resonance during the readout, by frequency segments fine enough for a phase error below ~1 %.
    readout_s = n * dwell
    segments = _frequency_segments(offset_hz, 0.09 / readout_s)
    flip = sequence.flip_angle_rad * (
        phantom.b1_scale.astype(np.float64) if phantom.b1_scale is not None else np.float64(1.0)
    )

    lines = np.asarray(sequence.phase_encode_lines, dtype=np.int64)
    if lines.size == 0:
        raise SequenceError(f"sequence {protocol.name!r} acquires no phase-encode lines; it has no ADC to simulate")
    # Each tissue's echo is the steady state of the real RF-spoiled train (EPG with the sequence's phase increment),
    # unless a B1+ map makes the flip angle vary per voxel: then the ideally spoiled steady state (Ernst) per voxel.
    use_epg = phantom.b1_scale is None
    n_train = max(int(getattr(sequence, "n_dummy_scans", 0) or 0) + lines.size, STEADY_STATE_EXCITATIONS)

    # Group tissues by chemical-shift spectrum: one FFT per group and frequency segment.
    groups: dict[tuple[tuple[float, ...], tuple[float, ...]], NDArray[np.float64]] = {}
    for index, tissue in enumerate(phantom.tissues):
        if tissue.pd <= 0:
            continue
        key = (tuple(tissue.chemical_shift_ppm), tuple(tissue.peak_amplitudes))
        signal: NDArray[np.float64] | float
        if use_epg:
            signal = float(_echo_train(sequence, tissue.t1_s, tissue.t2_s, tissue.t2star_s, n_train)[-1].real)
        else:
            signal = spoiled_gre_signal(
                tissue.t1_s, tissue.t2star_s, flip_angle_rad=flip, tr_s=sequence.tr_s, te_s=sequence.te_s
            )
        contribution = phantom.fractions[index].astype(np.float64) * tissue.pd * signal
        groups[key] = groups[key] + contribution if key in groups else contribution

    voxel_mm3 = float(np.prod([fov_fine[1] / n, fov_fine[2] / n])) * 1e9
    voxel_mm3 *= float(protocol.slice_thickness_m) if n_z_fine == 1 else fov_fine[0] / coarse_shape[0]
    fine_size = int(np.prod(fine_shape))
    coarse_size = int(np.prod(coarse_shape))
    scale = voxel_mm3 * np.sqrt(coarse_size / fine_size)
    crop = _crop_slices(fine_shape, coarse_shape)
    axes = (-3, -2, -1) if n_z_fine > 1 else (-2, -1)

    kspace = np.zeros((n_coils, *coarse_shape), dtype=np.complex128)
    for (shifts_ppm, amplitudes), magnetisation in groups.items():
        spectrum = np.zeros(n, dtype=np.complex128)
        for shift_ppm, amplitude in zip(shifts_ppm, amplitudes, strict=True):
            df = GAMMA_BAR_HZ_PER_T * b0 * shift_ppm * 1e-6
            spectrum += amplitude * np.exp(-2j * np.pi * df * (te + t_readout))
        for segment_hz, weight in segments:
            image = magnetisation * offres_phase * weight  # (z, y, x)
            coil_images = sens * image[np.newaxis].astype(np.complex64)
            k_fine = scipy.fft.fftshift(
                scipy.fft.fftn(scipy.fft.ifftshift(coil_images, axes=axes), axes=axes, norm="ortho", workers=-1),
                axes=axes,
            )
            k_group = k_fine[(slice(None), *crop)] * scale
            readout_phase = np.exp(-2j * np.pi * segment_hz * t_readout)
            k_group = k_group * (spectrum * readout_phase)[np.newaxis, np.newaxis, np.newaxis, :]
            kspace += k_group

    mask = np.zeros((coarse_shape[0], n, 1), dtype=bool)
    mask[:, lines, :] = True
    n_avg = int(getattr(protocol, "n_averages", 1))
    noise_scan = None
    if noise:
        std = kspace_noise_std(b0, dwell_s=dwell, n_grid=coarse_size, n_averages=n_avg)
        cov = scanner.receive.noise_covariance
        kspace = kspace + correlated_noise(kspace.shape, cov, std, rng)
        noise_scan = correlated_noise((n_coils, NOISE_SCAN_SAMPLES), cov, std, rng)
    acquired: NDArray[np.complex64] = np.where(mask[np.newaxis], kspace, 0).astype(np.complex64)

    full_lines = n
    acceleration = full_lines / lines.size
    coarse_affine = _fine_to_coarse_affine(phantom.affine, fine_shape, coarse_shape)
    if n_z_fine == 1:
        coarse_affine[:3, 0] = (
            coarse_affine[:3, 0]
            / max(float(np.linalg.norm(coarse_affine[:3, 0])), 1e-12)
            * float(protocol.slice_thickness_m)
        )
    header = RawHeader(
        b0_t=b0,
        fov_m=(
            float(protocol.slice_thickness_m) if n_z_fine == 1 else fov_fine[0],
            float(protocol.fov_m),
            float(protocol.fov_m),
        ),
        matrix=coarse_shape,
        te_s=float(sequence.te_s),
        tr_s=float(sequence.tr_s),
        flip_angle_rad=float(sequence.flip_angle_rad),
        slice_thickness_m=float(protocol.slice_thickness_m) if n_z_fine == 1 else None,
        pixel_bandwidth_hz=float(1.0 / (dwell * n)),
        readout_dwell_s=float(dwell),
        n_averages=n_avg,
        acceleration=float(acceleration),
        scan_time_s=float(sequence.duration_s),
        scan_time_full_s=float(sequence.duration_s) * acceleration,
        protocol_name=str(protocol.name),
        sequence_name=str(getattr(sequence, "sequence_name", protocol.name)),
        scanning_sequence=str(getattr(sequence, "scanning_sequence", "GR")),
        sequence_variant=str(getattr(sequence, "sequence_variant", "SP")),
        acquisition_type="2D" if n_z_fine == 1 else "3D",
        trajectory="cartesian",
        affine=tuple(tuple(float(v) for v in row) for row in coarse_affine),
        system_model=scanner.name,
        engine="fast",
    )
    return RawData(
        kspace=acquired,
        header=header,
        mask=None if lines.size == n else mask,
        calibration=None,
        noise=noise_scan,
    )
