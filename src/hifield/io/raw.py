"""Read raw data from any supported file, choosing the format from the file's content (ISMRMRD, fastMRI, BART)."""

from __future__ import annotations

import os
from pathlib import Path

from hifield.data import RawData
from hifield.errors import FileFormatError

__all__ = ["read_raw"]


def read_raw(path: str | os.PathLike[str], *, remove_readout_oversampling: bool = False) -> RawData:
    """Read raw k-space from an ISMRMRD v1 file or a fastMRI file (detected from the HDF5 content).

    Parameters
    ----------
    path
        ``.h5`` file: ISMRMRD (group ``dataset``) or fastMRI (datasets ``kspace`` + ``ismrmrd_header``).
    remove_readout_oversampling
        Crop an oversampled readout to the header's reconstruction FOV (see :func:`hifield.io.read_ismrmrd`).

    Raises
    ------
    FileFormatError
        If the file is neither, or is not readable HDF5.
    """
    import h5py

    from hifield.io.fastmri import read_fastmri
    from hifield.io.ismrmrd import read_ismrmrd

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            keys = set(f.keys())
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such raw-data file; check the path") from None
    except (OSError, RuntimeError, KeyError, ValueError) as err:  # h5py reports a corrupt file in all of these
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FileFormatError(f"{path} is not a readable HDF5 file ({msg}); it may be truncated") from None
    if "dataset" in keys:
        return read_ismrmrd(path, remove_readout_oversampling=remove_readout_oversampling)
    if "kspace" in keys:
        return read_fastmri(path, remove_readout_oversampling=remove_readout_oversampling)
    # a name that is not UTF-8 comes back from h5py as bytes: shown with replacement characters, never a traceback
    names = sorted(k if isinstance(k, str) else bytes(k).decode("utf-8", "replace") for k in keys)
    found = ", ".join(names) or "nothing"
    raise FileFormatError(f"{path} is HDF5 but neither ISMRMRD ('dataset') nor fastMRI ('kspace'); it holds {found}")
