"""Draw every sampling pattern and its point-spread function into docs/sampling/*.png and print a summary table.

Run from the repository root: ``python docs/sampling/make_figures.py``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from hifield.hardware import Scanner
from hifield.sampling import equispaced_lines, variable_density_lines
from hifield.sampling.caipi import caipirinha
from hifield.sampling.partial_fourier import partial_fourier_lines
from hifield.sampling.pattern import SamplingPattern
from hifield.sampling.poisson import poisson_disc
from hifield.sequence import RadialProtocol, SpiralProtocol

OUT = Path(__file__).parent
DPI = 72
ROWS: list[str] = []


def _db(x: np.ndarray) -> np.ndarray:
    return 20 * np.log10(np.maximum(x, 1e-4))


def lines_figure(p: SamplingPattern, title: str, stem: str) -> None:
    n = p.n_lines
    fig, ax = plt.subplots(1, 2, figsize=(6.4, 2.8), dpi=DPI)
    ax[0].imshow(np.broadcast_to(p.mask[0, :, 0][:, None], (n, n // 2)).T, cmap="gray", aspect="auto")
    ax[0].set(title=f"{title}: R = {p.acceleration:.2f}", xlabel="k1 (phase encode)", ylabel="k0 (readout)")
    psf = np.abs(np.fft.fftshift(np.fft.ifft(np.fft.ifftshift(p.mask[0, :, 0].astype(float)))))
    ax[1].plot(np.arange(n) - n // 2, _db(psf / psf.max()), lw=0.8)
    ax[1].set(title=f"PSF, peak side lobe {p.psf_peak_sidelobe():.2f}", xlabel="y [pixels]", ylabel="dB", ylim=(-60, 2))
    fig.tight_layout()
    fig.savefig(OUT / f"{stem}.png")
    plt.close(fig)
    ROWS.append(f"| {title} | {p.acceleration:.2f} | {p.calibration_lines} lines | {p.psf_peak_sidelobe():.3f} |")


def plane_figure(p: SamplingPattern, title: str, stem: str) -> None:
    fig, ax = plt.subplots(1, 2, figsize=(6.4, 3.0), dpi=DPI)
    ax[0].imshow(p.mask[:, :, 0], cmap="gray", interpolation="nearest")
    ax[0].set(title=f"{title}: R = {p.acceleration:.2f}", xlabel="k1 (ky)", ylabel="k2 (kz)")
    psf = np.fft.fftshift(p.psf())  # type: ignore[attr-defined]
    im = ax[1].imshow(_db(psf / psf.max()), cmap="magma", vmin=-40, vmax=0)
    ax[1].set(title=f"PSF (dB), side lobe {p.psf_peak_sidelobe():.2f}", xlabel="y", ylabel="z")
    fig.colorbar(im, ax=ax[1], shrink=0.8)
    fig.tight_layout()
    fig.savefig(OUT / f"{stem}.png")
    plt.close(fig)
    ROWS.append(f"| {title} | {p.acceleration:.2f} | {p.calibration_lines} points | {p.psf_peak_sidelobe():.3f} |")


def trajectory_figure(protocol: object, acceleration: float, title: str, stem: str, *, n_show: int) -> None:
    """The readouts a radial or spiral protocol plays at ``acceleration`` (the pattern ``hifield scan`` uses)."""
    from hifield.ops import NUFFTOp
    from hifield.sampling import make_pattern
    from hifield.sequence import build_with_pattern
    from hifield.sim import sequence_trajectory

    scanner = Scanner.preset("3T")
    full = protocol.build(scanner)  # type: ignore[attr-defined]
    pattern = make_pattern(full.trajectory, full.n_lines, acceleration=acceleration, trajectory=full.trajectory)
    built = build_with_pattern(protocol, scanner, pattern, axis="readouts")
    trajectory = sequence_trajectory(built)
    k = trajectory.kspace_m
    fig, ax = plt.subplots(1, 2, figsize=(6.4, 3.0), dpi=DPI)
    for i in range(min(n_show, k.shape[0])):
        ax[0].plot(k[i, :, 2], k[i, :, 1], lw=0.6)
    ax[0].set(title=f"{title}: R = {pattern.acceleration:.2f}", xlabel="kx [1/m]", ylabel="ky [1/m]", aspect="equal")
    n, fov = int(protocol.matrix), float(protocol.fov_m)  # type: ignore[attr-defined]
    op = NUFFTOp(k, (1, n, n), (0.005, fov / n, fov / n))
    psf = np.abs(np.asarray(op.H @ trajectory.density.astype(np.complex128)))[0]
    psf = psf / psf.max()
    im = ax[1].imshow(_db(psf), cmap="magma", vmin=-40, vmax=0)
    yy, xx = np.indices(psf.shape)
    lobe = float(psf[np.hypot(yy - n // 2, xx - n // 2) > 2.0].max())  # beyond the main lobe
    ax[1].set(title="PSF (dB)", xlabel="x", ylabel="y")
    fig.colorbar(im, ax=ax[1], shrink=0.8)
    fig.tight_layout()
    fig.savefig(OUT / f"{stem}.png")
    plt.close(fig)
    ROWS.append(f"| {title} | {pattern.acceleration:.2f} | none | {lobe:.3f} |")


def main() -> None:
    lines_figure(equispaced_lines(256, acceleration=4, n_calibration=24), "equispaced + ACS", "equispaced")
    lines_figure(
        variable_density_lines(256, acceleration=4, n_calibration=24, seed=0), "variable-density", "variable_density"
    )
    lines_figure(
        partial_fourier_lines(256, fraction=5 / 8, acceleration=2, n_calibration=24, seed=0),
        "partial Fourier 5/8 x R2",
        "partial_fourier",
    )
    plane_figure(
        poisson_disc((128, 128), acceleration=6, calibration=(24, 24), corner_cut=True, seed=0),
        "Poisson disc",
        "poisson",
    )
    plane_figure(caipirinha((96, 96), ry=3, rz=2, shift=1, calibration=(16, 16)), "CAIPIRINHA 3x2 shift 1", "caipi")
    plane_figure(caipirinha((96, 96), ry=3, rz=2, shift=0, calibration=(16, 16)), "lattice 3x2", "lattice")
    trajectory_figure(RadialProtocol(matrix=128), 4.0, "golden-angle radial (radial_gre_2d)", "radial", n_show=50)
    trajectory_figure(SpiralProtocol(matrix=128), 4.0, "VD spiral (spiral_vd_2d)", "spiral", n_show=4)
    print("| pattern | effective R | calibration | PSF peak side lobe |")
    print("|---|---|---|---|")
    print("\n".join(ROWS))


if __name__ == "__main__":
    main()
