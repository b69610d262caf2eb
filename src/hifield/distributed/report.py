"""The study report: ``report.html`` with PNGs (SSIM against R per method and field, scan time against quality,
the worst cases with their images)."""

from __future__ import annotations

import html
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from hifield._atomic import atomic_path, atomic_write_text
from hifield.distributed.exam import EXAMS_DIR, IMAGES
from hifield.distributed.study import short_name

SSIM_VS_R = "ssim_vs_r.png"
"""Mean SSIM against the achieved acceleration, one panel per field, one line per method."""
TIME_VS_QUALITY = "scan_time_vs_quality.png"
"""Scan time against SSIM, one colour per method."""
WORST_CASES = "worst_cases.png"
"""The lowest-SSIM reconstructions beside their truth and error map."""
N_WORST = 4
"""Worst cases shown."""


def _ok(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("status") == "ok" and r.get("ssim") is not None and math.isfinite(r["ssim"])]


def _save(figure: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100, format="png")
    return path


def plot_ssim_vs_r(rows: list[dict[str, Any]], path: Path) -> Path:
    """SSIM (mean over phantoms, protocols, patterns and seeds; bars: min to max) against R per method and field."""
    from matplotlib.figure import Figure

    ok = _ok(rows)
    fields = sorted({r["field_t"] for r in ok}) or [0.0]
    methods = sorted({r["method"] for r in ok})
    figure = Figure(figsize=(4.0 * len(fields), 3.4), layout="constrained")
    axes = figure.subplots(1, len(fields), squeeze=False, sharey=True)[0]
    for ax, b0 in zip(axes, fields, strict=True):
        for method in methods:
            groups: dict[float, list[float]] = defaultdict(list)
            for r in ok:
                if r["field_t"] == b0 and r["method"] == method:
                    groups[float(r["acceleration_achieved"])].append(float(r["ssim"]))
            if not groups:
                continue
            x = sorted(groups)
            mean = [float(np.mean(groups[v])) for v in x]
            low = [m - min(groups[v]) for m, v in zip(mean, x, strict=True)]
            high = [max(groups[v]) - m for m, v in zip(mean, x, strict=True)]
            ax.errorbar(x, mean, yerr=[low, high], marker="o", capsize=3, label=method)
        ax.set_title(f"{b0:g} T")
        ax.set_xlabel("acceleration R (achieved)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("SSIM")
    if methods:
        axes[-1].legend(title="method")
    return _save(figure, path)


def plot_time_vs_quality(rows: list[dict[str, Any]], path: Path) -> Path:
    """Scan time [s] against SSIM, one colour per method, one marker per field."""
    from matplotlib.figure import Figure

    ok = _ok(rows)
    figure = Figure(figsize=(5.5, 4.0), layout="constrained")
    ax = figure.subplots()
    markers = "osD^v<>p*h"
    fields = sorted({r["field_t"] for r in ok})
    colours = {m: f"C{i}" for i, m in enumerate(sorted({r["method"] for r in ok}))}
    for method, colour in colours.items():
        for i, b0 in enumerate(fields):
            pts = [r for r in ok if r["method"] == method and r["field_t"] == b0]
            ax.scatter(
                [r["scan_time_s"] for r in pts],
                [r["ssim"] for r in pts],
                c=colour,
                marker=markers[i % len(markers)],
                label=f"{method}, {b0:g} T",
                alpha=0.8,
            )
    ax.set_xlabel("scan time [s]")
    ax.set_ylabel("SSIM")
    ax.grid(alpha=0.3)
    if ok:
        ax.legend(fontsize="small")
    return _save(figure, path)


def worst_cases(rows: list[dict[str, Any]], n: int = N_WORST) -> list[dict[str, Any]]:
    """The ``n`` successful rows of lowest SSIM, worst first.

    Examples
    --------
    >>> rows = [{"status": "ok", "ssim": s, "method": "cs"} for s in (0.9, 0.5, 0.7)]
    >>> [r["ssim"] for r in worst_cases(rows, 2)]
    [0.5, 0.7]
    """
    return sorted(_ok(rows), key=lambda r: r["ssim"])[:n]


def plot_worst_cases(root: Path, rows: list[dict[str, Any]], path: Path, *, n: int = N_WORST) -> Path | None:
    """Truth, reconstruction and ``|error| x 5`` of the worst cases (central slice), from each exam's images."""
    from matplotlib.figure import Figure

    cases = []
    for row in worst_cases(rows, n):
        try:
            with np.load(root / EXAMS_DIR / row["exam_id"] / IMAGES) as data:
                truth, recon = data["truth"], data[row["method"]]
        except (OSError, KeyError):
            continue
        centre = truth.shape[0] // 2
        cases.append((row, truth[centre], recon[centre]))
    if not cases:
        return None
    figure = Figure(figsize=(7.5, 2.6 * len(cases)), layout="constrained")
    axes = figure.subplots(len(cases), 3, squeeze=False)
    for (row, truth, recon), line in zip(cases, axes, strict=True):
        top = float(np.percentile(truth, 99.5)) or 1.0
        for ax, image, title in zip(
            line,
            (truth, recon, np.abs(truth - recon) * 5.0),
            ("truth", f"{row['method']}  SSIM {row['ssim']:.3f}", "|error| x 5"),
            strict=True,
        ):
            ax.imshow(image, cmap="gray", vmin=0.0, vmax=top)
            ax.set_title(title, fontsize="small")
            ax.set_xticks([])
            ax.set_yticks([])
        line[0].set_ylabel(
            f"{short_name(str(row['protocol']))}\n{row['field']} R{row['acceleration_achieved']:.1f}\n"
            f"{row['pattern']}\n{row['phantom']} s{row['seed']}",
            fontsize="x-small",
        )
    return _save(figure, path)


def _table(header: list[str], body: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"<td>{html.escape(f'{value:.4g}')}</td>"
        return f"<td>{html.escape(str(value))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    lines = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in body)
    return f"<table><tr>{head}</tr>{lines}</table>"


def write_study_report(root: str | os.PathLike[str], rows: list[dict[str, Any]], *, title: str) -> Path:
    """Write ``report.html`` and its PNGs into the study folder ``root`` (each file atomically).

    The page holds the counts by status, mean NMSE/PSNR/SSIM per method, field and R, the three figures and the
    list of failed exams with their reasons; it links ``results.csv``.
    """
    root = Path(root)
    ok = _ok(rows)
    plot_ssim_vs_r(rows, root / SSIM_VS_R)
    plot_time_vs_quality(rows, root / TIME_VS_QUALITY)
    worst = plot_worst_cases(root, rows, root / WORST_CASES)

    exams: dict[str, str] = {}
    for r in rows:
        exams.setdefault(str(r["exam_id"]), str(r.get("status")))
    counts: dict[str, int] = defaultdict(int)
    for status in exams.values():
        counts[status] += 1
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        groups[(r["method"], r["field_t"], r["acceleration"])].append(r)
    summary = [
        [
            method,
            b0,
            accel,
            len(g),
            float(np.mean([r["nmse"] for r in g])),
            float(np.mean([r["psnr"] for r in g])),
            float(np.mean([r["ssim"] for r in g])),
            float(np.mean([r["scan_time_s"] for r in g])),
        ]
        for (method, b0, accel), g in sorted(groups.items())
    ]
    failed = {}
    for r in rows:
        if r.get("status") in ("failed", "error"):
            failed[r["exam_id"]] = [
                r["exam_id"],
                r["status"],
                short_name(str(r["protocol"])),
                r["field"],
                r["acceleration"],
                r["reason"],
            ]

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #999;padding:.25em .7em;text-align:right}th{background:#eee}img{max-width:100%}"
        "</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<p>"
        + html.escape(
            f"{len(exams)} exams: "
            + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
            + f"; {len(rows)} rows in "
        )
        + '<a href="results.csv">results.csv</a> (and results.parquet).</p>',
        "<h2>Image quality by method, field and R</h2>",
        _table(["method", "B0 [T]", "R", "exams", "NMSE", "PSNR [dB]", "SSIM", "scan time [s]"], summary),
        f'<h2>SSIM against R</h2><img alt="SSIM against R" src="{SSIM_VS_R}">',
        f'<h2>Scan time against quality</h2><img alt="scan time against SSIM" src="{TIME_VS_QUALITY}">',
    ]
    if worst is not None:
        parts.append(f'<h2>Worst cases</h2><img alt="worst cases" src="{WORST_CASES}">')
    if failed:
        parts.append("<h2>Failed exams</h2>")
        parts.append(_table(["exam", "status", "protocol", "field", "R", "reason"], list(failed.values())))
    parts.append("</body></html>")
    path = root / "report.html"
    return atomic_write_text(path, "\n".join(parts) + "\n")


__all__ = [
    "SSIM_VS_R",
    "TIME_VS_QUALITY",
    "WORST_CASES",
    "plot_ssim_vs_r",
    "plot_time_vs_quality",
    "write_study_report",
]
