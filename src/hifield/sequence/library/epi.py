"""Echo-planar imaging: single-shot and segmented, gradient echo and spin echo, as pypulseq sequences."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hifield._pypulseq import import_pypulseq
from hifield.errors import ConfigError
from hifield.sequence._design import build_protocol, ceil_to, require_time
from hifield.sequence.built import BuiltSequence
from hifield.sequence.library._blocks import (
    add_delay,
    add_gradients,
    cache_rf_shapes,
    finish_sequence,
    k1_areas,
    make_readout,
    place_on_slice,
    protocol_excitation,
    rf_centre_in_block,
    shared_duration,
    sinc_pulse,
    trapezoid,
)
from hifield.sequence.protocol import (
    REFOCUSING_DURATION_SPEC,
    SLICE_SPECS,
    FieldSpec,
    SliceProtocol,
    check_lines,
    interleaved_order,
)

if TYPE_CHECKING:
    from hifield.hardware.scanner import Scanner


@dataclass(frozen=True, kw_only=True)
class EpiProtocol(SliceProtocol):
    """2D blipped Cartesian EPI: after one excitation (per shot) the readout alternates polarity, a y blip between
    readouts steps to the next line. Readouts of negative polarity carry the ``REV`` label: reverse their samples.

    ``n_shots`` > 1 interleaves the lines (shot s plays every n_shots-th line starting at s). ``spin_echo`` adds a
    180 degree refocusing pulse at TE/2. TE is the time to the k-space centre line's centre sample.
    Defaults: single-shot GRE-EPI (fMRI-like) at 3 T, 64 x 64 over 220 mm, 3 mm slice, 2232 Hz/pixel, flip 75
    degrees, TR 2000 ms, TE 40 ms (30 ms is usual with partial Fourier or faster gradients; the normal gradient
    mode without partial Fourier reaches about 36 ms).
    """

    KIND: ClassVar[str] = "epi_2d"
    SPECS: ClassVar[dict[str, FieldSpec]] = {
        **SLICE_SPECS,
        "n_shots": FieldSpec("n_shots", 1.0, 1, 64, integer=True, description="EPI segments"),
        **REFOCUSING_DURATION_SPEC,
    }

    name: str = "epi_gre_2d"
    fov_m: float = 0.22
    matrix: int = 64
    slice_thickness_m: float = 0.003
    tr_s: float = 2.0
    """Time between shots [s]."""
    te_s: float = 0.040
    """Echo time to the k-space centre line's centre sample [s]."""
    flip_angle_rad: float = math.radians(75.0)
    readout_bandwidth_hz_per_pixel: float = 2232.0
    n_shots: int = 1
    """Segments (1 = single shot)."""
    spin_echo: bool = False
    """Spin-echo EPI (90 - 180) instead of gradient-echo EPI."""
    refocusing_duration_s: float = 0.004
    """Refocusing pulse duration (spin echo) [s]."""

    def _validate_relations(self) -> None:
        if not isinstance(self.spin_echo, bool):
            raise ConfigError(f"spin_echo must be true or false; got {self.spin_echo!r}")
        if self.n_shots > self.matrix:
            raise ConfigError(f"n_shots = {self.n_shots} exceeds the matrix {self.matrix}; allowed 1 to {self.matrix}")

    def build(self, scanner: Scanner, *, phase_encode_lines: Sequence[int] | None = None) -> BuiltSequence:
        """Build the pypulseq sequence; lines are played in increasing k1 order within each shot."""
        lines = sorted(check_lines(phase_encode_lines, self.matrix, partial_fourier=self.partial_fourier))
        return build_protocol(_design, self, scanner, lines)


