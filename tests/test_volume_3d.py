"""3D volumes gain from parallel imaging: a (k2, k1) Poisson-disc MPRAGE at R = 4, end to end through ``scan``."""

from __future__ import annotations

import pytest

import hifield as hf

pytest.importorskip("pypulseq")


@pytest.mark.slow
def test_mprage_volume_at_r4_gains_from_sense_and_more_from_cs() -> None:
    """32 x 32 x 32 MPRAGE, 16 coils, R = 4 (about 150 s on a loaded 2-core machine: the simulation dominates)."""
    protocol = hf.get_protocol("mprage_3d").with_changes(matrix=32, n_partitions=32)
    config = hf.ScanConfig(
        protocol=protocol, acceleration=4.0, n_coils=16, write_files=False, recons=("fft", "sense", "cs")
    )
    result = hf.scan(config)
    summary = result.summary
    assert summary["pattern"] == "poisson" and summary["acceleration"] == pytest.approx(4.0, rel=0.01)
    assert summary["scan_time_full_s"] / summary["scan_time_s"] == pytest.approx(4.0, rel=0.05)  # fewer inversions
    nmse = {m["method"]: m["nmse"] for m in summary["reconstructions"]}
    assert result.truth.shape == result.images["sense"].shape == (32, 32, 32)  # scored on the same grid
    assert nmse["sense"] <= 0.5 * nmse["fft"]
    assert nmse["cs"] < nmse["sense"]
