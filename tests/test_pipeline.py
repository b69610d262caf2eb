"""``hf.scan()`` from Python: the chain in one call, scan time falling with acceleration, refusals."""

from __future__ import annotations

import numpy as np
import pytest

import hifield as hf
from hifield.errors import ConfigError, HardwareLimitError, SequenceError


def small(**changes: object) -> hf.ScanConfig:
    base = {"matrix": 64, "n_calibration": 12, "write_files": False, "n_coils": 8, "recons": ("fft",)}
    base.update(changes)
    return hf.ScanConfig(**base)  # type: ignore[arg-type]


def test_scan_time_falls_by_the_acceleration() -> None:
    full = hf.scan(small(acceleration=1, matrix=96)).summary
    fast = hf.scan(small(acceleration=6, n_calibration=8, matrix=96)).summary
    assert full["acceleration"] == 1
    assert fast["scan_time_full_s"] == pytest.approx(full["scan_time_s"], rel=1e-6)
    assert full["scan_time_s"] / fast["scan_time_s"] == pytest.approx(fast["acceleration"], rel=0.05)
    assert fast["acceleration"] == pytest.approx(6, rel=0.02)


def test_scan_accepts_strings_and_returns_images() -> None:
    result = hf.scan(small(recons="fft,sense", field="1.5T"))
    assert result.truth.shape == (1, 64, 64)
    assert set(result.images) == {"fft", "sense"}
    assert result.summary["field_t"] == 1.5
    assert result.files == {}


@pytest.mark.parametrize(
    ("changes", "error", "needle"),
    [
        ({"acceleration": 0.5}, ConfigError, "acceleration must be a number >= 1"),
        ({"recons": ("magic",)}, ConfigError, "unknown reconstruction"),
        ({"phantom": "dog"}, ConfigError, "unknown phantom"),
        ({"field": "4T"}, ConfigError, "unknown scanner preset"),
        ({"protocol": "nosuch"}, ConfigError, "unknown protocol"),
        ({"matrix": 4}, ConfigError, "matrix must be an integer between 8 and 1024; got 4"),
        ({"matrix": 2048}, ConfigError, "matrix must be an integer between 8 and 1024; got 2048"),
        ({"n_calibration": -1}, ConfigError, "calibration lines must be an integer >= 0; got -1"),
        ({"pattern": "zigzag"}, ConfigError, "unknown sampling pattern 'zigzag'"),
    ],
)
def test_scan_refuses_bad_options(changes: dict[str, object], error: type[Exception], needle: str) -> None:
    with pytest.raises(error, match=needle) as info:
        hf.scan(small(**changes))
    assert "\n" not in str(info.value)


def test_protocol_beyond_the_hardware_is_refused_before_simulation(tmp_path: object) -> None:
    protocol = hf.get_protocol("gre_t1_2d").with_changes(fov_m=0.02, matrix=256, readout_bandwidth_hz_per_pixel=2000.0)
    path = __import__("pathlib").Path(str(tmp_path)) / "tiny_fov.yaml"
    hf.save_protocol(protocol, path)
    with pytest.raises((HardwareLimitError, SequenceError)) as info:
        hf.scan(small(protocol=str(path), matrix=None))
    assert "limit" in str(info.value) or "minimum" in str(info.value)


