"""Variable-density spiral-out 2D spoiled GRE as a pypulseq sequence, with a slew/amplitude-limited spiral design."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from hifield._pypulseq import import_pypulseq
from hifield.errors import ConfigError
from hifield.sequence._design import build_protocol, ceil_to, delay_to_reach, require_time
from hifield.sequence.built import BuiltSequence
from hifield.sequence.library._blocks import (
    cache_rf_shapes,
    finish_sequence,
    labels,
    play_excitation,
    protocol_excitation,
    rf_centre_in_block,
    rf_spoil_phases,
    shared_duration,
    trapezoid,
)
from hifield.sequence.protocol import (
    RF_SPOILING_SPEC,
    SLICE_SPECS,
    FieldSpec,
    SliceProtocol,
    check_lines,
    interleaved_order,
)

if TYPE_CHECKING:
    from hifield.hardware.scanner import Scanner


def design_spiral(
    *,
    fov_m: float,
    matrix: int,
    n_interleaves: int,
    density: float,
    max_grad_hz_per_m: float,
    max_slew_hz_per_m_per_s: float,
    raster_s: float,
) -> NDArray[np.complex128]:
    """Gradient waveform [Hz/m] (complex: x + iy, one value per raster interval) of a variable-density spiral-out.

    The k-space radius grows with the angle as dr/dtheta = n_interleaves / (2 pi FOV(r)), with the supported FOV
    falling linearly from ``fov_m`` at the centre to ``density x fov_m`` at k_max = matrix / (2 fov), which
    integrates in closed form. The curve is then traversed as fast as the gradient amplitude and slew rate allow
    (forward pass of the time-optimal design: speed capped by G_max and sqrt(S_max / curvature), tangential
    acceleration by the slew left after the centripetal part), and sampled on the gradient raster.

    Examples
    --------
    >>> g = design_spiral(fov_m=0.24, matrix=64, n_interleaves=8, density=1.0, max_grad_hz_per_m=1.7e6,
    ...                   max_slew_hz_per_m_per_s=6.8e9, raster_s=1e-5)
    >>> bool(abs(abs(np.sum(g) * 1e-5) - 64 / 0.48) < 2.0)  # ends near k_max
    True
    """
    kmax = matrix / (2.0 * fov_m)
    a = n_interleaves / (2.0 * math.pi * fov_m)
    b = (1.0 - density) / kmax
    theta_max = (kmax - 0.5 * b * kmax**2) / a
    theta = np.linspace(0.0, theta_max, max(20000, int(theta_max * 2000)))
    r = a * theta if b == 0 else (1.0 - np.sqrt(np.maximum(1.0 - 2.0 * a * b * theta, 0.0))) / b
    k = r * np.exp(1j * theta)
    dk = np.gradient(k, theta)
    d2k = np.gradient(dk, theta)
    speed_theta = np.maximum(np.abs(dk), 1e-12)
    curvature = np.abs(np.imag(np.conj(dk) * d2k)) / speed_theta**3
    ds = np.abs(np.diff(k))
    gmax = 0.98 * max_grad_hz_per_m
    smax = 0.95 * max_slew_hz_per_m_per_s
    v_cap = np.minimum(gmax, np.sqrt(smax / np.maximum(curvature, 1e-12)))
    v = np.zeros(k.size)
    for i in range(k.size - 1):
        centripetal = v[i] ** 2 * curvature[i]
        tangential = math.sqrt(max(smax**2 - centripetal**2, 0.0))
        v[i + 1] = min(v_cap[i + 1], math.sqrt(v[i] ** 2 + 2.0 * tangential * ds[i]))
    mean_v = np.maximum(0.5 * (v[1:] + v[:-1]), 1e-9)
    t = np.concatenate([[0.0], np.cumsum(ds / mean_v)])
    n = math.floor(t[-1] / raster_s)  # whole raster steps only: a partial last step would be a slew spike
    t_grid = np.arange(n + 1) * raster_s
    k_grid = np.interp(t_grid, t, k.real) + 1j * np.interp(t_grid, t, k.imag)
    return np.diff(k_grid) / raster_s


@dataclass(frozen=True, kw_only=True)
class SpiralProtocol(SliceProtocol):
    """2D variable-density spiral-out spoiled GRE: ``n_interleaves`` rotated copies of one spiral, each after its
    own excitation, then an in-plane rewinder and a z spoiler.

    ``phase_encode_lines`` passed to :meth:`build` are interleaf indices. Defaults: 256 matrix over 240 mm,
    16 interleaves, density 0.6 (the outer k-space supports 60 % of the FOV), 2 us ADC dwell, TR 20 ms,
    flip 20 degrees, 5 mm slice.
    """

    KIND: ClassVar[str] = "spiral_2d"
    SPECS: ClassVar[dict[str, FieldSpec]] = {
        **{k: v for k, v in SLICE_SPECS.items() if k != "readout_bandwidth_hz_per_pixel"},
        "n_interleaves": FieldSpec("n_interleaves", 1.0, 1, 1024, integer=True, description="spiral interleaves"),
        "density": FieldSpec("density", 1.0, 0.1, 1.0, description="outer/inner supported FOV"),
        "adc_dwell_s": FieldSpec("adc_dwell_us", 1e6, 0.5, 50.0, description="ADC dwell"),
        **RF_SPOILING_SPEC,
    }

    name: str = "spiral_vd_2d"
    fov_m: float = 0.24
    """Field of view at the k-space centre [m]."""
    matrix: int = 256
    """Image matrix (k_max = matrix / (2 FOV))."""
    tr_s: float = 0.020
    te_s: float = 0.0025
    """Echo time: RF centre to the first ADC sample (k = 0) [s]."""
    flip_angle_rad: float = math.radians(20.0)
    readout_bandwidth_hz_per_pixel: float = field(init=False, default=0.0)
    """Nominal receiver bandwidth per pixel, 1 / (``adc_dwell_s`` x matrix) [Hz]: set from the ADC dwell, which is
    the spiral's parameter (not an argument, not a protocol-file key)."""
    rf_duration_s: float = 0.001
    rf_time_bandwidth: float = 2.0
    n_interleaves: int = 16
    """Spiral interleaves."""
    density: float = 0.6
    """Supported FOV at k_max relative to the centre (1 = uniform density)."""
    adc_dwell_s: float = 2e-6
    """ADC dwell [s]."""
    rf_spoiling_increment_deg: float = 117.0
    """RF spoiling increment [degree]."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "readout_bandwidth_hz_per_pixel", 1.0 / (self.adc_dwell_s * self.matrix))

    @property
    def nyquist_readouts(self) -> float:
        """Interleaves that sample k-space at the Nyquist rate of the design: ``n_interleaves``."""
        return float(self.n_interleaves)

    def _validate_relations(self) -> None:
        if self.partial_fourier != 1.0:
            raise ConfigError(f"partial_fourier = {self.partial_fourier} applies to Cartesian protocols only; use 1")
        if round(self.adc_dwell_s / 1e-7, 6) % 1:
            raise ConfigError(f"adc_dwell_us = {self.adc_dwell_s * 1e6:g} must be a multiple of 0.1 us (ADC raster)")

    def build(self, scanner: Scanner, *, phase_encode_lines: Sequence[int] | None = None) -> BuiltSequence:
        """Build the sequence playing the interleaves ``phase_encode_lines`` (indices, default all) in order."""
        leaves = check_lines(phase_encode_lines, self.n_interleaves)
        return build_protocol(_design, self, scanner, leaves)


def _design(p: SpiralProtocol, scanner: Scanner, leaves: list[int], system: Any, *, strict: bool) -> BuiltSequence:
    pp = import_pypulseq()

    seq = pp.Sequence(system=system)
    rf, gz, gzr_area = protocol_excitation(pp, system, p)
    free_max = getattr(system, "hifield_free_max_grad", system.max_grad)
    wave = design_spiral(
        fov_m=p.fov_m,
        matrix=p.matrix,
        n_interleaves=p.n_interleaves,
        density=p.density,
        max_grad_hz_per_m=free_max,
        max_slew_hz_per_m_per_s=system.max_slew,
        raster_s=system.grad_raster_time,
    )
    raster = system.grad_raster_time
    lead = ceil_to(system.adc_dead_time, raster)  # gradient and ADC start together after the ADC dead time
    spiral_time = wave.size * raster
    n_samples = int((spiral_time - system.adc_dead_time) // p.adc_dwell_s)  # the ADC's dead time must fit too
    n_samples -= n_samples % 2
    t_reph = shared_duration(pp, system, ("z", gzr_area))
    gz_reph = trapezoid(pp, system, "z", gzr_area, t_reph)
    spoil_z = 4.0 / p.slice_thickness_m
    d_exc = float(pp.calc_duration(rf, gz))
    c_exc = rf_centre_in_block(pp, rf)
    te_min = (d_exc - c_exc) + t_reph + lead
    te_delay = delay_to_reach(
        "echo time te_ms",
        p.te_s,
        te_min,
        "raise te_ms or shorten the RF pulse",
        system.block_duration_raster,
        strict=strict,
    )

    angles = np.array([2.0 * math.pi * i / p.n_interleaves for i in leaves])
    events: dict[int, tuple[list[Any], list[Any]]] = {}
    t_rew = 0.0
    for leaf, angle in zip(leaves, angles, strict=True):
        if leaf in events:
            continue
        g = wave * np.exp(1j * angle)
        spiral, rewind = [], []
        for channel, component in (("x", g.real), ("y", g.imag)):
            last = float(component[-1] + 0.5 * (component[-1] - component[-2]))
            grad = pp.make_arbitrary_grad(
                channel=channel,
                waveform=component,
                first=0.0,
                last=last,
                delay=lead,
                system=system,
                max_grad=1e12,
                max_slew=1e15,
            )
            spiral.append(grad)
            rew = pp.make_extended_trapezoid_area(
                channel=channel, grad_start=last, grad_end=0.0, area=-float(grad.area), system=system
            )[0]
            rewind.append(rew)
            t_rew = max(t_rew, float(pp.calc_duration(rew)))
        events[leaf] = (spiral, rewind)
    t_rew_block = ceil_to(t_rew, system.block_duration_raster)
    t_sp = shared_duration(pp, system, ("z", spoil_z))
    gz_sp = trapezoid(pp, system, "z", spoil_z, t_sp)
    adc = pp.make_adc(num_samples=n_samples, dwell=p.adc_dwell_s, delay=lead, system=system)
    d_ro = lead + spiral_time
    tr_min = d_exc + t_reph + te_delay + ceil_to(d_ro, system.block_duration_raster) + t_rew_block + t_sp
    n_sl = p.n_slices
    slot = ceil_to(tr_min, system.block_duration_raster)
    hint = "raise tr_ms or use more interleaves" + (" or fewer slices" if n_sl > 1 else "")
    tr = require_time("repetition time tr_ms", p.tr_s, (n_sl - 1) * slot + tr_min, hint, strict=strict)
    tr_delay = ceil_to(tr - n_sl * slot, system.block_duration_raster)
    phases = rf_spoil_phases(p.n_averages * len(leaves) * n_sl, p.rf_spoiling_increment_deg)
    positions = p.slice_positions_m
    order = interleaved_order(n_sl)
    cache_rf_shapes(seq, rf)
    k = 0
    for avg in range(p.n_averages):
        for leaf in leaves:
            spiral, rewind = events[leaf]
            for sl in order:
                play_excitation(seq, pp, rf, gz, phases[k], z_m=positions[sl] if n_sl > 1 else None, adc=adc)
                seq.add_block(gz_reph, pp.make_delay(t_reph + te_delay))
                seq.add_block(*spiral, adc, *labels(pp, LIN=leaf, AVG=avg, SLC=sl))
                seq.add_block(*rewind, pp.make_delay(t_rew_block))  # same length for every interleaf
                seq.add_block(gz_sp, pp.make_delay(t_sp + (tr_delay if sl == order[-1] else 0.0)))
                k += 1

    duration = float(sum(seq.block_durations.values()))
    return finish_sequence(
        seq,
        p,
        scanner,
        duration_s=duration,
        phase_encode_lines=np.asarray(leaves, dtype=np.int64),
        n_readout_samples=n_samples,
        readout_dwell_s=p.adc_dwell_s,
        te_s=float(te_min + te_delay),
        tr_s=duration / (p.n_averages * len(leaves)),
        trajectory="spiral",
        scanning_sequence="GR",
        sequence_variant="SP",
        sequence_name="spiral2d",
        pixel_bandwidth_hz=1.0 / (n_samples * p.adc_dwell_s),
        spoke_angles_rad=angles,
    )
