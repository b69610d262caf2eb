"""NIfTI: RAS affine from LPS geometry, round trips, BIDS sidecar, agreement with DICOM (and dcm2niix)."""

from __future__ import annotations

import json
import math
import subprocess

import nibabel as nib
import numpy as np
import pytest

from hifield.errors import FileFormatError
from hifield.io.dicom import read_dicom_series, write_dicom_series
from hifield.io.nifti import lps_zyx_to_ras_affine, read_nifti, write_nifti

from .conftest import make_image, require_tool


def _oblique(image, degrees=15.0):
    t = math.radians(degrees)
    rot = np.eye(4)
    rot[0:2, 0:2] = [[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]
    return image.replace(header=image.header.replace(affine=rot @ image.header.affine))


def test_affine_maps_voxels_to_ras(rng):
    image = _oblique(make_image(rng))
    lps_affine = image.header.affine
    ras = lps_zyx_to_ras_affine(lps_affine)
    for idx in [(0, 0, 0), (2, 5, 7), (1, 19, 15)]:
        z, y, x = (lps_affine @ [*idx, 1])[:3]  # LPS metres in (z, y, x)
        expected = np.array([-x, -y, z]) * 1e3  # RAS mm in (X, Y, Z)
        got = (ras @ [idx[2], idx[1], idx[0], 1])[:3]
        np.testing.assert_allclose(got, expected, atol=1e-9)


def test_round_trip(tmp_path, rng):
    image = _oblique(make_image(rng))
    path = write_nifti(image, tmp_path / "sub-01_T1w.nii.gz")
    assert path.exists() and (tmp_path / "sub-01_T1w.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub-01_T1w.json", "sub-01_T1w.nii.gz"]
    nii = nib.load(path)
    assert nii.get_data_dtype() == np.float32
    assert nii.shape == (16, 20, 3)
    assert int(nii.header["sform_code"]) == 1 and int(nii.header["qform_code"]) == 1
    np.testing.assert_allclose(nii.get_qform(), nii.get_sform(), atol=1e-5)
    back = read_nifti(path)
    np.testing.assert_array_equal(back.data, image.data)
    np.testing.assert_allclose(back.header.affine, image.header.affine, atol=1e-12)
    acq = back.header.acquisition
    assert acq.b0_t == 7.0 and acq.te_s == pytest.approx(0.0042) and acq.ti_s == pytest.approx(0.9)
    assert acq.scanning_sequence == "IR\\GR"
    assert back.header.recon_method == "sense"


def test_sidecar_values(tmp_path, rng):
    image = make_image(rng)
    write_nifti(image, tmp_path / "a.nii")
    meta = json.loads((tmp_path / "a.json").read_text())
    assert meta["MagneticFieldStrength"] == 7.0
    assert meta["EchoTime"] == pytest.approx(0.0042)  # BIDS: seconds
    assert meta["RepetitionTime"] == pytest.approx(0.0123)
    assert meta["InversionTime"] == pytest.approx(0.9)
    assert meta["FlipAngle"] == pytest.approx(15.0)
    assert meta["ImagingFrequency"] == pytest.approx(298.0423496, rel=1e-6)
    assert meta["ParallelReductionFactorInPlane"] == 2.0


def test_dicom_and_nifti_agree_voxel_by_voxel(tmp_path, rng):
    image = _oblique(make_image(rng))
    write_dicom_series(image, tmp_path / "dcm", series_description="x")
    write_nifti(image, tmp_path / "x.nii")
    from_dicom = read_dicom_series(tmp_path / "dcm")
    from_nifti = read_nifti(tmp_path / "x.nii")
    np.testing.assert_allclose(from_dicom.header.affine, from_nifti.header.affine, atol=1e-9)
    np.testing.assert_allclose(from_dicom.data, from_nifti.data, atol=float(image.data.max()) / 65535 + 1e-5)


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.nii"
    bad.write_bytes(b"\0" * 100)
    with pytest.raises(FileFormatError):
        read_nifti(bad)
    with pytest.raises(FileFormatError):
        read_nifti(tmp_path / "missing.nii")


@pytest.mark.external
def test_dcm2niix_agrees_with_our_nifti(tmp_path, rng):
    exe = require_tool("dcm2niix")
    image = _oblique(make_image(rng, shape=(4, 20, 16)), degrees=10)
    write_dicom_series(image, tmp_path / "dcm", series_description="x")
    ours = nib.load(write_nifti(image, tmp_path / "ours.nii", sidecar=False))
    out = tmp_path / "conv"
    out.mkdir()
    subprocess.run(
        [exe, "-b", "y", "-z", "n", "-f", "theirs", "-o", str(out), str(tmp_path / "dcm")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    theirs = nib.load(out / "theirs.nii")
    # compare world coordinates of every voxel centre and the values there (dcm2niix may flip axes)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in theirs.shape[:3]], indexing="ij"), -1).reshape(-1, 3)
    world = nib.affines.apply_affine(theirs.affine, ijk)
    ours_ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(ours.affine), world)).astype(int)
    v_theirs = np.asarray(theirs.dataobj, dtype=np.float64)[tuple(ijk.T)]
    v_ours = np.asarray(ours.dataobj, dtype=np.float64)[tuple(ours_ijk.T)]
    np.testing.assert_allclose(nib.affines.apply_affine(ours.affine, ours_ijk), world, atol=1e-3)
    np.testing.assert_allclose(v_theirs, v_ours, rtol=0, atol=2 * float(theirs.dataobj.slope))
    meta = json.loads((out / "theirs.json").read_text())
    assert meta["MagneticFieldStrength"] == 7 and meta["EchoTime"] == pytest.approx(0.0042)
