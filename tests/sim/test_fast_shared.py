"""Work the ``fast`` engine shares: one encoding for a reference and its undersampled scan, phase graphs cached by
timeline and B1+ scale. Both must give what the engine gives without sharing."""

from __future__ import annotations

import numpy as np
import pytest

import hifield as hf
from hifield.pipeline import phantom_for_protocol
from hifield.scan_config import ScanConfig
from hifield.sim import simulate, simulate_many
from hifield.sim.engines import fast as fast_engine
from hifield.sim.engines import fast_echoes
from hifield.sim.engines.fast_echoes import B1_STEP, contrast_groups, echo_amplitudes
from hifield.sim.engines.timeline import read_timeline
from hifield.sim.field_effects import apply_field_effects


def _head_at_7t(matrix: int = 32, position_m: float = 0.02) -> tuple[object, object, object]:
    """A 7 T T1 GRE slice of the brain with B1+ and B0 on (the default exam's physics), its scanner and plan."""
    scanner = hf.Scanner.preset("7T", n_coils=4)
    protocol = hf.get_protocol("gre_t1_2d").with_changes(matrix=matrix)
    acquisition = hf.sequence.plan_acquisition(protocol, scanner, acceleration=3, n_calibration=8)
    phantom = phantom_for_protocol("brain", protocol, b0_t=scanner.b0_t, slice_position_m=position_m)
    phantom, _ = apply_field_effects(phantom, ScanConfig().field_effects, head=True)
    assert phantom.b1_scale is not None and np.ptp(phantom.off_resonance_hz) > 10.0
    return scanner, acquisition, phantom


