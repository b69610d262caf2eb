"""The reconstruction registry: quality on simulated multi-coil data, scaling, shapes and bad input."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from hifield.data import CoilMaps
from hifield.errors import ConfigError, ReconstructionError
from hifield.metrics import nmse, ssim
from hifield.recon import CsConfig, SenseConfig, TvConfig, estimate_coil_maps, reconstruct, reconstructor_names


def _mag(image: np.ndarray) -> np.ndarray:
    return np.abs(image.reshape(-1, *image.shape[-2:]))


def test_registry_lists_methods() -> None:
    assert {"fft", "sense", "cs", "tv"} <= set(reconstructor_names())


def test_fft_fully_sampled_single_coil_is_exact(simdata: ModuleType) -> None:
    raw, img, _ = simdata.make_raw(32, 1)
    # one coil with unit map: the zero-filled FFT returns the complex object itself
    raw1 = raw.replace(
        kspace=np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(img), norm="ortho"))[None].astype(np.complex64)
    )
    image = reconstruct(raw1, method="fft")
    assert image.data.shape == (1, 1, 32, 32) and image.data.dtype == np.complex64
    np.testing.assert_allclose(image.data[0], img, atol=1e-6)
    assert image.header.recon_method == "fft"
    np.testing.assert_array_equal(image.header.affine, raw.header.affine_array())
    assert image.header.acquisition is raw.header


def test_fft_rss_equals_object_magnitude_for_unit_rss_maps(simdata: ModuleType) -> None:
    raw, img, _ = simdata.make_raw(48, 4)
    image = reconstruct(raw, method="fft")
    np.testing.assert_allclose(np.abs(image.data[0]), np.abs(img), atol=1e-5)


def test_sense_r2_nrmse(simdata: ModuleType) -> None:
    n = 128
    raw, img, _ = simdata.make_raw(n, 8, mask=simdata.equispaced_mask(n, n, r=2, n_acs=24), noise=0.002)
    image = reconstruct(raw, method="sense")
    err = np.sqrt(nmse(_mag(img), _mag(image.data)))
    zero_filled = np.sqrt(nmse(_mag(img), _mag(reconstruct(raw, method="fft").data)))
    assert err < 0.05 < zero_filled


def test_cs_beats_zero_filled_at_r4(simdata: ModuleType) -> None:
    n = 128
    raw, img, _ = simdata.make_raw(n, 8, mask=simdata.random_mask(n, n, r=4, n_acs=16, seed=1), noise=0.01)
    maps = estimate_coil_maps(raw)
    gt = _mag(img)
    s_fft = ssim(gt, _mag(reconstruct(raw, method="fft").data))
    s_cs = ssim(gt, _mag(reconstruct(raw, method="cs", coil_maps=maps).data))
    s_tv = ssim(gt, _mag(reconstruct(raw, method="tv", coil_maps=maps).data))
    assert s_cs > s_fft + 0.1
    assert s_tv > s_fft + 0.1


@pytest.mark.parametrize("method", ["fft", "sense", "cs", "tv"])
def test_output_in_input_units(simdata: ModuleType, method: str) -> None:
    """No hidden normalisation: scaling the k-space by 1000 scales the image by 1000."""
    n = 32
    raw, _, true_maps = simdata.make_raw(n, 4, mask=simdata.equispaced_mask(n, n, r=2, n_acs=12), noise=0.01)
    maps = CoilMaps(true_maps[None], method="true")
    small = reconstruct(raw, method=method, coil_maps=maps).data
    big = reconstruct(raw.replace(kspace=raw.kspace * np.float32(1000)), method=method, coil_maps=maps).data
    np.testing.assert_allclose(big, 1000 * small, rtol=2e-3, atol=2e-3 * np.abs(big).max())


def test_other_axes_kept(simdata: ModuleType) -> None:
    n = 32
    raw, _, maps = simdata.make_raw(n, 4, mask=simdata.equispaced_mask(n, n, r=2, n_acs=12))
    stacked = raw.replace(kspace=np.stack([raw.kspace, 2 * raw.kspace]))
    image = reconstruct(stacked, method="sense", coil_maps=CoilMaps(maps[None]))
    assert image.data.shape == (2, 1, 1, n, n)
    np.testing.assert_allclose(image.data[1], 2 * image.data[0], rtol=1e-4, atol=1e-6)


def test_seeded_cs_is_bit_identical(simdata: ModuleType) -> None:
    n = 32
    raw, _, maps = simdata.make_raw(n, 4, mask=simdata.random_mask(n, n, r=3, n_acs=8), noise=0.01)
    cfg = CsConfig(max_iter=10, seed=3)
    a = reconstruct(raw, method="cs", coil_maps=CoilMaps(maps[None]), config=cfg).data
    b = reconstruct(raw, method="cs", coil_maps=CoilMaps(maps[None]), config=cfg).data
    np.testing.assert_array_equal(a, b)


def test_unknown_method_lists_allowed(simdata: ModuleType) -> None:
    raw, _, _ = simdata.make_raw(16, 2)
    with pytest.raises(ConfigError, match="sense") as info:
        reconstruct(raw, method="magic")
    assert "fft" in str(info.value) and "\n" not in str(info.value)


def test_wrong_config_type(simdata: ModuleType) -> None:
    raw, _, _ = simdata.make_raw(16, 2)
    with pytest.raises(ConfigError, match="SenseConfig"):
        reconstruct(raw, method="sense", config=TvConfig())


def test_nan_kspace_raises(simdata: ModuleType) -> None:
    raw, _, _ = simdata.make_raw(16, 2)
    kspace = raw.kspace.copy()
    kspace[0, 0, 3, 3] = np.nan
    for method in ("fft", "sense"):
        with pytest.raises(ReconstructionError, match="NaN"):
            reconstruct(raw.replace(kspace=kspace), method=method)


def test_sense_without_calibration_suggests_fft(simdata: ModuleType) -> None:
    n = 32
    mask = np.zeros((1, n, n), bool)
    mask[:, ::2] = True
    raw, _, _ = simdata.make_raw(n, 4, mask=mask)
    with pytest.raises(ReconstructionError, match="--recon fft"):
        reconstruct(raw, method="sense")


def test_mismatched_maps_raise(simdata: ModuleType) -> None:
    raw, _, maps = simdata.make_raw(16, 4)
    with pytest.raises(ReconstructionError, match="do not match"):
        reconstruct(raw, method="sense", coil_maps=CoilMaps(maps[None, :3]))


def test_sense_tikhonov_shrinks(simdata: ModuleType) -> None:
    n = 32
    raw, _, maps = simdata.make_raw(n, 4, mask=simdata.equispaced_mask(n, n, r=2, n_acs=8))
    cm = CoilMaps(maps[None])
    weak = reconstruct(raw, method="sense", coil_maps=cm, config=SenseConfig(lambda_rel=0.0)).data
    strong = reconstruct(raw, method="sense", coil_maps=cm, config=SenseConfig(lambda_rel=1.0)).data
    assert np.linalg.norm(strong) < 0.8 * np.linalg.norm(weak)


@pytest.mark.parametrize("r", [2, 3])
def test_grappa_nrmse(simdata: ModuleType, r: int) -> None:
    n = 96
    raw, img, _ = simdata.make_raw(n, 8, mask=simdata.equispaced_mask(n, n, r=r, n_acs=24), noise=0.002)
    image = reconstruct(raw, method="grappa")
    assert image.data.shape == (1, 1, n, n) and image.header.recon_method == "grappa"
    err = np.sqrt(nmse(_mag(img), _mag(image.data)))
    zero_filled = np.sqrt(nmse(_mag(img), _mag(reconstruct(raw, method="fft").data)))
    assert err < (0.05 if r == 2 else 0.08) < zero_filled


def test_grappa_keeps_acquired_lines_and_needs_acs(simdata: ModuleType) -> None:
    n = 48
    mask = simdata.equispaced_mask(n, n, r=2, n_acs=16)
    raw, _, _ = simdata.make_raw(n, 4, mask=mask)
    from hifield.recon.calibration import calibration_region
    from hifield.recon.config import GrappaConfig
    from hifield.recon.grappa import grappa_plane

    acs = calibration_region(raw)
    assert acs is not None
    filled = grappa_plane(raw.kspace[:, 0], mask[0, :, 0], acs[1], GrappaConfig())
    np.testing.assert_array_equal(filled[:, mask[0, :, 0]], raw.kspace[:, 0][:, mask[0, :, 0]])
    # every missing line is filled except the last one, which has no acquired line after it for the kernel
    energy = np.abs(filled[:, ~mask[0, :, 0]]).sum(axis=(0, 2))
    assert np.all(energy[:-1] > 0) and energy[-1] == 0
    no_acs = np.zeros((1, n, n), bool)
    no_acs[:, ::2] = True
    raw2, _, _ = simdata.make_raw(n, 4, mask=no_acs)
    with pytest.raises(ReconstructionError, match="--recon fft"):
        reconstruct(raw2, method="grappa")


def test_two_map_sense_with_empty_second_set_equals_one_map(simdata: ModuleType) -> None:
    n = 32
    raw, _, maps = simdata.make_raw(n, 4, mask=simdata.equispaced_mask(n, n, r=2, n_acs=12))
    one = reconstruct(raw, method="sense", coil_maps=CoilMaps(maps[None])).data
    two_maps = np.stack([maps, np.zeros_like(maps)])
    two = reconstruct(raw, method="sense", coil_maps=CoilMaps(two_maps)).data
    assert two.shape == one.shape == (1, 1, n, n)
    np.testing.assert_allclose(np.abs(two), np.abs(one), atol=1e-4 * np.abs(one).max())


def test_tv_default_steps_converge_faster_than_the_even_split(simdata: ModuleType) -> None:
    # the dual ball (radius lambda) is far smaller than the image: a small dual step lets the primal step grow;
    # 60 iterations at the default come several times closer to the converged image than at sigma ||grad|| = 1
    raw, _, _ = simdata.make_raw(96, 8, mask=simdata.random_mask(96, 96, r=5, n_acs=16), noise=0.005)
    maps = estimate_coil_maps(raw)
    converged = reconstruct(raw, method="tv", coil_maps=maps, config=TvConfig(lambda_rel=0.01, max_iter=1500, tol=0))

    def distance(**options: float) -> float:
        config = TvConfig(lambda_rel=0.01, max_iter=60, tol=0, **options)  # type: ignore[arg-type]
        x = reconstruct(raw, method="tv", coil_maps=maps, config=config).data
        return float(np.linalg.norm(x - converged.data) / np.linalg.norm(converged.data))

    assert distance() < 0.4 * distance(dual_step=1.0)
    with pytest.raises(ConfigError, match="dual_step must be > 0"):
        reconstruct(raw, method="tv", coil_maps=maps, config=TvConfig(dual_step=0.0))
