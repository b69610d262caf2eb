"""Training samples: the noise level the config names, the calibration size it draws, and the training loss."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hifield.ops.fft import ifftc
from hifield.recon.learned.data import Case, DataConfig, make_mask, make_sample, noise_sigma


def _case(n: int = 128, coils: int = 4) -> Case:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:n, :n] - n / 2
    obj = ((yy / (0.35 * n)) ** 2 + (xx / (0.3 * n)) ** 2 <= 1).astype(np.float32)
    phases = np.exp(1j * rng.uniform(0, 2 * np.pi, coils))[:, None, None]
    images = (obj[None] * phases * np.linspace(0.5, 1.5, coils)[:, None, None]).astype(np.complex64)
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(images, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    return Case(kspace=k.astype(np.complex64), target=np.sqrt((np.abs(images) ** 2).sum(0)), info={})


@pytest.mark.parametrize("relative", [0.003, 0.03])
def test_sample_noise_is_the_configured_fraction_of_the_peak_coil_image(relative: float) -> None:
    """The noise of a sample, measured in image space, is ``relative`` x the peak coil-image magnitude at any
    matrix (it was 1/N of that before: the k-space sigma had been divided by the matrix size)."""
    case = _case()
    cfg = DataConfig(matrix=128, noise_min=relative, noise_max=relative, r_min=1.0, r_max=1.0, patterns=("equispaced",))
    sample = make_sample(case, np.random.default_rng(0), cfg)
    assert sample["mask"].min() == 1.0  # fully sampled: the whole difference is noise
    units = float(case.target.max() / sample["target"].max())  # make_sample divides y and target by one scale
    noise = ifftc(sample["y"], axes=(-2, -1)) * units - ifftc(case.kspace, axes=(-2, -1))
    peak = float(np.abs(ifftc(case.kspace, axes=(-2, -1))).max())
    measured = float(np.std(noise)) / peak
    assert measured == pytest.approx(relative, rel=0.05)


def test_noise_sigma_is_relative_to_the_peak_of_the_orthonormal_coil_image() -> None:
    k = _case(64).kspace
    peak = float(np.abs(ifftc(k, axes=(-2, -1))).max())
    assert noise_sigma(k, 0.02) == pytest.approx(0.02 * peak, rel=1e-6)


def test_calibration_spread_draws_acs_sizes_around_the_scaled_count() -> None:
    from hifield.recon.learned.infer import acs_bounds

    def sizes(spread: float) -> set[int]:
        cfg = DataConfig(matrix=256, n_calibration=6, calibration_spread=spread, r_min=4.0, r_max=4.0)
        rng = np.random.default_rng(1)
        out = set()
        for _ in range(40):
            mask, _ = make_mask(256, rng, cfg)
            lo, hi = acs_bounds(mask[:, 0] > 0)
            out.add(hi - lo)
        return out

    fixed, spread = sizes(0.0), sizes(0.35)
    # 6 at 64 -> 24 at 256 (random lines next to the block can lengthen the measured run, never shorten it)
    assert min(fixed) == 24
    assert 15 <= min(spread) <= 19 and len(spread) > len(fixed)


@pytest.mark.torch
def test_training_ssim_loss_is_hifields_ssim_metric() -> None:
    torch = pytest.importorskip("torch")
    from hifield.metrics import ssim
    from hifield.recon.learned.train import ssim_torch

    rng = np.random.default_rng(0)
    target = rng.random((2, 40, 50)).astype(np.float32)
    noisy = (target + 0.1 * rng.standard_normal(target.shape)).astype(np.float32)
    got = float(ssim_torch(torch.from_numpy(noisy), torch.from_numpy(target)))
    want = np.mean([ssim(target[i : i + 1], noisy[i : i + 1]) for i in range(2)])
    assert got == pytest.approx(want, abs=1e-5)
    assert float(ssim_torch(torch.from_numpy(target), torch.from_numpy(target))) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.torch
def test_learning_rate_follows_the_half_cosine_and_is_constant_without_lr_min() -> None:
    pytest.importorskip("torch")
    from hifield.recon.learned.train import TrainConfig, learning_rate

    cos = TrainConfig(lr=1e-3, lr_min=1e-5, steps=200)
    lrs = [learning_rate(cos, s) for s in range(0, 201, 20)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-5) and lrs[5] == pytest.approx(5.05e-4)
    assert all(a > b for a, b in itertools.pairwise(lrs))
    assert {learning_rate(TrainConfig(lr=2e-3), s) for s in (0, 500, 5000)} == {2e-3}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("loss: l3\n", "unknown training loss 'l3'; choose l1 or ssim"),
        ("lr: 0.001\nlr_min: 0.01\n", "0 <= lr_min <= lr"),
        ("data: {calibration_spread: 1.2}\n", "calibration_spread must lie in [0, 1)"),
    ],
)
def test_a_bad_training_config_is_refused_in_one_line_before_anything_is_simulated(
    tmp_path: Path, text: str, message: str
) -> None:
    from hifield.errors import ConfigError
    from hifield.recon.learned.train import TrainConfig

    cfg = tmp_path / "bad.yaml"
    cfg.write_text("model: varnet\n" + text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig.load(cfg)
    pytest.importorskip("torch")
    done = subprocess.run(
        [sys.executable, "-m", "hifield.cli.main", "train", "--config", str(cfg), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "run").exists()  # refused before the run folder or any simulation


def test_small_lesions_are_added_in_the_configured_sizes_and_leave_other_draws_unchanged() -> None:
    """``small_max`` adds small discs (bright-on-T1 and dark lesion tissues) of radii within ``small_radius``; without
    it a seed draws the same brain as before the option existed (the small lesions are drawn last)."""
    from scipy import ndimage

    from hifield.phantom import make_phantom
    from hifield.recon.learned.data import vary_brain

    base = make_phantom("brain", matrix=128, oversampling=2)
    plain = vary_brain(base, np.random.default_rng(5))
    again = vary_brain(base, np.random.default_rng(5), small_max=0)
    np.testing.assert_array_equal(plain.fractions, again.fractions)
    radius = (0.01, 0.02)
    sizes: list[int] = []
    for seed in range(6):
        p = vary_brain(base, np.random.default_rng(seed), lesions=0, small_max=8, small_radius=radius)
        names = [n for n in p.tissue_names if n.startswith("lesion-small")]
        assert set(names) <= {"lesion-small-bright", "lesion-small-dark"}
        for name in names:
            bright = p.tissues[p.tissue_index(name)]
            wm = base.tissues[base.tissue_index("wm")]
            assert (bright.t1_s < wm.t1_s) == (name == "lesion-small-bright")
            labels, n = ndimage.label(p.fractions[p.tissue_index(name), 0] > 0.5)
            sizes += [int(s) for s in ndimage.sum(np.ones_like(labels), labels, range(1, n + 1))]
    nx = base.fractions.shape[-1]
    assert sizes, "eight draws of up to 8 lesions made none"
    largest = np.pi * (radius[1] * nx + 1) ** 2  # a disc of the largest radius, with one pixel of rim
    isolated = [s for s in sizes if s <= largest]  # overlapping discs merge into one larger blob
    assert len(isolated) >= len(sizes) // 2 and min(sizes) >= np.pi * (radius[0] * nx - 1) ** 2 * 0.5


def test_cases_carry_the_small_lesions_fraction_on_the_image_grid() -> None:
    """``lesion_fraction`` averages the named lesion tissues onto the image grid: a disc of known area sums to that
    area in image pixels, and tissues of another name are left out."""
    from hifield.phantom import make_phantom
    from hifield.recon.learned.data import lesion_discs, lesion_fraction

    base = make_phantom("brain", matrix=64, oversampling=2)
    p, masks = lesion_discs(base, [(0.5, 0.5, 0.05)], t1_factor=0.5, t2_factor=1.0, name="lesion-small-bright")
    p, _ = lesion_discs(p, [(0.3, 0.3, 0.05)], t1_factor=1.5, t2_factor=2.0, name="lesion-large")
    frac = lesion_fraction(p, 64, prefix="lesion-small")
    assert frac.shape == (64, 64)
    brain = base.fractions.sum(axis=0)[0]
    expected = float((masks[0] * brain).sum()) / 4  # phantom pixels per image pixel: 2 x 2
    assert float(frac.sum()) == pytest.approx(expected, rel=1e-4)
    assert frac[19, 19] == 0 and frac[32, 32] > 0.9  # the large lesion is not a small one
    assert float(lesion_fraction(p, 64).sum()) > float(frac.sum())  # the default prefix takes both
