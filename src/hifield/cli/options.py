"""Option values shared by the subcommands, validated in one place: seeds, timeouts, output paths, fields, recons.

Each parser raises one line (a click ``BadParameter`` at parse time or a :class:`~hifield.errors.ConfigError`)
naming the option, the value and what is allowed, before any work starts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from hifield.errors import ConfigError
from hifield.units import parse_field_strength

NAME_MAX = 255
"""Longest file or folder name [bytes] (Linux's NAME_MAX)."""
PATH_MAX = 4096
"""Longest path [bytes] (Linux's PATH_MAX)."""
SEED_MAX = 2**32 - 1
"""Largest ``--seed`` (NumPy's seed sequence takes any non-negative integer; 32 bits keeps it portable)."""
MAX_COILS = 256
"""Most receive channels (``--coils``), as ``hifield coils --n`` allows."""
TIMEOUT_MAX_S = 3600.0
"""Largest network ``--timeout`` [s]."""


def seed_option(help: str, default: int = 0) -> Any:
    """A ``--seed`` option: an integer 0..2**32-1 (negative seeds are refused at parse time)."""
    return typer.Option(default, "--seed", min=0, max=SEED_MAX, help=help)


def coils_option(help: str) -> Any:
    """A ``--coils`` option: None (the preset's array) or 1..:data:`MAX_COILS` receive channels."""
    return typer.Option(None, "--coils", min=1, max=MAX_COILS, help=help)


def shim_option() -> Any:
    """The ``--shim`` option: the transmit (B1+) mode of the field effects."""
    return typer.Option(
        "cp", "--shim", help="Transmit (B1+) mode: none (uniform), cp (quadrature, default) or pTx (8-channel shim)."
    )


def b0_shim_option() -> Any:
    """The ``--b0-shim`` option: the prescan B0 shim of the field effects."""
    return typer.Option("2nd-order", "--b0-shim", help="Prescan B0 shim: none, linear or 2nd-order.")


def ideal_option() -> Any:
    """The ``--ideal`` flag: no high-field effects."""
    return typer.Option(
        False,
        "--ideal",
        help="No high-field effects: uniform B1+, the phantom's own smooth off-resonance (no sinuses).",
    )


def parse_timeout(value: Any) -> float:
    """``--timeout`` in seconds: a number greater than 0 and at most :data:`TIMEOUT_MAX_S`."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise typer.BadParameter(f"{value!r} is not a number of seconds") from None
    if not 0.0 < seconds <= TIMEOUT_MAX_S:
        raise typer.BadParameter(f"{value!r} must be more than 0 and at most {TIMEOUT_MAX_S:g} seconds")
    return seconds


def timeout_option(help: str, default: float = 30.0) -> Any:
    """A ``--timeout`` option in seconds (see :func:`parse_timeout`)."""
    return typer.Option(default, "--timeout", parser=parse_timeout, help=help)


def _path_text(value: Any, option: str) -> str:
    text = str(value)
    if not text.strip():
        raise typer.BadParameter(f"{option} is empty; give a path")
    if "\x00" in text:
        raise typer.BadParameter(f"{option} {text!r} holds a NUL character")
    longest = max((len(os.fsencode(part)) for part in Path(text).parts), default=0)
    if longest > NAME_MAX or len(os.fsencode(text)) > PATH_MAX:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise typer.BadParameter(
            f"{shown!r} is too long (names up to {NAME_MAX} bytes, paths up to {PATH_MAX}); choose a shorter path"
        )
    return text


def _under_folders(path: Path) -> Path:
    """``path``, refused when its nearest existing parent is a file (it could not be created there)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise typer.BadParameter(f"{str(parent)!r} is a file, so {str(path)!r} cannot be created in it")
            break
    return path


def parse_out_dir(value: Any) -> Path:
    """``--out FOLDER``: not empty, and not an existing file (a folder is replaced or created)."""
    path = Path(_path_text(value, "--out"))
    if path.exists() and not path.is_dir():
        raise typer.BadParameter(f"{str(path)!r} exists and is not a folder; choose a folder")
    return path


def parse_out_file(value: Any) -> Path:
    """``--out FILE``: not empty, not an existing folder, and its parent (if it exists) is a folder."""
    path = Path(_path_text(value, "--out"))
    if path.is_dir():
        raise typer.BadParameter(f"{str(path)!r} is a folder; give a file name")
    return _under_folders(path)


def parse_out_path(value: Any) -> Path:
    """``--out FILE-OR-FOLDER`` (recon: an image file or a DICOM folder): not empty, no file in place of a folder."""
    path = Path(_path_text(value, "--out"))
    return _under_folders(path)


def out_dir_option(default: Any, help: str) -> Any:
    """An ``--out`` option naming a folder (see :func:`parse_out_dir`)."""
    return typer.Option(default, "--out", parser=parse_out_dir, help=help)


def out_file_option(default: Any, help: str) -> Any:
    """An ``--out`` option naming a file (see :func:`parse_out_file`)."""
    return typer.Option(default, "--out", parser=parse_out_file, help=help)


def out_path_option(default: Any, help: str) -> Any:
    """An ``--out`` option naming a file or a folder (see :func:`parse_out_path`)."""
    return typer.Option(default, "--out", parser=parse_out_path, help=help)


def parse_recons(text: str) -> tuple[str, ...]:
    """Split ``"fft,sense,cs"`` into names; unknown, empty or repeated names are refused.

    Examples
    --------
    >>> parse_recons("fft, SENSE")
    ('fft', 'sense')
    """
    from hifield.pipeline import RECON_CHOICES

    names = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    bad = [n for n in names if n not in RECON_CHOICES]
    if bad or not names:
        raise ConfigError(f"unknown --recon {', '.join(bad) or text!r}; choose from {', '.join(RECON_CHOICES)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"--recon names {', '.join(repeated)} more than once; list each reconstruction once")
    return names


def parse_field(text: str) -> str:
    """Validate ``--field``: a preset name such as ``3T`` (``3 T`` and ``3t`` too) or a scanner YAML file path.

    A bare number (``3``) is refused: the unit is part of the value.
    """
    from hifield.hardware import Scanner

    if text.endswith((".yaml", ".yml")):
        return text
    names = Scanner.preset_names()
    stripped = text.strip()
    if stripped and stripped[-1:] in "tT":
        try:
            value = parse_field_strength(stripped)
        except ValueError:
            value = -1.0
        for name in names:
            if abs(parse_field_strength(name) - value) < 1e-9:
                return name
    hint = f"; did you mean {stripped}T?" if _is_number(stripped) else ""
    raise ConfigError(f"unknown --field {text!r}; choose one of {', '.join(names)} or a scanner YAML file{hint}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


__all__ = [
    "coils_option",
    "out_dir_option",
    "out_file_option",
    "out_path_option",
    "parse_field",
    "parse_out_dir",
    "parse_out_file",
    "parse_out_path",
    "parse_recons",
    "parse_timeout",
    "seed_option",
    "timeout_option",
]
