"""Stopping on a signal: the exception a handler raises, and a record of it for when that exception is lost.

A signal handler runs in the main thread between two bytecodes and raises :class:`Terminated`. If that bytecode
belongs to a callback called from C (ctypes, as threadpoolctl uses when it scans the loaded libraries), C swallows
the exception ("Exception ignored on calling ctypes callback function") and the run would go on as if the signal
never came. So the handler also records the signal, and long loops call :func:`raise_if_interrupted` between their
units of work (the exams of a study, the steps of a scan): a lost interrupt still stops the run at the next one.
A few system calls must not be split by the exception (a folder made but not yet recorded for clean-up):
:func:`interrupts_held` makes the handler only record the signal, and raises it when the block ends. Blocking the
signal with ``pthread_sigmask`` alone is not enough: in a process with other threads (an xdist worker, a BLAS
pool) the kernel delivers it to one of them and the main thread still runs the Python handler at its next bytecode.
Bottom module: imports nothing of ours.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

__all__ = [
    "Terminated",
    "clear_interrupt",
    "interrupts_held",
    "on_signal",
    "pending_interrupt",
    "raise_if_interrupted",
]

_pending: int | None = None
_held: int = 0


class Terminated(BaseException):
    """Raised in the main thread on SIGINT or SIGTERM, so a kill unwinds (and cleans up) exactly as Ctrl-C does.

    A BaseException (like KeyboardInterrupt) so that no ``except Exception`` swallows it, but not a
    KeyboardInterrupt, which typer would turn into a silent exit status 130.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


def on_signal(signum: int, _frame: object) -> None:
    """Signal handler: record ``signum``, ignore a second one (so it cannot interrupt the clean-up), raise."""
    global _pending
    _pending = signum
    signal.signal(signum, signal.SIG_IGN)
    if _held:
        return  # raised by interrupts_held when its block ends
    raise Terminated(signum)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Run a short block without :class:`Terminated` breaking into it; a signal that came meanwhile raises at its end.

    Only the handler :func:`on_signal` (installed by the CLI) is held. Keep the block short: a few system calls, or
    one batch of worker threads that must not be abandoned mid-way (ESPIRiT's chunks, well under a second each), since
    Ctrl-C waits for it.

    Examples
    --------
    >>> with interrupts_held():
    ...     pass
    """
    global _held
    _held += 1
    try:
        yield
    finally:
        _held -= 1
    if not _held:
        raise_if_interrupted()


def pending_interrupt() -> int | None:
    """The signal received and not yet handled by the CLI's boundary, if any."""
    return _pending


def raise_if_interrupted() -> None:
    """Raise :class:`Terminated` again if a signal came whose exception may have been lost; call between steps.

    Examples
    --------
    >>> raise_if_interrupted()  # nothing pending: returns
    """
    if _pending is not None:
        raise Terminated(_pending)


def clear_interrupt() -> None:
    """Forget a handled signal (the CLI's boundary calls it once it has turned the interrupt into an exit status)."""
    global _pending
    _pending = None
