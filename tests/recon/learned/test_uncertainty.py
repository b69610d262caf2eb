"""Uncertainty maps of learned images: null-space map on a known case, data-consistency residual, conformal
coverage."""

from __future__ import annotations

import numpy as np

from hifield.ops.fft import fftc, ifftc
from hifield.recon.learned import uncertainty as unc


def _maps(c: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n), indexing="ij")
    maps = []
    for _ in range(c):
        cy, cx = rng.uniform(-1.5, 1.5, 2)
        maps.append(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2)) * np.exp(1j * rng.uniform(0, 6) * (yy + xx)))
    maps = np.array(maps)
    return (maps / np.sqrt(np.sum(np.abs(maps) ** 2, axis=0))).astype(np.complex64)


def test_null_space_of_one_unit_coil_is_exactly_the_unsampled_k_space() -> None:
    n = 32
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))).astype(np.complex64)
    mask = np.zeros((n, n), np.float32)
    mask[::4] = 1
    mask[12:20] = 1
    null = unc.null_space_component(x, np.ones((1, n, n), np.complex64), mask)
    expected = ifftc(fftc(x, axes=(0, 1)) * (1 - mask), axes=(0, 1))
    np.testing.assert_allclose(null, expected, atol=1e-4 * np.abs(expected).max())


def test_null_space_map_is_zero_for_an_image_the_data_determine_and_invisible_to_the_encoding() -> None:
    n, c = 32, 8
    maps = _maps(c, n)
    mask = np.zeros((n, n), np.float32)
    mask[::2] = 1
    e = unc.encoding(maps, mask)
    rng = np.random.default_rng(1)
    # an image in the row space of E (E^H of something) has no null-space component
    seen = (e.H @ (rng.standard_normal(e.oshape) + 1j * rng.standard_normal(e.oshape)).astype(np.complex64))[0, 0]
    assert np.linalg.norm(unc.null_space_component(seen, maps, mask, n_iter=100)) < 1e-3 * np.linalg.norm(seen)
    # any image's null-space component is invisible to E: E x_null = 0
    x = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))).astype(np.complex64)
    null = unc.null_space_component(x, maps, mask, n_iter=100)
    assert np.linalg.norm(e @ null[None, None]) < 1e-3 * np.linalg.norm(e @ x[None, None])


def test_dc_residual_vanishes_for_consistent_data_and_measures_the_difference_otherwise() -> None:
    n, c = 16, 4
    maps = _maps(c, n, seed=2)
    mask = np.zeros((n, n), np.float32)
    mask[::2] = 1
    x = np.random.default_rng(3).standard_normal((n, n)).astype(np.complex64)
    y = (unc.encoding(maps, mask) @ x[None, None])[:, 0]
    res_k, res_i = unc.dc_residual(x, y, maps, mask)
    assert res_k.max() < 1e-5 * np.abs(y).max() and res_i.shape == (n, n)
    res_k, _ = unc.dc_residual(x, y + mask * 0.5, maps, mask)  # every sampled value off by 0.5 in each coil
    np.testing.assert_allclose(res_k[mask > 0], 0.5 * np.sqrt(c), rtol=1e-5)


def test_dc_correction_shows_what_the_image_lacks_signed_along_its_phase() -> None:
    n, c = 32, 8
    maps = _maps(c, n, seed=5)
    mask = np.zeros((n, n), np.float32)
    mask[::2] = 1
    mask[13:19] = 1
    yy, xx = np.mgrid[:n, :n]
    disc = ((yy - 12) ** 2 + (xx - 18) ** 2 <= 4).astype(np.float32)
    phase = np.exp(1j * 0.2 * (yy + 0.5 * xx))  # the image's phase: the correction is read along it
    background = (1.0 + 0.3 * np.cos(xx / 5.0)) * ((yy - 16) ** 2 + (xx - 16) ** 2 <= 14**2)
    truth = ((background + disc) * phase).astype(np.complex64)
    y = (unc.encoding(maps, mask) @ truth[None, None])[:, 0]
    lost = (background * phase).astype(np.complex64)  # the network erased the disc
    assert np.abs(unc.dc_correction(truth, y, maps, mask)).max() < 1e-4  # nothing to add to a consistent image
    exact = unc.dc_correction(lost, y, maps, mask, n_iter=100)
    np.testing.assert_allclose(exact, disc, atol=1e-2)  # 8 coils at R 2 determine the image: all of the disc
    few = unc.dc_correction(lost, y, maps, mask)  # the default 5 iterations: most of it, and little elsewhere
    assert few[disc > 0].mean() > 0.7 and np.abs(few[disc == 0]).mean() < 0.05
    invented = unc.dc_correction(((background + 2 * disc) * phase).astype(np.complex64), y, maps, mask, n_iter=100)
    np.testing.assert_allclose(invented, -disc, atol=1e-2)  # too bright: negative


