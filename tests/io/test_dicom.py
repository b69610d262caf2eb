"""DICOM MR series: values read back with pydicom, geometry, dciodvfy validation, bad input."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from hifield.data import Image, ImageHeader
from hifield.errors import ConfigError, FileFormatError
from hifield.io.dicom import read_dicom_series, write_dicom_series

from .conftest import make_image, require_tool

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def test_tags_read_back_with_pydicom(tmp_path, rng):
    image = make_image(rng)
    files = write_dicom_series(image, tmp_path, series_description="GRE T1 2D", series_number=7)
    assert len(files) == 3 and all(f.exists() for f in files)
    dss = [pydicom.dcmread(f) for f in files]
    acq = image.header.acquisition
    for k, ds in enumerate(dss):
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.Modality == "MR"
        assert float(ds.MagneticFieldStrength) == pytest.approx(7.0)
        assert float(ds.EchoTime) == pytest.approx(4.2)
        assert float(ds.RepetitionTime) == pytest.approx(12.3)
        assert float(ds.InversionTime) == pytest.approx(900.0)
        assert float(ds.FlipAngle) == pytest.approx(15.0)
        assert float(ds.PixelBandwidth) == pytest.approx(260.0)
        assert float(ds.ImagingFrequency) == pytest.approx(7.0 * 42.577478518, rel=1e-6)
        assert list(ds.ScanningSequence) == ["IR", "GR"]
        assert list(ds.SequenceVariant) == ["SP", "MP"]
        assert ds.SequenceName == "hf_gre2d"
        assert list(ds.AcquisitionMatrix) == [0, 16, 20, 0]
        assert float(ds.ParallelReductionFactorInPlane) == pytest.approx(2.0)
        assert "SENSE" in ds.ImageComments and "sense" in ds.DerivationDescription
        assert ds.SeriesNumber == 7 and ds.SeriesDescription == "GRE T1 2D"
        assert ds.InstanceNumber == k + 1
        assert [float(v) for v in ds.PixelSpacing] == pytest.approx([6.25, 7.5])
        assert float(ds.SliceThickness) == pytest.approx(4.0)
        assert [float(v) for v in ds.ImageOrientationPatient] == pytest.approx([1, 0, 0, 0, 1, 0])
        # position of voxel (k, 0, 0): affine column z is 4 mm, translation (z, y, x) = (6, -82.5, -55) mm
        assert [float(v) for v in ds.ImagePositionPatient] == pytest.approx([-55.0, -82.5, 6.0 + 4.0 * k])
        assert ds.pixel_array.dtype == np.uint16
        values = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        truth = image.data[0, k]
        assert np.abs(values - truth).max() <= float(ds.RescaleSlope)
        assert float(ds.WindowWidth) > 0
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert len({str(ds[key].value) for ds in dss}) == 1
    assert len({ds.SOPInstanceUID for ds in dss}) == 3
    assert acq is not None


def test_round_trip_geometry_values_header(tmp_path, rng):
    image = make_image(rng)
    write_dicom_series(image, tmp_path, series_description="x")
    back = read_dicom_series(tmp_path)
    assert back.data.shape == image.data.shape and back.data.dtype == np.float32
    np.testing.assert_allclose(back.data, image.data, atol=float(image.data.max()) / 65535 + 1e-6)
    np.testing.assert_allclose(back.header.affine, image.header.affine, atol=1e-9)
    a, b = image.header.acquisition, back.header.acquisition
    for name in ("b0_t", "te_s", "tr_s", "ti_s", "flip_angle_rad", "pixel_bandwidth_hz", "acceleration"):
        assert getattr(b, name) == pytest.approx(getattr(a, name)), name
    assert (b.scanning_sequence, b.sequence_variant, b.sequence_name) == (
        a.scanning_sequence,
        a.sequence_variant,
        a.sequence_name,
    )
    assert b.matrix == a.matrix
    assert back.header.recon_method == "sense"


def test_oblique_geometry_round_trip(tmp_path, rng):
    image = make_image(rng, shape=(4, 8, 6))
    theta = math.radians(20)
    rot = np.eye(4)
    rot[1:3, 1:3] = [[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]
    affine = rot @ image.header.affine
    image = image.replace(header=image.header.replace(affine=affine))
    write_dicom_series(image, tmp_path, series_description="oblique")
    back = read_dicom_series(sorted(tmp_path.glob("*.dcm"))[::-1])  # order of files must not matter
    np.testing.assert_allclose(back.header.affine, affine, atol=1e-9)


def test_magnitude_and_phase_combine(tmp_path, rng):
    image = make_image(rng, complex_data=True)
    files = write_dicom_series(image, tmp_path, series_description="cplx", phase=True)
    assert len(files) == 6
    series = {pydicom.dcmread(f).SeriesInstanceUID for f in files}
    assert len(series) == 2
    back = read_dicom_series(tmp_path)
    assert back.data.dtype == np.complex64
    np.testing.assert_allclose(np.angle(back.data), np.angle(image.data), atol=2e-4)
    np.testing.assert_allclose(np.abs(back.data), np.abs(image.data), rtol=2e-4, atol=0.01)


def test_several_volumes_and_no_acquisition(tmp_path, rng):
    data = rng.uniform(0, 10, (2, 1, 2, 5, 4)).astype(np.float32)
    image = Image(data=data, header=ImageHeader(affine=np.diag([0.002, 0.001, 0.001, 1.0])))
    write_dicom_series(image, tmp_path, series_description="synthetic")
    back = read_dicom_series(tmp_path)
    assert back.data.shape == (2, 1, 2, 5, 4)
    np.testing.assert_allclose(back.data, data, atol=10 / 65535 + 1e-6)
    assert back.header.acquisition is None


def test_study_uid_shared(tmp_path, rng):
    image = make_image(rng, shape=(1, 4, 4))
    a = write_dicom_series(image, tmp_path / "a", series_description="a", study_uid="1.2.3.4")
    b = write_dicom_series(image, tmp_path / "b", series_description="b", series_number=2, study_uid="1.2.3.4")
    da, db = pydicom.dcmread(a[0]), pydicom.dcmread(b[0])
    assert da.StudyInstanceUID == db.StudyInstanceUID == "1.2.3.4"
    assert da.FrameOfReferenceUID == db.FrameOfReferenceUID
    assert da.SeriesInstanceUID != db.SeriesInstanceUID


def test_pydicom_shipped_mr_files():
    names = (
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "MR_small_padded.dcm",
    )
    for name in (*names, "MR_small_expb.dcm"):
        image = read_dicom_series(PYDICOM_FILES / name)
        assert image.data.shape == (1, 1, 64, 64), name
        ds = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm")
        np.testing.assert_allclose(image.data[0, 0], ds.pixel_array.astype(np.float32))
        assert image.header.acquisition.te_s == pytest.approx(float(ds.EchoTime) * 1e-3)
        assert image.header.acquisition.tr_s == pytest.approx(float(ds.RepetitionTime) * 1e-3)
        spacing = [float(v) * 1e-3 for v in ds.PixelSpacing]
        np.testing.assert_allclose(np.linalg.norm(image.header.affine[:3, 1:3], axis=0), spacing)


def test_bad_inputs(tmp_path, rng):
    with pytest.raises(FileFormatError, match="may be truncated"):
        read_dicom_series(PYDICOM_FILES / "MR_truncated.dcm")
    with pytest.raises(FileFormatError, match="not MR"):
        read_dicom_series(PYDICOM_FILES / "CT_small.dcm")
    junk = tmp_path / "junk.dcm"
    junk.write_text("not dicom")
    with pytest.raises(FileFormatError, match="not a DICOM"):
        read_dicom_series(junk)
    with pytest.raises(FileFormatError, match="no DICOM MR files"):
        read_dicom_series(_empty(tmp_path))
    with pytest.raises(ConfigError):
        write_dicom_series(make_image(rng), tmp_path / "none", series_description="x", magnitude=False)
    with pytest.raises(FileFormatError) as info:
        read_dicom_series(PYDICOM_FILES / "CT_small.dcm")
    assert "\n" not in str(info.value)


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    (d / "notes.txt").write_text("hello")
    return d


@pytest.mark.external
def test_dciodvfy_zero_errors(tmp_path, rng):
    exe = require_tool("dciodvfy")
    image = make_image(rng, complex_data=True)
    files = write_dicom_series(image, tmp_path, series_description="GRE T1 2D", phase=True)
    for f in files:
        run = subprocess.run([exe, str(f)], capture_output=True, text=True, timeout=60)
        out = run.stdout + run.stderr
        errors = [line for line in out.splitlines() if line.startswith("Error")]
        assert errors == [], (f.name, errors)
        assert "MRImage" in out


def test_pydicom_shipped_mr_series_geometry():
    folder = PYDICOM_FILES / "dicomdirtests" / "98892003" / "MR700"  # a radial localizer: 7 orientations
    with pytest.raises(FileFormatError, match="different orientations"):
        read_dicom_series(folder)
    for path in sorted(folder.iterdir())[:3]:
        ds = pydicom.dcmread(path)
        image = read_dicom_series(path)
        affine = image.header.affine
        np.testing.assert_allclose((affine @ [0, 0, 0, 1])[:3][::-1] * 1e3, [float(v) for v in ds.ImagePositionPatient])
        orientation = [float(v) for v in ds.ImageOrientationPatient]
        np.testing.assert_allclose(affine[:3, 2][::-1] / np.linalg.norm(affine[:3, 2]), orientation[:3], atol=1e-4)
        np.testing.assert_allclose(affine[:3, 1][::-1] / np.linalg.norm(affine[:3, 1]), orientation[3:], atol=1e-4)
        np.testing.assert_allclose(image.data[0, 0], ds.pixel_array.astype(np.float32))
        assert image.header.acquisition.b0_t == pytest.approx(float(ds.MagneticFieldStrength))


def test_pick_one_series_from_a_folder():
    folder = PYDICOM_FILES / "dicomdirtests" / "98892003" / "MR1"
    with pytest.raises(FileFormatError, match="3 DICOM series"):
        read_dicom_series(folder)
    by_series: dict[str, list] = {}
    for f in sorted(folder.iterdir()):
        by_series.setdefault(str(pydicom.dcmread(f).SeriesInstanceUID), []).append(f)
    for uid, files in by_series.items():
        image = read_dicom_series(folder, series_uid=uid)
        assert image.data.shape[-3] == len(files)


def test_slice_order_against_the_normal_round_trips(tmp_path, rng):
    image = make_image(rng, shape=(4, 6, 5))
    flip = np.eye(4)
    flip[0, 0] = -1  # z index runs towards inferior
    affine = image.header.affine @ flip
    image = image.replace(header=image.header.replace(affine=affine))
    write_dicom_series(image, tmp_path, series_description="flipped")
    back = read_dicom_series(tmp_path)
    np.testing.assert_allclose(back.header.affine, affine, atol=1e-9)
    np.testing.assert_allclose(back.data, image.data, atol=float(image.data.max()) / 65535 + 1e-6)