def _design(p: EpiProtocol, scanner: Scanner, lines: list[int], system: Any, *, strict: bool) -> BuiltSequence:
    pp = import_pypulseq()

    seq = pp.Sequence(system=system)
    shots = [lines[s :: p.n_shots] for s in range(p.n_shots)]
    shots = [shot for shot in shots if shot]
    rf, gz, gzr_area = protocol_excitation(pp, system, p)
    if p.spin_echo:
        rf.phase_offset = math.pi / 2
    ro = make_readout(
        pp,
        system,
        fov_m=p.fov_m,
        matrix=p.matrix,
        bandwidth_hz_per_pixel=p.readout_bandwidth_hz_per_pixel,
        symmetric=True,
    )
    gx_pos = ro.gx
    gx_neg = pp.scale_grad(ro.gx, -1.0)
    max_step = max((b - a for shot in shots for a, b in itertools.pairwise(shot)), default=1)
    blip_area = max_step / p.fov_m
    t_blip = shared_duration(pp, system, ("y", blip_area))
    # the blip is centred on the readout's fall ramp (ADC off) and may extend the block
    blip_delay = ceil_to(max(gx_pos.rise_time + gx_pos.flat_time + (gx_pos.fall_time - t_blip) / 2, 0.0), 1e-5)
    blip_delay = max(blip_delay, gx_pos.rise_time + gx_pos.flat_time)
    esp = ceil_to(max(float(pp.calc_duration(gx_pos)), blip_delay + t_blip), system.block_duration_raster)

    max_first = max(abs(k1_areas([shot[0]], p.matrix, p.fov_m)[0]) for shot in shots)
    crusher = 4.0 / p.slice_thickness_m
    t_pre = shared_duration(
        pp, system, ("x", ro.prephaser_area), ("y", max_first), ("z", abs(gzr_area) + (crusher if p.spin_echo else 0.0))
    )
    gx_pre = trapezoid(pp, system, "x", ro.prephaser_area, t_pre)
    d_exc = float(pp.calc_duration(rf, gz))
    c_exc = rf_centre_in_block(pp, rf)
    centre_line = min(lines, key=lambda k: (abs(k - p.matrix // 2), k))
    centre_shot = next(s for s, shot in enumerate(shots) if centre_line in shot)
    centre_index = shots[centre_shot].index(centre_line)
    to_centre = centre_index * esp + ro.centre_time_s  # start of the echo train -> k-space centre
    raster = system.block_duration_raster
    hint = "raise te_ms, the bandwidth or n_shots, or lower the matrix"

    refocusing: list[tuple[Any, ...]] = []
    if p.spin_echo:
        rf_ref, gz_ref, _ = sinc_pulse(
            pp,
            system,
            flip_rad=math.pi,
            duration_s=p.refocusing_duration_s,
            tbw=p.rf_time_bandwidth,
            thickness_m=p.slice_thickness_m,
            use="refocusing",
        )
        t_cr = shared_duration(pp, system, ("z", crusher))
        gz_cr = trapezoid(pp, system, "z", crusher, t_cr)
        gz_first = trapezoid(pp, system, "z", gzr_area + crusher, t_cr if t_cr >= t_pre else t_pre)
        d_first = t_cr if t_cr >= t_pre else t_pre
        d_ref = float(pp.calc_duration(rf_ref, gz_ref))
        c_ref = rf_centre_in_block(pp, rf_ref)
        half_1 = (d_exc - c_exc) + d_first + c_ref
        half_2 = (d_ref - c_ref) + t_pre + to_centre
        te_min = 2 * max(half_1, half_2)
        te = require_time("echo time te_ms", p.te_s, te_min, hint, strict=strict)
        delay_1 = max(round((te / 2 - half_1) / raster) * raster, 0.0)
        delay_2 = max(round((te / 2 - half_2) / raster) * raster, 0.0)
        te_actual = half_1 + delay_1 + half_2 + delay_2
        refocusing = [(gz_first, pp.make_delay(d_first + delay_1)), (rf_ref, gz_ref)]
        pre_block_z = gz_cr
        pre_duration = max(t_pre, t_cr) + delay_2
        cache_rf_shapes(seq, rf_ref)
    else:
        te_min = (d_exc - c_exc) + t_pre + to_centre
        te = require_time("echo time te_ms", p.te_s, te_min, hint, strict=strict)
        delay = ceil_to(te - te_min, raster)
        te_actual = te_min + delay
        pre_block_z = trapezoid(pp, system, "z", gzr_area, t_pre)
        pre_duration = t_pre + delay

    spoil_z = 4.0 / p.slice_thickness_m
    spoil_x = 2.0 * p.matrix / p.fov_m
    max_last = max(abs(k1_areas([shot[-1]], p.matrix, p.fov_m)[0]) for shot in shots)
    t_sp = shared_duration(pp, system, ("z", spoil_z), ("x", spoil_x), ("y", max_last))
    gz_sp = trapezoid(pp, system, "z", spoil_z, t_sp)
    gx_sp = trapezoid(pp, system, "x", spoil_x, t_sp)
    longest = max(len(shot) for shot in shots)
    shot_min = d_exc + sum(float(pp.calc_duration(*blk)) for blk in refocusing) + pre_duration + longest * esp + t_sp
    n_sl = p.n_slices
    hint_tr = "raise tr_ms or shorten the echo train" + (" or use fewer slices" if n_sl > 1 else "")
    tr = require_time("repetition time tr_ms", p.tr_s, n_sl * shot_min, hint_tr, strict=strict)
    cache_rf_shapes(seq, rf)
    positions = p.slice_positions_m
    exc_phase = float(rf.phase_offset)
    slice_labels: list[Any] = []

    for avg in range(p.n_averages):
        for s, shot in enumerate(shots):
            start = sum(seq.block_durations.values())
            for sl in interleaved_order(n_sl):
                if n_sl > 1:
                    place_on_slice(pp, rf, gz, positions[sl], exc_phase)
                    if p.spin_echo:
                        place_on_slice(pp, rf_ref, gz_ref, positions[sl], 0.0)
                    slice_labels = [pp.make_label(label="SLC", type="SET", value=int(sl))]
                seq.add_block(rf, gz)
                for blk in refocusing:
                    seq.add_block(*blk)
                gy_pre = trapezoid(pp, system, "y", k1_areas([shot[0]], p.matrix, p.fov_m)[0], t_pre)
                add_gradients(seq, pp, gx_pre, gy_pre, pre_block_z, duration_s=pre_duration)
                for j, line in enumerate(shot):
                    reverse = j % 2 == 1
                    gx = gx_neg if reverse else gx_pos
                    events: list[Any] = [gx, ro.adc, pp.make_delay(esp)]
                    if j + 1 < len(shot):
                        area = (shot[j + 1] - line) / p.fov_m
                        blip = pp.make_trapezoid("y", area=area, duration=t_blip, delay=blip_delay, system=system)
                        events.append(blip)
                    events += [
                        pp.make_label(label="LIN", type="SET", value=int(line)),
                        pp.make_label(label="REV", type="SET", value=bool(reverse)),
                        pp.make_label(label="SEG", type="SET", value=int(s)),
                        pp.make_label(label="AVG", type="SET", value=int(avg)),
                        *slice_labels,
                    ]
                    seq.add_block(*events)
                gy_rew = trapezoid(pp, system, "y", -k1_areas([shot[-1]], p.matrix, p.fov_m)[0], t_sp)
                add_gradients(seq, pp, gx_sp, gy_rew, gz_sp)
            used = sum(seq.block_durations.values()) - start
            fill = round((tr - used) / raster) * raster
            add_delay(seq, pp, fill)

    acq = [line for _ in range(1) for shot in shots for line in shot]
    return finish_sequence(
        seq,
        p,
        scanner,
        ro=ro,
        duration_s=float(sum(seq.block_durations.values())),
        phase_encode_lines=np.asarray(acq, dtype=np.int64),
        te_s=float(te_actual),
        tr_s=float(ceil_to(max(tr, n_sl * shot_min), raster)),
        trajectory="cartesian",
        scanning_sequence="SE\\EP" if p.spin_echo else "GR\\EP",
        sequence_variant="SK" if p.spin_echo else "SP",
        sequence_name=("epse2d" if p.spin_echo else "epfid2d") + f"{p.n_shots}_{p.matrix}",
        echo_train_length=longest,
        echo_spacing_s=float(esp),
        time_per_line_s=float(max(tr, n_sl * shot_min)) / longest,
    )
