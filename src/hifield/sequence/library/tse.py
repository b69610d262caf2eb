"""Spin echo, turbo spin echo (CPMG echo train, effective-TE ordering) and inversion-recovery TSE (FLAIR, STIR)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hifield._pypulseq import import_pypulseq
from hifield.errors import ConfigError, SequenceError
from hifield.sequence._design import build_protocol, ceil_to, delay_to_reach, require_time
from hifield.sequence.built import BuiltSequence
from hifield.sequence.library._blocks import (
    add_delay,
    add_gradients,
    cache_rf_shapes,
    finish_sequence,
    k1_areas,
    labels,
    make_readout,
    place_on_slice,
    play_readout,
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

_SE_SPECS: dict[str, FieldSpec] = {
    **SLICE_SPECS,
    "refocusing_angle_rad": FieldSpec("refocusing_angle_deg", 180.0 / math.pi, 60.0, 180.0, description="refocusing"),
    **REFOCUSING_DURATION_SPEC,
}


@dataclass(frozen=True, kw_only=True)
class SpinEchoProtocol(SliceProtocol):
    """2D spin echo (90 - 180 - echo), one echo per TR; defaults: T1-weighted SE at 3 T (TR 500 ms, TE 15 ms).

    Examples
    --------
    >>> round(SpinEchoProtocol().te_s * 1e3)
    15
    """

    KIND: ClassVar[str] = "se_2d"
    SPECS: ClassVar[dict[str, FieldSpec]] = _SE_SPECS

    name: str = "se_t1_2d"
    tr_s: float = 0.5
    te_s: float = 0.015
    flip_angle_rad: float = math.pi / 2
    readout_bandwidth_hz_per_pixel: float = 200.0
    refocusing_angle_rad: float = math.pi
    """Refocusing flip angle [rad]."""
    refocusing_duration_s: float = 0.004
    """Refocusing pulse duration [s]."""

    @property
    def echo_spacing(self) -> float:
        """Echo spacing [s] (equal to TE for a single echo)."""
        return self.te_s

    @property
    def echo_train_length(self) -> int:
        """Echoes per excitation (1 for spin echo)."""
        return 1

    @property
    def inversion_time(self) -> float:
        """Inversion time [s] (0: no inversion)."""
        return 0.0

    def build(self, scanner: Scanner, *, phase_encode_lines: Sequence[int] | None = None) -> BuiltSequence:
        """Build the pypulseq sequence (see :meth:`hifield.sequence.GreProtocol.build`)."""
        return build_spin_echo_train(
            self, scanner, check_lines(phase_encode_lines, self.matrix, partial_fourier=self.partial_fourier)
        )


@dataclass(frozen=True, kw_only=True)
class TseProtocol(SpinEchoProtocol):
    """2D turbo spin echo: CPMG echo train, k-space ordered so the centre line falls on the effective TE.

    Defaults: T2-weighted TSE at 3 T, TR 4000 ms, effective TE 96 ms (8th of 16 echoes at 12 ms spacing).
    """

    KIND: ClassVar[str] = "tse_2d"
    SPECS: ClassVar[dict[str, FieldSpec]] = {
        **_SE_SPECS,
        "echo_train_length": FieldSpec("echo_train_length", 1.0, 1, 256, integer=True, description="echo train"),
        "echo_spacing_s": FieldSpec("echo_spacing_ms", 1e3, 2.0, 100.0, description="echo spacing"),
    }

    name: str = "tse_t2_2d"
    tr_s: float = 4.0
    te_s: float = 0.096
    echo_train_length: int = 16
    """Echoes per excitation."""
    echo_spacing_s: float = 0.012
    """Time between refocusing pulses (and echoes) [s]; TE must be a whole multiple of it."""

    @property
    def echo_spacing(self) -> float:
        """Echo spacing [s]."""
        return self.echo_spacing_s

    def _validate_relations(self) -> None:
        ratio = self.te_s / self.echo_spacing_s
        if abs(ratio - round(ratio)) > 1e-3 or not 1 <= round(ratio) <= self.echo_train_length:
            raise ConfigError(
                f"te_ms = {self.te_s * 1e3:g} must be a whole multiple (1..echo_train_length = "
                f"{self.echo_train_length}) of echo_spacing_ms = {self.echo_spacing_s * 1e3:g}"
            )


@dataclass(frozen=True, kw_only=True)
class IrTseProtocol(TseProtocol):
    """Inversion-recovery TSE: a slice-selective 180 degree inversion TI before each echo train (FLAIR, STIR).

    Defaults: FLAIR at 3 T, TR 9000 ms, TI 2500 ms nulls CSF (T1 about 4.3 s: TI = T1 ln(2 / (1 + exp(-TR/T1))) =
    2.48 s), effective TE 96 ms.
    """

    KIND: ClassVar[str] = "ir_tse_2d"
    SPECS: ClassVar[dict[str, FieldSpec]] = {
        **TseProtocol.SPECS,
        "ti_s": FieldSpec("ti_ms", 1e3, 10.0, 10000.0, description="inversion time"),
    }

    name: str = "flair_2d"
    tr_s: float = 9.0
    ti_s: float = 2.5
    """Inversion time, inversion centre to excitation centre [s]."""

    @property
    def inversion_time(self) -> float:
        """Inversion time [s]."""
        return self.ti_s


def order_lines_for_train(lines: list[int], matrix: int, etl: int, centre_echo: int) -> list[list[int | None]]:
    """Split lines into shots of ``etl`` echoes so the line nearest the k-space centre falls on ``centre_echo``.

    Lines are sorted by k1 and cut into ``etl`` contiguous segments (segment j holds a band of k1); segment j is
    acquired at echo ``(j - j_centre + centre_echo) mod etl`` of each shot (linear ordering shifted to the effective
    echo). Missing entries (``None``) are echoes played without ADC when the line count is not a multiple of ``etl``.

    Examples
    --------
    >>> order_lines_for_train(list(range(8)), 8, 4, 1)
    [[2, 4, 6, 0], [3, 5, 7, 1]]
    """
    ordered = sorted(lines)
    n_shots = math.ceil(len(ordered) / etl)
    segments = [ordered[j * n_shots : (j + 1) * n_shots] for j in range(etl)]
    centre = min(ordered, key=lambda k: (abs(k - matrix // 2), k))
    j_centre = next(j for j, seg in enumerate(segments) if centre in seg)
    shots: list[list[int | None]] = [[None] * etl for _ in range(n_shots)]
    for j, seg in enumerate(segments):
        echo = (j - j_centre + centre_echo) % etl
        for shot, line in enumerate(seg):
            shots[shot][echo] = line
    # the centre line must sit in a shot at the centre echo: rotate segment order within its shot if needed
    return shots


def build_spin_echo_train(p: SpinEchoProtocol, scanner: Scanner, lines: list[int]) -> BuiltSequence:
    """Build SE / TSE / IR-TSE for ``p`` playing ``lines`` (see :class:`TseProtocol`)."""
    return build_protocol(_design, p, scanner, lines)


def _design(p: SpinEchoProtocol, scanner: Scanner, lines: list[int], system: Any, *, strict: bool) -> BuiltSequence:
    pp = import_pypulseq()

    etl = int(p.echo_train_length)
    esp = p.echo_spacing
    centre_echo = round(p.te_s / esp) - 1
    seq = pp.Sequence(system=system)
    rf_exc, gz_exc, gzr_exc = sinc_pulse(
        pp,
        system,
        flip_rad=p.flip_angle_rad,
        duration_s=p.rf_duration_s,
        tbw=p.rf_time_bandwidth,
        thickness_m=p.slice_thickness_m,
        use="excitation",
        phase_rad=math.pi / 2,
    )
    rf_ref, gz_ref, _ = sinc_pulse(
        pp,
        system,
        flip_rad=p.refocusing_angle_rad,
        duration_s=p.refocusing_duration_s,
        tbw=p.rf_time_bandwidth,
        thickness_m=p.slice_thickness_m,
        use="refocusing",
    )
    ro = make_readout(
        pp, system, fov_m=p.fov_m, matrix=p.matrix, bandwidth_hz_per_pixel=p.readout_bandwidth_hz_per_pixel
    )
    crusher = 4.0 / p.slice_thickness_m  # 4 cycles per slice thickness on each side of every refocusing pulse
    max_pe = abs(k1_areas([0], p.matrix, p.fov_m)[0])
    rew_area = -(float(ro.gx.area) + ro.prephaser_area)
    t_pre = shared_duration(pp, system, ("x", ro.prephaser_area), ("x", rew_area), ("y", max_pe), ("z", crusher))
    gz_crush = trapezoid(pp, system, "z", crusher, t_pre)
    gx_pre = trapezoid(pp, system, "x", ro.prephaser_area, t_pre)
    gx_rew = trapezoid(pp, system, "x", rew_area, t_pre)
    t_exc_reph = shared_duration(pp, system, ("z", float(gzr_exc.area) + crusher))
    gz_exc_reph = trapezoid(pp, system, "z", float(gzr_exc.area) + crusher, t_exc_reph)

    d_exc = float(pp.calc_duration(rf_exc, gz_exc))
    c_exc = rf_centre_in_block(pp, rf_exc)
    d_ref = float(pp.calc_duration(rf_ref, gz_ref))
    c_ref = rf_centre_in_block(pp, rf_ref)
    d_ro = float(pp.calc_duration(ro.gx, ro.adc))
    half_a = (d_ref - c_ref) + t_pre + ro.centre_time_s  # refocusing centre -> echo
    half_b = (d_ro - ro.centre_time_s) + t_pre + c_ref  # echo -> next refocusing centre
    half_0 = (d_exc - c_exc) + t_exc_reph + c_ref  # excitation centre -> first refocusing centre
    esp_min = 2 * max(half_a, half_b, half_0)
    hint = "raise the echo spacing (TE for SE), raise the bandwidth, lower the matrix or shorten the RF pulses"
    esp_used = require_time(
        "echo spacing echo_spacing_ms" if etl > 1 else "echo time te_ms", esp, esp_min, hint, strict=strict
    )
    raster = system.block_duration_raster
    esp_actual = max(round(esp_used / raster) * raster, ceil_to(esp_min, raster))
    half = esp_actual / 2
    # half_a + half_b is a whole number of rasters, so the echo spacing is exact and the echo sits within half a
    # raster (5 us) of the midpoint between refocusing pulses
    delay_a = max(round((half - half_a) / raster) * raster, 0.0)
    delay_b = max(round((esp_actual - half_a - half_b - delay_a) / raster) * raster, 0.0)
    delay_0 = max(round((half - half_0) / raster) * raster, 0.0)

    # optional inversion
    ti = p.inversion_time
    inversion: list[Any] = []
    ir_time = 0.0
    ti_actual: float | None = None
    ti_delay = 0.0
    if ti > 0:
        rf_inv, gz_inv, _ = sinc_pulse(
            pp,
            system,
            flip_rad=math.pi,
            duration_s=p.refocusing_duration_s,
            tbw=p.rf_time_bandwidth,
            thickness_m=p.slice_thickness_m * 1.5,
            use="inversion",
        )
        spoil = 8.0 / p.slice_thickness_m
        t_sp = shared_duration(pp, system, ("z", spoil))
        gz_sp = trapezoid(pp, system, "z", spoil, t_sp)
        ti_min = float(pp.calc_duration(rf_inv, gz_inv)) - rf_centre_in_block(pp, rf_inv) + t_sp + c_exc
        ti_delay = delay_to_reach(
            "inversion time ti_ms", ti, ti_min, "raise ti_ms", system.block_duration_raster, strict=strict
        )
        ti_actual = ti_min + ti_delay
        inversion = [(rf_inv, gz_inv), (gz_sp,)] + ([(pp.make_delay(ti_delay),)] if ti_delay > 0 else [])
        ir_time = float(pp.calc_duration(rf_inv, gz_inv)) + t_sp + ti_delay

    spoil_end = 4.0 / p.slice_thickness_m
    t_end = shared_duration(pp, system, ("z", spoil_end))
    gz_end = trapezoid(pp, system, "z", spoil_end, t_end)
    train = d_exc + t_exc_reph + delay_0 + etl * (d_ref + t_pre + delay_a + d_ro + t_pre + delay_b) - delay_b
    train -= t_pre  # the last echo's rewinder is replaced by the end spoiler
    shot_min = ir_time + train + t_end
    n_sl = p.n_slices
    # multi-slice IR: the inversions of later slices are played during the TI of earlier ones (slots of one
    # inversion + one echo train each; a slice's train comes ``ir_lag`` slots after its inversion)
    ir_lag, slot_fill = 0, 0.0
    if ti > 0 and n_sl > 1:
        slot_base = ir_time - ti_delay + train + t_end
        ir_lag = max(0, int((ti_delay + 1e-9) // slot_base))
        if ir_lag > 0:
            slot_fill = max(round((ti_delay / ir_lag - slot_base) / system.block_duration_raster), 0)
            slot_fill *= system.block_duration_raster
            ti_actual = float(ti_actual or 0.0) - ti_delay + ir_lag * (slot_base + slot_fill)
            inversion = [(rf_inv, gz_inv), (gz_sp,)]
    if ir_lag > 0:
        tr_min = (n_sl + ir_lag) * (slot_base + slot_fill)
    else:
        tr_min = n_sl * shot_min
    hint = "raise tr_ms or shorten the echo train" + (" or use fewer slices" if n_sl > 1 else "")
    tr_delay = delay_to_reach(
        "repetition time tr_ms", p.tr_s, tr_min, hint, system.block_duration_raster, strict=strict
    )

    cache_rf_shapes(seq, rf_exc, rf_ref)
    shots = order_lines_for_train(lines, p.matrix, etl, centre_echo)
    positions = p.slice_positions_m
    order = interleaved_order(n_sl)
    acq_order: list[int] = []

    def play_inversion(z_m: float) -> None:
        place_on_slice(pp, inversion[0][0], inversion[0][1], z_m, 0.0)
        for blocks in inversion:
            seq.add_block(*blocks)

    def play_train(shot: list[int | None], avg: int, s: int, z_m: float) -> None:
        place_on_slice(pp, rf_exc, gz_exc, z_m, math.pi / 2)
        place_on_slice(pp, rf_ref, gz_ref, z_m, 0.0)
        seq.add_block(rf_exc, gz_exc)
        seq.add_block(gz_exc_reph)
        add_delay(seq, pp, delay_0)
        for echo, line in enumerate(shot):
            area = 0.0 if line is None else k1_areas([line], p.matrix, p.fov_m)[0]
            seq.add_block(rf_ref, gz_ref)
            gy = trapezoid(pp, system, "y", area, t_pre)
            add_gradients(seq, pp, gz_crush, gx_pre, gy)
            add_delay(seq, pp, delay_a)
            play_readout(seq, ro, None if line is None else labels(pp, LIN=line, AVG=avg, SLC=s, ECO=echo))
            if line is not None and avg == 0 and s == order[0]:
                acq_order.append(line)
            if echo < etl - 1:
                gy_r = trapezoid(pp, system, "y", -area, t_pre)
                add_gradients(seq, pp, gz_crush, gx_rew, gy_r)
                add_delay(seq, pp, delay_b)
        seq.add_block(gz_end)

    for avg in range(p.n_averages):
        for shot in shots:
            if ir_lag == 0:
                for s in order:
                    if inversion:
                        play_inversion(positions[s])
                    play_train(shot, avg, s, positions[s])
            else:
                for slot in range(n_sl + ir_lag):
                    if slot < n_sl:
                        play_inversion(positions[order[slot]])
                    else:
                        seq.add_block(pp.make_delay(ir_time - ti_delay))
                    if slot >= ir_lag:
                        s = order[slot - ir_lag]
                        play_train(shot, avg, s, positions[s])
                    else:
                        seq.add_block(pp.make_delay(train + t_end))
                    add_delay(seq, pp, slot_fill)
            add_delay(seq, pp, tr_delay)

    if sorted(acq_order) != sorted(lines):
        raise SequenceError("internal error: the echo-train ordering lost phase-encode lines; report this")
    is_ir = ti > 0
    return finish_sequence(
        seq,
        p,
        scanner,
        ro=ro,
        duration_s=float(seq.duration()[0]),
        phase_encode_lines=np.asarray(acq_order, dtype=np.int64),
        te_s=float(esp_actual * (centre_echo + 1)),
        tr_s=float(tr_min + tr_delay),
        trajectory="cartesian",
        scanning_sequence="IR\\SE" if is_ir else "SE",
        sequence_variant="SK\\SP" if is_ir else "SK",
        sequence_name=("tir2d" if is_ir else "tse2d") + (f"1_{etl}" if etl > 1 else "1"),
        ti_s=ti_actual,
        echo_train_length=etl,
        echo_spacing_s=float(esp_actual),
        time_per_line_s=float(tr_min + tr_delay) / etl,
    )
