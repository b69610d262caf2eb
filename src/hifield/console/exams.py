"""Exam history from the exam folders: listing, safe file access, the images the viewer shows and PNG encoding."""

from __future__ import annotations

import functools
import json
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError, FileFormatError

VIEWER_FILE = "console.npz"
"""File the console writes beside a scan's outputs: truth, each reconstruction and the sampling mask."""

_EXAM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

_KINDS: tuple[tuple[str, str], ...] = (
    ("dicom/", "DICOM"),
    ("nifti/", "NIfTI"),
    ("raw.h5", "ISMRMRD"),
    ("figure.png", "figure"),
    ("summary.json", "summary"),
    ("protocol.yaml", "protocol"),
    ("scanner.yaml", "scanner"),
    (VIEWER_FILE, "viewer data"),
)


class NotFoundError(ConfigError):
    """An exam or file that does not exist (or may not be read): HTTP 404."""


def file_kind(relative: str) -> str:
    """What a file of an exam folder is (``DICOM``, ``NIfTI``, ``ISMRMRD``, ``figure``, ...).

    Examples
    --------
    >>> file_kind("dicom/fft/MR_0001_0001.dcm"), file_kind("raw.h5"), file_kind("notes.txt")
    ('DICOM', 'ISMRMRD', 'other')
    """
    for prefix, kind in _KINDS:
        if relative == prefix or (prefix.endswith("/") and relative.startswith(prefix)):
            return kind
    return "other"


def exam_dir(root: Path, exam_id: str) -> Path:
    """The folder of exam ``exam_id``: a direct child of ``root`` holding ``summary.json``.

    Raises
    ------
    NotFoundError
        For a malformed id (slashes, dots first, ``..``) or an exam that does not exist.
    """
    if not isinstance(exam_id, str) or not _EXAM_ID.match(exam_id) or ".." in exam_id:
        raise NotFoundError(f"no exam {exam_id!r}: exam ids are folder names in the exams folder")
    base = root.resolve()
    folder = (base / exam_id).resolve()
    if folder.parent != base or not (folder / "summary.json").is_file():
        raise NotFoundError(f"no exam {exam_id!r} in {str(base)!r}")
    return folder


def safe_file(root: Path, exam_id: str, relative: str) -> Path:
    """The file ``relative`` of exam ``exam_id``, refusing any path that leaves the exam's folder.

    Absolute paths, ``..`` components, hidden entries and symbolic links pointing outside the folder are refused.

    Raises
    ------
    NotFoundError
        When the path leaves the exam folder or names no regular file.
    """
    folder = exam_dir(root, exam_id)
    parts = Path(relative).parts
    if (
        not relative
        or relative.startswith(("/", "\\"))
        or "\\" in relative
        or any(p in ("..", ".") or p.startswith(".") for p in parts)
    ):
        raise NotFoundError(f"file {relative!r} is not inside exam {exam_id!r}; downloads stay in the exam folder")
    target = (folder / relative).resolve()
    if not target.is_relative_to(folder) or not target.is_file():
        raise NotFoundError(f"file {relative!r} is not inside exam {exam_id!r}; downloads stay in the exam folder")
    return target


def list_files(folder: Path) -> list[dict[str, Any]]:
    """Every regular file of an exam folder: relative path, kind and size [bytes]."""
    out = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if not path.is_file() or path.is_symlink() or any(p.startswith(".") for p in Path(relative).parts):
            continue
        out.append({"path": relative, "kind": file_kind(relative), "bytes": path.stat().st_size})
    return out


def read_summary(folder: Path) -> dict[str, Any]:
    """The exam's ``summary.json``."""
    try:
        data = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FileFormatError(
            f"summary.json of exam {folder.name!r} cannot be read ({error}); rerun the scan"
        ) from None
    if not isinstance(data, dict):
        raise FileFormatError(f"summary.json of exam {folder.name!r} is not a mapping; rerun the scan")
    return data


