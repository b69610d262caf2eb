"""ISMRMRD round trips, file hygiene, and interoperability with the C++ ismrmrd-tools."""

from __future__ import annotations

import math
import subprocess

import h5py
import numpy as np
import pytest

from hifield.data import RawData
from hifield.errors import FileFormatError
from hifield.io.ismrmrd import read_ismrmrd, write_ismrmrd

from .conftest import make_raw, require_tool


def _flags(path):
    with h5py.File(path, "r") as f:
        head = f["dataset/data"]["head"]
    return head


def test_round_trip_exact(tmp_path, rng):
    raw = make_raw(rng)
    path = tmp_path / "raw.h5"
    write_ismrmrd(raw, path)
    back = read_ismrmrd(path)
    np.testing.assert_array_equal(back.kspace, raw.kspace)
    assert back.kspace.dtype == np.complex64
    np.testing.assert_array_equal(back.mask, raw.mask)
    np.testing.assert_array_equal(back.calibration, raw.calibration)
    np.testing.assert_array_equal(back.noise, raw.noise)
    assert back.header == raw.header
    assert [p.name for p in tmp_path.iterdir()] == ["raw.h5"]


def test_round_trip_other_axes_3d_and_fully_sampled(tmp_path, rng):
    raw = make_raw(rng, shape=(2, 4, 6, 8), other=(2, 3), noise=False, accel=False)
    write_ismrmrd(raw, tmp_path / "r.h5")
    back = read_ismrmrd(tmp_path / "r.h5")
    assert back.kspace.shape == (2, 3, 2, 4, 6, 8)
    np.testing.assert_array_equal(back.kspace, raw.kspace)
    assert back.mask is None and back.calibration is None and back.noise is None
    assert back.header == raw.header


def test_non_line_mask_round_trips(tmp_path, rng):
    raw = make_raw(rng, noise=False)
    mask = raw.mask.copy()
    mask[0, 0, :5] = False  # partial echo on one line: not representable by whole lines
    raw = raw.replace(kspace=(raw.kspace * mask).astype(np.complex64), mask=mask)
    write_ismrmrd(raw, tmp_path / "r.h5")
    back = read_ismrmrd(tmp_path / "r.h5")
    np.testing.assert_array_equal(back.mask, mask)
    np.testing.assert_array_equal(back.kspace, raw.kspace)


def test_xml_header_and_flags(tmp_path, rng):
    import ismrmrd
    import ismrmrd.xsd as X

    raw = make_raw(rng)
    path = tmp_path / "raw.h5"
    write_ismrmrd(raw, path)
    ds = ismrmrd.Dataset(str(path), "dataset", create_if_needed=False, mode="r")
    try:
        h = X.CreateFromDocument(ds.read_xml_header().decode())
        n_acq = ds.number_of_acquisitions()
        acqs = [ds.read_acquisition(i) for i in range(n_acq)]
    finally:
        ds.close()
    assert h.acquisitionSystemInformation.systemVendor == "hifield"
    assert h.acquisitionSystemInformation.systemFieldStrength_T == pytest.approx(7.0)
    assert h.acquisitionSystemInformation.receiverChannels == 3
    assert h.experimentalConditions.H1resonanceFrequency_Hz == round(7.0 * 42.577478518e6)
    assert h.sequenceParameters.TR[0] == pytest.approx(12.3)
    assert h.sequenceParameters.TE[0] == pytest.approx(4.2)
    assert h.sequenceParameters.TI[0] == pytest.approx(900.0)
    assert h.sequenceParameters.flipAngle_deg[0] == pytest.approx(15.0)
    enc = h.encoding[0]
    assert (enc.encodedSpace.matrixSize.x, enc.encodedSpace.matrixSize.y, enc.encodedSpace.matrixSize.z) == (24, 32, 1)
    assert enc.reconSpace.fieldOfView_mm.y == pytest.approx(200.0)
    assert enc.encodingLimits.kspace_encoding_step_1.maximum == 31
    assert enc.encodingLimits.kspace_encoding_step_1.center == 16
    assert enc.trajectory.value == "cartesian"
    assert enc.parallelImaging.accelerationFactor.kspace_encoding_step_1 == 2
    # acquisitions: 1 noise + one per acquired k1 line
    lines = np.nonzero(raw.mask[0, :, 0])[0]
    assert n_acq == 1 + len(lines)
    assert acqs[0].is_flag_set(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
    assert acqs[0].data.shape == (3, 100)
    imaging = acqs[1:]
    assert [a.idx.kspace_encode_step_1 for a in imaging] == lines.tolist()
    acs = set(range(12, 20))
    for a in imaging:
        assert a.is_flag_set(ismrmrd.ACQ_IS_PARALLEL_CALIBRATION) == (a.idx.kspace_encode_step_1 in acs)
        np.testing.assert_array_equal(a.data, raw.kspace[:, 0, a.idx.kspace_encode_step_1, :])
    assert imaging[0].is_flag_set(ismrmrd.ACQ_FIRST_IN_SLICE)
    assert imaging[-1].is_flag_set(ismrmrd.ACQ_LAST_IN_SLICE)
    assert imaging[-1].is_flag_set(ismrmrd.ACQ_LAST_IN_MEASUREMENT)
    assert sum(a.is_flag_set(ismrmrd.ACQ_LAST_IN_MEASUREMENT) for a in acqs) == 1
    # read_dir is x (LPS) for an axial grid
    np.testing.assert_allclose(imaging[0].read_dir, [1, 0, 0])
    np.testing.assert_allclose(imaging[0].phase_dir, [0, 1, 0])


@pytest.mark.parametrize("cut", [0.3, 0.7])
def test_truncated_file_is_one_line_error(tmp_path, rng, cut):
    path = tmp_path / "raw.h5"
    write_ismrmrd(make_raw(rng), path)
    blob = path.read_bytes()
    path.write_bytes(blob[: int(len(blob) * cut)])
    with pytest.raises(FileFormatError) as err:
        read_ismrmrd(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_not_hdf5_and_missing(tmp_path):
    bad = tmp_path / "x.h5"
    bad.write_text("hello")
    with pytest.raises(FileFormatError):
        read_ismrmrd(bad)
    with pytest.raises(FileFormatError):
        read_ismrmrd(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["kspace"] = np.zeros(3)
    with pytest.raises(FileFormatError, match="dataset/xml"):
        read_ismrmrd(tmp_path / "other.h5")


def test_failed_write_leaves_nothing(tmp_path, rng):
    raw = make_raw(rng)
    bad = raw.replace(noise=np.zeros((5, 10), np.complex64))  # wrong coil count
    with pytest.raises(FileFormatError):
        write_ismrmrd(bad, tmp_path / "raw.h5")
    assert list(tmp_path.iterdir()) == []


def _phantom_kspace(n: int, n_coil: int, rng) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[:n, :n] - n / 2
    img = ((x / (0.35 * n)) ** 2 + (y / (0.45 * n)) ** 2 < 1).astype(float)
    img -= 0.5 * (((x - 5) / (0.1 * n)) ** 2 + (y / (0.2 * n)) ** 2 < 1)
    coils = np.stack(
        [np.exp(-((x - 20 * np.cos(c)) ** 2 + (y - 20 * np.sin(c)) ** 2) / (2 * 30**2)) for c in range(n_coil)]
    )
    coil_img = coils * img
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(coil_img, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    return img, k.astype(np.complex64)


@pytest.mark.external
def test_cpp_recon_reads_hifield_file(tmp_path, rng):
    exe = require_tool("ismrmrd_recon_cartesian_2d")
    n, n_coil = 64, 4
    _, k = _phantom_kspace(n, n_coil, rng)
    from .conftest import make_header

    raw = RawData(kspace=k[:, None], header=make_header((1, n, n), acceleration=1.0))
    path = tmp_path / "full.h5"
    write_ismrmrd(raw, path)
    subprocess.run(
        [exe, str(path)], check=True, capture_output=True, timeout=60, cwd=tmp_path
    )  # it writes xml files to cwd
    with h5py.File(path, "r") as f:
        names = list(f["dataset"].keys())
        assert "cpp" in names, names
        cpp = np.asarray(f["dataset/cpp/data"][0]).squeeze()
    cpp = np.abs(cpp.view(np.complex64) if cpp.dtype.names else cpp).reshape(n, n)
    ours = np.sqrt(
        (np.abs(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1))), axes=(-2, -1))) ** 2).sum(0)
    )
    corr = np.corrcoef(cpp.ravel(), ours.ravel())[0, 1]
    assert corr > 0.999, corr


