"""``sample_linear`` against ``scipy.ndimage.map_coordinates(order=1)``: the same values, edges included."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from hifield._interp import sample_linear


@pytest.mark.parametrize("shape", [(7, 9, 11), (5,), (1, 6, 4), (20, 30)])
@pytest.mark.parametrize("mode", ["constant", "nearest"])
def test_matches_map_coordinates(shape: tuple[int, ...], mode: str) -> None:
    rng = np.random.default_rng(len(shape))
    base = rng.random(shape).astype(np.float32)
    layouts = [base, np.asfortranarray(base), np.flip(base, axis=-1), (base * 255).astype(np.uint8)]
    coords = rng.uniform(-1.5, np.array(shape)[:, None] + 0.5, size=(len(shape), 2000))
    coords[:, :4] = np.array(shape)[:, None] - 1.0  # exactly on the last sample
    coords[:, 4:8] = 0.0
    coords[0, 8] = -1e-9  # just outside: cval in constant mode
    together = sample_linear(layouts, coords.reshape(len(shape), 40, 50), mode=mode)  # type: ignore[arg-type]
    assert together.shape == (len(layouts), 40, 50)
    for k, vol in enumerate(layouts):
        expected = ndimage.map_coordinates(vol.astype(np.float32), coords, order=1, mode=mode, cval=0.0)
        alone = sample_linear(vol, coords, mode=mode)
        scale = max(float(np.abs(expected).max()), 1.0)
        assert np.abs(alone - expected).max() <= 1e-5 * scale
        assert np.array_equal(together[k].ravel(), alone)


def test_refuses_what_it_cannot_sample() -> None:
    with pytest.raises(ValueError, match="rows"):
        sample_linear(np.zeros((3, 3)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="mode"):
        sample_linear(np.zeros(3), np.zeros((1, 2)), mode="wrap")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shapes"):
        sample_linear((np.zeros(3), np.zeros(4)), np.zeros((1, 2)))
