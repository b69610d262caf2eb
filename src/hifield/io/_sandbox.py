"""Sandboxed first read of untrusted HDF5: do the reads that can crash the HDF5 library in a forked child first.

Some damaged or mutated HDF5 files make the HDF5 library itself corrupt memory while it converts variable-length
data (h5py 3.16 / HDF5 2.0 on ``tests/io/data/vlen_crash.h5``: a SIGSEGV or a glibc abort when the read data are
freed). No ``try`` can catch that: the whole process dies. So before a reader reads such data in this process,
:func:`first_read_in_child` does the same read in a child made with ``os.fork()`` and frees what it read there. If
the child dies by a crash signal, the reader raises one :class:`~hifield.errors.FileFormatError` line naming the
file instead; if the child fails with an ordinary error (h5py's ``OSError`` on a damaged heap, ...), that error is
raised in the reader as if its own read had failed, so a failing read (some take seconds) is not done twice; if the
child finishes, the reader goes on and reads the file for real. The child is bounded in time, so a read that would
hang the library also ends in one line.

Only what can crash goes to the child: :func:`probe_variable_length` picks the datasets (and attributes) whose
type holds variable-length parts (``dtype.hasobject``); plain numeric datasets such as a fastMRI ``kspace`` are
not read twice. Each such dataset is read whole-record, all of it, as the readers read it (reading only its
variable-length fields does not crash on that file; reading only its fixed-size ``head`` does, since HDF5 converts
the whole compound record), but in blocks of whole chunks along the first axis, each freed before the next: HDF5
converts a large selection piece by piece through its conversion buffer anyway, and the child's memory (and the
page faults that dominate its cost) stays small whatever the file's size.

Why ``fork`` is acceptable here, even in a process with threads (BLAS pools, Dask's threaded scheduler): the
child runs only h5py/numpy calls on objects the parent already holds, imports nothing, takes no lock but h5py's
global lock (which :func:`first_read_in_child` holds across ``fork``, as recent h5py (3.16) also does with
``os.register_at_fork``: a thread reading HDF5 at that moment finishes its call first, and the child's copy of the
lock and of HDF5's state is consistent; with h5py 3.11, which does not, and no such hold, a child forked while
another thread read HDF5 waited forever on the lock),
calls no BLAS or OpenMP, and leaves with ``os._exit`` (no ``atexit``, no flush of the parent's buffers, no HDF5
close). On macOS, where fork without exec is discouraged once system frameworks run, the same holds: the child calls
none. Its stdout/stderr go to ``/dev/null`` (glibc's ``double free`` message and ``faulthandler`` stay out of
the user's terminal) and it writes no core file. A child that still deadlocks is killed at the time bound.

Where it does not run: platforms without ``os.fork`` (Windows) read without the sandbox; a ``multiprocessing``
spawn would need a fresh interpreter importing h5py (hundreds of ms per read) and a picklable reader, so it is not
used. If ``fork`` itself fails (no memory, process limit), the read goes on without the sandbox too.

Environment
-----------
``HIFIELD_HDF5_SANDBOX``
    ``0``/``off``/``false``/``no`` reads without the sandbox (e.g. under a debugger, or where forking a large
    process is not wanted); unset or ``1``/``on``/``true``/``yes`` keeps it.
``HIFIELD_HDF5_READ_LIMIT_S``
    Wall-clock bound on the child's read in seconds (default :data:`READ_TIME_LIMIT_S`); ``0`` means no bound.
"""

from __future__ import annotations

import contextlib
import faulthandler
import math
import os
import signal
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hifield.errors import ConfigError, FileFormatError

try:  # POSIX only; imported here so that the child imports nothing (another thread may hold the import lock)
    import resource
except ImportError:  # pragma: no cover - Windows, which has no fork either
    resource = None  # type: ignore[assignment]

__all__ = ["READ_TIME_LIMIT_S", "first_read_in_child", "probe_variable_length", "sandbox_enabled"]

