"""fastMRI HDF5: multi/single-coil k-space in, RSS reference reproduced, reconstructions out in fastMRI layout."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from hifield.data import Image, ImageHeader
from hifield.errors import FileFormatError
from hifield.io.fastmri import read_fastmri, read_fastmri_reconstruction, write_fastmri_reconstruction


def _fft2c(x):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def _ifft2c(x):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def _crop(x, shape):
    h, w = x.shape[-2:]
    top, left = (h - shape[0]) // 2, (w - shape[1]) // 2
    return x[..., top : top + shape[0], left : left + shape[1]]


def _header_xml(enc=(64, 48), recon=(32, 32)):
    import ismrmrd.xsd as X

    def space(m, fov):
        return X.encodingSpaceType(
            matrixSize=X.matrixSizeType(x=m[0], y=m[1], z=1), fieldOfView_mm=X.fieldOfViewMm(x=fov[0], y=fov[1], z=3)
        )

    h = X.ismrmrdHeader(
        experimentalConditions=X.experimentalConditionsType(H1resonanceFrequency_Hz=127_700_000),
        encoding=[
            X.encodingType(
                encodedSpace=space(enc, (280, 210)),
                reconSpace=space(recon, (140, 140)),
                encodingLimits=X.encodingLimitsType(
                    kspace_encoding_step_1=X.limitType(minimum=0, maximum=enc[1] - 1, center=enc[1] // 2)
                ),
                trajectory=X.trajectoryType.CARTESIAN,
            )
        ],
        sequenceParameters=X.sequenceParametersType(TR=[2800.0], TE=[30.0], flipAngle_deg=[90.0]),
        acquisitionSystemInformation=X.acquisitionSystemInformationType(
            systemFieldStrength_T=2.89362, receiverChannels=4
        ),
    )
    return h.toXML("utf-8")


def _volume(rng, n_slices=2, n_coil=4, h=64, w=48):
    y, x = np.mgrid[:h, :w]
    obj = (((y - h / 2) / (0.3 * h)) ** 2 + ((x - w / 2) / (0.35 * w)) ** 2 < 1).astype(float)
    obj[: h // 2, : w // 2] *= 2.0  # asymmetric, so a transposition or flip shows
    coils = np.stack([np.exp(1j * c + ((y - c * 10) ** 2 + x**2) / -(2 * 40.0**2)) for c in range(n_coil)])
    img = np.stack([coils * obj * (s + 1) for s in range(n_slices)])  # (slices, coil, H, W)
    return img.astype(np.complex64)


def _write(path, kspace, rss=None, mask=None, **attrs):
    with h5py.File(path, "w") as f:
        f["kspace"] = kspace
        f["ismrmrd_header"] = _header_xml()
        if rss is not None:
            f["reconstruction_rss"] = rss
        if mask is not None:
            f["mask"] = mask
        for k, v in attrs.items():
            f.attrs[k] = v


def test_multicoil_reproduces_reference_rss(tmp_path, rng):
    img = _volume(rng)
    kspace = _fft2c(img).astype(np.complex64)
    rss_ref = _crop(np.sqrt((np.abs(img) ** 2).sum(1)), (32, 32)).astype(np.float32)  # fastMRI (slices, H, W)
    _write(tmp_path / "file1000001.h5", kspace, rss=rss_ref, acquisition="CORPD_FBK", patient_id="abc")
    raw = read_fastmri(tmp_path / "file1000001.h5", remove_readout_oversampling=True)
    assert raw.kspace.shape == (2, 4, 1, 48, 32) and raw.kspace.dtype == np.complex64
    assert raw.mask is None
    assert raw.header.matrix == (1, 32, 32)
    assert raw.header.b0_t == pytest.approx(2.89362)
    assert raw.header.te_s == pytest.approx(0.030) and raw.header.protocol_name == "CORPD_FBK"
    coil_images = _ifft2c(raw.kspace[:, :, 0])  # (slices, coil, y=W, x=H)
    ours = _crop(np.sqrt((np.abs(coil_images) ** 2).sum(1)), (32, 32))
    reference = read_fastmri_reconstruction(tmp_path / "file1000001.h5")  # hifield (slices, y, x)
    assert reference.shape == (2, 32, 32)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4 * reference.max())
    out = write_fastmri_reconstruction(
        Image(data=ours[:, None, None].astype(np.float32), header=ImageHeader(affine=np.eye(4))),
        tmp_path / "recon.h5",
        attrs={"acquisition": "CORPD_FBK"},
    )
    with h5py.File(out) as f:
        np.testing.assert_allclose(f["reconstruction"][()], rss_ref, rtol=1e-4, atol=1e-4 * rss_ref.max())
        assert f.attrs["acquisition"] == "CORPD_FBK"


def test_singlecoil_with_mask(tmp_path, rng):
    img = _volume(rng, n_slices=1, n_coil=1)[:, 0]
    kspace = _fft2c(img).astype(np.complex64)
    mask = np.zeros(48, np.float32)
    mask[::4] = 1
    mask[20:28] = 1
    _write(tmp_path / "sc.h5", kspace * mask, mask=mask, acceleration=4)
    raw = read_fastmri(tmp_path / "sc.h5")
    assert raw.kspace.shape == (1, 1, 1, 48, 64)
    assert raw.mask.shape == (1, 48, 64)
    np.testing.assert_array_equal(raw.mask[0, :, 0], mask.astype(bool))
    assert raw.header.acceleration == 4.0
    np.testing.assert_array_equal(raw.kspace[0, 0, 0], (kspace[0] * mask).T)


def test_mask_from_zero_columns(tmp_path, rng):
    kspace = _fft2c(_volume(rng, n_slices=1)).astype(np.complex64)
    kspace[..., 1::2] = 0
    _write(tmp_path / "u.h5", kspace)
    raw = read_fastmri(tmp_path / "u.h5")
    assert raw.mask[0, :, 0].tolist() == [True, False] * 24
    assert raw.header.acceleration == 2.0


def test_bad_files(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["other"] = np.zeros(3)
    with pytest.raises(FileFormatError, match="kspace"):
        read_fastmri(tmp_path / "a.h5")
    (tmp_path / "b.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    with pytest.raises(FileFormatError):
        read_fastmri(tmp_path / "b.h5")
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f["kspace"] = np.zeros((2, 3), np.complex64)
        f["ismrmrd_header"] = _header_xml()
    with pytest.raises(FileFormatError, match="slices"):
        read_fastmri(tmp_path / "c.h5")


def test_read_raw_detects_format(tmp_path, rng):
    from hifield.io import read_raw
    from hifield.io.ismrmrd import write_ismrmrd

    from .conftest import make_raw

    kspace = _fft2c(_volume(rng, n_slices=1)).astype(np.complex64)
    _write(tmp_path / "fm.h5", kspace)
    assert read_raw(tmp_path / "fm.h5").kspace.shape == (1, 4, 1, 48, 64)
    raw = make_raw(rng)
    write_ismrmrd(raw, tmp_path / "mrd.h5")
    np.testing.assert_array_equal(read_raw(tmp_path / "mrd.h5").kspace, raw.kspace)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["foo"] = np.zeros(2)
    with pytest.raises(FileFormatError, match="neither"):
        read_raw(tmp_path / "x.h5")
