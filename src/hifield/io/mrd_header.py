"""ISMRMRD headers: hifield's XML (with its exact :class:`RawHeader` as JSON) and their validated reading.

Every value read from a file is checked here, once, and a bad one is refused with one
:class:`~hifield.errors.FileFormatError` naming the file and the field: a header is data from outside.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, get_args

import numpy as np

from hifield.data import RawData, RawHeader
from hifield.data.raw import TrajectoryType
from hifield.errors import FileFormatError
from hifield.units import larmor_frequency_hz

__all__ = [
    "PREFIX",
    "build_xml",
    "header_from_json",
    "header_from_xml",
    "header_to_json",
    "user_parameters",
    "validate_raw_header",
]

PREFIX = "hifield."
"""Prefix of hifield's ``userParameters`` names."""
MAX_MATRIX = 65535
"""Largest matrix size on any axis (ISMRMRD's encoding counters are uint16)."""
_MAX_TEXT = 1024


def header_to_json(header: RawHeader) -> str:
    """The whole :class:`RawHeader` as JSON (``userParameters`` ``hifield.raw_header``)."""
    return json.dumps(dataclasses.asdict(header))


def _bad(path: Path | str, name: str, value: Any, rule: str) -> FileFormatError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return FileFormatError(f"{path}: header field {name} = {shown} is invalid ({rule}); the file is corrupt")


def _float(path: Path | str, name: str, value: Any, *, minimum: float | None = None, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, np.number)):
        raise _bad(path, name, value, "not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _bad(path, name, value, "not a number") from None
    if not math.isfinite(number):
        raise _bad(path, name, value, "not finite")
    if positive and number <= 0:
        raise _bad(path, name, value, "must be positive")
    if minimum is not None and number < minimum:
        raise _bad(path, name, value, f"must be >= {minimum:g}")
    return number


def _int(path: Path | str, name: str, value: Any, *, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
    if isinstance(value, bool):
        raise _bad(path, name, value, "not an integer")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise _bad(path, name, value, "not an integer") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, (int, np.integer)):
        raise _bad(path, name, value, "not an integer")
    if not minimum <= int(value) <= maximum:
        raise _bad(path, name, value, f"must be {minimum}..{maximum}")
    return int(value)


def _text(path: Path | str, name: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise _bad(path, name, value, f"not a text of at most {_MAX_TEXT} characters")
    return value


def _triple(path: Path | str, name: str, value: Any, item: Any) -> tuple[Any, Any, Any]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise _bad(path, name, value, "not a list of 3 values (z, y, x)")
    return tuple(item(f"{name}[{i}]", v) for i, v in enumerate(value))  # type: ignore[return-value]


def _affine(path: Path | str, value: Any) -> tuple[tuple[float, ...], ...]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 4
        or any(not isinstance(row, (list, tuple)) or len(row) != 4 for row in value)
    ):
        raise _bad(path, "affine", value, "not a 4 x 4 matrix")
    rows = tuple(tuple(_float(path, f"affine[{i}][{j}]", v) for j, v in enumerate(row)) for i, row in enumerate(value))
    if abs(float(np.linalg.det(np.asarray(rows)[:3, :3]))) == 0.0:
        raise _bad(path, "affine", value, "singular: voxel axes without extent")
    return rows


def validate_raw_header(values: dict[str, Any], *, path: Path | str) -> dict[str, Any]:
    """Checked keyword arguments of :class:`RawHeader` from ``values`` (unknown keys are ignored).

    Raises
    ------
    FileFormatError
        Naming the first missing or invalid field.
    """
    path = str(path)
    out: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(RawHeader)}
    for name in ("b0_t", "fov_m", "matrix", "te_s", "tr_s", "flip_angle_rad"):
        if name not in values:
            raise FileFormatError(f"{path}: header field {name} is missing; the file is corrupt")
    for name, value in values.items():
        if name not in fields:
            continue
        if name == "b0_t":
            out[name] = _float(path, name, value, positive=True)
        elif name == "fov_m":
            out[name] = _triple(path, name, value, lambda n, v: _float(path, n, v, positive=True))
        elif name == "matrix":
            out[name] = _triple(path, name, value, lambda n, v: _int(path, n, v, minimum=1, maximum=MAX_MATRIX))
        elif name == "flip_angle_rad":
            out[name] = _float(path, name, value)
        elif name in ("ti_s", "slice_thickness_m"):
            out[name] = None if value is None else _float(path, name, value, minimum=0.0)
        elif name in ("echo_train_length", "n_averages"):
            out[name] = _int(path, name, value, minimum=1, maximum=65535)
        elif name == "acceleration":
            out[name] = _float(path, name, value, positive=True)
        elif name in ("te_s", "tr_s", "pixel_bandwidth_hz", "readout_dwell_s", "scan_time_s", "scan_time_full_s"):
            out[name] = _float(path, name, value, minimum=0.0)
        elif name == "acquisition_type":
            if value not in ("2D", "3D"):
                raise _bad(path, name, value, "must be 2D or 3D")
            out[name] = value
        elif name == "trajectory":
            if value not in get_args(TrajectoryType):
                raise _bad(path, name, value, f"must be one of {', '.join(get_args(TrajectoryType))}")
            out[name] = value
        elif name == "affine":
            out[name] = _affine(path, value)
        else:
            out[name] = _text(path, name, value)
    return out


