"""Small, deliberate corruptions of valid files, shared by the hostile-input and property-based reader tests."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np


def rewrite_records(src: Path, dst: Path, change: Callable[[Any], None]) -> Path:
    """Copy an ISMRMRD file, letting ``change`` edit its ``dataset/data`` records in place."""
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        records = f["dataset/data"][()]
        change(records)
        del f["dataset/data"]
        f["dataset"].create_dataset("data", data=records, maxshape=(None,), chunks=True)
    return dst


def rewrite_xml(src: Path, dst: Path, change: Callable[[str], str]) -> Path:
    """Copy an ISMRMRD file with its XML header changed by ``change`` (which must change it)."""
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        xml = f["dataset/xml"][0].decode()
        new = change(xml)
        assert new != xml, "the mutation did not apply"
        del f["dataset/xml"]
        f["dataset"].create_dataset("xml", shape=(1,), dtype=h5py.special_dtype(vlen=bytes), data=[new.encode()])
    return dst


def recon_matrix(value: str) -> Callable[[str], str]:
    """Set the reconSpace matrix x to ``value`` (text)."""
    return lambda xml: re.sub(r"(<reconSpace>.*?<x>)\d+(</x>)", rf"\g<1>{value}\g<2>", xml, count=1, flags=re.S)


def raw_header_json(change: Callable[[str], str]) -> Callable[[str], str]:
    """Apply ``change`` to hifield's raw_header JSON value in the XML."""

    def mutate(xml: str) -> str:
        match = re.search(r"(<name>hifield\.raw_header</name>\s*<value>)(.*?)(</value>)", xml, flags=re.S)
        assert match is not None
        return xml[: match.start(2)] + change(match.group(2)) + xml[match.end(2) :]

    return mutate


def longer_acquisition(records: Any, index: int = 1, extra: int = 4) -> None:
    """One acquisition ``extra`` samples longer than the others, consistent with its data."""
    head = records["head"]
    n_coil = int(head["active_channels"][index])
    n = int(head["number_of_samples"][index])
    data = records["data"][index].view(np.complex64).reshape(n_coil, n)
    longer = np.concatenate([data, np.zeros((n_coil, extra), np.complex64)], axis=1)
    head["number_of_samples"][index] = n + extra
    records["head"] = head
    records["data"][index] = longer.ravel().view(np.float32)


def wrong_sample_count(records: Any, index: int = 1) -> None:
    """``number_of_samples`` inconsistent with the acquisition's data."""
    head = records["head"]
    head["number_of_samples"][index] += 3
    records["head"] = head


def cut_data(records: Any, index: int = 1) -> None:
    """An acquisition whose data block is cut short (an odd number of floats)."""
    records["data"][index] = records["data"][index][:7]