READ_TIME_LIMIT_S = 120.0
"""Default wall-clock bound [s] on the sandboxed first read (``HIFIELD_HDF5_READ_LIMIT_S`` overrides it)."""

_CRASH_SIGNALS = frozenset(
    getattr(signal, name)
    for name in ("SIGSEGV", "SIGBUS", "SIGABRT", "SIGILL", "SIGFPE", "SIGSYS", "SIGTRAP")
    if hasattr(signal, name)
)
_PASSED: tuple[type[Exception], ...] = (OSError, KeyError, ValueError, RuntimeError, TypeError, MemoryError)
"""Error types of the child's probe raised again in the parent (what h5py raises on a damaged file)."""
_PROBE_ERROR = 3  # the child's exit status after an ordinary error, described on the pipe
_MESSAGE_BYTES = 512  # POSIX's least PIPE_BUF: written at once, never blocks the child
_BLOCK_RECORDS = 64  # records per block of the child's read (rounded up to whole chunks)
_OFF = frozenset({"0", "off", "false", "no"})
_ON = frozenset({"", "1", "on", "true", "yes"})


def sandbox_enabled() -> bool:
    """Whether first reads are sandboxed: ``os.fork`` exists and ``HIFIELD_HDF5_SANDBOX`` does not turn it off.

    Raises
    ------
    ConfigError
        If ``HIFIELD_HDF5_SANDBOX`` is neither on nor off.
    """
    raw = os.environ.get("HIFIELD_HDF5_SANDBOX", "").strip().lower()
    if raw not in _ON | _OFF:
        raise ConfigError(f"HIFIELD_HDF5_SANDBOX={raw!r} is neither 1/on nor 0/off; set one of those or unset it")
    return raw not in _OFF and hasattr(os, "fork")


def _read_time_limit_s() -> float:
    raw = os.environ.get("HIFIELD_HDF5_READ_LIMIT_S", "").strip()
    try:
        value = float(raw) if raw else READ_TIME_LIMIT_S
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"HIFIELD_HDF5_READ_LIMIT_S={raw!r} is not a number of seconds >= 0; fix or unset it")
    return value


