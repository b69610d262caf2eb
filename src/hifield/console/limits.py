"""What would pass: the shortest TE/TR a design allows and a parameter value that clears a broken limit."""

from __future__ import annotations

import math
import re
from typing import Any

from hifield.errors import HifieldError, SequenceError

MINIMUM_WORDS = re.compile(
    r"^(?P<what>.+?) (?P<key>[a-z0-9_]+) = \S+ ms is below the minimum (?P<minimum>[0-9.eE+-]+) ms"
)
"""The one-line error of :func:`hifield.sequence._design.require_time` (``echo time te_ms = 2 ms is below ...``)."""


def minimum_time(protocol: Any, scanner: Any, key: str) -> float | None:
    """Shortest value [ms] of the time ``key`` (``te_ms``, ``tr_ms``) this design allows, or None if not found.

    Builds the protocol with the time at its lowest allowed value and reads the minimum from the one-line
    :class:`SequenceError` the design raises (``echo time te_ms = 0.5 ms is below the minimum 4.18 ms``).
    """
    spec = next((s for s in protocol.SPECS.values() if s.key == key), None)
    if spec is None:
        return None
    attr = next(a for a, s in protocol.SPECS.items() if s.key == key)
    try:
        probe = protocol.with_changes(**{attr: spec.low / spec.scale})
        probe.build(scanner)
    except SequenceError as error:
        match = MINIMUM_WORDS.match(str(error))
        if match and match.group("key") == key:
            return float(match.group("minimum"))
        return None
    except HifieldError:
        return None
    return float(spec.low)


def passing_value(
    protocol: Any,
    scanner: Any,
    key: str,
    *,
    mode: str,
    ratio: float,
    up: bool,
    power: float = 1.0,
    clears: str = "",
    tries: int = 6,
) -> float | None:
    """A value of parameter ``key`` with which the protocol builds and no limit whose name contains ``clears`` is
    broken any more (every limit with ``clears=""``), or None.

    ``ratio`` is how far over its limit the quantity is (value / limit) and the quantity scales with the parameter to
    the power ``-power`` (``up``: SAR with 1/TR, gradient amplitude with 1/FOV) or ``power`` (not ``up``: RF peak
    with the flip angle). The first guess follows that law; each guess is then built and checked with the library and
    moved by 10 % until it passes. None when no value within the allowed range passes in ``tries`` builds.
    """
    from hifield.sequence import check

    specs = {s.key: (a, s) for a, s in protocol.SPECS.items()}
    if key not in specs or not math.isfinite(ratio) or ratio <= 0:
        return None
    attr, spec = specs[key]
    current = float(getattr(protocol, attr)) * spec.scale
    value = current * ratio**power if up else current / ratio**power
    for _ in range(tries):
        value = min(max(value, spec.low), spec.high)
        shown = math.ceil(value * 10) / 10 if up else math.floor(value * 10) / 10
        if spec.integer:
            shown = math.ceil(value) if up else math.floor(value)
        try:
            candidate = protocol.with_changes(**{attr: shown / spec.scale})
            if not any(clears in v.limit for v in check(candidate.build(scanner), scanner, mode=mode)):
                return float(shown)
        except HifieldError:
            pass
        if (up and value >= spec.high) or (not up and value <= spec.low):
            return None
        value = value * 1.1 if up else value / 1.1
    return None


VIOLATION_WORDS = re.compile(
    r"(?P<limit>[^:;]+?) is (?P<value>[0-9.eE+-]+) (?P<unit>\S+), above the limit of (?P<maximum>[0-9.eE+-]+)"
)
"""A violation as :class:`~hifield.sequence.Violation` words it (``gradient amplitude on x is 92 mT/m, above ...``)."""

_REMEDIES: tuple[tuple[str, str, bool, float], ...] = (
    # (words in the limit's name, parameter, raise it?, power of the scaling law)
    ("SAR", "tr_ms", True, 1.0),
    ("gradient RMS", "tr_ms", True, 2.0),
    ("RF peak", "flip_angle_deg", False, 1.0),
    ("gradient amplitude on x", "fov_mm", True, 1.0),
    ("gradient amplitude on y", "fov_mm", True, 1.0),
    ("gradient amplitude on z", "slice_thickness_mm", True, 1.0),
)
"""Which parameter the card offers a passing value of, for each kind of limit."""


def remedy(limit: str, keys: list[str]) -> tuple[str, bool, float, str] | None:
    """``(parameter key, raise it?, power, words of the limits it clears)`` for a limit's name, when the protocol
    has that parameter.

    Examples
    --------
    >>> remedy("head SAR (6 min) in normal mode", ["tr_ms", "te_ms"])
    ('tr_ms', True, 1.0, 'SAR')
    >>> remedy("PNS in normal mode", ["tr_ms"]) is None
    True
    """
    for words, key, up, power in _REMEDIES:
        if words in limit and key in keys:
            return key, up, power, words
    return None
