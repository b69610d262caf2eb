"""Regenerate the brain-phantom figures of this folder: ``python docs/phantom/make_figures.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from hifield.phantom import brain_phantom

HERE = Path(__file__).parent


def relaxation_maps(fields: tuple[float, ...] = (3.0, 5.0, 7.0)) -> Path:
    """T1 and T2 maps of the axial brain phantom at each field (5 T labelled as interpolated)."""
    base = brain_phantom(b0_t=3.0, matrix=192)
    fig = Figure(figsize=(3.4 * len(fields), 7.0), layout="constrained")
    axes = fig.subplots(2, len(fields))
    for j, b0 in enumerate(fields):
        p = base.at_field(b0)
        tag = " (interpolated)" if p.interpolated else ""
        for i, (label, img, vmax, cmap) in enumerate(
            (("T1 [s]", p.t1_s[0], 3.0, "viridis"), ("T2 [ms]", p.t2_s[0] * 1e3, 150.0, "magma"))
        ):
            ax = axes[i, j]
            im = ax.imshow(np.where(p.pd[0] > 0.1, img, np.nan), cmap=cmap, vmin=0, vmax=vmax)
            ax.set_title(f"{label} at {b0:g} T{tag}", fontsize=10)
            ax.axis("off")
            if j == len(fields) - 1:
                fig.colorbar(im, ax=axes[i, :].tolist(), shrink=0.8)
    fig.suptitle("hifield brain phantom (MNI ICBM152 2009 + synthetic skull/scalp): effective T1 and T2")
    out = HERE / "brain_t1_t2_3T_5T_7T.png"
    fig.savefig(out, dpi=60)
    return out


def overview(b0_t: float) -> Path:
    """The Phantom.show() overview at one field."""
    out = HERE / f"brain_overview_{b0_t:g}T.png"
    brain_phantom(b0_t=b0_t, matrix=192).show().savefig(out, dpi=45)
    return out


def transmit(fields: tuple[float, ...] = (3.0, 5.0, 7.0)) -> Path:
    """|B1+| of the 8-channel array in CP mode and after RF shimming over the brain, with the CoV of each."""
    from scipy import ndimage

    from hifield.hardware.fields import (
        coefficient_of_variation,
        combine,
        quadrature_weights,
        rf_shim,
        transmit_array_maps,
    )

    fig = Figure(figsize=(3.2 * len(fields), 6.6), layout="constrained")
    axes = fig.subplots(2, len(fields))
    for j, b0 in enumerate(fields):
        p = brain_phantom(b0_t=b0, matrix=64, off_resonance=False)
        mask = ndimage.binary_fill_holes(((p.fractions[0] + p.fractions[1]) > 0.5)[0])[None]
        maps = transmit_array_maps(p.affine, p.shape, b0_t=b0)
        cp = combine(maps, quadrature_weights(8))
        shim = combine(maps, rf_shim(maps, mask))
        for i, (label, b1) in enumerate((("CP (quadrature)", cp), ("RF shim", shim))):
            ax = axes[i, j]
            cov = coefficient_of_variation(b1, mask)
            im = ax.imshow(np.where(p.pd[0] > 0.1, np.abs(b1[0]), np.nan), cmap="jet", vmin=0, vmax=1.6)
            ax.contour(mask[0], levels=[0.5], colors="w", linewidths=0.6)
            ax.set_title(f"{b0:g} T {label}: CoV {cov:.1%}", fontsize=9)
            ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, label="|B1+| / nominal")
    fig.suptitle("8-channel transmit array (line elements in a lossy head medium)")
    out = HERE / "b1_shimming_8ch.png"
    fig.savefig(out, dpi=72)
    return out


if __name__ == "__main__":
    for path in (relaxation_maps(), overview(3.0), overview(7.0), transmit()):
        print(path, path.stat().st_size // 1024, "KiB")