def test_scan_runs_on_a_user_scanner_file(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "lab.yaml"
    path.write_text("name: lab 2.9T\nb0_t: 2.89\nn_receive_coils: 4\n")
    summary = hf.scan(small(field=str(path), n_coils=None)).summary
    assert summary["scanner"] == "lab 2.9T" and summary["field_t"] == 2.89 and summary["n_coils"] == 4
    assert hf.Scanner.preset("3T").with_receive_coils(6).receive.n_coils == 6
    with pytest.raises(ConfigError, match="at least 1"):
        hf.Scanner.preset("3T").with_receive_coils(0)


@pytest.mark.parametrize("protocol", ["tse_t2_2d", "epi_gre_2d"])
def test_scan_runs_echo_train_protocols_with_the_fast_engine(protocol: str) -> None:
    result = hf.scan(small(protocol=protocol, acceleration=2, recons="fft,cs"))
    summary = result.summary
    assert summary["engine"] == "fast"
    assert summary["acceleration"] == pytest.approx(2.0, rel=0.05)
    assert all(np.isfinite(image).all() and image.max() > 0 for image in result.images.values())
    if protocol == "tse_t2_2d":  # (accelerated EPI has a shorter echo train, so less distortion than its truth)
        cs = next(m for m in summary["reconstructions"] if m["method"] == "cs")
        zero_filled = next(m for m in summary["reconstructions"] if m["method"] == "fft")
        assert cs["nmse"] < zero_filled["nmse"]


def test_scan_accelerates_radial_by_playing_fewer_spokes() -> None:
    full = hf.scan(small(protocol="radial_gre_2d", matrix=32, acceleration=1, recons="fft")).summary
    fast = hf.scan(small(protocol="radial_gre_2d", matrix=32, acceleration=4, recons="fft,cs")).summary
    assert fast["pattern"] == "radial subset" and fast["calibration_lines"] == 0
    assert full["scan_time_s"] / fast["scan_time_s"] == pytest.approx(fast["acceleration"], rel=0.05)
    cs = next(m for m in fast["reconstructions"] if m["method"] == "cs")
    gridding = next(m for m in fast["reconstructions"] if m["method"] == "fft")
    assert cs["nmse"] < gridding["nmse"]


def test_undersampled_spiral_takes_its_coil_maps_from_a_calibration_prescan() -> None:
    summary = hf.scan(small(protocol="spiral_vd_2d", acceleration=4, recons="fft,cs")).summary
    assert summary["calibration_prescan_s"] > 0  # four of sixteen interleaves leave the centre below Nyquist
    cs = next(m for m in summary["reconstructions"] if m["method"] == "cs")
    gridding = next(m for m in summary["reconstructions"] if m["method"] == "fft")
    assert cs["nmse"] < 0.5 * gridding["nmse"]


def test_3d_mprage_scan_accelerates_along_partitions() -> None:
    """A 3D protocol runs on a brain volume on its partition grid; fewer partitions means fewer inversions."""
    result = hf.scan(small(protocol="mprage_3d", matrix=32, acceleration=2, recons="fft"))
    summary = result.summary
    assert result.truth.shape == (64, 32, 32)  # mprage_3d: 64 partitions
    assert summary["scan_time_full_s"] / summary["scan_time_s"] == pytest.approx(2.0, rel=0.05)
    assert summary["reconstructions"][0]["ssim"] > 0.5


def test_scan_offers_and_runs_the_registrys_reconstructors() -> None:
    from hifield.pipeline import RECON_CHOICES
    from hifield.recon import reconstructor, reconstructor_names

    # every registered reconstructor that a scan's data can feed (no partial-Fourier acquisition) is offered
    assert set(RECON_CHOICES) == {n for n in reconstructor_names() if not reconstructor(n).needs_partial_fourier}
    assert {"grappa", "tv"} <= set(RECON_CHOICES)
    result = hf.scan(small(recons=("fft", "grappa", "tv"), pattern="equispaced", acceleration=2))
    rows = {row["method"]: row for row in result.summary["reconstructions"]}
    assert rows["grappa"]["description"] == reconstructor("grappa").label
    # measured at 64 x 64, 8 coils, R 2: fft 0.76, grappa 0.996, tv 0.956
    assert rows["grappa"]["ssim"] > 0.95 and rows["tv"]["ssim"] > 0.9 > rows["fft"]["ssim"]


def test_scan_simulates_through_simulate_exam_whose_noise_free_scan_is_the_reference_on_its_lines() -> None:
    """The simulation step of ``scan()`` is :func:`hifield.pipeline.simulate_exam`: the raw data ``scan`` returns are
    its noisy accelerated scan, and without noise that scan equals the fully sampled reference on the sampled lines
    (what an encoding limit, e.g. the learned_recon benchmark's, relies on)."""
    from hifield import pipeline

    cfg = small(acceleration=4, n_calibration=8).validated()
    exam = pipeline.exam_for(cfg)
    phantom, _ = pipeline.exam_phantom(cfg, exam)
    reference, clean = pipeline.simulate_exam(cfg, exam, phantom, noise=False)
    _, noisy = pipeline.simulate_exam(cfg, exam, phantom)
    mask = clean.sampling_mask
    peak = float(np.abs(reference.kspace).max())
    assert mask.mean() == pytest.approx(1 / cfg.acceleration, rel=0.05)
    assert np.abs(clean.kspace - reference.kspace * mask).max() < 1e-5 * peak
    assert 1e-4 * peak < np.abs(noisy.kspace - clean.kspace).max() < 0.05 * peak
    np.testing.assert_array_equal(hf.scan(cfg).raw.kspace, noisy.kspace)
