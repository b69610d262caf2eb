"""Training of the learned models on streamed simulations: resumable checkpoints, CSV log and PNG curve.

``hifield train --config configs/varnet_256.yaml`` runs :func:`train`. Every ``steps_per_epoch`` steps a new pool
of cases is simulated (seeded by the config's seed and the epoch); each step draws a batch from the pool with fresh
sampling patterns and noise (seeded by the step). A checkpoint (model, optimiser, step) is written atomically every
``checkpoint_every`` steps and at the end, so an interrupted run resumes at the step it stopped at with the same
batches, and its loss continues as if it had never stopped.
"""

from __future__ import annotations

import csv
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hifield.recon.learned import require_torch
from hifield.recon.learned.data import CasePool, DataConfig
from hifield.recon.learned.infer import acs_bounds

LOSSES = ("l1", "ssim")
"""Training losses :func:`loss_of` computes."""


@dataclass(frozen=True)
class TrainConfig:
    """A training run, as read from ``configs/<name>.yaml``."""

    model: str = "varnet"
    """``varnet`` or ``modl``."""
    params: dict[str, int] = field(default_factory=dict)
    """Size parameters of the model (see :mod:`hifield.recon.learned.nets`)."""
    data: DataConfig = field(default_factory=DataConfig)
    """What the simulated training data vary over."""
    steps: int = 1000
    """Optimiser steps in all."""
    batch_size: int = 4
    """Samples per step."""
    lr: float = 1e-3
    """Adam learning rate."""
    lr_min: float = 0.0
    """If set, the learning rate falls from ``lr`` to ``lr_min`` along a half cosine over ``steps`` (a function of
    the step alone, so a resumed run follows the same schedule); 0: constant ``lr``."""
    lesion_weight: float = 0.0
    """Weight of a second loss term, the mean absolute error over the small inserted lesions (weighted by the
    fraction of each pixel they fill) relative to the target's mean there: so that lesions of a few pixels count in
    the loss; 0: none."""
    loss: str = "l1"
    """``l1`` (mean absolute error of the magnitude over the target's mean) or ``ssim`` (1 - SSIM as
    :func:`hifield.metrics.ssim` computes it, the fastMRI VarNet's loss)."""
    pool_cases: int = 24
    """Cases simulated per epoch."""
    steps_per_epoch: int = 250
    """Steps between pool refreshes."""
    val_cases: int = 6
    """Held-out validation cases (seeded apart from training)."""
    val_every: int = 100
    """Steps between validations (also validated at the end)."""
    checkpoint_every: int = 50
    """Steps between checkpoints."""
    seed: int = 0
    """Seed of the model's initial weights, the pools and the batches."""
    time_limit_s: float = 0.0
    """Stop (with a checkpoint) after this many seconds of this run; 0: no limit."""
    out: str = "runs/model"
    """Folder of the checkpoint, ``log.csv`` and ``curve.png``."""
    init: str = ""
    """Weights to start from when ``out`` holds no checkpoint yet (fine-tuning): a shipped weights file or a training
    checkpoint of the same model and size (a path, relative to the working directory); empty starts from random
    weights. The optimiser starts afresh."""

    def __post_init__(self) -> None:
        from hifield.errors import ConfigError

        if self.loss not in LOSSES:
            raise ConfigError(f"unknown training loss {self.loss!r}; choose {' or '.join(LOSSES)}")
        if self.lr <= 0 or not 0 <= self.lr_min <= self.lr:
            raise ConfigError(f"learning rates must satisfy lr > 0 and 0 <= lr_min <= lr; got {self.lr}, {self.lr_min}")
        if not 0 <= self.data.calibration_spread < 1:
            raise ConfigError(f"calibration_spread must lie in [0, 1); got {self.data.calibration_spread}")

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a YAML training config (unknown keys are refused by the dataclass)."""
        import yaml

        return cls.load_dict(yaml.safe_load(Path(path).read_text()) or {})

    @classmethod
    def load_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        """The config from plain data (a parsed YAML file, or :meth:`as_dict` of a checkpoint)."""
        raw = dict(raw)
        data = raw.pop("data", {}) or {}
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(data=DataConfig(**data), **raw)

    def as_dict(self) -> dict[str, Any]:
        """The config as plain data (stored in checkpoints and weights metadata)."""
        return dataclasses.asdict(self)


def batch_tensors(batch: dict[str, np.ndarray[Any, Any]]) -> dict[str, Any]:
    """A batch of :meth:`CasePool.batch` as tensors."""
    torch = require_torch()
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


def espirit_batch(y: np.ndarray[Any, Any], mask: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """ESPIRiT maps ``(b, coil, h, w)`` of each sample from its central fully sampled lines (MoDL's maps)."""
    from hifield.recon.coil_maps import espirit_maps

    out = np.zeros(y.shape, dtype=np.complex64)
    for i in range(y.shape[0]):
        lo, hi = acs_bounds(mask[i, 0].max(axis=-1) > 0)
        calib = y[i][:, None, lo:hi, :]
        out[i] = espirit_maps(calib, (1, *y.shape[-2:]), n_virtual=y.shape[1])[0, :, 0]
    return out


def forward(model: Any, kind: str, t: dict[str, Any]) -> Any:
    """The model's complex image ``(b, h, w)`` for a tensor batch (MoDL gets ESPIRiT maps computed here)."""
    torch = require_torch()
    if kind == "varnet":
        return model(t["y"], t["mask"])[0]
    maps = torch.from_numpy(espirit_batch(t["y"].numpy(), t["mask"].numpy()))
    return model(t["y"], t["mask"], maps)


def ssim_torch(x: Any, target: Any) -> Any:
    """Mean SSIM of magnitude images ``x`` and ``target`` ``(b, h, w)`` as :func:`hifield.metrics.ssim` computes it
    (scikit-image: 7 x 7 uniform window, sample covariance, K1 0.01, K2 0.03, ``data_range`` the target's maximum
    per image, the mean over the pixels whose window lies inside the image), differentiable."""
    torch = require_torch()
    win, k1, k2 = 7, 0.01, 0.03
    cov_norm = win * win / (win * win - 1)
    data_range = target.amax(dim=(-2, -1), keepdim=True)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    a, b = x[:, None], target[:, None]

    def mean(v: Any) -> Any:
        return torch.nn.functional.avg_pool2d(v, win, stride=1)

    ua, ub = mean(a), mean(b)
    va = cov_norm * (mean(a * a) - ua * ua)
    vb = cov_norm * (mean(b * b) - ub * ub)
    vab = cov_norm * (mean(a * b) - ua * ub)
    c1, c2 = c1[:, None], c2[:, None]
    s = ((2 * ua * ub + c1) * (2 * vab + c2)) / ((ua * ua + ub * ub + c1) * (va + vb + c2))
    return s.mean(dim=(-3, -2, -1)).mean()


def learning_rate(config: TrainConfig, step: int) -> float:
    """The learning rate of ``step`` (0-based): ``lr``, or the half cosine from ``lr`` to ``lr_min``.

    Examples
    --------
    >>> cfg = TrainConfig(lr=1e-3, lr_min=1e-4, steps=100)
    >>> learning_rate(cfg, 0), round(learning_rate(cfg, 50), 6), round(learning_rate(cfg, 100), 6)
    (0.001, 0.00055, 0.0001)
    """
    if config.lr_min <= 0:
        return config.lr
    t = min(step / max(config.steps, 1), 1.0)
    return config.lr_min + 0.5 * (config.lr - config.lr_min) * (1 + float(np.cos(np.pi * t)))


def loss_of(config: TrainConfig, x: Any, target: Any, lesions: Any = None) -> Any:
    """The training loss of the complex images ``x`` ``(b, h, w)`` against the magnitude ``target``, plus
    ``config.lesion_weight`` x the relative absolute error over ``lesions`` (lesion fractions ``(b, h, w)``)."""
    if config.loss == "ssim":
        loss = 1.0 - ssim_torch(x.abs(), target)
    else:  # "l1" (TrainConfig refuses any other)
        loss = (x.abs() - target).abs().mean() / target.abs().mean()
    if config.lesion_weight > 0 and lesions is not None and float(lesions.sum()) > 0:
        loss = loss + config.lesion_weight * ((x.abs() - target).abs() * lesions).sum() / (target * lesions).sum()
    return loss


def _save_atomic(obj: Any, path: Path) -> None:
    torch = require_torch()
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _plot(log: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with log.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    loss = [float(r["loss"]) for r in rows]
    val = [(int(r["step"]), float(r["val_ssim"])) for r in rows if r["val_ssim"]]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, loss, lw=0.6, color="tab:blue", label="train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss", color="tab:blue")
    if val:
        ax2 = ax.twinx()
        ax2.plot(*zip(*val, strict=True), "o-", color="tab:red", label="validation SSIM")
        ax2.set_ylabel("validation SSIM", color="tab:red")
    ax.set_title(png.parent.name)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def validate(model: Any, kind: str, val: list[dict[str, np.ndarray[Any, Any]]]) -> float:
    """Mean SSIM (:func:`hifield.metrics.ssim`) of the model's magnitude images on fixed validation samples."""
    torch = require_torch()
    from hifield.metrics import ssim

    model.eval()
    scores = []
    with torch.no_grad():
        for sample in val:
            x = forward(model, kind, batch_tensors({k: v[None] for k, v in sample.items()}))
            scores.append(ssim(sample["target"][None], np.abs(x.numpy())))
    model.train()
    return float(np.mean(scores))


def initial_weights(config: TrainConfig) -> dict[str, Any]:
    """The state dict that ``config.init`` names (shipped weights or a checkpoint), checked against the model."""
    torch = require_torch()
    from hifield.errors import ConfigError

    path = Path(config.init)
    if not path.is_file():
        raise ConfigError(f"init weights {config.init!r} not found; give the path of a weights file or checkpoint")
    state = torch.load(path, map_location="cpu", weights_only=False)
    kind = state.get("kind", (state.get("config") or {}).get("model"))
    params = state.get("params", (state.get("config") or {}).get("params"))
    if kind != config.model or dict(params or {}) != dict(config.params):
        raise ConfigError(
            f"init weights {config.init!r} are a {kind} with {params}; this config trains a {config.model} with "
            f"{dict(config.params)}: give weights of the same model and size"
        )
    return state["model"]  # type: ignore[no-any-return]


def train(
    config: TrainConfig,
    *,
    out: str | Path | None = None,
    max_steps: int | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume training) the model of ``config``; returns ``{"step", "loss", "val_ssim", "checkpoint"}``.

    Parameters
    ----------
    config
        The run.
    out
        Folder of ``checkpoint.pt``, ``log.csv`` and ``curve.png`` (default ``config.out``). A checkpoint there
        is resumed.
    max_steps
        Stop after this step (checkpointed) even if ``config.steps`` is larger: an interruption, for tests.
    progress
        Called after each step with ``(step, total, loss)``.
    """
    torch = require_torch()
    from hifield.recon.learned.nets import build_model

    folder = Path(out or config.out)
    folder.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = folder / "checkpoint.pt", folder / "log.csv"
    torch.manual_seed(config.seed)
    model = build_model(config.model, dict(config.params))
    optim = torch.optim.Adam(model.parameters(), lr=config.lr)
    step, last_loss, last_val = 0, float("nan"), float("nan")
    if ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        step, last_loss, last_val = state["step"], state["loss"], state["val_ssim"]
    elif config.init:
        model.load_state_dict(initial_weights(config))
    if not log_path.exists():
        log_path.write_text("step,loss,val_ssim,elapsed_s\n")
    pool = CasePool(config.data, config.pool_cases, config.seed)
    val_pool = CasePool(config.data, config.val_cases, config.seed + 10_000)
    val_pool.refresh(0)
    val_rng = np.random.default_rng([config.seed, 99])
    from hifield.recon.learned.data import make_sample

    val = [make_sample(case, val_rng, config.data) for case in val_pool.cases]
    epoch = -1
    stop = min(config.steps, max_steps) if max_steps is not None else config.steps
    start = time.perf_counter()

    def checkpoint() -> None:
        state = {
            "model": model.state_dict(),
            "optim": optim.state_dict(),
            "step": step,
            "loss": last_loss,
            "val_ssim": last_val,
            "config": config.as_dict(),
        }
        _save_atomic(state, ckpt_path)

    model.train()
    while step < stop:
        if step // config.steps_per_epoch != epoch:
            epoch = step // config.steps_per_epoch
            pool.refresh(epoch)
        t = batch_tensors(pool.batch(np.random.default_rng([config.seed, step]), config.batch_size))
        for group in optim.param_groups:
            group["lr"] = learning_rate(config, step)
        x = forward(model, config.model, t)
        target = t["target"]
        loss = loss_of(config, x, target, t.get("lesions"))
        optim.zero_grad()
        loss.backward()
        optim.step()
        step += 1
        last_loss = float(loss.item())
        val_text = ""
        if step % config.val_every == 0 or step == config.steps:
            last_val = validate(model, config.model, val)
            val_text = f"{last_val:.5f}"
        with log_path.open("a") as f:
            f.write(f"{step},{last_loss:.6f},{val_text},{time.perf_counter() - start:.1f}\n")
        if progress is not None:
            progress(step, config.steps, last_loss)
        timed_out = config.time_limit_s > 0 and time.perf_counter() - start > config.time_limit_s
        if step % config.checkpoint_every == 0 or step == stop or timed_out:
            checkpoint()
        if timed_out:
            break
    checkpoint()
    _plot(log_path, folder / "curve.png")
    return {"step": step, "loss": last_loss, "val_ssim": last_val, "checkpoint": str(ckpt_path)}
