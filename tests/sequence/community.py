"""Community-style pypulseq sequences for tests: written as pypulseq's own examples write them (no hifield code)."""

from __future__ import annotations

import math

import numpy as np
import pypulseq as pp


def community_system(*, max_grad_mt_per_m: float = 28.0, max_slew: float = 150.0) -> pp.Opts:
    """System limits of pypulseq's ``write_gradient_echo`` example (28 mT/m, 150 T/m/s)."""
    return pp.Opts(
        max_grad=max_grad_mt_per_m,
        grad_unit="mT/m",
        max_slew=max_slew,
        slew_unit="T/m/s",
        rf_ringdown_time=20e-6,
        rf_dead_time=100e-6,
        adc_dead_time=10e-6,
    )


def community_flash(
    n: int = 64,
    *,
    fov_m: float = 0.256,
    te_s: float = 4.3e-3,
    tr_s: float = 10e-3,
    flip_deg: float = 10.0,
    slice_thickness_m: float = 3e-3,
    labels: bool = False,
    order: str = "linear",
    system: pp.Opts | None = None,
    n_dummy: int = 0,
) -> pp.Sequence:
    """2D RF-spoiled FLASH laid out like pypulseq's ``write_gradient_echo`` example.

    ``order``: ``"linear"`` (bottom to top), ``"reversed"`` or ``"centre_out"`` (phase-encode line order);
    ``n_dummy``: TRs played first without ADC (same gradients, phase encode 0, RF spoiling continuing).
    """
    system = community_system() if system is None else system
    seq = pp.Sequence(system)
    rf, gz, _ = pp.make_sinc_pulse(
        flip_angle=flip_deg * math.pi / 180,
        duration=3e-3,
        slice_thickness=slice_thickness_m,
        apodization=0.42,
        time_bw_product=4,
        system=system,
        return_gz=True,
        delay=system.rf_dead_time,
    )
    delta_k = 1 / fov_m
    gx = pp.make_trapezoid(channel="x", flat_area=n * delta_k, flat_time=3.2e-3, system=system)
    adc = pp.make_adc(num_samples=n, duration=gx.flat_time, delay=gx.rise_time, system=system)
    gx_pre = pp.make_trapezoid(channel="x", area=-gx.area / 2, duration=1e-3, system=system)
    gz_reph = pp.make_trapezoid(channel="z", area=-gz.area / 2, duration=1e-3, system=system)
    phase_areas = (np.arange(n) - n / 2) * delta_k
    if order == "reversed":
        phase_areas = phase_areas[::-1]
    elif order == "centre_out":
        idx = np.argsort(np.abs(np.arange(n) - n / 2), kind="stable")
        phase_areas = phase_areas[idx]
    gx_spoil = pp.make_trapezoid(channel="x", area=2 * n * delta_k, system=system)
    gz_spoil = pp.make_trapezoid(channel="z", area=4 / slice_thickness_m, system=system)
    raster = system.grad_raster_time
    delay_te = (
        math.ceil(
            (te_s - pp.calc_duration(gx_pre) - gz.fall_time - gz.flat_time / 2 - pp.calc_duration(gx) / 2) / raster
        )
        * raster
    )
    delay_tr = (
        math.ceil((tr_s - pp.calc_duration(gz) - pp.calc_duration(gx_pre) - pp.calc_duration(gx) - delay_te) / raster)
        * raster
    )
    assert delay_te >= 0 and delay_tr >= pp.calc_duration(gx_spoil, gz_spoil)
    rf_phase, rf_inc = 0.0, 0.0
    for index, area in enumerate(np.concatenate([np.zeros(n_dummy), phase_areas])):
        dummy = index < n_dummy
        rf.phase_offset = rf_phase / 180 * math.pi
        adc.phase_offset = rf_phase / 180 * math.pi
        rf_inc = (rf_inc + 117.0) % 360.0
        rf_phase = (rf_phase + rf_inc) % 360.0
        seq.add_block(rf, gz)
        gy_pre = pp.make_trapezoid(channel="y", area=area, duration=pp.calc_duration(gx_pre), system=system)
        seq.add_block(gx_pre, gy_pre, gz_reph)
        seq.add_block(pp.make_delay(delay_te))
        if dummy:
            seq.add_block(gx)
        elif labels:
            line = round(area / delta_k + n / 2)
            seq.add_block(gx, adc, pp.make_label(type="SET", label="LIN", value=line))
        else:
            seq.add_block(gx, adc)
        gy_pre.amplitude = -gy_pre.amplitude
        seq.add_block(pp.make_delay(delay_tr), gx_spoil, gy_pre, gz_spoil)
    seq.set_definition("FOV", [fov_m, fov_m, slice_thickness_m])
    seq.set_definition("Name", "gre")
    return seq
