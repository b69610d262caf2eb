"""fastMRI HDF5 files: read single- and multi-coil k-space into :class:`RawData`, write reconstructions in its layout.

A fastMRI volume file holds ``kspace`` (complex64, ``(slices, H, W)`` single-coil or ``(slices, coils, H, W)``
multi-coil, ``H`` the oversampled readout and ``W`` the phase-encoding columns), ``ismrmrd_header`` (the ISMRMRD XML
as a dataset), optionally ``mask`` (1-D over ``W``, test sets) and ``reconstruction_rss``/``reconstruction_esc``
(``(slices, 320, 320)``), and attributes ``acquisition``, ``patient_id``, ``max``, ``norm``.

hifield keeps the readout last, so fastMRI's ``(H, W)`` becomes ``(k1, k0) = (W, H)`` (and images ``(y, x) = (W, H)``);
slices are independent 2D acquisitions and go on the leading ``other`` axis: ``kspace`` is
``(slices, coil, 1, W, H)``. :func:`write_fastmri_reconstruction` transposes back, so files written by hifield line
up with fastMRI's own reconstructions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield._atomic import atomic_path
from hifield.data import Image, RawData, centred_affine
from hifield.errors import FileFormatError, HifieldError, check_memory
from hifield.io._sandbox import probe_variable_length

__all__ = ["read_fastmri", "read_fastmri_reconstruction", "write_fastmri_reconstruction"]


def _open(path: Path) -> Any:
    import h5py

    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such fastMRI file; check the path") from None
    except (OSError, RuntimeError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FileFormatError(f"{path} is not a readable HDF5 file ({msg}); it may be truncated") from None


def read_fastmri(path: str | os.PathLike[str], *, remove_readout_oversampling: bool = False) -> RawData:
    """Read a fastMRI volume (single- or multi-coil) into :class:`RawData`.

    Parameters
    ----------
    path
        fastMRI ``.h5`` file.
    remove_readout_oversampling
        Crop the readout (fastMRI's ``H``) to the reconstruction FOV of the ISMRMRD header (e.g. 640 -> 320).

    Returns
    -------
    RawData
        ``kspace`` ``(slices, coil, 1, W, H)`` complex64 (coil = 1 for single-coil files); ``mask`` from the file's
        ``mask`` or, without one, from the columns that hold data (None when every column does); header from
        ``ismrmrd_header`` (matrix and FOV of its reconstruction space) and the file attributes.

    Raises
    ------
    FileFormatError
        If the file is not HDF5, is truncated, or lacks ``kspace``/``ismrmrd_header``, or ``kspace`` has the
        wrong rank.
    """
    import h5py
    import ismrmrd.xsd as X

    from hifield.io.mrd_header import header_from_xml
    from hifield.io.readout import crop_readout

    path = Path(path)
    with _open(path) as f:
        try:
            names = set(f.keys())
        except (OSError, RuntimeError, KeyError, ValueError) as err:
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise FileFormatError(f"{path} is not a readable HDF5 file ({msg}); it may be truncated") from None
        if "kspace" not in names:
            raise FileFormatError(f"{path} has no 'kspace' dataset; is it a fastMRI file?")
        if "ismrmrd_header" not in names:
            raise FileFormatError(f"{path} has no 'ismrmrd_header' dataset; is it a fastMRI file?")
        try:
            for name in ("kspace", "mask", "ismrmrd_header"):
                if name in f and isinstance(f[name], h5py.Dataset):
                    check_memory(float(f[name].size) * f[name].dtype.itemsize, what=f"reading {path} ({name})")
            # the header (and a damaged file's other datasets) may be variable-length: first read in a child
            probe_variable_length(f, ["kspace", "mask", "ismrmrd_header"], path=path, attributes=True)
            kspace = np.asarray(f["kspace"][()])
            xml = f["ismrmrd_header"][()]
            file_mask = np.asarray(f["mask"][()]) if "mask" in f else None
            attrs = dict(f.attrs)
        except HifieldError:  # the sandbox's one line, or check_memory's refusal, as it is (as read_ismrmrd does)
            raise
        except (OSError, KeyError, ValueError, RuntimeError, TypeError) as err:
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise FileFormatError(f"{path}: fastMRI data unreadable ({msg}); the file may be truncated") from None
    if kspace.ndim == 3:
        kspace = kspace[:, None]
    if kspace.ndim != 4 or not np.iscomplexobj(kspace):
        raise FileFormatError(
            f"{path}: 'kspace' must be complex (slices, H, W) or (slices, coils, H, W); "
            f"got {kspace.dtype} {kspace.shape}"
        )
    try:
        header_xml = X.CreateFromDocument(xml.decode() if isinstance(xml, bytes) else str(xml))
    except Exception as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FileFormatError(f"{path}: 'ismrmrd_header' does not parse ({msg})") from None
    header, _ = header_from_xml(header_xml, path=path)
    n_bad = int(np.count_nonzero(~np.isfinite(kspace)))
    if n_bad:
        raise FileFormatError(f"{path}: 'kspace' holds {n_bad} NaN or infinite values; the file is corrupt")
    n_h, n_w = kspace.shape[-2:]
    data = np.ascontiguousarray(np.swapaxes(kspace, -1, -2)).astype(np.complex64)[:, :, None]  # (s, c, 1, W, H)
    if file_mask is not None:
        columns = np.asarray(file_mask).reshape(-1).astype(bool)
        if columns.size != n_w:
            raise FileFormatError(f"{path}: 'mask' has {columns.size} entries but kspace has {n_w} columns")
    else:
        columns = np.abs(kspace).reshape(-1, n_h, n_w).max(axis=(0, 1)) > 0
    mask = None if columns.all() else np.ascontiguousarray(np.broadcast_to(columns[None, :, None], (1, n_w, n_h)))
    if remove_readout_oversampling and n_h > header.matrix[2]:
        data = crop_readout(data, header.matrix[2])
        if mask is not None:
            mask = np.ascontiguousarray(mask[..., : data.shape[-1]])
    changes: dict[str, Any] = {
        "affine": tuple(tuple(float(v) for v in r) for r in centred_affine(header.matrix, header.voxel_size_m))
    }
    if "acquisition" in attrs:
        changes["protocol_name"] = str(attrs["acquisition"])
    if "patient_id" in attrs:
        changes["patient_id"] = str(attrs["patient_id"])[:64]
    if "acceleration" in attrs:
        changes["acceleration"] = float(attrs["acceleration"])
    elif mask is not None:
        changes["acceleration"] = float(n_w / max(int(columns.sum()), 1))
    return RawData(kspace=data, header=header.replace(**changes), mask=mask)


def read_fastmri_reconstruction(path: str | os.PathLike[str]) -> NDArray[np.float32] | None:
    """The reference reconstruction of a fastMRI file as hifield ``(slices, y, x)`` = fastMRI ``(slices, W, H)``.

    Reads ``reconstruction_rss`` (multi-coil), ``reconstruction_esc`` (single-coil) or ``reconstruction`` (a
    submission); None when the file has none (test sets).
    """
    path = Path(path)
    with _open(path) as f:
        for name in ("reconstruction_rss", "reconstruction_esc", "reconstruction"):
            if name in f:
                probe_variable_length(f, [name], path=path)  # float32 in fastMRI files: no child unless damaged
                return np.ascontiguousarray(np.swapaxes(np.asarray(f[name][()], dtype=np.float32), -1, -2))
    return None


def write_fastmri_reconstruction(
    image: Image, path: str | os.PathLike[str], *, name: str = "reconstruction", attrs: dict[str, Any] | None = None
) -> Path:
    """Write an image's magnitude as a fastMRI reconstruction file (``(slices, H, W)`` float32).

    Parameters
    ----------
    image
        Image ``(*other, coil, z, y, x)``; every 2D ``(y, x)`` plane becomes one slice, stored transposed as
        fastMRI's ``(H, W) = (x, y)``.
    path
        Output ``.h5`` (temporary name, then rename).
    name
        Dataset name: ``reconstruction`` (fastMRI submissions) or ``reconstruction_rss``/``reconstruction_esc``.
    attrs
        Extra file attributes (e.g. ``{"acquisition": "CORPD_FBK"}``).
    """
    import h5py

    path = Path(path)
    data = np.abs(np.asarray(image.data)).astype(np.float32)
    planes = data.reshape(-1, *data.shape[-2:])
    out = np.ascontiguousarray(np.swapaxes(planes, -1, -2))
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset(name, data=out)
        f.attrs["max"] = float(out.max()) if out.size else 0.0
        f.attrs["norm"] = float(np.linalg.norm(out))
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    return path
