"""Every Cartesian family through both engines: same inputs give the same ``RawData`` shape, header and flags.

The ``fast`` and ``bloch`` engines model the physics differently (phase graphs vs isochromats), so their k-space
values differ within a tolerance tested in ``tests/sim``; what a scan *is* must not: the k-space shape and dtype,
every header field except the engine's name, the sampling mask, calibration flags and the noise scan.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import hifield as hf
from hifield.data import RawData, centred_affine
from hifield.phantom import Phantom
from hifield.phantom.tissues import tissue_properties
from hifield.sequence.protocol import SlabProtocol
from hifield.sim.engines.bloch import BlochOptions, simulate_bloch
from hifield.sim.engines.fast import simulate_fast

# few isochromats on purpose (speed): what a sequence needs is tested in tests/sim/test_bloch_isochromats.py
pytestmark = pytest.mark.filterwarnings("ignore::hifield.sim.engines.bloch_isochromat_count.IsochromatWarning")

N = 16
FOV = 0.24
N_PARTITIONS = 8

FAMILIES_2D = [
    "gre_t1_2d",
    "se_t1_2d",
    "tse_t2_2d",
    "flair_2d",
    "stir_2d",
    "epi_gre_2d",
    "epi_se_2d",
    "epi_gre_segmented_2d",
    "bssfp_2d",
]
FAMILIES_3D = ["gre_t1_3d", "mprage_3d"]


def _phantom(n_z: int, thickness_m: float) -> Phantom:
    """A white-matter disk (plus a fat ring: chemical shift in both engines) on a 2x finer grid over the FOV."""
    n_fine = 2 * N
    affine = centred_affine((n_z, n_fine, n_fine), (thickness_m / n_z, FOV / n_fine, FOV / n_fine))
    coords = (np.arange(n_fine) - n_fine // 2) * FOV / n_fine
    y, x = np.meshgrid(coords, coords, indexing="ij")
    r2 = x**2 + y**2
    fractions = np.zeros((2, n_z, n_fine, n_fine), dtype=np.float32)
    fractions[0, :] = r2 <= 0.06**2
    fractions[1, :] = (r2 > 0.06**2) & (r2 <= 0.08**2)
    return Phantom(
        fractions=fractions,
        tissues=(tissue_properties("wm", 3.0), tissue_properties("fat", 3.0)),
        off_resonance_hz=np.zeros((n_z, n_fine, n_fine), dtype=np.float32),
        affine=affine,
        b0_t=3.0,
        name="disk",
    )


def _both(name: str, *, noise: bool) -> tuple[RawData, RawData]:
    protocol = hf.get_protocol(name)
    three_d = isinstance(protocol, SlabProtocol)
    changes: dict[str, object] = {"matrix": N, "fov_m": FOV}
    if three_d:
        changes["n_partitions"] = N_PARTITIONS
    protocol = protocol.with_changes(**changes)
    sequence = protocol.build(hf.Scanner.preset("3T"))
    if three_d:
        phantom = _phantom(N_PARTITIONS, float(protocol.slab_thickness_m or 0.0))
    else:
        phantom = _phantom(1, 0.005)
    scanner = hf.Scanner.preset("3T", n_coils=2)
    fast = simulate_fast(phantom, sequence, scanner, noise=noise, rng=np.random.default_rng(0))
    bloch = simulate_bloch(
        phantom, sequence, scanner, noise=noise, rng=np.random.default_rng(0), options=BlochOptions(n_isochromats=4)
    )
    return fast, bloch


def _assert_same_contract(fast: RawData, bloch: RawData) -> None:
    assert fast.kspace.shape == bloch.kspace.shape
    assert fast.kspace.dtype == bloch.kspace.dtype == np.complex64
    assert fast.header.engine == "fast" and bloch.header.engine == "bloch"
    for field in dataclasses.fields(fast.header):
        if field.name == "engine":
            continue
        a, b = getattr(fast.header, field.name), getattr(bloch.header, field.name)
        if isinstance(a, float) and isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-9, abs=1e-12), field.name
        elif field.name == "affine":
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-12, err_msg=field.name)
        else:
            assert a == b, field.name
    assert (fast.mask is None) == (bloch.mask is None)
    if fast.mask is not None and bloch.mask is not None:
        np.testing.assert_array_equal(np.broadcast_to(fast.mask, bloch.mask.shape), bloch.mask)
    assert (fast.calibration is None) == (bloch.calibration is None)
    assert (fast.trajectory is None) and (bloch.trajectory is None)
    for k in (fast, bloch):  # acquired lines carry signal, the rest is zero
        lines = np.any(k.kspace != 0, axis=(0, -1))
        expected = (
            np.ones(lines.shape, bool)
            if k.mask is None
            else np.any(np.broadcast_to(k.mask, k.kspace.shape[1:]), axis=-1)
        )
        np.testing.assert_array_equal(lines, expected)


@pytest.mark.parametrize("name", FAMILIES_2D)
def test_engines_agree_on_shape_header_and_flags_2d(name: str) -> None:
    fast, bloch = _both(name, noise=False)
    _assert_same_contract(fast, bloch)
    assert fast.noise is None and bloch.noise is None


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES_3D)
def test_engines_agree_on_shape_header_and_flags_3d(name: str) -> None:
    fast, bloch = _both(name, noise=False)
    _assert_same_contract(fast, bloch)


def test_engines_draw_the_same_noise_scan() -> None:
    """With noise on, both engines add a noise scan of the same shape; same seed, same level -> the same draws
    where the k-space noise shapes match."""
    fast, bloch = _both("gre_t1_2d", noise=True)
    _assert_same_contract(fast, bloch)
    assert fast.noise is not None and bloch.noise is not None
    assert fast.noise.shape == bloch.noise.shape == (2, 256)
    assert fast.noise.dtype == bloch.noise.dtype == np.complex64
    np.testing.assert_allclose(fast.noise, bloch.noise, rtol=1e-5, atol=1e-9)
