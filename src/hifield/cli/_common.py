"""Helpers shared by the subcommands: one-line errors with the documented exit codes, progress and tables."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer

from hifield.errors import HifieldError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_REFUSED = 2
EXIT_EXTERNAL = 3


def error_line(message: str) -> None:
    """Print ``error: message`` on one line to standard error."""
    text = " ".join(str(message).split())
    print(f"hifield: error: {text}", file=sys.stderr)


def handle_errors(func: F) -> F:
    """Turn hifield's exceptions into one line on stderr and their exit code (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HifieldError as error:
            error_line(str(error))
            raise typer.Exit(error.exit_code) from None
        except MemoryError:
            error_line("not enough memory for this request; use a smaller matrix or fewer coils")
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as error:
            where = f" {error.filename!r}" if getattr(error, "filename", None) else ""
            error_line(f"{error.strerror or error}{where}; check the path")
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper  # type: ignore[return-value]


class ConsoleReporter:
    """Shows a spinner while a pipeline step runs and a tick with its duration when it ends."""

    def __init__(self, *, quiet: bool = False) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.quiet = quiet

    @contextlib.contextmanager
    def step(self, description: str) -> Iterator[None]:
        """Context manager around one step."""
        if self.quiet:
            yield
            return
        start = time.perf_counter()
        with self.console.status(description + " ..."):
            yield
        self.console.print(f"[green]✓[/green] {description} [dim]({time.perf_counter() - start:.1f} s)[/dim]")


def print_json(data: Any) -> None:
    """Print a machine-readable summary to standard output."""
    print(json.dumps(data, indent=2))
