"""ISMRMRD (MRD v1, HDF5) raw-data files: write and read :class:`~hifield.data.RawData` with a complete header.

The file holds the standard group ``dataset`` with the XML header (``dataset/xml``, written with the ``ismrmrd``
package's schema classes) and one acquisition per acquired k-space line (``dataset/data``, the ``ismrmrd``
package's compound type). Values the XML schema cannot hold exactly (the full :class:`RawHeader`, the shape of
the leading ``other`` axes, a sampling mask that is not made of whole readout lines) travel in
``userParameters`` under names starting with ``hifield.``, so hifield files round-trip exactly while any
ISMRMRD reader (the C++ ``ismrmrd-tools``, Gadgetron) sees a conventional file.
"""

from __future__ import annotations

import base64
import json
import math
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield._atomic import atomic_path
from hifield.data import RawData, RawHeader, Trajectory, centred_affine
from hifield.errors import FileFormatError, HifieldError, check_memory
from hifield.io._sandbox import probe_variable_length
from hifield.io.mrd_header import PREFIX, build_xml, header_from_json, header_from_xml, user_parameters
from hifield.io.readout import crop_readout

__all__ = ["read_ismrmrd", "write_ismrmrd"]

# Acquisition flag bit numbers (1-based, as in ismrmrd.h).
_FIRST_IN_ENCODE_STEP1 = 1
_LAST_IN_ENCODE_STEP1 = 2
_FIRST_IN_ENCODE_STEP2 = 3
_LAST_IN_ENCODE_STEP2 = 4
_FIRST_IN_SLICE = 7
_LAST_IN_SLICE = 8
_FIRST_IN_REPETITION = 13
_LAST_IN_REPETITION = 14
_IS_NOISE_MEASUREMENT = 19
_IS_PARALLEL_CALIBRATION = 20
_IS_PARALLEL_CALIBRATION_AND_IMAGING = 21
_LAST_IN_MEASUREMENT = 25

_MAX_SAMPLES = 65535  # number_of_samples is uint16


def _bit(flag: int) -> int:
    return 1 << (flag - 1)


def _has(flags: NDArray[np.uint64], flag: int) -> NDArray[np.bool_]:
    return (flags & np.uint64(_bit(flag))) != 0


def _encode_bool(array: NDArray[np.bool_]) -> bytes:
    """Pack a bool array as base64(zlib(packbits)) with its shape in front (JSON)."""
    packed = zlib.compress(np.packbits(np.asarray(array, dtype=bool).ravel()).tobytes())
    head = json.dumps(list(array.shape)).encode() + b"\n"
    return base64.b64encode(head + packed)


