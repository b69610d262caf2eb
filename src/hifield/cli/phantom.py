"""``hifield phantom`` and ``hifield coils``: build a phantom or a receive array and save its maps (PNG/NIfTI)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import typer

from hifield._atomic import atomic_path
from hifield.cli._common import handle_errors, print_json
from hifield.cli.options import out_file_option
from hifield.errors import ConfigError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from hifield.phantom import Phantom

_SUFFIXES = (".png", ".nii", ".nii.gz")


def _suffix(out: Path) -> str:
    name = out.name.lower()
    for s in (".nii.gz", ".png", ".nii"):
        if name.endswith(s):
            return s
    raise ConfigError(f"output {str(out)!r} must end in {', '.join(_SUFFIXES)}; choose one of them")


def _field(text: str) -> float:
    from hifield.phantom.tissues import check_field
    from hifield.units import parse_field_strength

    try:
        value = parse_field_strength(text)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return check_field(value)


def _save_png(fig: Any, out: Path) -> None:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100)


def _save_nifti(volume: NDArray[np.float32], affine: NDArray[np.float64], out: Path, suffix: str) -> None:
    """Write ``(z, y, x, n)`` data as NIfTI (x, y, z, n) with the RAS affine in mm (temporary name, then rename)."""
    import nibabel as nib

    from hifield.io.nifti import lps_zyx_to_ras_affine

    data = np.ascontiguousarray(np.transpose(volume, (2, 1, 0, 3)).astype(np.float32))
    img = nib.Nifti1Image(data, lps_zyx_to_ras_affine(affine))
    img.header.set_xyzt_units("mm")
    with atomic_path(out) as tmp:
        nib.save(img, str(tmp))


def phantom_maps(phantom: Phantom) -> tuple[tuple[str, ...], NDArray[np.float32]]:
    """Names and stacked maps ``(z, y, x, map)``: PD, T1 [s], T2 [s], T2* [s], off-resonance [Hz], label."""
    names = ("pd", "t1_s", "t2_s", "t2star_s", "off_resonance_hz", "label")
    maps = np.stack(
        [
            phantom.pd,
            phantom.t1_s,
            phantom.t2_s,
            phantom.t2star_s,
            phantom.off_resonance_hz,
            phantom.labels.astype(np.float32),
        ],
        axis=-1,
    )
    return names, maps.astype(np.float32)


@handle_errors
def phantom_command(
    kind: str = typer.Option("brain", "--kind", help="brain, shepp-logan, nist, nist-t2 or water-fat."),
    field: str = typer.Option("3T", "--field", help="Main field, e.g. 3T or 5T (0.1-11.7 T)."),
    out: Path = out_file_option(Path("phantom.png"), "Output .png (figure) or .nii/.nii.gz (maps)."),
    matrix: int = typer.Option(256, "--matrix", help="In-plane matrix."),
    n_slices: int = typer.Option(1, "--slices", help="Number of slices (> 1: 3D volume)."),
    plane: str = typer.Option("axial", "--plane", help="Brain slice orientation: axial, coronal or sagittal."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Build a digital phantom at a field strength and save its PD/T1/T2/T2*/off-resonance/label maps."""
    from hifield.phantom import make_phantom

    suffix = _suffix(out)
    b0 = _field(field)
    phantom = make_phantom(kind, b0_t=b0, matrix=matrix, n_slices=n_slices, plane=plane)
    names: tuple[str, ...] = ()
    if suffix == ".png":
        _save_png(phantom.show(), out)
    else:
        names, maps = phantom_maps(phantom)
        _save_nifti(maps, phantom.affine, out, suffix)
    summary = {
        "kind": kind,
        "name": phantom.name,
        "b0_t": b0,
        "shape": list(phantom.shape),
        "voxel_size_mm": [round(v * 1e3, 4) for v in phantom.voxel_size_m],
        "tissues": [
            {
                "name": t.name,
                "t1_ms": round(t.t1_s * 1e3, 2),
                "t2_ms": round(t.t2_s * 1e3, 2),
                "t2star_ms": round(t.t2star_s * 1e3, 2),
                "pd": t.pd,
                "interpolated": t.interpolated,
            }
            for t in phantom.tissues
        ],
        "out": str(out),
        "nifti_volumes": list(names),
    }
    if as_json:
        print_json(summary)
    else:
        tag = " (interpolated values)" if phantom.interpolated else ""
        print(f"{phantom.name} at {b0:g} T{tag}: {phantom.shape} -> {out}")


