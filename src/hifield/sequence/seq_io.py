"""Pulseq ``.seq`` files (v1.4, v1.5): read, write (atomically), and describe a read sequence as a BuiltSequence."""

from __future__ import annotations

import contextlib
import gc
import math
import os
import re
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hifield._atomic import atomic_path
from hifield._pypulseq import import_pypulseq
from hifield.errors import FileFormatError, SequenceError
from hifield.sequence.built import BuiltSequence
from hifield.sequence.events import (
    ROLE_THRESHOLD_RAD,
    cartesian_lines_from_kspace,
    rf_facts,
    slice_thickness_from_excitation,
)
from hifield.sequence.kspace import rf_event_times
from hifield.sequence.protocol import FieldSpec, SliceProtocol
from hifield.sequence.seq_validate import validate_seq_file

SUPPORTED_VERSIONS: tuple[tuple[int, int], ...] = ((1, 4), (1, 5))
"""Pulseq file format versions (major, minor) that read in."""


def seq_file_version(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """The ``[VERSION]`` of a Pulseq file as (major, minor, revision).

    Raises
    ------
    FileFormatError
        If the file has no readable ``[VERSION]`` section.
    """
    path = Path(path)
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4000]
    except OSError as error:
        raise FileFormatError(f"cannot read sequence file {str(path)!r}: {error.strerror}; check the path") from None
    match = re.search(r"\[VERSION\]\s*major\s+(\d+)\s*minor\s+(\d+)\s*revision\s+(\S+)", head)
    if match is None:
        raise FileFormatError(f"{str(path)!r} is not a Pulseq .seq file (no [VERSION] section); pass a .seq file")
    digits = re.match(r"\d+", match.group(3))
    return int(match.group(1)), int(match.group(2)), int(digits.group(0)) if digits else 0


READ_TIME_LIMIT_S = 120.0
"""Wall-clock bound on pypulseq's parse of one file (``HIFIELD_SEQ_READ_LIMIT_S`` overrides it), behind the
validation of :mod:`hifield.sequence.seq_validate`: should a file still send pypulseq into a loop, the read stops
with one line instead of hanging."""


class _ReadTimeout(Exception):
    """Raised inside pypulseq's parse by the watchdog's alarm."""


@contextlib.contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    """Raise :class:`_ReadTimeout` in the enclosed code after ``seconds`` of wall time (main thread, POSIX only).

    Elsewhere (a worker thread, a platform without ``setitimer``) the enclosed code runs unbounded: the file was
    validated before it got here.
    """
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or seconds <= 0:
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _ReadTimeout

    pending_s, _ = signal.getitimer(signal.ITIMER_REAL)  # someone else's alarm (e.g. a test timeout) is kept
    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if pending_s > 0:
            signal.setitimer(signal.ITIMER_REAL, max(1e-3, pending_s - (time.monotonic() - started)))


def _read_time_limit_s() -> float:
    raw = os.environ.get("HIFIELD_SEQ_READ_LIMIT_S", "")
    try:
        return float(raw) if raw else READ_TIME_LIMIT_S
    except ValueError:
        raise FileFormatError(f"HIFIELD_SEQ_READ_LIMIT_S={raw!r} is not a number of seconds; unset it") from None


def read_seq(path: str | os.PathLike[str]) -> Any:
    """Read a Pulseq ``.seq`` file (format 1.4 or 1.5) into a ``pypulseq.Sequence``.

    Raises
    ------
    FileFormatError
        For a missing, malformed or unsupported file (one line naming the file and the problem).
    """
    pp = import_pypulseq()

    path = Path(path)
    major, minor, _ = seq_file_version(path)
    if (major, minor) not in SUPPORTED_VERSIONS:
        allowed = ", ".join(f"{a}.{b}" for a, b in SUPPORTED_VERSIONS)
        raise FileFormatError(f"{str(path)!r} is Pulseq format {major}.{minor}; supported: {allowed}")
    validate_seq_file(path)  # pypulseq trusts its input: a cut or oversized file could hang it or exhaust memory
    seq = pp.Sequence()
    failure: str | None = None
    # pypulseq leaves the file open when it fails: let it close quietly when the traceback is dropped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        limit_s = _read_time_limit_s()
        try:
            with _watchdog(limit_s):
                seq.read(str(path))
        except _ReadTimeout:
            failure = f"pypulseq did not finish reading it in {limit_s:g} s"
        except Exception as error:  # pypulseq raises bare exceptions of many kinds on malformed files
            failure = " ".join(str(error).split())[:200] or type(error).__name__
        if failure is not None:
            del seq
            gc.collect()
    if failure is not None:
        raise FileFormatError(f"{str(path)!r} is a malformed Pulseq file ({failure}); regenerate or fix it")
    if not seq.block_events:
        raise FileFormatError(f"{str(path)!r} holds no blocks; it is not a playable sequence")
    return seq