def header_from_json(text: Any, *, path: Path | str) -> RawHeader:
    """:class:`RawHeader` from hifield's ``raw_header`` JSON, every field validated."""
    try:
        values = json.loads(text)
    except (TypeError, ValueError) as error:
        raise FileFormatError(
            f"{path}: userParameter {PREFIX}raw_header is not valid JSON ({error}); the file is corrupt"
        ) from None
    if not isinstance(values, dict):
        raise FileFormatError(f"{path}: userParameter {PREFIX}raw_header is not a JSON object; the file is corrupt")
    return RawHeader(**validate_raw_header(values, path=path))


def build_xml(raw: RawData, *, mask_blob: bytes | None, n_other: int) -> str:
    import ismrmrd.xsd as X

    h = raw.header
    n_coil, n_k2, n_k1, n_k0 = raw.kspace.shape[-4:]
    mz, my, mx = h.matrix
    fz, fy, fx = (v * 1e3 for v in h.fov_m)
    # The encoded space is the k-space grid; its FOV scales with any oversampling relative to the recon matrix.
    enc_fov = X.fieldOfViewMm(x=fx * n_k0 / mx, y=fy * n_k1 / my, z=fz * n_k2 / mz)
    encoded = X.encodingSpaceType(matrixSize=X.matrixSizeType(x=n_k0, y=n_k1, z=n_k2), fieldOfView_mm=enc_fov)
    recon = X.encodingSpaceType(
        matrixSize=X.matrixSizeType(x=mx, y=my, z=mz), fieldOfView_mm=X.fieldOfViewMm(x=fx, y=fy, z=fz)
    )

    def lim(n: int) -> Any:
        return X.limitType(minimum=0, maximum=max(n - 1, 0), center=n // 2)

    limits = X.encodingLimitsType(
        kspace_encoding_step_0=lim(n_k0),
        kspace_encoding_step_1=lim(n_k1),
        kspace_encoding_step_2=lim(n_k2),
        average=lim(1),
        slice=lim(1),
        contrast=lim(1),
        phase=lim(1),
        repetition=lim(n_other),
        set=lim(1),
        segment=lim(1),
    )
    parallel = None
    if h.acceleration > 1.0 or raw.calibration is not None:
        accel_1 = max(1, round(h.acceleration)) if n_k2 == 1 else 1
        accel_2 = 1 if n_k2 == 1 else max(1, round(h.acceleration))
        parallel = X.parallelImagingType(
            accelerationFactor=X.accelerationFactorType(kspace_encoding_step_1=accel_1, kspace_encoding_step_2=accel_2),
            calibrationMode=X.calibrationModeType.EMBEDDED if raw.calibration is not None else None,
        )
    encoding = X.encodingType(
        encodedSpace=encoded,
        reconSpace=recon,
        encodingLimits=limits,
        trajectory=X.trajectoryType(h.trajectory),
        parallelImaging=parallel,
        echoTrainLength=h.echo_train_length,
    )
    seq = X.sequenceParametersType(
        TR=[h.tr_s * 1e3],
        TE=[h.te_s * 1e3],
        TI=[h.ti_s * 1e3] if h.ti_s is not None else [],
        flipAngle_deg=[math.degrees(h.flip_angle_rad)],
        sequence_type=h.sequence_name or None,
    )
    system = X.acquisitionSystemInformationType(
        systemVendor=h.system_vendor,
        systemModel=h.system_model or None,
        systemFieldStrength_T=h.b0_t,
        receiverChannels=n_coil,
    )
    strings = [
        X.userParameterStringType(name=PREFIX + "raw_header", value=header_to_json(h)),
        X.userParameterStringType(name=PREFIX + "other_shape", value=json.dumps(list(raw.kspace.shape[:-4]))),
        X.userParameterStringType(name=PREFIX + "scanning_sequence", value=h.scanning_sequence),
        X.userParameterStringType(name=PREFIX + "sequence_variant", value=h.sequence_variant),
        X.userParameterStringType(name=PREFIX + "acquisition_type", value=h.acquisition_type),
    ]
    doubles = [
        X.userParameterDoubleType(name=PREFIX + "acceleration", value=h.acceleration),
        X.userParameterDoubleType(name=PREFIX + "pixel_bandwidth_hz", value=h.pixel_bandwidth_hz),
        X.userParameterDoubleType(name=PREFIX + "scan_time_s", value=h.scan_time_s),
    ]
    longs = [
        X.userParameterLongType(name=PREFIX + "mask_is_none", value=int(raw.mask is None)),
        X.userParameterLongType(name=PREFIX + "calibration_is_none", value=int(raw.calibration is None)),
    ]
    blobs = []
    if mask_blob is not None:
        blobs.append(X.userParameterBase64Type(name=PREFIX + "sampling", value=mask_blob))
    header = X.ismrmrdHeader(
        # no <version>: libismrmrd refuses a header whose version differs from its own schema version (1.8 writes 8,
        # newer releases 2), while an absent version is accepted by every release
        subjectInformation=X.subjectInformationType(patientName=h.patient_name, patientID=h.patient_id),
        measurementInformation=X.measurementInformationType(
            patientPosition=X.patientPositionType.HFS,
            protocolName=h.protocol_name or None,
            sequenceName=h.sequence_name or None,
        ),
        acquisitionSystemInformation=system,
        experimentalConditions=X.experimentalConditionsType(H1resonanceFrequency_Hz=round(larmor_frequency_hz(h.b0_t))),
        encoding=[encoding],
        sequenceParameters=seq,
        userParameters=X.userParametersType(
            userParameterLong=longs, userParameterDouble=doubles, userParameterString=strings, userParameterBase64=blobs
        ),
    )
    xml = header.toXML("utf-8")
    return xml.decode() if isinstance(xml, bytes) else str(xml)


def user_parameters(header: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    params = header.userParameters
    if params is None:
        return out
    for group in (
        params.userParameterLong,
        params.userParameterDouble,
        params.userParameterString,
        params.userParameterBase64,
    ):
        for p in group:
            out[p.name] = p.value
    return out


def header_from_xml(header: Any, *, path: Path | str = "<header>") -> tuple[RawHeader, tuple[int, int, int]]:
    """RawHeader from the standard XML fields (for files not written by hifield); also the encoded matrix.

    Raises
    ------
    FileFormatError
        Naming the missing or invalid XML element (a non-integer or non-positive matrix size, an infinite FOV ...).
    """
    path = str(path)

    def need(value: Any, name: str) -> Any:
        if value is None:
            raise FileFormatError(f"{path}: ISMRMRD header has no {name}; the file is incomplete")
        return value

    encodings = header.encoding or []
    enc = need(encodings[0] if encodings else None, "encoding")
    e = need(enc.encodedSpace, "encoding/encodedSpace")
    r = need(enc.reconSpace, "encoding/reconSpace")
    seq = header.sequenceParameters
    system = header.acquisitionSystemInformation

    def size(space: Any, where: str) -> tuple[int, int, int]:
        m = need(space.matrixSize, f"{where}/matrixSize")
        return tuple(  # type: ignore[return-value]
            _int(path, f"{where}/matrixSize/{axis}", getattr(m, axis), minimum=1, maximum=MAX_MATRIX)
            for axis in ("z", "y", "x")
        )

    b0 = None
    if system is not None and system.systemFieldStrength_T:
        b0 = _float(path, "systemFieldStrength_T", system.systemFieldStrength_T, positive=True)
    if b0 is None:
        conditions = need(header.experimentalConditions, "experimentalConditions")
        frequency = _float(path, "H1resonanceFrequency_Hz", conditions.H1resonanceFrequency_Hz, positive=True)
        b0 = frequency / larmor_frequency_hz(1.0)

    def first(values: list[Any] | None, name: str, scale: float, default: float | None) -> float | None:
        return _float(path, name, values[0], minimum=0.0) * scale if values else default

    accel = 1.0
    if enc.parallelImaging is not None and enc.parallelImaging.accelerationFactor is not None:
        af = enc.parallelImaging.accelerationFactor
        accel = float(
            _int(path, "accelerationFactor/kspace_encoding_step_1", af.kspace_encoding_step_1, minimum=1)
            * _int(path, "accelerationFactor/kspace_encoding_step_2", af.kspace_encoding_step_2, minimum=1)
        )
    fov_mm = need(r.fieldOfView_mm, "encoding/reconSpace/fieldOfView_mm")
    fov = tuple(
        _float(path, f"encoding/reconSpace/fieldOfView_mm/{axis}", getattr(fov_mm, axis), positive=True) * 1e-3
        for axis in ("z", "y", "x")
    )
    subject = header.subjectInformation
    measurement = header.measurementInformation
    encoded = size(e, "encoding/encodedSpace")
    kwargs: dict[str, Any] = {
        "b0_t": b0,
        "fov_m": fov,
        "matrix": size(r, "encoding/reconSpace"),
        "te_s": first(seq.TE if seq else None, "sequenceParameters/TE", 1e-3, 0.0),
        "tr_s": first(seq.TR if seq else None, "sequenceParameters/TR", 1e-3, 0.0),
        "ti_s": first(seq.TI if seq else None, "sequenceParameters/TI", 1e-3, None),
        "flip_angle_rad": math.radians(
            first(seq.flipAngle_deg if seq else None, "sequenceParameters/flipAngle_deg", 1.0, 0.0) or 0.0
        ),
        "acceleration": accel,
        "trajectory": str(getattr(enc.trajectory, "value", enc.trajectory)),
        "echo_train_length": _int(path, "echoTrainLength", enc.echoTrainLength or 1, minimum=1, maximum=65535),
        "acquisition_type": "3D" if encoded[0] > 1 else "2D",
        "system_vendor": str(system.systemVendor) if system and system.systemVendor else "",
        "system_model": str(system.systemModel) if system and system.systemModel else "",
    }
    if kwargs["trajectory"] not in get_args(TrajectoryType):
        kwargs["trajectory"] = "other"
    if kwargs["acquisition_type"] == "2D":
        kwargs["slice_thickness_m"] = fov[0]
    if subject is not None:
        if subject.patientName:
            kwargs["patient_name"] = str(subject.patientName)
        if subject.patientID:
            kwargs["patient_id"] = str(subject.patientID)
    if measurement is not None:
        kwargs["protocol_name"] = str(measurement.protocolName or "")
        kwargs["sequence_name"] = str(measurement.sequenceName or "")
    return RawHeader(**validate_raw_header(kwargs, path=path)), encoded
