"""Protocols by name (from the library's protocol table) and YAML files with units in the keys (``te_ms``)."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from hifield._atomic import atomic_write_text
from hifield.errors import ConfigError, FileFormatError
from hifield.sequence.library import PROTOCOL_KINDS, PROTOCOL_TABLE
from hifield.sequence.protocol import ImagingProtocol, Protocol


def protocol_names() -> tuple[str, ...]:
    """Names of the default protocols in the library's :data:`~hifield.sequence.library.PROTOCOL_TABLE`.

    Examples
    --------
    >>> "gre_t1_2d" in protocol_names()
    True
    """
    return tuple(PROTOCOL_TABLE)


def protocol_kinds() -> tuple[str, ...]:
    """The ``kind`` values protocol files may use."""
    return tuple(PROTOCOL_KINDS)


def get_protocol(name: str) -> ImagingProtocol:
    """The default protocol named ``name`` in the library's protocol table.

    Raises
    ------
    ConfigError
        For an unknown name, listing the allowed names.

    Examples
    --------
    >>> get_protocol("gre_t1_2d").matrix
    256
    """
    try:
        factory = PROTOCOL_TABLE[name]
    except KeyError:
        raise ConfigError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOL_TABLE)}") from None
    return factory()


_FILE_ORDER: tuple[str, ...] = (
    "name",
    "partial_fourier",
    "gradient_mode",
    "fov_m",
    "matrix",
    "slice_thickness_m",
    "n_partitions",
    "slab_thickness_m",
)
"""Fields written first in a protocol file (then the shared timing and each family's own fields, as declared)."""


def _file_order(field: dataclasses.Field[Any]) -> int:
    return _FILE_ORDER.index(field.name) if field.name in _FILE_ORDER else len(_FILE_ORDER)


def protocol_to_dict(protocol: Protocol) -> dict[str, Any]:
    """The protocol as a file mapping with units in the key names: name and geometry first, then the timing shared
    by every family, then the family's own fields.

    Examples
    --------
    >>> d = protocol_to_dict(get_protocol("gre_t1_2d"))
    >>> d["kind"], d["te_ms"], d["fov_mm"], d["flip_angle_deg"]
    ('gre_2d', 4.6, 240.0, 70.0)
    """
    out: dict[str, Any] = {"kind": protocol.KIND}
    for f in sorted(dataclasses.fields(protocol), key=_file_order):  # stable: declaration order otherwise
        if not f.init:  # derived from other fields (bSSFP's TE = TR/2): not a file key
            continue
        value = getattr(protocol, f.name)
        spec = protocol.SPECS.get(f.name)
        if spec is None:
            out[f.name] = value
        elif spec.integer:
            out[spec.key] = int(value)
        else:
            out[spec.key] = _clean(float(value) * spec.scale)
    return out


def _clean(value: float) -> float:
    """Round away float noise of the unit conversion (12 significant digits)."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.12g}")


def protocol_from_dict(data: dict[str, Any], *, source: str = "protocol") -> ImagingProtocol:
    """Build a protocol from a file mapping (``kind`` plus keys with units); missing keys take the defaults.

    Raises
    ------
    ConfigError
        For a missing or unknown ``kind``, an unknown key or a value out of range, naming the key, value and range.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys to values; got {type(data).__name__}")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in PROTOCOL_KINDS:  # a list or mapping is unhashable: no TypeError
        raise ConfigError(
            f"{source}: kind = {kind!r} is not a protocol kind; choose one of {', '.join(PROTOCOL_KINDS)}"
        )
    cls = PROTOCOL_KINDS[str(kind)]
    by_key = {spec.key: (attr, spec) for attr, spec in cls.SPECS.items()}
    plain = {f.name for f in dataclasses.fields(cls) if f.init} - set(cls.SPECS)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "kind":
            continue
        if key in by_key:
            attr, spec = by_key[key]
            allowed = f"{spec.low:g} to {spec.high:g}"
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{source}: {key} = {value!r} is not a number; allowed {allowed}")
            if spec.integer and not float(value).is_integer():
                raise ConfigError(f"{source}: {key} = {value!r} must be a whole number; allowed {allowed}")
            if not (spec.low <= float(value) <= spec.high):
                raise ConfigError(f"{source}: {key} = {value!r} is outside the allowed range {allowed}")
            kwargs[attr] = int(value) if spec.integer else float(value) / spec.scale
        elif key in plain:
            kwargs[key] = value
        else:
            allowed_keys = ", ".join(["kind", *sorted(plain), *sorted(by_key)])
            raise ConfigError(f"{source}: unknown key {key!r} for kind {kind}; allowed keys: {allowed_keys}")
    try:
        return cls(**kwargs)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    except TypeError as error:
        raise ConfigError(f"{source}: {error}") from None


MAX_YAML_BYTES = 1024 * 1024
"""Largest protocol YAML file read [bytes]."""


def load_protocol(path: str | os.PathLike[str]) -> ImagingProtocol:
    """Read a protocol YAML file.

    Raises
    ------
    ConfigError
        For an unknown key or a bad value (one line naming key, value and allowed range).
    FileFormatError
        If the file is not valid YAML.
    """
    import yaml

    path = Path(path)
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise FileFormatError(
                f"protocol file {str(path)!r} is larger than {MAX_YAML_BYTES // 1024} KiB; is it YAML?"
            )
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read protocol file {str(path)!r}: {error.strerror}; check the path") from None
    except UnicodeDecodeError as error:
        raise FileFormatError(
            f"protocol file {str(path)!r} is not UTF-8 text (byte {error.start}); pass a YAML protocol file"
        ) from None
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, ValueError) as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise FileFormatError(f"protocol file {str(path)!r} is not valid YAML{line}; fix its syntax") from None
    return protocol_from_dict(data, source=str(path))


def save_protocol(protocol: Protocol, path: str | os.PathLike[str]) -> Path:
    """Write ``protocol`` as YAML with units in the key names (atomically: temporary name, then rename).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_protocol(get_protocol("gre_t1_2d").with_changes(te_s=0.005), Path(d) / "p.yaml")
    ...     round(load_protocol(p).te_s * 1e3, 6)
    5.0
    """
    import yaml

    path = Path(path)
    text = yaml.safe_dump(protocol_to_dict(protocol), sort_keys=False)
    return atomic_write_text(path, text)
