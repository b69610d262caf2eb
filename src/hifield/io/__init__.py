"""Files in and out: ISMRMRD raw data, DICOM and NIfTI images, BART cfl, fastMRI HDF5, PACS (DICOM network).

The names below load their submodule (and its heavy library: h5py/ismrmrd, pydicom, nibabel, pynetdicom) on
first use, so ``import hifield.io`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hifield.io.cfl import read_cfl, write_cfl
    from hifield.io.dicom import read_dicom_series, write_dicom_series
    from hifield.io.fastmri import read_fastmri, read_fastmri_reconstruction, write_fastmri_reconstruction
    from hifield.io.ismrmrd import read_ismrmrd, write_ismrmrd
    from hifield.io.nifti import read_nifti, write_bids_sidecar, write_nifti
    from hifield.io.pacs import StoreReport, echo_pacs, parse_pacs_address, send_to_pacs
    from hifield.io.raw import read_raw

_EXPORTS = {
    "read_ismrmrd": "ismrmrd",
    "write_ismrmrd": "ismrmrd",
    "read_dicom_series": "dicom",
    "write_dicom_series": "dicom",
    "read_nifti": "nifti",
    "write_nifti": "nifti",
    "write_bids_sidecar": "nifti",
    "read_cfl": "cfl",
    "write_cfl": "cfl",
    "read_fastmri": "fastmri",
    "read_fastmri_reconstruction": "fastmri",
    "read_raw": "raw",
    "write_fastmri_reconstruction": "fastmri",
    "StoreReport": "pacs",
    "echo_pacs": "pacs",
    "parse_pacs_address": "pacs",
    "send_to_pacs": "pacs",
}

__all__ = [
    "StoreReport",
    "echo_pacs",
    "parse_pacs_address",
    "read_cfl",
    "read_dicom_series",
    "read_fastmri",
    "read_fastmri_reconstruction",
    "read_ismrmrd",
    "read_nifti",
    "read_raw",
    "send_to_pacs",
    "write_bids_sidecar",
    "write_cfl",
    "write_dicom_series",
    "write_fastmri_reconstruction",
    "write_ismrmrd",
    "write_nifti",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hifield.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"hifield.io.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
