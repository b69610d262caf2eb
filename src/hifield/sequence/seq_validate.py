"""Validate a Pulseq ``.seq`` file (v1.4, v1.5) before pypulseq reads it: sections, counts, sizes and references.

pypulseq's reader trusts its input: a file cut inside ``[SHAPES]`` makes it loop forever, an ADC of 10^8 samples
exhausts memory downstream, a negative raster or a missing ``[EXTENSIONS]`` row ends in an ``AssertionError`` or a
``KeyError``. :func:`validate_seq_file` reads the text once (linear in its size, which is bounded) and refuses such a
file with one :class:`~hifield.errors.FileFormatError` line naming the file, the line and the limit.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from hifield._pypulseq import import_pypulseq
from hifield.errors import FileFormatError

MAX_FILE_BYTES = 256 * 1024**2
"""Largest ``.seq`` file read [bytes] (a 3D 256^3 scan is about 30 MB)."""
MAX_BLOCKS = 2**24
"""Most blocks in a sequence."""
MAX_EVENTS = 2**22
"""Most rows in one event table ([RF], [GRADIENTS], [TRAP], [ADC], [EXTENSIONS], a label table)."""
MAX_ADC_SAMPLES = 65535
"""Most samples of one ADC event (ISMRMRD stores ``number_of_samples`` as uint16)."""
MAX_TOTAL_ADC_SAMPLES = 2**27
"""Most ADC samples over the whole sequence (1 GiB of complex64 k-space per coil)."""
MAX_SHAPE_SAMPLES = 2**24
"""Most samples of one (decompressed) shape."""
MAX_DURATION_S = 24 * 3600.0
"""Longest sequence [s]."""
MAX_MAGNITUDE = 1e12
"""Largest magnitude of any number in an event table or shape (gradients are ~1e6 Hz/m; more is corrupt)."""
RASTER_RANGE_S = (1e-9, 1e-3)
"""Allowed range of every raster time definition [s]."""

_RASTERS = ("GradientRasterTime", "RadiofrequencyRasterTime", "AdcRasterTime", "BlockDurationRaster")
_DEFAULT_BLOCK_RASTER_S = 1e-5
# columns of each event table after the id, by (major, minor)
_COLUMNS = {
    "[RF]": {(1, 4): 7, (1, 5): 11},
    "[GRADIENTS]": {(1, 4): 4, (1, 5): 6},
    "[TRAP]": {(1, 4): 5, (1, 5): 5},
    "[ADC]": {(1, 4): 5, (1, 5): 8},
    "[EXTENSIONS]": {(1, 4): 3, (1, 5): 3},
}
_EXTENSION_COLUMNS = {"LABELSET": 2, "LABELINC": 2, "TRIGGERS": 4, "DELAYS": 4}
_TABLES = (*_COLUMNS, "[BLOCKS]")


@dataclass
class SeqFacts:
    """What validation learned about a file (used for limits downstream)."""

    version: tuple[int, int] = (0, 0)
    n_blocks: int = 0
    duration_s: float = 0.0
    max_adc_samples: int = 0
    total_adc_samples: int = 0
    definitions: dict[str, list[str]] = field(default_factory=dict)


class _Reader:
    """Line cursor over the file's text with pypulseq's grammar (blank or ``#`` lines end a table)."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.split("\n")
        self.i = 0

    def fail(self, line: int | None, what: str) -> FileFormatError:
        where = f"line {line + 1}: " if line is not None else ""
        return FileFormatError(f"{str(self.path)!r} is a malformed Pulseq file ({where}{what}); regenerate or fix it")

    def skip_comments(self) -> int | None:
        """Advance to the next line that is neither blank nor a comment; its index, or None at the end."""
        while self.i < len(self.lines):
            line = self.lines[self.i].strip()
            if line and not line.startswith("#"):
                return self.i
            self.i += 1
        return None

    def rows(self, section: str, *, allow_end: bool = False) -> list[tuple[int, list[str]]]:
        """The rows of a table up to its terminating blank or comment line (the end of the file only if allowed)."""
        out: list[tuple[int, list[str]]] = []
        while True:
            if self.i >= len(self.lines) or (self.i == len(self.lines) - 1 and not self.lines[self.i].strip()):
                if allow_end:
                    return out
                raise self.fail(None, f"it ends inside {section} with no blank line after the last row: cut short")
            line = self.lines[self.i].strip()
            if not line or line.startswith("#"):
                return out
            out.append((self.i, line.split()))
            self.i += 1
            if len(out) > MAX_EVENTS and section != "[BLOCKS]":
                raise self.fail(self.i - 1, f"{section} has more than {MAX_EVENTS} rows, the limit")
            if len(out) > MAX_BLOCKS:
                raise self.fail(self.i - 1, f"{section} has more than {MAX_BLOCKS} blocks, the limit")


def _number(reader: _Reader, line: int, token: str, what: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise reader.fail(line, f"{what} {token[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise reader.fail(line, f"{what} is {token!r}, not a finite number")
    if abs(value) > MAX_MAGNITUDE:
        raise reader.fail(line, f"{what} {token[:40]!r} exceeds +-{MAX_MAGNITUDE:g}")
    return value


def _integer(reader: _Reader, line: int, token: str, what: str, *, minimum: int = 0) -> int:
    try:
        value = int(token)
    except ValueError:
        raise reader.fail(line, f"{what} {token[:40]!r} is not an integer") from None
    if value < minimum:
        raise reader.fail(line, f"{what} is {value}, below {minimum}")
    return value


def _unpacked_length(reader: _Reader, line: int, packed: list[float], n_samples: int) -> int:
    """Samples a Pulseq-compressed shape expands to (pypulseq's decompress_shape), without allocating them."""
    if len(packed) == n_samples:  # stored uncompressed
        return n_samples
    count, i, n = 0, 1, len(packed)
    while i < n:
        if i == n - 1 or packed[i - 1] != packed[i]:
            count += 1
            i += 1
        else:
            repeat = packed[i + 1] if i + 1 < n else -1.0
            if repeat < 0 or repeat != int(repeat):
                raise reader.fail(line, f"shape run length {repeat:g} is not a non-negative integer")
            count += int(repeat) + 2
            i += 3
        if count > n_samples:
            break
    if i == n:
        count += 1
    return count


def _read_shapes(reader: _Reader) -> dict[int, int]:
    """``{shape_id: num_samples}`` of the [SHAPES] section, each checked complete."""
    shapes: dict[int, int] = {}
    while True:
        start = reader.skip_comments()
        if start is None or reader.lines[start].strip().startswith("["):
            return shapes
        head = reader.lines[start].split()
        if len(head) != 2 or head[0] != "shape_id":
            raise reader.fail(start, f"expected 'shape_id N' in [SHAPES], found {reader.lines[start].strip()[:40]!r}")
        shape_id = _integer(reader, start, head[1], "shape_id", minimum=1)
        reader.i += 1
        at = reader.skip_comments()
        tokens = reader.lines[at].split() if at is not None else []
        if at is None or len(tokens) != 2 or tokens[0] != "num_samples":
            raise reader.fail(at, f"shape {shape_id} has no 'num_samples N' line")
        n_samples = _integer(reader, at, tokens[1], f"shape {shape_id} num_samples", minimum=1)
        if n_samples > MAX_SHAPE_SAMPLES:
            raise reader.fail(
                at, f"shape {shape_id} has {n_samples} samples, more than the {MAX_SHAPE_SAMPLES} allowed"
            )
        reader.i += 1
        reader.skip_comments()
        rows = reader.rows("[SHAPES]")
        packed = [_number(reader, i, row[0], f"shape {shape_id} sample") for i, row in rows if len(row) == 1]
        if len(packed) != len(rows):
            bad = next(i for i, row in rows if len(row) != 1)
            raise reader.fail(bad, f"shape {shape_id} has a row that is not one number")
        if len(packed) > n_samples:
            raise reader.fail(at, f"shape {shape_id} stores {len(packed)} values for {n_samples} samples")
        if _unpacked_length(reader, at, packed, n_samples) != n_samples:
            raise reader.fail(at, f"shape {shape_id} does not expand to its {n_samples} samples; it is cut or corrupt")
        shapes[shape_id] = n_samples


def validate_seq_text(text: str, *, path: Path) -> SeqFacts:
    """Validate the text of a ``.seq`` file (see :func:`validate_seq_file`)."""
    reader = _Reader(path, text)
    facts = SeqFacts()
    tables: dict[str, dict[int, tuple[int, list[str]]]] = {}
    blocks: list[tuple[int, list[str]]] = []
    extension_types: dict[int, str] = {}
    extension_tables: dict[int, dict[int, tuple[int, list[str]]]] = {}
    shapes: dict[int, int] = {}
    seen: set[str] = set()
    while (start := reader.skip_comments()) is not None:
        head = reader.lines[start].strip()
        reader.i += 1
        if head.startswith("extension "):
            parts = head.split()
            if len(parts) != 3 or parts[1] not in _EXTENSION_COLUMNS:
                raise reader.fail(start, f"unknown extension {head[:60]!r}")
            ext_id = _integer(reader, start, parts[2], "extension id", minimum=1)
            extension_types[ext_id] = parts[1]
            rows = reader.rows(f"extension {parts[1]}")
            extension_tables[ext_id] = _table(reader, rows, 1 + _EXTENSION_COLUMNS[parts[1]], f"extension {parts[1]}")
            continue
        if not head.startswith("["):
            raise reader.fail(start, f"expected a section such as [BLOCKS], found {head[:40]!r}")
        if head in seen:
            raise reader.fail(start, f"section {head} appears twice")
        seen.add(head)
        if head in ("[VERSION]", "[DEFINITIONS]", "[SIGNATURE]"):
            if head != "[VERSION]":  # pypulseq skips comments before definitions
                reader.skip_comments()
            values = {row[0]: row[1:] for _, row in reader.rows(head, allow_end=True)}
            if head == "[VERSION]":
                try:
                    facts.version = (int(values["major"][0]), int(values["minor"][0]))
                except (KeyError, IndexError, ValueError):
                    raise reader.fail(start, "[VERSION] lacks integer 'major' and 'minor' lines") from None
            elif head == "[DEFINITIONS]":
                facts.definitions = values
        elif head == "[SHAPES]":
            shapes = _read_shapes(reader)
        elif head in _TABLES:
            if facts.version not in _COLUMNS["[RF]"]:
                raise reader.fail(start, f"{head} comes before a [VERSION] of 1.4 or 1.5")
            rows = reader.rows(head)
            if head == "[BLOCKS]":
                blocks = rows
            else:
                tables[head] = _table(reader, rows, 1 + _COLUMNS[head][facts.version], head)
        else:
            raise reader.fail(start, f"unknown section {head[:40]!r}")
    if "[VERSION]" not in seen:
        raise reader.fail(None, "has no [VERSION] section")
    if not blocks:
        raise reader.fail(None, "has no [BLOCKS] rows")
    _check_definitions(reader, facts)
    _check_events(reader, facts, tables, shapes, extension_types, extension_tables)
    _check_blocks(reader, facts, blocks, tables)
    return facts


def _table(
    reader: _Reader, rows: list[tuple[int, list[str]]], n_columns: int, section: str
) -> dict[int, tuple[int, list[str]]]:
    out: dict[int, tuple[int, list[str]]] = {}
    for line, row in rows:
        if len(row) != n_columns:
            raise reader.fail(line, f"{section} row has {len(row)} columns, expected {n_columns}")
        event_id = _integer(reader, line, row[0], f"{section} id", minimum=1)
        if event_id in out:
            raise reader.fail(line, f"{section} id {event_id} is defined twice")
        out[event_id] = (line, row)
    return out


def _check_definitions(reader: _Reader, facts: SeqFacts) -> None:
    low, high = RASTER_RANGE_S
    for name in _RASTERS:
        if name not in facts.definitions:
            continue
        values = facts.definitions[name]
        if len(values) != 1:
            raise reader.fail(None, f"definition {name} must be one number of seconds")
        value = _number(reader, None, values[0], f"definition {name}")  # type: ignore[arg-type]
        if not low <= value <= high:
            raise reader.fail(None, f"definition {name} = {value:g} s is outside {low:g}..{high:g} s")


def _check_events(
    reader: _Reader,
    facts: SeqFacts,
    tables: dict[str, dict[int, tuple[int, list[str]]]],
    shapes: dict[int, int],
    extension_types: dict[int, str],
    extension_tables: dict[int, dict[int, tuple[int, list[str]]]],
) -> None:
    v15 = facts.version >= (1, 5)

    def shape(line: int, token: str, what: str, *, required: bool) -> int:
        shape_id = _integer(reader, line, token, what)
        if shape_id == 0 and not required:
            return 0
        if shape_id not in shapes:
            raise reader.fail(line, f"{what} {shape_id} is not in [SHAPES]")
        return shapes[shape_id]

    for line, row in tables.get("[RF]", {}).values():
        numbers = row[1:-1] if v15 else row[1:]
        for token in numbers:
            _number(reader, line, token, "RF value")
        n_mag = shape(line, row[2], "RF magnitude shape", required=True)
        n_phase = shape(line, row[3], "RF phase shape", required=True)
        n_time = shape(line, row[4], "RF time shape", required=False)
        if n_phase != n_mag or (n_time and n_time != n_mag):
            raise reader.fail(line, f"RF {row[0]} shapes have different lengths ({n_mag}, {n_phase}, {n_time})")
        delay = float(row[6] if v15 else row[5])
        if delay < 0:
            raise reader.fail(line, f"RF {row[0]} delay is negative ({delay:g} us)")
    for line, row in tables.get("[GRADIENTS]", {}).values():
        for token in row[1:]:
            _number(reader, line, token, "gradient value")
        amp_col, time_col = (4, 5) if v15 else (2, 3)
        n_amp = shape(line, row[amp_col], "gradient shape", required=True)
        n_time = shape(line, row[time_col], "gradient time shape", required=False)
        if n_time and n_time != n_amp:
            raise reader.fail(line, f"gradient {row[0]} amplitude and time shapes differ in length")
        if float(row[-1]) < 0:
            raise reader.fail(line, f"gradient {row[0]} delay is negative")
    grad_ids = set(tables.get("[GRADIENTS]", {}))
    for event_id, (line, row) in tables.get("[TRAP]", {}).items():
        times = [_number(reader, line, token, "trapezoid value") for token in row[1:]]
        if min(times[1:]) < 0:
            raise reader.fail(line, f"trapezoid {event_id} has a negative rise, flat, fall time or delay")
        if event_id in grad_ids:
            raise reader.fail(line, f"gradient id {event_id} is in both [GRADIENTS] and [TRAP]")
    for line, row in tables.get("[ADC]", {}).values():
        n = _integer(reader, line, row[1], f"ADC {row[0]} sample count", minimum=1)
        if n > MAX_ADC_SAMPLES:
            raise reader.fail(line, f"ADC {row[0]} has {n} samples, more than the {MAX_ADC_SAMPLES} allowed")
        values = [_number(reader, line, token, "ADC value") for token in row[2:]]
        if values[0] <= 0:
            raise reader.fail(line, f"ADC {row[0]} dwell time must be positive; got {row[2]} ns")
        if values[1] < 0:
            raise reader.fail(line, f"ADC {row[0]} delay is negative")
        if v15:
            shape(line, row[8], "ADC phase shape", required=False)
    for line, row in tables.get("[EXTENSIONS]", {}).values():
        type_id, ref, nxt = (_integer(reader, line, t, "extension field") for t in row[1:])
        if type_id not in extension_types:
            raise reader.fail(line, f"extension row {row[0]} has type {type_id}, declared by no 'extension' line")
        if ref not in extension_tables.get(type_id, {}):
            raise reader.fail(line, f"extension row {row[0]} refers to entry {ref} missing from its table")
        if nxt and nxt not in tables["[EXTENSIONS]"]:
            raise reader.fail(line, f"extension row {row[0]} links to row {nxt}, which is missing")
    labels = set(import_pypulseq().get_supported_labels())
    for ext_id, kind in extension_types.items():
        for line, row in extension_tables[ext_id].values():
            if kind in ("LABELSET", "LABELINC"):
                _integer(reader, line, row[1], "label value", minimum=-(2**31))
                if row[2] not in labels:
                    raise reader.fail(line, f"label {row[2][:20]!r} is not a Pulseq label")
            elif kind == "TRIGGERS":
                if min(_number(reader, line, token, "trigger value") for token in row[1:]) < 0:
                    raise reader.fail(line, "trigger values must not be negative")
            else:  # DELAYS: id, number, offset [us], factor, hint
                _integer(reader, line, row[1], "soft delay number", minimum=0)
                _integer(reader, line, row[2], "soft delay offset", minimum=-(2**31))
                _integer(reader, line, row[3], "soft delay factor", minimum=-(2**31))


def _check_blocks(
    reader: _Reader,
    facts: SeqFacts,
    blocks: list[tuple[int, list[str]]],
    tables: dict[str, dict[int, tuple[int, list[str]]]],
) -> None:
    raster = _DEFAULT_BLOCK_RASTER_S
    if "BlockDurationRaster" in facts.definitions:
        raster = float(facts.definitions["BlockDurationRaster"][0])
    references = (
        ("RF", 2, set(tables.get("[RF]", {}))),
        ("GX", 3, set(tables.get("[GRADIENTS]", {})) | set(tables.get("[TRAP]", {}))),
        ("GY", 4, None),
        ("GZ", 5, None),
        ("ADC", 6, set(tables.get("[ADC]", {}))),
        ("EXT", 7, set(tables.get("[EXTENSIONS]", {}))),
    )
    grads = references[1][2]
    adc_samples = {event_id: int(event[1][1]) for event_id, event in tables.get("[ADC]", {}).items()}
    total_ticks = 0
    for line, row in blocks:
        if len(row) != 8:
            raise reader.fail(line, f"[BLOCKS] row has {len(row)} columns, expected 8 (NUM DUR RF GX GY GZ ADC EXT)")
        values = [_integer(reader, line, token, "[BLOCKS] value") for token in row]
        if values[0] < 1:
            raise reader.fail(line, f"block number {values[0]} must be positive")
        total_ticks += values[1]
        for name, column, ids in references:
            ref = values[column]
            known = grads if ids is None else ids
            if ref and ref not in known:
                raise reader.fail(line, f"block {values[0]} refers to {name} event {ref}, which is not defined")
        if values[6]:
            facts.total_adc_samples += adc_samples[values[6]]
            facts.max_adc_samples = max(facts.max_adc_samples, adc_samples[values[6]])
    facts.n_blocks = len(blocks)
    facts.duration_s = total_ticks * raster
    if facts.duration_s > MAX_DURATION_S:
        raise reader.fail(None, f"lasts {facts.duration_s:.4g} s, longer than the {MAX_DURATION_S:g} s allowed")
    if facts.total_adc_samples > MAX_TOTAL_ADC_SAMPLES:
        raise reader.fail(
            None, f"acquires {facts.total_adc_samples} ADC samples, more than the {MAX_TOTAL_ADC_SAMPLES} allowed"
        )


def validate_seq_file(path: str | os.PathLike[str]) -> SeqFacts:
    """Check a ``.seq`` file before pypulseq reads it; refuse it with one line if it could hang or exhaust memory.

    Checks: at most :data:`MAX_FILE_BYTES`, UTF-8 text; ``[VERSION]`` 1.4 or 1.5 before the tables and a non-empty
    ``[BLOCKS]``; every table row complete (column count, numbers finite, ids unique and positive, ending in a blank
    line, not the end of the file); every shape expanding to its ``num_samples``; rasters within
    :data:`RASTER_RANGE_S`; no negative duration or delay; ADCs of 1..:data:`MAX_ADC_SAMPLES` samples with a positive
    dwell; every event, shape, extension and label a block refers to defined; the totals within the limits above.

    Raises
    ------
    FileFormatError
        One line naming the file, the line (when there is one) and what is wrong.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FileFormatError(
                f"{str(path)!r} is {size / 1024**2:.0f} MiB, more than the {MAX_FILE_BYTES // 1024**2} MiB a .seq "
                "file may have"
            )
        data = path.read_bytes()
    except OSError as error:
        raise FileFormatError(f"cannot read sequence file {str(path)!r}: {error.strerror}; check the path") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FileFormatError(
            f"{str(path)!r} is not a text .seq file (byte {error.start} is not UTF-8); pass a Pulseq file"
        ) from None
    if "\x00" in text:
        raise FileFormatError(f"{str(path)!r} holds NUL bytes; it is not a text .seq file")
    return validate_seq_text(text.replace("\r\n", "\n"), path=path)


__all__ = ["SeqFacts", "validate_seq_file", "validate_seq_text"]
