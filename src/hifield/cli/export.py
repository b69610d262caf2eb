"""``hifield export``: turn a scan's output, a DICOM series or an image file into DICOM and send it to a PACS."""

from __future__ import annotations

from pathlib import Path

import typer

from hifield.cli._common import handle_errors, print_json
from hifield.cli.options import out_dir_option, timeout_option
from hifield.errors import FileFormatError


def _check_mr(files: list[Path]) -> None:
    import pydicom
    from pydicom.errors import InvalidDicomError

    for f in files:
        try:
            ds = pydicom.dcmread(f, defer_size="1 KB")  # pixel data is not loaded, only seen
        except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError) as err:
            reason = type(err).__name__
            raise FileFormatError(f"{f} is not a readable DICOM file ({reason}); nothing was sent") from None
        modality = str(ds.get("Modality", ""))
        if modality != "MR":
            raise FileFormatError(f"{f} is a {modality or 'modality-less'} DICOM object, not MR; nothing was sent")
        if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
            raise FileFormatError(f"{f} is an MR DICOM object without pixel data (no image); nothing was sent")


def _dicom_files(path: Path, out: Path | None, series_description: str, series_number: int) -> tuple[list[Path], str]:
    """DICOM files for PATH (converting NIfTI images to DICOM series when needed) and what was done."""
    from hifield.io import read_nifti, write_dicom_series

    def convert(nifti: Path, folder: Path, number: int) -> list[Path]:
        image = read_nifti(nifti)
        description = series_description or nifti.name.removesuffix(".gz").removesuffix(".nii")
        return write_dicom_series(image, folder, series_description=description, series_number=number)

    if not path.exists():
        raise FileFormatError(f"{path}: no such file or folder; pass a scan output folder, a DICOM folder or a .nii.gz")
    if path.is_dir():
        files = sorted(f for f in path.rglob("*.dcm") if f.is_file() and not f.name.startswith("."))
        if files:
            return files, f"found {len(files)} DICOM files under {path}"
        niftis = sorted(p for p in path.rglob("*.nii*") if p.name.endswith((".nii", ".nii.gz")))
        if not niftis:
            raise FileFormatError(f"{path} holds no DICOM (.dcm) or NIfTI (.nii/.nii.gz) images to export")
        target = out or path / "dicom_export"
        files = []
        for i, nifti in enumerate(niftis):
            stem = nifti.name.removesuffix(".gz").removesuffix(".nii")
            files += convert(nifti, target / stem if len(niftis) > 1 else target, series_number + i)
        return files, f"converted {len(niftis)} NIfTI image(s) to {len(files)} DICOM files in {target}"
    name = path.name.lower()
    if name.endswith(".dcm"):
        return [path], f"one DICOM file {path}"
    if name.endswith((".nii", ".nii.gz")):
        target = out or path.with_name(path.name.removesuffix(".gz").removesuffix(".nii") + "_dicom")
        files = convert(path, target, series_number)
        return files, f"converted {path.name} to {len(files)} DICOM files in {target}"
    raise FileFormatError(f"cannot export {path.name!r}: pass a folder, a .dcm file or a .nii/.nii.gz image")


@handle_errors
def export_command(
    path: Path = typer.Argument(..., help="A scan's output folder, a DICOM series folder, a .dcm or a .nii/.nii.gz."),
    pacs: str | None = typer.Option(None, "--pacs", help="Send to this PACS, HOST:PORT (C-ECHO, then C-STORE)."),
    called_aet: str = typer.Option("ORTHANC", "--called-aet", help="The PACS's AE title."),
    calling_aet: str = typer.Option("HIFIELD", "--calling-aet", help="hifield's AE title."),
    out: Path | None = out_dir_option(None, "Folder for DICOM converted from NIfTI."),
    series_description: str = typer.Option("", "--series-description", help="SeriesDescription of converted images."),
    series_number: int = typer.Option(100, "--series-number", help="SeriesNumber of converted images."),
    timeout_s: float = timeout_option("Network timeout in seconds (0 < T <= 3600)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Collect (or make) the DICOM series of PATH and, with --pacs, send it to a PACS and report what was stored.

    Exit codes: 0 stored (or converted), 1 bad input, 3 the PACS was down, refused, or did not store everything.
    Local files are never removed.
    """
    from hifield.errors import ExternalServiceError
    from hifield.io.pacs import parse_pacs_address, send_to_pacs

    address = parse_pacs_address(pacs) if pacs is not None else None  # bad address: exit 1 before any work
    files, what = _dicom_files(path, out, series_description, series_number)
    _check_mr(files)
    summary: dict[str, object] = {"path": str(path), "n_files": len(files), "what": what}
    if address is not None:
        host, port = address
        report = send_to_pacs(files, host, port, called_aet=called_aet, calling_aet=calling_aet, timeout_s=timeout_s)
        summary.update(
            pacs=f"{host}:{port}",
            called_aet=called_aet,
            stored=len(report.stored),
            failed=[{"file": f, "status": s} for f, s in report.failed],
        )
        if not report.ok:
            if as_json:
                print_json(summary)
            raise ExternalServiceError(f"PACS {host}:{port}: {report.summary()}; local files are kept")
        message = f"{what}; {report.summary()}"
    else:
        message = f"{what}; no --pacs given, nothing sent"
    if as_json:
        summary["files"] = [str(f) for f in files]
        print_json(summary)
    else:
        print(message)
