"""Report figures: ground truth beside each reconstruction and its error map, labelled with NMSE, PSNR and SSIM."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hifield._atomic import atomic_path, atomic_write_text
from hifield.errors import ConfigError

__all__ = ["comparison_figure_size_px", "save_comparison_figure", "write_html_report"]

_PANEL_IN = 3.0
"""Width and height of one image panel [inch]."""
_LABEL_IN = 0.55
"""Height of the label strip under each panel [inch]."""
_HEAD_IN = 0.3
"""Height of the heading strip above each panel [inch]."""
_TITLE_IN = 0.45
"""Height of the title strip [inch] (only with a title)."""
_DPI = 100
ERROR_GAIN = 5.0
"""Error maps show ``|truth - recon| * ERROR_GAIN`` on the truth's grey scale."""


def comparison_figure_size_px(n_recons: int, *, title: bool) -> tuple[int, int]:
    """Size ``(width, height)`` [pixels] of the PNG that :func:`save_comparison_figure` writes.

    Examples
    --------
    >>> comparison_figure_size_px(2, title=True)
    (900, 815)
    """
    width = (1 + n_recons) * _PANEL_IN
    height = 2 * (_HEAD_IN + _PANEL_IN + _LABEL_IN) + (_TITLE_IN if title else 0.0)
    return round(width * _DPI), round(height * _DPI)


def _metrics(truth: NDArray[np.float64], recon: NDArray[np.float64]) -> dict[str, float]:
    from hifield.metrics import nmse, psnr, ssim

    return {"nmse": nmse(truth, recon), "psnr": psnr(truth, recon), "ssim": ssim(truth, recon)}


def _label(values: dict[str, float] | None) -> str:
    if not values:
        return ""
    parts = []
    lookup = {k.lower(): v for k, v in values.items()}
    if "nmse" in lookup:
        parts.append(f"NMSE {lookup['nmse']:.2e}")
    if "psnr" in lookup:
        parts.append(f"PSNR {lookup['psnr']:.2f} dB")
    if "ssim" in lookup:
        parts.append(f"SSIM {lookup['ssim']:.4f}")
    extra = [f"{k} {v:.3g}" for k, v in values.items() if k.lower() not in ("nmse", "psnr", "ssim")]
    return "\n".join([" | ".join(parts[:2]), " | ".join(parts[2:] + extra)]).strip()


