"""3D RF-spoiled gradient echo and 3D MPRAGE (inversion-prepared 3D GRE) as pypulseq sequences."""

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
        plane_points: Sequence[Sequence[int]] | None = None,
    ) -> BuiltSequence:
        """Build the sequence playing k1 ``phase_encode_lines`` for each k2 in ``partition_lines`` (None = all).

        ``plane_points`` instead gives the (k2, k1) pairs of a 2D phase-encode pattern (Poisson disc, CAIPIRINHA):
        a 3D GRE plays them in the given order, one per TR; an MPRAGE groups them into inversion-prepared trains
        of at most ``matrix`` points (:func:`hifield.sampling.segment_trains`), so it plays fewer inversions.
        """
        if plane_points is not None:
            if phase_encode_lines is not None or partition_lines is not None:
                raise ConfigError("give plane_points or phase_encode_lines/partition_lines, not both")
            return build_gre_3d(self, scanner, self._plane_trains(plane_points), plane=True)
        lines = check_lines(phase_encode_lines, self.matrix, partial_fourier=self.partial_fourier)
        partitions = check_lines(partition_lines, self.n_partitions)
        return build_gre_3d(self, scanner, [[(par, line) for line in lines] for par in partitions], plane=False)

    def _plane_trains(self, plane_points: Sequence[Sequence[int]]) -> list[list[tuple[int, int]]]:
        """The (k2, k1) points, validated, as the trains this family plays them in."""
        pts = np.asarray(plane_points, dtype=np.float64).reshape(-1, 2) if len(plane_points) else np.zeros((0, 2))
        if pts.shape[0] == 0 or not np.all(pts == np.round(pts)):
            raise ConfigError("plane_points must be a non-empty list of integer (k2, k1) pairs")
        k2, k1 = check_lines(pts[:, 0].tolist(), self.n_partitions), check_lines(pts[:, 1].tolist(), self.matrix)
        pairs = np.stack([np.asarray(k2), np.asarray(k1)], axis=1).astype(np.int64)
        if np.unique(pairs, axis=0).shape[0] != pairs.shape[0]:
            raise ConfigError("plane_points repeats a (k2, k1) point; give each point once")
        return [[(int(a), int(b)) for a, b in pairs]]


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

    def _plane_trains(self, plane_points: Sequence[Sequence[int]]) -> list[list[tuple[int, int]]]:
        """The (k2, k1) points grouped into inversion-prepared trains of at most ``matrix`` points each."""
        from hifield.sampling import segment_trains

        (points,) = super()._plane_trains(plane_points)
        trains = segment_trains(np.asarray(points, dtype=np.int64), train_length=int(self.matrix))
        return [[(int(a), int(b)) for a, b in train] for train in trains]

    def _validate_relations(self) -> None:
        train = self.matrix * self.tr_s
        if train >= self.inversion_repetition_s:
            raise ConfigError(
                f"inversion_repetition_ms = {self.inversion_repetition_s * 1e3:g} must exceed the GRE train "
                f"matrix x tr_ms = {train * 1e3:g} ms; raise it or lower the matrix"
            )


def build_gre_3d(
    p: Gre3dProtocol, scanner: Scanner, trains: list[list[tuple[int, int]]], *, plane: bool
) -> BuiltSequence:
    """Build a 3D GRE or MPRAGE (see :class:`Gre3dProtocol`) playing ``trains`` of (k2, k1) points.

    A train is the run of readouts after one inversion (MPRAGE) or one partition's k1 loop (``plane=False``: the
    rectangular partitions x lines grid); ``plane=True`` records the points as a 2D (k2, k1) pattern.
    """
    return build_protocol(_design, p, scanner, trains, plane)


def _centre_position(p: Gre3dProtocol, trains: list[list[tuple[int, int]]]) -> tuple[int, int]:
    """(train, index) of the readout nearest the k-space centre: the one an MPRAGE's inversion time points at."""
    c2, c1 = p.n_partitions // 2, p.matrix // 2
    with_centre = [t for t, train in enumerate(trains) if (c2, c1) in train]
    t = with_centre[0] if with_centre else 0
    train = trains[t]
    return t, min(range(len(train)), key=lambda i: (abs(train[i][1] - c1), abs(train[i][0] - c2), i))


def _design(
    p: Gre3dProtocol,
    scanner: Scanner,
    trains: list[list[tuple[int, int]]],
    plane: bool,
    system: Any,
    *,
    strict: bool,
) -> BuiltSequence:
    pp = import_pypulseq()

    mprage = isinstance(p, MprageProtocol)
    seq = pp.Sequence(system=system)
    rf, gz, gzr_area = protocol_excitation(pp, system, p)
    ro = make_readout(
        pp, system, fov_m=p.fov_m, matrix=p.matrix, bandwidth_hz_per_pixel=p.readout_bandwidth_hz_per_pixel
    )
    max_pe = abs(k1_areas([0], p.matrix, p.fov_m)[0])
    partitions = sorted({par for train in trains for par, _ in train})
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
    _, centre_index = _centre_position(p, trains)
    longest = max(len(train) for train in trains)
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
        shot_min = d_inv + t_sp + ti_delay + longest * tr_actual
        shot_delay = delay_to_reach(
            "inversion repetition inversion_repetition_ms",
            p.inversion_repetition_s,
            shot_min,
            "raise inversion_repetition_ms or shorten ti_ms",
            system.block_duration_raster,
            strict=strict,
        )

    cache_rf_shapes(seq, rf)
    n_exc = p.n_averages * sum(len(train) for train in trains)
    phases = rf_spoil_phases(n_exc, p.rf_spoiling_increment_deg)
    k = 0
    for avg in range(p.n_averages):
        for train in trains:
            for blocks in inversion:
                seq.add_block(*blocks)
            for par, line in train:
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
            # a shorter train waits longer: every inversion repeats after the same time
            add_delay(seq, pp, shot_delay + ((longest - len(train)) * tr_actual if mprage else 0.0))

    played = [point for train in trains for point in train]
    if plane:  # every readout is its own (k2, k1) point, one TR each
        lines = [line for _, line in played]
        partition_order = [par for par, _ in played]
        per_line = 0.0 if mprage else tr_actual
    else:  # the rectangular grid: the k1 loop of one train, the partitions as the outer loop
        lines = [line for _, line in trains[0]]
        partition_order = [train[0][0] for train in trains]
        # one more k1 line costs a TR per partition; in MPRAGE the inversion repetition fixes the scan time
        per_line = 0.0 if mprage else tr_actual * len(partition_order)
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
        partition_lines=np.asarray(partition_order, dtype=np.int64),
        time_per_line_s=per_line,
        plane_points=np.asarray(played, dtype=np.int64).reshape(-1, 2) if plane else None,
    )