def write_seq(built: BuiltSequence | Any, path: str | os.PathLike[str], *, check_timing: bool = True) -> Path:
    """Write a sequence to a Pulseq 1.5 ``.seq`` file (temporary name, then rename: never half-written).

    Parameters
    ----------
    built
        A :class:`BuiltSequence` or a ``pypulseq.Sequence``.
    path
        Destination; ``.seq`` is appended if missing.
    check_timing
        Run pypulseq's timing check first and refuse a sequence that fails it.

    Raises
    ------
    SequenceError
        If the timing check fails.
    """
    from hifield.sequence.checks import check_timing as run_check_timing

    seq: Any = getattr(built, "seq", built)
    path = Path(path)
    if path.suffix != ".seq":
        path = path.with_name(path.name + ".seq")
    if check_timing:
        run_check_timing(seq)
    with atomic_path(path) as tmp:
        seq.write(str(tmp), create_signature=True, check_timing=False)
    return path


@dataclass(frozen=True, kw_only=True)
class SeqFileProtocol(SliceProtocol):
    """A sequence read from a ``.seq`` file (no parameters to build from: it is already built).

    :func:`built_from_seq` fills the geometry and timing it can read from the file; the excitation pulse fields
    (``rf_duration_s``, ``rf_time_bandwidth``) keep their defaults. Nothing is validated against protocol ranges.
    """

    KIND: ClassVar[str] = "seq_file"
    SPECS: ClassVar[dict[str, FieldSpec]] = {}

    name: str = "seq_file"
    path: str = ""
    """The file it was read from."""
    fov_m: float = 0.0
    """In-plane field of view [m], from the file's ``FOV`` definition (0 when the file has none)."""
    matrix: int = 0
    """Readout samples of the first ADC, taken as the in-plane matrix."""
    slice_thickness_m: float = 0.005
    """Slice thickness [m]: the ``SliceThickness`` definition; else the third ``FOV`` entry of a slice-selective
    file (pypulseq's examples declare the slice there); else the thickness its first excitation plays (RF bandwidth
    / slice-select gradient, :func:`~hifield.sequence.events.slice_thickness_from_excitation`); 5 mm for a file
    with none of these (a non-selective excitation)."""


def _declared_or_played_thickness_m(seq: Any) -> float | None:
    """The third ``FOV`` entry [m] of a slice-selective sequence, else the thickness its excitation plays."""
    played = slice_thickness_from_excitation(seq)
    if played is None:
        return None
    fov = seq.definitions.get("FOV") if hasattr(seq, "definitions") else None
    try:
        declared = float(np.atleast_1d(np.asarray(fov, dtype=np.float64))[2]) if fov is not None else 0.0
    except (IndexError, TypeError, ValueError):
        declared = 0.0
    # a declared value far from what is played (a 3D-style FOV, a typo) gives way to the physics
    if math.isfinite(declared) and 0.5 * played < declared < 2.0 * played:
        return declared
    return played


