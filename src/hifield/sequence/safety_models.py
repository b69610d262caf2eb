"""Safety-model constants per scanner field strength: SAR constant K(B0), PNS coil parameters, IEC limits.

Sources: ``shared/reference/physics-safety.md`` sections 2.1 (IEC 60601-2-33 SAR limits, SAR = K B1+rms^2 with
K = sigma omega^2 R^2 / (10 rho) for a homogeneous sphere in a circularly polarised field) and 2.2 (GE-style PNS
convolution model with published coil parameters; IEC normal mode 80 %, first level 100 % of the threshold).
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """Gradient-coil parameters of the GE-style PNS model (TOPPE ``pns.m``).

    The threshold slew rate for a single linear ramp of duration T is ``rheobase / alpha * (1 + chronaxie / T)``.
    """

    chronaxie_s: float
    """Chronaxie c [s]."""
    rheobase_t_per_s: float
    """Rheobase [T/s]."""
    effective_length_m: float
    """Effective coil length alpha [m]."""

    @property
    def min_slew_t_per_m_per_s(self) -> float:
        """Slew rate at threshold for an infinitely long ramp, rheobase / alpha [T/m/s]."""
        return self.rheobase_t_per_s / self.effective_length_m


# Published coil parameters (physics-safety.md 2.2): XRM (50 mT/m, 200 T/m/s) and HRMB (100 mT/m, 200 T/m/s).
_XRM = PnsCoil(chronaxie_s=334e-6, rheobase_t_per_s=23.4, effective_length_m=0.333)
_HRMB = PnsCoil(chronaxie_s=359e-6, rheobase_t_per_s=26.5, effective_length_m=0.370)
PNS_COILS: dict[float, PnsCoil] = {1.5: _XRM, 3.0: _HRMB, 5.0: _HRMB, 7.0: _HRMB}
"""PNS parameters keyed by the preset's B0 [T]; other fields use the nearest preset."""


def pns_coil_for(b0_t: float) -> PnsCoil:
    """PNS coil parameters for a scanner at ``b0_t`` (nearest preset field)."""
    key = min(PNS_COILS, key=lambda b: abs(b - b0_t))
    return PNS_COILS[key]


NORMAL_MODE_SLEW_FRACTION: float = 0.8
"""Largest slew rate of ``gradient_mode="normal"`` designs as a fraction of the PNS rheobase slew rate
``rheobase / alpha`` (about 57 T/m/s for the coils above): one ramp at this slew stays below 80 % of threshold."""


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
    "HEAD_RADIUS_M",
    "OPERATING_MODES",
    "PNS_COILS",
    "PNS_LIMIT_PERCENT",
    "SAR_LIMITS",
    "PnsCoil",
    "SarLimits",
    "check_mode",
    "pns_coil_for",
    "sar_constant_w_per_kg_per_t2",
]
