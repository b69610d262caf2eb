"""Helpers shared by the subcommands: one-line errors with the documented exit codes, progress and tables."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import typer

from hifield._interrupt import Terminated, clear_interrupt, on_signal, pending_interrupt
from hifield.errors import HifieldError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_REFUSED = 2
EXIT_EXTERNAL = 3
EXIT_INTERRUPTED = 130
"""Exit status after SIGINT (128 + 2); SIGTERM exits with 143 (128 + 15), as shells report a killed command."""


def error_line(message: str) -> None:
    """Print ``error: message`` on one line to standard error."""
    text = " ".join(str(message).split())
    print(f"hifield: error: {text}", file=sys.stderr)


def os_error_line(error: OSError) -> str:
    """One line for an operating-system error, naming the user's path (never a temporary name of ours)."""
    name = getattr(error, "filename", None)
    where = f" {str(name)!r}" if name else ""
    if error.errno == errno.ENOSPC:
        return f"no space left on the device{' writing' + where if where else ''}; free some space and run again"
    if error.errno == errno.EDQUOT:
        return f"disk quota exceeded{' writing' + where if where else ''}; free some space and run again"
    reason = error.strerror or (str(error).splitlines()[0] if str(error) else type(error).__name__)
    return f"{reason}{where}; check the path"


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
            error_line(os_error_line(error))
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EEXIST, errno.ENAMETOOLONG):
                raise
            error_line(os_error_line(error))
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper  # type: ignore[return-value]


def install_signal_handlers() -> None:
    """Make SIGINT, SIGTERM and SIGHUP unwind the same way: ``finally`` blocks run, staging folders are removed.

    Also keeps an interrupt that C swallowed (the handler ran inside a callback, a finaliser or a weakref callback:
    Python prints "Exception ignored in ..." with a traceback) off the terminal: the handler recorded it, and the
    boundary or the next :func:`raise_if_interrupted` raises it again, so the one-line message is all that shows.
    """
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None:
            with contextlib.suppress(ValueError, OSError):  # not the main thread, or not supported
                signal.signal(signum, on_signal)
    if not getattr(sys.unraisablehook, "_hifield_quiet_interrupts", False):
        sys.unraisablehook = _quiet_lost_interrupts(sys.unraisablehook)


def _quiet_lost_interrupts(previous: Callable[[Any], object]) -> Callable[[Any], None]:
    """An unraisable-exception hook that drops interrupts (recorded by :func:`on_signal`) and passes the rest on."""

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, (Terminated, KeyboardInterrupt)) and pending_interrupt() is not None:
            return
        previous(unraisable)

    hook._hifield_quiet_interrupts = True  # type: ignore[attr-defined]
    return hook


def interrupt_of(error: BaseException) -> BaseException | None:
    """The interrupt (KeyboardInterrupt or :class:`Terminated`) behind ``error`` (click wraps it), if any."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, (KeyboardInterrupt, Terminated)):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def save_traceback(error: BaseException) -> Path | None:
    """Write the traceback of an unexpected error to a file for a bug report; its path (None if unwritable)."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(os.environ.get("HIFIELD_CRASH_DIR") or tempfile.gettempdir())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"hifield-crash-{stamp}-{os.getpid()}.txt"
        path.write_text(f"hifield {' '.join(sys.argv[1:])}\n\n{text}")
    except OSError:
        return None
    return path


def report_unexpected(error: BaseException) -> int:
    """One line for a bug of ours: what failed, "please report", and the saved traceback file; exit status 1."""
    where = save_traceback(error)
    first = str(error).splitlines()[0] if str(error) else ""
    what = f"{type(error).__name__}: {first}" if first else type(error).__name__
    saved = f"; the traceback is in {where}" if where else ""
    error_line(f"internal error ({what}); please report it at the hifield issue tracker{saved}")
    return EXIT_BAD_INPUT


_USER_OS_ERRORS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.ENOENT,
        errno.EISDIR,
        errno.ENOTDIR,
        errno.EEXIST,
        errno.ENAMETOOLONG,
        errno.ELOOP,
    }
)
"""Operating-system errors about the user's paths or disk: one line, exit 1 (anything else is reported as a bug)."""


def boundary(run: Callable[[], int]) -> int:
    """Run the CLI under the one error boundary; returns the exit status.

    hifield's own errors print their line and exit with their code (1 bad input, 2 refused, 3 external service);
    a full disk or an unwritable path prints one line and exits 1; SIGINT/SIGTERM exit 130/143 after the clean-up
    of every ``finally`` block; anything else is a bug: one line, "please report" and the path of a saved traceback.
    """
    install_signal_handlers()
    clear_interrupt()
    try:
        code = run()
        lost = pending_interrupt()
        if lost is not None and code == EXIT_OK:  # the handler's exception was lost inside a C callback
            raise Terminated(lost)
        return code
    except HifieldError as error:
        error_line(str(error))
        return error.exit_code
    except MemoryError:
        error_line("not enough memory for this request; use a smaller matrix or fewer coils")
        return EXIT_BAD_INPUT
    except (KeyboardInterrupt, Terminated) as error:
        return _interrupted(error)
    except OSError as error:
        if error.errno in _USER_OS_ERRORS:
            error_line(os_error_line(error))
            return EXIT_BAD_INPUT
        return report_unexpected(error)
    except Exception as error:
        interrupt = interrupt_of(error)
        if interrupt is not None:
            return _interrupted(interrupt)
        return report_unexpected(error)


def interrupted_exit_code(error: BaseException) -> int:
    """The exit status after an interrupt: 130 for Ctrl-C (SIGINT), 128 + the signal's number otherwise (143 for
    SIGTERM)."""
    if isinstance(error, Terminated) and error.signum != signal.SIGINT:
        return 128 + error.signum
    return EXIT_INTERRUPTED


def _interrupted(error: BaseException) -> int:
    if isinstance(error, Terminated) and error.signum != signal.SIGINT:
        error_line(f"terminated by signal {error.signum}; partial outputs were removed")
    else:
        error_line("interrupted; partial outputs were removed")
    return interrupted_exit_code(error)


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
    """Print a machine-readable summary to standard output as strict JSON (infinite or NaN numbers become null)."""
    from hifield.io.exam import strict_json

    print(json.dumps(strict_json(data), indent=2, allow_nan=False))
