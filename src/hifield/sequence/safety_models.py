"""Safety-model constants per scanner field strength: SAR constant K(B0), PNS coil parameters, IEC limits.

Sources: ``shared/reference/physics-safety.md`` sections 2.1 (IEC 60601-2-33 SAR limits, SAR = K B1+rms^2 with
K = sigma omega^2 R^2 / (10 rho) for a homogeneous sphere in a circularly polarised field) and 2.2 (GE-style PNS
convolution model; IEC normal mode 80 %, first level 100 % of the threshold). The PNS parameters and their sources
are documented on :class:`PnsCoil`, :data:`IEC_DEFAULT_PNS` and in ``docs/safety/pns.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Literal

from hifield.errors import ConfigError
from hifield.units import GAMMA_RAD_PER_S_PER_T

OperatingMode = Literal["normal", "first_level"]
"""IEC 60601-2-33 operating mode."""

OPERATING_MODES: tuple[str, ...] = ("normal", "first_level")

TISSUE_CONDUCTIVITY_S_PER_M: float = 0.5
"""Average tissue conductivity of the SAR model [S/m] (between white matter 0.34 and muscle 0.72, Gabriel 1996)."""
TISSUE_DENSITY_KG_PER_M3: float = 1000.0
"""Tissue density of the SAR model [kg/m^3]."""
HEAD_RADIUS_M: float = 0.10
"""Radius of the sphere modelling the head [m]."""
BODY_RADIUS_M: float = 0.15
"""Radius of the sphere modelling the exposed part of the body in a body transmit coil [m]."""
BODY_EXPOSED_FRACTION: float = 0.5
"""Fraction of the patient's mass inside the body transmit coil (whole-body SAR = exposed SAR x this fraction)."""


def sar_constant_w_per_kg_per_t2(b0_t: float, radius_m: float) -> float:
    """K = sigma omega^2 R^2 / (10 rho) [W/kg per T^2]: mean SAR of a homogeneous sphere per unit B1+rms^2.

    Examples
    --------
    >>> [round(sar_constant_w_per_kg_per_t2(b0, HEAD_RADIUS_M) * 1e-12, 2) for b0 in (1.5, 3.0, 5.0, 7.0)]
    [0.08, 0.32, 0.89, 1.75]
    """
    omega = GAMMA_RAD_PER_S_PER_T * b0_t
    return TISSUE_CONDUCTIVITY_S_PER_M * omega**2 * radius_m**2 / (10.0 * TISSUE_DENSITY_KG_PER_M3)


@dataclass(frozen=True)
class SarLimits:
    """IEC 60601-2-33 SAR limits for one operating mode [W/kg] (6-minute average; 10 s average is twice these)."""

    whole_body_w_per_kg: float
    head_w_per_kg: float
    short_term_factor: float = 2.0
    """Limit over any 10 s window relative to the 6-minute limit (IEC Ed. 3)."""


SAR_LIMITS: dict[str, SarLimits] = {
    "normal": SarLimits(whole_body_w_per_kg=2.0, head_w_per_kg=3.2),
    "first_level": SarLimits(whole_body_w_per_kg=4.0, head_w_per_kg=3.2),
}

PNS_LIMIT_PERCENT: dict[str, float] = {"normal": 80.0, "first_level": 100.0}
"""IEC 60601-2-33 PNS limits as a percentage of the mean stimulation threshold."""