def built_from_seq(seq: Any, *, name: str = "seq_file", scanner_name: str = "", path: str = "") -> BuiltSequence:
    """Describe a read (or hand-made) pypulseq sequence as a :class:`BuiltSequence`.

    Readout facts come from the first ADC; ``phase_encode_lines`` from the ``LIN`` label at each ADC. A file without
    ``LIN`` labels whose readouts lie on a Cartesian grid (:func:`~hifield.sequence.events.cartesian_lines_from_kspace`)
    is Cartesian too, its lines from the phase-encode areas; any other file is non-Cartesian (``trajectory`` =
    ``"unknown"``, simulated through a NUFFT) with line 0 at every ADC. TE and TR come from the file's
    ``TE``/``TR`` definitions when present, otherwise from the first excitation to the centre of the first ADC and
    between the first two excitations.

    Raises
    ------
    SequenceError
        If the sequence has no ADC.
    """
    lin: list[int] = []
    state: dict[str, int] = {}
    first_adc = None
    for block_id, events in seq.block_events.items():
        # decompressing a block is slow: only blocks with extensions (labels) and the first ADC are read in full
        has_adc = bool(events[5])
        if events[6] or (has_adc and first_adc is None):
            block = seq.get_block(block_id)
            labels = getattr(block, "label", None) or {}
            for entry in labels.values() if isinstance(labels, dict) else labels:
                state[entry.label] = int(entry.value)
            if first_adc is None and block.adc is not None:
                first_adc = block.adc
        if has_adc:
            lin.append(state.get("LIN", 0))
    if first_adc is None:
        raise SequenceError(f"sequence {name!r} has no ADC event, so nothing would be acquired; add readouts")
    t_exc, _t_ref = rf_event_times(seq)
    t_adc, _ = seq.adc_times()
    n = int(first_adc.num_samples)

    def definition(key: str) -> float | None:
        value = seq.definitions.get(key) if hasattr(seq, "definitions") else None
        if value is None:
            return None
        try:
            return float(np.atleast_1d(value)[0])
        except (TypeError, ValueError):
            return None

    te = definition("TE")
    if te is None:
        te = float(t_adc[n // 2] - t_exc[0]) if len(t_exc) and len(t_adc) > n // 2 else 0.0
    tr = definition("TR")
    if tr is None:
        tr = float(t_exc[1] - t_exc[0]) if len(t_exc) > 1 else float(seq.duration()[0])
    # the flip angle of the first excitation (not of a preparation inversion or a refocusing pulse)
    flip = 0.0
    for block_id, events in seq.block_events.items():
        if events[1]:
            facts = rf_facts(seq.get_block(block_id).rf)
            declared = facts.use in ("excitation", "undefined")
            if declared and (facts.use == "excitation" or facts.flip_rad < ROLE_THRESHOLD_RAD):
                flip = facts.flip_rad
                break
            flip = flip or facts.flip_rad  # fallback: a sequence of large pulses only
    dwell = float(first_adc.dwell)
    fov = definition("FOV") or 0.0
    thickness = definition("SliceThickness") or _declared_or_played_thickness_m(seq) or 0.005
    trajectory = "cartesian" if "LIN" in state else "unknown"
    lines = np.asarray(lin, dtype=np.int64)
    if trajectory == "unknown":
        found = cartesian_lines_from_kspace(seq, fov_m=fov)
        if found is not None:
            lines, fov = found
            trajectory = "cartesian"
    return BuiltSequence(
        seq=seq,
        protocol=SeqFileProtocol(
            name=name,
            path=path,
            fov_m=fov,
            matrix=n,
            slice_thickness_m=thickness,
            te_s=te,
            tr_s=tr,
            flip_angle_rad=flip,
            readout_bandwidth_hz_per_pixel=1.0 / (n * dwell),
        ),
        scanner_name=scanner_name,
        duration_s=float(seq.duration()[0]),
        phase_encode_lines=lines,
        n_readout_samples=n,
        readout_dwell_s=dwell,
        te_s=te,
        tr_s=tr,
        flip_angle_rad=flip,
        trajectory=trajectory,
        scanning_sequence="RM",
        sequence_variant="NONE",
        sequence_name=name[:16],
        pixel_bandwidth_hz=1.0 / (n * dwell),
    )


def load_seq(path: str | os.PathLike[str], *, scanner_name: str = "") -> BuiltSequence:
    """Read a ``.seq`` file and describe it as a :class:`BuiltSequence` (see :func:`built_from_seq`)."""
    path = Path(path)
    return built_from_seq(read_seq(path), name=path.stem, scanner_name=scanner_name, path=str(path))
