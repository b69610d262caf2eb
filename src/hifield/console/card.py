"""The protocol card: parameters with units, and the live check of a protocol on a scanner (as ``hifield check``)."""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hifield.console.limits import MINIMUM_WORDS, VIOLATION_WORDS, minimum_time, passing_value, remedy
from hifield.errors import ConfigError, HifieldError, SequenceError

SCANNER_PRESETS: tuple[str, ...] = ("1.5T", "3T", "5T", "7T")
"""Scanner presets the console offers (a scanner YAML path is not accepted from a browser)."""

MODES: tuple[str, ...] = ("normal", "first_level")
"""IEC operating modes."""

_UNITS: tuple[tuple[str, str], ...] = (
    ("_hz_per_pixel", "Hz/pixel"),
    ("_ms", "ms"),
    ("_mm", "mm"),
    ("_deg", "deg"),
)


def unit_of(key: str) -> str:
    """Display unit of a protocol-file key, from its suffix.

    Examples
    --------
    >>> unit_of("te_ms"), unit_of("readout_bandwidth_hz_per_pixel"), unit_of("matrix")
    ('ms', 'Hz/pixel', '')
    """
    for suffix, unit in _UNITS:
        if key.endswith(suffix):
            return unit
    return ""


def parameters(protocol: Any) -> list[dict[str, Any]]:
    """Every editable parameter of ``protocol``: file key, label, unit, value and allowed range (file units).

    Examples
    --------
    >>> from hifield.sequence import get_protocol
    >>> te = next(p for p in parameters(get_protocol("gre_t1_2d")) if p["key"] == "te_ms")
    >>> te["unit"], te["value"], te["low"], te["high"]
    ('ms', 4.6, 0.5, 1000.0)
    """
    from hifield.sequence import protocol_to_dict
    from hifield.sequence.protocol import GRADIENT_MODES

    values = protocol_to_dict(protocol)
    out: list[dict[str, Any]] = []
    for attr, spec in protocol.SPECS.items():
        out.append(
            {
                "key": spec.key,
                "attr": attr,
                "label": spec.description or attr,
                "unit": unit_of(spec.key),
                "value": values[spec.key],
                "low": spec.low,
                "high": spec.high,
                "integer": spec.integer,
                "choices": None,
            }
        )
    out.append(
        {
            "key": "partial_fourier",
            "attr": "partial_fourier",
            "label": "partial Fourier fraction",
            "unit": "",
            "value": values["partial_fourier"],
            "low": 0.5,
            "high": 1.0,
            "integer": False,
            "choices": None,
        }
    )
    out.append(
        {
            "key": "gradient_mode",
            "attr": "gradient_mode",
            "label": "gradient mode",
            "unit": "",
            "value": values["gradient_mode"],
            "low": None,
            "high": None,
            "integer": False,
            "choices": list(GRADIENT_MODES),
        }
    )
    return out


@dataclass(frozen=True)
class CardRequest:
    """What the protocol card sends: scanner, phantom, protocol with edited parameters (file units) and sampling."""

    protocol: str = "gre_t1_2d"
    """Name of a library protocol (``hifield protocols``)."""
    field: str = "3T"
    """Scanner preset (ignored when ``scanner_yaml`` is given)."""
    scanner_yaml: str | None = None
    """Text of a scanner YAML file (``Scanner.load`` keys), uploaded from the browser; None uses the preset."""
    phantom: str = "brain"
    """Digital phantom."""
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Edited parameters by protocol-file key (``te_ms``); the rest keep the protocol's defaults."""
    acceleration: float = 1.0
    """Requested acceleration R."""
    pattern: str = "variable-density"
    """Phase-encode sampling pattern."""
    n_calibration: int = 24
    """Fully sampled calibration lines."""
    recons: tuple[str, ...] = ("fft", "sense", "cs")
    """Reconstructions to run."""
    mode: str = "normal"
    """IEC operating mode of the checks."""
    n_coils: int | None = None
    """Receive channels (None keeps the preset's)."""
    seed: int = 0
    """Seed of the pattern and the noise."""


