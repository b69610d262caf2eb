"""2D balanced steady-state free precession (bSSFP / TrueFISP) as a pypulseq sequence."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hifield._pypulseq import import_pypulseq
from hifield.sequence._design import build_protocol, ceil_to, require_time
from hifield.sequence.built import BuiltSequence
from hifield.sequence.library._blocks import (
    add_gradients,
    cache_rf_shapes,
    excitation_readout_times,
    finish_sequence,
    k1_areas,
    labels,
    make_readout,
    play_excitation,
    play_readout,
    protocol_excitation,
    shared_duration,
    trapezoid,
)
from hifield.sequence.protocol import (
    DUMMY_SCANS_SPEC,
    SLICE_SPECS,
    FieldSpec,
    SliceProtocol,
    check_lines,
    interleaved_order,
)

if TYPE_CHECKING:
    from hifield.hardware.scanner import Scanner


@dataclass(frozen=True, kw_only=True)
class BssfpProtocol(SliceProtocol):
    """2D balanced SSFP: every gradient moment is zero over each TR, RF phase alternates 0/180 degrees, TE = TR/2.

    An alpha/2 pulse TR/2 before the train and ``n_dummy_scans`` dummy TRs bring the magnetisation close to the
    steady state. Defaults: cine-like bSSFP, flip 35 degrees (40-50 degrees is usual at 1.5/3 T; 35 keeps the
    5 T whole-body and 7 T head SAR under the normal-mode limits), 192 matrix over 240 mm, 6 mm slice,
    1000 Hz/pixel, about the shortest TR the normal gradient mode allows.
    """

    KIND: ClassVar[str] = "bssfp_2d"
    SPECS: ClassVar[dict[str, FieldSpec]] = {
        **{k: v for k, v in SLICE_SPECS.items() if k != "te_s"},
        **DUMMY_SCANS_SPEC,
    }

    name: str = "bssfp_2d"
    matrix: int = 192
    slice_thickness_m: float = 0.006
    tr_s: float = 0.0062
    """Repetition time [s]; TE is TR/2."""
    te_s: float = field(init=False, default=0.0)
    """Nominal echo time, TR/2 [s]: set from ``tr_s`` (not an argument, not a protocol-file key)."""
    flip_angle_rad: float = math.radians(35.0)
    readout_bandwidth_hz_per_pixel: float = 1000.0
    rf_duration_s: float = 0.001
    rf_time_bandwidth: float = 2.0
    n_dummy_scans: int = 10
    """Dummy TRs after the alpha/2 preparation."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "te_s", self.tr_s / 2)

    def build(self, scanner: Scanner, *, phase_encode_lines: Sequence[int] | None = None) -> BuiltSequence:
        """Build the pypulseq sequence (see :meth:`hifield.sequence.GreProtocol.build`)."""
        lines = check_lines(phase_encode_lines, self.matrix, partial_fourier=self.partial_fourier)
        return build_protocol(_design, self, scanner, lines)


def _design(p: BssfpProtocol, scanner: Scanner, lines: list[int], system: Any, *, strict: bool) -> BuiltSequence:
    pp = import_pypulseq()

    seq = pp.Sequence(system=system)
    rf, gz, gzr_area = protocol_excitation(pp, system, p)
    rf_half, _gz_half, _ = protocol_excitation(pp, system, p, flip_rad=p.flip_angle_rad / 2)
    ro = make_readout(
        pp, system, fov_m=p.fov_m, matrix=p.matrix, bandwidth_hz_per_pixel=p.readout_bandwidth_hz_per_pixel
    )
    rew_x = -(float(ro.gx.area) + ro.prephaser_area)
    max_pe = abs(k1_areas([0], p.matrix, p.fov_m)[0])
    t_pre = shared_duration(pp, system, ("x", ro.prephaser_area), ("x", rew_x), ("y", max_pe), ("z", gzr_area))
    gx_pre = trapezoid(pp, system, "x", ro.prephaser_area, t_pre)
    gx_rew = trapezoid(pp, system, "x", rew_x, t_pre)
    gz_reph = trapezoid(pp, system, "z", gzr_area, t_pre)
    d_exc, c_exc, d_ro = excitation_readout_times(pp, rf, gz, ro)
    before = (d_exc - c_exc) + t_pre + ro.centre_time_s  # RF centre -> echo
    after = (d_ro - ro.centre_time_s) + t_pre + c_exc  # echo -> next RF centre
    prep = d_exc + t_pre  # alpha/2 centre -> alpha centre without delay
    raster = system.block_duration_raster
    tr_min = max(2 * max(before, after), 2 * prep)
    tr = require_time(
        "repetition time tr_ms", p.tr_s, tr_min, "raise tr_ms, the bandwidth, or lower the matrix", strict=strict
    )
    tr_actual = max(round(tr / raster) * raster, ceil_to(tr_min, raster))
    delay_a = max(round((tr_actual / 2 - before) / raster) * raster, 0.0)
    delay_b = max(round((tr_actual - before - after - delay_a) / raster) * raster, 0.0)
    delay_prep = max(round((tr_actual / 2 - prep) / raster) * raster, 0.0)
    cache_rf_shapes(seq, rf, rf_half)

    n_sl = p.n_slices
    positions = p.slice_positions_m
    k = 0

    def one_tr(pe_area: float, adc_labels: list[Any] | None) -> None:
        nonlocal k
        phase = math.pi * (k % 2)
        play_excitation(seq, pp, rf, gz, phase, z_m=z_now if n_sl > 1 else None)
        gy = trapezoid(pp, system, "y", pe_area, t_pre)
        add_gradients(seq, pp, gx_pre, gy, gz_reph, duration_s=t_pre + delay_a)
        play_readout(seq, ro, adc_labels, phase_rad=phase)
        gy_r = trapezoid(pp, system, "y", -pe_area, t_pre)
        add_gradients(seq, pp, gx_rew, gy_r, gz_reph, duration_s=t_pre + delay_b)
        k += 1

    # a balanced steady state cannot be shared between slices: scanners play a bSSFP stack slice after slice,
    # each with its own alpha/2 preparation and dummy scans (interleaved slice order)
    z_now = 0.0
    for sl in interleaved_order(n_sl):
        z_now = positions[sl]
        k = 0
        # alpha/2 preparation, TR/2 before the first alpha, with the opposite phase
        play_excitation(seq, pp, rf_half, gz, math.pi, z_m=z_now if n_sl > 1 else None)
        seq.add_block(gz_reph, pp.make_delay(t_pre + delay_prep))
        for _ in range(p.n_dummy_scans):
            one_tr(0.0, None)
        for avg in range(p.n_averages):
            for line in lines:
                one_tr(k1_areas([line], p.matrix, p.fov_m)[0], labels(pp, LIN=line, AVG=avg, SLC=sl))

    return finish_sequence(
        seq,
        p,
        scanner,
        ro=ro,
        duration_s=float(sum(seq.block_durations.values())),
        phase_encode_lines=np.asarray(lines, dtype=np.int64),
        te_s=float(before + delay_a),
        tr_s=float(tr_actual),
        trajectory="cartesian",
        scanning_sequence="GR",
        sequence_variant="SS",
        sequence_name="tfi2d1",
        n_dummy_scans=p.n_dummy_scans,
    )
