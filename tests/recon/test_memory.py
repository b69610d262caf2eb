"""Memory estimates of coil maps and reconstructions: above the measured peak, close to it, and enforced."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from hifield.errors import ConfigError, set_memory_limit
from hifield.recon import estimate_coil_maps, reconstruct, reconstructor
from hifield.recon.memory import coil_map_memory_bytes
from hifield.recon.registry import memory_needed

MiB = 2**20


def _peak_bytes(call: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        call()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.fixture
def no_limit() -> Iterator[None]:
    yield
    set_memory_limit(None)


@pytest.mark.parametrize(("n", "n_coils"), [(96, 8), (64, 16)])
@pytest.mark.parametrize("method", ["fft", "sense", "cs", "tv", "grappa"])
def test_reconstruction_estimate_bounds_the_measured_peak(
    simdata: ModuleType, method: str, n: int, n_coils: int
) -> None:
    mask = simdata.equispaced_mask(n, n, r=3, n_acs=24)
    raw, _, _ = simdata.make_raw(n, n_coils, mask=mask, noise=0.01)
    maps = estimate_coil_maps(raw) if reconstructor(method).needs_coil_maps else None
    # once untimed: a worker's first call also allocates its lazy imports and caches (PyWavelets' filter banks,
    # scipy.fft plans), which are not the reconstruction's arrays and would count when this test runs first
    reconstruct(raw, method=method, coil_maps=maps)
    measured = _peak_bytes(lambda: reconstruct(raw, method=method, coil_maps=maps))
    estimate = memory_needed(raw, method)
    # grappa's estimate carries its fixed source-matrix chunk budget, large next to these small problems
    slack = 4.0 * raw.kspace.nbytes + (130 * MiB if method == "grappa" else 0)
    assert measured <= estimate <= measured + slack, (method, measured / MiB, estimate / MiB)


@pytest.mark.parametrize(("method", "n", "n_coils"), [("espirit", 128, 8), ("espirit", 64, 16), ("walsh", 64, 16)])
def test_coil_map_estimate_bounds_the_measured_peak(
    simdata: ModuleType, monkeypatch: pytest.MonkeyPatch, method: str, n: int, n_coils: int
) -> None:
    raw, _, _ = simdata.make_raw(n, n_coils, mask=simdata.equispaced_mask(n, n, r=2, n_acs=24))
    # ESPIRiT's x-column chunks run one per core, and how far the threads' peaks overlap is up to the scheduler
    # (128² x 8 coils on 2 cores: 19.4 to 30.4 MiB from run to run). One core holds the whole grid in one chunk:
    # the same peak as every thread peaking together, which is what the estimate must cover, and repeatable.
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    measured = _peak_bytes(lambda: estimate_coil_maps(raw, method=method))  # type: ignore[arg-type]
    estimate = coil_map_memory_bytes(n_coils, (1, n, n), method=method, calib_shape=(1, 24, n))
    assert measured <= estimate <= 1.6 * measured + 2 * MiB, (measured / MiB, estimate / MiB)


def test_a_3d_volume_estimate_is_in_gibibytes_not_an_allocation() -> None:
    # 256 x 256 x 176 with 32 coils: ESPIRiT stays chunked (under a GiB of matrices plus the maps), Walsh does not
    espirit = coil_map_memory_bytes(32, (176, 256, 256), calib_shape=(24, 24, 32))
    walsh = coil_map_memory_bytes(32, (176, 256, 256), method="walsh")
    assert 2 * 2**30 < espirit < 12 * 2**30 and walsh > 100 * 2**30


def test_too_little_memory_is_refused_before_allocating(simdata: ModuleType, no_limit: None) -> None:
    raw, _, _ = simdata.make_raw(64, 8, mask=simdata.equispaced_mask(64, 64, r=2, n_acs=24))
    set_memory_limit(1 * MiB)
    with pytest.raises(
        ConfigError,
        match=r"espirit coil maps of 8 coils on a 1x64x64 grid needs about .* MiB, more "
        r"than the --max-memory limit of 1\.0 MiB",
    ):
        estimate_coil_maps(raw)
    with pytest.raises(ConfigError, match=r"CG-SENSE of 8 coils on a 1x64x64 grid needs about"):
        reconstruct(raw, method="sense", coil_maps=None)
    set_memory_limit(None)
    assert reconstruct(raw, method="fft").data.shape[-2:] == (64, 64)


def test_recon_command_refuses_an_over_limit_method_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_limit: None
) -> None:
    from hifield.cli import main as cli_main

    raw_path = tmp_path / "raw.h5"
    assert cli_main.main(["simulate", "--matrix", "64", "--coils", "8", "--out", str(raw_path)]) == 0
    out = tmp_path / "r.nii.gz"
    capsys.readouterr()
    code = cli_main.main(["--max-memory", "2M", "recon", str(raw_path), "--method", "sense", "--out", str(out)])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "needs about" in lines[0] and "2.0 MiB" in lines[0], lines
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["raw.h5"]
    assert cli_main.main(["recon", str(raw_path), "--method", "fft", "--out", str(out)]) == 0 and out.is_file()
    assert np.isfinite(out.stat().st_size)