@handle_errors
def coils_command(
    n: int = typer.Option(16, "--n", help="Number of receive coils (>= 1)."),
    out: Path = out_file_option(Path("coils.png"), "Output .png (figure) or .nii/.nii.gz (|sensitivity|)."),
    field: str = typer.Option("3T", "--field", help="Main field, e.g. 3T."),
    layout: str = typer.Option("helmet", "--layout", help="helmet or cylinder."),
    matrix: int = typer.Option(128, "--matrix", help="In-plane matrix of the maps over a 0.24 m FOV."),
    acceleration: int = typer.Option(
        2, "--acceleration", min=1, help="SENSE factor R along y for the g-factor panel (1..coils, divides the matrix)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Build a receive array and save its sensitivities, noise correlation and SENSE g-factor."""
    from hifield.hardware.coils import CoilArray
    from hifield.hardware.fields import g_factor_map
    from hifield.phantom import brain_phantom

    suffix = _suffix(out)
    b0 = _field(field)
    if n > 256:
        raise ConfigError(f"{n} coils is more than 256; choose up to 256")
    if matrix < 8 or matrix > 1024:
        raise ConfigError(f"matrix {matrix} is outside 8-1024")
    coils = CoilArray.head_array(n, b0_t=b0, layout=layout)
    if acceleration > n:
        raise ConfigError(f"--acceleration {acceleration} exceeds the {n} coils; SENSE needs R <= number of coils")
    if matrix % acceleration:
        raise ConfigError(f"--acceleration {acceleration} does not divide the matrix {matrix}; choose a divisor")
    head = brain_phantom(b0_t=b0, matrix=matrix, off_resonance=False)
    sens = coils.sensitivities(head.affine, head.shape)
    mask = head.fractions.sum(axis=0) > 0.5
    g = None
    if head.shape[1] % acceleration == 0:
        g = g_factor_map(sens, acceleration=acceleration, noise_covariance=coils.noise_covariance, mask=mask)
    psi = coils.noise_covariance
    d = np.sqrt(np.real(np.diag(psi)))
    corr = np.abs(psi) / d[:, None] / d[None, :]
    if suffix == ".png":
        _save_png(_coil_figure(sens, corr, g, mask, title=f"{coils.name} at {b0:g} T"), out)
    else:
        _save_nifti(np.moveaxis(np.abs(sens), 0, -1).astype(np.float32), head.affine, out, suffix)
    off = corr[~np.eye(n, dtype=bool)] if n > 1 else np.zeros(1)
    summary = {
        "n_coils": n,
        "layout": layout,
        "b0_t": b0,
        "loop_radius_mm": round(coils.loop_radius_m * 1e3, 2),
        "max_noise_correlation": round(float(off.max()), 4),
        "mean_g_factor": None if g is None else round(float(g[mask].mean()), 4),
        "max_g_factor": None if g is None else round(float(g[mask].max()), 4),
        "out": str(out),
    }
    if as_json:
        print_json(summary)
    else:
        gtxt = (
            "" if g is None else f", g (R={acceleration}) mean {summary['mean_g_factor']} max {summary['max_g_factor']}"
        )
        print(f"{coils.name}: noise correlation up to {summary['max_noise_correlation']}{gtxt} -> {out}")


def _coil_figure(
    sens: NDArray[np.complex64],
    corr: NDArray[np.float64],
    g: NDArray[np.float32] | None,
    mask: NDArray[np.bool_],
    *,
    title: str,
) -> Any:
    from matplotlib.figure import Figure

    n = sens.shape[0]
    shown = min(n, 16)
    cols = 4 + 2
    rows = max(3, math.ceil(shown / 4))
    fig = Figure(figsize=(2.2 * cols, 2.2 * rows), layout="constrained")
    grid = fig.add_gridspec(rows, cols)
    mag = np.abs(sens[:, 0])
    vmax = float(np.percentile(mag[:, mask[0]], 99)) if mask.any() else float(mag.max())
    for c in range(shown):
        ax = fig.add_subplot(grid[c // 4, c % 4])
        ax.imshow(mag[c] * (0.25 + 0.75 * mask[0]), cmap="gray", vmin=0, vmax=vmax)
        ax.set_title(f"coil {c}", fontsize=8)
        ax.axis("off")
    rss = np.sqrt((mag**2).sum(axis=0))
    ax = fig.add_subplot(grid[0, 4:])
    im = ax.imshow(rss * mask[0], cmap="viridis")
    ax.set_title("root-sum-of-squares (head)")
    ax.axis("off")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax = fig.add_subplot(grid[1, 4:])
    im = ax.imshow(corr, cmap="magma", vmin=0, vmax=max(0.25, float(np.sort(corr.ravel())[-n - 1]) if n > 1 else 0.25))
    ax.set_title("noise correlation |ρ|")
    fig.colorbar(im, ax=ax, shrink=0.8)
    if g is not None:
        ax = fig.add_subplot(grid[2, 4:])
        im = ax.imshow(g[0], cmap="inferno", vmin=1.0, vmax=max(1.5, float(g.max())))
        ax.set_title("SENSE g-factor")
        ax.axis("off")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(title + (f" (first {shown} of {n} coils)" if n > shown else ""))
    return fig
