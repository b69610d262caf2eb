"""An exam's output folder: staged beside its destination, written, then put in place in one atomic step.

``hifield scan --out exam`` writes ``raw.h5``, ``dicom/<method>/``, ``nifti/<method>.nii.gz``, ``figure.png`` and
``summary.json`` into a hidden staging folder beside ``exam``; :func:`commit_exam` then replaces the whole folder at
once (Linux: one ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames with SIGINT/SIGTERM held off between them and
the old folder restored on failure). A previous result is therefore either intact or wholly replaced, and nothing
half-written is left behind after a failure, an interrupt or a full disk.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import math
import os
import shutil
import signal
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hifield._atomic import atomic_write_text, remove_quietly
from hifield._interrupt import interrupts_held
from hifield.errors import ConfigError

__all__ = ["commit_exam", "discard_staging", "stage_exam", "strict_json", "write_exam"]

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _resolved(out: Path) -> Path:
    return Path(out).expanduser().absolute()


def stage_exam(out: str | os.PathLike[str]) -> Path:
    """Check that ``out`` can become an exam folder and return a new, empty staging folder beside it.

    Raises
    ------
    ConfigError
        If ``out`` is an existing file, or its parent folder cannot be created or written.
    """
    target = _resolved(Path(out))
    if target.exists() and not target.is_dir():
        raise ConfigError(f"output path {str(out)!r} exists and is not a folder; choose a folder with --out")
    staging: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # a signal between mkdtemp's mkdir and the caller holding the path would leave the folder behind: hold
        # signals off until the path is bound here; one that came meanwhile raises on release, and is cleaned below
        with _signals_held():
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    except OSError as error:
        discard_staging(staging)
        reason = error.strerror or type(error).__name__
        raise ConfigError(f"output folder {str(out)!r} is not writable ({reason}); choose another with --out") from None
    except BaseException:
        discard_staging(staging)
        raise
    return staging


def _user_facing(error: OSError, staging: Path, out: Path) -> OSError:
    """``error`` naming the file under ``out`` instead of under the staging folder."""
    filename = getattr(error, "filename", None)
    text = str(filename) if filename is not None else ""
    if text.startswith(str(staging)):
        shown = str(out) + text[len(str(staging)) :]
        if error.errno is not None:
            return type(error)(error.errno, error.strerror or os.strerror(error.errno), shown)
    if str(staging) in str(error):
        return type(error)(str(error).replace(str(staging), str(out)))
    if error.errno is not None and filename is None:
        return type(error)(error.errno, error.strerror or os.strerror(error.errno), str(out))
    return error


def sar_adaptation_comment(record: dict[str, Any] | None) -> str:
    """The DICOM ImageComments note of a protocol changed by ``--adapt`` to meet a SAR limit ("" when unchanged).

    Examples
    --------
    >>> sar_adaptation_comment({"limit": "head SAR (6 min)", "value_w_per_kg": 8.8, "limit_w_per_kg": 3.2,
    ...                         "parameter": "tr_ms", "from": 9000.0, "to": 24700.0})
    '[SAR adapted: head SAR (6 min) 8.8 W/kg > 3.2 W/kg; tr_ms 9000 -> 24700]'
    >>> sar_adaptation_comment(None)
    ''
    """
    if not record:
        return ""
    return (
        f"[SAR adapted: {record['limit']} {record['value_w_per_kg']:.1f} W/kg > {record['limit_w_per_kg']:.1f} W/kg; "
        f"{record['parameter']} {record['from']:g} -> {record['to']:g}]"
    )


def write_exam(
    folder: Path,
    *,
    raw: Any,
    recon_images: dict[str, Any],
    summary: dict[str, Any],
    series_prefix: str,
    figure: Callable[[Path], Any] | None = None,
    shown_as: str | os.PathLike[str] | None = None,
) -> None:
    """Write an exam into ``folder`` (the staging folder): raw data, one DICOM series and NIfTI per method, summary.

    Parameters
    ----------
    folder
        The staging folder from :func:`stage_exam`.
    raw
        The acquired :class:`~hifield.data.RawData` (``raw.h5``), or one per slice of a stack
        (``raw/slice_000.h5`` ...).
    recon_images
        Reconstructed :class:`~hifield.data.Image` by method name (``dicom/<method>/``, ``nifti/<method>.nii.gz``).
    summary
        The machine-readable summary (``summary.json``, strict JSON: non-finite numbers become null).
    series_prefix
        Start of each DICOM SeriesDescription (the method name follows).
    figure
        Called with the path of ``figure.png`` to draw it (the pipeline passes the report's comparison figure).
    shown_as
        The user's output folder, named in errors instead of the staging folder.

    Raises
    ------
    OSError
        A failed write (a full disk ...), naming the file under ``shown_as``.
    """
    from hifield.io.dicom import write_dicom_series
    from hifield.io.ismrmrd import write_ismrmrd
    from hifield.io.nifti import write_nifti

    try:
        if isinstance(raw, (list, tuple)):
            (folder / "raw").mkdir(parents=True, exist_ok=True)
            for k, one in enumerate(raw):
                write_ismrmrd(one, folder / "raw" / f"slice_{k:03d}.h5")
        else:
            write_ismrmrd(raw, folder / "raw.h5")
        study_uid = None
        adapted = sar_adaptation_comment(summary.get("sar_adaptation"))
        for number, (method, image) in enumerate(recon_images.items(), start=1):
            shown = image
            if adapted:  # --adapt changed the protocol: the images say so, as a scanner's would
                text = f"{image.header.description} {adapted}".strip()
                shown = image.replace(header=image.header.replace(description=text))
            files = write_dicom_series(
                shown,
                folder / "dicom" / method,
                series_description=f"{series_prefix} {method}",
                series_number=number,
                study_uid=study_uid,
            )
            if study_uid is None and files:
                import pydicom

                study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
            write_nifti(image, folder / "nifti" / f"{method}.nii.gz")
            for name, extra in getattr(image, "extras", {}).items():  # a learned method's uncertainty maps
                write_nifti(image.replace(data=extra, extras={}), folder / "nifti" / f"{method}_{name}.nii.gz")
        if figure is not None:
            figure(folder / "figure.png")
        atomic_write_text(folder / "summary.json", json.dumps(strict_json(summary), indent=2, allow_nan=False) + "\n")
    except OSError as error:
        clean = _user_facing(error, folder, _resolved(Path(shown_as))) if shown_as is not None else error
        if clean is error:
            raise
        raise clean from None


def strict_json(data: Any) -> Any:
    """``data`` with every non-finite float replaced by None, so that it serialises as strict JSON.

    Examples
    --------
    >>> strict_json({"psnr": float("inf"), "values": [1.5, float("nan")]})
    {'psnr': None, 'values': [1.5, None]}
    """
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: strict_json(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict_json(value) for value in data]
    return data


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP off for a few system calls (delivered right after).

    Blocked in this thread, and held by the CLI's handler (:func:`~hifield._interrupt.interrupts_held`) for a
    signal the kernel hands to another thread of the process.
    """
    held = {signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)}
    with interrupts_held():
        try:
            previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
        except (AttributeError, OSError, ValueError):  # pragma: no cover - not POSIX
            yield
            return
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _remove_tree(path: Path) -> None:
    """Remove an old result, making read-only entries writable first; never raises."""

    def retry(function: Callable[..., Any], name: str, _info: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(name), stat.S_IRWXU)
            os.chmod(name, stat.S_IRWXU)
            function(name)

    with contextlib.suppress(OSError):
        shutil.rmtree(path, onerror=retry)


