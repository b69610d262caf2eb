"""The ``fast`` engine on every Cartesian family: phase graphs over the real timeline, against EPG, closed forms and
the ``bloch`` engine."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.linalg

import hifield as hf
from hifield.data import centred_affine
from hifield.errors import ConfigError, SequenceError
from hifield.phantom import Phantom
from hifield.phantom.tissues import tissue_properties
from hifield.sim.engines.fast import simulate_fast
from hifield.sim.engines.fast_echoes import bssfp_signal, echo_amplitudes
from hifield.sim.engines.timeline import RF_EXCITATION, RF_INVERSION, RF_REFOCUSING, read_timeline
from hifield.sim.epg import epg_cpmg

N = 24
FOV = 0.24


def disks_phantom(tissues: tuple[str, ...] = ("wm", "gm", "muscle"), *, offset_hz: float = 0.0) -> Phantom:
    """Disks of single tissues (no chemical shift) on a 2x finer grid over the protocol FOV."""
    n_fine = 2 * N
    affine = centred_affine((1, n_fine, n_fine), (0.005, FOV / n_fine, FOV / n_fine))
    coords = (np.arange(n_fine) - n_fine // 2) * FOV / n_fine
    y, x = np.meshgrid(coords, coords, indexing="ij")
    centres = [(-0.04, -0.03), (0.04, -0.02), (0.0, 0.05)]
    fractions = np.zeros((len(tissues), 1, n_fine, n_fine), dtype=np.float32)
    for k in range(len(tissues)):
        cy, cx = centres[k]
        fractions[k, 0] = (x - cx) ** 2 + (y - cy) ** 2 <= 0.03**2
    inside = fractions.sum(axis=0)
    return Phantom(
        fractions=fractions,
        tissues=tuple(tissue_properties(t, 3.0) for t in tissues),
        off_resonance_hz=(np.full((1, n_fine, n_fine), offset_hz) * inside).astype(np.float32),
        affine=affine,
        b0_t=3.0,
        name="disks",
    )


def build(name: str, **changes: object) -> hf.BuiltSequence:
    return hf.get_protocol(name).with_changes(matrix=N, fov_m=FOV, **changes).build(hf.Scanner.preset("3T"))


def rss(raw: hf.RawData) -> np.ndarray:
    return np.abs(hf.reconstruct(raw, method="fft").data).ravel()


# --- the timeline ------------------------------------------------------------------------------------------------


def test_timeline_reads_pulse_roles_lines_and_balance() -> None:
    flair = build("flair_2d", echo_train_length=8, te_s=0.048)
    tl = read_timeline(flair.seq, matrix=N, fov_m=FOV)
    counts = np.bincount(tl.rf_kind, minlength=3)
    assert counts[RF_EXCITATION] == counts[RF_INVERSION] == 3  # 24 lines / 8 echoes
    assert counts[RF_REFOCUSING] == 24
    assert np.degrees(tl.rf_flip_rad[tl.rf_kind == RF_REFOCUSING]) == pytest.approx(180.0, abs=0.1)
    assert sorted(tl.adc_k1.tolist()) == list(range(N))
    assert not tl.balanced
    assert read_timeline(build("bssfp_2d").seq, matrix=N, fov_m=FOV).balanced
    epi = read_timeline(build("epi_gre_2d").seq, matrix=N, fov_m=FOV)
    assert np.count_nonzero(epi.adc_rev) == N // 2


# --- contrast: phase graphs over the timeline against independent references ------------------------------------


@pytest.mark.parametrize("refocusing_deg", [180.0, 120.0])
def test_tse_echoes_match_cpmg_epg(refocusing_deg: float) -> None:
    seq = build("tse_t2_2d", echo_train_length=8, te_s=0.048, refocusing_angle_rad=math.radians(refocusing_deg))
    tl = read_timeline(seq.seq, matrix=N, fov_m=FOV)
    a, tau = echo_amplitudes(tl, np.array([1.0]), np.array([0.08]), steady_state=False)
    esp = float(seq.echo_spacing_s)
    flips = tl.rf_flip_rad[tl.rf_kind == RF_REFOCUSING]
    reference = epg_cpmg(refocusing_rad=float(flips[0]), esp_s=esp, t1_s=1.0, t2_s=0.08, n_echoes=8)
    first_train = np.argsort(tl.adc_time_s)[:8]
    np.testing.assert_allclose(np.abs(a[first_train, 0]), np.abs(reference), rtol=2e-3)
    assert np.abs(tau).max() < 1e-5  # every CPMG echo sits on its spin echo
    # first echo of an imperfect train: only the sin^2(alpha / 2) part refocuses (analytic; the test can fail)
    assert abs(a[first_train[0], 0]) == pytest.approx(
        math.sin(float(flips[0]) / 2) ** 2 * math.exp(-esp / 0.08), rel=2e-3
    )


def test_inversion_recovery_nulls_at_ti_ln2() -> None:
    ti = 0.5
    seq = build("stir_2d", ti_s=ti, tr_s=20.0, echo_train_length=8)
    tl = read_timeline(seq.seq, matrix=N, fov_m=FOV)
    t1 = np.array([ti / math.log(2.0), 2.0 * ti / math.log(2.0)])
    a, _ = echo_amplitudes(tl, t1, np.array([0.1, 0.1]))
    assert np.abs(a[:, 0]).max() < 0.01 * np.abs(a[:, 1]).max()


def test_spoiled_gre_steady_state_matches_ernst_within_3_percent() -> None:
    seq = build("gre_t1_2d", tr_s=0.02, te_s=0.005, flip_angle_rad=math.radians(15.0))
    tl = read_timeline(seq.seq, matrix=N, fov_m=FOV)
    t1, t2 = 1.0, 0.05
    a, tau = echo_amplitudes(tl, np.array([t1]), np.array([t2]))
    e1 = math.exp(-float(np.median(np.diff(tl.rf_time_s))) / t1)
    alpha = float(tl.rf_flip_rad[0])
    ernst = math.sin(alpha) * (1 - e1) / (1 - e1 * math.cos(alpha)) * math.exp(-tau[0] / t2)
    assert np.abs(a[:, 0]) == pytest.approx(ernst, rel=0.03)


def test_bssfp_matches_bloch_fixed_point_off_resonance() -> None:
    tr, te, alpha, t1, t2 = 5e-3, 2.5e-3, math.radians(40.0), 0.8, 0.1

    def reference(df: float) -> complex:
        # independent: rotation matrices with scipy, iterate one TR (instantaneous pulses, alternating sign)
        def rot_x(a: float) -> np.ndarray:
            return scipy.linalg.expm(np.array([[0, 0, 0], [0, 0, a], [0, -a, 0]], dtype=float))

        def free(t: float) -> tuple[np.ndarray, np.ndarray]:
            th = -2 * math.pi * df * t
            p = np.array([[math.cos(th), -math.sin(th), 0], [math.sin(th), math.cos(th), 0], [0, 0, 1]])
            e = np.diag([math.exp(-t / t2), math.exp(-t / t2), math.exp(-t / t1)])
            return e @ p, np.array([0, 0, 1 - math.exp(-t / t1)])

        a_te, b_te = free(te)
        a_tr, b_tr = free(tr)
        pulses = (rot_x(alpha), rot_x(-alpha))
        m = np.array([0.0, 0.0, 1.0])
        for n in range(4000):
            m = pulses[n % 2] @ m
            if n == 3998:
                m_te = a_te @ m + b_te
            m = a_tr @ m + b_tr
        return complex(m_te[0], m_te[1])

    for df in (0.0, 30.0, 70.0, 1 / (2 * tr) - 5.0):
        got = complex(bssfp_signal(t1, t2, flip_angle_rad=alpha, tr_s=tr, te_s=te, off_resonance_hz=df))
        expected = reference(df)
        assert abs(abs(got) - abs(expected)) < 1e-3 * max(abs(expected), 0.05), (df, got, expected)


# --- encoding ----------------------------------------------------------------------------------------------------


def test_epi_readout_times_in_the_engine_are_the_sequences_adc_times_at_7t() -> None:
    # the time from the excitation at which the engine applies each line's off-resonance phase is pypulseq's own time
    # of that readout's centre sample, so the lines are the reported echo spacing apart
    seq = hf.get_protocol("epi_gre_2d").with_changes(matrix=N, fov_m=FOV).build(hf.Scanner.preset("7T"))
    tl = read_timeline(seq.seq, matrix=N, fov_m=FOV)
    _, tau = echo_amplitudes(tl, np.array([1.0]), np.array([0.05]))
    n = seq.n_readout_samples
    t_centre = seq.seq.adc_times()[0].reshape(-1, n)[:, n // 2]
    t_excitation = float(seq.seq.rf_times()[0][0])
    np.testing.assert_allclose(tau, t_centre - t_excitation, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.diff(tau[np.argsort(tl.adc_k1)]), seq.echo_spacing_s, rtol=0, atol=1e-9)


def test_epi_off_resonance_shifts_along_phase_encode_by_offset_over_pe_bandwidth() -> None:
    seq = build("epi_gre_2d")
    tl = read_timeline(seq.seq, matrix=N, fov_m=FOV)
    order = np.argsort(tl.adc_time_s)
    echo_spacing = float(np.median(np.diff(tl.adc_time_s[order])))
    scanner = hf.Scanner.preset("3T", n_coils=1)
    offset = 100.0
    shifted = simulate_fast(
        disks_phantom(("wm",), offset_hz=offset), seq, scanner, noise=False, rng=np.random.default_rng(0)
    )
    still = simulate_fast(disks_phantom(("wm",)), seq, scanner, noise=False, rng=np.random.default_rng(0))
    expected = offset * echo_spacing * N  # pixels along k1 (y): offset / (1 / (N esp))
    assert abs(expected) > 1.0
    profile_s = rss(shifted).reshape(N, N).sum(axis=1)
    profile_0 = rss(still).reshape(N, N).sum(axis=1)
    y = np.arange(N)
    shift = float(profile_s @ y / profile_s.sum() - profile_0 @ y / profile_0.sum())
    assert abs(abs(shift) - expected) < 0.25 * expected


CASES = [
    ("gre_t1_2d", {"n_dummy_scans": 40}, True),
    ("se_t1_2d", {}, False),
    ("tse_t2_2d", {"echo_train_length": 8, "te_s": 0.048}, False),
    ("flair_2d", {"echo_train_length": 8, "te_s": 0.048}, False),
    ("stir_2d", {"echo_train_length": 8}, False),
    ("epi_gre_2d", {}, False),
    ("epi_se_2d", {}, False),
    ("epi_gre_segmented_2d", {}, False),
    ("bssfp_2d", {"n_dummy_scans": 1000}, True),
]


@pytest.mark.parametrize(("name", "changes", "steady"), CASES, ids=[c[0] for c in CASES])
def test_fast_matches_bloch_on_every_cartesian_family(name: str, changes: dict, steady: bool) -> None:
    """Image NRMSE <= 3 % between ``fast`` and ``bloch`` on the same sequence and phantom.

    Tissues without chemical shift and with T2 much shorter than TR: in 2D the ``bloch`` engine places its spins at
    the slice centre (no through-slice spread), so it neither dephases z-crushers (long-T2 coherences would survive
    from shot to shot) nor displaces the fat slice; ``fast`` assumes both as on a real slab. Sequences without
    preparation scans are compared from full relaxation (``steady_state=False``), as ``bloch`` plays them.
    """
    scanner = hf.Scanner.preset("3T", n_coils=2)
    seq = build(name, **changes)
    phantom = disks_phantom()
    fast = rss(simulate_fast(phantom, seq, scanner, noise=False, rng=np.random.default_rng(0), steady_state=steady))
    bloch = rss(hf.simulate(phantom, seq, scanner, engine="bloch", noise=False))
    scale = float(fast @ bloch / (bloch @ bloch))
    nrmse = float(np.linalg.norm(fast - scale * bloch) / np.linalg.norm(fast))
    assert nrmse <= 0.03, nrmse
    assert scale == pytest.approx(1.0, abs=0.08)


def test_fast_refuses_non_cartesian_3d_and_readouts_off_the_matrix() -> None:
    scanner = hf.Scanner.preset("3T", n_coils=1)
    radial = hf.get_protocol("radial_gre_2d").with_changes(matrix=N, fov_m=FOV, te_s=0.0045, tr_s=0.009).build(scanner)
    slab = hf.shepp_logan_phantom(b0_t=3.0, matrix=2 * N, fov_m=FOV, n_slices=4)
    with pytest.raises(SequenceError, match="non-Cartesian readouts of 2D slices only"):
        simulate_fast(slab, radial, scanner, noise=False, rng=np.random.default_rng(0))
    odd = build("gre_t1_2d")
    with pytest.raises(SequenceError, match="outside the 1 x 16 grid"):
        simulate_fast(
            disks_phantom(),
            dataclasses.replace(odd, protocol=odd.protocol.with_changes(matrix=16, fov_m=FOV)),
            scanner,
            noise=False,
            rng=np.random.default_rng(0),
        )


@pytest.mark.parametrize("name", ["radial_gre_2d", "spiral_vd_2d"])
def test_non_cartesian_readouts_encode_like_cartesian(name: str) -> None:
    """Radial and spiral k-space by NUFFT of the same contrast: the SENSE image matches the Cartesian GRE image of
    the same TR/TE/flip (the difference is the point-spread function of the trajectories), in the same units."""
    scanner = hf.Scanner.preset("3T", n_coils=4)
    seq = hf.get_protocol(name).with_changes(matrix=N, fov_m=FOV, te_s=0.0045, tr_s=0.009).build(scanner)
    cart = build(
        "gre_t1_2d",
        tr_s=seq.tr_s,
        te_s=seq.te_s,
        flip_angle_rad=seq.flip_angle_rad,
        readout_bandwidth_hz_per_pixel=seq.pixel_bandwidth_hz,
    )
    phantom = disks_phantom()
    raw = simulate_fast(phantom, seq, scanner, noise=False, rng=np.random.default_rng(0))
    assert raw.trajectory is not None and raw.trajectory.density is not None
    assert raw.kspace.shape[-2:] == raw.trajectory.kspace_m.shape[:2]
    reference = simulate_fast(phantom, cart, scanner, noise=False, rng=np.random.default_rng(0))
    a = np.abs(hf.reconstruct(raw, method="sense").data).ravel()
    b = np.abs(hf.reconstruct(reference, method="sense").data).ravel()
    scale = float(a @ b / (b @ b))
    assert scale == pytest.approx(1.0, abs=0.03)
    assert np.linalg.norm(a - scale * b) / np.linalg.norm(a) < 0.1


def test_mprage_echoes_follow_an_independent_longitudinal_recursion() -> None:
    """MPRAGE contrast (3D): the phase graphs against a plain Mz recursion with ideal spoiling over the same events."""
    seq = hf.get_protocol("mprage_3d").with_changes(matrix=16, fov_m=FOV, n_partitions=8).build(hf.Scanner.preset("3T"))
    tl = read_timeline(seq.seq, matrix=16, fov_m=FOV, n_z=8, fov_z_m=0.16)
    t1, t2 = 1.0, 0.08
    a, tau = echo_amplitudes(tl, np.array([t1]), np.array([t2]))
    events = sorted(
        [(t, "rf", k) for t, k in zip(tl.rf_time_s, range(tl.rf_time_s.size), strict=True)]
        + [(t, "adc", k) for t, k in zip(tl.adc_time_s, range(tl.n_adc), strict=True)]
    )
    mz, t_prev, last_signal = 1.0, 0.0, 0.0
    expected = np.zeros(tl.n_adc)
    for sweep in range(6):  # inversion blocks repeat: iterate the whole sequence to its steady state
        for t, kind, k in events:
            mz = 1.0 - (1.0 - mz) * math.exp(-(t - t_prev) / t1)
            t_prev = t
            if kind == "rf":
                alpha = float(tl.rf_flip_rad[k])
                last_signal = mz * math.sin(alpha)
                mz = mz * math.cos(alpha)
            elif sweep == 5:
                expected[k] = abs(last_signal) * math.exp(-tau[k] / t2)
        t_prev -= tl.duration_s
    centre = np.flatnonzero((tl.adc_k1 == 8) & (tl.adc_k2 == 4))
    # RF spoiling is not ideal spoiling: a few per cent apart (Zur 1991), the inversion recovery itself identical
    np.testing.assert_allclose(np.abs(a[:, 0]), expected, rtol=0.05)
    assert abs(abs(a[centre[0], 0]) / expected[centre[0]] - 1) < 0.03


def test_3d_encoding_places_an_object_at_its_partition_like_bloch() -> None:
    nz, n = 8, 16
    seq = (
        hf.get_protocol("gre_t1_3d")
        .with_changes(matrix=n, fov_m=FOV, n_partitions=nz, slab_thickness_m=0.08)
        .build(hf.Scanner.preset("3T"))
    )
    fractions = np.zeros((1, nz, 2 * n, 2 * n), dtype=np.float32)
    fractions[0, 5, 10:20, 12:18] = 1.0  # a block in partition 5, off-centre in y and x
    phantom = Phantom(
        fractions=fractions,
        tissues=(tissue_properties("wm", 3.0),),
        off_resonance_hz=np.zeros(fractions.shape[1:], dtype=np.float32),
        affine=centred_affine((nz, 2 * n, 2 * n), (0.01, FOV / (2 * n), FOV / (2 * n))),
        b0_t=3.0,
        name="block",
    )
    scanner = hf.Scanner.preset("3T", n_coils=1)
    images = []
    for engine in ("fast", "bloch"):  # both from rest: the approach to steady state ghosts along k2 in both
        if engine == "fast":
            raw = simulate_fast(phantom, seq, scanner, noise=False, rng=np.random.default_rng(0), steady_state=False)
        else:
            raw = hf.simulate(phantom, seq, scanner, engine=engine, noise=False)
        images.append(np.abs(hf.reconstruct(raw, method="fft").data).reshape(nz, n, n))
    for image in images:
        assert int(np.argmax(image.sum(axis=(1, 2)))) == 5
    centroids = [np.array([np.sum(np.indices(im.shape)[a] * im) / im.sum() for a in range(3)]) for im in images]
    # partition (k2) and readout axes agree; along k1 bloch leaks more of the block's transient ghost to low y
    np.testing.assert_allclose(centroids[0][[0, 2]], centroids[1][[0, 2]], atol=0.3)


def test_3d_phantom_must_match_the_slab() -> None:
    seq = hf.get_protocol("gre_t1_3d").with_changes(matrix=16, fov_m=FOV, n_partitions=8, slab_thickness_m=0.08)
    phantom = hf.shepp_logan_phantom(b0_t=3.0, matrix=32, fov_m=FOV, n_slices=8)  # 8 planes, but not over 80 mm
    scanner = hf.Scanner.preset("3T", n_coils=1)
    with pytest.raises(ConfigError, match="must match the slab"):
        simulate_fast(phantom, seq.build(scanner), scanner, noise=False, rng=np.random.default_rng(0))