def _lesion_scan(n: int = 64, c: int = 8, seed: int = 0):  # type: ignore[no-untyped-def]
    """A smooth object with a small disc, 8 coils at R 3 (with a centre), correlated receive noise."""
    maps = _maps(c, n, seed=seed + 4)
    mask = np.zeros((n, n), np.float32)
    mask[::3] = 1
    mask[n // 2 - 4 : n // 2 + 4] = 1
    yy, xx = np.mgrid[:n, :n]
    disc = ((yy - 24) ** 2 + (xx - 38) ** 2 <= 4).astype(np.float32)
    phase = np.exp(1j * 0.05 * (yy + 0.5 * xx))
    background = (1.0 + 0.3 * np.cos(xx / 7.0)) * ((yy - n / 2) ** 2 + (xx - n / 2) ** 2 <= (0.4 * n) ** 2)
    truth = ((background + disc) * phase).astype(np.complex64)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((c, c)) + 1j * rng.standard_normal((c, c))
    psi = 0.03**2 * (np.eye(c) + 0.3 * (a @ a.conj().T) / c)  # coupled channels of unequal noise
    white = (rng.standard_normal((c, n * n)) + 1j * rng.standard_normal((c, n * n))) / np.sqrt(2)
    noise = (np.linalg.cholesky(psi) @ white).reshape(c, n, n)
    y = ((unc.encoding(maps, mask) @ truth[None, None])[:, 0] + noise * mask).astype(np.complex64)
    return truth, (background * phase).astype(np.complex64), disc, y, maps, mask, psi


def test_significance_is_standard_normal_where_the_image_is_right() -> None:
    truth, _, _, y, maps, mask, psi = _lesion_scan()
    inside = np.abs(truth) > 0.5
    for radius in unc.SIGNIFICANCE_RADII_PX:  # each radius alone: a z-score of noise
        z = unc.dc_significance(truth, y, maps, mask, radii_px=(radius,), noise_covariance=psi)
        assert 0.9 < z[inside].std() < 1.1 and abs(z[inside].mean()) < 0.1
    # the three radii together: the largest |z| of three, a little wider than one
    spread = float(unc.dc_significance(truth, y, maps, mask, noise_covariance=psi)[inside].std())
    assert spread > 1.0 and spread < 1.6


def test_significance_stands_out_over_a_lesion_the_image_lost_or_invented() -> None:
    truth, lost, disc, y, maps, mask, psi = _lesion_scan()
    z = unc.dc_significance(lost, y, maps, mask, noise_covariance=psi)
    peak = np.unravel_index(np.argmax(z), z.shape)
    assert disc[peak] > 0 and z[disc > 0].mean() > 10  # the data hold the disc far above the noise
    from scipy.ndimage import binary_dilation

    away = (np.abs(truth) > 0.5) & ~binary_dilation(disc > 0, iterations=15)  # beyond the largest blob's ring
    assert np.abs(z[away]).mean() < 2
    invented = ((np.abs(lost) + 2 * disc) * np.exp(1j * np.angle(truth))).astype(np.complex64)
    assert unc.dc_significance(invented, y, maps, mask, noise_covariance=psi)[disc > 0].mean() < -10
    # twice the noise: half the significance
    half = unc.dc_significance(lost, y, maps, mask, noise_covariance=4 * psi)
    np.testing.assert_allclose(half, z / 2, rtol=1e-4, atol=1e-4)


def test_significance_refuses_a_noise_covariance_of_a_duplicated_channel_in_one_line() -> None:
    import pytest

    from hifield.errors import ReconstructionError

    truth, _, _, y, maps, mask, psi = _lesion_scan()
    twin = psi.copy()
    twin[1], twin[:, 1] = twin[0], twin[:, 0]  # channel 1 a copy of channel 0: singular
    twin[1, 1] = twin[0, 0]
    with pytest.raises(ReconstructionError, match=r"^the noise covariance is not positive definite .*; drop the"):
        unc.dc_significance(truth, y, maps, mask, noise_covariance=twin)


def test_noise_covariance_from_the_corners_and_from_the_outer_band_when_the_corners_are_not_acquired() -> None:
    rng = np.random.default_rng(3)
    n, c = 64, 4
    y = 0.2 * (rng.standard_normal((c, n, n)) + 1j * rng.standard_normal((c, n, n))) / np.sqrt(2)
    y[:, 28:36, 28:36] += 50.0  # the object's signal sits in the centre of k-space
    full = unc.kspace_noise_covariance(y, np.ones((n, n)))
    np.testing.assert_allclose(np.real(np.diag(full)), 0.04, rtol=0.15)
    centre_rows = np.zeros((n, n))
    centre_rows[:, :] = np.abs(np.arange(n) - n // 2)[:, None] <= 20  # no row reaches the corners
    band = unc.kspace_noise_covariance(y, centre_rows)
    np.testing.assert_allclose(np.real(np.diag(band)), 0.04, rtol=0.15)
    padded = unc.kspace_noise_covariance(np.concatenate([y, np.zeros((1, n, n))]), np.ones((n, n)))
    assert padded[-1].tolist() == [0] * (c + 1)  # a padding coil has no noise: left out of the whitening


def test_conformal_interval_covers_ninety_percent_of_held_out_pixels_within_two_points() -> None:
    rng = np.random.default_rng(4)
    n = 24

    def case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        truth = np.zeros((n, n), np.float32)
        truth[4:20, 4:20] = rng.uniform(0.5, 1.0)
        width = rng.uniform(0.01, 0.1, (n, n)).astype(np.float32)  # heteroscedastic, known scale
        pred = np.abs(truth + width * rng.standard_normal((n, n))).astype(np.float32)  # magnitudes
        return pred, width, truth

    cal = [case() for _ in range(100)]  # risk control aims at (0.1 * 101 - 1) / 100 = 0.091 miscoverage
    lam = unc.calibrate([c[0] for c in cal], [c[1] for c in cal], [c[2] for c in cal], alpha=0.1)
    assert 1.2 < lam < 2.2  # the Gaussian 90 % two-sided point is 1.645
    test = [case() for _ in range(300)]
    coverage = 1 - np.mean([unc.miscoverage(p, w, t, lam) for p, w, t in test])
    assert abs(coverage - 0.9) <= 0.02
    lower, upper = unc.interval(test[0][0], test[0][1], lam)
    assert np.all(lower <= test[0][0]) and np.all(upper >= test[0][0])


def test_conformal_calibration_counts_each_image_once_however_large_its_object() -> None:
    """Half the images have a 4 x 4 object whose errors are 2.5 times the width, half a 20 x 20 one whose width is
    right. Pooling all object pixels would let the large objects set lambda (400 pixels to 16) and leave the small
    ones covered about half the time: 0.70 per image on average. Risk control over images keeps 0.90."""
    rng = np.random.default_rng(5)

    def case(small: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        truth = np.zeros((24, 24), np.float32)
        side = 4 if small else 20
        truth[2 : 2 + side, 2 : 2 + side] = 1.0
        width = np.full((24, 24), 0.05, np.float32)
        error = (2.5 if small else 1.0) * width * rng.standard_normal((24, 24)).astype(np.float32)
        return (truth + error * (truth > 0)).astype(np.float32), width, truth

    def split(cases: list) -> tuple[list, list, list]:  # type: ignore[type-arg]
        return [c[0] for c in cases], [c[1] for c in cases], [c[2] for c in cases]

    cal = [case(small=k % 2 == 0) for k in range(100)]
    test = [case(small=k % 2 == 0) for k in range(400)]
    lam = unc.calibrate(*split(cal), alpha=0.1)
    coverage = 1 - unc.image_miscoverage(*split(test), lam).mean()
    assert 0.895 <= coverage <= 0.925
    pooled = np.concatenate([(np.abs(t - p) / w)[p > 0.05] for p, w, t in cal])
    pooled_lam = float(np.quantile(pooled, 0.9))  # what a pixel-pooled quantile would give
    assert 1 - unc.image_miscoverage(*split(test), pooled_lam).mean() < 0.8


def test_the_interval_widens_by_the_correction_where_the_data_disagree_with_the_image() -> None:
    x = np.ones((8, 8), np.complex64)
    null = np.zeros((8, 8), np.complex64)
    residual = np.full((8, 8), 0.1, np.float32)
    correction = np.zeros((8, 8), np.float32)
    correction[2, 3], correction[5, 5] = 0.5, -0.25  # the data would add here and take away there
    base = unc.heuristic_width(x, null, residual)  # as weights calibrated before the correction existed
    np.testing.assert_allclose(base, 0.1 + unc.FLOOR)
    np.testing.assert_allclose(unc.heuristic_width(x, null, residual, correction), base + np.abs(correction))


def test_the_width_grows_as_the_acceleration_to_the_calibrated_power() -> None:
    x, null = np.ones((8, 8), np.complex64), np.zeros((8, 8), np.complex64)
    residual = np.full((8, 8), 0.1, np.float32)
    base = unc.heuristic_width(x, null, residual, acceleration=4.0)  # power 0: as weights calibrated before it
    np.testing.assert_allclose(base, unc.heuristic_width(x, null, residual))
    scaled = unc.heuristic_width(x, null, residual, acceleration=4.0, acceleration_power=0.5)
    np.testing.assert_allclose(scaled, 2 * base)


def test_an_acceleration_power_chosen_on_tuning_images_levels_the_coverage_across_r() -> None:
    """The errors grow as R^0.75 times the width. One lambda for all R covers the low R too much and the high R too
    little at the right mean; the power chosen on separate tuning images levels them, the mean staying at 90 %."""
    rng = np.random.default_rng(6)

    def cases(k: int) -> tuple[list, list, list, list]:  # type: ignore[type-arg]
        rs = [float(r) for r in rng.choice([2.0, 4.0, 6.0, 10.0], size=k)]
        truths = [np.ones((12, 12), np.float32) for _ in rs]
        widths = [rng.uniform(0.01, 0.03, (12, 12)).astype(np.float32) for _ in rs]
        preds = [
            (t + w * r**0.75 * rng.standard_normal((12, 12))).astype(np.float32)
            for t, w, r in zip(truths, widths, rs, strict=True)
        ]
        return preds, widths, truths, rs

    tune, cal, test = cases(80), cases(150), cases(400)
    power, spreads = unc.fit_acceleration_power(*tune)
    assert power in (0.5, 0.75, 1.0) and spreads[power] < spreads[0.0]

    def by_r(p: float) -> tuple[float, list[float]]:
        scaled_cal = [w * r**p for w, r in zip(cal[1], cal[3], strict=True)]
        lam = unc.calibrate(cal[0], scaled_cal, cal[2])
        scaled = [w * r**p for w, r in zip(test[1], test[3], strict=True)]
        coverage = 1 - unc.image_miscoverage(test[0], scaled, test[2], lam)
        bins = unc.coverage_by_acceleration(coverage, np.array(test[3]))
        return float(coverage.mean()), [mean for mean, _ in bins.values()]

    mean0, bins0 = by_r(0.0)
    mean, bins = by_r(power)
    assert max(bins0) - min(bins0) > 0.15  # one lambda: R 2 nearly always covered, R 10 far too seldom
    assert max(bins) - min(bins) < 0.05 and min(bins) > 0.87
    assert abs(mean0 - 0.9) <= 0.02 and abs(mean - 0.9) <= 0.02


def test_learned_config_refuses_fewer_than_one_cg_iteration_in_one_line() -> None:
    import pytest

    from hifield.errors import ConfigError
    from hifield.recon.learned import LearnedConfig

    for field in ("correction_iter", "null_space_iter"):
        with pytest.raises(ConfigError, match=f"^{field} must be at least 1 CG iteration, got 0$"):
            LearnedConfig(**{field: 0})


def _figure_case(tmp_path, extras_more, name):  # type: ignore[no-untyped-def]
    """RGB pixels of the uncertainty figure of a 16 x 16 ramp with extras (each a factor of the ramp) added."""
    from PIL import Image as PILImage

    from hifield.report import save_uncertainty_figure

    n = 16
    ramp = np.linspace(-1, 1, n * n, dtype=np.float32).reshape(n, n)
    extras = {
        "null_space": np.abs(ramp),
        "dc_residual_image": np.abs(ramp),
        "conformal_lower": np.zeros((n, n), np.float32),
        "conformal_upper": np.ones((n, n), np.float32),
    }
    path = save_uncertainty_figure(ramp, extras | {k: v * ramp for k, v in extras_more.items()}, tmp_path / name)
    with PILImage.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=float)


def test_uncertainty_figure_shows_the_signed_correction_as_a_panel_of_its_own(tmp_path) -> None:  # type: ignore[no-untyped-def]
    w0 = _figure_case(tmp_path, {}, "without.png").shape[1]
    pixels = _figure_case(tmp_path, {"dc_correction": 1.0}, "with.png")
    w1 = pixels.shape[1]
    assert w1 / w0 == 5 / 4  # one more panel of the same width
    # the correction panel (the fourth of five) is red/blue: negative and positive halves differ in colour
    panel = pixels[:, 3 * w1 // 5 : 4 * w1 // 5]
    reds, blues = panel[..., 0] - panel[..., 2], panel[..., 2] - panel[..., 0]
    assert reds.max() > 100 and blues.max() > 100


def test_uncertainty_figure_shows_the_significance_on_a_fixed_noise_scale(tmp_path) -> None:  # type: ignore[no-untyped-def]
    panels = []
    for scale in (1.0, 30.0):  # |z| of 1 (noise): pale; |z| of 30: full colour
        pixels = _figure_case(tmp_path, {"dc_correction": 1.0, "dc_significance": scale}, f"z{scale}.png")
        w = pixels.shape[1]
        panels.append(pixels[:, 4 * w // 6 : 5 * w // 6])  # the fifth of six panels
    saturation = [float((p.max(axis=-1) - p.min(axis=-1)).max()) for p in panels]  # 0 for black, grey, white
    assert saturation[0] < 0.4 * saturation[1]
