"""One phantom factory: the scan's phantoms (twice as fine over the protocol's FOV, slabs for 3D) come from it."""

from __future__ import annotations

import numpy as np
import pytest

import hifield.pipeline as pipeline
from hifield.errors import ConfigError
from hifield.phantom import PHANTOM_KINDS, brain_phantom, make_phantom, nist_phantom, shepp_logan_phantom
from hifield.sequence import get_protocol


def test_there_is_one_factory_and_one_list_of_names() -> None:
    assert not hasattr(pipeline, "make_scan_phantom")
    assert pipeline.PHANTOMS == PHANTOM_KINDS


@pytest.mark.parametrize("kind", PHANTOM_KINDS)
def test_oversampled_grid_over_the_given_fov(kind: str) -> None:
    p = make_phantom(kind, b0_t=3.0, matrix=16, fov_m=0.2, oversampling=2)
    assert p.shape == (1, 32, 32)
    np.testing.assert_allclose(p.voxel_size_m[1:], [0.2 / 32, 0.2 / 32])


def test_same_phantoms_as_the_generators_called_directly() -> None:
    """The factory only routes: the scan's 2D phantoms equal the generators' output for the same grid."""
    made = make_phantom("shepp-logan", b0_t=3.0, matrix=16, fov_m=0.2, oversampling=2)
    direct = shepp_logan_phantom(b0_t=3.0, matrix=32, fov_m=0.2)
    np.testing.assert_array_equal(made.pd, direct.pd)
    np.testing.assert_array_equal(made.affine, direct.affine)
    made = make_phantom("nist-t2", b0_t=3.0, matrix=16, fov_m=0.16, oversampling=2)
    direct = nist_phantom(b0_t=3.0, array="t2", matrix=32, fov_m=0.16)
    np.testing.assert_array_equal(made.t2_s, direct.t2_s)


def test_slab_grid_is_the_brain_on_the_partitions() -> None:
    made = make_phantom("brain", b0_t=3.0, matrix=16, fov_m=0.24, oversampling=2, n_slices=4, slab_thickness_m=0.04)
    direct = brain_phantom(b0_t=3.0, matrix=16, fov_m=0.24, oversampling=2, n_slices=4, slice_thickness_m=0.01)
    assert made.shape == (4, 32, 32)
    np.testing.assert_array_equal(made.pd, direct.pd)
    with pytest.raises(ConfigError, match="3D protocols run on the brain phantom"):
        make_phantom("nist", matrix=16, n_slices=4, slab_thickness_m=0.04)


def test_phantom_for_protocol_uses_the_protocols_grid() -> None:
    mprage = get_protocol("mprage_3d").with_changes(matrix=16, n_partitions=4, slab_thickness_m=0.04)
    p = pipeline.phantom_for_protocol("brain", mprage, b0_t=3.0)
    assert p.shape == (4, 32, 32)
    np.testing.assert_allclose(p.voxel_size_m, [0.01, 0.24 / 32, 0.24 / 32])
    gre = get_protocol("gre_t1_2d").with_changes(matrix=16, fov_m=0.2)
    assert pipeline.phantom_for_protocol("water-fat", gre, b0_t=3.0).shape == (1, 32, 32)