def _quiet_child(limit_s: float) -> None:
    """In the child: no output to the user's terminal, no core file, no Ctrl-C death, an alarm if orphaned."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    faulthandler.disable()  # pytest and others enable it on a dup of stderr, which /dev/null does not cover
    if resource is not None:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(ValueError, OSError, AttributeError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills this child
    if limit_s > 0:
        with contextlib.suppress(ValueError, OSError, AttributeError):
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(math.ceil(limit_s) + 10)  # ends a hung child even if its parent was killed


def _h5py_lock() -> Any:
    """h5py's global (re-entrant) lock, which every h5py call into HDF5 holds; a null context without h5py.

    Held by the forking thread across ``os.fork()``: then no other thread is inside HDF5 at the fork, and the child,
    whose only thread is the one that forked, can release and take the lock again. Recent h5py (3.16) takes the same
    lock around ``fork`` itself (``os.register_at_fork``), h5py 3.11 does not; holding it here as well is harmless,
    the lock being re-entrant.
    """
    try:
        from h5py._objects import phil  # private but present in every h5py 3.x
    except ImportError:  # pragma: no cover - h5py missing or reorganised: fork without it (the time bound remains)
        return contextlib.nullcontext()
    return phil


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def first_read_in_child(
    probe: Callable[[], object], *, path: str | os.PathLike[str], what: str = "it", limit_s: float | None = None
) -> None:
    """Run ``probe`` (HDF5 reads that might crash the library) in a forked child and raise if the child crashes.

    The child calls ``probe()`` and drops what it returns (the crash this guards against happens when
    variable-length data are freed, not only when they are read), then leaves with ``os._exit``. No data come back
    to the parent: it reads the file itself afterwards. An ordinary error of the probe (h5py's ``OSError`` on a
    damaged heap, ...) comes back as its built-in type and message and is raised here, so the caller reports it as
    it would its own read's and a failing read (some take seconds on a damaged file) is not done twice. Without
    ``os.fork``, with ``HIFIELD_HDF5_SANDBOX=0``, or if ``fork`` fails, ``probe`` is not run at all.

    Parameters
    ----------
    probe
        The reads, on h5py objects the caller already holds open (the child imports nothing and opens nothing).
    path
        The user's file, named in the error.
    what
        What is read, for the error (e.g. ``"dataset/data"``).
    limit_s
        Wall-clock bound on the child [s]; None reads ``HIFIELD_HDF5_READ_LIMIT_S`` (default
        :data:`READ_TIME_LIMIT_S`), 0 means no bound.

    Raises
    ------
    FileFormatError
        If the child dies by a crash signal (SIGSEGV, SIGBUS, SIGABRT, ...), by another signal, or runs past the
        bound: one line naming ``path`` and what to do.
    OSError, KeyError, ValueError, RuntimeError, TypeError, MemoryError
        What the probe raised in the child (same built-in type and message).
    ConfigError
        If ``HIFIELD_HDF5_SANDBOX`` or ``HIFIELD_HDF5_READ_LIMIT_S`` is malformed.
    """
    if not sandbox_enabled():
        return
    limit = _read_time_limit_s() if limit_s is None else float(limit_s)
    try:
        reader, writer = os.pipe()
    except OSError:  # no file descriptors left: read without the sandbox
        return
    with warnings.catch_warnings():
        # Python >= 3.12 warns on fork() with threads alive; the child only runs h5py reads (module docstring)
        warnings.filterwarnings("ignore", message=r".*fork\(\).*", category=DeprecationWarning)
        try:
            with _h5py_lock():  # no other thread inside HDF5 at the fork (h5py 3.11 does not take it itself)
                pid = os.fork()
        except OSError:  # no memory or process slots for a child: read without the sandbox
            os.close(reader)
            os.close(writer)
            return
    if pid == 0:  # pragma: no cover - the child; coverage is not collected there
        code = 1
        try:
            os.close(reader)
            _quiet_child(limit)
            try:
                result: Any = probe()
                del result  # the mutated files crash here, when HDF5's variable-length buffers are freed
                code = 0  # no gc.collect(): it would touch (copy) every page of the parent's objects
            except Exception as error:
                os.write(writer, _describe(error))
                code = _PROBE_ERROR
        except BaseException:  # an interrupt: no verdict, the parent goes on (or is itself interrupted)
            pass
        finally:
            os._exit(code)
    os.close(writer)
    try:
        status = _wait(pid, limit)
        os.set_blocking(reader, False)
        try:
            message = os.read(reader, _MESSAGE_BYTES) if status is not None else b""
        except BlockingIOError:  # the child died before writing
            message = b""
    finally:
        os.close(reader)
    if status is None:
        raise FileFormatError(
            f"the HDF5 library did not finish reading {what} of {path} in {limit:g} s: the file is damaged (or on "
            f"very slow storage: raise HIFIELD_HDF5_READ_LIMIT_S)"
        )
    code = os.waitstatus_to_exitcode(status)
    if code == _PROBE_ERROR:
        passed = _rebuild(message)
        if passed is not None:
            raise passed
    if code >= 0:
        return
    name = _signal_name(-code)
    if -code in _CRASH_SIGNALS:
        raise FileFormatError(
            f"the HDF5 library crashed ({name}) reading {what} of {path}: the file is damaged; copy or export it "
            f"again from its source"
        )
    raise FileFormatError(
        f"reading {what} of {path} in a sandboxed child was stopped by {name} (out of memory?); free memory, or set "
        f"HIFIELD_HDF5_SANDBOX=0 to read it without the sandbox"
    )


def _describe(error: Exception) -> bytes:
    """The nearest passable built-in type of ``error`` and its message, for the pipe to the parent."""
    kind = next((k for k in type(error).__mro__ if k in _PASSED), None)
    first = error.args[0] if len(error.args) == 1 and isinstance(error.args[0], str) else str(error)
    text = f"{kind.__name__ if kind else ''}\n{first}"
    return text.encode("utf-8", "replace")[: _MESSAGE_BYTES - 1]


def _rebuild(message: bytes) -> Exception | None:
    """The exception :func:`_describe` wrote, or None for a type that is not passed back."""
    name, _, text = message.decode("utf-8", "replace").partition("\n")
    kind = next((k for k in _PASSED if k.__name__ == name), None)
    return kind(text) if kind is not None else None


def _wait(pid: int, limit_s: float) -> int | None:
    """The child's wait status, or None after killing it at ``limit_s``; the child is always reaped."""
    deadline = time.monotonic() + limit_s if limit_s > 0 else math.inf
    delay = 0.0002
    reaped = False
    try:
        while True:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): no verdict, read as usual
                reaped = True
                return 0
            if done:
                reaped = True
                return status
            if time.monotonic() >= deadline:
                return None
            time.sleep(delay)
            delay = min(2 * delay, 0.002)  # a few hundred cheap wake-ups per second, a read ends within 2 ms
    finally:
        if not reaped:  # the bound, Ctrl-C or SIGTERM in the parent: never leave the child behind
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)


