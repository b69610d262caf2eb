"""NIfTI-1 images through nibabel, with the RAS affine from hifield's LPS geometry and a BIDS JSON sidecar.

hifield's affine maps array index ``(z, y, x)`` to LPS ``(z, y, x)`` [m]. NIfTI stores the array as
``(i, j, k) = (x, y, z)`` and its sform/qform map ``(i, j, k)`` to RAS ``(X, Y, Z)`` [mm], so the NIfTI affine is
``diag(-1, -1, 1, 1) @ P @ A @ Q`` with the (z, y, x) <-> (x, y, z) permutations ``P``, ``Q`` and metres -> mm.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield._atomic import atomic_path, atomic_write_text
from hifield.data import Image, ImageHeader, RawHeader
from hifield.errors import FileFormatError, HifieldError, check_memory
from hifield.units import GAMMA_BAR_HZ_PER_T

__all__ = [
    "bids_sidecar",
    "lps_zyx_to_ras_affine",
    "ras_to_lps_zyx_affine",
    "read_nifti",
    "write_bids_sidecar",
    "write_nifti",
]

_REVERSE = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_M_TO_MM = np.diag([1e3, 1e3, 1e3, 1.0])


def lps_zyx_to_ras_affine(affine: NDArray[np.float64]) -> NDArray[np.float64]:
    """NIfTI affine (index (x, y, z) -> RAS [mm]) from a hifield affine (index (z, y, x) -> LPS (z, y, x) [m]).

    Examples
    --------
    >>> from hifield.data import centred_affine
    >>> a = lps_zyx_to_ras_affine(centred_affine((2, 4, 4), (0.003, 0.001, 0.001)))
    >>> a.diagonal().tolist(), a[:3, 3].tolist()
    ([-1.0, -1.0, 3.0, 1.0], [2.0, 2.0, -3.0])
    """
    return _LPS_TO_RAS @ _M_TO_MM @ _REVERSE @ np.asarray(affine, dtype=np.float64) @ _REVERSE


def ras_to_lps_zyx_affine(affine: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverse of :func:`lps_zyx_to_ras_affine`."""
    return _REVERSE @ np.linalg.inv(_M_TO_MM) @ _LPS_TO_RAS @ np.asarray(affine, dtype=np.float64) @ _REVERSE


