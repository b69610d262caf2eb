"""hifield's ``fast`` and ``bloch`` engines side by side with MRzeroCore on the same 2D GRE ``.seq`` and phantom.

MRzeroCore (Endres et al., MRM 2024; PyPI ``MRzeroCore``) is AGPL-licensed: it is never a hifield dependency and
none of its code is used. It runs as a black box in its own virtual environment (``--mrzero-python``, e.g.
``/tmp/mrzero_venv/bin/python`` after ``python -m venv /tmp/mrzero_venv && /tmp/mrzero_venv/bin/pip install torch
MRzeroCore``), fed through files: the ``.seq`` that hifield wrote and ``.npz`` maps of the phantom.

Problem: the brain phantom at 3 T (fat given a single 0-ppm peak, as MRzero has no chemical shift), matrix
64 x 64 and 128 x 128 (phantom on the same grid), the hifield 2D RF-spoiled GRE protocol (TR 20 ms, 15 degrees,
TE 5 ms, 150 dummy scans), 8 receive coils, no noise. MRzero takes one T1/T2/T2' per voxel and the phantom has
partial-volume voxels, so every tissue becomes its own set of voxels (PD = fraction x tissue PD, the tissue's T1, T2
and T2' = 1/(1/T2* - 1/T2), the B0 map, B1 = 1 and hifield's coil sensitivities); ``VoxelGridPhantom.build`` drops
voxels with PD <= 1e-6, so a tissue costs only the voxels that contain it. ``--mrzero-mode combined`` (default)
concatenates the tissues' voxels into one ``SimData`` and simulates once, on the union of one pre-pass graph per
tissue (``compute_graph(..., tissues=...)``); ``per-tissue`` simulates each tissue alone and sums the signals. torch
gets all CPU threads. ``execute_graph`` thresholds: ``--mrzero-min-signal`` (1e-3, tighter than MRzero's 1e-2).

Reported: wall time of each simulator (hifield in-process, ``fast`` the median of 3 calls, ``bloch`` after a Numba
warm-up; MRzero's phantom build, pre-pass and execution inside its worker, torch on CPU) and the NRMSE of the
root-sum-of-squares images of each engine against MRzero's (after a least-squares scale, since the signal units
differ). The orientation of MRzero's image is matched by trying the 8 flips/transposes and keeping the best
(reported). Diagnostics: ``fast`` vs MRzero on the voxels without CSF, and :func:`fast_with_transient`.
MRzero signals are cached by a hash of their inputs (``--mrzero-cache``), so the hifield side can be re-run
against them.

Two settings (issue 19), ``--setting ordinary accurate`` (the default runs both):

* **(a) ordinary**: a community-style FLASH as a new user writes it (pypulseq ``write_gradient_echo`` layout:
  28 mT/m, 150 T/m/s, TE 4.3 ms, TR 10 ms, 10 degrees, no labels, no dummy scans), simulated as written; MRzero with
  its default graph and thresholds on one set of voxels (each voxel takes its dominant tissue's T1/T2/T2', PD the sum
  over tissues).
* **(b) accurate**: the same FLASH after ``--dummies`` dummy TRs, MRzero on one voxel set per tissue with the union
  graph (``compute_graph(..., tissues=...)``) and ``--mrzero-min-signal``.

For both, hifield reads the ``.seq`` file (Cartesian detected from the k-space of its readouts), ``fast`` plays it as
written (``steady_state=False``) and ``bloch`` with its default isochromat count. Two ratios are reported: the
simulate call (hifield in-process vs MRzero's phantom build + graph + execution inside its worker) and the whole
process (``python -m hifield.cli.main simulate --seq ...``, which plays the file as written, vs the MRzero worker
process, imports included, both timed from outside, each after one untimed run so that both start as a user's second
run does: bytecode compiled and cached, ``PYTHONDONTWRITEBYTECODE`` dropped from their environment, as pip leaves
MRzero's installed modules compiled while an editable hifield compiles its own on first import). MRzero's torch gets
one thread per core. The script refuses to time on a machine whose 1-minute load
average is above 1.0 (``--force`` overrides; the numbers are then not results), and before each timed step (the
hifield calls, the hifield process, the MRzero process) waits until the load its own previous step left has fallen
to 1.0 again (recorded per row). In (a) MRzero's object is not hifield's (one tissue per voxel), so the image
agreement is also reported against ``fast`` on that same object (:func:`dominant_tissue_phantom`), and against one
more (untimed) MRzero run on it with its graph thresholds tightened from its defaults (1e-2) to
:data:`CONVERGED_SIGNAL`: what MRzero's own pruning contributes to the difference.
``--hifield-only`` skips MRzero (smoke test of the hifield side).

Run: ``python benchmarks/sim_vs_mrzero.py --mrzero-python /tmp/mrzero_venv/bin/python``.
Writes ``benchmarks/results/sim_vs_mrzero_settings.json`` and ``.md`` (``--legacy``: the former single setting,
the hifield GRE protocol with 150 dummies and MRzero's per-tissue union graph, to ``sim_vs_mrzero.json``/``.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hifield.hardware.scanner import Scanner
from hifield.phantom import brain_phantom
from hifield.sequence import GreProtocol
from hifield.sim.engines import fast as fast_engine
from hifield.sim.engines.bloch import BlochOptions, simulate_bloch
from hifield.sim.engines.fast import simulate_fast

if TYPE_CHECKING:
    from hifield.phantom import Phantom
    from hifield.sequence import BuiltSequence

RESULTS = Path(__file__).resolve().parent / "results"
CONVERGED_SIGNAL = 1e-4
PROCESS_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""Environment of the timed processes: bytecode is cached, as in a user's environment."""
"""MRzero's ``min_emitted_signal`` / ``min_latent_signal`` for the converged reference of the ordinary setting."""

