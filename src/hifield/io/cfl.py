"""BART's ``.cfl``/``.hdr`` array files, so hifield and BART exchange k-space, images and coil maps.

A BART array is complex64 in column-major (Fortran) order with dimensions listed in ``<base>.hdr``; BART's
dimension 0 is the readout (x), 1 and 2 the phase encodings (y, z), 3 the coils, 4 the ESPIRiT maps. A C-order
NumPy array has the same bytes as the Fortran-order array with reversed axes, so hifield's
``(coil, k2, k1, k0)`` / ``(coil, z, y, x)`` arrays are exactly BART's ``(x, y, z, coil)`` with no copy, and
``(*other, coil, z, y, x)`` puts ``other`` on BART dimensions 4 and up.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hifield._atomic import atomic_path, atomic_write_text
from hifield.errors import FileFormatError

__all__ = ["read_cfl", "write_cfl"]

_BART_DIMS = 16


def _base(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".cfl", ".hdr") else p


def write_cfl(path: str | os.PathLike[str], array: ArrayLike) -> Path:
    """Write a complex array as ``<base>.cfl`` + ``<base>.hdr`` (BART's layout, dims reversed from C order).

    Parameters
    ----------
    path
        Base name (``.cfl``/``.hdr`` suffixes are stripped if given).
    array
        Any array; stored as complex64. At most 16 axes.

    Returns
    -------
    Path
        The ``.cfl`` file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_cfl(d / "x", np.ones((2, 3)))
    >>> (d / "x.hdr").read_text().splitlines()[1]
    '3 2'
    >>> read_cfl(d / "x").shape
    (2, 3)
    """
    base = _base(path)
    data = np.ascontiguousarray(np.asarray(array), dtype=np.complex64)
    if data.ndim > _BART_DIMS:
        raise FileFormatError(f"array has {data.ndim} axes; BART files hold at most {_BART_DIMS}")
    dims = list(data.shape[::-1]) or [1]
    cfl, hdr = base.with_suffix(".cfl"), base.with_suffix(".hdr")
    with atomic_path(cfl) as tmp_cfl:  # the data first: a header never describes missing data
        data.tofile(tmp_cfl)
    atomic_write_text(hdr, "# Dimensions\n" + " ".join(str(d) for d in dims) + "\n")
    return cfl


def read_cfl(path: str | os.PathLike[str], *, ndim: int | None = None) -> NDArray[np.complex64]:
    """Read ``<base>.cfl`` + ``<base>.hdr`` into a C-order complex64 array (axes reversed from BART's).

    Parameters
    ----------
    path
        Base name (``.cfl``/``.hdr`` suffixes are stripped if given).
    ndim
        Number of axes to return (BART's first ``ndim`` dimensions, reversed). By default trailing singleton
        BART dimensions are dropped. BART's ``(x, y, z, coil)`` reads as hifield's ``(coil, z, y, x)`` with
        ``ndim=4``.

    Raises
    ------
    FileFormatError
        If the header is missing or malformed, or the data size does not match the header's dimensions.
    """
    base = _base(path)
    cfl, hdr = base.with_suffix(".cfl"), base.with_suffix(".hdr")
    try:
        lines = hdr.read_text().splitlines()
    except FileNotFoundError:
        raise FileFormatError(f"{hdr}: BART header missing; pass the base name of a .cfl/.hdr pair") from None
    except UnicodeDecodeError:
        raise FileFormatError(f"{hdr} is not a text BART header") from None
    dims: list[int] | None = None
    for i, line in enumerate(lines):
        if line.strip() == "# Dimensions" and i + 1 < len(lines):
            try:
                dims = [int(v) for v in lines[i + 1].split()]
            except ValueError:
                dims = None
            break
    if not dims or any(d < 0 for d in dims):
        raise FileFormatError(f"{hdr}: no valid '# Dimensions' line; is it a BART header?")
    if not cfl.exists():
        raise FileFormatError(f"{cfl}: BART data file missing beside its header")
    expected = math.prod(dims) * 8
    actual = cfl.stat().st_size
    if actual != expected:
        raise FileFormatError(
            f"{cfl} holds {actual} bytes but its header {dims} needs {expected}; the pair is truncated or mismatched"
        )
    if ndim is None:
        keep = len(dims)
        while keep > 1 and dims[keep - 1] == 1:
            keep -= 1
    else:
        keep = ndim
        if any(d != 1 for d in dims[ndim:]):
            raise FileFormatError(f"{hdr}: dimensions {dims} have more than {ndim} non-singleton axes")
        dims = dims + [1] * max(0, ndim - len(dims))
    data = np.fromfile(cfl, dtype=np.complex64)
    return data.reshape(dims[:keep][::-1])
