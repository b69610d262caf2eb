"""A slice-stack scan: each slice's anatomy at its position, one DICOM series and one NIfTI volume per method."""

from __future__ import annotations

import json
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest

from hifield.pipeline import ScanConfig, scan
from hifield.pipeline_stack import stack_affine


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    out = tmp_path_factory.mktemp("stack") / "exam"
    config = ScanConfig(
        n_slices=3, slice_thickness_m=0.004, matrix=32, n_calibration=8, recons=("fft",), out=out, n_coils=4
    )
    return scan(config), out


def test_stack_metrics_and_anatomy_per_slice(stack):
    result, out = stack
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_slices"] == 3 and summary["slice_thickness_mm"] == pytest.approx(4.0)
    assert summary["slice_positions_mm"] == pytest.approx([-4.0, 0.0, 4.0])
    (fft,) = summary["reconstructions"]
    assert [s["position_mm"] for s in fft["per_slice"]] == pytest.approx([-4.0, 0.0, 4.0])
    assert all(0 <= s["nmse"] < 1 for s in fft["per_slice"]) and 0 <= fft["nmse"] < 1
    assert set(summary["sar_w_per_kg"]) == {"head_6min", "head_10s", "whole_body_6min", "whole_body_10s"}
    # each slice shows the anatomy at its own position: neighbouring slices differ
    truth = result.truth
    assert truth.shape == (3, 32, 32)
    assert np.abs(truth[0] - truth[2]).mean() > 0.02 * truth.mean()
    assert (out / "figure.png").stat().st_size > 0
    assert len(list((out / "raw").glob("slice_*.h5"))) == 3


def test_stack_dicom_series_and_nifti_volume(stack):
    result, out = stack
    files = sorted((out / "dicom" / "fft").glob("*.dcm"))
    assert len(files) == 3
    ds = [pydicom.dcmread(f) for f in files]
    assert len({d.SeriesInstanceUID for d in ds}) == 1
    z = [float(d.ImagePositionPatient[2]) for d in ds]
    np.testing.assert_allclose(sorted(z), [-4.0, 0.0, 4.0], atol=1e-6)
    np.testing.assert_allclose(sorted(float(d.SliceLocation) for d in ds), [-4.0, 0.0, 4.0], atol=1e-6)
    assert all(float(d.SliceThickness) == pytest.approx(4.0) for d in ds)
    assert all(float(d.SpacingBetweenSlices) == pytest.approx(4.0) for d in ds)
    volume = np.asanyarray(nib.load(out / "nifti" / "fft.nii.gz").dataobj)
    assert volume.shape[-1] == 3 or volume.shape[0] == 3
    # DICOM pixels (rescaled) hold the same volume as the result, slice by slice
    by_z = sorted(ds, key=lambda d: float(d.ImagePositionPatient[2]))
    dicom = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in by_z])
    np.testing.assert_allclose(dicom, result.images["fft"], atol=2e-4 * float(result.images["fft"].max()) + 1e-6)


def test_stack_affine_with_a_gap():
    one = np.diag([0.004, 0.001, 0.001, 1.0])
    a = stack_affine(one, [-0.005, 0.0, 0.005])
    np.testing.assert_allclose(a @ [2, 0, 0, 1], [0.005, 0, 0, 1])


@pytest.mark.external
@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (Debian dicom3tools) not installed")
def test_stack_series_passes_dciodvfy_with_no_error(stack):
    _, out = stack
    for path in sorted((out / "dicom" / "fft").glob("*.dcm")):
        proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60, check=False)
        errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")]
        assert errors == [], (path.name, errors)


@pytest.mark.external
@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix not installed")
def test_dcm2niix_turns_the_series_into_hifields_nifti_volume(stack, tmp_path):
    # an independent converter reads the series as one 3D volume equal, voxel by voxel in world space, to ours
    _, out = stack
    proc = subprocess.run(
        ["dcm2niix", "-o", str(tmp_path), "-f", "vol", "-z", "n", str(out / "dicom" / "fft")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    theirs, ours = nib.load(tmp_path / "vol.nii"), nib.load(out / "nifti" / "fft.nii.gz")
    a = np.asarray(theirs.dataobj, dtype=np.float64)
    b = np.asarray(ours.dataobj, dtype=np.float64)
    assert a.shape == b.shape
    # dcm2niix may flip axes for display: map our voxel grid into theirs through both affines
    index_map = np.linalg.inv(theirs.affine) @ ours.affine
    np.testing.assert_allclose(np.abs(index_map[:3, :3]), np.eye(3), atol=1e-4)
    grid = np.indices(b.shape).reshape(3, -1)
    ijk = np.rint(index_map[:3, :3] @ grid + index_map[:3, 3:]).astype(int)
    resampled = a[ijk[0], ijk[1], ijk[2]].reshape(b.shape)
    # equal to within the DICOM's 16-bit quantisation (RescaleSlope)
    slope = float(pydicom.dcmread(next((out / "dicom" / "fft").glob("*.dcm"))).RescaleSlope)
    np.testing.assert_allclose(resampled, b, atol=slope)


def _workers_in_a_daemon(queue) -> None:  # run in a daemonic child process
    from hifield.pipeline_stack import slice_workers

    queue.put(slice_workers(8))


def test_a_daemonic_process_scans_its_slices_itself() -> None:
    # a Dask worker (hifield study) is daemonic: it may not start the slice pool, so it scans serially
    import multiprocessing

    from hifield.pipeline_stack import slice_workers

    assert slice_workers(8) >= 1
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_workers_in_a_daemon, args=(queue,), daemon=True)
    child.start()
    assert queue.get(timeout=120) == 1
    child.join(timeout=60)