WORKER = r"""
import json, sys, time
import numpy as np
import torch
import MRzeroCore as mr0

job = json.loads(sys.argv[1])
torch.set_num_threads(job["threads"])
maps = np.load(job["maps"])
t0 = time.perf_counter()
seq = mr0.Sequence.import_file(job["seq"])
parts = []  # one SimData per tissue: MRzero takes one T1/T2/T2' per voxel; build() drops voxels with PD <= 1e-6
for k in range(maps["pd"].shape[0]):
    phantom = mr0.VoxelGridPhantom(
        maps["pd"][k], maps["t1"][k], maps["t2"][k], maps["t2dash"][k], np.zeros_like(maps["pd"][k]), maps["b0"],
        np.ones((1, *maps["b0"].shape)), maps["sens"], maps["affine_mm"],
    )
    parts.append(phantom.build())
n_voxels = [int(d.PD.numel()) for d in parts]
if job["mode"] == "combined":
    # all tissue voxels in one SimData (partial-volume voxels appear once per tissue, at the same position);
    # the graph is the union of one pre-pass per tissue (compute_graph's documented ``tissues=``)
    cat = lambda name, dim=0: torch.cat([getattr(d, name) for d in parts], dim)
    first = parts[0]
    data = mr0.SimData(
        cat("PD"), cat("T1"), cat("T2"), cat("T2dash"), cat("D"), cat("B0"), cat("B1", 1), cat("coil_sens", 1),
        first.size, first.affine, cat("voxel_pos"), first.nyquist, first.dephasing_func,
    )
    tissues = {
        str(k): {"T1": float(d.T1[0]), "T2": float(d.T2[0]), "T2dash": float(d.T2dash[0]), "D": float(d.D[0])}
        for k, d in enumerate(parts)
    }
    graph = mr0.compute_graph(seq, data, job["max_states"], job["min_state_mag"], tissues=tissues, threaded=False)
    t1 = time.perf_counter()
    total = mr0.execute_graph(graph, seq, data, job["min_emitted"], job["min_latent"], print_progress=False)
elif job["mode"] == "default":  # the ordinary use: one voxel set, MRzero's default graph and thresholds
    data = parts[0]
    graph = mr0.compute_graph(seq, data)
    t1 = time.perf_counter()
    total = mr0.execute_graph(graph, seq, data, print_progress=False)
else:
    total, t1 = None, 0.0
    for data in parts:
        tg = time.perf_counter()
        graph = mr0.compute_graph(seq, data, job["max_states"], job["min_state_mag"])
        t1 += time.perf_counter() - tg
        signal = mr0.execute_graph(graph, seq, data, job["min_emitted"], job["min_latent"], print_progress=False)
        total = signal if total is None else total + signal
    t1 += t0
wall = time.perf_counter() - t0
np.save(job["out"], total.detach().numpy())
print(json.dumps({"wall_s": wall, "prepass_s": t1 - t0, "voxels_per_tissue": n_voxels}))
"""


def rss_image(kspace: np.ndarray) -> np.ndarray:
    """Root-sum-of-squares image of a ``(coil, k1, k0)`` k-space (orthonormal centred FFT)."""
    img = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    return np.sqrt((np.abs(img) ** 2).sum(axis=0))


def nrmse_scaled(image: np.ndarray, reference: np.ndarray) -> float:
    """NRMSE of ``image`` against ``reference`` after the least-squares scale of ``image``."""
    scale = float((image * reference).sum() / max((image * image).sum(), 1e-30))
    return float(np.linalg.norm(scale * image - reference) / np.linalg.norm(reference))


def oriented(image: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, str]:
    """The flip/transpose of ``image`` closest to ``reference``."""
    best = (np.inf, image, "identity")
    for transpose in (False, True):
        base = image.T if transpose else image
        for fy in (False, True):
            for fx in (False, True):
                cand = base[::-1] if fy else base
                cand = cand[:, ::-1] if fx else cand
                err = nrmse_scaled(cand, reference)
                name = f"{'T' if transpose else ''}{'flip-y ' if fy else ''}{'flip-x' if fx else ''}".strip()
                if err < best[0]:
                    best = (err, np.ascontiguousarray(cand), name or "identity")
    return best[1], best[2]


@dataclasses.dataclass(frozen=True)
class MrzeroOptions:
    """How MRzeroCore is run (the simulated problem is the same for every choice)."""

    mode: str = "combined"
    """``"combined"``: all tissues' voxels in one simulation; ``"per-tissue"``: one simulation per tissue, summed."""
    min_emitted: float = 1e-3
    """``execute_graph`` ``min_emitted_signal`` (MRzero's default is 1e-2)."""
    min_latent: float = 1e-3
    """``execute_graph`` ``min_latent_signal`` (MRzero's default is 1e-2)."""
    max_states: int = 200
    """``compute_graph`` ``max_state_count`` (MRzero's default)."""
    min_state_mag: float = 1e-4
    """``compute_graph`` ``min_state_mag`` (MRzero's default)."""


def fast_with_transient(phantom: Phantom, sequence: BuiltSequence, scanner: Scanner) -> np.ndarray:
    """Diagnostic, not an engine: the ``fast`` k-space with each line weighted by the echo of its own excitation.

    The ``fast`` engine gives every k-space line the echo of excitation ``max(n_dummy + n_lines, 300)`` of the
    RF-spoiled EPG train (its steady state). Here each tissue is simulated alone with ``fast`` (the engine is linear
    in the tissues) and its line ``k1`` played by ADC ``j`` is scaled by ``echo[n_dummy + j] / echo[last]`` of the
    same on-resonance EPG train (``hifield.sim.epg``), i.e. the transient of the train as the sequence plays it.
    Off-resonance during the train (B0 changes RF spoiling) is not included. Returns ``(coil, k1, k0)``.
    """
    from hifield.sim.epg import epg_spoiled_gre

    lines = np.asarray(sequence.phase_encode_lines)
    n_dummy = int(sequence.n_dummy_scans)
    n_train = max(n_dummy + lines.size, int(getattr(fast_engine, "STEADY_STATE_EXCITATIONS", 300)))
    increment = float(getattr(sequence.protocol, "rf_spoiling_increment_deg", 117.0))
    phases = np.radians((increment * np.arange(n_train) * (np.arange(n_train) + 1) / 2.0) % 360.0)
    total = None
    for k, tissue in enumerate(phantom.tissues):
        if tissue.pd <= 0 or not phantom.fractions[k].any():
            continue
        alone = phantom.replace(
            tissues=tuple(t if i == k else dataclasses.replace(t, pd=0.0) for i, t in enumerate(phantom.tissues))
        )
        kspace = simulate_fast(alone, sequence, scanner, noise=False, rng=np.random.default_rng(0)).kspace[:, 0]
        echoes = epg_spoiled_gre(
            flip_angle_rad=sequence.flip_angle_rad,
            tr_s=sequence.tr_s,
            te_s=sequence.te_s,
            t1_s=tissue.t1_s,
            t2_s=tissue.t2_s,
            rf_phases_rad=phases,
            n_states=min(n_train + 2, 400),
        )
        weight = np.ones(kspace.shape[-2], dtype=np.complex128)
        weight[lines] = echoes[n_dummy + np.arange(lines.size)] / echoes[-1]
        part = kspace.astype(np.complex128) * weight[:, None]
        total = part if total is None else total + part
    assert total is not None
    return total


