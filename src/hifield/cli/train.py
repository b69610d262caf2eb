"""``hifield train``: train a learned reconstruction on streamed simulations (resumes from its checkpoint)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from hifield.cli._common import handle_errors, print_json


@handle_errors
def train_command(
    config: Path = typer.Option(..., "--config", help="Training config YAML, e.g. configs/varnet_256.yaml."),
    out: Path | None = typer.Option(None, "--out", help="Run folder (default: the config's `out`)."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop (checkpointed) after this step."),
    threads: int = typer.Option(0, "--threads", help="torch CPU threads (0: one per core)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Train the model of CONFIG; a checkpoint in the run folder is resumed, loss and SSIM go to log.csv/curve.png."""
    from hifield.errors import ConfigError
    from hifield.recon.learned import require_torch
    from hifield.recon.learned.train import TrainConfig, train

    torch = require_torch()
    torch.set_num_threads(threads if threads > 0 else os.cpu_count() or 1)
    if not config.is_file():
        raise ConfigError(f"training config {str(config)!r} does not exist; pass e.g. configs/varnet_256.yaml")
    try:
        cfg = TrainConfig.load(config)
    except TypeError as error:
        raise ConfigError(f"bad training config {str(config)!r}: {error}") from None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(f"training {cfg.model}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        disable=as_json,
    ) as bar:
        task = bar.add_task("train", total=cfg.steps, loss="-")

        def progress(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, loss=f"{loss:.4f}")

        result = train(cfg, out=out, max_steps=max_steps, progress=progress)
    if as_json:
        print_json(result)
    else:
        print(
            f"step {result['step']}: loss {result['loss']:.4f}, validation SSIM {result['val_ssim']:.4f}; "
            f"checkpoint {result['checkpoint']}"
        )
