"""High-field effects on the brain phantom: susceptibility B0 after the shim, transmit B1+ (CP and pTx), --ideal."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import hifield as hf
from hifield.errors import ConfigError
from hifield.phantom import brain_phantom, make_phantom
from hifield.phantom.brain import _ras_to_lps, _template
from hifield.phantom.head_model import AIR_CAVITIES
from hifield.sim.field_effects import (
    FieldEffects,
    _positions,
    apply_field_effects,
    head_b0_ppm,
    head_off_resonance_hz,
    object_mask,
)

N = 48


def test_b0_map_scales_linearly_with_b0() -> None:
    maps = {b0: head_off_resonance_hz(brain_phantom(b0_t=b0, matrix=32)) for b0 in (1.5, 3.0, 7.0)}
    assert np.abs(maps[7.0]).max() > 50.0  # tens to hundreds of Hz at 7 T
    np.testing.assert_allclose(maps[7.0], maps[3.0] * 7.0 / 3.0, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(maps[1.5], maps[3.0] * 0.5, rtol=1e-5, atol=1e-3)


def test_sphenoid_and_frontal_regions_carry_the_largest_off_resonance() -> None:
    residual, head = head_b0_ppm("2nd-order")
    pos = _positions(head.affine, residual.shape)[head.brain]
    value = np.abs(residual[head.brain])
    top = value >= np.percentile(value, 99)
    centre = _ras_to_lps(_template().head_centre_ras_mm) * 1e-3
    near: dict[str, np.ndarray] = {}
    for name, ras, _ in AIR_CAVITIES:
        c = _ras_to_lps(np.asarray(ras)) * 1e-3 - centre
        near[name] = np.linalg.norm(pos - c, axis=1) < 0.035
    sinus = near["frontal sinus"] | near["sphenoid sinus"]
    assert sinus[np.argmax(value)]  # the worst brain voxel sits by a sinus
    assert sinus[top].mean() > 0.5  # most of the worst 1 %
    assert sinus[top].mean() > 3 * near["right ear canal"][top].mean()
    # away from every cavity the residual is an order of magnitude smaller
    far = ~np.any(np.stack(list(near.values())), axis=0)
    assert np.percentile(value[far], 90) < 0.2 * value.max()


def test_shim_reduces_the_residual_range() -> None:
    spreads = {}
    for shim in ("none", "linear", "2nd-order"):
        residual, head = head_b0_ppm(shim)
        v = residual[head.brain]
        spreads[shim] = (float(np.ptp(v)), float(v.std()))
    assert spreads["none"][1] > spreads["linear"][1] > spreads["2nd-order"][1]
    assert spreads["none"][0] > spreads["2nd-order"][0]
    phantom = make_phantom("brain", b0_t=7.0, matrix=N)
    ranges = {s: apply_field_effects(phantom, FieldEffects(b0_shim=s, b1=False))[1] for s in ("none", "2nd-order")}
    assert ranges["none"]["b0_residual_range_hz"] > ranges["2nd-order"]["b0_residual_range_hz"]


def test_epi_at_7t_shifts_the_frontal_lobe_by_offset_times_echo_spacing_times_lines() -> None:
    """Points of frontal-lobe tissue land ``offset x echo spacing x lines`` voxels away along y, each by its own
    offset of the head model at 7 T.

    Lines are played in increasing k1 (ky rises with time), so an offset f moves tissue by +f * ESP * N voxels
    (the sign the Bloch engine shows in ``test_epi_phase_encode_shift_is_offset_times_esp_times_n``): the negative
    offsets by the frontal sinus move it anteriorly, towards row 0, and out across the FOV's edge (the brain's
    front sits about 7 rows in), so shifts are measured modulo the FOV. Isolated points, because a patch of the
    frontal lobe is no rigid body here: its offset runs from about -340 to -45 Hz over 2 cm, which stretches it
    about fourfold along y and, at TE 40 ms, dephases it within a voxel, so the centroid of a patch does not follow
    its mean offset.
    """
    from hifield.recon import reconstruct
    from hifield.sequence import get_protocol
    from hifield.sim import simulate

    n = 64
    scanner = hf.Scanner.preset("7T", n_coils=1)
    protocol = dataclasses.replace(get_protocol("epi_gre_2d"), matrix=n)
    seq = protocol.build(scanner)
    # an axial slice at the level of the frontal sinus; three points 3.4, 6.9 and 10.3 mm behind the front of the
    # brain, in columns 4 voxels apart (on the 2x finer phantom grid: column n is the midline)
    phantom = brain_phantom(b0_t=7.0, matrix=n, fov_m=protocol.fov_m, oversampling=2, slice_position_m=-0.003)
    off = head_off_resonance_hz(phantom)
    brain = object_mask(phantom)[0]
    front_row = int(brain.argmax(axis=0)[n])
    points = [(front_row + 2, n - 8), (front_row + 4, n), (front_row + 6, n + 8)]
    assert all(brain[p] for p in points)
    keep = np.zeros(brain.shape, dtype=bool)
    keep[tuple(np.transpose(points))] = True
    phantom = phantom.replace(fractions=phantom.fractions * keep[np.newaxis, np.newaxis])
    offsets = [float(off[0][p]) for p in points]
    assert max(offsets) < -80.0  # strongly off resonance next to the sinus

    def image(offset: np.ndarray) -> np.ndarray:
        raw = simulate(phantom.replace(off_resonance_hz=offset), seq, scanner, engine="fast", noise=False)
        return np.abs(reconstruct(raw, method="fft").data).reshape(n, n)

    def peak_row(profile: np.ndarray) -> float:  # parabolic peak, rows taken modulo n
        i = int(np.argmax(profile))
        a, b, c = profile[(i - 1) % n], profile[i], profile[(i + 1) % n]
        return i + 0.5 * (a - c) / (a - 2 * b + c)

    moved, still = image(off), image(np.zeros_like(off))
    for (_, column), offset in zip(points, offsets, strict=True):
        band = slice(column // 2 - 1, column // 2 + 2)
        shift = peak_row(moved[:, band].sum(axis=1)) - peak_row(still[:, band].sum(axis=1))
        shift = (shift + n / 2) % n - n / 2
        expected = offset * float(seq.echo_spacing_s) * n  # voxels along phase encoding (y)
        assert expected < -5.0
        assert shift == pytest.approx(expected, rel=0.1)


def test_b1_cov_over_the_brain_grows_with_field_and_drops_under_ptx() -> None:
    cov = {}
    for b0 in (1.5, 3.0, 7.0):
        _, report = apply_field_effects(make_phantom("brain", b0_t=b0, matrix=N), FieldEffects(b0=False))
        cov[b0] = report["b1_cov"]
    assert cov[1.5] < 0.1 < cov[3.0] < cov[7.0]
    for b0 in (3.0, 7.0):
        shimmed, report = apply_field_effects(
            make_phantom("brain", b0_t=b0, matrix=N), FieldEffects(b0=False, rf_shim="pTx")
        )
        assert report["b1_cov_ptx"] < 0.8 * report["b1_cov_cp"]
        assert report["b1_cov"] == pytest.approx(report["b1_cov_ptx"], abs=0.02)
        assert shimmed.b1_scale is not None


def test_b1_at_7t_is_centre_bright_with_darker_temporal_lobes_and_nearly_uniform_at_1_5t() -> None:
    for b0, low in ((1.5, 0.8), (7.0, 0.0)):
        phantom, _ = apply_field_effects(make_phantom("brain", b0_t=b0, matrix=N), FieldEffects(b0=False))
        b1 = phantom.b1_scale
        assert b1 is not None
        mask = object_mask(phantom)
        centre = float(b1[0, N // 2, N // 2])
        temporal = float(np.mean([b1[0, N // 2, int(0.12 * N)], b1[0, N // 2, int(0.88 * N)]]))
        assert float(b1[mask].mean()) == pytest.approx(1.0, abs=0.01)  # calibrated over the brain
        assert float(b1[mask].min()) > low
        if b0 == 7.0:
            assert centre > 1.3 and temporal < 0.85 * centre


def test_ideal_leaves_the_phantom_unchanged_and_effects_carve_the_sinuses() -> None:
    phantom = brain_phantom(b0_t=7.0, matrix=32, slice_position_m=-0.003)
    same, report = apply_field_effects(phantom, FieldEffects.ideal())
    assert same is phantom and report["ideal"] and report["b1_cov"] == 0.0
    changed, _ = apply_field_effects(phantom, FieldEffects())
    removed = phantom.fractions.sum(axis=0) - changed.fractions.sum(axis=0)
    assert removed.max() > 0.5  # air where the frontal sinus is
    brain = object_mask(phantom)
    assert np.abs(removed[brain]).max() < 0.2  # the brain itself is not carved


def test_field_effects_options_are_validated() -> None:
    assert FieldEffects(rf_shim="pTx").rf_shim == "ptx"
    with pytest.raises(ConfigError, match="RF shim"):
        FieldEffects(rf_shim="b1-magic")
    with pytest.raises(ConfigError, match="B0 shim"):
        FieldEffects(b0_shim="4th")
    # test objects keep their own (zero) off-resonance; B1+ still applies
    other, report = apply_field_effects(make_phantom("shepp-logan", matrix=32, b0_t=7.0), FieldEffects(), head=False)
    assert not np.any(other.off_resonance_hz) and report["b1_cov"] > 0


def test_fast_engine_b1_bins_ignore_empty_space_and_match_a_scaled_timeline() -> None:
    from hifield.sequence import get_protocol
    from hifield.sim import simulate
    from hifield.sim.engines.fast_echoes import echo_amplitudes
    from hifield.sim.engines.timeline import read_timeline

    scanner = hf.Scanner.preset("3T", n_coils=1)
    protocol = dataclasses.replace(get_protocol("gre_t1_2d"), matrix=32)
    seq = protocol.build(scanner)
    timeline = read_timeline(seq.seq, matrix=32, fov_m=protocol.fov_m)
    t1, t2 = np.array([1.8, 1.0]), np.array([0.08, 0.07])
    scales = np.array([0.8, 1.3])
    together, _ = echo_amplitudes(timeline, np.tile(t1, 2), np.tile(t2, 2), flip_scale=np.repeat(scales, 2))
    for j, s in enumerate(scales):
        alone, _ = echo_amplitudes(dataclasses.replace(timeline, rf_flip_rad=timeline.rf_flip_rad * s), t1, t2)
        np.testing.assert_allclose(together[:, 2 * j : 2 * j + 2], alone, rtol=1e-10, atol=1e-12)

    phantom = make_phantom("brain", b0_t=3.0, matrix=32, fov_m=protocol.fov_m, oversampling=2)
    b1 = np.full(phantom.shape, 1.2, dtype=np.float32)
    wild = b1.copy()
    wild[phantom.fractions.sum(axis=0) == 0] = 25.0  # next to a transmit element, outside the head
    images = [
        np.abs(simulate(phantom.replace(b1_scale=m), seq, scanner, engine="fast", noise=False).kspace)
        for m in (b1, wild)
    ]
    np.testing.assert_allclose(images[1], images[0], rtol=1e-6, atol=1e-6 * images[0].max())
