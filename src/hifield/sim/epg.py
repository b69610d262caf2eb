"""Extended phase graphs (Hennig 1988; Weigel, JMRI 2015;41:266): exact echo amplitudes of gradient-spoiled trains.

Used as the independent reference for the Bloch engine's RF-spoiled gradient echo and spin-echo trains
(physics-safety.md §3.2). States ``F+_k, F-_k, Z_k`` for ``k = 0 .. n_states - 1``; one unit of dephasing per
interval. The transition matrix of an RF pulse of flip ``alpha`` and phase ``phi`` is the one in §3.2.
The transitions (:func:`rf_transition`, :func:`relax_in_place`, :func:`dephase_in_place`) act on states of any
leading shape and are shared with the ``fast`` engine's phase graphs (:mod:`hifield.sim.engines.fast_echoes`).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray


def rf_transition(
    fp: NDArray[np.complex128], fm: NDArray[np.complex128], z: NDArray[np.complex128], alpha_rad: float, phi_rad: float
) -> tuple[NDArray[np.complex128], NDArray[np.complex128], NDArray[np.complex128]]:
    """The RF transition of flip ``alpha_rad`` and phase ``phi_rad`` on states ``F+, F-, Z`` of any shape ``(..., k)``.

    Returns the new ``(F+, F-, Z)``; the one EPG pulse of the project (this module's trains and the ``fast``
    engine's phase graphs).
    """
    c2 = math.cos(alpha_rad / 2) ** 2
    s2 = math.sin(alpha_rad / 2) ** 2
    sa = math.sin(alpha_rad)
    ca = math.cos(alpha_rad)
    e = complex(math.cos(phi_rad), math.sin(phi_rad))
    ec = e.conjugate()
    new_fp = c2 * fp + e * e * s2 * fm - 1j * e * sa * z
    new_fm = ec * ec * s2 * fp + c2 * fm + 1j * ec * sa * z
    new_z = -0.5j * ec * sa * fp + 0.5j * e * sa * fm + ca * z
    return new_fp, new_fm, new_z


def relax_in_place(
    fp: NDArray[np.complex128],
    fm: NDArray[np.complex128],
    z: NDArray[np.complex128],
    dt_s: float,
    t1_s: NDArray[np.floating] | float,
    t2_s: NDArray[np.floating] | float,
) -> None:
    """Relaxation over ``dt_s`` of states ``(..., k)``, in place: F scaled by E2, Z by E1, ``Z_0`` recovering
    towards 1; ``t1_s``, ``t2_s`` [s] are scalars or one value per leading index (e.g. per tissue)."""
    e1 = np.exp(-dt_s / np.asarray(t1_s))[..., np.newaxis]
    e2 = np.exp(-dt_s / np.asarray(t2_s))[..., np.newaxis]
    fp *= e2
    fm *= e2
    z *= e1
    z[..., 0] += 1.0 - e1[..., 0]


def dephase_in_place(fp: NDArray[np.complex128], fm: NDArray[np.complex128]) -> None:
    """One unit of gradient dephasing of states ``(..., k)``, in place: F+ shifts up, F- down, ``F+_0 = conj(F-_0)``."""
    fp[..., 1:] = fp[..., :-1].copy()
    fm[..., :-1] = fm[..., 1:].copy()
    fm[..., -1] = 0.0
    fp[..., 0] = np.conj(fm[..., 0])


def epg_rf(states: NDArray[np.complex128], alpha_rad: float, phi_rad: float) -> NDArray[np.complex128]:
    """Apply an RF pulse to ``states`` ``(3, n)`` (rows F+, F-, Z); returns the new states.

    Examples
    --------
    >>> s = np.zeros((3, 4), complex); s[2, 0] = 1
    >>> out = epg_rf(s, np.pi / 2, 0.0)
    >>> bool(np.isclose(abs(out[0, 0]), 1.0)), bool(np.isclose(out[2, 0], 0.0))
    (True, True)
    """
    return np.stack(rf_transition(states[0], states[1], states[2], alpha_rad, phi_rad))


def epg_relax(states: NDArray[np.complex128], dt_s: float, t1_s: float, t2_s: float) -> NDArray[np.complex128]:
    """Relaxation over ``dt_s``: F scaled by E2, Z by E1 with recovery of Z_0 towards 1."""
    out = states.copy()
    relax_in_place(out[0], out[1], out[2], dt_s, t1_s, t2_s)
    return out


def epg_dephase(states: NDArray[np.complex128]) -> NDArray[np.complex128]:
    """One unit of gradient dephasing: F+ shifts up, F- down, ``F-_0 = conj(F+_0)``."""
    out = states.copy()
    dephase_in_place(out[0], out[1])
    return out


def epg_spoiled_gre(
    *,
    flip_angle_rad: float,
    tr_s: float,
    te_s: float,
    t1_s: float,
    t2_s: float,
    rf_phases_rad: NDArray[np.floating],
    n_states: int | None = None,
) -> NDArray[np.complex128]:
    """Echo signal of an RF- and gradient-spoiled GRE, one entry per excitation, demodulated by its RF phase.

    Each TR: RF pulse with phase ``rf_phases_rad[n]``, relaxation to TE, the echo ``F+_0 · exp(-i phi_n)``,
    relaxation to TR, one unit of dephasing.

    Examples
    --------
    >>> import math
    >>> phases = np.array([math.radians(117.0 * n * (n + 1) / 2) for n in range(300)])
    >>> s = epg_spoiled_gre(flip_angle_rad=math.radians(15), tr_s=0.01, te_s=0.0, t1_s=1.0, t2_s=0.1,
    ...                     rf_phases_rad=phases)
    >>> round(float(abs(s[-1])), 3)  # Ernst 0.059; real RF spoiling about 3 % lower (physics-safety.md)
    0.057
    """
    n_tr = len(rf_phases_rad)
    n = n_states if n_states is not None else n_tr + 2
    states = np.zeros((3, n), dtype=np.complex128)
    states[2, 0] = 1.0
    echoes = np.zeros(n_tr, dtype=np.complex128)
    for i, phi in enumerate(rf_phases_rad):
        states = epg_rf(states, flip_angle_rad, float(phi))
        states = epg_relax(states, te_s, t1_s, t2_s)
        echoes[i] = states[0, 0] * np.exp(-1j * phi)
        states = epg_relax(states, tr_s - te_s, t1_s, t2_s)
        states = epg_dephase(states)
    return echoes


def epg_cpmg(
    *,
    refocusing_rad: float,
    esp_s: float,
    t1_s: float,
    t2_s: float,
    n_echoes: int,
    excitation_rad: float = float(np.pi / 2),
) -> NDArray[np.complex128]:
    """Echo amplitudes ``F+_0`` of a crushed CPMG train: excitation (phase 0), then per echo: relax ``esp/2``,
    dephase, refocus (phase 90 degrees), dephase, relax ``esp/2``.

    Examples
    --------
    >>> e = epg_cpmg(refocusing_rad=np.pi, esp_s=0.01, t1_s=1.0, t2_s=0.1, n_echoes=3)
    >>> np.round(np.abs(e), 4).tolist() == np.round(np.exp(-np.arange(1, 4) * 0.01 / 0.1), 4).tolist()
    True
    """
    states = np.zeros((3, 2 * n_echoes + 3), dtype=np.complex128)
    states[2, 0] = 1.0
    states = epg_rf(states, excitation_rad, 0.0)
    echoes = np.zeros(n_echoes, dtype=np.complex128)
    for n in range(n_echoes):
        states = epg_dephase(epg_relax(states, esp_s / 2, t1_s, t2_s))
        states = epg_rf(states, refocusing_rad, np.pi / 2)
        states = epg_relax(epg_dephase(states), esp_s / 2, t1_s, t2_s)
        echoes[n] = states[0, 0]
    return echoes