def save_stack_figure(
    truth: NDArray[np.floating],
    recon: NDArray[np.floating],
    path: str | os.PathLike[str],
    *,
    worst_slice: int,
    title: str = "",
) -> Path:
    """Save a PNG of a slice stack: a montage of the reconstruction's slices, then the worst slice's truth,
    reconstruction and ``|truth - recon| x ERROR_GAIN`` (one grey scale: the truth's 99.5th percentile).

    Parameters
    ----------
    truth, recon
        Magnitude stacks ``(slices, y, x)`` of the same shape.
    path
        Output ``.png`` (written under a temporary name, then renamed).
    worst_slice
        Index of the slice whose error map is shown.
    title
        Figure title.

    Raises
    ------
    ConfigError
        For stacks that are not 3D or differ in shape, or a slice index outside the stack.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t = np.abs(np.asarray(truth)).astype(np.float64)
    r = np.abs(np.asarray(recon)).astype(np.float64)
    if t.ndim != 3 or t.shape != r.shape:
        raise ConfigError(f"truth {t.shape} and recon {r.shape} must be (slices, y, x) stacks of the same shape")
    if not 0 <= worst_slice < t.shape[0]:
        raise ConfigError(f"worst_slice {worst_slice} is outside 0..{t.shape[0] - 1}")
    n = t.shape[0]
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    vmax = float(np.percentile(t, 99.5)) or 1.0
    fig = Figure(figsize=(2.0 * max(cols, 3), 2.0 * (rows + 1.6)), facecolor="black")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(rows + 2, max(cols, 3) * 2, height_ratios=[1] * rows + [0.15, 1.6])
    for k in range(n):
        ax = fig.add_subplot(grid[k // cols, 2 * (k % cols) : 2 * (k % cols) + 2])
        ax.imshow(r[k], cmap="gray", vmin=0, vmax=vmax)
        ax.set_axis_off()
        ax.set_title(f"{k}", color="red" if k == worst_slice else "white", fontsize=8)
    panels = (
        (t[worst_slice], f"truth, slice {worst_slice}"),
        (r[worst_slice], "recon"),
        (np.abs(t[worst_slice] - r[worst_slice]) * ERROR_GAIN, f"|truth - recon| x{ERROR_GAIN:g}"),
    )
    width = max(cols, 3) * 2 // 3
    for i, (img, label) in enumerate(panels):
        ax = fig.add_subplot(grid[rows + 1, i * width : (i + 1) * width])
        ax.imshow(img, cmap="gray", vmin=0, vmax=vmax)
        ax.set_axis_off()
        ax.set_title(label, color="white", fontsize=9)
    if title:
        fig.suptitle(title, color="white", fontsize=11)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png", facecolor=fig.get_facecolor())
    return path


def save_comparison_figure(
    truth: NDArray[np.floating],
    recons: dict[str, NDArray[np.floating]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    metrics: dict[str, dict[str, float]] | None = None,
) -> Path:
    """Save a PNG: top row truth | each recon; bottom row ``|truth - recon| x 5`` under each recon.

    All panels share the truth's grey scale (0 .. 99.5th percentile of the truth), so error maps compare
    directly. Arrays are displayed with row 0 at the top and column 0 at the left: for hifield's axial LPS
    grid (y towards posterior, x towards the patient's left) this is the radiological view, anterior up and the
    patient's right on the viewer's left.

    Parameters
    ----------
    truth
        Reference magnitude image ``(y, x)`` (complex input is taken as magnitude).
    recons
        Reconstructions ``(y, x)`` by name, in display order.
    path
        Output ``.png``; written under a temporary name, then renamed. Size: :func:`comparison_figure_size_px`.
    title
        Figure title.
    metrics
        ``{name: {"nmse": ..., "psnr": ..., "ssim": ...}}`` printed under each panel; computed with
        :mod:`hifield.metrics` (fastMRI definitions) for recons missing from it.

    Returns
    -------
    Path
        The PNG written.

    Raises
    ------
    ConfigError
        If an array is not 2D or its shape differs from the truth's, or there is no reconstruction.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    truth_mag = np.abs(np.asarray(truth)).astype(np.float64)
    if truth_mag.ndim != 2:
        raise ConfigError(f"truth must be a 2D (y, x) image; got shape {truth_mag.shape}")
    if not recons:
        raise ConfigError("save_comparison_figure needs at least one reconstruction in 'recons'")
    images: dict[str, NDArray[np.float64]] = {}
    for name, recon in recons.items():
        arr = np.abs(np.asarray(recon)).astype(np.float64)
        if arr.shape != truth_mag.shape:
            raise ConfigError(f"recon {name!r} has shape {arr.shape}, truth has {truth_mag.shape}; they must match")
        images[name] = arr
    values = dict(metrics or {})
    for name, arr in images.items():
        if name not in values:
            values[name] = _metrics(truth_mag, arr)

    n = len(images)
    width_px, height_px = comparison_figure_size_px(n, title=bool(title))
    fig = Figure(figsize=(width_px / _DPI, height_px / _DPI), dpi=_DPI, facecolor="black")
    FigureCanvasAgg(fig)  # Agg canvas attached to this figure only; pyplot's global state is untouched
    vmax = float(np.percentile(truth_mag, 99.5)) or float(truth_mag.max()) or 1.0
    height_in = height_px / _DPI
    top_in = height_in - (_TITLE_IN if title else 0.0)
    row_in = _HEAD_IN + _PANEL_IN + _LABEL_IN
    col_w = 1.0 / (n + 1)
    text_style: dict[str, Any] = {"color": "white", "ha": "center", "va": "top", "fontsize": 8.5, "family": "monospace"}

    def panel(col: int, row: int, image: NDArray[np.float64], heading: str, label: str) -> None:
        bottom = (top_in - row * row_in - _HEAD_IN - _PANEL_IN) / height_in
        ax = fig.add_axes((col * col_w, bottom, col_w, _PANEL_IN / height_in))
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=vmax, origin="upper", interpolation="nearest", aspect="equal")
        ax.set_axis_off()
        ax.set_title(heading, color="white", fontsize=10, pad=4)
        fig.text((col + 0.5) * col_w, bottom - 0.005, label, **text_style)

    panel(0, 0, truth_mag, "truth", "")
    for i, (name, arr) in enumerate(images.items(), start=1):
        panel(i, 0, arr, name, _label(values.get(name)))
        err = np.abs(truth_mag - arr) * ERROR_GAIN
        rmse = math.sqrt(float(np.mean((truth_mag - arr) ** 2)))
        panel(i, 1, err, f"|truth - {name}| x{ERROR_GAIN:g}", f"RMSE {rmse:.3g}")
    if title:
        y_title = 1.0 - 0.1 * _TITLE_IN * _DPI / height_px
        fig.text(0.5, y_title, title, color="white", ha="center", va="top", fontsize=13)

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=_DPI, format="png", facecolor=fig.get_facecolor())
    return path