def test_joint_encoding_equals_one_by_one_and_shares_the_fourier_transforms(monkeypatch: pytest.MonkeyPatch) -> None:
    scanner, acquisition, phantom = _head_at_7t()
    sequences = [acquisition.full, acquisition.accelerated]
    alone = [simulate(phantom, s, scanner, noise=n, seed=3) for s, n in zip(sequences, (False, True), strict=True)]

    calls: list[int] = []
    original = fast_engine._encode

    def counting(groups, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(groups[0].amplitudes.shape[0])
        return original(groups, *args, **kwargs)

    monkeypatch.setattr(fast_engine, "_encode", counting)
    together = simulate_many(phantom, sequences, scanner, noise=[False, True], seeds=[3, 3])
    assert len(calls) == 1, "the two sequences were encoded separately"
    assert calls[0] == alone[0].kspace.shape[2] + int(np.count_nonzero(alone[1].mask.any(axis=-1)))

    for one, both in zip(alone, together, strict=True):
        peak = float(np.abs(one.kspace).max())
        assert np.abs(both.kspace - one.kspace).max() <= 1e-5 * peak
        assert (one.mask is None) == (both.mask is None)
        if one.mask is not None:
            assert np.array_equal(one.mask, both.mask)
        assert both.header.acceleration == one.header.acceleration
    # noise from each sequence's own seed: the noise scans are identical
    assert np.array_equal(together[1].noise, alone[1].noise)


def test_sequences_that_cannot_share_are_simulated_alone() -> None:
    scanner = hf.Scanner.preset("3T", n_coils=4)
    cartesian = hf.get_protocol("gre_t1_2d").with_changes(matrix=32)
    radial = hf.get_protocol("radial_gre_2d").with_changes(matrix=32, fov_m=cartesian.fov_m)
    phantom = hf.shepp_logan_phantom(matrix=64, fov_m=cartesian.fov_m)
    built = [cartesian.build(scanner), radial.build(scanner)]
    together = simulate_many(phantom, built, scanner, noise=[False, False], seeds=[0, 0])
    for sequence, result in zip(built, together, strict=True):
        alone = simulate(phantom, sequence, scanner, noise=False, seed=0)
        assert np.array_equal(result.kspace, alone.kspace)
    assert together[1].trajectory is not None and together[0].trajectory is None


def test_simulate_many_refuses_mismatched_lists_and_loops_for_engines_without_a_joint_form() -> None:
    scanner = hf.Scanner.preset("3T", n_coils=2)
    protocol = hf.get_protocol("gre_t1_2d").with_changes(matrix=16)
    phantom = hf.shepp_logan_phantom(matrix=32, fov_m=protocol.fov_m)
    built = protocol.build(scanner)
    with pytest.raises(hf.errors.ConfigError, match="one noise flag and one seed per sequence"):
        simulate_many(phantom, [built, built], scanner, noise=[False], seeds=[0, 0])
    assert hf.sim.get_batch_engine("bloch") is None
    with pytest.raises(hf.errors.ConfigError, match="unknown simulation engine"):
        hf.sim.get_batch_engine("nope")


def test_cached_phase_graphs_equal_fresh_ones_and_run_only_missing_scales(monkeypatch: pytest.MonkeyPatch) -> None:
    scanner = hf.Scanner.preset("7T", n_coils=2)
    protocol = hf.get_protocol("gre_t1_2d").with_changes(matrix=16)
    built = protocol.build(scanner)
    timeline = read_timeline(built.seq, matrix=16, fov_m=protocol.fov_m)
    t1 = np.array([0.9, 1.4, 4.0])
    t2 = np.array([0.05, 0.06, 1.0])
    fast_echoes._ECHO_CACHE.clear()
    rows: list[int] = []
    original = fast_echoes.echo_amplitudes

    def counting(timeline, t1_s, t2_s, **kwargs):  # type: ignore[no-untyped-def]
        rows.append(len(t1_s))
        return original(timeline, t1_s, t2_s, **kwargs)

    monkeypatch.setattr(fast_echoes, "echo_amplitudes", counting)
    first_scales = np.arange(30, 40) * B1_STEP
    second_scales = np.arange(35, 45) * B1_STEP  # half of them already run
    first, tau = fast_echoes._cached_echo_amplitudes(timeline, t1, t2, first_scales, steady_state=True)
    second, _ = fast_echoes._cached_echo_amplitudes(timeline, t1, t2, second_scales, steady_state=True)
    assert rows == [3 * 10, 3 * 5]

    fresh, fresh_tau = echo_amplitudes(
        timeline, np.tile(t1, 10), np.tile(t2, 10), flip_scale=np.repeat(second_scales, 3), steady_state=True
    )
    np.testing.assert_allclose(second, fresh, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(tau, fresh_tau)
    np.testing.assert_allclose(first[:, 15:], second[:, :15], rtol=0, atol=0)
    # other tissues (another preparation length) or another timeline: not taken from the cache
    fast_echoes._cached_echo_amplitudes(timeline, t1[:2], t2[:2], first_scales[:2], steady_state=True)
    assert rows[-1] == 2 * 2


def test_b1_bins_of_neighbouring_slices_coincide(monkeypatch: pytest.MonkeyPatch) -> None:
    """The B1+ grid of every slice is made of multiples of B1_STEP, so a stack's slices reuse each other's phase
    graphs: two slices 5 mm apart at 7 T share most of their scales."""
    scanner = hf.Scanner.preset("7T", n_coils=2)
    protocol = hf.get_protocol("gre_t1_2d").with_changes(matrix=32)
    built = protocol.build(scanner)
    timeline = read_timeline(built.seq, matrix=32, fov_m=protocol.fov_m)
    asked: list[np.ndarray] = []
    original = fast_echoes._cached_echo_amplitudes

    def recording(timeline, t1_s, t2_s, scales, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(np.asarray(scales))
        return original(timeline, t1_s, t2_s, scales, **kwargs)

    monkeypatch.setattr(fast_echoes, "_cached_echo_amplitudes", recording)
    for position in (0.0, 0.005):
        phantom = phantom_for_protocol("brain", protocol, b0_t=7.0, slice_position_m=position)
        phantom, _ = apply_field_effects(phantom, ScanConfig().field_effects, head=True)
        contrast_groups(phantom, timeline, 7.0, steady_state=True)
    assert len(asked) == 2
    for scales in asked:
        units = scales / B1_STEP
        np.testing.assert_allclose(units, np.round(units), atol=1e-9)
        assert 2 <= scales.size <= fast_echoes.B1_MAX_BINS + 2
    shared = np.intersect1d(np.round(asked[0] / B1_STEP), np.round(asked[1] / B1_STEP))
    assert shared.size >= 0.7 * min(a.size for a in asked)
