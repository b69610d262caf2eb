"""The console's FastAPI application: protocol card, job queue with server-sent progress, viewer data, exams, PACS."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from hifield.console import card as cards
from hifield.console import exams
from hifield.console.jobs import Job, JobQueue, JobReporter, Runner
from hifield.errors import ConfigError, ExternalServiceError, HifieldError

STATIC_DIR = Path(__file__).parent / "static"
"""The front end (plain HTML, JavaScript and CSS, no build step)."""

TOKEN_COOKIE = "hifield_console_token"
TOKEN_HEADER = "x-hifield-token"

LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
"""Hosts the console may bind to without an access token."""


class CardBody(BaseModel):
    """The protocol card as the browser sends it (parameters in protocol-file units, ``te_ms``)."""

    model_config = ConfigDict(extra="forbid")

    protocol: str = "gre_t1_2d"
    field: str = "3T"
    scanner_yaml: str | None = None
    phantom: str = "brain"
    params: dict[str, Any] = Field(default_factory=dict)
    acceleration: float = 1.0
    pattern: str = "variable-density"
    n_calibration: int = 24
    recons: list[str] = Field(default_factory=lambda: ["fft", "sense", "cs"])
    mode: str = "normal"
    n_coils: int | None = None
    seed: int = 0

    def request(self) -> cards.CardRequest:
        """The library-side request."""
        data = self.model_dump()
        data["recons"] = tuple(data["recons"])
        return cards.CardRequest(**data)


class PacsBody(BaseModel):
    """Where to send an exam's DICOM series."""

    model_config = ConfigDict(extra="forbid")

    host: str
    port: int
    called_aet: str
    calling_aet: str = "HIFIELD"
    series: str | None = None
    """One reconstruction's series (``fft``), or None for every series of the exam."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": _one_line(message)}, status_code=status)


def pipeline_runner(exams_root: Path, *, scheduler: Any = None) -> Runner:
    """The job runner: checks the card again, then ``hifield.pipeline.scan`` into ``exams_root/<job id>``.

    With a ``scheduler`` (a Dask scheduler address such as ``tcp://host:8786``, a ``distributed.Client`` or a
    cluster object) the scan runs as a task on that cluster, through :mod:`hifield.distributed` as a study's exams
    do; the exams folder must then be on storage the workers share. Without one it runs in the console's own worker
    thread.
    """

    def run_scan(config: Any, reporter: JobReporter) -> Any:
        from hifield.pipeline import scan

        if scheduler is None:
            return scan(config, reporter=reporter)
        from hifield.distributed.runner import dask_client

        with (
            dask_client(scheduler, n_workers=None, n_exams=1) as (client, where, _),
            reporter.step(f"Scanning on {where}"),
        ):
            return client.submit(scan, config, pure=False).result()

    def run(job: Job, reporter: JobReporter) -> None:
        from hifield.sequence import save_protocol

        request = cards.CardRequest(**{**job.request, "recons": tuple(job.request["recons"])})
        checked = cards.evaluate(request)
        if not checked.ok:
            raise ConfigError(checked.errors[0]["message"])
        protocol = cards.make_protocol(request)
        out = exams_root / job.id
        out.mkdir(parents=True, exist_ok=False)
        # scan() replaces the exam folder as a whole, so its inputs wait outside and join the result afterwards
        with tempfile.TemporaryDirectory(prefix="hifield-inputs-") as folder:
            inputs = Path(folder)
            protocol_file = save_protocol(protocol, inputs / "protocol.yaml")
            field = request.field
            if request.scanner_yaml is not None:
                field = str(inputs / "scanner.yaml")
                (inputs / "scanner.yaml").write_text(request.scanner_yaml, encoding="utf-8")
            config = cards.scan_config(request, protocol=str(protocol_file), out=out, field=field)
            result = run_scan(config, reporter)
            for name in sorted(p.name for p in inputs.iterdir()):
                shutil.copy2(inputs / name, out / name)
        maps = {
            f"{method}-{name}": np.abs(np.asarray(array)).reshape(-1, *np.shape(array)[-2:])
            for method, image in result.recon_images.items()
            for name, array in getattr(image, "extras", {}).items()
        }
        exams.save_viewer_data(out, result.truth, result.images, checked.mask, maps)
        job.exam = job.id

    return run


def create_app(
    *, exams_dir: str | Path, token: str | None = None, runner: Runner | None = None, scheduler: Any = None
) -> FastAPI:
    """The console application.

    Parameters
    ----------
    exams_dir
        Folder of the exams (one sub-folder per scan; created if missing).
    token
        Access token every request must carry (header ``X-Hifield-Token``, ``Authorization: Bearer``, the
        ``token`` query parameter or the cookie the console sets from it); None: no token (loopback only).
    runner
        Runs a job (default: :func:`pipeline_runner`); tests pass a stub.
    scheduler
        Run the scans on this Dask cluster (an address, a ``distributed.Client`` or a cluster object); None: in the
        console's own worker thread.
    """
    root = Path(exams_dir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    queue = JobQueue(runner or pipeline_runner(root, scheduler=scheduler))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        queue.stop()

    app = FastAPI(title="hifield console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.queue = queue
    app.state.exams_dir = root
    app.state.token = token

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Any:
        if token is None:
            # without a token the console serves loopback only: a page elsewhere that points a name of its own at
            # 127.0.0.1 (DNS rebinding) sends its own Host header and is turned away
            host = request.headers.get("host", "")
            name = host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
            if name not in LOOPBACK_HOSTS:
                return _error(403, f"host {host!r} is not this console's loopback address; open http://127.0.0.1/")
            return await call_next(request)
        auth = request.headers.get("authorization", "")
        offered = (
            request.headers.get(TOKEN_HEADER)
            or (auth[7:] if auth.lower().startswith("bearer ") else None)
            or request.query_params.get("token")
            or request.cookies.get(TOKEN_COOKIE)
        )
        if not offered or not secrets.compare_digest(offered.encode(), token.encode()):
            return _error(401, "this console needs its access token: open the URL `hifield console` printed")
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    @app.exception_handler(HifieldError)
    async def hifield_error(request: Request, error: HifieldError) -> JSONResponse:
        if isinstance(error, exams.NotFoundError):
            return _error(404, str(error))
        if isinstance(error, ExternalServiceError):
            return _error(502, str(error))
        return _error(400, str(error))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, error: RequestValidationError) -> JSONResponse:
        parts = []
        for item in error.errors():
            where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
            parts.append(f"{where or 'request'}: {item.get('msg', 'invalid')}")
        return _error(400, "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        return _error(500, f"internal error ({type(error).__name__}: {error}); please report it")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/options")
    def options() -> dict[str, Any]:
        import importlib.util

        from hifield.pipeline import DEFAULT_RECONS, PHANTOMS, RECON_CHOICES
        from hifield.recon.registry import reconstructor
        from hifield.sampling import PATTERNS
        from hifield.sequence import get_protocol, protocol_names

        has_torch = importlib.util.find_spec("torch") is not None  # learned methods need the dl extra
        recons = [n for n in RECON_CHOICES if has_torch or not reconstructor(n).learned]

        return {
            "scanners": list(cards.SCANNER_PRESETS),
            "phantoms": list(PHANTOMS),
            "protocols": [{"name": n, "kind": get_protocol(n).KIND} for n in protocol_names()],
            "patterns": [p for p in PATTERNS if p not in ("radial", "stack-of-stars", "spiral")],
            "recons": recons,
            "default_recons": [n for n in DEFAULT_RECONS if n in recons],
            "modes": list(cards.MODES),
            "exams_dir": str(root),
        }

    @app.get("/api/protocols/{name}")
    def protocol_parameters(name: str) -> dict[str, Any]:
        from hifield.sequence import get_protocol

        protocol = get_protocol(name)
        return {"name": name, "kind": protocol.KIND, "parameters": cards.parameters(protocol)}

    @app.post("/api/card")
    def card(body: CardBody) -> dict[str, Any]:
        return cards.evaluate(body.request()).as_dict()

    @app.post("/api/jobs")
    def submit(body: CardBody) -> JSONResponse:
        request = body.request()
        checked = cards.evaluate(request)
        if not checked.ok:
            return JSONResponse({"error": checked.errors[0]["message"], "card": checked.as_dict()}, status_code=409)
        matrix = next((p["value"] for p in checked.parameters if p["key"] == "matrix"), "?")
        where = checked.results.get("scanner", request.field)
        title = f"{request.protocol} on {where}, {matrix}², R {checked.results.get('acceleration', '?')}"
        n_steps = 4 + len(request.recons)  # setup, phantom, simulate, one per recon, write
        scanner_label = "custom" if request.scanner_yaml else request.field
        prefix = "".join(c if c.isalnum() else "-" for c in f"{request.protocol}-{scanner_label}")
        job = queue.submit(dataclasses.asdict(request), title=title, n_steps=n_steps, prefix=prefix)
        return JSONResponse(job.as_dict(), status_code=202)

    @app.get("/api/jobs")
    def jobs() -> list[dict[str, Any]]:
        return queue.snapshot()

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str) -> dict[str, Any]:
        if job_id not in queue.jobs:
            raise exams.NotFoundError(f"no job {job_id!r}")
        return queue.jobs[job_id].as_dict()

    @app.get("/api/events")
    async def events(request: Request, until_idle: bool = False) -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            seen = -1
            quiet = 0.0
            while True:
                if await request.is_disconnected():
                    return
                if queue.version != seen:
                    seen = queue.version
                    snapshot = queue.snapshot()
                    yield f"data: {json.dumps({'jobs': snapshot})}\n\n"
                    if until_idle and all(j["state"] in ("done", "failed") for j in snapshot):
                        return
                    quiet = 0.0
                elif quiet > 15.0:
                    yield ": keep-alive\n\n"
                    quiet = 0.0
                await asyncio.sleep(0.2)
                quiet += 0.2

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.get("/api/exams")
    def exam_list() -> list[dict[str, Any]]:
        return exams.list_exams(root)

    @app.get("/api/exams/{exam_id}")
    def exam(exam_id: str) -> dict[str, Any]:
        folder = exams.exam_dir(root, exam_id)
        series, mask = exams.viewer_series(folder)
        first = next(iter(series.values()), None)
        reference = series.get("truth", first)
        levels = {}
        for name, array in series.items():
            high = float(np.percentile(array, 99.5)) if array.size else 1.0
            levels[name] = {"max": float(array.max(initial=0.0)), "p995": high}
        return {
            "id": exam_id,
            "summary": exams.read_summary(folder),
            "files": exams.list_files(folder),
            "series": list(series),
            "shape": list(first.shape) if first is not None else None,
            "levels": levels,
            "reference_p995": float(np.percentile(reference, 99.5)) if reference is not None else 1.0,
            "has_mask": mask is not None,
        }

    @app.get("/api/exams/{exam_id}/slice")
    def slice_data(exam_id: str, series: str, index: int = 0) -> Response:
        folder = exams.exam_dir(root, exam_id)
        images, _ = exams.viewer_series(folder)
        if series not in images:
            raise exams.NotFoundError(f"exam {exam_id!r} has no series {series!r}; choose one of {', '.join(images)}")
        volume = images[series]
        if not 0 <= index < volume.shape[0]:
            raise ConfigError(f"slice {index} is outside 0..{volume.shape[0] - 1}")
        plane = np.ascontiguousarray(volume[index], dtype="<f4")
        headers = {"X-Shape": f"{plane.shape[0]},{plane.shape[1]}", "Cache-Control": "no-store"}
        return Response(plane.tobytes(), media_type="application/octet-stream", headers=headers)

    @app.get("/api/exams/{exam_id}/mask.png")
    def mask_picture(exam_id: str) -> Response:
        folder = exams.exam_dir(root, exam_id)
        _, mask = exams.viewer_series(folder)
        if mask is None:
            raise exams.NotFoundError(f"exam {exam_id!r} has no sampling mask (made outside the console)")
        return Response(exams.mask_png(mask), media_type="image/png")

    @app.get("/api/exams/{exam_id}/files/{relative:path}")
    def download(exam_id: str, relative: str) -> FileResponse:
        path = exams.safe_file(root, exam_id, relative)
        return FileResponse(path, filename=path.name)

    @app.post("/api/exams/{exam_id}/pacs")
    def send(exam_id: str, body: PacsBody) -> dict[str, Any]:
        from hifield.io.pacs import send_to_pacs

        folder = exams.exam_dir(root, exam_id)
        source = folder / "dicom"
        if body.series is not None:
            source = source / body.series
            if "/" in body.series or "\\" in body.series or not _is_child_dir(source, folder / "dicom"):
                raise exams.NotFoundError(f"exam {exam_id!r} has no DICOM series {body.series!r}")
        if not source.is_dir() or not any(source.rglob("*.dcm")):
            raise exams.NotFoundError(f"exam {exam_id!r} has no DICOM files to send")
        if not 1 <= body.port <= 65535:
            raise ConfigError(f"PACS port must be 1 to 65535; got {body.port}")
        report = send_to_pacs(source, body.host, body.port, called_aet=body.called_aet, calling_aet=body.calling_aet)
        return {
            "ok": report.ok,
            "summary": report.summary(),
            "stored": list(report.stored),
            "failed": [{"file": Path(f).name, "status": s} for f, s in report.failed],
            "n_files": report.n_files,
        }

    return app


def _is_child_dir(path: Path, parent: Path) -> bool:
    resolved = path.resolve()
    return resolved.is_dir() and resolved.parent == parent.resolve()