@dataclass
class CardResult:
    """The card's answer: the results, the problems by parameter and whether Start may be pressed."""

    ok: bool = False
    """True when the protocol builds and passes every check (Start enabled)."""
    errors: list[dict[str, Any]] = field(default_factory=list)
    """Problems: ``{"key": parameter key or None, "message": one line as the CLI prints it, "limit": name,
    "passing": value that would pass (in the key's unit) or None}``."""
    results: dict[str, Any] = field(default_factory=dict)
    """Scan time [s], minimum TE/TR [ms], SAR [W/kg], PNS [%], peak gradient [mT/m] and slew [T/m/s], acceleration."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    """Every checked quantity (``hifield check`` rows)."""
    mask: list[list[int]] | None = None
    """Sampling mask (rows k2, columns k1), 1 = acquired, 2 = calibration; None for non-Cartesian."""
    parameters: list[dict[str, Any]] = field(default_factory=list)
    """The protocol's parameters with the values in force."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)


SCANNER_YAML_MAX_BYTES = 65536
"""Largest scanner YAML text the console accepts."""


def scanner_from_yaml(text: str) -> Any:
    """A scanner from the text of a scanner YAML file, read by :meth:`Scanner.load` (same keys, same checks).

    The browser sends the file's content, never a path on the server.
    """
    import tempfile
    from pathlib import Path

    from hifield.hardware import Scanner

    if not isinstance(text, str) or len(text.encode("utf-8", "replace")) > SCANNER_YAML_MAX_BYTES:
        raise ConfigError(f"scanner YAML must be text of at most {SCANNER_YAML_MAX_BYTES} bytes")
    with tempfile.TemporaryDirectory(prefix="hifield-console-") as folder:
        path = Path(folder) / "scanner.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            return Scanner.load(path)
        except HifieldError as error:
            message = str(error).replace(repr(str(path)), "(uploaded)").replace(str(path), "(uploaded)")
            raise type(error)(message) from None


def resolve_scanner(name: str, n_coils: int | None = None, scanner_yaml: str | None = None) -> Any:
    """A preset scanner, or the scanner of an uploaded YAML text (the browser may not name files on the server)."""
    from hifield.hardware import Scanner

    if scanner_yaml is not None:
        scanner = scanner_from_yaml(scanner_yaml)
    elif name not in SCANNER_PRESETS:
        raise ConfigError(f"unknown scanner preset {name!r}; choose one of {', '.join(SCANNER_PRESETS)}")
    else:
        scanner = Scanner.preset(name)
    if n_coils is not None:
        if isinstance(n_coils, bool) or not isinstance(n_coils, int) or not 1 <= n_coils <= 64:
            raise ConfigError(f"receive coils must be a whole number from 1 to 64; got {n_coils!r}")
        scanner = scanner.with_receive_coils(n_coils)
    return scanner


def make_protocol(request: CardRequest) -> Any:
    """The library protocol with the card's edits, validated exactly as a protocol file is (one-line ConfigError)."""
    from hifield.sequence import get_protocol, protocol_from_dict, protocol_to_dict

    if not isinstance(request.params, dict):
        raise ConfigError("params must be a mapping of protocol-file keys to values")
    base = get_protocol(request.protocol)
    data = protocol_to_dict(base)
    data.update(request.params)
    return protocol_from_dict(data, source="protocol card")


def scan_config(request: CardRequest, **changes: Any) -> Any:
    """The :class:`~hifield.pipeline.ScanConfig` of the card (validated as ``hifield scan`` validates it)."""
    from hifield.pipeline import ScanConfig

    if request.mode not in MODES:
        raise ConfigError(f"mode {request.mode!r} is not an IEC operating mode; choose one of {', '.join(MODES)}")
    if isinstance(request.n_calibration, bool) or not isinstance(request.n_calibration, int):
        raise ConfigError(f"calibration lines must be a whole number; got {request.n_calibration!r}")
    from hifield.sampling.validation import check_acceleration

    check_acceleration(request.acceleration)
    return ScanConfig(
        protocol=changes.pop("protocol", request.protocol),
        field=changes.pop("field", request.field),
        acceleration=float(request.acceleration),
        pattern=request.pattern,
        n_calibration=request.n_calibration,
        recons=tuple(request.recons),
        phantom=request.phantom,
        n_coils=request.n_coils,
        seed=request.seed,
        **changes,
    ).validated()


def _key_in(message: str, keys: list[str]) -> str | None:
    """The first parameter key named in ``message`` (longest keys first, so ``te_ms`` does not match ``ti_ms``)."""
    for key in sorted(keys, key=len, reverse=True):
        if re.search(rf"\b{re.escape(key)}\b", message):
            return key
    return None


