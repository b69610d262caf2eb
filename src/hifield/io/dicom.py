"""DICOM MR Image Storage series: write an :class:`~hifield.data.Image` one file per slice, and read series back.

Classic MR Image Storage (1.2.840.10008.5.1.4.1.1.4), explicit VR little endian, with the Patient, General Study,
Patient Study, General Series, Frame of Reference, General Equipment, General Acquisition, General Image, Image
Plane, Image Pixel, MR Image, VOI LUT and SOP Common modules filled from the image's geometry and its acquisition
header. Pixels are uint16 with RescaleSlope/RescaleIntercept so that ``stored * slope + intercept`` gives the
image values back (to 1/65535 of the series' range).

Geometry: hifield's affine maps index ``(z, y, x)`` to LPS ``(z, y, x)`` [m]; DICOM rows run along ``y`` and
columns along ``x``, so ImageOrientationPatient is (x-axis direction, y-axis direction) in (X, Y, Z) LPS order,
ImagePositionPatient is the centre of voxel ``(k, 0, 0)`` in mm, and PixelSpacing is ``(dy, dx)`` in mm.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield._atomic import temporary_name
from hifield.data import Image
from hifield.errors import ConfigError, FileFormatError
from hifield.io.dicom_read import read_dicom_series  # re-exported: the reader lives beside the writer
from hifield.units import GAMMA_BAR_HZ_PER_T

__all__ = ["read_dicom_series", "write_dicom_series"]

_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
_ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
_MAX_U16 = 65535


def _ds(value: float) -> str:
    """A DICOM decimal string (at most 16 characters).

    Examples
    --------
    >>> _ds(9.999999999999998), _ds(0.1), _ds(0)
    ('10', '0.1', '0')
    """
    from pydicom.valuerep import format_number_as_ds

    value = float(value)
    if value == 0.0:
        return "0"
    text = str(format_number_as_ds(value))
    precision = 15
    while len(text) > 16:  # format_number_as_ds can round 9.999... up to a 17-character '10.000...'
        precision -= 1
        text = f"{value:.{precision}g}"
    return text


def _uid(*parts: str) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=list(parts))) if parts else str(generate_uid())


def _geometry(affine: NDArray[np.float64]) -> dict[str, Any]:
    """Row/column cosines (X, Y, Z), spacings [mm], slice step vector [mm] from a (z, y, x) LPS affine [m]."""
    col_x = affine[:3, 2][::-1] * 1e3  # step along x index (DICOM column index), in (X, Y, Z) mm
    col_y = affine[:3, 1][::-1] * 1e3  # step along y index (DICOM row index)
    col_z = affine[:3, 0][::-1] * 1e3  # step along z index (slice)
    dx, dy, dz = (float(np.linalg.norm(v)) for v in (col_x, col_y, col_z))
    if min(dx, dy) <= 0:
        raise ConfigError(f"image affine has a zero in-plane voxel size ({dy} x {dx} mm); fix the geometry")
    return {"row": col_x / dx, "col": col_y / dy, "dx": dx, "dy": dy, "dz": dz, "step": col_z}


def _scaling(values: NDArray[np.float64], *, phase: bool) -> tuple[float, float]:
    """(slope, intercept) mapping uint16 0..65535 onto the range of ``values``."""
    if phase:
        return 2 * math.pi / (_MAX_U16 - 1), -math.pi
    lo = min(float(values.min()), 0.0)
    hi = float(values.max())
    span = hi - lo
    slope = span / _MAX_U16 if span > 0 else 1.0
    return slope, lo


def _common_dataset(image: Image, *, study_uid: str, series_uid: str, series_number: int, description: str) -> Any:
    from pydicom.dataset import Dataset

    acq = image.header.acquisition
    now = datetime.datetime.now()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = _MR_IMAGE_STORAGE
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    # Patient
    ds.PatientName = acq.patient_name if acq else "hifield^phantom"
    ds.PatientID = acq.patient_id if acq else "HIFIELD-0001"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    # General Study
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = now.strftime("%Y%m%d")
    ds.StudyTime = now.strftime("%H%M%S")
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.StudyDescription = "hifield virtual scan"
    # General Series
    ds.Modality = "MR"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description[:64]
    ds.SeriesDate = ds.StudyDate
    ds.SeriesTime = ds.StudyTime
    ds.PatientPosition = "HFS"
    ds.BodyPartExamined = "HEAD"  # with a body part that has no laterality, Laterality (2C) must be absent
    if acq is not None and acq.protocol_name:
        ds.ProtocolName = acq.protocol_name[:64]
    # Frame of Reference: shared by every series of the study (same scanner frame)
    ds.FrameOfReferenceUID = _uid(study_uid, "frame-of-reference")
    ds.PositionReferenceIndicator = ""
    # General Equipment
    ds.Manufacturer = (acq.system_vendor if acq else "") or "hifield"
    ds.ManufacturerModelName = (acq.system_model if acq else "") or "hifield virtual scanner"
    ds.SoftwareVersions = _software_version()
    ds.InstitutionName = "hifield"
    # General Acquisition / General Image
    ds.AcquisitionDate = ds.StudyDate
    ds.AcquisitionTime = ds.StudyTime
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime
    comments = image.header.description or ""
    if image.header.recon_method:
        ds.DerivationDescription = f"hifield reconstruction: {image.header.recon_method}"[:1024]
        if image.header.recon_method not in comments:
            detail = image.header.recon_method
            if acq is not None and acq.acceleration > 1:
                detail += f", R = {acq.acceleration:.2f}"
            comments = f"{comments} [recon: {detail}]".strip()
    if comments:
        ds.ImageComments = comments[:10240]
    # MR Image module
    ds.ScanningSequence = (acq.scanning_sequence if acq else "RM").split("\\")
    ds.SequenceVariant = (acq.sequence_variant if acq else "NONE").split("\\")
    ds.ScanOptions = ""
    ds.MRAcquisitionType = acq.acquisition_type if acq else "2D"
    ds.ImagedNucleus = "1H"
    if acq is not None:
        ds.SequenceName = (acq.sequence_name or acq.protocol_name or "hifield")[:16]
        ds.RepetitionTime = _ds(acq.tr_s * 1e3)
        ds.EchoTime = _ds(acq.te_s * 1e3)
        if acq.ti_s is not None:
            ds.InversionTime = _ds(acq.ti_s * 1e3)
        ds.EchoTrainLength = int(acq.echo_train_length)
        ds.NumberOfAverages = _ds(acq.n_averages)
        ds.FlipAngle = _ds(math.degrees(acq.flip_angle_rad))
        ds.MagneticFieldStrength = _ds(acq.b0_t)
        ds.ImagingFrequency = _ds(GAMMA_BAR_HZ_PER_T * acq.b0_t / 1e6)
        if acq.pixel_bandwidth_hz > 0:
            ds.PixelBandwidth = _ds(acq.pixel_bandwidth_hz)
        ds.AcquisitionMatrix = [0, int(acq.matrix[2]), int(acq.matrix[1]), 0]
        ds.InPlanePhaseEncodingDirection = "COL"
        ds.PercentSampling = _ds(100.0 / max(acq.acceleration, 1e-12)) if acq.acceleration >= 1 else "100"
        ds.PercentPhaseFieldOfView = _ds(100.0 * acq.fov_m[1] / acq.fov_m[2]) if acq.fov_m[2] > 0 else "100"
        ds.ParallelReductionFactorInPlane = float(acq.acceleration)
        ds.ParallelAcquisition = "YES" if acq.acceleration > 1 else "NO"
        if acq.acceleration > 1 and image.header.recon_method:
            ds.ParallelAcquisitionTechnique = image.header.recon_method.upper()[:16]
        if acq.scan_time_s > 0:
            ds.AcquisitionDuration = float(acq.scan_time_s)
    else:
        ds.SequenceName = "hifield"
        ds.RepetitionTime = ""
        ds.EchoTime = ""
        ds.EchoTrainLength = ""
    return ds


def _software_version() -> str:
    try:
        from importlib.metadata import version

        return f"hifield {version('hifield')}"
    except Exception:
        return "hifield"


def write_dicom_series(
    image: Image,
    folder: str | os.PathLike[str],
    *,
    series_description: str,
    series_number: int = 1,
    study_uid: str | None = None,
    magnitude: bool = True,
    phase: bool = False,
) -> list[Path]:
    """Write an image as a DICOM MR Image Storage series, one file per slice.

    Parameters
    ----------
    image
        Image with data ``(*other, coil, z, y, x)``; every ``(other, coil)`` volume becomes its own acquisition
        (AcquisitionNumber 1, 2, ...). Its header's affine sets the geometry, its ``acquisition`` the MR tags.
    folder
        Output folder (created if needed). Files are named ``MR_<series>_<instance>.dcm``.
    series_description
        SeriesDescription (at most 64 characters are kept).
    series_number
        SeriesNumber of the magnitude series; the phase series, if any, gets ``series_number + 1`` (or
        ``series_number`` when no magnitude is written).
    study_uid
        StudyInstanceUID to join an existing study; a new one when None. The FrameOfReferenceUID is derived from
        it, so every series of one study shares a frame of reference.
    magnitude
        Write the magnitude series (ImageType ``ORIGINAL\\PRIMARY\\OTHER\\M``).
    phase
        Also write a phase series [rad] (ImageType ``ORIGINAL\\PRIMARY\\PHASE MAP\\P``) scaled over [-pi, pi].

    Returns
    -------
    list[Path]
        The files written, magnitude first, in instance order.

    Raises
    ------
    ConfigError
        If neither magnitude nor phase is requested, or the geometry is degenerate.
    """
    comments = image.header.description or ""
    if comments.startswith("AI-reconstructed by ") and "AI" not in series_description:
        # a learned reconstruction says so where a reader looks first, naming the model and its version
        model = comments[len("AI-reconstructed by ") :].split(" (", 1)[0].split(",", 1)[0]
        series_description = f"{series_description} AI-recon {model}"
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

    if not (magnitude or phase):
        raise ConfigError("write_dicom_series needs magnitude=True or phase=True; nothing to write")
    folder = Path(folder)
    data = np.asarray(image.data)
    n_bad = int(np.count_nonzero(~np.isfinite(data)))
    if n_bad:
        raise FileFormatError(
            f"the image holds {n_bad} NaN or infinite values, which DICOM cannot store; nothing was written to "
            f"{str(folder)!r} (replace them, e.g. with 0, first)"
        )
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    nz, ny, nx = data.shape[-3:]
    volumes = data.reshape(-1, nz, ny, nx)
    geo = _geometry(np.asarray(image.header.affine, dtype=np.float64))
    affine = np.asarray(image.header.affine, dtype=np.float64)
    acq = image.header.acquisition
    study_uid = study_uid or _uid()
    normal = np.cross(geo["row"], geo["col"])
    thickness = acq.slice_thickness_m * 1e3 if acq is not None and acq.slice_thickness_m else geo["dz"]

    kinds: list[tuple[str, int]] = []
    if magnitude:
        kinds.append(("M", series_number))
    if phase:
        kinds.append(("P", series_number + 1 if magnitude else series_number))

    written: list[tuple[Path, Path]] = []
    try:
        for kind, number in kinds:
            values = np.angle(volumes) if kind == "P" else np.abs(volumes)
            values = values.astype(np.float64)
            slope, intercept = _scaling(values, phase=kind == "P")
            description = series_description if kind == "M" else f"{series_description} phase"
            series_uid = _uid()
            base = _common_dataset(
                image, study_uid=study_uid, series_uid=series_uid, series_number=number, description=description
            )
            if kind == "M":
                hi = float(np.percentile(values, 99.5)) if values.size else 1.0
                centre, width = hi / 2, max(hi, 1e-12)
            else:
                centre, width = 0.0, 2 * math.pi
            instance = 0
            for v, volume in enumerate(values):
                for k in range(nz):
                    instance += 1
                    ds = _copy(base)
                    meta = FileMetaDataset()
                    meta.MediaStorageSOPClassUID = UID(_MR_IMAGE_STORAGE)
                    meta.MediaStorageSOPInstanceUID = UID(_uid())
                    meta.TransferSyntaxUID = ExplicitVRLittleEndian
                    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
                    ds.file_meta = meta
                    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
                    ds.InstanceNumber = instance
                    ds.AcquisitionNumber = v + 1
                    # value 3 from the MR defined terms (OTHER / PHASE MAP), value 4 the vendor-style M / P
                    ds.ImageType = ["ORIGINAL", "PRIMARY", "PHASE MAP" if kind == "P" else "OTHER", kind]
                    position = (affine @ np.array([k, 0.0, 0.0, 1.0]))[:3][::-1] * 1e3
                    ds.ImagePositionPatient = [_ds(p) for p in position]
                    ds.ImageOrientationPatient = [_ds(c) for c in (*geo["row"], *geo["col"])]
                    ds.PixelSpacing = [_ds(geo["dy"]), _ds(geo["dx"])]
                    ds.SliceThickness = _ds(thickness)
                    ds.SpacingBetweenSlices = _ds(geo["dz"])
                    ds.SliceLocation = _ds(float(np.dot(position, normal)))
                    stored = np.rint((volume[k] - intercept) / slope)
                    pixels = np.clip(stored, 0, _MAX_U16).astype(np.uint16)
                    ds.SamplesPerPixel = 1
                    ds.PhotometricInterpretation = "MONOCHROME2"
                    ds.Rows, ds.Columns = ny, nx
                    ds.BitsAllocated = 16
                    ds.BitsStored = 16
                    ds.HighBit = 15
                    ds.PixelRepresentation = 0
                    ds.SmallestImagePixelValue = int(pixels.min())
                    ds.LargestImagePixelValue = int(pixels.max())
                    ds.RescaleIntercept = _ds(intercept)
                    ds.RescaleSlope = _ds(slope)
                    ds.RescaleType = "US" if kind == "M" else "RAD"
                    ds.WindowCenter = _ds(centre)
                    ds.WindowWidth = _ds(width)
                    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
                    final = folder / f"MR_{number:04d}_{instance:04d}.dcm"
                    tmp = temporary_name(final)
                    written.append((tmp, final))  # before writing: a failed write is removed too
                    ds.save_as(tmp, enforce_file_format=True)
        for tmp, final in written:
            os.replace(tmp, final)
    except BaseException:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty: the folder this call created
        raise
    return [final for _, final in written]


def _copy(ds: Any) -> Any:
    import copy

    return copy.deepcopy(ds)
