"""Files changed in small ways are refused with one FileFormatError/ConfigError line naming the field (issue 20)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from hifield.errors import ConfigError, FileFormatError, HifieldError
from hifield.io import read_ismrmrd, read_nifti, write_dicom_series, write_ismrmrd, write_nifti

from .conftest import make_image, make_raw
from .mutate import (
    cut_data,
    longer_acquisition,
    raw_header_json,
    recon_matrix,
    rewrite_records,
    rewrite_xml,
    wrong_sample_count,
)


@pytest.fixture
def raw_file(rng: np.random.Generator, tmp_path: Path) -> Path:
    path = tmp_path / "good.h5"
    write_ismrmrd(make_raw(rng), path)
    return path


def _one_line(error: pytest.ExceptionInfo[HifieldError], *words: str) -> None:
    text = str(error.value)
    assert "\n" not in text
    for word in words:
        assert word in text, text


@pytest.mark.parametrize(
    ("mutation", "words"),
    [
        (longer_acquisition, ("encoded matrix",)),
        (wrong_sample_count, ("acquisition 1", "number_of_samples")),
        (cut_data, ("acquisition 1", "cut")),
    ],
)
def test_ismrmrd_acquisitions_that_disagree_with_their_header(raw_file: Path, mutation, words) -> None:
    bad = rewrite_records(raw_file, raw_file.with_name("bad.h5"), mutation)
    with pytest.raises(FileFormatError) as info:
        read_ismrmrd(bad)
    _one_line(info, str(bad), *words)


@pytest.mark.parametrize(
    ("mutation", "words"),
    [
        (recon_matrix("0.5"), ("matrixSize",)),
        (recon_matrix("inf"), ("matrixSize",)),
        (recon_matrix("0"), ("reconSpace/matrixSize/x", "must be 1..65535")),
        (raw_header_json(lambda j: j[: len(j) // 2]), ("raw_header", "not valid JSON")),
        (raw_header_json(lambda j: j.replace('"b0_t"', '"b0"')), ("b0_t is missing",)),
        (raw_header_json(lambda j: re.sub(r'"echo_train_length": \d+', '"echo_train_length": [1, 3]', j)), ("echo",)),
        (raw_header_json(lambda j: re.sub(r'"te_s": [^,]+', '"te_s": NaN', j)), ("te_s", "not finite")),
        (raw_header_json(lambda j: re.sub(r'"matrix": \[[^\]]*\]', '"matrix": [1, -32, 24]', j)), ("matrix[1]",)),
    ],
)
def test_ismrmrd_header_values_are_validated(raw_file: Path, mutation, words) -> None:
    bad = rewrite_xml(raw_file, raw_file.with_name("bad.h5"), mutation)
    with pytest.raises(FileFormatError) as info:
        read_ismrmrd(bad)
    _one_line(info, *words)


def test_echo_train_length_list_no_longer_reaches_the_dicom_writer(raw_file: Path, tmp_path: Path) -> None:
    bad = rewrite_xml(
        raw_file,
        raw_file.with_name("bad.h5"),
        raw_header_json(lambda j: re.sub(r'"echo_train_length": \d+', '"echo_train_length": [1, 3]', j)),
    )
    with pytest.raises(FileFormatError, match="echo_train_length"):
        read_ismrmrd(bad)


@pytest.mark.parametrize("kind", ["protocol", "scanner"])
@pytest.mark.parametrize(
    "content", [bytes(range(256)), b"\xff\xfe\x00garbage", b"a: [unclosed", b"- 1\n- 2\n", b"0: lab\nb0_t: 3\n"]
)
def test_yaml_of_random_bytes(kind: str, content: bytes, tmp_path: Path) -> None:
    from hifield.hardware import Scanner
    from hifield.sequence import load_protocol

    path = tmp_path / f"{kind}.yaml"
    path.write_bytes(content)
    with pytest.raises((FileFormatError, ConfigError)) as info:
        (load_protocol if kind == "protocol" else Scanner.load)(path)
    assert "\n" not in str(info.value) and path.name in str(info.value)


def test_nifti_with_nan_to_dicom_is_refused_and_leaves_no_folder(rng: np.random.Generator, tmp_path: Path) -> None:
    image = make_image(rng)
    data = np.array(image.data, dtype=np.float32)
    data[0, 1, 2, 3] = np.nan
    data[0, 0, 0, 0] = np.inf
    write_nifti(image.replace(data=data), tmp_path / "x.nii.gz")
    read_back = read_nifti(tmp_path / "x.nii.gz")
    out = tmp_path / "dicom"
    with pytest.raises(FileFormatError) as info:
        write_dicom_series(read_back, out, series_description="nan")
    _one_line(info, "2 NaN or infinite values")
    assert not out.exists()


def test_hdf5_with_a_group_name_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    # found by the long fuzz profile (10,000 mutated ISMRMRD files): h5py returns such a name as bytes, and the
    # "neither ISMRMRD nor fastMRI" message joined it as text (TypeError)
    import h5py

    from hifield.io.raw import read_raw

    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        f.create_group(b"\xff\xfedata")
    with pytest.raises(FileFormatError, match="neither ISMRMRD") as caught:
        read_raw(path)
    assert "\n" not in str(caught.value)


def test_ismrmrd_records_without_a_header_field_are_one_line(raw_file: Path) -> None:
    # found by the long fuzz profile: a mutated compound type renamed number_of_samples, and numpy's
    # "no field of name ..." ValueError escaped the reader
    import h5py

    with h5py.File(raw_file, "r+") as f:
        records = f["dataset/data"][()]
        head = records.dtype["head"]
        renamed = [("number_of_sampleZ" if n == "number_of_samples" else n, head.fields[n][0]) for n in head.names]
        dtype = np.dtype([(n, renamed if n == "head" else records.dtype.fields[n][0]) for n in records.dtype.names])
        mutated = np.empty(records.shape, dtype=dtype)
        for name in records.dtype.names:
            if name == "head":
                for old, (new, _) in zip(head.names, renamed, strict=True):
                    mutated["head"][new] = records["head"][old]
            else:
                mutated[name] = records[name]
        del f["dataset/data"]
        f.create_dataset("dataset/data", data=mutated)
    with pytest.raises(FileFormatError) as caught:
        read_ismrmrd(raw_file)
    _one_line(caught, "not an ISMRMRD acquisition table", "head.number_of_samples")


def test_ismrmrd_records_without_their_head_are_one_line(raw_file: Path) -> None:
    # also found by the long fuzz profile: the top-level 'head' field renamed ("no field of name head")
    import h5py

    with h5py.File(raw_file, "r+") as f:
        records = f["dataset/data"][()]
        names = ["heaX" if n == "head" else n for n in records.dtype.names]
        mutated = records.astype(
            np.dtype([(new, records.dtype.fields[old][0]) for new, old in zip(names, records.dtype.names, strict=True)])
        )
        del f["dataset/data"]
        f.create_dataset("dataset/data", data=mutated)
    with pytest.raises(FileFormatError) as caught:
        read_ismrmrd(raw_file)
    _one_line(caught, "not an ISMRMRD acquisition table", "'head'")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the sandboxed first read needs os.fork (POSIX)")
def test_mutated_vlen_data_that_crashes_hdf5_is_one_line(tmp_path: Path) -> None:
    # h5py 3.16 / HDF5 2.0 crash (SIGSEGV) freeing the variable-length acquisition data of this mutated file (found
    # by the long fuzz profile; reproduced with h5py alone): the sandboxed first read turns it into one line
    import subprocess
    import sys

    crash = Path(__file__).parent / "data" / "vlen_crash.h5"
    done = subprocess.run(
        [sys.executable, "-m", "hifield.cli.main", "recon", str(crash), "--out", str(tmp_path / "r.nii.gz")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, (done.returncode, done.stderr[-300:])
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "HDF5 library crashed" in lines[0] and str(crash) in lines[0] and "damaged" in lines[0], lines[0]
    assert not (tmp_path / "r.nii.gz").exists()


def test_ismrmrd_whose_xml_header_is_a_group_is_one_line(raw_file: Path) -> None:
    # found by the HDF5 byte-flip stress run: a damaged file whose ``dataset/xml`` is a group (not a dataset) made
    # ``f["dataset/xml"][0]`` raise TypeError, which escaped the reader as a traceback
    import h5py

    with h5py.File(raw_file, "r+") as f:
        del f["dataset/xml"]
        f.create_group("dataset/xml")
    with pytest.raises(FileFormatError, match="not a readable ISMRMRD") as caught:
        read_ismrmrd(raw_file)
    assert "\n" not in str(caught.value) and str(raw_file) in str(caught.value)


@pytest.mark.parametrize("tag", [b"\x20\x00\x13\x00", b"\x20\x00\x12\x00", b"\x18\x00\x91\x00"])
def test_dicom_integer_tags_damaged_to_nul_bytes_are_not_a_traceback(
    rng: np.random.Generator, tmp_path: Path, tag: bytes
) -> None:
    # found by the long fuzz profile: InstanceNumber (0020,0013) stored as "\x00 " made int() raise ValueError
    # in read_dicom_series; AcquisitionNumber (0020,0012) and EchoTrainLength (0018,0091) went through the same int()
    from hifield.io import read_dicom_series

    image = make_image(rng)
    out = tmp_path / "series"
    write_dicom_series(image, out, series_description="damaged integers")
    files = sorted(out.glob("*.dcm"))
    damaged = 0
    for path in files:
        raw = path.read_bytes()
        start = raw.find(tag + b"IS")
        if start < 0:
            continue
        length = int.from_bytes(raw[start + 6 : start + 8], "little")
        value = start + 8
        path.write_bytes(raw[:value] + b"\x00" + b" " * (length - 1) + raw[value + length :])
        damaged += 1
    assert damaged == len(files)
    back = read_dicom_series(out)  # the damaged value reads as absent: the series is still sorted by position
    np.testing.assert_allclose(np.asarray(back.data).reshape(np.shape(image.data)), image.data, rtol=1e-3, atol=0.1)


def test_dicom_modality_damaged_with_a_newline_is_named_on_one_line(rng: np.random.Generator, tmp_path: Path) -> None:
    # found by the long fuzz profile: the Modality value went into the message as it was, line breaks included
    from hifield.io import read_dicom_series

    out = tmp_path / "series"
    write_dicom_series(make_image(rng), out, series_description="damaged modality")
    path = sorted(out.glob("*.dcm"))[0]
    raw = path.read_bytes()
    element = b"\x08\x00\x60\x00CS\x02\x00MR"
    assert raw.count(element) == 1
    path.write_bytes(raw.replace(element, element[:-2] + b"M\n"))
    with pytest.raises(FileFormatError) as info:
        read_dicom_series(out)
    _one_line(info, "DICOM object, not MR")
