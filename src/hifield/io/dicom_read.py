"""DICOM MR series reading: a folder (or files) of MR Image Storage or Enhanced MR objects back into an Image.

The inverse of :func:`hifield.io.dicom.write_dicom_series` (see that module for the geometry conventions); series
from other tools are read too, sorted along the slice normal, rescaled with RescaleSlope/RescaleIntercept.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.data import Image, ImageHeader, RawHeader
from hifield.errors import FileFormatError
from hifield.units import GAMMA_BAR_HZ_PER_T

__all__ = ["read_dicom_series"]

_ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
_MAX_MM = 1e6
"""Largest coordinate, spacing or thickness accepted from a file [mm] (1 km: anything larger is corrupt)."""


def _files(folder_or_files: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> tuple[list[Path], bool]:
    if isinstance(folder_or_files, (str, os.PathLike)):
        p = Path(folder_or_files)
        if p.is_dir():
            return sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")), True
        return [p], False
    return [Path(f) for f in folder_or_files], False


def _float(ds: Any, keyword: str, default: float | None = None) -> float | None:
    value = ds.get(keyword, None)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _int(ds: Any, keyword: str, default: int) -> int:
    """An integer tag (IS or US), or ``default`` when absent, empty or not a finite integer-sized number.

    >>> import pydicom
    >>> ds = pydicom.Dataset()
    >>> ds.InstanceNumber = "7 "
    >>> _int(ds, "InstanceNumber", 0), _int(ds, "AcquisitionNumber", 1)
    (7, 1)
    """
    value = ds.get(keyword, None)
    if value is None or value == "":
        return default
    try:
        number = float(value)  # IS strings such as "1 " or "2.0"; a damaged one ('\x00', '') is not a number
    except (TypeError, ValueError, OverflowError):
        return default
    return int(number) if math.isfinite(number) and abs(number) < 2**31 else default


def _numbers(ds: Any, keyword: str, count: int, default: Sequence[float], source: str) -> NDArray[np.float64]:
    """A multi-valued numeric tag as ``count`` finite floats (``default`` when absent); refused naming the tag."""
    value = ds.get(keyword, None)
    if value is None or value == "":
        return np.asarray(default, dtype=np.float64)
    items = (
        list(value)
        if isinstance(value, (list, tuple)) or (hasattr(value, "__iter__") and not isinstance(value, str))
        else [value]
    )
    try:
        numbers = np.asarray([float(v) for v in items], dtype=np.float64)
    except (TypeError, ValueError):
        numbers = np.asarray([], dtype=np.float64)
    if numbers.size != count or not np.all(np.abs(numbers) <= _MAX_MM):
        raise FileFormatError(
            f"{source}: DICOM {keyword} = {str(value)[:60]!r} is not {count} numbers within +-{_MAX_MM:g} mm"
        )
    return numbers


def _size(ds: Any, keyword: str, source: str) -> int:
    value = ds.get(keyword, None)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise FileFormatError(f"{source}: DICOM {keyword} = {value!r} is not an image size 1..65535")
    return int(value)


def _multi(ds: Any, keyword: str, default: str) -> str:
    value = ds.get(keyword, None)
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value
    return "\\".join(str(v) for v in value)


def _acquisition_from(ds: Any, matrix: tuple[int, int, int], fov_m: tuple[float, float, float]) -> RawHeader | None:
    """RawHeader rebuilt from the MR tags (None when the file carries no field strength and no timing)."""
    b0 = _float(ds, "MagneticFieldStrength")
    if b0 is None:
        freq = _float(ds, "ImagingFrequency")
        b0 = freq * 1e6 / GAMMA_BAR_HZ_PER_T if freq else None
    te = _float(ds, "EchoTime")
    tr = _float(ds, "RepetitionTime")
    if b0 is None and te is None and tr is None:
        return None
    ti = _float(ds, "InversionTime")
    acq_matrix = ds.get("AcquisitionMatrix", None)
    matrix_acq = matrix
    if acq_matrix is not None and len(acq_matrix) == 4 and any(int(v) for v in acq_matrix):
        freq_n = int(acq_matrix[0]) or int(acq_matrix[1])
        phase_n = int(acq_matrix[2]) or int(acq_matrix[3])
        if ds.get("InPlanePhaseEncodingDirection", "COL") == "ROW":
            matrix_acq = (matrix[0], freq_n, phase_n)
        else:
            matrix_acq = (matrix[0], phase_n, freq_n)
    thickness = _float(ds, "SliceThickness")
    kwargs: dict[str, Any] = {
        "b0_t": b0 if b0 is not None else 0.0,
        "fov_m": fov_m,
        "matrix": matrix_acq,
        "te_s": (te or 0.0) * 1e-3,
        "tr_s": (tr or 0.0) * 1e-3,
        "ti_s": ti * 1e-3 if ti is not None else None,
        "flip_angle_rad": math.radians(_float(ds, "FlipAngle", 0.0) or 0.0),
        "slice_thickness_m": thickness * 1e-3 if thickness else None,
        "pixel_bandwidth_hz": _float(ds, "PixelBandwidth", 0.0) or 0.0,
        "echo_train_length": max(1, _int(ds, "EchoTrainLength", 1)),
        "n_averages": max(1, round(_float(ds, "NumberOfAverages", 1.0) or 1.0)),
        "acceleration": _float(ds, "ParallelReductionFactorInPlane", 1.0) or 1.0,
        "scan_time_s": _float(ds, "AcquisitionDuration", 0.0) or 0.0,
        "protocol_name": str(ds.get("ProtocolName", "")),
        "sequence_name": str(ds.get("SequenceName", "")),
        "scanning_sequence": _multi(ds, "ScanningSequence", "RM"),
        "sequence_variant": _multi(ds, "SequenceVariant", "NONE"),
        "acquisition_type": "3D" if str(ds.get("MRAcquisitionType", "2D")) == "3D" else "2D",
        "system_vendor": str(ds.get("Manufacturer", "")),
        "system_model": str(ds.get("ManufacturerModelName", "")),
        "patient_name": str(ds.get("PatientName", "")),
        "patient_id": str(ds.get("PatientID", "")),
    }
    return RawHeader(**kwargs)


def _read_one_series(datasets: Sequence[Any], source: str) -> tuple[NDArray[np.float64], NDArray[np.float64], Any]:
    """Stack one series into (volumes, z, y, x) rescaled values and its (z, y, x) LPS affine [m]."""
    first = datasets[0]
    rows, cols = _size(first, "Rows", source), _size(first, "Columns", source)
    for ds in datasets:
        if (_size(ds, "Rows", source), _size(ds, "Columns", source)) != (rows, cols):
            raise FileFormatError(f"{source}: slices of different sizes ({ds.Rows}x{ds.Columns} vs {rows}x{cols})")
    unit = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    orient = _numbers(first, "ImageOrientationPatient", 6, unit, source)
    if (
        min(np.linalg.norm(orient[:3]), np.linalg.norm(orient[3:])) < 0.5
        or np.linalg.norm(np.cross(orient[:3], orient[3:])) < 0.5
    ):
        raise FileFormatError(f"{source}: DICOM ImageOrientationPatient {list(orient)} is not two orthogonal unit axes")
    for ds in datasets:
        other = _numbers(ds, "ImageOrientationPatient", 6, unit, source)
        if not np.allclose(other, orient, atol=1e-3):
            raise FileFormatError(
                f"{source}: slices have different orientations (e.g. a radial localizer); read them one file at a time"
            )
    row, col = orient[:3], orient[3:]
    normal = np.cross(row, col)
    spacing = _numbers(first, "PixelSpacing", 2, (1.0, 1.0), source)
    if np.any(spacing <= 0):
        raise FileFormatError(f"{source}: DICOM PixelSpacing {list(spacing)} must be positive")

    def position(ds: Any) -> NDArray[np.float64]:
        return _numbers(ds, "ImagePositionPatient", 3, (0.0, 0.0, 0.0), source)

    groups: dict[int, list[Any]] = {}
    for ds in datasets:
        groups.setdefault((_int(ds, "AcquisitionNumber", 1) or 1), []).append(ds)
    if len({len(g) for g in groups.values()}) != 1:
        groups = {1: list(datasets)}
    volumes = []
    positions: list[NDArray[np.float64]] = []
    for key in sorted(groups):
        group = sorted(groups[key], key=lambda d: (float(np.dot(position(d), normal)), _int(d, "InstanceNumber", 0)))
        numbers = [_int(d, "InstanceNumber", 0) for d in group]
        if len(group) > 1 and all(a > b for a, b in itertools.pairwise(numbers)):
            group.reverse()  # slices were numbered against the normal: keep the writer's slice order
        positions = [position(d) for d in group]
        slices = []
        for ds in group:
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*excess padding.*")  # benign trailing bytes
                    pixels = ds.pixel_array.astype(np.float64)
            except Exception as err:
                msg = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise FileFormatError(
                    f"{source}: cannot decode pixel data ({msg}); the file may be truncated or need a codec plugin"
                ) from None
            if pixels.ndim != 2:
                raise FileFormatError(
                    f"{source}: pixel data has shape {pixels.shape}; only single-frame greyscale slices are read"
                )
            slope = _float(ds, "RescaleSlope", 1.0) or 1.0
            intercept = _float(ds, "RescaleIntercept", 0.0) or 0.0
            if not (math.isfinite(slope) and math.isfinite(intercept)):
                raise FileFormatError(f"{source}: DICOM RescaleSlope/RescaleIntercept are not finite numbers")
            if pixels.shape != (rows, cols):
                raise FileFormatError(f"{source}: pixel data of {pixels.shape} does not match Rows x Columns")
            with np.errstate(over="ignore", invalid="ignore"):
                values = pixels * slope + intercept
            if not np.all(np.isfinite(values)):
                raise FileFormatError(
                    f"{source}: RescaleSlope {slope:g} / RescaleIntercept {intercept:g} overflow the pixel values"
                )
            slices.append(values)
        volumes.append(np.stack(slices))
    stack = np.stack(volumes)
    nz = stack.shape[1]
    if nz > 1:
        step = (positions[-1] - positions[0]) / (nz - 1)
    else:
        thickness = _float(first, "SpacingBetweenSlices") or _float(first, "SliceThickness") or 1.0
        if not 0 < thickness <= _MAX_MM:
            thickness = 1.0
        step = normal * thickness
    if not np.linalg.norm(step) > 0:
        raise FileFormatError(f"{source}: slices share one ImagePositionPatient; the series geometry is corrupt")
    affine = np.eye(4)
    affine[:3, 0] = step[::-1] * 1e-3
    affine[:3, 1] = col[::-1] * spacing[0] * 1e-3
    affine[:3, 2] = row[::-1] * spacing[1] * 1e-3
    affine[:3, 3] = positions[0][::-1] * 1e-3
    return stack, affine, first


def read_dicom_series(
    folder_or_files: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *, series_uid: str | None = None
) -> Image:
    """Read a DICOM MR series (one file per slice) into an :class:`Image` with geometry and acquisition header.

    Parameters
    ----------
    folder_or_files
        A folder (searched recursively; files that are not DICOM are skipped), one file, or a list of files.
        A magnitude and a phase series of the same geometry (as :func:`write_dicom_series` writes with
        ``phase=True``) combine into one complex image; any other mix of series is refused.
    series_uid
        Read only the files of this SeriesInstanceUID (to pick one series from a folder that holds several).

    Returns
    -------
    Image
        Data ``(1, z, y, x)`` float32 (magnitude) or complex64 (magnitude and phase), or
        ``(n_volumes, 1, z, y, x)`` when the series holds several acquisitions; affine in metres (LPS, (z, y, x)).

    Raises
    ------
    FileFormatError
        If no DICOM file is found, a file is not MR, is truncated, is an Enhanced (multi-frame) MR object, or
        the files belong to several unrelated series.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    files, from_folder = _files(folder_or_files)
    source = str(folder_or_files) if isinstance(folder_or_files, (str, os.PathLike)) else f"{len(files)} files"
    datasets = []
    for f in files:
        try:
            ds = pydicom.dcmread(f)
            _ = ds.SOPClassUID
            for _element in ds.iterall():  # pydicom decodes lazily: decode every element now, inside this check
                pass
        except InvalidDicomError:
            if from_folder:
                continue
            raise FileFormatError(f"{f} is not a DICOM file; pass an MR DICOM file or series folder") from None
        except FileNotFoundError:
            raise FileFormatError(f"{f}: no such DICOM file; check the path") from None
        except Exception as err:
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise FileFormatError(f"{f} is not a readable DICOM file ({msg}); it may be truncated") from None
        if series_uid is not None and str(ds.get("SeriesInstanceUID", "")) != series_uid:
            continue
        modality = str(ds.get("Modality", ""))
        if modality != "MR":
            shown = modality if modality.isprintable() and len(modality) <= 16 else repr(modality[:16])  # damaged bytes
            raise FileFormatError(f"{f} is a {shown or 'modality-less'} DICOM object, not MR; pass an MR series")
        if str(ds.SOPClassUID) == _ENHANCED_MR_IMAGE_STORAGE or _int(ds, "NumberOfFrames", 1) > 1:
            raise FileFormatError(f"{f} is an Enhanced (multi-frame) MR object; only classic MR Image Storage is read")
        if "PixelData" not in ds:
            raise FileFormatError(f"{f} holds no pixel data; it may be truncated")
        datasets.append(ds)
    if not datasets:
        raise FileFormatError(f"{source}: no DICOM MR files found; pass a series folder or .dcm files")

    by_series: dict[str, list[Any]] = {}
    for ds in datasets:
        by_series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(ds)
    series = list(by_series.values())
    kinds = [_kind(s[0]) for s in series]
    if len(series) == 1:
        values, affine, first = _read_one_series(series[0], source)
        data: NDArray[Any] = values.astype(np.complex64 if kinds[0] == "P" else np.float32)
        if kinds[0] == "P":
            data = np.exp(1j * values).astype(np.complex64)
    elif len(series) == 2 and sorted(kinds) == ["M", "P"]:
        mag_series, phase_series = (series[0], series[1]) if kinds[0] == "M" else (series[1], series[0])
        mag, affine, first = _read_one_series(mag_series, source)
        ph, affine_p, _ = _read_one_series(phase_series, source)
        if mag.shape != ph.shape or not np.allclose(affine, affine_p, atol=1e-6):
            raise FileFormatError(f"{source}: magnitude and phase series differ in shape or geometry")
        data = (mag * np.exp(1j * ph)).astype(np.complex64)
    else:
        raise FileFormatError(
            f"{source} holds {len(series)} DICOM series; pass the files of one series (or one magnitude/phase pair)"
        )
    n_vol, nz, ny, nx = data.shape
    data = data.reshape(n_vol, 1, nz, ny, nx) if n_vol > 1 else data.reshape(1, nz, ny, nx)
    voxel = tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))
    fov = (voxel[0] * nz, voxel[1] * ny, voxel[2] * nx)
    acquisition = _acquisition_from(first, (nz, ny, nx), fov)
    if acquisition is not None:
        acquisition = acquisition.replace(affine=tuple(tuple(float(v) for v in r) for r in affine))
    description = str(first.get("ImageComments", "")) or str(first.get("SeriesDescription", ""))
    recon = str(first.get("DerivationDescription", "")).removeprefix("hifield reconstruction: ")
    header = ImageHeader(affine=affine, acquisition=acquisition, recon_method=recon, description=description)
    return Image(data=data, header=header)


def _kind(ds: Any) -> str:
    image_type = [str(v).upper() for v in ds.get("ImageType", [])]
    if len(image_type) > 2 and image_type[2] in ("P", "PHASE", "PHASE MAP"):
        return "P"
    if len(image_type) > 3 and image_type[3] == "P":
        return "P"
    return "M"
