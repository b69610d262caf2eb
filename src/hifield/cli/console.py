"""``hifield console``: start the scanner console in the browser (a local web app) and print its URL."""

from __future__ import annotations

from pathlib import Path

import typer

from hifield.cli._common import handle_errors
from hifield.errors import ConfigError


def console_url(host: str, port: int, token: str | None) -> str:
    """The URL a browser opens (with the access token when one is needed).

    Examples
    --------
    >>> console_url("127.0.0.1", 8765, None)
    'http://127.0.0.1:8765/'
    >>> console_url("::", 80, "abc")
    'http://[::]:80/?token=abc'
    """
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


@handle_errors
def console_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; any non-loopback host needs the token."),
    port: int = typer.Option(8765, "--port", help="TCP port."),
    open_browser: bool = typer.Option(False, "--open", help="Open the console in the default web browser."),
    exams: Path = typer.Option(Path("hifield_exams"), "--exams", help="Folder of the exams (one folder per scan)."),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        help="Run scans on this Dask cluster (tcp://host:8786; needs hifield[dask] and an exams folder the workers "
        "share); default: in the console's own process.",
    ),
) -> None:
    """Start the scanner console: protocol card with live limits, scan queue, viewer, exams and PACS."""
    import secrets

    try:
        import uvicorn

        from hifield.console.app import LOOPBACK_HOSTS, create_app
    except ModuleNotFoundError as missing:
        raise ConfigError(
            f"the console needs {missing.name}: install the console extra (pip install 'hifield[console]')"
        ) from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must be 1 to 65535; got {port}")
    token = None if host in LOOPBACK_HOSTS else secrets.token_urlsafe(24)
    if scheduler is not None:
        from hifield.distributed.runner import dask_available

        if not dask_available():
            raise ConfigError('--scheduler needs Dask: pip install "hifield[dask]"')
    app = create_app(exams_dir=exams, token=token, scheduler=scheduler)
    url = console_url(host, port, token)
    print(f"hifield console: {url}", flush=True)
    if token:
        print(f"access token (required off loopback): {token}", flush=True)
    print(f"exams folder: {app.state.exams_dir}", flush=True)
    if open_browser:
        import webbrowser

        webbrowser.open(console_url("127.0.0.1" if host in ("0.0.0.0", "::") else host, port, token))
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
