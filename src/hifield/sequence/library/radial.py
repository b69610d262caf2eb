"""Golden-angle radial 2D RF-spoiled gradient echo as a pypulseq sequence."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hifield._pypulseq import import_pypulseq
from hifield.errors import ConfigError
from hifield.sequence._design import build_protocol, delay_to_reach
from hifield.sequence.built import BuiltSequence
from hifield.sequence.library._blocks import (
    add_gradients,
    cache_rf_shapes,
    finish_sequence,
    gradient_echo_timing,
    labels,
    make_readout,
    play_excitation,
    protocol_excitation,
    rf_spoil_phases,
    shared_duration,
    spoiler_areas,
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

GOLDEN_ANGLE_RAD: float = math.pi * (math.sqrt(5.0) - 1.0) / 2.0
"""Golden angle for spokes through the centre, 180 degrees x 0.618 = 111.246 degrees (Winkelmann et al. 2007)."""


@dataclass(frozen=True, kw_only=True)
class RadialProtocol(SliceProtocol):
    """2D golden-angle radial spoiled GRE: spoke i runs through the k-space centre at angle i x 111.246 degrees.

    Each spoke has ``matrix * readout_oversampling`` samples with sample ``n // 2`` at k = 0.
    ``phase_encode_lines`` passed to :meth:`build` are spoke indices (0..n_spokes-1).
    Defaults: 256 matrix over 240 mm, 402 spokes (pi/2 x 256, Nyquist), 2x readout oversampling, TR 7 ms,
    TE 3 ms, flip 10 degrees, 5 mm slice.
    """

    KIND: ClassVar[str] = "radial_2d"
    SPECS: ClassVar[dict[str, FieldSpec]] = {
        **SLICE_SPECS,
        "n_spokes": FieldSpec("n_spokes", 1.0, 1, 100000, integer=True, description="radial spokes"),
        "readout_oversampling": FieldSpec("readout_oversampling", 1.0, 1, 4, integer=True, description="oversampling"),
        **RF_SPOILING_SPEC,
    }

    name: str = "radial_gre_2d"
    tr_s: float = 0.007
    te_s: float = 0.003
    """Echo time (RF centre to the spoke's k = 0 sample) [s]."""
    flip_angle_rad: float = math.radians(10.0)
    readout_bandwidth_hz_per_pixel: float = 500.0
    """Receiver bandwidth per (image) pixel [Hz]; the matrix is the number of samples per spoke before
    oversampling."""
    rf_duration_s: float = 0.0008
    rf_time_bandwidth: float = 2.0
    n_spokes: int = 402
    """Number of spokes."""
    readout_oversampling: int = 2
    """Readout oversampling factor."""
    rf_spoiling_increment_deg: float = 117.0
    """RF spoiling increment [degree]."""

    def _validate_relations(self) -> None:
        if self.partial_fourier != 1.0:
            raise ConfigError(f"partial_fourier = {self.partial_fourier} applies to Cartesian protocols only; use 1")

    def build(self, scanner: Scanner, *, phase_encode_lines: Sequence[int] | None = None) -> BuiltSequence:
        """Build the sequence playing the spokes ``phase_encode_lines`` (indices, default all) in order."""
        spokes = check_lines(phase_encode_lines, self.n_spokes)
        return build_protocol(_design, self, scanner, spokes)


def _design(p: RadialProtocol, scanner: Scanner, spokes: list[int], system: Any, *, strict: bool) -> BuiltSequence:
    pp = import_pypulseq()

    seq = pp.Sequence(system=system)
    rf, gz, gzr_area = protocol_excitation(pp, system, p)
    ro = make_readout(
        pp,
        system,
        fov_m=p.fov_m,
        matrix=p.matrix,
        bandwidth_hz_per_pixel=p.readout_bandwidth_hz_per_pixel,
        oversampling=p.readout_oversampling,
        symmetric=True,
    )
    spoil, spoil_z = spoiler_areas(p)
    # durations for the worst-case axis projection (|cos| = 1)
    t_pre = shared_duration(pp, system, ("x", ro.prephaser_area), ("z", gzr_area))
    t_sp = shared_duration(pp, system, ("x", spoil), ("z", spoil_z))
    gx_pre = trapezoid(pp, system, "x", ro.prephaser_area, t_pre)
    gx_sp = trapezoid(pp, system, "x", spoil, t_sp)
    gz_reph = trapezoid(pp, system, "z", gzr_area, t_pre)
    gz_sp = trapezoid(pp, system, "z", spoil_z, t_sp)
    d_exc, _, d_ro, te_min, te_delay = gradient_echo_timing(pp, system, p, rf, gz, ro, t_pre, strict=strict)
    tr_min = d_exc + t_pre + te_delay + d_ro + t_sp
    n_sl = p.n_slices
    hint = "raise tr_ms or shorten te_ms" + (" or use fewer slices" if n_sl > 1 else "")
    tr_delay = delay_to_reach(
        "repetition time tr_ms", p.tr_s, n_sl * tr_min, hint, system.block_duration_raster, strict=strict
    )
    phases = rf_spoil_phases(p.n_averages * len(spokes) * n_sl, p.rf_spoiling_increment_deg)
    positions = p.slice_positions_m
    order = interleaved_order(n_sl)
    cache_rf_shapes(seq, rf)

    def rotated(grad: Any, angle: float) -> list[Any]:
        out = []
        for channel, factor in (("x", math.cos(angle)), ("y", math.sin(angle))):
            if abs(factor) < 1e-9:
                continue
            g = pp.scale_grad(grad, factor)
            g.channel = channel
            out.append(g)
        return out

    angles = np.array([(i * GOLDEN_ANGLE_RAD) % (2 * math.pi) for i in spokes])
    k = 0
    for avg in range(p.n_averages):
        for spoke, angle in zip(spokes, angles, strict=True):
            for sl in order:
                play_excitation(seq, pp, rf, gz, phases[k], z_m=positions[sl] if n_sl > 1 else None, adc=ro.adc)
                add_gradients(seq, pp, *rotated(gx_pre, angle), gz_reph, duration_s=t_pre + te_delay)
                seq.add_block(*rotated(ro.gx, angle), ro.adc, *labels(pp, LIN=spoke, AVG=avg, SLC=sl))
                end = t_sp + (tr_delay if sl == order[-1] else 0.0)
                add_gradients(seq, pp, *rotated(gx_sp, angle), gz_sp, duration_s=end)
                k += 1

    return finish_sequence(
        seq,
        p,
        scanner,
        ro=ro,
        duration_s=float(sum(seq.block_durations.values())),
        phase_encode_lines=np.asarray(spokes, dtype=np.int64),
        te_s=float(te_min + te_delay),
        tr_s=float(n_sl * tr_min + tr_delay),
        trajectory="radial",
        scanning_sequence="GR",
        sequence_variant="SP",
        sequence_name="radfl2d",
        spoke_angles_rad=angles,
    )
