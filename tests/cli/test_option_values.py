"""Out-of-range option values are refused with one line and exit 1, before any work starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hifield.cli import main as cli_main
from hifield.cli.options import parse_field


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every command in an empty folder (a wrongly accepted ``--out ""`` would write there)."""
    monkeypatch.chdir(tmp_path)


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = cli_main.main(args)
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


def _refused(args: list[str], capsys: pytest.CaptureFixture[str], *words: str) -> None:
    code, lines = _run(args, capsys)
    assert code == 1, lines
    assert len(lines) == 1 and lines[0].startswith("hifield: error:"), lines
    assert "internal error" not in lines[0]
    for word in words:
        assert word in lines[0], lines


@pytest.mark.parametrize("command", ["scan", "simulate", "undersample"])
def test_negative_seed_is_refused(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = {"scan": [], "simulate": ["--out", str(tmp_path / "s.h5")], "undersample": ["x.h5", "--out", "y.h5"]}
    _refused([command, "--seed", "-1", *extra[command]], capsys, "--seed")


@pytest.mark.parametrize("value", ["0", "257", "99999999999999999999"])
@pytest.mark.parametrize("command", ["scan", "simulate"])
def test_coils_out_of_range_is_refused(command: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    extra = ["--out", "s.h5"] if command == "simulate" else []
    _refused([command, "--coils", value, "--matrix", "32", *extra], capsys, "--coils")


def test_negative_timeout_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _refused(["export", str(tmp_path), "--timeout", "-1", "--pacs", "localhost:1"], capsys, "--timeout")


@pytest.mark.parametrize(
    "args",
    [
        ["scan", "--out", "FILE"],
        ["export", "IMG", "--out", "FILE"],
        ["recon", "RAW", "--out", "FILE/x.nii.gz"],
        ["simulate", "--out", "FILE/s.h5"],
    ],
)
def test_existing_file_as_output_folder_is_refused(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "FILE").write_text("keep me")
    args = [a.replace("FILE", str(tmp_path / "FILE")).replace("IMG", str(tmp_path)) for a in args]
    args = [a.replace("RAW", str(tmp_path / "raw.h5")) for a in args]
    _refused(args, capsys, "--out", "FILE")
    assert (tmp_path / "FILE").read_text() == "keep me"


@pytest.mark.parametrize(
    "args",
    [
        ["scan", "--out", ""],
        ["simulate", "--out", ""],
        ["undersample", "x.h5", "--out", ""],
        ["recon", "x.h5", "--out", ""],
        ["phantom", "--out", ""],
        ["coils", "--out", ""],
        ["export", "x", "--out", ""],
    ],
)
def test_empty_out_is_refused(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _refused(args, capsys, "--out is empty")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["scan", "simulate", "phantom"])
def test_overlong_out_is_refused(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "a" * 300 + (".png" if command == "phantom" else ".h5" if command == "simulate" else "")
    _refused([command, "--out", name, "--matrix", "32"], capsys, "too long")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("value", "word"), [("0", "--acceleration"), ("-1", "--acceleration"), ("1000", "coils")])
def test_coils_acceleration_out_of_range(
    value: str, word: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "c.png"
    _refused(["coils", "--matrix", "32", "--acceleration", value, "--out", str(out)], capsys, word)
    assert not out.exists()


def test_repeated_recon_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    _refused(["scan", "--recon", "fft,fft", "--matrix", "32"], capsys, "more than once")


def test_field_needs_its_unit(capsys: pytest.CaptureFixture[str]) -> None:
    _refused(["scan", "--field", "3", "--matrix", "32"], capsys, "did you mean 3T")
    # "3 T" (SI spacing) and "3t" name the 3T preset
    assert parse_field("3 T") == parse_field("3t") == parse_field("3T") == "3T"


def test_export_of_a_dicom_without_pixel_data_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pydicom

    from hifield.data import Image, ImageHeader
    from hifield.io import write_dicom_series

    image = Image(
        data=np.ones((1, 1, 8, 8), np.complex64), header=ImageHeader(affine=np.diag([0.005, 0.001, 0.001, 1.0]))
    )
    files = write_dicom_series(image, tmp_path / "series", series_description="t")
    ds = pydicom.dcmread(files[0])
    del ds.PixelData
    ds.save_as(files[0])
    _refused(["export", str(files[0])], capsys, "without pixel data")


def test_recon_with_a_bad_reference_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hifield.io import write_ismrmrd

    from ..io.conftest import make_raw

    write_ismrmrd(make_raw(np.random.default_rng(0)), tmp_path / "raw.h5")
    (tmp_path / "ref.h5").write_bytes(b"not hdf5 at all")
    out = tmp_path / "r.nii.gz"
    _refused(["recon", str(tmp_path / "raw.h5"), "--method", "fft", "--out", str(out), "--reference", "ref.h5"], capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.h5", "ref.h5"]
