"""Atomic outputs: write under a temporary name beside the target, then rename, so a file is whole or absent.

The one place hifield writes files "temporary name, then rename" (every layer may import it: it imports nothing of
ours). A failure, an interrupt or a full disk removes the temporary and re-raises; an ``OSError`` about the
temporary is re-raised naming the user's path, never the internal name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "remove_quietly", "temporary_name"]

_DOUBLE_SUFFIXES = (".nii.gz", ".tar.gz")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for double in _DOUBLE_SUFFIXES:
        if name.endswith(double):
            return path.name[-len(double) :]
    return path.suffix


def temporary_name(path: str | os.PathLike[str]) -> Path:
    """A hidden, unique name beside ``path`` that keeps its suffix (writers choose the format from it).

    Examples
    --------
    >>> name = temporary_name("/data/out/image.nii.gz")
    >>> name.parent.as_posix(), name.name.startswith(".image."), name.name.endswith(".partial.nii.gz")
    ('/data/out', True, True)
    """
    path = Path(path)
    suffix = _suffix(path)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    return path.with_name(f".{stem}.{os.getpid()}-{secrets.token_hex(3)}.partial{suffix}")


def remove_quietly(path: Path) -> None:
    """Remove a file or a folder tree if it exists; never raises."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()


def user_facing(error: OSError, tmp: Path, path: Path) -> OSError:
    """``error`` with the temporary name replaced by the user's ``path`` (in its filename and its message)."""
    filename = getattr(error, "filename", None)
    mentions_tmp = (filename is not None and Path(str(filename)).name == tmp.name) or tmp.name in str(error)
    if not mentions_tmp:
        return error
    if error.errno is not None:
        return type(error)(error.errno, error.strerror or os.strerror(error.errno), str(path))
    return type(error)(str(error).replace(str(tmp), str(path)).replace(tmp.name, path.name))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, make_parents: bool = True) -> Iterator[Path]:
    """Context manager yielding a temporary path to write; on success it is renamed to ``path``.

    On any exception (a failed write, Ctrl-C, SIGTERM, a full disk) the temporary file or folder is removed and the
    exception re-raised; ``path`` keeps its previous content. Works for a file or a folder (a folder replaces only
    a missing or empty ``path``; see :func:`hifield.io.exam.replace_folder` for replacing a full one).

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("whole")
    >>> target.read_text()
    'whole'
    """
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as error:
        remove_quietly(tmp)
        clean = user_facing(error, tmp, path)
        if clean is error:
            raise
        raise clean from None
    except BaseException:
        remove_quietly(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary name, fsync, rename); returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    return atomic_write_bytes(path, text.encode(encoding))
