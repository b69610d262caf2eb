"""CLI tests of ``hifield phantom`` and ``hifield coils`` (run as a user would, through files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from hifield.cli.phantom import coils_command, phantom_command


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("phantom")(phantom_command)
    app.command("coils")(coils_command)
    return app


@pytest.mark.slow
def test_phantom_png(tmp_path: Path) -> None:
    png = tmp_path / "maps.png"
    res = CliRunner().invoke(
        _app(), ["phantom", "--kind", "shepp-logan", "--field", "5T", "--out", str(png), "--matrix", "64"]
    )
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "interpolated" in res.output


def test_phantom_nifti(tmp_path: Path) -> None:
    nii = tmp_path / "maps.nii.gz"
    res = CliRunner().invoke(
        _app(), ["phantom", "--kind", "brain", "--field", "3T", "--out", str(nii), "--matrix", "64", "--json"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["shape"] == [1, 64, 64]
    assert summary["nifti_volumes"][:3] == ["pd", "t1_s", "t2_s"]
    wm = next(t for t in summary["tissues"] if t["name"] == "wm")
    assert wm["t1_ms"] == pytest.approx(1084) and not wm["interpolated"]
    import nibabel as nib

    img = nib.load(str(nii))
    assert img.shape == (64, 64, 1, 6)
    data = np.asarray(img.dataobj)
    assert data[..., 0].max() > 0.5  # PD
    # RAS affine: x flipped vs LPS, voxel size 0.24 m / 64 in mm
    assert img.affine[0, 0] == pytest.approx(-240 / 64)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["phantom", "--kind", "pumpkin"], "unknown phantom"),
        (["phantom", "--field", "14T"], "outside 0.1-11.7"),
        (["phantom", "--field", "abc"], "not a number"),
        (["phantom", "--out", "maps.jpg"], "must end in"),
        (["phantom", "--kind", "nist", "--field", "7T"], "calibrated only"),
        (["phantom", "--matrix", "4096", "--slices", "4096"], "GiB"),
        (["coils", "--n", "0"], "integer >= 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tmp_path: Path, args: list[str], message: str) -> None:
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "x.png")]
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 1
    err = res.output.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "x.png").exists()


def test_coils_png_and_json(tmp_path: Path) -> None:
    out = tmp_path / "coils.png"
    res = CliRunner().invoke(_app(), ["coils", "--n", "8", "--out", str(out), "--matrix", "48", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["n_coils"] == 8
    assert 0.05 <= summary["max_noise_correlation"] <= 0.2
    assert summary["mean_g_factor"] >= 1.0
    assert out.read_bytes()[:4] == b"\x89PNG"