def commit_exam(staging: Path, out: str | os.PathLike[str]) -> dict[str, str]:
    """Put the staging folder in place of ``out`` in one step; returns the written entries by name.

    A missing ``out`` is created by one rename; an existing one is swapped with the staging folder atomically and
    then removed (the old result stays whole until the swap succeeded).

    Raises
    ------
    ConfigError
        If the folder cannot be put in place (the previous result, if any, is untouched).
    """
    target = _resolved(Path(out))
    files = {entry.name: str(target / entry.name) for entry in sorted(staging.iterdir())}
    try:
        with _signals_held():
            if not target.exists():
                os.rename(staging, target)
                return files
            if not target.is_dir():
                raise ConfigError(f"output path {str(out)!r} exists and is not a folder; choose a folder with --out")
            if _exchange(staging, target):
                old = staging  # the previous result now sits at the staging name
            else:
                old = target.with_name(f".{target.name}.old-{os.getpid()}")
                os.rename(target, old)
                try:
                    os.rename(staging, target)
                except BaseException:
                    os.rename(old, target)  # restore the previous result
                    raise
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(
            f"cannot put the result in place of {str(out)!r} ({reason}); the previous result is unchanged"
        ) from None
    _remove_tree(old)
    return files


def discard_staging(staging: Path | None) -> None:
    """Remove a staging folder (after a failure or an interrupt); no-op for None or a missing folder."""
    if staging is not None:
        remove_quietly(staging)