def _decode_bool(blob: bytes, *, path: Path | str = "<blob>") -> NDArray[np.bool_]:
    try:
        raw = base64.b64decode(blob)
        head, packed = raw.split(b"\n", 1)
        shape = tuple(int(v) for v in json.loads(head))
        if len(shape) > 8 or any(n < 0 for n in shape) or math.prod(shape) > 2**34:
            raise ValueError(f"shape {shape}")
        unpacked = zlib.decompressobj().decompress(packed, (math.prod(shape) + 7) // 8)
        bits = np.unpackbits(np.frombuffer(unpacked, dtype=np.uint8), count=math.prod(shape))
        return bits.astype(bool).reshape(shape)
    except (ValueError, TypeError, zlib.error) as error:  # binascii.Error is a ValueError
        reason = " ".join(str(error).split())[:80] or type(error).__name__
        raise FileFormatError(f"{path}: userParameter {PREFIX}sampling is corrupt ({reason})") from None


def _other_shape(path: Path | str, text: Any) -> tuple[int, ...]:
    """The leading ``other`` axes stored by hifield, validated."""
    try:
        values = json.loads(text)
        if not isinstance(values, list) or len(values) > 8:
            raise ValueError("not a list of at most 8 sizes")
        shape = tuple(int(v) for v in values)
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
            raise ValueError("sizes must be positive integers")
    except (TypeError, ValueError) as error:
        raise FileFormatError(
            f"{path}: userParameter {PREFIX}other_shape = {str(text)[:40]!r} is invalid ({error})"
        ) from None
    return shape


def _flag(path: Path | str, params: dict[str, Any], name: str) -> bool:
    value = params.get(PREFIX + name, 0)
    if value not in (0, 1):
        raise FileFormatError(f"{path}: userParameter {PREFIX}{name} = {value!r} is not 0 or 1; the file is corrupt")
    return bool(value)


def _check_record_fields(path: Path | str, records: NDArray[Any]) -> None:
    """The acquisitions are ISMRMRD's compound records: ``head`` (with every header field), ``traj`` and ``data``."""
    from ismrmrd.hdf5 import acquisition_header_dtype, encoding_counters_dtype

    names = records.dtype.names or ()
    missing = [name for name in ("head", "traj", "data") if name not in names]
    if not missing:
        head_names = records.dtype["head"].names or ()
        missing = [f"head.{n}" for n in acquisition_header_dtype.names or () if n not in head_names]
        if not missing and "idx" in head_names:
            idx_names = records.dtype["head"]["idx"].names or ()
            missing = [f"head.idx.{n}" for n in encoding_counters_dtype.names or () if n not in idx_names]
    if missing:
        raise FileFormatError(
            f"{path}: 'dataset/data' is not an ISMRMRD acquisition table (no field {missing[0]!r}); the file is corrupt"
        )


def _check_acquisitions(path: Path | str, records: NDArray[Any]) -> None:
    """Each acquisition's data and trajectory hold exactly what its header says (channels x samples)."""
    _check_record_fields(path, records)
    head = records["head"]
    channels = head["active_channels"].astype(np.int64)
    samples = head["number_of_samples"].astype(np.int64)
    dims = head["trajectory_dimensions"].astype(np.int64)
    for i in range(records.size):
        data, traj = records["data"][i], records["traj"][i]
        if channels[i] < 1:
            raise FileFormatError(f"{path}: acquisition {i} has active_channels = 0; the file is corrupt")
        if np.asarray(data).size != 2 * channels[i] * samples[i]:
            raise FileFormatError(
                f"{path}: acquisition {i} holds {np.asarray(data).size // 2} complex values, but number_of_samples "
                f"{samples[i]} x active_channels {channels[i]} = {samples[i] * channels[i]}; the file is corrupt or cut"
            )
        if not np.all(np.isfinite(data)):
            raise FileFormatError(f"{path}: acquisition {i} holds NaN or infinite samples; the file is corrupt")
        if dims[i] and np.asarray(traj).size != dims[i] * samples[i]:
            raise FileFormatError(
                f"{path}: acquisition {i} has {np.asarray(traj).size} trajectory values for {samples[i]} samples of "
                f"{dims[i]} dimensions; the file is corrupt"
            )


def _line_sets(raw: RawData) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_] | None, bool]:
    """Imaging lines, calibration lines (k2, k1), the full mask to store if not line-wise, and mask_is_none."""
    shape = raw.kspace.shape[-3:]
    full = np.broadcast_to(raw.sampling_mask, shape)
    calib = np.zeros(shape, bool) if raw.calibration is None else np.broadcast_to(raw.calibration, shape)
    imaging_lines: NDArray[np.bool_] = np.asarray(full.any(axis=-1), dtype=bool)
    calib_lines: NDArray[np.bool_] = np.asarray(calib.any(axis=-1), dtype=bool)
    line_wise = bool(np.array_equal(full, np.broadcast_to(imaging_lines[..., None], shape))) and bool(
        np.array_equal(calib, np.broadcast_to(calib_lines[..., None], shape))
    )
    return imaging_lines, calib_lines, None if line_wise else full, raw.mask is None


