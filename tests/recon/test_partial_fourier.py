"""Partial Fourier: POCS and homodyne recover a smooth-phase object from 5/8 of k-space."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from hifield.errors import ReconstructionError
from hifield.metrics import nmse
from hifield.recon import PartialFourierConfig, reconstruct


@pytest.mark.parametrize("side", ["k1_high", "k0_low"])
@pytest.mark.parametrize("method", ["pocs", "homodyne"])
def test_partial_fourier_beats_zero_filling(simdata: ModuleType, side: str, method: str) -> None:
    n = 64
    mask = np.zeros((1, n, n), bool)
    if side == "k1_high":
        mask[:, n - 40 :, :] = True  # 5/8 of the lines, the low-k1 side missing
    else:
        mask[:, :, :40] = True  # partial echo: the high-k0 side missing
    raw, img, _ = simdata.make_raw(n, 4, mask=mask, noise=0.001)
    gt = np.abs(img)
    err = np.sqrt(nmse(gt, np.abs(reconstruct(raw, method=method).data[0])))
    zero_filled = np.sqrt(nmse(gt, np.abs(reconstruct(raw, method="fft").data[0])))
    assert err < 0.03 < 0.1 < zero_filled


def test_pocs_converges_with_iterations(simdata: ModuleType) -> None:
    n = 64
    mask = np.zeros((1, n, n), bool)
    mask[:, n - 40 :, :] = True
    raw, img, _ = simdata.make_raw(n, 2, mask=mask)
    gt = np.abs(img)
    errs = [
        nmse(gt, np.abs(reconstruct(raw, method="pocs", config=PartialFourierConfig(n_iter=k)).data[0]))
        for k in (0, 2, 10)
    ]
    assert errs[0] > errs[1] > errs[2]


def test_symmetric_data_is_refused(simdata: ModuleType) -> None:
    raw, _, _ = simdata.make_raw(32, 2)
    with pytest.raises(ReconstructionError, match="not partial-Fourier"):
        reconstruct(raw, method="pocs")
