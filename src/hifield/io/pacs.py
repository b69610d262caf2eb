"""Send DICOM files to a PACS over the DICOM network (pynetdicom): C-ECHO first, then one C-STORE per file."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hifield.errors import ConfigError, ExternalServiceError, FileFormatError

__all__ = ["StoreReport", "echo_pacs", "parse_pacs_address", "send_to_pacs"]

_AET = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # default character repertoire without backslash, 1..16 chars


@dataclass(frozen=True)
class StoreReport:
    """What a PACS accepted."""

    host: str
    """PACS host name or address."""
    port: int
    """PACS DICOM port."""
    called_aet: str
    """The PACS's application entity title."""
    echo_status: int
    """Status of the C-ECHO (0 = success)."""
    stored: tuple[str, ...]
    """SOPInstanceUIDs the PACS stored (status 0x0000 or a warning 0xB...)."""
    failed: tuple[tuple[str, int], ...]
    """(file, status) for every file the PACS did not store."""
    n_files: int
    """Number of files offered."""

    @property
    def ok(self) -> bool:
        """True when every file was stored."""
        return not self.failed and len(self.stored) == self.n_files

    def summary(self) -> str:
        """One line for the CLI."""
        text = f"stored {len(self.stored)}/{self.n_files} instances on {self.called_aet}@{self.host}:{self.port}"
        if self.failed:
            text += f"; {len(self.failed)} failed (first: {self.failed[0][0]} status 0x{self.failed[0][1]:04X})"
        return text


def parse_pacs_address(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6addr]:PORT`` for IPv6) into host and port.

    Raises
    ------
    ConfigError
        If it is not ``host:port`` with a port in 1..65535.

    Examples
    --------
    >>> parse_pacs_address("127.0.0.1:4242")
    ('127.0.0.1', 4242)
    >>> parse_pacs_address("[::1]:104")
    ('::1', 104)
    """
    match = re.fullmatch(r"\s*(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_.\-]+)):(\d{1,5})\s*", text or "")
    if match is None:
        raise ConfigError(f"PACS address {text!r} is not HOST:PORT (e.g. 127.0.0.1:4242)")
    host = match.group(1) or match.group(2)
    port = int(match.group(3))
    if not 1 <= port <= 65535:
        raise ConfigError(f"PACS port {port} in {text!r} is outside 1..65535")
    return host, port


def _check_aet(aet: str, what: str) -> str:
    if not _AET.match(aet) or aet.strip() == "":
        raise ConfigError(f"{what} AE title {aet!r} must be 1-16 printable characters without backslash")
    return aet


def _collect(files: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[Path]:
    if isinstance(files, (str, os.PathLike)):
        p = Path(files)
        if p.is_dir():
            return sorted(f for f in p.rglob("*.dcm") if f.is_file() and not f.name.startswith("."))
        return [p]
    return [Path(f) for f in files]


def _probe(host: str, port: int, timeout_s: float) -> None:
    """Open and close a TCP connection, so an absent PACS gives a clear error (and no leaked socket)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except ConnectionRefusedError:
        raise ExternalServiceError(
            f"PACS {host}:{port} refused the connection (nothing listens there); check that it runs and the port"
        ) from None
    except TimeoutError:
        raise ExternalServiceError(
            f"PACS {host}:{port} did not answer within {timeout_s:g} s; check the address and any firewall"
        ) from None
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ExternalServiceError(f"PACS {host}:{port} could not be reached ({reason}); check the address") from None


def _associate(host: str, port: int, *, called_aet: str, calling_aet: str, timeout_s: float, contexts: Any) -> Any:
    from pynetdicom import AE

    _probe(host, port, timeout_s)

    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = timeout_s
    ae.dimse_timeout = timeout_s
    ae.network_timeout = timeout_s
    ae.connection_timeout = timeout_s
    for sop_class, syntaxes in contexts:
        ae.add_requested_context(sop_class, syntaxes)
    try:
        assoc = ae.associate(host, port, ae_title=called_aet)
    except (OSError, ValueError) as err:
        raise ExternalServiceError(
            f"PACS {host}:{port} could not be reached ({type(err).__name__}: {err}); check the address"
        ) from None
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        raise ExternalServiceError(
            f"PACS {host}:{port} rejected the association (called AE {called_aet!r}, calling AE {calling_aet!r}); "
            "check both AE titles and that the PACS knows this sender"
        )
    raise ExternalServiceError(
        f"PACS {host}:{port} is down or refused the connection (no association within {timeout_s:g} s); "
        "check that it runs and the port is right"
    )


