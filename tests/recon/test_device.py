"""``--device``: the iterative reconstructions on torch tensors give the numpy results, and bad devices are refused."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from hifield.data import RawData, RawHeader
from hifield.errors import ConfigError
from hifield.hardware import Scanner
from hifield.ops import NUFFTOp
from hifield.recon import estimate_coil_maps, reconstruct
from hifield.recon.device import current_device, use_device, validate_device
from hifield.sequence import RadialProtocol
from hifield.sim import sequence_trajectory

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs torch")


def _cuda() -> bool:
    if not HAS_TORCH:
        return False
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.parametrize(
    ("spec", "needle"),
    [("gpu", "unknown --device 'gpu'; choose cpu, cuda, cuda:N or torch"), ("cuda:x", "unknown --device")],
)
def test_unknown_devices_are_refused_in_one_line(spec: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        validate_device(spec)


def test_cpu_needs_no_torch_and_torch_devices_need_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails as where it is not installed
    assert validate_device("CPU") == "cpu"
    for spec in ("torch", "cuda"):
        with pytest.raises(ConfigError, match=r'needs torch; install it with: pip install "hifield\[gpu\]"'):
            validate_device(spec)


@pytest.mark.skipif(_cuda() or not HAS_TORCH, reason="a CUDA device is present (or torch is absent)")
def test_cuda_without_a_gpu_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"torch sees no CUDA device .* use --device cpu"):
        validate_device("cuda")


def test_use_device_scopes_the_choice() -> None:
    assert current_device() == "cpu"
    with use_device("cpu"), use_device(None):
        assert current_device() == "cpu"
    assert current_device() == "cpu"


def _agree(a: np.ndarray, b: np.ndarray, rtol: float) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


@needs_torch
@pytest.mark.parametrize("method", ["sense", "cs", "tv"])
def test_torch_path_gives_the_numpy_image(simdata: ModuleType, method: str) -> None:
    raw, _, _ = simdata.make_raw(64, 6, mask=simdata.equispaced_mask(64, 64, r=3, n_acs=16), noise=0.01)
    maps = estimate_coil_maps(raw)
    on_cpu = reconstruct(raw, method=method, coil_maps=maps).data
    on_torch = reconstruct(raw, method=method, coil_maps=maps, device="torch")
    assert on_torch.data.dtype == np.complex64 and isinstance(on_torch.data, np.ndarray)
    assert _agree(on_cpu, on_torch.data, 1e-4) < 1e-4
    assert current_device() == "cpu"  # the choice ends with the call


def _radial_raw(simdata: ModuleType, n: int, n_spokes: int, n_coils: int = 6) -> RawData:
    fov = 0.2
    protocol = RadialProtocol(matrix=n, fov_m=fov, n_spokes=n_spokes, readout_oversampling=1)
    trajectory = sequence_trajectory(protocol.build(Scanner.preset("3T")))
    op = NUFFTOp(trajectory.kspace_m, (1, n, n), (0.005, fov / n, fov / n), batch_shape=(n_coils,))
    y = op @ (simdata.smooth_coil_maps(n_coils, (n, n)) * simdata.phantom_image(n)[None]).astype(np.complex64)
    y = y + 0.002 * np.random.default_rng(0).standard_normal(y.shape)
    header = RawHeader(
        b0_t=3.0, fov_m=(0.005, fov, fov), matrix=(1, n, n), te_s=0.01, tr_s=0.1, flip_angle_rad=0.3,
        trajectory="goldenangle",
    )  # fmt: skip
    kspace = y.reshape(n_coils, 1, *trajectory.kspace_m.shape[:-1]).astype(np.complex64)
    return RawData(kspace=kspace, header=header, trajectory=trajectory)


@needs_torch
def test_torch_path_of_radial_data_runs_the_torch_nufft(simdata: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    from hifield.ops.nufft_torch import TorchNUFFT

    raw = _radial_raw(simdata, 48, 40)
    maps = estimate_coil_maps(raw)
    calls = []
    forward = TorchNUFFT.forward
    monkeypatch.setattr(TorchNUFFT, "forward", lambda self, x: calls.append(1) or forward(self, x))
    on_cpu = reconstruct(raw, method="sense", coil_maps=maps).data
    assert not calls
    on_torch = reconstruct(raw, method="sense", coil_maps=maps, device="torch").data
    assert calls  # the torch NUFFT, not finufft through the host
    assert _agree(on_cpu, on_torch, 1e-3) < 1e-3  # complex64 NUFFT accurate to 1e-4


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
@pytest.mark.gpu
@pytest.mark.parametrize("method", ["sense", "cs", "tv"])
def test_cuda_gives_the_numpy_image(simdata: ModuleType, method: str) -> None:
    raw, _, _ = simdata.make_raw(64, 6, mask=simdata.equispaced_mask(64, 64, r=3, n_acs=16), noise=0.01)
    maps = estimate_coil_maps(raw)
    on_cpu = reconstruct(raw, method=method, coil_maps=maps).data
    on_gpu = reconstruct(raw, method=method, coil_maps=maps, device="cuda").data
    assert _agree(on_cpu, on_gpu, 1e-4) < 1e-4


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hifield.cli.main", *args], capture_output=True, text=True, timeout=300, check=False
    )


@needs_torch
def test_recon_and_scan_take_the_device(tmp_path: Path) -> None:
    scan_dir = tmp_path / "scan"
    proc = _run(
        "scan", "--matrix", "64", "--slices", "1", "--calib", "12", "--recon", "fft,sense", "--device", "torch",
        "--out", str(scan_dir), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["device"] == "torch"
    assert {m["method"] for m in summary["reconstructions"]} == {"fft", "sense"}
    raw = scan_dir / "raw.h5"
    out = tmp_path / "sense.npy"
    proc = _run("recon", str(raw), "--method", "sense", "--device", "torch", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["device"] == "torch" and np.load(out).dtype == np.complex64


def test_a_bad_device_writes_nothing(tmp_path: Path) -> None:
    for args in (["scan", "--matrix", "64", "--out", str(tmp_path / "s")], ["recon", "x.h5", "--out", "y.npy"]):
        proc = _run(*args, "--device", "gpu")
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 1 and len(lines) == 1 and "unknown --device 'gpu'" in lines[0], proc.stderr
    assert not list(tmp_path.iterdir())
