"""Non-Cartesian (golden-angle radial) reconstruction through the NUFFT."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from hifield.data import CoilMaps, RawData, RawHeader, Trajectory
from hifield.errors import ReconstructionError
from hifield.hardware import Scanner
from hifield.metrics import nmse, ssim
from hifield.ops import NUFFTOp
from hifield.recon import CsConfig, FftConfig, SenseConfig, estimate_coil_maps, reconstruct
from hifield.sequence import RadialProtocol, SpiralProtocol
from hifield.sim import sequence_trajectory


def _radial_raw(simdata: ModuleType, n: int, n_spokes: int, *, n_coils: int = 6, noise: float = 0.002):
    fov = 0.2
    img = simdata.phantom_image(n)
    maps = simdata.smooth_coil_maps(n_coils, (n, n))
    # the trajectory the radial protocol plays (golden angle, no readout oversampling)
    protocol = RadialProtocol(matrix=n, fov_m=fov, n_spokes=n_spokes, readout_oversampling=1)
    trajectory = sequence_trajectory(protocol.build(Scanner.preset("3T")))
    k = trajectory.kspace_m
    # simulate on a grid twice as fine (upsampled object) to avoid committing the inverse crime
    fine = 2 * n
    img_f = simdata.phantom_image(fine)
    maps_f = simdata.smooth_coil_maps(n_coils, (fine, fine))
    op = NUFFTOp(k, (1, fine, fine), (0.005, fov / fine, fov / fine), batch_shape=(n_coils,), eps=1e-6)
    y = (op @ (maps_f * img_f[None]).astype(np.complex128)) / 2.0  # orthonormal scaling of the coarser grid
    # the resized phantoms are area-aligned: coarse pixel j covers fine pixels 2j, 2j+1, so relative to the
    # centred grids the fine object sits half a fine pixel off; undo that shift with the k-space phase ramp
    half = fov / fine / 2
    y = y * np.exp(2j * np.pi * (k[..., 1] + k[..., 2]) * half)
    rng = np.random.default_rng(0)
    y = y + noise * (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape))
    header = RawHeader(
        b0_t=3.0,
        fov_m=(0.005, fov, fov),
        matrix=(1, n, n),
        te_s=0.01,
        tr_s=0.1,
        flip_angle_rad=0.3,
        trajectory="goldenangle",
    )
    raw = RawData(
        kspace=y.reshape(n_coils, 1, *k.shape[:-1]).astype(np.complex64), header=header, trajectory=trajectory
    )
    return raw, img, maps


def _err(gt: np.ndarray, image: np.ndarray) -> float:
    return float(np.sqrt(nmse(np.abs(gt), np.abs(image.reshape(gt.shape)))))


def test_gridding_fully_sampled_radial_is_close(simdata: ModuleType) -> None:
    n = 64
    raw, img, _ = _radial_raw(simdata, n, 110)
    image = reconstruct(raw, method="fft")
    assert image.data.shape == (1, 1, n, n) and image.data.dtype == np.complex64
    # gridding keeps the units: the mean over the object matches the truth (ringing and the RSS noise floor
    # of a sharp-edged phantom keep the pixel-wise error well above that of SENSE)
    inside = np.abs(img[0]) > 0.1
    pm = reconstruct(raw, method="fft", config=FftConfig(density="pipe-menon"))
    for data in (image.data, pm.data):
        ratio = np.abs(data[0, 0])[inside].mean() / np.abs(img[0])[inside].mean()
        assert abs(ratio - 1) < 0.1
        assert _err(img, data) < 0.5


def test_radial_sense_and_cs_beat_gridding(simdata: ModuleType) -> None:
    n = 64
    raw, img, maps = _radial_raw(simdata, n, 40)  # R = 64 pi / 2 / 40 = 2.5
    grid = _err(img, reconstruct(raw, method="fft").data)
    true_maps = CoilMaps(maps[None], method="true")
    sense_true = _err(img, reconstruct(raw, method="sense", coil_maps=true_maps, config=SenseConfig(max_iter=15)).data)
    assert sense_true < 0.2 < 0.4 < grid
    est = estimate_coil_maps(raw)
    sense_est = reconstruct(raw, method="sense", coil_maps=est, config=SenseConfig(max_iter=15)).data
    assert _err(img, sense_est) < grid
    cs = reconstruct(raw, method="cs", coil_maps=est, config=CsConfig(max_iter=30)).data
    gt = np.abs(img)
    assert ssim(gt, np.abs(cs.reshape(gt.shape))) > ssim(
        gt, np.abs(reconstruct(raw, method="fft").data.reshape(gt.shape))
    )


def test_missing_density_and_bad_layout_raise(simdata: ModuleType) -> None:
    raw, _, _ = _radial_raw(simdata, 32, 20)
    assert raw.trajectory is not None
    no_density = raw.replace(trajectory=Trajectory(kspace_m=raw.trajectory.kspace_m))
    with pytest.raises(ReconstructionError, match="pipe-menon"):
        reconstruct(no_density, method="fft")
    bad = raw.replace(kspace=raw.kspace[..., :-1])
    with pytest.raises(ReconstructionError, match="do not match the trajectory"):
        reconstruct(bad, method="fft")


def test_spiral_gridding_keeps_units_and_sense_works(simdata: ModuleType) -> None:
    n, fov, n_coils = 48, 0.2, 4
    spiral = SpiralProtocol(matrix=n, fov_m=fov, n_interleaves=12, density=1.0)  # uniform density: Nyquist
    trajectory = sequence_trajectory(spiral.build(Scanner.preset("3T")))
    k = trajectory.kspace_m
    img = simdata.phantom_image(n)
    maps = simdata.smooth_coil_maps(n_coils, (n, n))
    op = NUFFTOp(k, (1, n, n), (0.005, fov / n, fov / n), batch_shape=(n_coils,), eps=1e-6)
    y = op @ (maps * img[None]).astype(np.complex128)
    header = RawHeader(
        b0_t=3.0,
        fov_m=(0.005, fov, fov),
        matrix=(1, n, n),
        te_s=0.01,
        tr_s=0.1,
        flip_angle_rad=0.3,
        trajectory="spiral",
    )
    raw = RawData(
        kspace=y.reshape(n_coils, 1, *k.shape[:-1]).astype(np.complex64), header=header, trajectory=trajectory
    )
    inside = np.abs(img[0]) > 0.1
    grids = [reconstruct(raw, method="fft", config=FftConfig(density=d)).data for d in ("trajectory", "pipe-menon")]
    for g in grids:
        assert abs(np.abs(g[0, 0])[inside].mean() / np.abs(img[0])[inside].mean() - 1) < 0.1
    sense = reconstruct(raw, method="sense", coil_maps=CoilMaps(maps[None]), config=SenseConfig(max_iter=20)).data
    assert _err(img, sense) < 0.5 * _err(img, grids[0])


def test_espirit_refuses_a_spiral_centre_below_nyquist() -> None:
    """Four of sixteen spiral interleaves leave gaps between turns even at the centre: no self-calibration."""
    import hifield as hf
    from hifield.errors import ReconstructionError
    from hifield.recon import estimate_coil_maps
    from hifield.recon.noncartesian import nyquist_box

    scanner = hf.Scanner.preset("3T", n_coils=4)
    protocol = hf.get_protocol("spiral_vd_2d").with_changes(matrix=32)
    phantom = hf.shepp_logan_phantom(b0_t=3.0, matrix=64, fov_m=protocol.fov_m)
    full = hf.simulate(phantom, protocol.build(scanner), scanner, noise=False)
    sparse = hf.simulate(phantom, protocol.build(scanner, phase_encode_lines=[0, 4, 8, 12]), scanner, noise=False)
    assert nyquist_box(full) >= 16 > nyquist_box(sparse)
    estimate_coil_maps(full, method="espirit")  # the full spiral calibrates itself
    with pytest.raises(ReconstructionError, match="below Nyquist"):
        estimate_coil_maps(sparse, method="espirit")