def _directions(affine: NDArray[np.float64], shape_zyx: tuple[int, int, int]) -> dict[str, NDArray[np.float32]]:
    """ISMRMRD position [mm] and unit read/phase/slice directions, all (x, y, z) LPS."""
    cols = affine[:3, :3]
    centre = affine @ np.array([shape_zyx[0] // 2, shape_zyx[1] // 2, shape_zyx[2] // 2, 1.0])

    def unit(col: NDArray[np.float64]) -> NDArray[np.float32]:
        norm = float(np.linalg.norm(col))
        return (col[::-1] / norm if norm > 0 else col[::-1]).astype(np.float32)

    return {
        "position": (centre[:3][::-1] * 1e3).astype(np.float32),
        "read_dir": unit(cols[:, 2]),
        "phase_dir": unit(cols[:, 1]),
        "slice_dir": unit(cols[:, 0]),
    }


def write_ismrmrd(raw: RawData, path: str | os.PathLike[str]) -> None:
    """Write raw data to an ISMRMRD v1 HDF5 file (group ``dataset``).

    One acquisition per acquired line ``(k2, k1)`` of every leading ``other`` index (stored as the repetition
    counter), with ``kspace_encode_step_1/2`` set; calibration (ACS) lines carry ``IS_PARALLEL_CALIBRATION`` (and
    ``IS_PARALLEL_CALIBRATION_AND_IMAGING`` when also part of the imaging mask); the noise scan, if any, comes
    first as ``IS_NOISE_MEASUREMENT`` acquisitions. The file is written under a temporary name and renamed, so
    ``path`` is either complete or absent.

    Parameters
    ----------
    raw
        Cartesian raw data; ``kspace`` shape ``(*other, coil, k2, k1, k0)``.
    path
        Output file (``.h5``). Replaced if it exists.

    Raises
    ------
    FileFormatError
        If the data cannot be represented (more than 65535 readout samples or encoding steps).
    """
    import h5py
    from ismrmrd.hdf5 import acquisition_dtype

    path = Path(path)
    kspace = np.asarray(raw.kspace)
    *other, n_coil, n_k2, n_k1, n_k0 = kspace.shape
    if max(n_k0, n_k1, n_k2, n_coil) > _MAX_SAMPLES:
        raise FileFormatError(
            f"k-space shape {kspace.shape} exceeds ISMRMRD's 65535 samples/steps/channels; split the data first"
        )
    n_other = math.prod(other)
    if n_other > _MAX_SAMPLES:
        raise FileFormatError(f"{n_other} leading 'other' volumes exceed ISMRMRD's 65535 repetitions; split them")
    flat = kspace.reshape(n_other, n_coil, n_k2, n_k1, n_k0).astype(np.complex64, copy=False)
    imaging_lines, calib_lines, full_mask, _ = _line_sets(raw)
    written = imaging_lines | calib_lines
    k2_idx, k1_idx = np.nonzero(written)
    mask_blob = None
    if full_mask is not None:
        blob_calib = None if raw.calibration is None else np.broadcast_to(raw.calibration, full_mask.shape)
        mask_blob = _encode_bool(np.stack([full_mask, blob_calib if blob_calib is not None else full_mask & False]))
    xml = build_xml(raw, mask_blob=mask_blob, n_other=n_other)

    h = raw.header
    geometry = _directions(h.affine_array(), (n_k2, n_k1, n_k0))
    traj = None
    traj_dims = 0
    if raw.trajectory is not None:
        k = np.asarray(raw.trajectory.kspace_m)
        if k.size == n_k2 * n_k1 * n_k0 * 3:
            traj = k.reshape(n_k2, n_k1, n_k0, 3)[..., ::-1].astype(np.float32)  # (kx, ky, kz) [1/m]
            traj_dims = 3
            if raw.trajectory.density is not None:
                dens = np.asarray(raw.trajectory.density, dtype=np.float32).reshape(n_k2, n_k1, n_k0, 1)
                traj = np.concatenate([traj, dens], axis=-1)
                traj_dims = 4

    noise_chunks: list[NDArray[np.complex64]] = []
    if raw.noise is not None:
        noise = np.asarray(raw.noise, dtype=np.complex64)
        if noise.ndim != 2 or noise.shape[0] != n_coil:
            raise FileFormatError(f"noise scan must have shape (coil={n_coil}, n); got {noise.shape}")
        noise_chunks = [noise[:, i : i + _MAX_SAMPLES] for i in range(0, noise.shape[1], _MAX_SAMPLES)]

    n_lines = len(k1_idx)
    n_acq = len(noise_chunks) + n_other * n_lines
    records = np.zeros(n_acq, dtype=acquisition_dtype)
    head = records["head"]
    head["version"] = 1
    head["available_channels"] = n_coil
    head["active_channels"] = n_coil
    head["channel_mask"][:, : (n_coil + 63) // 64] = 0
    for c in range(n_coil):
        head["channel_mask"][:, c // 64] |= np.uint64(1 << (c % 64))
    head["sample_time_us"] = h.readout_dwell_s * 1e6
    for name, vec in geometry.items():
        head[name] = vec
    head["scan_counter"] = np.arange(n_acq, dtype=np.uint32)
    empty = np.zeros(0, dtype=np.float32)

    for i, chunk in enumerate(noise_chunks):
        head["number_of_samples"][i] = chunk.shape[1]
        head["flags"][i] = _bit(_IS_NOISE_MEASUREMENT)
        records["data"][i] = np.ascontiguousarray(chunk).view(np.float32).ravel()
        records["traj"][i] = empty

    flags_line = np.zeros(n_lines, dtype=np.uint64)
    if n_lines:
        is_cal = calib_lines[k2_idx, k1_idx]
        is_img = imaging_lines[k2_idx, k1_idx]
        flags_line[is_cal] |= np.uint64(_bit(_IS_PARALLEL_CALIBRATION))
        flags_line[is_cal & is_img] |= np.uint64(_bit(_IS_PARALLEL_CALIBRATION_AND_IMAGING))
        new_partition = np.r_[True, k2_idx[1:] != k2_idx[:-1]]
        end_partition = np.r_[k2_idx[1:] != k2_idx[:-1], True]
        flags_line[new_partition] |= np.uint64(_bit(_FIRST_IN_ENCODE_STEP1))
        flags_line[end_partition] |= np.uint64(_bit(_LAST_IN_ENCODE_STEP1))
        first = np.uint64(_bit(_FIRST_IN_ENCODE_STEP2) | _bit(_FIRST_IN_SLICE) | _bit(_FIRST_IN_REPETITION))
        last = np.uint64(_bit(_LAST_IN_ENCODE_STEP2) | _bit(_LAST_IN_SLICE) | _bit(_LAST_IN_REPETITION))
        flags_line[0] |= first
        flags_line[-1] |= last

    start = len(noise_chunks)
    for r in range(n_other):
        lines = flat[r][:, k2_idx, k1_idx, :]  # (coil, line, k0)
        sl = slice(start + r * n_lines, start + (r + 1) * n_lines)
        head["number_of_samples"][sl] = n_k0
        head["center_sample"][sl] = n_k0 // 2
        head["flags"][sl] = flags_line
        head["idx"]["kspace_encode_step_1"][sl] = k1_idx
        head["idx"]["kspace_encode_step_2"][sl] = k2_idx
        head["idx"]["repetition"][sl] = r
        head["trajectory_dimensions"][sl] = traj_dims
        for j in range(n_lines):
            records["data"][sl.start + j] = np.ascontiguousarray(lines[:, j, :]).view(np.float32).ravel()
            records["traj"][sl.start + j] = empty if traj is None else traj[k2_idx[j], k1_idx[j]].ravel()
    if n_acq:
        head["flags"][-1] |= np.uint64(_bit(_LAST_IN_MEASUREMENT))
    records["head"] = head

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        group = f.create_group("dataset")
        group.create_dataset("xml", shape=(1,), dtype=h5py.special_dtype(vlen=bytes), data=[xml.encode()])
        group.create_dataset("data", data=records, maxshape=(None,), chunks=True)


def _with_affine(header: RawHeader, head: NDArray[Any]) -> RawHeader:
    """Add the affine implied by the first acquisition's position and directions (centred grid if absent)."""
    voxel = header.voxel_size_m
    read, phase, slc = (np.asarray(head[0][n], dtype=np.float64)[::-1] for n in ("read_dir", "phase_dir", "slice_dir"))
    if min(np.linalg.norm(read), np.linalg.norm(phase), np.linalg.norm(slc)) < 0.5:
        affine = centred_affine(header.matrix, voxel)
    else:
        affine = np.eye(4)
        affine[:3, 0], affine[:3, 1], affine[:3, 2] = slc * voxel[0], phase * voxel[1], read * voxel[2]
        centre = np.asarray(head[0]["position"], dtype=np.float64)[::-1] * 1e-3
        affine[:3, 3] = centre - affine[:3, :3] @ np.array([n // 2 for n in header.matrix], dtype=np.float64)
    return header.replace(affine=tuple(tuple(float(v) for v in row) for row in affine))


def read_ismrmrd(path: str | os.PathLike[str], *, remove_readout_oversampling: bool = False) -> RawData:
    """Read an ISMRMRD v1 HDF5 file (group ``dataset``) into :class:`RawData`.

    Files written by :func:`write_ismrmrd` come back exactly (k-space, mask, calibration, noise, header). Files
    from other tools are read from their standard XML fields and acquisitions: lines land on the encoded grid
    ``(coil, k2, k1, k0)``, repeated lines (averages) are averaged, repetitions/contrasts/slices > 1 become
    leading ``other`` axes in that order, noise acquisitions form ``noise``.

    Parameters
    ----------
    path
        The ``.h5`` file.
    remove_readout_oversampling
        If the encoded readout is larger than the reconstruction matrix (e.g. 2x oversampling), crop the readout
        to the reconstruction FOV in image space and return k-space on the reconstruction grid.

    Raises
    ------
    FileFormatError
        If the file is missing, truncated, not HDF5, or lacks the ``dataset`` group, its XML or its data; or if the
        HDF5 library crashes on its variable-length data in the sandboxed first read (see
        :mod:`hifield.io._sandbox`).
    """
    import h5py
    import ismrmrd.xsd as X

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if "dataset" not in f or "xml" not in f["dataset"]:
                raise FileFormatError(f"{path} is HDF5 but has no ISMRMRD 'dataset/xml' header; is it an MRD v1 file?")
            for name in ("xml", "data"):
                if name in f["dataset"] and isinstance(f["dataset"][name], h5py.Dataset):
                    item = f["dataset"][name]
                    check_memory(float(item.size) * max(item.dtype.itemsize, 64), what=f"reading {path} ({name})")
            # a damaged file can make HDF5 crash the process on its variable-length data: read it in a child first
            probe_variable_length(f, ["dataset/xml", "dataset/data"], path=path)
            xml = f["dataset/xml"][0]
            records = f["dataset/data"][()] if "data" in f["dataset"] else None
    except HifieldError:
        raise
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such ISMRMRD file; check the path") from None
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FileFormatError(f"{path} is not a readable ISMRMRD HDF5 file ({msg}); it may be truncated") from None
    try:
        header_xml = X.CreateFromDocument(xml.decode() if isinstance(xml, bytes) else str(xml))
    except Exception as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FileFormatError(f"{path}: ISMRMRD XML header does not parse ({msg}); the file is corrupt") from None
    if records is None or records.size == 0:
        raise FileFormatError(f"{path} holds no acquisitions ('dataset/data' missing or empty); nothing to read")

    params = user_parameters(header_xml)
    std_header, encoded = header_from_xml(header_xml, path=path)
    ours = PREFIX + "raw_header" in params
    _check_acquisitions(path, records)  # ISMRMRD's record fields first, then each acquisition's sizes
    head = records["head"]
    header = header_from_json(params[PREFIX + "raw_header"], path=path) if ours else _with_affine(std_header, head)

    flags = head["flags"].astype(np.uint64)
    is_noise = _has(flags, _IS_NOISE_MEASUREMENT)
    noise = None
    if is_noise.any():
        chunks = []
        for i in np.nonzero(is_noise)[0]:
            nc, ns = int(head["active_channels"][i]), int(head["number_of_samples"][i])
            chunks.append(np.asarray(records["data"][i], dtype=np.float32).view(np.complex64).reshape(nc, ns))
        if len({c.shape[0] for c in chunks}) == 1:
            noise = np.concatenate(chunks, axis=1)
    # Ignore navigator / phase-correction / dummy-scan data for the k-space grid.
    skip = is_noise | _has(flags, 23) | _has(flags, 24) | _has(flags, 27)
    img_idx = np.nonzero(~skip)[0]
    if img_idx.size == 0:
        raise FileFormatError(f"{path} holds only noise/navigator acquisitions; no imaging k-space to read")
    idx = head["idx"][img_idx]
    n_coil = int(head["active_channels"][img_idx].max())
    n_k2, n_k1, n_k0 = encoded
    n_k0 = max(n_k0, int(head["number_of_samples"][img_idx].max()))
    n_k1 = max(n_k1, int(idx["kspace_encode_step_1"].max()) + 1)
    n_k2 = max(n_k2, int(idx["kspace_encode_step_2"].max()) + 1)
    if ours and (n_k2, n_k1, n_k0) != encoded:
        raise FileFormatError(
            f"{path}: acquisitions span a (k2, k1, k0) grid of {(n_k2, n_k1, n_k0)}, but the header's encoded matrix "
            f"is {encoded}; an acquisition's number_of_samples or encoding index is corrupt"
        )

    if ours:
        other_shape = _other_shape(path, params.get(PREFIX + "other_shape", "[]"))
        counters = [idx["repetition"].astype(np.int64)]
        sizes = [max(math.prod(other_shape), 1)]
        if int(counters[0].max()) >= sizes[0]:
            raise FileFormatError(
                f"{path}: an acquisition's repetition {int(counters[0].max())} exceeds the {sizes[0]} volumes of "
                f"{PREFIX}other_shape; the file is corrupt"
            )
    else:
        names = ["repetition", "contrast", "slice"]
        counters, sizes = [], []
        for name in names:
            n = int(idx[name].max()) + 1
            if n > 1:
                counters.append(idx[name].astype(np.int64))
                sizes.append(n)
        other_shape = tuple(sizes)
        if not counters:
            counters, sizes = [np.zeros(img_idx.size, np.int64)], [1]
    flat_other = np.ravel_multi_index(tuple(counters), tuple(sizes))
    n_other = math.prod(sizes)

    check_memory(
        16.0 * n_other * n_coil * n_k2 * n_k1 * n_k0, what=f"reading {path}", hint="the header's sizes may be corrupt"
    )
    kspace = np.zeros((n_other, n_coil, n_k2, n_k1, n_k0), dtype=np.complex128)
    counts = np.zeros((n_other, n_k2, n_k1), dtype=np.int64)
    imaging_lines = np.zeros((n_k2, n_k1), dtype=bool)
    calib_lines = np.zeros((n_k2, n_k1), dtype=bool)
    line_flags = flags[img_idx]
    cal = _has(line_flags, _IS_PARALLEL_CALIBRATION)
    cal_and_img = _has(line_flags, _IS_PARALLEL_CALIBRATION_AND_IMAGING)
    for j, i in enumerate(img_idx):
        nc, ns = int(head["active_channels"][i]), int(head["number_of_samples"][i])
        k1, k2 = int(idx["kspace_encode_step_1"][j]), int(idx["kspace_encode_step_2"][j])
        data = np.asarray(records["data"][i], dtype=np.float32).view(np.complex64).reshape(nc, ns)
        centre = int(head["center_sample"][i])
        offset = n_k0 // 2 - centre if centre else (n_k0 - ns) // 2
        if offset < 0 or offset + ns > n_k0:
            raise FileFormatError(
                f"{path}: acquisition {int(i)} has {ns} samples centred at {centre}, outside the {n_k0}-sample readout"
            )
        kspace[flat_other[j], :nc, k2, k1, offset : offset + ns] += data
        counts[flat_other[j], k2, k1] += 1
        if cal[j]:
            calib_lines[k2, k1] = True
        if not cal[j] or cal_and_img[j]:
            imaging_lines[k2, k1] = True
    kspace /= np.maximum(counts, 1)[:, None, :, :, None]
    kspace_c64 = kspace.astype(np.complex64).reshape((*other_shape, n_coil, n_k2, n_k1, n_k0))

    shape3 = (n_k2, n_k1, n_k0)
    mask: NDArray[np.bool_] | None = np.ascontiguousarray(np.broadcast_to(imaging_lines[..., None], shape3))
    calibration: NDArray[np.bool_] | None = (
        np.ascontiguousarray(np.broadcast_to(calib_lines[..., None], shape3)) if calib_lines.any() else None
    )
    blob = params.get(PREFIX + "sampling")
    if blob is not None:
        both = _decode_bool(blob if isinstance(blob, bytes) else str(blob).encode(), path=path)
        if both.shape != (2, *shape3):
            raise FileFormatError(
                f"{path}: userParameter {PREFIX}sampling has shape {both.shape}, not (2, *{shape3}); it is corrupt"
            )
        mask, calibration = both[0], both[1]
    if ours:
        if _flag(path, params, "mask_is_none"):
            mask = None
        if _flag(path, params, "calibration_is_none"):
            calibration = None
    elif mask is not None and mask.all():
        mask = None

    trajectory = None
    dims = int(head["trajectory_dimensions"][img_idx].max())
    if dims >= 3 and ours:
        traj = np.zeros((n_k2, n_k1, n_k0, dims), dtype=np.float32)
        for j, i in enumerate(img_idx[: int(np.sum(flat_other == 0))]):
            k1, k2 = int(idx["kspace_encode_step_1"][j]), int(idx["kspace_encode_step_2"][j])
            traj[k2, k1] = np.asarray(records["traj"][i], dtype=np.float32).reshape(n_k0, dims)
        trajectory = Trajectory(
            kspace_m=traj[..., 2::-1].astype(np.float64), density=traj[..., 3].copy() if dims >= 4 else None
        )

    if remove_readout_oversampling and n_k0 > header.matrix[2]:
        kspace_c64 = crop_readout(kspace_c64, header.matrix[2])
        n_new = kspace_c64.shape[-1]
        if mask is not None:
            mask = np.ascontiguousarray(np.broadcast_to(mask[..., :1], (n_k2, n_k1, n_new)))
        if calibration is not None:
            calibration = np.ascontiguousarray(np.broadcast_to(calibration[..., :1], (n_k2, n_k1, n_new)))
    return RawData(
        kspace=kspace_c64, header=header, mask=mask, calibration=calibration, trajectory=trajectory, noise=noise
    )