@functools.lru_cache(maxsize=16)
def checked_build(
    protocol: Any,
    field: str,
    n_coils: int | None,
    mode: str,
    *,
    scanner_yaml: str | None = None,
    phase_encode_lines: tuple[int, ...] | None = None,
    partition_lines: tuple[int, ...] | None = None,
    plane_points: tuple[tuple[int, int], ...] | None = None,
) -> tuple[Any, Any, tuple[Any, ...]]:
    """The built sequence, its :class:`~hifield.sequence.SafetyReport` and its violations (``hifield.sequence.check``).

    Cached (protocols are frozen and hashable): a long 3D protocol takes seconds to build, and the card asks for the
    same sequence again when only the sampling, the phantom or nothing has changed, and once more when Start is
    pressed.
    """
    from hifield.sequence import assess, check

    scanner = resolve_scanner(field, n_coils, scanner_yaml)
    if plane_points is not None:  # a 3D protocol's (k2, k1) pattern
        built = protocol.build(scanner, plane_points=[list(p) for p in plane_points])
    elif partition_lines is not None:
        built = protocol.build(scanner, partition_lines=list(partition_lines))
    elif phase_encode_lines is not None:
        built = protocol.build(scanner, phase_encode_lines=list(phase_encode_lines))
    else:
        built = protocol.build(scanner)
    return built, assess(built, scanner, mode=mode), tuple(check(built, scanner, mode=mode))


def _sampling(cfg: Any, protocol: Any, full_seq: Any) -> tuple[list[int], dict[str, Any], Any]:
    """Readouts played, sampling summary and the pattern, chosen by :func:`hifield.sequence.choose_pattern` as
    :func:`hifield.pipeline.scan` chooses them."""
    from hifield.sequence import choose_pattern

    pattern, axis = choose_pattern(
        protocol,
        full_seq,
        pattern=cfg.pattern,
        acceleration=cfg.acceleration,
        n_calibration=cfg.n_calibration,
        seed=cfg.seed,
    )
    n_full = int(pattern.mask.size) if axis != "readouts" else int(full_seq.n_lines)
    info = {
        "pattern": pattern.name,
        "acceleration": round(pattern.acceleration, 3),
        "lines_acquired": pattern.n_acquired,
        "lines_full": n_full,
        "calibration_lines": pattern.calibration_lines if pattern.n_acquired < n_full else 0,
        "axis": axis,
    }
    return [int(i) for i in pattern.order], info, pattern if axis != "readouts" else None


def _pattern_picture(pattern: Any) -> list[list[int]]:
    """The mask as rows (k2) of k1 entries: 0 skipped, 1 acquired, 2 calibration."""
    mask = np.asarray(pattern.mask)[..., 0].astype(np.int64)
    if pattern.n_acquired < pattern.mask.size:  # a full scan has no calibration region to show
        mask[np.asarray(pattern.calibration)[..., 0]] = 2
    return [[int(v) for v in row] for row in mask]


