"""``hifield recon``: reconstruct raw data to an image file (NIfTI, DICOM series or .npy)."""

from __future__ import annotations

from pathlib import Path

import typer

from hifield._atomic import atomic_path
from hifield.cli._common import handle_errors, print_json
from hifield.cli.options import out_path_option
from hifield.errors import ConfigError
from hifield.recon import reconstructor, reconstructor_names
from hifield.recon.device import DEVICE_HELP, validate_device

_MAP_USERS = ", ".join(n for n in reconstructor_names() if reconstructor(n).needs_coil_maps)


@handle_errors
def recon_command(
    raw_in: Path = typer.Argument(..., help="Raw data: ISMRMRD or fastMRI HDF5."),
    out: Path = out_path_option(..., "Output: .nii/.nii.gz (NIfTI), .npy, or a folder (DICOM series)."),
    method: str = typer.Option("sense", "--method", help=f"Reconstruction: {', '.join(reconstructor_names())}."),
    coil_maps: str = typer.Option("espirit", "--coil-maps", help=f"espirit or walsh (for {_MAP_USERS})."),
    reference: Path | None = typer.Option(
        None, "--reference", help="Fully sampled raw file: report NMSE/PSNR/SSIM against its RSS image."
    ),
    whiten: bool = typer.Option(
        False, "--whiten", help="Decorrelate the channels with the file's noise scan before reconstructing."
    ),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Reconstruct raw data with the chosen method and write the image."""
    import time

    import numpy as np

    from hifield.io import read_raw, write_dicom_series, write_nifti
    from hifield.recon import estimate_coil_maps, prewhiten, reconstruct

    spec = reconstructor(method)  # an unknown name is refused before the file is read
    device = validate_device(device)  # so are a missing torch or GPU
    raw = read_raw(raw_in, remove_readout_oversampling=True)
    # the reference is read before anything is written: a bad reference leaves no output behind
    ref_raw = read_raw(reference, remove_readout_oversampling=True) if reference is not None else None
    start = time.perf_counter()
    if whiten:
        raw = prewhiten(raw)
    maps = None
    if spec.needs_coil_maps:
        if coil_maps not in ("espirit", "walsh"):
            raise ConfigError(f"unknown --coil-maps {coil_maps!r}; choose espirit or walsh")
        maps = estimate_coil_maps(raw, method=coil_maps)  # type: ignore[arg-type]
    image = reconstruct(raw, method=method, coil_maps=maps, device=device)
    elapsed = time.perf_counter() - start
    summary: dict[str, object] = {"out": str(out), "method": method, "device": device, "time_s": round(elapsed, 3)}
    if ref_raw is not None:
        from hifield.metrics import nmse, psnr, ssim

        truth = np.abs(reconstruct(ref_raw, method="fft").data)
        pred = np.abs(image.data)
        if truth.size != pred.size:
            raise ConfigError(
                f"--reference {str(reference)!r} gives a {truth.shape[-2:]} image per slice over {truth.size} "
                f"voxels, the reconstruction {pred.size}; pass the fully sampled scan of the same protocol"
            )
        truth = truth.reshape(-1, *image.data.shape[-2:])
        pred = pred.reshape(truth.shape)
        summary.update(nmse=float(nmse(truth, pred)), psnr=float(psnr(truth, pred)), ssim=float(ssim(truth, pred)))
    name = out.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        write_nifti(image, out)
        stem = out.name[: -len(".nii.gz")] if name.endswith(".nii.gz") else out.name[: -len(".nii")]
        for extra, data in image.extras.items():  # a learned method's uncertainty maps, beside the image
            write_nifti(image.replace(data=data, extras={}), out.with_name(f"{stem}_{extra}.nii.gz"))
    elif name.endswith(".npy"):
        with atomic_path(out) as tmp:
            np.save(tmp, image.data)
    elif out.suffix == "" or out.is_dir():
        write_dicom_series(image, out, series_description=f"{raw.header.protocol_name} {method}")
    else:
        raise ConfigError(f"unknown output type {out.name!r}; use .nii.gz, .npy or a folder for a DICOM series")
    if as_json:
        print_json(summary)
    else:
        extra = ""
        if reference is not None:
            extra = f"; NMSE {summary['nmse']:.4f}, PSNR {summary['psnr']:.2f} dB, SSIM {summary['ssim']:.4f}"
        print(f"wrote {out} ({method}, {elapsed:.2f} s){extra}")