@pytest.mark.external
def test_read_cpp_shepp_logan(tmp_path):
    exe = require_tool("ismrmrd_generate_cartesian_shepp_logan")
    path = tmp_path / "sl.h5"
    subprocess.run(
        [exe, "-o", str(path), "-m", "64", "-c", "4", "-C"], check=True, capture_output=True, timeout=60, cwd=tmp_path
    )
    raw = read_ismrmrd(path, remove_readout_oversampling=True)
    assert raw.kspace.shape == (4, 1, 64, 64)
    assert raw.noise is not None and raw.noise.shape[0] == 4
    assert raw.header.matrix == (1, 64, 64)
    assert raw.header.b0_t == pytest.approx(63.5e6 / 42.577478518e6, rel=1e-3)
    coil_imgs = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(raw.kspace[:, 0], axes=(-2, -1))), axes=(-2, -1))
    rss = np.sqrt((np.abs(coil_imgs) ** 2).sum(0))
    with h5py.File(path, "r") as f:
        truth = np.abs(np.asarray(f["dataset/phantom"][()]).view(np.complex64)).reshape(64, 64)
    corr = np.corrcoef(rss.ravel(), truth.ravel())[0, 1]
    assert corr > 0.9, corr
    assert math.isfinite(float(rss.sum()))


def test_trajectory_round_trip(tmp_path, rng):
    from hifield.data import Trajectory

    raw = make_raw(rng, noise=False, accel=False, shape=(2, 1, 6, 8))
    k = rng.uniform(-100, 100, (1, 6, 8, 3))
    density = rng.uniform(0, 1, (1, 6, 8)).astype(np.float32)
    raw = raw.replace(
        trajectory=Trajectory(kspace_m=k, density=density), header=raw.header.replace(trajectory="radial")
    )
    write_ismrmrd(raw, tmp_path / "t.h5")
    back = read_ismrmrd(tmp_path / "t.h5")
    assert back.header.trajectory == "radial"
    np.testing.assert_allclose(back.trajectory.kspace_m, k, rtol=1e-6)  # stored as float32
    np.testing.assert_array_equal(back.trajectory.density, density)
    with h5py.File(tmp_path / "t.h5") as f:
        head = f["dataset/data"]["head"]
        assert set(head["trajectory_dimensions"].tolist()) == {4}


@pytest.mark.external
def test_cpp_library_parses_xml_header(tmp_path, rng):
    exe = require_tool("ismrmrd_test_xml")
    write_ismrmrd(make_raw(rng), tmp_path / "raw.h5")
    with h5py.File(tmp_path / "raw.h5") as f:
        (tmp_path / "header.xml").write_bytes(f["dataset/xml"][0])
    run = subprocess.run([exe, str(tmp_path / "header.xml")], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-500:]
