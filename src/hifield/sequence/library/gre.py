"""2D RF-spoiled gradient echo (FLASH): the protocol and its pypulseq sequence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from hifield._pypulseq import import_pypulseq
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
    place_on_slice,
    play_readout,
    protocol_excitation,
    rf_spoil_phases,
    shared_duration,
    spoiler_areas,
    trapezoid,
)
from hifield.sequence.protocol import (
    DUMMY_SCANS_SPEC,
    RF_SPOILING_SPEC,
    SLICE_SPECS,
    FieldSpec,
    SliceProtocol,
    check_lines,
    interleaved_order,
)

if TYPE_CHECKING:
    from hifield.hardware.scanner import Scanner


@dataclass(frozen=True, kw_only=True)
class GreProtocol(SliceProtocol):
    """2D RF-spoiled gradient echo (FLASH), T1-weighted, one slice, Cartesian (readout x, phase encode y).

    Defaults (those of :class:`~hifield.sequence.protocol.ImagingProtocol`) are a clinically typical T1-weighted 2D
    FLASH at 3 T as run in routine brain protocols: TR 250 ms with a 70 degree flip angle (near the Ernst angle of
    grey/white matter with T1 1.1-1.8 s, which maximises T1 contrast at this TR), TE 4.6 ms (short enough for little
    T2* weighting and close to the second water/fat in-phase echo at 3 T, 4.6 ms), 260 Hz/pixel receiver bandwidth,
    240 mm FOV, 256 matrix (0.94 mm pixels), 5 mm slice, a 2 ms Hanning-apodised sinc excitation (time-bandwidth 4),
    117 degree quadratic RF spoiling (Zur et al., MRM 1991;21:251).

    Examples
    --------
    >>> import math
    >>> p = GreProtocol()
    >>> round(p.te_s * 1e3, 1), round(p.tr_s * 1e3), round(math.degrees(p.flip_angle_rad))
    (4.6, 250, 70)
    >>> GreProtocol(te_s=-1.0)
    Traceback (most recent call last):
    ...
    hifield.errors.ConfigError: echo time te_s = -1 (te_ms = -1000) is outside the allowed range 0.5 to 1000 (te_ms)
    """

    KIND: ClassVar[str] = "gre_2d"
    SPECS: ClassVar[dict[str, FieldSpec]] = {
        **SLICE_SPECS,
        **RF_SPOILING_SPEC,
        **DUMMY_SCANS_SPEC,
    }

    name: str = "gre_t1_2d"
    """Protocol name."""
    rf_spoiling_increment_deg: float = 117.0
    """Quadratic RF spoiling phase increment [degree] (0 disables RF spoiling)."""
    n_dummy_scans: int = 0
    """TRs played without ADC before the first line (steady-state preparation)."""

    def build(self, scanner: Scanner, *, phase_encode_lines: Sequence[int] | None = None) -> BuiltSequence:
        """Build the pypulseq sequence on ``scanner``.

        Parameters
        ----------
        scanner
            The scanner; sequence design uses its limits with a small safety margin.
        phase_encode_lines
            k1 indices (0..matrix-1, k-space centre at ``matrix // 2``) to acquire, in acquisition order;
            ``None`` acquires every line in linear order. Only these lines are played, so the duration falls
            with acceleration.

        Returns
        -------
        BuiltSequence
            The sequence and the facts a simulator, reconstruction and DICOM writer need.

        Raises
        ------
        SequenceError
            If TE or TR is too short for the requested readout, or pypulseq cannot build it.
        HardwareLimitError
            If the protocol needs more gradient than the scanner has (e.g. a tiny FOV at a high bandwidth).
        """
        lines = check_lines(phase_encode_lines, self.matrix, partial_fourier=self.partial_fourier)
        return build_gre_2d(self, scanner, lines)


def build_gre_2d(protocol: GreProtocol, scanner: Scanner, lines: list[int]) -> BuiltSequence:
    """Build a 2D RF-spoiled GRE playing the k1 ``lines`` in order (see :meth:`GreProtocol.build`)."""
    return build_protocol(_design_gre_2d, protocol, scanner, lines)


def _design_gre_2d(
    p: GreProtocol, scanner: Scanner, lines: list[int], system: Any, *, strict: bool = True
) -> BuiltSequence:
    pp = import_pypulseq()

    seq = pp.Sequence(system=system)
    rf, gz, gzr_area = protocol_excitation(pp, system, p)
    ro = make_readout(
        pp, system, fov_m=p.fov_m, matrix=p.matrix, bandwidth_hz_per_pixel=p.readout_bandwidth_hz_per_pixel
    )
    pe_areas = k1_areas(lines, p.matrix, p.fov_m)
    max_pe = max((abs(a) for a in k1_areas([0, p.matrix - 1], p.matrix, p.fov_m)), default=0.0)

    t_pre = shared_duration(pp, system, ("x", ro.prephaser_area), ("y", max_pe), ("z", gzr_area))
    spoil_x, spoil_z = spoiler_areas(p)
    t_spoil = shared_duration(pp, system, ("x", spoil_x), ("y", max_pe), ("z", spoil_z))
    gx_pre = trapezoid(pp, system, "x", ro.prephaser_area, t_pre)
    gz_reph = trapezoid(pp, system, "z", gzr_area, t_pre)
    gx_spoil = trapezoid(pp, system, "x", spoil_x, t_spoil)
    gz_spoil = trapezoid(pp, system, "z", spoil_z, t_spoil)

    d_exc, _, d_ro, te_min, te_delay = gradient_echo_timing(
        pp,
        system,
        p,
        rf,
        gz,
        ro,
        t_pre,
        strict=strict,
        hint="raise te_ms, raise the bandwidth, shorten the RF pulse or lower the matrix",
    )
    slice_time = d_exc + t_pre + te_delay + d_ro + t_spoil
    tr_min = p.n_slices * slice_time
    hint = "raise tr_ms, shorten te_ms or use fewer slices" if p.n_slices > 1 else "raise tr_ms or shorten te_ms"
    tr_delay = delay_to_reach(
        "repetition time tr_ms", p.tr_s, tr_min, hint, system.block_duration_raster, strict=strict
    )
    te_actual = te_min + te_delay
    tr_actual = tr_min + tr_delay

    positions = p.slice_positions_m
    order = interleaved_order(p.n_slices)
    cache_rf_shapes(seq, rf)
    n_exc = (p.n_dummy_scans + p.n_averages * len(lines)) * p.n_slices
    phases = rf_spoil_phases(n_exc, p.rf_spoiling_increment_deg)

    def one_tr(k: int, pe_area: float, adc_labels: list[Any] | None, z_m: float = 0.0) -> None:
        place_on_slice(pp, rf, gz, z_m, phases[k])
        seq.add_block(rf, gz)
        gy_pre = trapezoid(pp, system, "y", pe_area, t_pre)
        add_gradients(seq, pp, gx_pre, gy_pre, gz_reph)
        add_delay(seq, pp, te_delay)
        play_readout(seq, ro, adc_labels, phase_rad=phases[k])
        gy_rew = trapezoid(pp, system, "y", -pe_area, t_spoil)
        add_gradients(seq, pp, gx_spoil, gy_rew, gz_spoil)

    def tr_end() -> None:
        add_delay(seq, pp, tr_delay)

    k = 0
    for _ in range(p.n_dummy_scans):
        for s in order:
            one_tr(k, 0.0, None, positions[s])
            k += 1
        tr_end()
    for avg in range(p.n_averages):
        for line, area in zip(lines, pe_areas, strict=True):
            for s in order:
                one_tr(k, area, labels(pp, LIN=line, AVG=avg, SLC=s), positions[s])
                k += 1
            tr_end()

    return finish_sequence(
        seq,
        p,
        scanner,
        ro=ro,
        duration_s=float(seq.duration()[0]),
        phase_encode_lines=np.asarray(lines, dtype=np.int64),
        te_s=float(te_actual),
        tr_s=float(tr_actual),
        trajectory="cartesian",
        scanning_sequence="GR",
        sequence_variant="SP",
        sequence_name="fl2d1",
        n_dummy_scans=p.n_dummy_scans,
    )
