"""A study: many exams (the Cartesian product of axes, or an explicit list), each named by a content hash."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from hifield.errors import ConfigError

STUDY_FORMAT = 2
"""Version of the exam-folder layout and of the exam options; part of every content hash, so a change never reuses
old folders (2: slice stacks and the high-field options, whose defaults changed the physics)."""

AXES: dict[str, str] = {
    "phantoms": "phantom",
    "protocols": "protocol",
    "fields": "field",
    "accelerations": "acceleration",
    "patterns": "pattern",
    "seeds": "seed",
    "matrices": "matrix",
    "coils": "n_coils",
    "engines": "engine",
    "calibrations": "n_calibration",
    "slices": "n_slices",
    "shims": "rf_shim",
    "b0_shims": "b0_shim",
}
"""Axis name in a study file -> the :class:`~hifield.pipeline.ScanConfig` field it varies."""

EXAM_OPTIONS: tuple[str, ...] = (
    "phantom",
    "protocol",
    "field",
    "acceleration",
    "pattern",
    "n_calibration",
    "matrix",
    "n_coils",
    "engine",
    "seed",
    "recons",
    "write_files",
    "n_slices",
    "slice_thickness_m",
    "rf_shim",
    "b0_shim",
    "ideal",
    "adapt",
)
"""The :class:`~hifield.pipeline.ScanConfig` fields an exam sets (everything but ``out``)."""

_STUDY_KEYS = ("name", "out", "fixed", "axes", "exams", "methods", "split_methods", "retries")


@dataclass(frozen=True)
class Exam:
    """One exam of a study: the options of one :func:`hifield.pipeline.scan` call.

    Examples
    --------
    >>> exam = Exam(protocol="gre_t1_2d", field="7T", acceleration=4, recons=("fft", "sense"), matrix=64)
    >>> exam.exam_id == Exam(protocol="gre_t1_2d", field="7T", acceleration=4.0, recons=("fft", "sense"),
    ...                      matrix=64).exam_id
    True
    >>> len(exam.exam_id)
    16
    """

    phantom: str = "brain"
    """Digital phantom name."""
    protocol: str = "gre_t1_2d"
    """Protocol name or protocol YAML path."""
    field: str = "3T"
    """Scanner preset or scanner YAML path."""
    acceleration: float = 4.0
    """Requested acceleration R."""
    pattern: str = "variable-density"
    """Phase-encode sampling pattern."""
    n_calibration: int = 24
    """Fully sampled calibration lines."""
    matrix: int | None = None
    """In-plane matrix (None: the protocol's)."""
    n_coils: int | None = None
    """Receive channels (None: the preset's)."""
    engine: str = "fast"
    """Simulation engine."""
    seed: int = 0
    """Seed of the sampling pattern and the noise."""
    recons: tuple[str, ...] = ("fft", "sense", "cs")
    """Reconstructions of the one raw dataset."""
    write_files: bool = True
    """Write the scan's raw data, DICOM, NIfTI and figure into the exam folder (False: images and metrics only)."""
    n_slices: int | None = None
    """Slices of a 2D protocol's stack (None: the protocol's, 1); a stack's slices run one after another inside
    the exam's task (a Dask worker may not start processes of its own)."""
    slice_thickness_m: float | None = None
    """Slice thickness [m] (None: the protocol's)."""
    rf_shim: str = "cp"
    """Transmit mode: ``none``, ``cp`` or ``pTx``."""
    b0_shim: str = "2nd-order"
    """Prescan B0 shim: ``none``, ``linear`` or ``2nd-order``."""
    ideal: bool = False
    """No high-field effects."""
    adapt: bool = False
    """Apply the least change that meets a SAR limit instead of being refused."""

    def __post_init__(self) -> None:
        if isinstance(self.recons, str):
            object.__setattr__(self, "recons", tuple(r.strip() for r in self.recons.split(",") if r.strip()))
        elif isinstance(self.recons, list):
            object.__setattr__(self, "recons", tuple(self.recons))
        if isinstance(self.acceleration, int) and not isinstance(self.acceleration, bool):
            object.__setattr__(self, "acceleration", float(self.acceleration))

    def options(self) -> dict[str, Any]:
        """The exam's options as plain JSON values (the table's input columns)."""
        values = {name: getattr(self, name) for name in EXAM_OPTIONS}
        values["recons"] = list(self.recons)
        return values

    @property
    def exam_id(self) -> str:
        """Content hash of the exam's inputs (16 hex digits): its options (a protocol or scanner file by its
        content, not its path), hifield's version and the folder layout version."""
        options = self.options()
        for key in ("protocol", "field"):  # a file counts by its content, wherever it lies
            value = getattr(self, key)
            if value.endswith((".yaml", ".yml")) and Path(value).is_file():
                options[key] = "sha256:" + hashlib.sha256(Path(value).read_bytes()).hexdigest()
        inputs: dict[str, Any] = {"options": options, "format": STUDY_FORMAT, "hifield": _version()}
        text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def scan_config(self, out: Path) -> Any:
        """The :class:`~hifield.pipeline.ScanConfig` of this exam writing into ``out``."""
        from hifield.pipeline import ScanConfig

        return ScanConfig(out=out, **{name: getattr(self, name) for name in EXAM_OPTIONS})

    def label(self) -> str:
        """A short human-readable name.

        Examples
        --------
        >>> Exam(field="1.5T", acceleration=4, protocol="protocols/my_gre.yaml").label()
        'my_gre 1.5T R4 variable-density brain seed 0'
        """
        return (
            f"{short_name(self.protocol)} {short_name(self.field)} R{self.acceleration:g} {self.pattern} "
            f"{self.phantom} seed {self.seed}"
        )


@dataclass(frozen=True)
class Study:
    """A study: a name, an output folder and its exams (already expanded)."""

    name: str
    """Name shown in the report."""
    exams: tuple[Exam, ...]
    """Every exam, in order, without duplicates."""
    out: Path = Path("study_out")
    """Output folder."""
    retries: int = 1
    """How often a task that raised an unexpected exception is retried by Dask (worker deaths are always retried)."""

    def __post_init__(self) -> None:
        if not isinstance(self.out, Path):
            object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "exams", tuple(self.exams))


