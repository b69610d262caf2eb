"""Per-field protocol defaults: TI that nulls a tissue, T1 GRE flip by the Ernst angle, bandwidth for chemical shift."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hifield.phantom.tissues import FAT_SINGLE_PEAK_PPM, chemical_shift_hz
from hifield.sequence.library import NULLED_TISSUE
from hifield.sequence.library.tse import IrTseProtocol
from hifield.sequence.protocol import ImagingProtocol


def null_inversion_time(t1_s: float, tr_s: float, train_s: float) -> float:
    """Inversion time [s] that nulls a tissue of longitudinal relaxation ``t1_s`` in an IR echo-train sequence.

    Each slice is inverted once per ``tr_s``; its echo train (``train_s`` long) leaves Mz about 0, from which it
    recovers until the next inversion. Mz at the excitation is zero when
    ``exp(TI / T1) = 2 - exp(-(TR - TI - train) / T1)``, solved by bisection (for TR >> T1: TI = T1 ln 2).

    Examples
    --------
    >>> round(null_inversion_time(4.3, 1e6, 0.0) / math.log(2), 3)  # TR >> T1: T1 ln 2
    4.3
    >>> round(null_inversion_time(4.3, 9.0, 0.2), 3)  # FLAIR at 3 T: CSF T1 4.3 s, TR 9 s
    2.458
    """

    def mz(ti: float) -> float:
        recovery = max(tr_s - ti - train_s, 0.0)
        return 1.0 - (2.0 - math.exp(-recovery / t1_s)) * math.exp(-ti / t1_s)

    lo, hi = 0.0, max(tr_s - train_s, 1e-6)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if mz(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


MAX_FAT_SHIFT_PIXELS = 1.5
"""Largest water-fat shift along the readout [pixels] that the per-field bandwidth allows."""
REFERENCE_FIELD_T = 3.0
"""Field [T] at which the library protocols' own defaults are set (their docstrings say why)."""
T1_GRE_PROTOCOLS = ("gre_t1_2d", "gre_t1_3d")
"""T1-weighted spoiled GRE protocols whose flip angle keeps its ratio to white matter's Ernst angle across fields."""
_FAT_SOURCE = "fat main (methylene) peak at -3.4 ppm from water (Hamilton et al., NMR Biomed 2011;24:784)"


def ernst_angle(tr_s: float, t1_s: float) -> float:
    """Ernst angle [rad]: the flip that maximises spoiled-GRE signal, ``arccos(exp(-TR / T1))``.

    Examples
    --------
    >>> round(math.degrees(ernst_angle(0.010, 1.084)), 1)  # 3D FLASH, white matter at 3 T
    7.8
    """
    return math.acos(math.exp(-tr_s / t1_s))


def tune_for_field(
    protocol: ImagingProtocol,
    t1_of: Callable[[str], tuple[float, str]],
    *,
    b0_t: float | None = None,
    t1_at_reference: Callable[[str], tuple[float, str]] | None = None,
) -> tuple[ImagingProtocol, list[dict[str, Any]]]:
    """The protocol with its per-field defaults and one record per tuned parameter.

    * a library IR protocol (``NULLED_TISSUE``): the TI that nulls its tissue at the field whose T1
      ``t1_of(tissue)`` returns (``(t1 [s], source)``);
    * a T1-weighted GRE (:data:`T1_GRE_PROTOCOLS`, needs ``t1_at_reference``, white matter's T1 at
      :data:`REFERENCE_FIELD_T`): the flip angle keeps its 3 T ratio to white matter's Ernst angle at the protocol's
      TR, so the T1 weighting stays what the protocol is meant for;
    * any protocol with a receiver bandwidth (needs ``b0_t`` [T]): the bandwidth per pixel is raised where needed
      so the fat-water shift along the readout stays at or below :data:`MAX_FAT_SHIFT_PIXELS` (never lowered).

    Returns
    -------
    tuple
        The tuned protocol and one record per tuned parameter (``parameter``, ``value``, ``reason``, ``source``).
    """
    notes: list[dict[str, Any]] = []
    changes: dict[str, Any] = {}
    tissue = NULLED_TISSUE.get(protocol.name)
    if tissue is not None and isinstance(protocol, IrTseProtocol):
        t1_s, source = t1_of(tissue)
        train_s = protocol.echo_train_length * protocol.echo_spacing_s + protocol.rf_duration_s
        ti = round(null_inversion_time(t1_s, protocol.tr_s, train_s), 3)
        changes["ti_s"] = ti
        notes.append(
            {
                "parameter": "ti_ms",
                "value": round(ti * 1e3, 3),
                "reason": f"nulls {tissue} (T1 {t1_s * 1e3:.0f} ms) at TR {protocol.tr_s * 1e3:g} ms",
                "source": source,
            }
        )
    if protocol.name in T1_GRE_PROTOCOLS and t1_at_reference is not None:
        t1_s, source = t1_of("wm")
        t1_ref_s, _ = t1_at_reference("wm")
        ratio = protocol.flip_angle_rad / ernst_angle(protocol.tr_s, t1_ref_s)
        flip = min(ratio * ernst_angle(protocol.tr_s, t1_s), math.radians(90.0))
        if abs(flip - protocol.flip_angle_rad) > math.radians(0.05):
            changes["flip_angle_rad"] = flip
            notes.append(
                {
                    "parameter": "flip_angle_deg",
                    "value": round(math.degrees(flip), 2),
                    "reason": f"{ratio:.2f} x the Ernst angle of white matter (T1 {t1_s * 1e3:.0f} ms) at TR "
                    f"{protocol.tr_s * 1e3:g} ms, as at {REFERENCE_FIELD_T:g} T",
                    "source": f"Ernst angle arccos(exp(-TR/T1)) (Ernst & Anderson, Rev Sci Instrum 1966;37:93); "
                    f"{source}",
                }
            )
    bandwidth = getattr(protocol, "readout_bandwidth_hz_per_pixel", None)  # not every family has one
    if b0_t is not None and bandwidth is not None:
        fat_shift_hz = abs(chemical_shift_hz(FAT_SINGLE_PEAK_PPM, b0_t))
        needed = fat_shift_hz / MAX_FAT_SHIFT_PIXELS
        if needed > bandwidth:
            changes["readout_bandwidth_hz_per_pixel"] = math.ceil(needed)
            notes.append(
                {
                    "parameter": "readout_bandwidth_hz_per_pixel",
                    "value": math.ceil(needed),
                    "reason": f"fat-water shift {fat_shift_hz:.0f} Hz at {b0_t:g} T kept at "
                    f"{MAX_FAT_SHIFT_PIXELS:g} px or less (was {fat_shift_hz / bandwidth:.2f} px at "
                    f"{bandwidth:g} Hz/px)",
                    "source": _FAT_SOURCE,
                }
            )
    return (protocol.with_changes(**changes) if changes else protocol), notes