def evaluate(request: CardRequest) -> CardResult:
    """Check the card's protocol as ``hifield check`` and ``hifield scan`` would; never raises for bad input.

    Every problem becomes an entry of ``errors`` with the parameter it belongs to (when one is named), the CLI's
    one-line message and, for a timing minimum or a SAR limit, the value that would pass.
    """
    from hifield.sequence import check_timing, raise_for_violations
    from hifield.sequence.safety import report_rows

    result = CardResult()
    try:
        protocol = make_protocol(request)
    except HifieldError as error:
        keys = [p["key"] for p in request.params] if isinstance(request.params, list) else list(request.params or {})
        result.errors.append({"key": _key_in(str(error), keys), "message": str(error), "limit": None, "passing": None})
        return result
    result.parameters = parameters(protocol)
    keys = [p["key"] for p in result.parameters]
    try:
        scanner = resolve_scanner(request.field, request.n_coils, request.scanner_yaml)
        cfg = scan_config(request)
        if int(getattr(protocol, "n_partitions", 1) or 1) > 1 and cfg.phantom != "brain":
            raise ConfigError(f"3D protocols run on the brain phantom (a volume); got --phantom {cfg.phantom}")
    except HifieldError as error:
        result.errors.append({"key": None, "message": str(error), "limit": None, "passing": None})
        return result
    try:
        full_seq, report, found = checked_build(
            protocol, request.field, request.n_coils, request.mode, scanner_yaml=request.scanner_yaml
        )
        check_timing(full_seq)
    except SequenceError as error:
        match = MINIMUM_WORDS.match(str(error))
        key = match.group("key") if match else _key_in(str(error), keys)
        passing = float(match.group("minimum")) if match else None
        limit = f"minimum {match.group('what')}" if match else None
        result.errors.append({"key": key, "message": str(error), "limit": limit, "passing": passing})
        return result
    except HifieldError as error:
        entry: dict[str, Any] = {
            "key": _key_in(str(error), keys),
            "message": str(error),
            "limit": None,
            "passing": None,
        }
        over = VIOLATION_WORDS.search(str(error).removeprefix("refused: "))
        fix = remedy(over.group("limit"), keys) if over else None
        if over and fix:
            ratio = float(over.group("value")) / float(over.group("maximum"))
            entry.update(key=fix[0], limit=over.group("limit").strip())
            entry["passing"] = passing_value(
                protocol, scanner, fix[0], mode=request.mode, ratio=ratio, up=fix[1], power=fix[2], clears=fix[3]
            )
        result.errors.append(entry)
        return result

    result.rows = report_rows(report)
    violations = list(found)
    info: dict[str, Any] = {}
    scan_time = full_seq.duration_s
    try:
        readouts, info, pattern = _sampling(cfg, protocol, full_seq)
        if pattern is not None:
            result.mask = _pattern_picture(pattern)
        if info["lines_acquired"] != info["lines_full"]:
            lines: dict[str, Any] = {
                "partition_lines" if info["axis"] == "k2" else "phase_encode_lines": tuple(readouts)
            }
            if info["axis"] == "plane":
                lines = {"plane_points": tuple((int(a), int(b)) for a, b in pattern.order_2d)}
            accel_seq, _, accel_found = checked_build(
                protocol, request.field, request.n_coils, request.mode, scanner_yaml=request.scanner_yaml, **lines
            )
            scan_time = accel_seq.duration_s
            seen = {str(v) for v in violations}
            violations += [v for v in accel_found if str(v) not in seen]
    except HifieldError as error:
        result.errors.append({"key": None, "message": str(error), "limit": None, "passing": None})

    offered: dict[str, float | None] = {}
    for v in violations:
        fix = remedy(v.limit, keys)
        key, passing = (fix[0], None) if fix else (None, None)
        if fix is not None:
            if key not in offered:
                worst = max(w.value / w.maximum for w in violations if remedy(w.limit, keys) == fix and w.maximum > 0)
                offered[fix[0]] = passing_value(
                    protocol, scanner, fix[0], mode=request.mode, ratio=worst, up=fix[1], power=fix[2], clears=fix[3]
                )
            passing = offered[fix[0]]
        result.errors.append({"key": key, "message": str(v), "limit": v.limit, "passing": passing, "kind": v.kind})
    if violations:
        try:
            raise_for_violations(violations)
        except HifieldError as error:
            result.errors.insert(0, {"key": None, "message": str(error), "limit": None, "passing": None})

    result.results = {
        "scan_time_s": round(scan_time, 3),
        "scan_time_full_s": round(full_seq.duration_s, 3),
        "te_ms": round(full_seq.te_s * 1e3, 3),
        "tr_ms": round(full_seq.tr_s * 1e3, 3),
        "min_te_ms": minimum_time(protocol, scanner, "te_ms"),
        "min_tr_ms": minimum_time(protocol, scanner, "tr_ms"),
        "sar_head_w_per_kg": round(max(report.sar_head_6min_w_per_kg, 0.0), 4),
        "sar_head_10s_w_per_kg": round(report.sar_head_10s_w_per_kg, 4),
        "sar_whole_body_w_per_kg": round(report.sar_whole_body_6min_w_per_kg, 4),
        "sar_head_limit_w_per_kg": report.limits["sar_head_6min_w_per_kg"],
        "sar_whole_body_limit_w_per_kg": report.limits["sar_whole_body_6min_w_per_kg"],
        "pns_percent": round(report.pns_percent, 2),
        "pns_limit_percent": report.limits["pns_percent"],
        "peak_gradient_mt_per_m": round(float(np.max(report.peak_gradient_t_per_m)) * 1e3, 3),
        "gradient_limit_mt_per_m": report.limits["gradient_t_per_m"] * 1e3,
        "peak_slew_t_per_m_per_s": round(float(np.max(report.peak_slew_t_per_m_per_s)), 2),
        "slew_limit_t_per_m_per_s": report.limits["slew_t_per_m_per_s"],
        "trajectory": full_seq.trajectory,
        "scanner": scanner.name,
        **info,
    }
    result.ok = not result.errors
    return result