def run(
    n: int,
    *,
    mrzero_python: str,
    n_coils: int,
    n_iso: int,
    tmp: Path,
    mrzero: MrzeroOptions,
    with_bloch: bool = True,
    tr_s: float = 0.02,
    n_dummy: int = 150,
    save: str | None = None,
    cache: Path | None = None,
) -> dict[str, object]:
    """Simulate one matrix size with every simulator and compare the images."""
    scanner = Scanner.preset("3T", n_coils=n_coils)
    protocol = GreProtocol(
        name="gre_vs_mrzero",
        matrix=n,
        fov_m=0.24,
        tr_s=tr_s,
        te_s=0.005,
        flip_angle_rad=np.radians(15.0),
        n_dummy_scans=n_dummy,
    )
    sequence = protocol.build(scanner)
    brain = brain_phantom(matrix=n, fov_m=0.24, b0_t=3.0)
    tissues = tuple(dataclasses.replace(t, chemical_shift_ppm=(0.0,), peak_amplitudes=(1.0,)) for t in brain.tissues)
    phantom = brain.replace(tissues=tissues)
    if os.environ.get("HIFIELD_BENCH_NO_B0"):
        phantom = phantom.replace(off_resonance_hz=np.zeros_like(phantom.off_resonance_hz))
    load_start = os.getloadavg()[0]

    rng = np.random.default_rng(0)
    t_fast_runs = []
    for _ in range(3):  # first call included: the fast engine has no compile step
        t0 = time.perf_counter()
        fast = simulate_fast(phantom, sequence, scanner, noise=False, rng=rng)
        t_fast_runs.append(time.perf_counter() - t0)
    t_fast = float(np.median(t_fast_runs))
    # engines that can start from full relaxation play the .seq exactly as written (150 dummies included), as
    # MRzero and bloch do; their default adds preparation passes to start in the sequence's own steady state
    fast_written = None
    t_fast_written = None
    if "steady_state" in inspect.signature(simulate_fast).parameters:
        t0 = time.perf_counter()
        fast_written = simulate_fast(phantom, sequence, scanner, noise=False, rng=rng, steady_state=False)
        t_fast_written = time.perf_counter() - t0
    bloch = None
    t_bloch = None
    if with_bloch:
        t0 = time.perf_counter()
        bloch = simulate_bloch(
            phantom, sequence, scanner, noise=False, rng=rng, options=BlochOptions(n_isochromats=n_iso)
        )
        t_bloch = time.perf_counter() - t0

    seq_path = tmp / f"gre_{n}.seq"
    sequence.seq.write(str(seq_path))
    sens = scanner.receive.sensitivities(phantom.affine, phantom.shape)[:, 0]  # (coil, y, x)
    _, dy, dx = phantom.voxel_size_m

    def xyz(a: np.ndarray) -> np.ndarray:  # (y, x) -> (x, y, 1)
        return np.ascontiguousarray(a.T[:, :, None])

    keep = [k for k, t in enumerate(phantom.tissues) if t.pd > 0 and phantom.fractions[k].any()]
    ones = np.ones(phantom.shape[1:])
    maps_path = tmp / f"maps_{n}.npz"
    np.savez(
        maps_path,
        pd=np.stack([xyz(phantom.fractions[k, 0] * phantom.tissues[k].pd) for k in keep]).astype(np.float32),
        t1=np.stack([xyz(ones * phantom.tissues[k].t1_s) for k in keep]).astype(np.float32),
        t2=np.stack([xyz(ones * phantom.tissues[k].t2_s) for k in keep]).astype(np.float32),
        t2dash=np.stack(
            [xyz(ones / max(1.0 / phantom.tissues[k].t2star_s - 1.0 / phantom.tissues[k].t2_s, 1e-3)) for k in keep]
        ).astype(np.float32),
        b0=xyz(phantom.off_resonance_hz[0]).astype(np.float32),
        sens=np.ascontiguousarray(np.transpose(sens, (0, 2, 1))[..., None]).astype(np.complex64),
        affine_mm=np.diag([dx * 1e3, dy * 1e3, float(protocol.slice_thickness_m) * 1e3, 1.0]).astype(np.float32),
    )
    job_options = {"threads": os.cpu_count() or 1, **dataclasses.asdict(mrzero)}
    digest = hashlib.sha256(seq_path.read_bytes() + maps_path.read_bytes() + WORKER.encode())
    digest.update(json.dumps(job_options, sort_keys=True).encode())
    cached = cache is not None and (cache / f"{digest.hexdigest()[:24]}.npy").exists()
    out_path = (cache or tmp) / f"{digest.hexdigest()[:24]}.npy"
    if cached:  # the same .seq, maps, worker and options: reuse the signal and its recorded wall time
        report = json.loads(out_path.with_suffix(".json").read_text())
    else:
        job = {"maps": str(maps_path), "seq": str(seq_path), "out": str(out_path), **job_options}
        proc = subprocess.run(
            [mrzero_python, "-c", WORKER, json.dumps(job)],
            capture_output=True,
            text=True,
            check=False,
            timeout=6 * 3600,
            env=PROCESS_ENV,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"MRzero worker failed: {proc.stderr.strip().splitlines()[-1:]}")
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        report["load_average_1min_end"] = os.getloadavg()[0]
        out_path.with_suffix(".json").write_text(json.dumps(report))
    t_mrzero = float(report["wall_s"])
    signal = np.load(out_path)  # (samples, coils)
    n_ro = sequence.n_readout_samples
    lines = signal.reshape(-1, n_ro, signal.shape[-1])  # (ADC, k0, coil), ADCs in acquisition order
    k_mr = np.zeros((signal.shape[-1], n, n_ro), dtype=np.complex128)
    k_mr[:, sequence.phase_encode_lines, :] = np.transpose(lines, (2, 0, 1))

    ref = rss_image(k_mr)
    img_fast = rss_image(fast.kspace[:, 0].astype(np.complex128))
    img_bloch = None if bloch is None else rss_image(bloch.kspace[:, 0].astype(np.complex128))
    ref_oriented, orientation = oriented(ref, img_fast if img_bloch is None else img_bloch)
    img_written = None if fast_written is None else rss_image(fast_written.kspace[:, 0].astype(np.complex128))
    # the per-line diagnostic assumes one steady-state echo per tissue on every line (the engine up to c5cd4d8)
    legacy = hasattr(fast_engine, "STEADY_STATE_EXCITATIONS")
    img_transient = rss_image(fast_with_transient(phantom, sequence, scanner)) if legacy else None
    csf = [k for k, t in enumerate(phantom.tissues) if t.name == "csf"]
    no_csf = ~phantom.fractions[csf[0], 0].astype(bool) if csf else np.ones(ref.shape, dtype=bool)
    if save:
        arrays: dict[str, np.ndarray] = {
            "fast": img_fast,
            "no_csf": no_csf,
            "mrzero": ref_oriented,
            "mrzero_kspace": k_mr,
            "fast_kspace": fast.kspace[:, 0],
        }
        for name, image in (("fast_transient", img_transient), ("fast_as_written", img_written), ("bloch", img_bloch)):
            if image is not None:
                arrays[name] = image
        np.savez(f"{save}_{n}.npz", **arrays)  # type: ignore[arg-type]
    return {
        "matrix": n,
        "coils": n_coils,
        "bloch_isochromats": n_iso if with_bloch else None,
        "wall_fast_s": t_fast,
        "wall_fast_runs_s": t_fast_runs,
        "wall_fast_as_written_s": t_fast_written,
        "wall_bloch_s": t_bloch,
        "wall_mrzero_s": t_mrzero,
        "mrzero_prepass_s": report["prepass_s"],
        "mrzero_voxels_per_tissue": report["voxels_per_tissue"],
        "mrzero_options": dataclasses.asdict(mrzero),
        "mrzero_from_cache": cached,
        "load_average_1min_start": load_start,
        "load_average_1min_end": os.getloadavg()[0],
        "load_average_1min_end_mrzero": report.get("load_average_1min_end"),
        "nrmse_fast_vs_mrzero": nrmse_scaled(img_fast, ref_oriented),
        "nrmse_bloch_vs_mrzero": None if img_bloch is None else nrmse_scaled(img_bloch, ref_oriented),
        "nrmse_fast_vs_bloch": None if img_bloch is None else nrmse_scaled(img_fast, img_bloch),
        "diagnostic_nrmse_fast_vs_mrzero_without_csf_voxels": nrmse_scaled(img_fast[no_csf], ref_oriented[no_csf]),
        "nrmse_fast_as_written_vs_mrzero": None if img_written is None else nrmse_scaled(img_written, ref_oriented),
        "nrmse_fast_as_written_vs_bloch": None
        if img_written is None or img_bloch is None
        else nrmse_scaled(img_written, img_bloch),
        "diagnostic_nrmse_fast_transient_vs_mrzero": None
        if img_transient is None
        else nrmse_scaled(img_transient, ref_oriented),
        "diagnostic_nrmse_fast_transient_vs_bloch": None
        if img_transient is None or img_bloch is None
        else nrmse_scaled(img_transient, img_bloch),
        "mrzero_orientation": orientation,
        "hifield_commit": os.environ.get("HIFIELD_BENCH_COMMIT"),
        "speedup_fast_vs_mrzero": t_mrzero / t_fast,
    }