def echo_pacs(host: str, port: int, *, called_aet: str, calling_aet: str = "HIFIELD", timeout_s: float = 10.0) -> int:
    """Send a DICOM C-ECHO; return its status (0 = success).

    Raises
    ------
    ExternalServiceError
        If the PACS cannot be reached, rejects the association or does not answer.
    """
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    _check_aet(called_aet, "called")
    _check_aet(calling_aet, "calling")
    assoc = _associate(
        host,
        port,
        called_aet=called_aet,
        calling_aet=calling_aet,
        timeout_s=timeout_s,
        contexts=[(Verification, None)],
    )
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if status is None or "Status" not in status:
        raise ExternalServiceError(f"PACS {host}:{port} did not answer the C-ECHO; check the PACS")
    return int(status.Status)


def send_to_pacs(
    files: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    host: str,
    port: int,
    *,
    called_aet: str,
    calling_aet: str = "HIFIELD",
    timeout_s: float = 30.0,
) -> StoreReport:
    """Send DICOM files to a PACS: one association, C-ECHO first, then a C-STORE per file.

    Parameters
    ----------
    files
        DICOM files, or a folder (all ``*.dcm`` below it).
    host, port
        The PACS's DICOM address.
    called_aet
        The PACS's AE title.
    calling_aet
        hifield's AE title.
    timeout_s
        Connection, association and DIMSE timeout [s].

    Returns
    -------
    StoreReport
        Instances stored and files refused (a refused file does not stop the others).

    Raises
    ------
    ExternalServiceError
        If the PACS is down, refuses or rejects the association, fails the C-ECHO, or drops the connection.
    FileFormatError
        If a file is not DICOM (checked before connecting).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    _check_aet(called_aet, "called")
    _check_aet(calling_aet, "calling")
    paths = _collect(files)
    if not paths:
        raise FileFormatError(f"no DICOM files to send in {files}; pass a series folder or .dcm files")
    datasets = []
    for p in paths:
        try:
            datasets.append(pydicom.dcmread(p))
        except (InvalidDicomError, OSError, EOFError) as err:
            raise FileFormatError(
                f"{p} is not a readable DICOM file ({type(err).__name__}); nothing was sent"
            ) from None
    contexts: dict[str, set[str]] = {}
    for ds in datasets:
        syntaxes = contexts.setdefault(str(ds.SOPClassUID), {str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)})
        syntaxes.add(str(ds.file_meta.TransferSyntaxUID))
    requested = [(Verification, None)] + [(sop, sorted(ts)) for sop, ts in contexts.items()]
    if len(requested) > 128:
        raise ConfigError(f"{len(requested)} SOP classes exceed one association's 128 presentation contexts")
    assoc = _associate(
        host, port, called_aet=called_aet, calling_aet=calling_aet, timeout_s=timeout_s, contexts=requested
    )
    stored: list[str] = []
    failed: list[tuple[str, int]] = []
    try:
        echo = assoc.send_c_echo()
        if echo is None or "Status" not in echo or int(echo.Status) != 0:
            raise ExternalServiceError(f"PACS {host}:{port} failed the C-ECHO ({echo}); check the PACS")
        for path, ds in zip(paths, datasets, strict=True):
            status = assoc.send_c_store(ds)
            if status is None or "Status" not in status:
                raise ExternalServiceError(
                    f"PACS {host}:{port} dropped the connection while storing {path.name} "
                    f"({len(stored)} of {len(paths)} stored); local files are kept, send again"
                )
            code = int(status.Status)
            if code == 0 or (code & 0xF000) == 0xB000:
                stored.append(str(ds.SOPInstanceUID))
            else:
                failed.append((str(path), code))
    finally:
        if assoc.is_established:
            assoc.release()
    return StoreReport(
        host=host,
        port=port,
        called_aet=called_aet,
        echo_status=int(echo.Status),
        stored=tuple(stored),
        failed=tuple(failed),
        n_files=len(paths),
    )
