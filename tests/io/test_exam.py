"""The exam folder is replaced in one step: the old result is intact or wholly replaced, nothing else is left."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import numpy as np
import pytest

import hifield.io.exam as exam
from hifield.errors import ConfigError
from hifield.io.exam import commit_exam, discard_staging, stage_exam


def _old_result(out: Path) -> None:
    (out / "dicom").mkdir(parents=True)
    (out / "dicom" / "old.dcm").write_text("old series")
    (out / "summary.json").write_text('{"old": true}')
    (out / "only_in_old.txt").write_text("old")


def _staged(out: Path) -> Path:
    staging = stage_exam(out)
    (staging / "summary.json").write_text('{"new": true}')
    (staging / "raw.h5").write_text("new raw")
    return staging


def test_new_folder_replaces_the_old_one_as_a_whole(tmp_path: Path) -> None:
    out = tmp_path / "exam"
    _old_result(out)
    files = commit_exam(_staged(out), out)
    assert sorted(p.name for p in out.iterdir()) == ["raw.h5", "summary.json"]
    assert set(files) == {"raw.h5", "summary.json"} and files["raw.h5"] == str(out.absolute() / "raw.h5")
    assert [p.name for p in tmp_path.iterdir()] == ["exam"]


def test_first_result_is_created_by_one_rename(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "exam"
    commit_exam(_staged(out), out)
    assert (out / "summary.json").read_text() == '{"new": true}'
    assert [p.name for p in out.parent.iterdir()] == ["exam"]


def test_a_failed_swap_keeps_the_old_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "exam"
    _old_result(out)
    staging = _staged(out)

    def full(_a: Path, b: Path) -> bool:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(b))

    monkeypatch.setattr(exam, "_exchange", full)
    with pytest.raises(ConfigError, match="previous result is unchanged"):
        commit_exam(staging, out)
    discard_staging(staging)
    assert (out / "only_in_old.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["exam"]


def test_fallback_without_renameat2_restores_the_old_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "exam"
    _old_result(out)
    staging = _staged(out)
    monkeypatch.setattr(exam, "_exchange", lambda _a, _b: False)
    real_rename = os.rename

    def rename(src: str | Path, dst: str | Path) -> None:
        if Path(src) == staging:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src))
        real_rename(src, dst)

    monkeypatch.setattr(exam.os, "rename", rename)
    with pytest.raises(ConfigError):
        commit_exam(staging, out)
    monkeypatch.setattr(exam.os, "rename", real_rename)
    discard_staging(staging)
    assert (out / "only_in_old.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["exam"]
    commit_exam(_staged(out), out)  # and the fallback works when the rename does
    assert not (out / "only_in_old.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["exam"]


def test_an_unwritable_old_result_is_still_replaced_wholly(tmp_path: Path) -> None:
    out = tmp_path / "exam"
    _old_result(out)
    for path in (out / "dicom" / "old.dcm", out / "dicom", out / "summary.json", out):
        path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        commit_exam(_staged(out), out)
    finally:
        for path in tmp_path.rglob("*"):
            path.chmod(stat.S_IRWXU)
    assert sorted(p.name for p in out.iterdir()) == ["raw.h5", "summary.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["exam"]


def test_a_full_disk_while_writing_names_the_users_path_and_keeps_the_old_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fault-injected writer: the NIfTI write fails with ENOSPC halfway through the exam."""
    import hifield.io.nifti as nifti
    from hifield.cli import main as cli_main

    out = tmp_path / "exam"
    _old_result(out)

    def full_disk(_image: object, path: Path, **_kwargs: object) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(nifti, "write_nifti", full_disk)
    monkeypatch.chdir(tmp_path)
    code = cli_main.main(
        ["scan", "--matrix", "32", "--slices", "1", "--calib", "8", "--accel", "2", "--recon", "fft", "--out", "exam"]
    )
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hifield:")]
    assert code == 1
    assert len(lines) == 1 and "no space left" in lines[0], lines
    assert str(out.absolute() / "nifti" / "fft.nii.gz") in lines[0] and ".partial" not in lines[0]
    assert (out / "only_in_old.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["exam"]


def test_strict_summary_json(tmp_path: Path) -> None:
    import json

    from hifield.io.exam import write_exam

    class _Raw:
        pass

    folder = tmp_path / "f"
    folder.mkdir()
    with pytest.raises(AttributeError):  # no real raw data: only checks the summary is never reached half-written
        write_exam(folder, raw=_Raw(), recon_images={}, summary={"psnr": np.inf}, series_prefix="x")
    assert not (folder / "summary.json").exists()
    assert json.loads(json.dumps(exam.strict_json({"psnr": float(np.inf)}), allow_nan=False)) == {"psnr": None}


def test_a_signal_while_the_staging_folder_is_made_leaves_no_folder_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM right after mkdtemp's mkdir (before the caller holds the path) still removes the new folder.

    Seen in the default suite under load: ``hifield scan`` killed as its staging folder appeared left
    ``.exam.partial-*`` behind (tests/cli/test_error_boundary.py, ``after_steps=0``).
    """
    import signal
    import tempfile
    import threading

    from hifield._interrupt import Terminated, clear_interrupt, on_signal

    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp_then_killed(*args: object, **kwargs: object) -> str:
        path = real_mkdtemp(*args, **kwargs)  # type: ignore[call-overload]
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # to this thread: delivered at once
        return path

    monkeypatch.setattr(exam.tempfile, "mkdtemp", mkdtemp_then_killed)
    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        with pytest.raises(Terminated):
            stage_exam(tmp_path / "exam")
    finally:
        signal.signal(signal.SIGTERM, previous)
        clear_interrupt()
    assert list(tmp_path.iterdir()) == []


def test_a_handler_run_inside_interrupts_held_raises_only_when_the_block_ends() -> None:
    """The handler may run in the main thread while a block is held (the kernel gave the signal to another thread,
    where ``pthread_sigmask`` of the main thread does not reach): it records, and the block's end raises."""
    import signal

    from hifield._interrupt import Terminated, clear_interrupt, interrupts_held, on_signal

    previous = signal.getsignal(signal.SIGTERM)
    reached_end_of_block = False
    try:
        with pytest.raises(Terminated), interrupts_held():
            on_signal(signal.SIGTERM, None)  # as the interpreter calls it between two bytecodes
            reached_end_of_block = True
    finally:
        signal.signal(signal.SIGTERM, previous)
        clear_interrupt()
    assert reached_end_of_block