@dataclass(frozen=True)
class PnsCoil:
    """Parameters of the hyperbolic (Irnich/Reilly) PNS strength-duration model in convolution form.

    The field change a gradient of slew rate SR [T/m/s] produces where the nerves are is dB/dt = SR x alpha, alpha
    being an effective length (radius) of the coil [m]. Stimulation starts at dB/dt = rheobase (1 + chronaxie / T)
    for one linear ramp of duration T, so the threshold slew rate of that ramp is
    ``rheobase / alpha * (1 + chronaxie / T)`` (the hyperbolic law of IEC 60601-2-33; TOPPE ``pns.m`` for the
    convolution form that generalises it to any waveform).
    """

    chronaxie_s: float
    """Chronaxie c [s]."""
    rheobase_t_per_s: float
    """Rheobase, as dB/dt [T/s]."""
    effective_length_m: float
    """Effective coil length alpha [m]: dB/dt = SR x alpha."""
    source: str = ""
    """Where the numbers come from."""

    @property
    def min_slew_t_per_m_per_s(self) -> float:
        """Slew rate at threshold for an infinitely long ramp, rheobase / alpha [T/m/s]."""
        return self.rheobase_t_per_s / self.effective_length_m

    @property
    def min_excursion_t_per_m(self) -> float:
        """Gradient excursion at threshold for an infinitely fast ramp, rheobase / alpha x chronaxie [T/m]
        (Chronik & Rutt, MRM 2001;45:386: the ``Delta G_min`` of the linear threshold ``Delta G_min + SR_min T``)."""
        return self.min_slew_t_per_m_per_s * self.chronaxie_s

    def threshold_slew_t_per_m_per_s(self, ramp_s: float) -> float:
        """Slew rate [T/m/s] at which one linear ramp of duration ``ramp_s`` reaches 100 % of the threshold."""
        return self.min_slew_t_per_m_per_s * (1.0 + self.chronaxie_s / ramp_s)


IEC_DEFAULT_PNS = PnsCoil(
    chronaxie_s=0.36e-3,
    rheobase_t_per_s=20.0,
    effective_length_m=0.20,
    source="IEC 60601-2-33 Ed. 3 default mean threshold of whole-body gradient systems (used when the threshold is "
    "not measured): rheobase 20 T/s, chronaxie 0.36 ms (from the volunteer data pooled by den Boer et al., JMRI "
    "2002;15:520); dB/dt of the linear gradient at the edge of the compliance volume, a cylinder of radius 0.20 m",
)
"""The preset model: the IEC 60601-2-33 default mean threshold of whole-body gradient systems.

SR_min = 20 / 0.20 = 100 T/m/s, Delta G_min = 36 mT/m: a ramp of less than 0.8 x 36 = 28.8 mT/m stays within the
normal-mode limit at any slew rate, and a ramp of duration T reaches it at 0.8 x 100 (1 + 0.36 ms / T) T/m/s
(234 T/m/s for the 0.19 ms ramps of a 28 mT/m, 150 T/m/s community FLASH)."""

GE_PNS_COILS: dict[str, PnsCoil] = {
    name: PnsCoil(chronaxie_s=c, rheobase_t_per_s=r, effective_length_m=a, source=f"GE {label} (TOPPE pns.m, {info})")
    for name, (c, r, a, label, info) in {
        "xrmw": (360e-6, 20.0, 0.324, "MR750w XRMW", "33 mT/m, 120 T/m/s"),
        "xrm": (334e-6, 23.4, 0.333, "MR750 XRM", "50 mT/m, 200 T/m/s"),
        "hrmb": (359e-6, 26.5, 0.370, "UHP HRMB", "100 mT/m, 200 T/m/s"),
    }.items()
}
"""Vendor coil parameters published with TOPPE ``pns.m`` (R. Schulte, J.-F. Nielsen; values from the scanners'
``GRSubsystemHWO.xml``), kept for comparison. Each has one effective length for all three axes; SR_min is
62-72 T/m/s against the IEC default's 100 T/m/s (an effective radius of 0.28-0.32 m at the IEC rheobase), so they
refuse ordinary FLASH prephasers that the IEC default and the SAFE example hardware accept (``docs/safety/pns.md``)."""

PNS_COILS: dict[float, PnsCoil] = {
    1.5: IEC_DEFAULT_PNS,
    3.0: IEC_DEFAULT_PNS,
    5.0: IEC_DEFAULT_PNS,
    7.0: IEC_DEFAULT_PNS,
}
"""PNS model keyed by the preset's B0 [T] (all presets have whole-body gradient coils, for which IEC 60601-2-33
gives one default); other fields use the nearest preset."""


def pns_coil_for(b0_t: float) -> PnsCoil:
    """PNS coil parameters for a scanner at ``b0_t`` (nearest preset field)."""
    key = min(PNS_COILS, key=lambda b: abs(b - b0_t))
    return PNS_COILS[key]