def short_name(spec: str) -> str:
    """A preset or protocol name as it is; a YAML file by its stem."""
    return Path(spec).stem if spec.endswith((".yaml", ".yml")) else spec


def _version() -> str:
    from hifield import __version__

    return __version__


def _resolve(value: Any, base: Path) -> Any:
    """A relative ``*.yaml`` path that exists beside the study file, made absolute; anything else unchanged."""
    if isinstance(value, str) and value.endswith((".yaml", ".yml")) and not Path(value).is_absolute():
        candidate = base / value
        if candidate.is_file():
            return str(candidate)
    return value


def _as_list(key: str, value: Any, source: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if not value:
            raise ConfigError(f"{source}: axis {key!r} is empty; give at least one value")
        return list(value)
    return [value]


def _make_exam(options: dict[str, Any], where: str) -> Exam:
    known = {f.name for f in fields(Exam)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown option {unknown[0]!r}; choose from {', '.join(sorted(known))}")
    try:
        exam = Exam(**options)
        exam.scan_config(Path("unused")).validated()
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from None
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    return exam


def study_from_dict(spec: dict[str, Any], *, source: str = "study", base: Path | None = None) -> Study:
    """Expand a study description (the content of a study YAML file) into a :class:`Study`.

    Parameters
    ----------
    spec
        ``name``, ``out``, ``fixed`` (options shared by every exam), ``methods`` (the reconstructions of each exam),
        and either ``axes`` (lists whose Cartesian product gives the exams; names in :data:`AXES`) or ``exams`` (an
        explicit list of option mappings, each merged over ``fixed``), or both (the product, then the list).
        ``split_methods: true`` makes one exam per reconstruction method; ``retries`` (default 1).
    source
        Name of the file, used in error messages.
    base
        Folder against which relative protocol and scanner file paths (``*.yaml``) are resolved (the study
        file's folder); None leaves them relative to the working folder.

    Raises
    ------
    ConfigError
        One line naming the unknown key, bad value or exam.

    Examples
    --------
    >>> study = study_from_dict({"axes": {"fields": ["3T", "7T"], "accelerations": [2, 4]},
    ...                          "fixed": {"matrix": 64}, "methods": ["fft"]})
    >>> [(e.field, e.acceleration) for e in study.exams]
    [('3T', 2.0), ('3T', 4.0), ('7T', 2.0), ('7T', 4.0)]
    """
    if not isinstance(spec, dict):
        raise ConfigError(f"{source}: a study file is a mapping with 'axes' or 'exams'; got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(_STUDY_KEYS))
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; choose from {', '.join(_STUDY_KEYS)}")
    fixed = dict(spec.get("fixed") or {})
    if "methods" in spec:
        fixed["recons"] = _as_list("methods", spec["methods"], source)
    axes = dict(spec.get("axes") or {})
    bad_axis = sorted(set(axes) - set(AXES))
    if bad_axis:
        raise ConfigError(f"{source}: unknown axis {bad_axis[0]!r}; choose from {', '.join(AXES)}")
    explicit = spec.get("exams") or []
    if not isinstance(explicit, list):
        raise ConfigError(f"{source}: 'exams' must be a list of mappings")
    if not axes and not explicit:
        raise ConfigError(f"{source}: the study has no exams; give 'axes' or 'exams'")

    option_sets: list[dict[str, Any]] = []
    if axes:
        names = list(axes)
        for values in itertools.product(*(_as_list(name, axes[name], source) for name in names)):
            option_sets.append({**fixed, **{AXES[n]: v for n, v in zip(names, values, strict=True)}})
    for number, entry in enumerate(explicit, start=1):
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: exam {number} must be a mapping of options")
        option_sets.append({**fixed, **entry})

    exams: list[Exam] = []
    for number, options in enumerate(option_sets, start=1):
        if base is not None:
            options = {k: _resolve(v, base) if k in ("protocol", "field") else v for k, v in options.items()}
        exam = _make_exam(options, f"{source}: exam {number}")
        if spec.get("split_methods"):
            exams += [Exam(**{**exam.options(), "recons": (method,)}) for method in exam.recons]
        else:
            exams.append(exam)
    unique = list({exam.exam_id: exam for exam in exams}.values())
    retries = spec.get("retries", 1)
    if not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"{source}: retries must be an integer >= 0; got {retries!r}")
    return Study(
        name=str(spec.get("name") or Path(source).stem),
        exams=tuple(unique),
        out=Path(spec.get("out") or "study_out"),
        retries=retries,
    )


def load_study(path: str | Path) -> Study:
    """Read a study YAML file (see :func:`study_from_dict`).

    Protocol and scanner files named with a relative path are looked up beside the study file first; a relative
    ``out`` is relative to the working folder.

    Raises
    ------
    ConfigError
        If the file is missing, not YAML, or describes a bad study.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"study file {str(path)!r} does not exist; give the path of a study YAML file")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        line = getattr(getattr(error, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(f"study file {path.name} is not valid YAML{where}; check its syntax") from None
    return study_from_dict(spec, source=path.name, base=path.resolve().parent)


__all__ = ["AXES", "EXAM_OPTIONS", "STUDY_FORMAT", "Exam", "Study", "load_study", "short_name", "study_from_dict"]
