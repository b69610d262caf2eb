"""3D RF-spoiled gradient echo and 3D MPRAGE (inversion-prepared 3D GRE) as pypulseq sequences."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hifield.errors import ConfigError
from hifield.sequence._design import build_protocol, delay_to_reach
from hifield.sequence.built import BuiltSequence
from hifield.sequence.library._blocks import (
    add_delay,
    add_gradients,
    cache_rf_shapes,
    finish_sequence,
    gradient_echo_timing,
    k1_areas,
    labels,
    make_readout,
    play_excitation,
    protocol_excitation,
    rf_centre_in_block,
    rf_spoil_phases,
    shared_duration,
    trapezoid,
)
from hifield.sequence.protocol import RF_SPOILING_SPEC, SLAB_SPECS, FieldSpec, SlabProtocol, check_lines

if TYPE_CHECKING:
    from hifield.hardware.scanner import Scanner

_3D_SPECS: dict[str, FieldSpec] = {
    **SLAB_SPECS,
    **RF_SPOILING_SPEC,
}


@dataclass(frozen=True, kw_only=True)
class Gre3dProtocol(SlabProtocol):
    """3D RF-spoiled gradient echo (3D FLASH), slab-selective, Cartesian k1 (y) x k2 (z).

    Defaults: T1-weighted 3D FLASH at 3 T, TR 10 ms, TE 4.6 ms, flip 15 degrees (above the Ernst angle of white
    matter, arccos(exp(-10/1084)) = 7.8 degrees, for T1 contrast), 192 x 192 x 48 over 240 mm x 240 mm x 96 mm
    (1.25 mm in-plane, 2 mm partitions). k2 is the outer loop.
    """

    KIND: ClassVar[str] = "gre_3d"
    SPECS: ClassVar[dict[str, FieldSpec]] = _3D_SPECS

    name: str = "gre_t1_3d"
    matrix: int = 192
    tr_s: float = 0.010
    flip_angle_rad: float = math.radians(15.0)
    rf_duration_s: float = 0.001
    """Slab-selective sinc duration [s]."""
    rf_time_bandwidth: float = 6.0
    """Time-bandwidth product of the slab pulse."""
    rf_spoiling_increment_deg: float = 117.0
    """RF spoiling increment [degree]."""

    def build(
        self,
        scanner: Scanner,
        *,
        phase_encode_lines: Sequence[int] | None = None,
        partition_lines: Sequence[int] | None = None,
    ) -> BuiltSequence:
        """Build the sequence playing k1 ``phase_encode_lines`` for each k2 in ``partition_lines`` (None = all)."""
        lines = check_lines(phase_encode_lines, self.matrix, partial_fourier=self.partial_fourier)
        partitions = check_lines(partition_lines, self.n_partitions)
        return build_gre_3d(self, scanner, lines, partitions)


@dataclass(frozen=True, kw_only=True)
class MprageProtocol(Gre3dProtocol):
    """3D MPRAGE: a non-selective adiabatic-free 180 degree inversion, then one k1 line train per k2 partition.

    Timing after the ADNI 3 T protocol: inversion every 2300 ms, TI 900 ms (inversion to the excitation of the
    centre k1 line), flip 9 degrees; echo spacing (GRE TR) 7.5 ms and TE 3.6 ms (ADNI: 7.1 and 3.0 ms; the
    shortest this design reaches in the normal gradient mode); resolution reduced from ADNI's 1 x 1 x 1.2 mm to
    128 x 128 x 64 over 240 x 240 x 160 mm to keep it quick to simulate.
    """

    KIND: ClassVar[str] = "mprage_3d"
    SPECS: ClassVar[dict[str, FieldSpec]] = {
        **_3D_SPECS,
        "ti_s": FieldSpec("ti_ms", 1e3, 50.0, 5000.0, description="inversion time"),
        "inversion_repetition_s": FieldSpec(
            "inversion_repetition_ms", 1e3, 100.0, 20000.0, description="inversion repetition time"
        ),
    }

    name: str = "mprage_3d"
    matrix: int = 128
    n_partitions: int = 64
    slab_thickness_m: float = 0.16
    tr_s: float = 0.0075
    te_s: float = 0.0036
    flip_angle_rad: float = math.radians(9.0)
    readout_bandwidth_hz_per_pixel: float = 240.0
    rf_duration_s: float = 0.0005
    """Slab-selective sinc duration [s]."""
    ti_s: float = 0.9
    """Inversion time: inversion centre to the excitation of the centre k1 line [s]."""
    inversion_repetition_s: float = 2.3
    """Time between inversions (the "TR" of MPRAGE) [s]."""

    def _validate_relations(self) -> None:
        train = self.matrix * self.tr_s
        if train >= self.inversion_repetition_s:
            raise ConfigError(
                f"inversion_repetition_ms = {self.inversion_repetition_s * 1e3:g} must exceed the GRE train "
                f"matrix x tr_ms = {train * 1e3:g} ms; raise it or lower the matrix"
            )


def build_gre_3d(p: Gre3dProtocol, scanner: Scanner, lines: list[int], partitions: list[int]) -> BuiltSequence:
    """Build a 3D GRE or MPRAGE (see :class:`Gre3dProtocol`)."""
    return build_protocol(_design, p, scanner, lines, partitions)


def _design(
    p: Gre3dProtocol, scanner: Scanner, lines: list[int], partitions: list[int], system: Any, *, strict: bool
) -> BuiltSequence:
    import pypulseq as pp

    mprage = isinstance(p, MprageProtocol)
    seq = pp.Sequence(system=system)
    rf, gz, gzr_area = protocol_excitation(pp, system, p)
    ro = make_readout(
        pp, system, fov_m=p.fov_m, matrix=p.matrix, bandwidth_hz_per_pixel=p.readout_bandwidth_hz_per_pixel
    )
    max_pe = abs(k1_areas([0], p.matrix, p.fov_m)[0])
    kz = dict(zip(partitions, k1_areas(partitions, p.n_partitions, p.slab_thickness_m), strict=True))
    max_kz = abs(k1_areas([0], p.n_partitions, p.slab_thickness_m)[0])
    t_pre = shared_duration(pp, system, ("x", ro.prephaser_area), ("y", max_pe), ("z", abs(gzr_area) + max_kz))
    spoil_x = 2.0 * p.matrix / p.fov_m
    spoil_z = p.n_partitions / p.slab_thickness_m  # one cycle per partition thickness
    t_spoil = shared_duration(pp, system, ("x", spoil_x), ("y", max_pe), ("z", spoil_z + max_kz))
    gx_pre = trapezoid(pp, system, "x", ro.prephaser_area, t_pre)
    gx_spoil = trapezoid(pp, system, "x", spoil_x, t_spoil)
    d_exc, c_exc, d_ro, te_min, te_delay = gradient_echo_timing(pp, system, p, rf, gz, ro, t_pre, strict=strict)
    tr_min = d_exc + t_pre + te_delay + d_ro + t_spoil
    tr_delay = delay_to_reach(
        "repetition time tr_ms",
        p.tr_s,
        tr_min,
        "raise tr_ms or shorten te_ms",
        system.block_duration_raster,
        strict=strict,
    )
    tr_actual = tr_min + tr_delay

    # inversion (MPRAGE): non-selective hard 180 pulse, spoiler, TI delay to the centre line's excitation
    inversion: list[tuple[Any, ...]] = []
    ti_actual: float | None = None
    shot_delay = 0.0
    centre_index = min(range(len(lines)), key=lambda i: (abs(lines[i] - p.matrix // 2), i))
    if mprage:
        assert isinstance(p, MprageProtocol)
        rf_inv = pp.make_block_pulse(
            flip_angle=math.pi, duration=1e-3, delay=system.rf_dead_time, system=system, use="inversion"
        )
        spoil = 8.0 * p.n_partitions / p.slab_thickness_m
        t_sp = shared_duration(pp, system, ("z", spoil))
        gz_sp = trapezoid(pp, system, "z", spoil, t_sp)
        d_inv = float(pp.calc_duration(rf_inv))
        ti_min = (d_inv - rf_centre_in_block(pp, rf_inv)) + t_sp + centre_index * tr_actual + c_exc
        ti_delay = delay_to_reach(
            "inversion time ti_ms",
            p.ti_s,
            ti_min,
            "raise ti_ms or use fewer k1 lines",
            system.block_duration_raster,
            strict=strict,
        )
        ti_actual = ti_min + ti_delay
        inversion = [(rf_inv,), (gz_sp,)] + ([(pp.make_delay(ti_delay),)] if ti_delay > 0 else [])
        shot_min = d_inv + t_sp + ti_delay + len(lines) * tr_actual
        shot_delay = delay_to_reach(
            "inversion repetition inversion_repetition_ms",
            p.inversion_repetition_s,
            shot_min,
            "raise inversion_repetition_ms or shorten ti_ms",
            system.block_duration_raster,
            strict=strict,
        )

    cache_rf_shapes(seq, rf)
    n_exc = p.n_averages * len(lines) * len(partitions)
    phases = rf_spoil_phases(n_exc, p.rf_spoiling_increment_deg)
    k = 0
    for avg in range(p.n_averages):
        for par in partitions:
            for blocks in inversion:
                seq.add_block(*blocks)
            for line in lines:
                play_excitation(seq, pp, rf, gz, phases[k], adc=ro.adc)
                gy = trapezoid(pp, system, "y", k1_areas([line], p.matrix, p.fov_m)[0], t_pre)
                gz_pre = trapezoid(pp, system, "z", gzr_area + kz[par], t_pre)
                # TE and TR delays ride in the prephaser and spoiler blocks (fewer blocks, same timing)
                add_gradients(seq, pp, gx_pre, gy, gz_pre, duration_s=t_pre + te_delay)
                seq.add_block(ro.gx, ro.adc, *labels(pp, LIN=line, PAR=par, AVG=avg))
                gy_r = trapezoid(pp, system, "y", -k1_areas([line], p.matrix, p.fov_m)[0], t_spoil)
                gz_r = trapezoid(pp, system, "z", spoil_z - kz[par], t_spoil)
                add_gradients(seq, pp, gx_spoil, gy_r, gz_r, duration_s=t_spoil + tr_delay)
                k += 1
            add_delay(seq, pp, shot_delay)

    # one more k1 line costs a TR per partition; in MPRAGE the inversion repetition fixes the scan time
    per_line = 0.0 if mprage else tr_actual * len(partitions)
    return finish_sequence(
        seq,
        p,
        scanner,
        ro=ro,
        duration_s=float(seq.duration()[0]),
        phase_encode_lines=np.asarray(lines, dtype=np.int64),
        te_s=float(te_min + te_delay),
        tr_s=float(tr_actual),
        trajectory="cartesian",
        scanning_sequence="IR\\GR" if mprage else "GR",
        sequence_variant="SP\\MP" if mprage else "SP",
        sequence_name="tfl3d1" if mprage else "fl3d1",
        ti_s=ti_actual,
        partition_lines=np.asarray(partitions, dtype=np.int64),
        time_per_line_s=per_line,
    )
