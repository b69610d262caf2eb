"""The bloch engine's 3D path: slab-selective 3D GRE encoding, chunked voxels and grouped pulse maps."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pypulseq")

from hifield.data.geometry import centred_affine
from hifield.hardware.scanner import Scanner
from hifield.phantom import Phantom, shepp_logan_phantom, tissue_properties
from hifield.sequence.library.gre3d import Gre3dProtocol
from hifield.sim.engines import bloch as bloch_module
from hifield.sim.engines import bloch_receive
from hifield.sim.engines.bloch import BlochOptions, simulate_bloch

# these tests use few isochromats on purpose (speed); the count a sequence needs is tested in test_bloch_isochromats
pytestmark = pytest.mark.filterwarnings("ignore::hifield.sim.engines.bloch_isochromat_count.IsochromatWarning")

FOV = 0.16


def _gre3d(n: int, fov: float, *, tr_s: float, flip_deg: float):  # type: ignore[no-untyped-def]
    """A 3D GRE whose partition FOV (the slab) equals the in-plane FOV, as an isotropic phantom needs."""
    scanner = Scanner.preset("3T", n_coils=2)
    protocol = Gre3dProtocol(
        matrix=n, n_partitions=n, fov_m=fov, slab_thickness_m=fov, tr_s=tr_s, flip_angle_rad=np.radians(flip_deg)
    )
    return scanner, protocol.build(scanner)


def _dot_phantom(n: int, index: tuple[int, int, int]) -> Phantom:
    fractions = np.zeros((1, n, n, n), np.float32)
    fractions[(0, *index)] = 1.0
    return Phantom(
        fractions=fractions,
        tissues=(tissue_properties("wm", 3.0),),
        off_resonance_hz=np.zeros((n, n, n), np.float32),
        affine=centred_affine((n, n, n), (FOV / n,) * 3),
        b0_t=3.0,
        name="dot",
    )


def _rss(raw) -> np.ndarray:  # type: ignore[no-untyped-def]
    k = raw.kspace.astype(np.complex128)
    axes = (-3, -2, -1)
    img = np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(k, axes=axes), axes=axes, norm="ortho"), axes=axes)
    return np.sqrt((np.abs(img) ** 2).sum(axis=0))


def test_3d_point_is_encoded_at_its_voxel_along_all_three_axes() -> None:
    """One isochromat at voxel (z, y, x) = (5, 2, 6) of an 8^3 grid, fully relaxed between TRs: every k-space
    step along k0, k1 and k2 advances the phase by exactly ``-2π (index - n/2) / n`` (encoding ``exp(-i 2π k·r)``)
    and the image is that single voxel."""
    n = 8
    index = (5, 2, 6)
    scanner, sequence = _gre3d(n, FOV, tr_s=15.0, flip_deg=90.0)
    raw = simulate_bloch(
        _dot_phantom(n, index),
        sequence,
        scanner,
        noise=False,
        rng=np.random.default_rng(0),
        options=BlochOptions(n_isochromats=1),
    )
    assert raw.kspace.shape == (2, n, n, n) and raw.header.acquisition_type == "3D"
    k = raw.kspace[0].astype(np.complex128)
    c = n // 2
    for axis, line in ((0, k[:, c, c]), (1, k[c, :, c]), (2, k[c, c, :])):
        expected = -2.0 * np.pi * (index[axis] - c) / n
        steps = np.angle(line[1:] / line[:-1])
        np.testing.assert_allclose(np.angle(np.exp(1j * (steps - expected))), 0.0, atol=1e-3)
        if axis < 2:  # phase encodes: no transient, no modulation (the readout decays with T2*)
            assert np.ptp(np.abs(line)) < 1e-3 * np.abs(line).max()
    image = _rss(raw)
    assert np.unravel_index(int(np.argmax(image)), image.shape) == index
    assert image.max() ** 2 / (image**2).sum() > 0.999


@pytest.mark.slow
def test_3d_shepp_logan_matches_the_fast_engine() -> None:
    """16^3 3D Shepp-Logan, 3D GRE with full relaxation (TR 4 s, 90°): bloch and fast magnitude images agree to
    NRMSE < 3 % (1.4 % measured); a mis-encoded axis or a wrong slab profile gives tens of per cent."""
    from hifield.sim.engines.fast import simulate_fast

    n = 16
    fov = 0.24
    phantom = shepp_logan_phantom(b0_t=3.0, matrix=n, fov_m=fov, n_slices=n)
    scanner, sequence = _gre3d(n, fov, tr_s=4.0, flip_deg=90.0)
    rng = np.random.default_rng(0)
    bloch = _rss(
        simulate_bloch(phantom, sequence, scanner, noise=False, rng=rng, options=BlochOptions(n_isochromats=8))
    )
    fast = _rss(simulate_fast(phantom, sequence, scanner, noise=False, rng=rng))
    scale = float((bloch * fast).sum() / (bloch * bloch).sum())
    assert 0.9 < scale < 1.1  # same signal units
    assert np.linalg.norm(fast - scale * bloch) / np.linalg.norm(fast) < 0.03


@pytest.fixture(scope="module")
def small_3d() -> tuple[Phantom, Scanner, object, np.ndarray]:
    """8^3 Shepp-Logan, spoiled 3D GRE, and its k-space simulated in one piece (default chunking and groups)."""
    phantom = shepp_logan_phantom(b0_t=3.0, matrix=8, fov_m=FOV, n_slices=8)
    scanner, sequence = _gre3d(8, FOV, tr_s=0.01, flip_deg=15.0)
    whole = _simulate((phantom, scanner, sequence))
    return phantom, scanner, sequence, whole


def _simulate(case, **options):  # type: ignore[no-untyped-def]
    phantom, scanner, sequence = case[:3]
    opts = BlochOptions(n_isochromats=4, **options)
    return simulate_bloch(phantom, sequence, scanner, noise=False, rng=np.random.default_rng(0), options=opts).kspace


def test_chunked_voxels_give_the_unchunked_result_and_bound_each_kernel_call(small_3d, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    whole = small_3d[3]
    sizes: list[int] = []
    original = bloch_module.bloch_signal

    def recording(program, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append(int(np.atleast_2d(kwargs["positions_m"]).shape[0]))
        return original(program, **kwargs)

    monkeypatch.setattr(bloch_module, "bloch_signal", recording)
    chunked = _simulate(small_3d, chunk_voxels=40)
    assert sizes and max(sizes) <= 40
    assert len(sizes) >= 8  # the 3D phantom really was split into many calls
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-6 * np.abs(whole).max())


def test_pulse_maps_in_small_groups_give_the_same_result(small_3d, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The table of pulse maps is computed for groups of voxel classes that fit a byte limit; a limit of one
    class per group (many groups) changes nothing beyond rounding. The same limit also disables the shared
    free-precession table, so the kernel's direct per-isochromat ``cos``/``sin`` path gives the same k-space."""
    whole = small_3d[3]
    monkeypatch.setattr(bloch_receive, "MAX_TABLE_BYTES", 1)
    grouped = _simulate(small_3d)
    np.testing.assert_allclose(grouped, whole, rtol=0, atol=1e-6 * np.abs(whole).max())


def test_chunk_option_is_validated() -> None:
    from hifield.errors import ConfigError

    with pytest.raises(ConfigError, match="chunk_voxels"):
        BlochOptions(chunk_voxels=0)


def test_b1_map_scales_every_pulse_per_voxel(small_3d) -> None:  # type: ignore[no-untyped-def]
    """A uniform B1+ scale of 0.5 on the 3D phantom gives the k-space of the same sequence at half the flip angle
    (the slab pulse's amplitude is halved, its shape and timing kept)."""
    import dataclasses

    phantom, scanner, _, _ = small_3d
    halved = dataclasses.replace(phantom, b1_scale=np.full(phantom.shape, 0.5, np.float32))
    _, flip_30 = _gre3d(8, FOV, tr_s=0.01, flip_deg=30.0)
    _, flip_15 = _gre3d(8, FOV, tr_s=0.01, flip_deg=15.0)
    got = _simulate((halved, scanner, flip_30))
    expected = _simulate((phantom, scanner, flip_15))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    assert np.abs(_simulate((phantom, scanner, flip_30)) - expected).max() > 0.05 * np.abs(expected).max()