def _read_in_blocks(dataset: Any) -> None:
    """Read all of ``dataset`` as ``dataset[()]`` would, in blocks of whole chunks along axis 0, freeing each."""
    shape = dataset.shape
    if not shape or shape[0] <= 1:  # scalar, null or a single record
        data = dataset[()]
        del data
        return
    chunk = int(dataset.chunks[0]) if dataset.chunks else 1
    step = chunk * max(1, -(-_BLOCK_RECORDS // chunk))
    for start in range(0, int(shape[0]), step):
        block = dataset[start : start + step]
        del block  # freed here, in the child: where the damaged files crash


def probe_variable_length(
    group: Any, names: Sequence[str], *, path: str | os.PathLike[str], attributes: bool = False
) -> None:
    """Sandbox the first read of the datasets among ``names`` (and of ``group``'s attributes) holding vlen data.

    Datasets missing from ``group``, that are not datasets, or whose type has no variable-length part are left out;
    when nothing is left, no child is made. Each remaining dataset is read completely, in blocks of whole chunks
    along its first axis (see the module docstring).

    Parameters
    ----------
    group
        An open ``h5py.File`` or ``h5py.Group``.
    names
        Dataset names relative to ``group``.
    path
        The user's file, named in the error.
    attributes
        Also read ``group``'s attributes in the child if one of them holds variable-length data.

    Raises
    ------
    FileFormatError
        If the HDF5 library crashes or hangs reading them (see :func:`first_read_in_child`).
    OSError, KeyError, ValueError, RuntimeError, TypeError, MemoryError
        What h5py raised reading them in the child (same type and message), as the caller's own read would.
    """
    import h5py

    if not sandbox_enabled():
        return
    chosen: list[str] = []
    for name in names:
        try:
            item = group[name] if name in group else None
            if isinstance(item, h5py.Dataset) and item.dtype.hasobject:
                chosen.append(name)
        except Exception:  # a type h5py cannot even describe: let the child try the read
            chosen.append(name)
    read_attributes = False
    if attributes:
        try:
            read_attributes = any(group.attrs.get_id(key).dtype.hasobject for key in group.attrs)
        except Exception:
            read_attributes = True
    if not chosen and not read_attributes:
        return

    def probe() -> object:
        for name in chosen:
            _read_in_blocks(group[name])
        return dict(group.attrs) if read_attributes else None

    what = ", ".join([*chosen, *(["attributes"] if read_attributes else [])])
    first_read_in_child(probe, path=Path(path), what=what)