NORMAL_MODE_SIMULTANEOUS_AXES: int = 2
"""Number of axes a ``gradient_mode="normal"`` design assumes may ramp at the same time at its full slew (a
prephaser on x with a slice rephaser on z, a spoiler on two axes): their PNS adds as the root sum of squares."""


def normal_mode_slew_t_per_m_per_s(
    coil: PnsCoil, max_excursion_t_per_m: float, *, limit_percent: float = 80.0
) -> float:
    """Largest slew rate [T/m/s] at which a ramp of excursion up to ``max_excursion_t_per_m`` on each of
    :data:`NORMAL_MODE_SIMULTANEOUS_AXES` axes at once stays within ``limit_percent`` of the PNS threshold.

    One ramp of excursion dG at slew SR (duration T = dG / SR) reaches dG / (SR_min (c + T)) of the threshold; the
    budget per axis is ``limit_percent / sqrt(axes)``. Excursions below the budget times Delta G_min never reach it,
    whatever the slew (``inf`` is returned).

    Examples
    --------
    >>> round(normal_mode_slew_t_per_m_per_s(IEC_DEFAULT_PNS, 0.076), 1)  # 3 T preset: 95 % of 80 mT/m
    77.3
    >>> normal_mode_slew_t_per_m_per_s(IEC_DEFAULT_PNS, 0.020)
    inf
    """
    budget = limit_percent / 100.0 / math.sqrt(NORMAL_MODE_SIMULTANEOUS_AXES)
    ramp = max_excursion_t_per_m / (budget * coil.min_slew_t_per_m_per_s) - coil.chronaxie_s
    if ramp <= 0:
        return math.inf
    return max_excursion_t_per_m / ramp


def safe_hardware(coil: PnsCoil) -> SimpleNamespace:
    """A SAFE-model hardware description (pypulseq ``Sequence.calculate_pns``) with the strength-duration curve of
    ``coil`` on every axis: one RC low-pass (a1 = 1) of time constant chronaxie / ln 2, so that one ramp of duration
    T reaches the limit at SR_min / (1 - 2^(-T/c)), which equals SR_min (1 + c / T) at T = c and for long ramps
    (ramps much shorter than c are allowed up to 1 / ln 2 = 1.44 times more); ``stim_limit`` = SR_min,
    ``g_scale`` = 1 (Hebrank & Gebhardt, ISMRM 2000 #2007, as coded
    in pypulseq ``utils/safe_pns_prediction.py``)."""
    tau_ms = coil.chronaxie_s / math.log(2) * 1e3
    axis = SimpleNamespace(
        tau1=tau_ms,
        tau2=tau_ms,  # unused (a2 = a3 = 0); short, so that pypulseq's filters stay short
        tau3=tau_ms,
        a1=1.0,
        a2=0.0,
        a3=0.0,
        stim_limit=coil.min_slew_t_per_m_per_s,
        stim_thresh=0.8 * coil.min_slew_t_per_m_per_s,
        g_scale=1.0,
    )
    return SimpleNamespace(name="hifield-equivalent", checksum="", dependency="", x=axis, y=axis, z=axis)


def check_mode(mode: str) -> str:
    """Validate an operating mode name.

    Raises
    ------
    ConfigError
        For an unknown mode.
    """
    if mode not in OPERATING_MODES:
        raise ConfigError(f"operating mode {mode!r} is unknown; choose one of {', '.join(OPERATING_MODES)}")
    return mode


__all__ = [
    "BODY_EXPOSED_FRACTION",
    "BODY_RADIUS_M",
    "GE_PNS_COILS",
    "HEAD_RADIUS_M",
    "IEC_DEFAULT_PNS",
    "NORMAL_MODE_SIMULTANEOUS_AXES",
    "OPERATING_MODES",
    "PNS_COILS",
    "PNS_LIMIT_PERCENT",
    "SAR_LIMITS",
    "PnsCoil",
    "SarLimits",
    "check_mode",
    "normal_mode_slew_t_per_m_per_s",
    "pns_coil_for",
    "safe_hardware",
    "sar_constant_w_per_kg_per_t2",
]
