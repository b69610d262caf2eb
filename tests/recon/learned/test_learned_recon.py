"""The shipped learned models through ``reconstruct`` and ``hifield recon``: extras, AI labelling, metadata."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")

from hifield.recon import reconstruct  # noqa: E402
from hifield.recon.learned.infer import calibration_path, load_model, weights_path  # noqa: E402

EXTRAS = {
    "dc_residual_kspace",
    "dc_residual_image",
    "dc_correction",
    "dc_significance",
    "null_space",
    "conformal_lower",
    "conformal_upper",
}


def _simdata():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("learned_simdata", Path(__file__).parents[1] / "simdata.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("kind", ["varnet", "modl"])
def test_shipped_weights_are_small_and_record_how_they_were_trained(kind: str) -> None:
    path = weights_path(kind)
    assert path.stat().st_size < 20 * 2**20
    _, meta = load_model(str(path))
    assert meta["training_command"].startswith("hifield train --config configs/")
    assert len(meta["commit"]) == 40 and meta["config"]["model"] == kind
    assert 0 < meta["conformal_lambda"] < np.inf
    # calibrated by risk control over enough held-out images that its coverage on others is within 2 points of 90 %
    assert "risk control" in meta["conformal_method"] and meta["conformal_n_calibration"] >= 80
    assert abs(meta["conformal_test_coverage"] - 0.9) <= 0.02 and meta["conformal_n_test"] >= 50
    # re-calibrated through the calibration file beside the weights, with a width that grows with R
    assert calibration_path(path).is_file() and meta["conformal_acceleration_power"] > 0
    assert meta["conformal_n_tune"] >= 50 and "conformal_test_coverage_p10_p90_by_acceleration" in meta


@pytest.mark.parametrize("kind", ["varnet", "modl"])
def test_learned_image_comes_with_uncertainty_maps_and_agrees_with_the_data(kind: str) -> None:
    sim = _simdata()
    mask = sim.random_mask(64, 64, r=4, n_acs=8, seed=1)
    raw, _, _ = sim.make_raw(64, 8, mask=mask, noise=0.01)
    image = reconstruct(raw, method=kind)
    assert set(image.extras) == EXTRAS
    for value in image.extras.values():
        assert value.shape == image.data.shape and value.dtype == np.float32 and np.all(np.isfinite(value))
    lower, upper = image.extras["conformal_lower"], image.extras["conformal_upper"]
    assert np.all(lower <= np.abs(image.data) + 1e-6) and np.all(upper >= np.abs(image.data) - 1e-6)
    _, meta = load_model(str(weights_path(kind)))
    assert "dc_correction" in meta["conformal_width"]  # the interval is at least lambda R^p |correction| wide
    factor = (1 / np.mean(mask)) ** meta.get("conformal_acceleration_power", 0.0)
    half = upper - np.abs(image.data)
    floor = meta["conformal_lambda"] * factor * np.abs(image.extras["dc_correction"])
    assert np.all(half >= floor * (1 - 1e-4) - 1e-6)
    assert image.header.description.startswith("AI-reconstructed by hifield-" + kind)


def test_the_significance_map_reads_the_noise_from_the_data_s_noise_scan() -> None:
    from hifield.recon.learned import LearnedConfig

    sim = _simdata()
    raw, _, _ = sim.make_raw(64, 8, mask=sim.random_mask(64, 64, r=4, n_acs=8, seed=3), noise=0.01)
    scan = (0.01 / np.sqrt(2)) * (
        np.random.default_rng(4).standard_normal((8, 2048)) + 1j * np.random.default_rng(5).standard_normal((8, 2048))
    )
    config = LearnedConfig()
    z = [
        reconstruct(raw.replace(noise=(k * scan).astype(np.complex64)), method="modl", config=config).extras[
            "dc_significance"
        ]
        for k in (1.0, 2.0)
    ]
    np.testing.assert_allclose(z[1], z[0] / 2, rtol=1e-3, atol=1e-3)  # twice the noise: half the significance
    # without a noise scan the corners of k-space stand in: the same map up to their estimate of the noise
    alone = reconstruct(raw, method="modl", config=config).extras["dc_significance"]
    assert np.corrcoef(alone.ravel(), z[0].ravel())[0, 1] > 0.9
    # a noise scan of other channels is refused in one line, as prewhitening refuses it
    from hifield.errors import ReconstructionError

    with pytest.raises(
        ReconstructionError, match=r"^the noise scan has 7 channels but k-space has 8; use the matching"
    ):
        reconstruct(raw.replace(noise=scan[:7].astype(np.complex64)), method="modl", config=config)


def test_the_interval_scales_as_the_acceleration_to_the_power_its_weights_were_calibrated_with(tmp_path: Path) -> None:
    from hifield.recon.learned import LearnedConfig

    sim = _simdata()
    mask = sim.random_mask(64, 64, r=4, n_acs=8, seed=2)
    raw, _, _ = sim.make_raw(64, 8, mask=mask, noise=0.01)
    state = torch.load(weights_path("varnet"), weights_only=False)
    halves = []
    for power in (0.0, 1.0):
        state["metadata"]["conformal_acceleration_power"] = power
        path = tmp_path / f"p{power}.pt"
        torch.save(state, path)
        image = reconstruct(raw, method="varnet", config=LearnedConfig(weights=str(path)))
        halves.append(image.extras["conformal_upper"] - np.abs(image.data))
    np.testing.assert_allclose(halves[1], halves[0] / np.mean(mask), rtol=1e-4, atol=1e-6)


def test_hifield_recon_writes_the_maps_and_labels_the_dicom_series_as_ai(tmp_path: Path) -> None:
    import pydicom

    from hifield.cli.main import main
    from hifield.io import write_ismrmrd

    sim = _simdata()
    raw, _, _ = sim.make_raw(64, 8, mask=sim.random_mask(64, 64, r=4, n_acs=8, seed=2), noise=0.01)
    write_ismrmrd(raw, tmp_path / "raw.h5")
    assert main(["recon", str(tmp_path / "raw.h5"), "--out", str(tmp_path / "v.nii.gz"), "--method", "varnet"]) == 0
    for name in EXTRAS:
        assert (tmp_path / f"v_{name}.nii.gz").is_file()
    assert main(["recon", str(tmp_path / "raw.h5"), "--out", str(tmp_path / "dcm"), "--method", "varnet"]) == 0
    ds = pydicom.dcmread(sorted((tmp_path / "dcm").glob("*.dcm"))[0])
    _, meta = load_model(str(weights_path("varnet")))
    label = f"{meta['name']} v{meta['version']}"
    assert meta["name"].startswith("hifield-varnet") and f"AI-recon {label}" in ds.SeriesDescription
    assert ds.ImageComments.startswith(f"AI-reconstructed by {label}")


def test_hifield_recon_without_torch_prints_one_line_naming_the_dl_extra(tmp_path: Path) -> None:
    import subprocess
    import sys

    from hifield.io import write_ismrmrd

    sim = _simdata()
    raw, _, _ = sim.make_raw(32, 4, mask=sim.random_mask(32, 32, r=2, n_acs=8, seed=3))
    write_ismrmrd(raw, tmp_path / "raw.h5")
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from hifield.cli.main import main\n"
        "sys.exit(main(['recon', sys.argv[1], '--out', sys.argv[2], '--method', 'varnet']))\n"
    )
    out = tmp_path / "v.nii.gz"
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "raw.h5"), str(out)], capture_output=True, text=True
    )
    assert done.returncode == 1 and not out.exists()
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "hifield[dl]"' in lines[0]