def write_html_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    figure: str | os.PathLike[str] | None = None,
    metrics: dict[str, dict[str, float]] | None = None,
    facts: dict[str, object] | None = None,
) -> Path:
    """Write a self-contained HTML report: title, acquisition facts, a metrics table and the figure (embedded).

    Parameters
    ----------
    path
        Output ``.html`` (temporary name, then rename).
    title
        Heading and page title.
    figure
        PNG to embed as a data URI (e.g. from :func:`save_comparison_figure`), or None.
    metrics
        ``{method: {"nmse": ..., "psnr": ..., "ssim": ..., ...}}``: one table row per method.
    facts
        Acquisition facts shown as a two-column table (``{"B0 [T]": 7.0, "TE [ms]": 4.6}``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = write_html_report(pathlib.Path(tempfile.mkdtemp()) / "r.html", title="GRE <7T>",
    ...                         metrics={"sense": {"nmse": 0.01, "psnr": 35.2}})
    >>> "GRE &lt;7T&gt;" in out.read_text() and "35.2" in out.read_text()
    True
    """
    import base64
    import html

    def cell(value: object) -> str:
        if isinstance(value, float):
            text = f"{value:.4g}"
        else:
            text = str(value)
        return f"<td>{html.escape(text)}</td>"

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;background:#111;color:#eee;margin:2em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #555;padding:.3em .8em;text-align:right}"
        "th{background:#222}img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if facts:
        parts.append("<h2>Acquisition</h2><table>")
        parts += [f"<tr><th>{html.escape(str(k))}</th>{cell(v)}</tr>" for k, v in facts.items()]
        parts.append("</table>")
    if metrics:
        columns: list[str] = []
        for values in metrics.values():
            columns += [k for k in values if k not in columns]
        parts.append("<h2>Image quality</h2><table><tr><th>method</th>")
        parts += [f"<th>{html.escape(c)}</th>" for c in columns]
        parts.append("</tr>")
        for method, values in metrics.items():
            row = "".join(cell(values[c]) if c in values else "<td></td>" for c in columns)
            parts.append(f"<tr><th>{html.escape(method)}</th>{row}</tr>")
        parts.append("</table>")
    if figure is not None:
        data = base64.b64encode(Path(figure).read_bytes()).decode("ascii")
        parts.append(f'<h2>Images</h2><img alt="comparison figure" src="data:image/png;base64,{data}">')
    parts.append("</body></html>")

    return atomic_write_text(Path(path), "\n".join(parts) + "\n")


def save_uncertainty_figure(
    image: NDArray[np.floating],
    extras: dict[str, NDArray[np.floating]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
) -> Path:
    """Save a PNG of a learned image ``(y, x)`` beside its null-space (hallucination) map, data-consistency
    residual, signed data-consistency correction (blue: the data say darker, red: brighter; a map without
    ``dc_correction`` leaves that panel out), the signed significance of the residual (``dc_significance``, in noise
    standard deviations, shown from -10 to 10 at least; left out when absent) and conformal interval width
    (``upper - lower``), each on its own scale (written atomically)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from hifield._atomic import atomic_path

    panels = {
        "image": np.abs(np.asarray(image)),
        "null space": np.asarray(extras["null_space"]),
        "DC residual (image)": np.asarray(extras["dc_residual_image"]),
    }
    if "dc_correction" in extras:
        panels["DC correction (signed)"] = np.asarray(extras["dc_correction"])
    if "dc_significance" in extras:
        panels["DC significance (z)"] = np.asarray(extras["dc_significance"])
    panels["90% interval width"] = np.asarray(extras["conformal_upper"]) - np.asarray(extras["conformal_lower"])
    fig = Figure(figsize=(3.0 * len(panels), 3.4), dpi=_DPI, facecolor="black")
    FigureCanvasAgg(fig)
    for i, (name, data) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), i + 1)
        if name.startswith("DC correction") or name.startswith("DC significance"):
            vmax = float(np.percentile(np.abs(data), 99.5)) or float(np.abs(data).max()) or 1.0
            if name.startswith("DC significance"):
                vmax = max(vmax, 10.0)  # noise alone stays pale: |z| of a few is not a finding
            ax.imshow(data, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        else:
            vmax = float(np.percentile(data, 99.5)) or float(data.max()) or 1.0
            ax.imshow(data, cmap="gray" if i == 0 else "magma", vmin=0.0, vmax=vmax, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(name, color="white", fontsize=10)
    if title:
        fig.suptitle(title, color="white", fontsize=10)
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", facecolor="black")
    return out