def list_exams(root: Path) -> list[dict[str, Any]]:
    """Every exam under ``root`` (newest first) with the facts the history shows."""
    if not root.is_dir():
        return []
    exams = []
    for folder in root.iterdir():
        if not folder.is_dir() or not _EXAM_ID.match(folder.name) or not (folder / "summary.json").is_file():
            continue
        try:
            summary = read_summary(folder)
        except FileFormatError:
            continue
        exams.append(
            {
                "id": folder.name,
                "protocol": summary.get("protocol"),
                "scanner": summary.get("scanner"),
                "field_t": summary.get("field_t"),
                "matrix": summary.get("matrix"),
                "phantom": summary.get("phantom"),
                "acceleration": summary.get("acceleration"),
                "scan_time_s": summary.get("scan_time_s"),
                "methods": [m.get("method") for m in summary.get("reconstructions", [])],
                "modified": (folder / "summary.json").stat().st_mtime,
            }
        )
    return sorted(exams, key=lambda e: e["modified"], reverse=True)


def save_viewer_data(
    folder: Path,
    truth: NDArray[np.float32],
    images: dict[str, NDArray[np.float32]],
    mask: Any,
    maps: dict[str, NDArray[np.float32]] | None = None,
) -> Path:
    """Write :data:`VIEWER_FILE`: truth and reconstructions ``(slices, y, x)``, the sampling mask, and the maps that
    come with a learned reconstruction (``<method>-<map>``: residual, null-space map, uncertainty interval)."""
    arrays: dict[str, NDArray[Any]] = {"truth": np.asarray(truth, dtype=np.float32)}
    for method, image in images.items():
        arrays[f"image_{method}"] = np.asarray(image, dtype=np.float32)
    for name, array in (maps or {}).items():
        arrays[f"map_{name}"] = np.asarray(array, dtype=np.float32)
    if mask is not None:
        arrays["mask"] = np.asarray(mask, dtype=np.uint8)
    path = folder / VIEWER_FILE
    tmp = folder / (".partial-" + VIEWER_FILE)
    with open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)
    return path


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> dict[str, NDArray[Any]]:
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def viewer_series(folder: Path) -> tuple[dict[str, NDArray[np.float32]], NDArray[np.uint8] | None]:
    """Images by series name (``truth``, each method, ``error-<method>`` = |method - truth|, a learned method's
    ``<method>-<map>``) and the mask.

    Exams without :data:`VIEWER_FILE` (made by ``hifield scan``) show their NIfTI reconstructions, without truth.
    """
    path = folder / VIEWER_FILE
    series: dict[str, NDArray[np.float32]] = {}
    mask = None
    if path.is_file():
        data = _load(str(path), path.stat().st_mtime)
        truth = data["truth"].astype(np.float32)
        series["truth"] = truth
        for name, array in data.items():
            if name.startswith("image_"):
                series[name.removeprefix("image_")] = array.astype(np.float32)
        for method in [s for s in series if s != "truth"]:
            series[f"error-{method}"] = np.abs(series[method] - truth).astype(np.float32)
        for name, array in data.items():  # a learned method's maps, shown beside its image (no error map of a map)
            if name.startswith("map_"):
                series[name.removeprefix("map_")] = array.astype(np.float32)
        mask = data.get("mask")
        return series, mask
    from hifield.io import read_nifti

    for nifti in sorted((folder / "nifti").glob("*.nii.gz")):
        image = read_nifti(nifti)
        n_y, n_x = image.data.shape[-2:]
        series[nifti.name.removesuffix(".nii.gz")] = np.abs(image.data).reshape(-1, n_y, n_x).astype(np.float32)
    return series, None


def png_bytes(pixels: NDArray[np.uint8]) -> bytes:
    """Encode a ``(height, width)`` grey or ``(height, width, 3)`` RGB uint8 image as PNG.

    Examples
    --------
    >>> png_bytes(np.zeros((2, 3), dtype=np.uint8))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = pixels.shape[:2]
    colour = 2 if pixels.ndim == 3 else 0
    rows = pixels.reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def mask_png(mask: NDArray[np.uint8], *, height: int = 96) -> bytes:
    """The sampling mask as a picture: acquired lines white, calibration lines orange, skipped lines dark.

    A mask of one row (2D scans: k1 lines) is drawn as vertical lines ``height`` pixels tall; a 2D mask
    (k2 x k1) is drawn as is, scaled up to at least ``height`` pixels.
    """
    mask = np.atleast_2d(np.asarray(mask))
    if mask.shape[0] == 1:
        mask = np.repeat(mask, height, axis=0)
    else:
        scale = max(1, height // mask.shape[0])
        mask = np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)
    palette = np.array([[24, 28, 36], [235, 235, 235], [255, 160, 40]], dtype=np.uint8)
    return png_bytes(palette[np.clip(mask, 0, 2)])
