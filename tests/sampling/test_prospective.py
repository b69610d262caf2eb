"""Prospective undersampling: protocols play only the pattern's lines, so the scan time falls by R."""

from __future__ import annotations

import numpy as np
import pytest

import hifield as hf


@pytest.fixture(scope="module")
def scanner() -> hf.Scanner:
    return hf.Scanner.preset("3T")


@pytest.mark.parametrize(
    ("name", "accel"),
    # TSE plays whole echo trains (16 echoes): R is chosen so the acquired lines fill them; otherwise the last
    # train is played in full and the time ratio is ceil-limited (e.g. R 6 -> 43 lines -> 3 trains -> 5.33).
    [
        ("gre_t1_2d", 2.0),
        ("gre_t1_2d", 4.0),
        ("gre_t1_2d", 6.0),
        ("tse_t2_2d", 2.0),
        ("tse_t2_2d", 4.0),
        ("tse_t2_2d", 8.0),
    ],
)
def test_scan_time_ratio_within_five_percent_of_r(scanner: hf.Scanner, name: str, accel: float) -> None:
    protocol = hf.get_protocol(name)
    pattern = hf.variable_density_lines(protocol.matrix, acceleration=accel, n_calibration=16, seed=1)
    full = protocol.build(scanner)
    fast = protocol.build(scanner, phase_encode_lines=pattern.order)
    assert sorted(fast.phase_encode_lines.tolist()) == np.flatnonzero(pattern.mask[0, :, 0]).tolist()
    assert full.duration_s / fast.duration_s == pytest.approx(pattern.acceleration, rel=0.05)
    assert abs(pattern.acceleration - accel) / accel < 0.02


def test_tse_keeps_its_effective_te_when_accelerated(scanner: hf.Scanner) -> None:
    protocol = hf.get_protocol("tse_t2_2d")
    pattern = hf.variable_density_lines(protocol.matrix, acceleration=4, n_calibration=24, seed=0)
    built = protocol.build(scanner, phase_encode_lines=pattern.order)
    order = built.phase_encode_lines.tolist()
    echo = order.index(protocol.matrix // 2) % built.echo_train_length
    assert (echo + 1) * built.echo_spacing_s == pytest.approx(built.te_s, rel=1e-6)
    assert built.te_s == pytest.approx(protocol.build(scanner).te_s)
