"""Building blocks shared by the sequence library: excitation, Cartesian readout, phase encoding, spoiling."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from hifield.errors import ConfigError
from hifield.sequence._design import ceil_to, delay_to_reach, round_to

if TYPE_CHECKING:
    from hifield.hardware.scanner import Scanner
    from hifield.sequence.built import BuiltSequence
    from hifield.sequence.protocol import ImagingProtocol


@dataclass(frozen=True)
class Readout:
    """A Cartesian readout: gradient ``gx`` with the ``adc`` centred so that sample ``n // 2`` sits at k = 0."""

    gx: Any
    """Readout trapezoid (pypulseq event)."""
    adc: Any
    """ADC event (delay relative to the start of ``gx``)."""
    prephaser_area: float
    """Area the prephaser needs so that k = 0 falls on sample ``n_samples // 2`` [1/m]."""
    n_samples: int
    """Samples per readout."""
    dwell_s: float
    """Dwell time [s]."""
    centre_time_s: float
    """Time of the k-space centre sample from the start of the block holding ``gx`` [s]."""
    pixel_bandwidth_hz: float
    """Actual bandwidth per pixel [Hz] after dwell rounding."""
    oversampling: int = 1
    """Readout oversampling."""


def make_readout(
    pp: Any,
    system: Any,
    *,
    fov_m: float,
    matrix: int,
    bandwidth_hz_per_pixel: float,
    oversampling: int = 1,
    channel: str = "x",
    sign: float = 1.0,
    symmetric: bool = False,
) -> Readout:
    """Design a Cartesian readout with k-space centre on sample ``n // 2``.

    ``delta_k = 1 / fov``; the ``matrix * oversampling`` samples cover ``matrix / fov`` in k. With
    ``symmetric=True`` the dwell time is nudged (by at most a few hundred ns) so the ADC sits exactly in the middle
    of the flat top; a readout of the opposite polarity then samples the same k grid in reverse order (EPI).
    """
    n = matrix * oversampling
    dwell = round_to(1.0 / (bandwidth_hz_per_pixel * matrix * oversampling), system.adc_raster_time)
    if symmetric:
        step = 2 * system.rf_raster_time  # ADC duration a multiple of 2 us: its centring delay is on the 1 us raster
        candidates = [dwell + k * system.adc_raster_time for k in range(-20, 21)]
        candidates = [d for d in candidates if d > 0 and abs(n * d / step - round(n * d / step)) < 1e-6]
        if candidates:
            dwell = min(candidates, key=lambda d: abs(d - dwell))
    if dwell <= 0:
        raise ConfigError(
            f"readout_bandwidth_hz_per_pixel = {bandwidth_hz_per_pixel:g} is too high for the ADC raster "
            f"{system.adc_raster_time * 1e9:g} ns; lower the bandwidth"
        )
    adc_duration = n * dwell
    flat_time = ceil_to(adc_duration, system.grad_raster_time)
    delta_k = 1.0 / fov_m
    amplitude = sign * (n / oversampling) * delta_k / adc_duration  # Hz/m: matrix * dk covered during the ADC
    gx = pp.make_trapezoid(channel=channel, amplitude=amplitude, flat_time=flat_time, system=system)
    # pypulseq requires ADC delays on the RF raster (1 us)
    adc_delay = round_to(gx.rise_time + (flat_time - adc_duration) / 2, system.rf_raster_time)
    adc_delay = max(adc_delay, system.adc_dead_time)  # float noise must not put it a hair below the dead time
    adc = pp.make_adc(num_samples=n, dwell=dwell, delay=adc_delay, system=system)
    centre_time = adc_delay + (n // 2 + 0.5) * dwell
    # k at the centre sample = prephaser + rise area + amplitude * (time into the flat top)
    rise_area = 0.5 * gx.amplitude * gx.rise_time
    k_centre_without_pre = rise_area + gx.amplitude * (centre_time - gx.rise_time)
    return Readout(
        gx=gx,
        adc=adc,
        prephaser_area=-k_centre_without_pre,
        n_samples=n,
        dwell_s=dwell,
        centre_time_s=centre_time,
        pixel_bandwidth_hz=1.0 / (matrix * oversampling * dwell),
        oversampling=oversampling,
    )


def shortest_trapezoid_duration(pp: Any, system: Any, channel: str, area: float) -> float:
    """Duration [s] of the shortest trapezoid with ``area`` [1/m] within ``system`` limits."""
    if abs(area) < 1e-9:
        return 0.0
    max_grad = getattr(system, "hifield_free_max_grad", system.max_grad)
    return float(pp.calc_duration(pp.make_trapezoid(channel=channel, area=area, max_grad=max_grad, system=system)))


def shared_duration(pp: Any, system: Any, *gradients: tuple[str, float]) -> float:
    """Shortest duration on the gradient raster in which every ``(channel, area [1/m])`` trapezoid fits.

    For blocks that play several gradients together (prephasers with a phase encode and a slice rephaser, spoilers
    on two axes): build each with :func:`trapezoid` over the returned duration.
    """
    return ceil_to(
        max(shortest_trapezoid_duration(pp, system, channel, area) for channel, area in gradients),
        system.grad_raster_time,
    )


def trapezoid(pp: Any, system: Any, channel: str, area: float, duration: float) -> Any | None:
    """Trapezoid of ``area`` [1/m] lasting ``duration`` [s], or ``None`` for a zero area."""
    if abs(area) < 1e-9:
        return None
    max_grad = getattr(system, "hifield_free_max_grad", system.max_grad)
    try:
        return pp.make_trapezoid(channel=channel, area=area, duration=duration, max_grad=max_grad, system=system)
    except AssertionError:
        # pypulseq's minimum duration can exceed a raster-exact duration by float noise: use the exact step count
        steps = round(duration / system.grad_raster_time)
        exact = float(np.nextafter(steps * system.grad_raster_time, np.inf))
        return pp.make_trapezoid(channel=channel, area=area, duration=exact, max_grad=max_grad, system=system)


def add_gradients(seq: Any, pp: Any, *gradients: Any, duration_s: float | None = None) -> None:
    """Play the ``gradients`` that are present (``None``, a zero-area :func:`trapezoid`, is skipped) in one block,
    lasting at least ``duration_s`` [s] when given."""
    events = [g for g in gradients if g is not None]
    if duration_s is not None:
        events.append(pp.make_delay(duration_s))
    seq.add_block(*events)


def add_delay(seq: Any, pp: Any, delay_s: float) -> None:
    """A delay block of ``delay_s`` [s]; nothing when it is not positive."""
    if delay_s > 0:
        seq.add_block(pp.make_delay(delay_s))


def play_excitation(
    seq: Any, pp: Any, rf: Any, gz: Any, phase_rad: float, *, z_m: float | None = None, adc: Any = None
) -> None:
    """Play the excitation ``(rf, gz)`` with RF phase ``phase_rad`` [rad], moved to the slice at ``z_m`` [m] when
    given (:func:`place_on_slice`); the ``adc``, when given, takes the same phase (RF spoiling, bSSFP)."""
    rf.phase_offset = phase_rad
    if z_m is not None:
        place_on_slice(pp, rf, gz, z_m, phase_rad)
    if adc is not None:
        adc.phase_offset = phase_rad
    seq.add_block(rf, gz)


def play_readout(seq: Any, ro: Readout, adc_labels: list[Any] | None, *, phase_rad: float | None = None) -> None:
    """Play the readout gradient, with its ADC (phase ``phase_rad`` [rad] when given) and ``adc_labels`` unless
    those are ``None`` (a dummy readout: gradient only)."""
    if adc_labels is None:
        seq.add_block(ro.gx)
        return
    if phase_rad is not None:
        ro.adc.phase_offset = phase_rad
    seq.add_block(ro.gx, ro.adc, *adc_labels)


def rf_spoil_phases(n: int, increment_deg: float) -> list[float]:
    """Quadratic RF-spoiling phases [rad] for ``n`` excitations (Zur et al. 1991): phi_k = psi * k (k+1) / 2.

    Examples
    --------
    >>> [round(math.degrees(p)) for p in rf_spoil_phases(4, 117.0)]
    [0, 117, 351, 342]
    """
    return [math.radians((increment_deg * k * (k + 1) / 2.0) % 360.0) for k in range(n)]


def k1_areas(lines: list[int], matrix: int, fov_m: float) -> list[float]:
    """Phase-encode areas [1/m] for k1 indices, centre at ``matrix // 2``."""
    return [(line - matrix // 2) / fov_m for line in lines]


def labels(pp: Any, **values: int) -> list[Any]:
    """pypulseq SET labels, e.g. ``labels(pp, LIN=3, AVG=0)``."""
    return [pp.make_label(label=name, type="SET", value=int(value)) for name, value in values.items()]


def cache_rf_shapes(seq: Any, *rfs: Any) -> None:
    """Register each RF pulse's shapes once so later blocks skip pypulseq's shape compression.

    pypulseq re-compresses an RF pulse's magnitude and phase on every ``add_block`` unless the event carries
    ``shape_IDs`` (as the MATLAB Pulseq does); RF-spoiled sequences change the phase offset every TR, so this
    makes building them several times faster without changing the sequence.
    """
    for rf in rfs:
        _, shape_ids = seq.register_rf_event(rf)
        rf.shape_IDs = shape_ids


def rf_duration_on_raster(duration_s: float, system: Any) -> float:
    """An RF pulse duration rounded to the gradient raster (its slice-select flat top must lie on that raster)."""
    raster = system.grad_raster_time
    return max(raster, round(duration_s / raster) * raster)


def place_on_slice(pp: Any, rf: Any, gz: Any, z_m: float, phase_rad: float) -> None:
    """Move a slice-selective pulse to the slice centred at ``z_m`` [m]: shift its frequency by the slice-select
    gradient times ``z_m``, and its phase so that the phase at the pulse centre stays ``phase_rad``."""
    rf.freq_offset = float(gz.amplitude) * z_m
    rf.phase_offset = phase_rad - 2 * math.pi * rf.freq_offset * float(pp.calc_rf_center(rf)[0])


def sinc_pulse(
    pp: Any,
    system: Any,
    *,
    flip_rad: float,
    duration_s: float,
    tbw: float,
    thickness_m: float,
    use: str,
    phase_rad: float = 0.0,
) -> tuple[Any, Any, Any]:
    """Slice-selective Hanning-apodised sinc pulse for ``use`` (excitation, refocusing, inversion), its duration on
    the gradient raster: pypulseq's ``(rf, gz, gz_rephaser)``."""
    return pp.make_sinc_pulse(  # type: ignore[no-any-return]
        flip_angle=flip_rad,
        duration=rf_duration_on_raster(duration_s, system),
        slice_thickness=thickness_m,
        apodization=0.5,
        time_bw_product=tbw,
        phase_offset=phase_rad,
        delay=system.rf_dead_time,
        system=system,
        return_gz=True,
        use=use,
    )


def excitation(pp: Any, system: Any, *, flip_rad: float, duration_s: float, tbw: float, thickness_m: float) -> Any:
    """Slice-selective Hanning-apodised sinc excitation: ``(rf, gz, gz_rephaser_area)``."""
    rf, gz, gzr = sinc_pulse(
        pp, system, flip_rad=flip_rad, duration_s=duration_s, tbw=tbw, thickness_m=thickness_m, use="excitation"
    )
    return rf, gz, float(gzr.area)


def protocol_excitation(pp: Any, system: Any, p: ImagingProtocol, *, flip_rad: float | None = None) -> Any:
    """The excitation of protocol ``p`` (its flip angle unless ``flip_rad`` [rad], RF duration and time-bandwidth,
    over its slice or slab): ``(rf, gz, gz_rephaser_area)`` as :func:`excitation` returns."""
    thickness = p.slice_thickness_m if p.slice_thickness_m is not None else p.slab_thickness_m
    assert thickness is not None  # every protocol has a slice or a slab
    return excitation(
        pp,
        system,
        flip_rad=p.flip_angle_rad if flip_rad is None else flip_rad,
        duration_s=p.rf_duration_s,
        tbw=p.rf_time_bandwidth,
        thickness_m=thickness,
    )


def rf_centre_in_block(pp: Any, rf: Any) -> float:
    """Time of the RF pulse's centre from the start of its block [s]."""
    return float(rf.delay + pp.calc_rf_center(rf)[0])


def excitation_readout_times(pp: Any, rf: Any, gz: Any, ro: Readout) -> tuple[float, float, float]:
    """``(excitation block duration, RF centre within it, readout block duration)`` [s]."""
    return float(pp.calc_duration(rf, gz)), rf_centre_in_block(pp, rf), float(pp.calc_duration(ro.gx, ro.adc))


class EchoTiming(NamedTuple):
    """Timing of a gradient echo: excitation, prephaser block, (TE delay), readout."""

    d_exc: float
    """Excitation block duration [s]."""
    c_exc: float
    """RF centre from the start of the excitation block [s]."""
    d_ro: float
    """Readout block duration [s]."""
    te_min: float
    """Shortest echo time, RF centre to the k-space centre sample [s]."""
    te_delay: float
    """Delay after the prephaser that makes the echo time the protocol's (on the block raster) [s]."""


def gradient_echo_timing(
    pp: Any,
    system: Any,
    p: ImagingProtocol,
    rf: Any,
    gz: Any,
    ro: Readout,
    t_pre: float,
    *,
    strict: bool,
    hint: str = "raise te_ms or the bandwidth",
) -> EchoTiming:
    """Block durations and the TE delay of a gradient echo: excitation, a prephaser block of ``t_pre`` [s], the
    delay, then the readout ``ro`` whose centre sample is the echo (``hint`` says how to fix a too-short TE)."""
    d_exc, c_exc, d_ro = excitation_readout_times(pp, rf, gz, ro)
    te_min = (d_exc - c_exc) + t_pre + ro.centre_time_s
    te_delay = delay_to_reach("echo time te_ms", p.te_s, te_min, hint, system.block_duration_raster, strict=strict)
    return EchoTiming(d_exc, c_exc, d_ro, te_min, te_delay)


def spoiler_areas(p: ImagingProtocol) -> tuple[float, float]:
    """Spoiler areas [1/m] of a 2D spoiled GRE: two cycles per pixel along x, four per slice along z."""
    assert p.slice_thickness_m is not None
    return 2.0 * p.matrix / p.fov_m, 4.0 / p.slice_thickness_m


def finish_sequence(
    seq: Any, p: ImagingProtocol, scanner: Scanner, *, ro: Readout | None = None, **facts: Any
) -> BuiltSequence:
    """Name ``seq`` and set its FOV definition, then describe it: the facts every family reports (protocol, scanner,
    flip angle, averages, the readout's samples, dwell, oversampling and bandwidth when ``ro`` is given, and the
    slice positions of a 2D protocol) with the family's own ``facts`` (keywords of :class:`BuiltSequence`)."""
    from hifield.sequence.built import BuiltSequence
    from hifield.sequence.protocol import SliceProtocol

    thickness = p.slice_thickness_m if p.slice_thickness_m is not None else p.slab_thickness_m
    seq.set_definition("FOV", [p.fov_m, p.fov_m, thickness])
    seq.set_definition("Name", p.name)
    common: dict[str, Any] = {
        "seq": seq,
        "protocol": p,
        "scanner_name": scanner.name,
        "flip_angle_rad": float(p.flip_angle_rad),
        "n_averages": p.n_averages,
    }
    if ro is not None:
        common.update(
            n_readout_samples=ro.n_samples,
            readout_dwell_s=ro.dwell_s,
            readout_oversampling=ro.oversampling,
            pixel_bandwidth_hz=float(ro.pixel_bandwidth_hz),
        )
    if isinstance(p, SliceProtocol):
        common["slice_positions_m"] = np.asarray(p.slice_positions_m, dtype=np.float64)
    return BuiltSequence(**common, **facts)