SETTINGS: dict[str, dict[str, Any]] = {
    "ordinary": {"dummies": False, "mode": "default", "min_signal": 1e-2},
    "accurate": {"dummies": True, "mode": "combined", "min_signal": None},
}
"""The two settings of issue 19: (a) ordinary and (b) accurate (see the module docstring)."""


def wait_quiet(limit: float = 1.0, max_wait_s: float = 900.0) -> float:
    """Sleep until the 1-minute load average is at most ``limit`` (the benchmark's own previous step raises it);
    returns the load average then. Gives up after ``max_wait_s`` and returns the load as it is."""
    start = time.monotonic()
    while os.getloadavg()[0] > limit and time.monotonic() - start < max_wait_s:
        time.sleep(10)
    return os.getloadavg()[0]


def dominant_tissue_phantom(phantom: Phantom) -> Phantom:
    """The object MRzero gets in the ordinary setting: each voxel holds only its dominant tissue (by PD x fraction),
    with the voxel's total PD (``write_mrzero_maps(..., dominant=True)``), up to one global factor."""
    frac = phantom.fractions.astype(np.float64)
    pd = np.array([t.pd for t in phantom.tissues], dtype=np.float64)
    weight = frac * pd[:, None, None, None]
    top = np.argmax(weight, axis=0)
    scale = np.divide(weight.sum(axis=0), pd[top], out=np.zeros(top.shape), where=pd[top] > 0)
    one_hot = (np.arange(len(pd))[:, None, None, None] == top[None]).astype(np.float64) * scale[None]
    # a voxel's total PD may exceed its dominant tissue's: one global factor keeps every fraction <= 1 (the
    # comparison is made after a least-squares scale, so it does not change the result)
    return phantom.replace(fractions=(one_hot / max(float(scale.max()), 1.0)).astype(phantom.fractions.dtype))