def write_nifti(image: Image, path: str | os.PathLike[str], *, sidecar: bool = True) -> Path:
    """Write the magnitude of an image as NIfTI-1 (float32), with a BIDS JSON sidecar beside it.

    Parameters
    ----------
    image
        Image ``(*other, coil, z, y, x)``; all leading volumes go along the 4th NIfTI axis.
    path
        ``.nii`` or ``.nii.gz`` file. Written under a temporary name, then renamed.
    sidecar
        Also write ``<stem>.json`` (BIDS) with the acquisition facts (see :func:`bids_sidecar`).

    Returns
    -------
    Path
        The NIfTI file.
    """
    import nibabel as nib

    path = Path(path)
    if not (path.name.endswith(".nii") or path.name.endswith(".nii.gz")):
        raise FileFormatError(f"NIfTI file name {path.name!r} must end in .nii or .nii.gz")
    data = np.abs(np.asarray(image.data)).astype(np.float32)
    nz, ny, nx = data.shape[-3:]
    volumes = data.reshape(-1, nz, ny, nx)
    array = np.transpose(volumes, (3, 2, 1, 0))  # (x, y, z, volume)
    if array.shape[-1] == 1:
        array = array[..., 0]
    affine = lps_zyx_to_ras_affine(np.asarray(image.header.affine, dtype=np.float64))
    img = nib.Nifti1Image(np.ascontiguousarray(array), affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_data_dtype(np.float32)
    text = image.header.description or image.header.recon_method
    img.header["descrip"] = text.encode("ascii", "replace")[:79]
    with atomic_path(path) as tmp:
        nib.save(img, tmp)
        if sidecar:
            write_bids_sidecar(image, _sidecar_path(path))
    return path


def _sidecar_path(path: Path) -> Path:
    name = path.name.removesuffix(".gz").removesuffix(".nii")
    return path.with_name(name + ".json")


def bids_sidecar(image: Image) -> dict[str, Any]:
    """BIDS sidecar fields for an image (times in seconds, angles in degrees, as BIDS specifies)."""
    out: dict[str, Any] = {"ConversionSoftware": "hifield", "Modality": "MR"}
    acq = image.header.acquisition
    if image.header.recon_method:
        out["ReconMethod"] = image.header.recon_method
    if image.header.description:
        out["ImageComments"] = image.header.description
    if acq is None:
        return out
    out.update(
        {
            "Manufacturer": acq.system_vendor,
            "ManufacturersModelName": acq.system_model,
            "MagneticFieldStrength": acq.b0_t,
            "ImagingFrequency": GAMMA_BAR_HZ_PER_T * acq.b0_t / 1e6,
            "ImagedNucleus": "1H",
            "MRAcquisitionType": acq.acquisition_type,
            "ScanningSequence": acq.scanning_sequence,
            "SequenceVariant": acq.sequence_variant,
            "SequenceName": acq.sequence_name,
            "ProtocolName": acq.protocol_name,
            "EchoTime": acq.te_s,
            "RepetitionTime": acq.tr_s,
            "FlipAngle": math.degrees(acq.flip_angle_rad),
            "PixelBandwidth": acq.pixel_bandwidth_hz,
            "EchoTrainLength": acq.echo_train_length,
            "NumberOfAverages": acq.n_averages,
            "ParallelReductionFactorInPlane": acq.acceleration,
            "AcquisitionMatrixPE": acq.matrix[1],
            "PhaseEncodingDirection": "j",
            "AcquisitionDuration": acq.scan_time_s,
            "PatientPosition": "HFS",
        }
    )
    if acq.ti_s is not None:
        out["InversionTime"] = acq.ti_s
    if acq.slice_thickness_m:
        out["SliceThickness"] = acq.slice_thickness_m * 1e3
    if acq.engine:
        out["SimulationEngine"] = acq.engine
    return out


def write_bids_sidecar(image: Image, path: str | os.PathLike[str]) -> Path:
    """Write :func:`bids_sidecar` as JSON to ``path`` (temporary name, then rename)."""
    return atomic_write_text(Path(path), json.dumps(bids_sidecar(image), indent=2, sort_keys=True) + "\n")


def read_nifti(path: str | os.PathLike[str]) -> Image:
    """Read a NIfTI-1/2 file into an :class:`Image` (float32, ``(1, z, y, x)`` or ``(n, 1, z, y, x)``).

    The geometry comes from the sform (or qform); a BIDS sidecar ``<stem>.json`` beside it, if present, restores
    the main acquisition facts (B0, TE, TR, TI, flip angle, sequence codes).

    Raises
    ------
    FileFormatError
        If the file is missing, not NIfTI, truncated, or has more than 4 dimensions.
    """
    import nibabel as nib

    path = Path(path)
    try:
        img: Any = nib.load(path)
        shape = tuple(int(n) for n in img.shape)
        if len(shape) > 7 or any(n < 1 for n in shape):
            raise FileFormatError(f"{path}: NIfTI header dimensions {shape} are invalid; the file is corrupt")
        check_memory(4.0 * math.prod(shape), what=f"reading {path}", hint="its header dimensions may be corrupt")
        array = np.asarray(img.dataobj, dtype=np.float32)
    except HifieldError:
        raise
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such NIfTI file; check the path") from None
    except Exception as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FileFormatError(f"{path} is not a readable NIfTI file ({msg}); it may be truncated") from None
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise FileFormatError(f"{path} has {array.ndim} dimensions; only 3D or 4D NIfTI images are read")
    volumes = np.transpose(array, (3, 2, 1, 0))  # (volume, z, y, x)
    n = volumes.shape[0]
    data = volumes.reshape(n, 1, *volumes.shape[1:]) if n > 1 else volumes
    ras = np.asarray(img.affine, dtype=np.float64)
    if ras.shape != (4, 4) or not np.all(np.isfinite(ras)) or abs(float(np.linalg.det(ras[:3, :3]))) < 1e-12:
        raise FileFormatError(f"{path}: NIfTI affine (sform/qform) is not a finite, invertible 4 x 4; it is corrupt")
    affine = ras_to_lps_zyx_affine(ras)
    acquisition = None
    description = ""
    recon = ""
    sidecar = _sidecar_path(path)
    if sidecar.exists():
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            reason = getattr(err, "msg", None) or type(err).__name__
            raise FileFormatError(f"{sidecar} is not valid JSON ({reason}); fix or remove it") from None
        if not isinstance(meta, dict):
            raise FileFormatError(f"{sidecar} is not a JSON object; fix or remove it")
        acquisition = _acquisition_from_sidecar(meta, data.shape[-3:], affine, source=sidecar)
        description = str(meta.get("ImageComments", ""))
        recon = str(meta.get("ReconMethod", ""))
    header = ImageHeader(affine=affine, acquisition=acquisition, recon_method=recon, description=description)
    return Image(data=data, header=header)


def _acquisition_from_sidecar(
    meta: dict[str, Any], shape: tuple[int, ...], affine: NDArray[np.float64], *, source: Path | str = "<sidecar>"
) -> RawHeader | None:
    from hifield.io.mrd_header import validate_raw_header

    if "MagneticFieldStrength" not in meta:
        return None
    voxel = np.linalg.norm(affine[:3, :3], axis=0)
    fov = tuple(float(v * n) for v, n in zip(voxel, shape, strict=True))
    thickness = meta.get("SliceThickness")
    values = {  # BIDS values as found; validated below, then converted (FlipAngle deg, SliceThickness mm)
        "b0_t": meta["MagneticFieldStrength"],
        "fov_m": fov,
        "matrix": tuple(int(n) for n in shape[:3]),
        "te_s": meta.get("EchoTime", 0.0),
        "tr_s": meta.get("RepetitionTime", 0.0),
        "ti_s": meta.get("InversionTime"),
        "flip_angle_rad": meta.get("FlipAngle", 0.0),
        "slice_thickness_m": thickness if thickness else None,
        "pixel_bandwidth_hz": meta.get("PixelBandwidth", 0.0),
        "echo_train_length": meta.get("EchoTrainLength", 1),
        "n_averages": meta.get("NumberOfAverages", 1),
        "acceleration": meta.get("ParallelReductionFactorInPlane", 1.0),
        "scan_time_s": meta.get("AcquisitionDuration", 0.0),
        "protocol_name": str(meta.get("ProtocolName", "")),
        "sequence_name": str(meta.get("SequenceName", "")),
        "scanning_sequence": str(meta.get("ScanningSequence", "GR")),
        "sequence_variant": str(meta.get("SequenceVariant", "SP")),
        "acquisition_type": "3D" if meta.get("MRAcquisitionType") == "3D" else "2D",
        "system_vendor": str(meta.get("Manufacturer", "")),
        "system_model": str(meta.get("ManufacturersModelName", "")),
        "affine": tuple(tuple(float(v) for v in row) for row in affine),
    }
    checked = validate_raw_header(values, path=source)
    checked["flip_angle_rad"] = math.radians(checked["flip_angle_rad"])
    if checked.get("slice_thickness_m") is not None:
        checked["slice_thickness_m"] *= 1e-3
    return RawHeader(**checked)
