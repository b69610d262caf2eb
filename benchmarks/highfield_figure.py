"""Figure: the default exam at 3 T and 7 T with the high-field effects, in the CP (quadrature) mode and with pTx.

For each field the default ``hifield scan`` protocol (T1 GRE, 2D axial brain) is run with ``--ideal``, with the
default effects (CP transmit, 2nd-order B0 shim) and with ``--shim pTx``; the fully sampled noise-free reference
images are shown beside the B1+ maps (flip-angle scale) and the residual B0 map the phantom carried, with the B1+
CoV over the brain and the B0 range in each title. The scans use the fast engine and R = 1 (the truth image).

Run: ``python benchmarks/highfield_figure.py [--matrix 128]``; writes ``docs/images/highfield_3T_7T.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import hifield as hf
from hifield.pipeline import load_protocol_spec, phantom_for_protocol
from hifield.sim.field_effects import FieldEffects, apply_field_effects, object_mask

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matrix", type=int, default=128)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "highfield_3T_7T.png")
    args = parser.parse_args()

    import dataclasses

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fields = ("3T", "7T")
    columns = ("ideal", "CP (default)", "pTx shim", "B1+ CP", "B1+ pTx", "B0 residual [Hz]")
    fig, axes = plt.subplots(len(fields), len(columns), figsize=(3.0 * len(columns), 3.3 * len(fields)))
    for row, field in enumerate(fields):
        runs = {
            "ideal": hf.ScanConfig(field=field, matrix=args.matrix, acceleration=1, recons=("fft",), ideal=True),
            "CP (default)": hf.ScanConfig(field=field, matrix=args.matrix, acceleration=1, recons=("fft",)),
            "pTx shim": hf.ScanConfig(field=field, matrix=args.matrix, acceleration=1, recons=("fft",), rf_shim="pTx"),
        }
        images = {}
        summaries = {}
        for name, cfg in runs.items():
            result = hf.scan(dataclasses.replace(cfg, write_files=False))
            images[name] = result.truth[0]
            summaries[name] = result.summary
        vmax = float(np.percentile(images["ideal"], 99.5))
        for col, name in enumerate(runs):
            ax = axes[row, col]
            ax.imshow(images[name], cmap="gray", vmin=0, vmax=1.3 * vmax)
            s = summaries[name]
            extra = ""
            if name != "ideal":
                extra = f"\nB1+ CoV {s['b1_cov']:.3f}, B0 range {s['b0_residual_range_hz']:.0f} Hz"
            ax.set_title(f"{field} {name}{extra}", fontsize=9)
        # the maps the phantom carried
        scanner = hf.Scanner.preset(field)
        protocol = dataclasses.replace(load_protocol_spec("gre_t1_2d"), matrix=args.matrix)
        phantom = phantom_for_protocol("brain", protocol, b0_t=scanner.b0_t)
        mask = object_mask(phantom)[0]
        for col, mode in ((3, "cp"), (4, "ptx")):
            shaded, report = apply_field_effects(phantom, FieldEffects(rf_shim=mode))
            assert shaded.b1_scale is not None
            b1 = np.where(mask, shaded.b1_scale[0], np.nan)
            im = axes[row, col].imshow(b1, cmap="magma", vmin=0.4, vmax=1.6)
            axes[row, col].set_title(f"{field} |B1+| {mode.upper()}: CoV {report['b1_cov']:.3f}", fontsize=9)
            fig.colorbar(im, ax=axes[row, col], fraction=0.046)
        off = np.where(mask, shaded.off_resonance_hz[0], np.nan)
        lim = float(np.nanpercentile(np.abs(off), 99.5))
        im = axes[row, 5].imshow(off, cmap="coolwarm", vmin=-lim, vmax=lim)
        axes[row, 5].set_title(f"{field} B0 after 2nd-order shim [Hz]", fontsize=9)
        fig.colorbar(im, ax=axes[row, 5], fraction=0.046)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Default T1 GRE exam, fully sampled reference: high-field effects at 3 T and 7 T", fontsize=11)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
