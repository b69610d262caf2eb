"""The ``fast`` signal-model engine against analytic signal equations and chemical-shift / off-resonance physics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.fft

import hifield as hf
from hifield.data.geometry import centred_affine
from hifield.errors import ConfigError
from hifield.phantom import Phantom, tissue_properties
from hifield.sim.engines.fast import spoiled_gre_signal
from hifield.units import GAMMA_BAR_HZ_PER_T

N = 64
FOV = 0.24


@pytest.fixture(scope="module")
def scanner() -> hf.Scanner:
    return hf.Scanner.preset("3T", n_coils=8)


def disk_phantom(
    tissue: str, *, radius_m: float = 0.05, offset_hz: float = 0.0, fat_peaks: str = "six", centre_x_m: float = 0.0
) -> Phantom:
    n_fine = 2 * N
    affine = centred_affine((1, n_fine, n_fine), (0.005, FOV / n_fine, FOV / n_fine))
    coords = (np.arange(n_fine) - n_fine // 2) * FOV / n_fine
    y, x = np.meshgrid(coords, coords, indexing="ij")
    inside = ((x - centre_x_m) ** 2 + y**2 <= radius_m**2).astype(np.float32)
    props = tissue_properties(tissue, 3.0, fat_peaks=fat_peaks)
    return Phantom(
        fractions=inside[np.newaxis, np.newaxis],
        tissues=(props,),
        off_resonance_hz=np.full((1, n_fine, n_fine), offset_hz, dtype=np.float32) * inside[np.newaxis],
        affine=affine,
        b0_t=3.0,
        name=f"{tissue} disk",
    )


def coil_images(raw: hf.RawData) -> np.ndarray:
    k = raw.kspace[:, 0]
    return scipy.fft.fftshift(scipy.fft.ifft2(scipy.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def combine_with_true_maps(raw: hf.RawData, scanner: hf.Scanner) -> np.ndarray:
    maps = scanner.receive.sensitivities(raw.header.affine_array(), raw.header.matrix)[:, 0]
    images = coil_images(raw)
    return (np.conj(maps) * images).sum(0) / (np.abs(maps) ** 2).sum(0)


def build(scanner: hf.Scanner, **changes: object) -> hf.BuiltSequence:
    protocol = hf.get_protocol("gre_t1_2d").with_changes(matrix=N, **changes)
    return protocol.build(scanner)


def test_ernst_signal_absolute_units(scanner: hf.Scanner) -> None:
    seq = build(scanner)
    raw = hf.simulate(disk_phantom("wm"), seq, scanner, noise=False)
    image = combine_with_true_maps(raw, scanner)
    wm = tissue_properties("wm", 3.0)
    expected = wm.pd * spoiled_gre_signal(
        wm.t1_s, wm.t2star_s, flip_angle_rad=seq.flip_angle_rad, tr_s=seq.tr_s, te_s=seq.te_s
    )
    voxel_mm3 = (FOV / N * 1e3) ** 2 * 5.0
    centre = image[N // 2 - 4 : N // 2 + 4, N // 2 - 4 : N // 2 + 4]
    # Mean over the centre: the sharp disk edge leaves a small Gibbs ripple (+-3 %) on single pixels.
    assert float(np.abs(centre).mean()) == pytest.approx(expected * voxel_mm3, rel=0.01)


@pytest.mark.parametrize("flip_deg", [10.0, 30.0, 90.0])
def test_signal_follows_rf_spoiled_steady_state_over_flip_angles(scanner: hf.Scanner, flip_deg: float) -> None:
    """Image ratios follow the EPG steady state of 117-degree RF spoiling, which is within 3 % of Ernst."""
    from hifield.sim.epg import epg_spoiled_gre

    phantom = disk_phantom("gm")
    ref_seq = build(scanner, flip_angle_rad=np.radians(70.0))
    seq = build(scanner, flip_angle_rad=np.radians(flip_deg))
    ref = np.abs(combine_with_true_maps(hf.simulate(phantom, ref_seq, scanner, noise=False), scanner))[N // 2, N // 2]
    val = np.abs(combine_with_true_maps(hf.simulate(phantom, seq, scanner, noise=False), scanner))[N // 2, N // 2]
    gm = tissue_properties("gm", 3.0)
    phases = np.radians(117.0 * np.arange(400) * (np.arange(400) + 1) / 2.0)

    def steady(a: float) -> float:
        echoes = epg_spoiled_gre(
            flip_angle_rad=a, tr_s=seq.tr_s, te_s=seq.te_s, t1_s=gm.t1_s, t2_s=gm.t2_s, rf_phases_rad=phases
        )
        return float(abs(echoes[-1]))

    def ernst(a: float) -> float:
        return float(spoiled_gre_signal(gm.t1_s, gm.t2star_s, flip_angle_rad=a, tr_s=seq.tr_s, te_s=seq.te_s))

    a, a_ref = np.radians(flip_deg), np.radians(70.0)
    assert val / ref == pytest.approx(steady(a) / steady(a_ref), rel=2e-3)
    assert val / ref == pytest.approx(ernst(a) / ernst(a_ref), rel=0.03)


def test_every_line_carries_the_steady_state(scanner: hf.Scanner) -> None:
    """The fast engine assumes steady state (as after preparation scans): dummies do not change the data."""
    phantom = disk_phantom("csf")
    seq = build(scanner)
    raw = hf.simulate(phantom, seq, scanner, noise=False)
    steady = hf.simulate(phantom, dataclasses.replace(seq, n_dummy_scans=200), scanner, noise=False)
    np.testing.assert_allclose(raw.kspace, steady.kspace, rtol=1e-5, atol=1e-6)


def shift_x(raw: hf.RawData, reference: hf.RawData) -> float:
    """Sub-pixel shift along x of each coil image relative to the reference's, from the phase slope of the FT of
    their column profiles (the shift theorem), averaged over coils.

    Off-resonant spins are weighted by the coil at their true position and then displaced, so every coil image is
    the reference's coil image shifted (coil combination would mix in the unshifted maps).
    """
    estimates = []
    for image, ref in zip(coil_images(raw), coil_images(reference), strict=True):
        ratio = np.fft.fft(image.sum(0))[:4] / np.fft.fft(ref.sum(0))[:4]
        slope = np.angle(ratio[1:] / ratio[0])  # the global phase (chemical shift or B0 at TE) cancels
        estimates.append(np.mean(-slope / (2 * np.pi * np.arange(1, 4) / image.shape[-1])))
    return float(np.mean(estimates))


def test_fat_shift_in_pixels_equals_offset_over_bandwidth(scanner: hf.Scanner) -> None:
    seq = build(scanner)
    water = hf.simulate(disk_phantom("water"), seq, scanner, noise=False)
    fat = hf.simulate(disk_phantom("fat", fat_peaks="single"), seq, scanner, noise=False)
    df = GAMMA_BAR_HZ_PER_T * 3.0 * tissue_properties("fat", 3.0, fat_peaks="single").chemical_shift_ppm[0] * 1e-6
    expected_px = df / seq.pixel_bandwidth_hz
    assert abs(expected_px) > 1.0
    assert shift_x(fat, water) == pytest.approx(expected_px, abs=0.02)


def test_b0_offset_shifts_along_readout_and_sets_phase_at_te(scanner: hf.Scanner) -> None:
    seq = build(scanner)
    offset = 150.0
    on = hf.simulate(disk_phantom("water"), seq, scanner, noise=False)
    off = hf.simulate(disk_phantom("water", offset_hz=offset), seq, scanner, noise=False)
    assert shift_x(off, on) == pytest.approx(offset / seq.pixel_bandwidth_hz, abs=0.02)
    on_image, off_image = combine_with_true_maps(on, scanner), combine_with_true_maps(off, scanner)
    phase = np.angle(off_image[N // 2, N // 2] / on_image[N // 2, N // 2])
    assert phase == pytest.approx(np.angle(np.exp(-2j * np.pi * offset * seq.te_s)), abs=0.03)


def test_in_and_opposed_phase_water_fat(scanner: hf.Scanner) -> None:
    """A 50/50 voxel (single-peak fat) cancels at TE = 3/(2|df|) (3.45 ms at 3 T) and adds up at 2/|df|."""
    n_fine = 2 * N
    base = disk_phantom("water")
    fat = tissue_properties("fat", 3.0, fat_peaks="single")
    water = tissue_properties("water", 3.0)
    fat_equal = dataclasses.replace(fat, t1_s=water.t1_s, t2_s=water.t2_s, t2star_s=water.t2star_s, pd=water.pd)
    half = base.fractions * 0.5
    phantom = dataclasses.replace(base, fractions=np.concatenate([half, half]), tissues=(water, fat_equal))
    df = abs(GAMMA_BAR_HZ_PER_T * 3.0 * fat.chemical_shift_ppm[0] * 1e-6)
    values = {}
    for label, te in (("op", 3 / (2 * df)), ("ip", 2 / df)):
        seq = build(scanner, te_s=te, readout_bandwidth_hz_per_pixel=1000.0, rf_duration_s=0.0005)
        img = combine_with_true_maps(hf.simulate(phantom, seq, scanner, noise=False), scanner)
        values[label] = abs(img[N // 2, N // 2])
    assert n_fine == 2 * N
    assert values["op"] < 0.05 * values["ip"]


def test_noise_is_seeded_and_matches_model(scanner: hf.Scanner) -> None:
    seq = build(scanner)
    phantom = disk_phantom("wm")
    a = hf.simulate(phantom, seq, scanner, seed=3)
    b = hf.simulate(phantom, seq, scanner, seed=3)
    c = hf.simulate(phantom, seq, scanner, seed=4)
    np.testing.assert_array_equal(a.kspace, b.kspace)
    assert not np.array_equal(a.kspace, c.kspace)
    clean = hf.simulate(phantom, seq, scanner, noise=False)
    residual = (a.kspace - clean.kspace)[0].ravel()
    from hifield.sim.noise import kspace_noise_std

    expected = kspace_noise_std(3.0, dwell_s=seq.readout_dwell_s, n_grid=N * N) * np.sqrt(
        scanner.receive.noise_covariance[0, 0].real
    )
    assert np.std(residual) == pytest.approx(expected, rel=0.05)
    assert a.noise is not None and a.noise.shape == (8, 256)


def test_prospective_undersampling_plays_only_sampled_lines(scanner: hf.Scanner) -> None:
    pattern = hf.variable_density_lines(N, acceleration=4, n_calibration=8, seed=0)
    protocol = hf.get_protocol("gre_t1_2d").with_changes(matrix=N)
    full = protocol.build(scanner)
    seq = protocol.build(scanner, phase_encode_lines=pattern.order)
    raw = hf.simulate(disk_phantom("wm"), seq, scanner, noise=True)
    sampled = pattern.mask[0, :, 0]
    assert np.all(raw.kspace[..., ~sampled, :] == 0)
    assert np.all(np.abs(raw.kspace[..., sampled, :]) > 0)
    assert raw.header.acceleration == pytest.approx(4.0)
    assert full.duration_s / seq.duration_s == pytest.approx(4.0, rel=0.02)
    assert raw.header.scan_time_full_s == pytest.approx(full.duration_s, rel=0.02)


def test_refuses_mismatched_grid_and_field(scanner: hf.Scanner) -> None:
    seq = build(scanner, fov_m=0.2)
    with pytest.raises(ConfigError, match="must cover the protocol FOV"):
        hf.simulate(disk_phantom("wm"), seq, scanner)
    with pytest.raises(ConfigError, match="at_field"):
        hf.simulate(disk_phantom("wm").at_field(7.0), build(scanner), scanner)


def test_fast_matches_bloch_on_a_steady_state_gre() -> None:
    """``fast`` against ``bloch`` on the same GRE played from steady state (40 preparation scans): NRMSE <= 3 %."""
    scanner = hf.Scanner.preset("3T", n_coils=2)
    n = 24
    seq = hf.get_protocol("gre_t1_2d").with_changes(matrix=n, n_dummy_scans=40).build(scanner)
    phantom = hf.shepp_logan_phantom(b0_t=3.0, matrix=2 * n, fov_m=seq.protocol.fov_m)
    images = []
    for engine in ("fast", "bloch"):
        raw = hf.simulate(phantom, seq, scanner, engine=engine, noise=False)
        images.append(np.abs(hf.reconstruct(raw, method="fft").data).ravel())
    fast, bloch = images
    scale = float(fast @ bloch / (bloch @ bloch))
    assert np.linalg.norm(fast - scale * bloch) / np.linalg.norm(fast) <= 0.03
    assert scale == pytest.approx(1.0, abs=0.03)