def community_sequence(n: int, n_dummy: int, path: Path) -> None:
    """Write the community FLASH of the tests (``tests/sequence/community.py``) to ``path``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sequence"))
    from community import community_flash  # type: ignore[import-not-found]

    community_flash(n, n_dummy=n_dummy).write(str(path))


def write_mrzero_maps(phantom: Phantom, scanner: Scanner, path: Path, *, slice_m: float, dominant: bool) -> None:
    """MRzero's input maps: one voxel set per tissue, or (``dominant``) one set with each voxel's dominant tissue."""
    sens = scanner.receive.sensitivities(phantom.affine, phantom.shape)[:, 0]  # (coil, y, x)
    _, dy, dx = phantom.voxel_size_m

    def xyz(a: np.ndarray) -> np.ndarray:  # (y, x) -> (x, y, 1)
        return np.ascontiguousarray(a.T[:, :, None])

    keep = [k for k, t in enumerate(phantom.tissues) if t.pd > 0 and phantom.fractions[k].any()]
    frac = phantom.fractions[:, 0]
    t1 = np.array([t.t1_s for t in phantom.tissues])
    t2 = np.array([t.t2_s for t in phantom.tissues])
    t2dash = np.array([1.0 / max(1.0 / t.t2star_s - 1.0 / t.t2_s, 1e-3) for t in phantom.tissues])
    pd = np.array([t.pd for t in phantom.tissues])
    if dominant:
        weight = frac * pd[:, None, None]
        top = np.argmax(weight, axis=0)
        maps = [(weight.sum(axis=0), t1[top], t2[top], t2dash[top])]
    else:
        ones = np.ones(frac.shape[1:])
        maps = [(frac[k] * pd[k], ones * t1[k], ones * t2[k], ones * t2dash[k]) for k in keep]
    np.savez(
        path,
        pd=np.stack([xyz(m[0]) for m in maps]).astype(np.float32),
        t1=np.stack([xyz(m[1]) for m in maps]).astype(np.float32),
        t2=np.stack([xyz(m[2]) for m in maps]).astype(np.float32),
        t2dash=np.stack([xyz(m[3]) for m in maps]).astype(np.float32),
        b0=xyz(phantom.off_resonance_hz[0]).astype(np.float32),
        sens=np.ascontiguousarray(np.transpose(sens, (0, 2, 1))[..., None]).astype(np.complex64),
        affine_mm=np.diag([dx * 1e3, dy * 1e3, slice_m * 1e3, 1.0]).astype(np.float32),
    )


def run_setting(
    setting: str,
    n: int,
    *,
    mrzero_python: str | None,
    n_coils: int,
    n_dummy: int,
    min_signal: float,
    tmp: Path,
    with_bloch: bool,
    repeats: int = 3,
) -> dict[str, object]:
    """One row of the two-setting table: hifield (call and process) and MRzero (call and process) on one .seq.

    The hifield process and the MRzero process run ``repeats`` times each, alternated run by run, each after
    :func:`wait_quiet`; their medians are reported (MRzero's call time is the median of the times its worker reports).
    """
    from hifield.sequence.seq_io import load_seq

    spec = SETTINGS[setting]
    dummies = n_dummy if spec["dummies"] else 0
    seq_path = tmp / f"flash_{setting}_{n}.seq"
    community_sequence(n, dummies, seq_path)
    scanner = Scanner.preset("3T", n_coils=n_coils)
    load_start = wait_quiet()
    t0 = time.perf_counter()
    sequence = load_seq(seq_path, scanner_name=scanner.name)
    t_load = time.perf_counter() - t0
    fov = float(sequence.protocol.fov_m)
    brain = brain_phantom(matrix=n, fov_m=fov, b0_t=3.0)
    tissues = tuple(dataclasses.replace(t, chemical_shift_ppm=(0.0,), peak_amplitudes=(1.0,)) for t in brain.tissues)
    phantom = brain.replace(tissues=tissues)
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        fast = simulate_fast(phantom, sequence, scanner, noise=False, rng=rng, steady_state=False)
        runs.append(time.perf_counter() - t0)
    t_fast = float(np.median(runs))
    img_fast = rss_image(fast.kspace[:, 0].astype(np.complex128))
    img_bloch, t_bloch, n_iso = None, None, None
    if with_bloch:
        from hifield.sim.engines.bloch import isochromat_counts

        n_iso = max(isochromat_counts(phantom, sequence, scanner).values())  # the most any tissue takes
        t0 = time.perf_counter()
        bloch = simulate_bloch(phantom, sequence, scanner, noise=False, rng=rng)
        t_bloch = time.perf_counter() - t0
        img_bloch = rss_image(bloch.kspace[:, 0].astype(np.complex128))
    hifield_command = [
        sys.executable,
        "-m",
        "hifield.cli.main",
        "simulate",
        "--seq",
        str(seq_path),
        "--field",
        "3T",
        "--phantom",
        "brain",
        "--coils",
        str(n_coils),
        "--no-noise",
        "--out",
        str(tmp / f"hifield_{setting}_{n}.h5"),
    ]

    def hifield_process() -> float:
        load = wait_quiet()
        t0 = time.perf_counter()
        subprocess.run(hifield_command, check=True, capture_output=True, env=PROCESS_ENV)
        loads_hifield.append(load)
        return time.perf_counter() - t0

    loads_hifield: list[float] = []
    loads_mrzero: list[float] = []
    process_runs: list[float] = []
    row: dict[str, Any] = {
        "setting": setting,
        "matrix": n,
        "coils": n_coils,
        "dummies": dummies,
        "trajectory_detected": sequence.trajectory,
        "wall_load_seq_s": t_load,
        "wall_fast_as_written_s": t_fast,
        "wall_bloch_s": t_bloch,
        "bloch_isochromats": n_iso,
        "nrmse_fast_vs_bloch": None if img_bloch is None else nrmse_scaled(img_fast, img_bloch),
        "load_average_1min_start": load_start,
        "repeats": repeats,
    }
    if mrzero_python is None:
        hifield_process()  # untimed first run (bytecode written)
        loads_hifield.clear()
        process_runs = [hifield_process() for _ in range(repeats)]
        row.update(
            {
                "wall_hifield_process_s": float(np.median(process_runs)),
                "wall_hifield_process_runs_s": process_runs,
                "load_average_1min_before_hifield_process": loads_hifield,
                "load_average_1min_end": os.getloadavg()[0],
            }
        )
        return row
    maps_path = tmp / f"maps_{setting}_{n}.npz"
    write_mrzero_maps(phantom, scanner, maps_path, slice_m=3e-3, dominant=spec["mode"] == "default")
    options = MrzeroOptions(mode=spec["mode"], min_emitted=spec["min_signal"] or min_signal)
    options = dataclasses.replace(options, min_latent=options.min_emitted)
    out_path = tmp / f"mrzero_{setting}_{n}.npy"
    job = {"maps": str(maps_path), "seq": str(seq_path), "out": str(out_path), "threads": os.cpu_count() or 1}
    job.update(dataclasses.asdict(options))

    def mrzero_process() -> tuple[float, dict[str, Any]]:
        load = wait_quiet()
        t0 = time.perf_counter()
        proc = subprocess.run(
            [mrzero_python, "-c", WORKER, json.dumps(job)],
            capture_output=True,
            text=True,
            check=False,
            timeout=6 * 3600,
            env=PROCESS_ENV,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"MRzero worker failed: {proc.stderr.strip().splitlines()[-1:]}")
        loads_mrzero.append(load)
        return wall, json.loads(proc.stdout.strip().splitlines()[-1])

    mr_process_runs: list[float] = []
    mr_call_runs: list[float] = []
    report: dict[str, Any] = {}
    hifield_process()  # untimed first runs: bytecode written, files in the page cache
    mrzero_process()
    process_runs.clear()
    loads_hifield.clear()
    loads_mrzero.clear()
    for _ in range(repeats):  # the two processes alternated run by run
        process_runs.append(hifield_process())
        wall, report = mrzero_process()
        mr_process_runs.append(wall)
        mr_call_runs.append(float(report["wall_s"]))
    t_process = float(np.median(process_runs))
    t_mr_process = float(np.median(mr_process_runs))
    t_mr_call = float(np.median(mr_call_runs))
    signal = np.load(out_path)  # (samples, coils)
    n_ro = sequence.n_readout_samples
    lines = signal.reshape(-1, n_ro, signal.shape[-1])
    k_mr = np.zeros((signal.shape[-1], n, n_ro), dtype=np.complex128)
    k_mr[:, sequence.phase_encode_lines, :] = np.transpose(lines, (2, 0, 1))
    ref, orientation = oriented(rss_image(k_mr), img_fast)
    same_object = img_fast
    if spec["mode"] == "default":  # MRzero got each voxel's dominant tissue: compare images of that same object
        same = simulate_fast(
            dominant_tissue_phantom(phantom), sequence, scanner, noise=False, rng=rng, steady_state=False
        )
        same_object = rss_image(same.kspace[:, 0].astype(np.complex128))
    converged = None
    if spec["mode"] == "default":
        # MRzero's default graph thresholds (1e-2) drop pathways; the same object with MRzero converged (1e-4) shows
        # how much of the difference is MRzero's own truncation (one untimed run)
        tight = dict(job, min_emitted=CONVERGED_SIGNAL, min_latent=CONVERGED_SIGNAL, mode="per-tissue")
        tight["out"] = str(tmp / f"mrzero_{setting}_{n}_converged.npy")
        subprocess.run([mrzero_python, "-c", WORKER, json.dumps(tight)], capture_output=True, text=True, check=True)
        lines_c = np.load(tight["out"]).reshape(-1, n_ro, signal.shape[-1])
        k_c = np.zeros_like(k_mr)
        k_c[:, sequence.phase_encode_lines, :] = np.transpose(lines_c, (2, 0, 1))
        converged = nrmse_scaled(same_object, oriented(rss_image(k_c), img_fast)[0])
    row.update(
        {
            "wall_hifield_process_s": t_process,
            "wall_hifield_process_runs_s": process_runs,
            "load_average_1min_before_hifield_process": loads_hifield,
            "load_average_1min_before_mrzero": loads_mrzero,
            "nrmse_fast_as_written_vs_mrzero_same_object": nrmse_scaled(same_object, ref),
            "nrmse_fast_as_written_vs_mrzero_converged_same_object": converged,
            "wall_mrzero_s": t_mr_call,
            "wall_mrzero_runs_s": mr_call_runs,
            "wall_mrzero_process_s": t_mr_process,
            "wall_mrzero_process_runs_s": mr_process_runs,
            "mrzero_options": dataclasses.asdict(options),
            "mrzero_orientation": orientation,
            "ratio_call_mrzero_over_fast": t_mr_call / t_fast,
            "ratio_process_mrzero_over_hifield": t_mr_process / t_process,
            "nrmse_fast_as_written_vs_mrzero": nrmse_scaled(img_fast, ref),
            "nrmse_bloch_vs_mrzero": None if img_bloch is None else nrmse_scaled(img_bloch, ref),
            "load_average_1min_end": os.getloadavg()[0],
        }
    )
    return row


def write_settings_results(rows: list[dict[str, Any]], out_dir: Path) -> None:
    """Write ``sim_vs_mrzero_settings.json`` and ``.md``: one row per setting and matrix."""
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"cpu_count": os.cpu_count(), "hifield_commit": os.environ.get("HIFIELD_BENCH_COMMIT")}
    (out_dir / "sim_vs_mrzero_settings.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    md = [
        "# hifield vs MRzeroCore: (a) ordinary and (b) accurate settings",
        "",
        "`python benchmarks/sim_vs_mrzero.py` (see its docstring). Ratios are MRzero time / hifield time; process "
        "times are medians of the runs in the .json, hifield and MRzero alternated run by run.",
        "",
        "| setting | matrix | fast call [s] | MRzero call [s] | call ratio | hifield process [s] | MRzero process [s] "
        "| process ratio | NRMSE fast vs MRzero | NRMSE fast vs MRzero, same object "
        "| NRMSE fast vs MRzero converged (thresholds 1e-4), same object "
        "| bloch [s] (most isochromats of a tissue) | NRMSE bloch vs MRzero "
        "| load avg (start / highest before a hifield run / before an MRzero run / end) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        bloch = "—" if r.get("wall_bloch_s") is None else f"{r['wall_bloch_s']:.1f} ({r['bloch_isochromats']})"
        md.append(
            f"| {r['setting']} | {r['matrix']} | {r['wall_fast_as_written_s']:.3f} "
            f"| {_fmt(r.get('wall_mrzero_s'), '.2f')} "
            f"| {_fmt(r.get('ratio_call_mrzero_over_fast'), '.1f')} | {r['wall_hifield_process_s']:.2f} "
            f"| {_fmt(r.get('wall_mrzero_process_s'), '.2f')} "
            f"| {_fmt(r.get('ratio_process_mrzero_over_hifield'), '.1f')} "
            f"| {_fmt(r.get('nrmse_fast_as_written_vs_mrzero'), '.3f')} "
            f"| {_fmt(r.get('nrmse_fast_as_written_vs_mrzero_same_object'), '.3f')} "
            f"| {_fmt(r.get('nrmse_fast_as_written_vs_mrzero_converged_same_object'), '.3f')} | {bloch} "
            f"| {_fmt(r.get('nrmse_bloch_vs_mrzero'), '.3f')} "
            f"| {_fmt(r['load_average_1min_start'], '.2f')} "
            f"/ {_fmt(_worst(r.get('load_average_1min_before_hifield_process')), '.2f')} "
            f"/ {_fmt(_worst(r.get('load_average_1min_before_mrzero')), '.2f')} / {r['load_average_1min_end']:.2f} |"
        )
    (out_dir / "sim_vs_mrzero_settings.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mrzero-python", default="/tmp/mrzero_venv/bin/python")
    parser.add_argument("--matrices", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--coils", type=int, default=8)
    parser.add_argument("--tr-ms", type=float, default=20.0)
    parser.add_argument("--dummies", type=int, default=150, help="dummy TRs before acquisition (steady state)")
    parser.add_argument("--isochromats", type=int, default=128, help="bloch isochromats per voxel")
    parser.add_argument("--bloch-max-matrix", type=int, default=128, help="skip the bloch engine above this matrix")
    parser.add_argument("--mrzero-mode", choices=("combined", "per-tissue"), default="combined")
    parser.add_argument("--mrzero-min-signal", type=float, default=1e-3, help="min_emitted = min_latent signal")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="where the .json and .md go")
    parser.add_argument(
        "--mrzero-cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "hifield_mrzero_cache",
        help="reuse MRzero signals of identical inputs (same .seq, maps, worker, options)",
    )
    parser.add_argument("--save-images", default=None, help="path prefix for .npz images (diagnostics)")
    parser.add_argument("--append", action="store_true", help="keep the rows already in the .json")
    parser.add_argument("--markdown-only", action="store_true", help="rewrite the .md from the existing .json")
    parser.add_argument("--setting", nargs="+", choices=tuple(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--legacy", action="store_true", help="the former single setting (sim_vs_mrzero.md)")
    parser.add_argument("--hifield-only", action="store_true", help="skip MRzero (smoke test of the hifield side)")
    parser.add_argument("--no-bloch", action="store_true", help="skip the bloch engine in the two settings")
    parser.add_argument("--repeats", type=int, default=3, help="alternated hifield/MRzero process runs per row")
    parser.add_argument("--force", action="store_true", help="time even above a load average of 1.0 (not results)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if load > 1.0 and not (args.force or args.markdown_only):
        raise SystemExit(f"load average {load:.2f} is above 1.0: the timings would not mean much; rerun when idle")
    if not args.legacy and not args.markdown_only:
        if not args.no_bloch:  # Numba compile (or cache load) of the bloch kernel, excluded from the timings
            warm = Scanner.preset("3T", n_coils=args.coils)
            tiny_gre = GreProtocol(matrix=8, fov_m=0.24, tr_s=0.02).build(warm)
            tiny_brain = brain_phantom(matrix=8, fov_m=0.24, b0_t=3.0)
            simulate_bloch(tiny_brain, tiny_gre, warm, noise=False, rng=np.random.default_rng(0))
        rows_settings: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory() as d:
            for setting in args.setting:
                for n in args.matrices:
                    rows_settings.append(
                        run_setting(
                            setting,
                            n,
                            mrzero_python=None if args.hifield_only else args.mrzero_python,
                            n_coils=args.coils,
                            n_dummy=args.dummies,
                            min_signal=args.mrzero_min_signal,
                            tmp=Path(d),
                            with_bloch=not args.no_bloch and n <= args.bloch_max_matrix,
                            repeats=args.repeats,
                        )
                    )
                    print(json.dumps(rows_settings[-1]), flush=True)
                    write_settings_results(rows_settings, args.results_dir)
        return
    if args.markdown_only:
        stored = json.loads((args.results_dir / "sim_vs_mrzero.json").read_text())
        write_results(stored["rows"], args.mrzero_python, args.coils, args.results_dir, meta=stored["meta"])
        return
    args.mrzero_cache.mkdir(parents=True, exist_ok=True)
    mrzero = MrzeroOptions(mode=args.mrzero_mode, min_emitted=args.mrzero_min_signal, min_latent=args.mrzero_min_signal)
    # warm-up of the bloch kernel (Numba compile or cache load), excluded from the timings
    scanner = Scanner.preset("3T", n_coils=args.coils)
    tiny = GreProtocol(matrix=8, fov_m=0.24, tr_s=0.02).build(scanner)
    simulate_bloch(
        brain_phantom(matrix=8, fov_m=0.24, b0_t=3.0), tiny, scanner, noise=False, rng=np.random.default_rng(0)
    )
    rows: list[dict[str, object]] = []
    if args.append and (args.results_dir / "sim_vs_mrzero.json").exists():
        rows = json.loads((args.results_dir / "sim_vs_mrzero.json").read_text())["rows"]
    with tempfile.TemporaryDirectory() as d:
        for n in args.matrices:
            rows.append(
                run(
                    n,
                    mrzero_python=args.mrzero_python,
                    n_coils=args.coils,
                    n_iso=args.isochromats,
                    tmp=Path(d),
                    mrzero=mrzero,
                    with_bloch=n <= args.bloch_max_matrix,
                    tr_s=args.tr_ms * 1e-3,
                    n_dummy=args.dummies,
                    save=args.save_images,
                    cache=args.mrzero_cache,
                )
            )
            print(json.dumps(rows[-1]), flush=True)
            write_results(rows, args.mrzero_python, args.coils, args.results_dir)


def _worst(loads: object) -> float | None:
    """The highest of the load averages recorded before a tool's runs (one value in older rows)."""
    if loads is None:
        return None
    return max(loads) if isinstance(loads, list) else float(loads)  # type: ignore[arg-type]


def _fmt(value: object, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def write_results(
    rows: list[dict[str, Any]],
    mrzero_python: str,
    n_coils: int,
    out_dir: Path = RESULTS,
    *,
    meta: dict[str, Any] | None = None,
) -> None:
    """Write ``sim_vs_mrzero.json`` and ``.md`` (also usable on rows of an interrupted run)."""
    if meta is None:
        version = subprocess.run(
            [mrzero_python, "-c", "import MRzeroCore; print(MRzeroCore.__version__)"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        import hifield

        meta = {
            "mrzerocore": version,
            "hifield_source": str(Path(hifield.__file__).parent),
            "hifield_commit": os.environ.get("HIFIELD_BENCH_COMMIT"),
            "cpu_count": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],
        }
    version = meta["mrzerocore"]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "sim_vs_mrzero.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    md = [
        "# hifield simulators vs MRzeroCore",
        "",
        f"`python benchmarks/sim_vs_mrzero.py` — MRzeroCore {version} (separate venv, CPU torch), "
        f"hifield {(meta.get('hifield_commit') or 'working tree')[:10]}, "
        f"{meta['cpu_count']} CPUs shared; brain phantom, 2D GRE, {n_coils} coils, no noise, 150 dummy TRs. "
        "NRMSE of RSS images after a least-squares scale; MRzero image orientation found: "
        f"{', '.join(sorted({str(r['mrzero_orientation']) for r in rows}))}. "
        "Wall times on a shared machine (1-min load average at the "
        "start / end of each row): compare them only within a row.",
        "",
        "| matrix | hifield commit | fast [s] | bloch [s] (isochromats) | MRzero [s] | fast speed-up vs MRzero "
        "| NRMSE fast vs MRzero | NRMSE bloch vs MRzero | NRMSE fast vs bloch "
        "| fast as written [s] | NRMSE fast as written vs MRzero | NRMSE fast as written vs bloch | load avg |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        bloch = "—" if r["wall_bloch_s"] is None else f"{r['wall_bloch_s']:.1f} ({r['bloch_isochromats']})"
        md.append(
            f"| {r['matrix']} | {(r.get('hifield_commit') or meta.get('hifield_commit') or 'tree')[:7]} "
            f"| {r['wall_fast_s']:.3f} | {bloch} | {r['wall_mrzero_s']:.0f} "
            f"| {r['speedup_fast_vs_mrzero']:.0f}x | {_fmt(r['nrmse_fast_vs_mrzero'], '.3f')} "
            f"| {_fmt(r['nrmse_bloch_vs_mrzero'], '.3f')} | {_fmt(r['nrmse_fast_vs_bloch'], '.3f')} "
            f"| {_fmt(r.get('wall_fast_as_written_s'), '.3f')} "
            f"| {_fmt(r.get('nrmse_fast_as_written_vs_mrzero'), '.3f')} "
            f"| {_fmt(r.get('nrmse_fast_as_written_vs_bloch'), '.3f')} "
            f"| {r['load_average_1min_start']:.1f} / {r['load_average_1min_end']:.1f} |"
        )
    md += [
        "",
        "Diagnostics (see the notes): NRMSE against MRzero of `fast` on the voxels without CSF, and of `fast` with "
        "each k-space line weighted by the echo of its own excitation in the EPG train (`fast_with_transient`).",
        "",
        "| matrix | hifield commit | fast vs MRzero, voxels without CSF | fast + per-line transient vs MRzero "
        "| fast + per-line transient vs bloch | MRzero voxels (per tissue) | MRzero pre-pass [s] |",
        "|---:|---|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        md.append(
            f"| {r['matrix']} | {(r.get('hifield_commit') or meta.get('hifield_commit') or 'tree')[:7]} "
            f"| {_fmt(r.get('diagnostic_nrmse_fast_vs_mrzero_without_csf_voxels'), '.3f')} "
            f"| {_fmt(r.get('diagnostic_nrmse_fast_transient_vs_mrzero'), '.3f')} "
            f"| {_fmt(r.get('diagnostic_nrmse_fast_transient_vs_bloch'), '.3f')} "
            f"| {sum(r['mrzero_voxels_per_tissue'])} ({', '.join(map(str, r['mrzero_voxels_per_tissue']))}) "
            f"| {r['mrzero_prepass_s']:.0f} |"
        )
    md_path = out_dir / "sim_vs_mrzero.md"
    marker = "<!-- notes: kept when the table is rewritten -->"
    previous = md_path.read_text() if md_path.exists() else ""
    notes = previous[previous.index(marker) :] if marker in previous else marker + "\n"
    md_path.write_text("\n".join(md) + "\n\n" + notes)
    print("\n".join(md))


if __name__ == "__main__":
    main()
