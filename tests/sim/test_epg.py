"""The one set of EPG transitions: the (3, n) reference functions and the per-tissue arrays of the fast engine agree,
and the RF transition is Weigel's matrix."""

from __future__ import annotations

import numpy as np

from hifield.sim.epg import dephase_in_place, epg_dephase, epg_relax, epg_rf, relax_in_place, rf_transition


def _states(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def test_rf_transition_is_weigels_matrix() -> None:
    rng = np.random.default_rng(1)
    states = _states(rng, (3, 5))
    alpha, phi = 0.7, 1.3
    c2, s2, sa, ca, e = np.cos(alpha / 2) ** 2, np.sin(alpha / 2) ** 2, np.sin(alpha), np.cos(alpha), np.exp(1j * phi)
    t = np.array(
        [
            [c2, e * e * s2, -1j * e * sa],
            [np.conj(e) ** 2 * s2, c2, 1j * np.conj(e) * sa],
            [-0.5j * np.conj(e) * sa, 0.5j * e * sa, ca],
        ]
    )
    np.testing.assert_allclose(epg_rf(states, alpha, phi), t @ states, rtol=0, atol=1e-14)


def test_per_tissue_transitions_match_the_reference_row_by_row() -> None:
    rng = np.random.default_rng(2)
    n_tissue, n = 3, 6
    fp, fm, z = (_states(rng, (n_tissue, n)) for _ in range(3))
    t1 = np.array([0.8, 1.2, 4.0])
    t2 = np.array([0.05, 0.08, 2.0])
    reference = [np.stack([fp[i], fm[i], z[i]]) for i in range(n_tissue)]

    fp, fm, z = rf_transition(fp, fm, z, 0.9, 0.4)
    relax_in_place(fp, fm, z, 0.01, t1, t2)
    dephase_in_place(fp, fm)
    for i in range(n_tissue):
        expected = epg_dephase(epg_relax(epg_rf(reference[i], 0.9, 0.4), 0.01, float(t1[i]), float(t2[i])))
        np.testing.assert_allclose(np.stack([fp[i], fm[i], z[i]]), expected, rtol=0, atol=1e-14)
