"""Options and results of one virtual exam (``ScanConfig``, ``ScanResult``) and the progress-reporter protocol."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from hifield.errors import ConfigError
from hifield.recon.registry import reconstructor, reconstructor_names

if TYPE_CHECKING:
    from hifield.sequence import ImagingProtocol
    from hifield.sim.field_effects import FieldEffects

RECON_CHOICES: tuple[str, ...] = tuple(n for n in reconstructor_names() if not reconstructor(n).needs_partial_fourier)
"""Reconstructions ``hifield scan`` can run (``--recon``): every registered one that needs no partial-Fourier data
(a scan acquires both sides of k-space); ``fft`` is zero-filled root-sum-of-squares."""
DEFAULT_RECONS: tuple[str, ...] = ("fft", "sense", "cs")
"""Reconstructions ``hifield scan`` runs when none are named."""


PHANTOMS: tuple[str, ...] = ("brain", "shepp-logan", "nist", "nist-t2", "water-fat")
"""Phantoms ``hifield scan --phantom`` offers."""


class StepReporter(Protocol):
    """Receives progress of the pipeline's steps (the CLI shows a spinner and the elapsed time)."""

    def step(self, description: str) -> contextlib.AbstractContextManager[None]:
        """Context manager around one step."""
        ...


class SilentReporter:
    """A reporter that shows nothing (the default of :func:`hifield.pipeline.scan`)."""

    @contextlib.contextmanager
    def step(self, description: str) -> Iterator[None]:
        yield


@dataclass(frozen=True)
class ScanConfig:
    """Options of one virtual exam; the defaults are ``hifield scan`` with no arguments.

    Examples
    --------
    >>> ScanConfig().field, ScanConfig().acceleration, ScanConfig().recons
    ('3T', 4.0, ('fft', 'sense', 'cs'))
    """

    protocol: str | ImagingProtocol = "gre_t1_2d"
    """Protocol name (``hifield protocols``), path of a protocol YAML file, or a protocol object."""
    field: str = "3T"
    """Scanner preset (1.5T, 3T, 5T, 7T) or a scanner YAML file (see ``Scanner.load``)."""
    acceleration: float = 4.0
    """Requested acceleration R (1 = fully sampled)."""
    pattern: str = "variable-density"
    """Phase-encode sampling pattern."""
    n_calibration: int = 24
    """Fully sampled central calibration lines."""
    recons: tuple[str, ...] = DEFAULT_RECONS
    """Reconstructions to run."""
    matrix: int | None = None
    """In-plane matrix (None keeps the protocol's, 256 by default)."""
    phantom: str = "brain"
    """Digital phantom: ``brain``, ``shepp-logan``, ``nist``, ``nist-t2`` or ``water-fat``."""
    engine: str = "fast"
    """Simulation engine."""
    n_coils: int | None = None
    """Receive channels (None keeps the preset's)."""
    seed: int = 0
    """Seed of the sampling pattern and the noise."""
    out: Path = Path("hifield_out")
    """Output folder (a string is accepted and converted)."""
    write_files: bool = True
    """Write raw data, DICOM, NIfTI, figure and summary (False: compute only)."""
    n_slices: int | None = None
    """Slices of a 2D protocol's stack (``None`` keeps the protocol's, 1 by default); > 1 scans a slice stack."""
    slice_thickness_m: float | None = None
    """Slice thickness of a 2D protocol [m] (``None`` keeps the protocol's)."""
    slice_position_m: float | None = None
    """Through-plane position of the slice [m] (set per slice by a stack scan; ``None``: the phantom's default)."""
    adapt: bool = False
    """When the protocol exceeds a SAR limit, apply the least change that passes (recorded in summary.json as
    ``sar_adaptation``) instead of refusing it."""
    rf_shim: str = "cp"
    """Transmit mode: ``none`` (uniform B1+), ``cp`` (quadrature, the scanner's default) or ``pTx`` (8-channel shim)."""
    b0_shim: str = "2nd-order"
    """Prescan B0 shim: ``none`` (centre frequency only), ``linear`` or ``2nd-order``."""
    ideal: bool = False
    """No high-field effects (uniform B1+, the phantom's own off-resonance): the images before issue 14."""
    device: str = "cpu"
    """Where CG-SENSE, CS and TV compute: ``cpu`` (numpy), ``cuda``/``cuda:N`` or ``torch`` (torch on the CPU);
    see :mod:`hifield.recon.device`."""

    @property
    def field_effects(self) -> FieldEffects:
        """The :class:`~hifield.sim.field_effects.FieldEffects` these options select."""
        from hifield.sim.field_effects import FieldEffects

        if self.ideal:
            return FieldEffects.ideal()
        return FieldEffects(rf_shim=self.rf_shim, b0_shim=self.b0_shim)

    def __post_init__(self) -> None:
        if not isinstance(self.out, Path):
            object.__setattr__(self, "out", Path(self.out))
        if isinstance(self.recons, str):
            object.__setattr__(self, "recons", tuple(r.strip() for r in self.recons.split(",")))

    def validated(self) -> ScanConfig:
        """Check every option and return the config (acceleration as a float); a one-line ConfigError names the bad
        option. The sampling options go through the one check of :func:`hifield.sampling.check_request`."""
        from hifield.sampling import check_request
        from hifield.sequence import check_matrix

        request = check_request(self.pattern, acceleration=self.acceleration, n_calibration=self.n_calibration)
        if self.matrix is not None:
            check_matrix(self.matrix)  # the protocols' own limits
        unknown = [r for r in self.recons if r not in RECON_CHOICES]
        if unknown or not self.recons:
            raise ConfigError(
                f"unknown reconstruction {', '.join(unknown) or '(none)'}; choose from {', '.join(RECON_CHOICES)}"
            )
        if self.phantom not in PHANTOMS:
            raise ConfigError(f"unknown phantom {self.phantom!r}; choose one of {', '.join(PHANTOMS)}")
        self.field_effects  # noqa: B018 (validates the shim names)
        from hifield.recon.device import validate_device

        device = validate_device(self.device)  # no torch or no GPU: refused before the simulation runs
        return dataclasses.replace(self, acceleration=request.acceleration, device=device)


@dataclass
class ScanResult:
    """What a scan produced: the summary (as in summary.json), images and the paths written."""

    summary: dict[str, Any]
    """Machine-readable summary (the content of summary.json)."""
    truth: NDArray[np.float32]
    """Fully sampled, noise-free reference magnitude, shape (slices, y, x)."""
    images: dict[str, NDArray[np.float32]] = field(default_factory=dict)
    """Magnitude reconstructions by method, shape (slices, y, x)."""
    files: dict[str, str] = field(default_factory=dict)
    """Output files by kind."""
    raw: Any = None
    """The accelerated raw data (``RawData``) of a single-slice or 3D scan."""
    recon_images: dict[str, Any] = field(default_factory=dict)
    """Reconstructed ``Image`` by method."""
