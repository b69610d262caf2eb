"""Random protocols (seeded): each either builds a sequence that passes pypulseq's timing check and hifield's checks
run, or is refused with a one-line hifield error; never a raw pypulseq exception."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hifield.errors import HifieldError
from hifield.hardware.scanner import Scanner
from hifield.sequence import check, check_timing, get_protocol

NAMES = [
    "gre_t1_2d",
    "se_t1_2d",
    "tse_t2_2d",
    "flair_2d",
    "bssfp_2d",
    "epi_gre_2d",
    "epi_se_2d",
    "radial_gre_2d",
    "spiral_vd_2d",
    "gre_t1_3d",
    "mprage_3d",
]


def random_case(rng: np.random.Generator, name: str):
    p = get_protocol(name)
    ch: dict[str, object] = {
        "fov_m": float(rng.uniform(0.02, 0.4)),
        "matrix": int(rng.choice([16, 32, 64])),
        "flip_angle_rad": math.radians(float(rng.uniform(5, 180))),
        "rf_duration_s": float(rng.uniform(0.0002, 0.005)),
        "tr_s": float(rng.uniform(0.003, 1.0)),
    }
    if hasattr(p, "readout_bandwidth_hz_per_pixel"):
        ch["readout_bandwidth_hz_per_pixel"] = float(rng.uniform(50, 4000))
    if hasattr(p, "slice_thickness_m"):
        ch["slice_thickness_m"] = float(rng.uniform(0.0008, 0.02))
    if hasattr(p, "te_s"):
        ch["te_s"] = float(rng.uniform(0.001, 0.1))
    if name in ("tse_t2_2d", "flair_2d"):
        ch["echo_spacing_s"] = float(rng.uniform(0.003, 0.03))
        ch["te_s"] = ch["echo_spacing_s"] * int(rng.integers(1, 5))
        ch["echo_train_length"] = 4
    if name == "flair_2d":
        ch["tr_s"] = 3.0
    if name in ("gre_t1_3d", "mprage_3d"):
        ch["n_partitions"] = 8
    if name == "mprage_3d":
        ch["tr_s"] = float(rng.uniform(0.004, 0.02))
        ch["inversion_repetition_s"] = 2.0
    if name == "radial_gre_2d":
        lines = [0, 1, 2]
    elif name == "spiral_vd_2d":
        lines = [0]
    else:
        lines = list(range(0, int(ch["matrix"]), 4))
    preset = str(rng.choice(["1.5T", "3T", "5T", "7T"]))
    return p, ch, lines, preset


@pytest.mark.parametrize("seed", [pytest.param(s, marks=[] if s < 2 else [pytest.mark.slow]) for s in range(10)])
def test_random_protocols_build_cleanly_or_are_refused_in_one_line(seed):
    rng = np.random.default_rng(seed)
    outcomes = {"built": 0, "refused": 0}
    for name in NAMES:
        protocol, changes, lines, preset = random_case(rng, name)
        scanner = Scanner.preset(preset)
        try:
            built = protocol.with_changes(**changes).build(scanner, phase_encode_lines=lines)
        except HifieldError as error:
            assert "\n" not in str(error)
            outcomes["refused"] += 1
            continue
        check_timing(built)  # a sequence we built must pass pypulseq's own timing check
        for violation in check(built, scanner):
            assert "\n" not in str(violation)
        outcomes["built"] += 1
    assert outcomes["built"] + outcomes["refused"] == len(NAMES)
