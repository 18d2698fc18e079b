"""Run one SPARQL evaluation in a forked child that is killed when its time is up.

rdflib evaluates SPARQL in Python, in this process, and some queries cannot be stopped from
inside: a catastrophic ``REGEX`` runs in C holding the GIL (the step timeout, the query timeout
and Ctrl-C all wait for it), and joins over ``VALUES`` blocks read no triples, so a budget checked
in ``Graph.triples`` never sees them. A forked child shares the loaded graph copy-on-write, so it
costs no reload; the parent waits on a pipe without holding the GIL and sends ``SIGKILL`` at the
deadline, which stops any query and leaves no thread burning CPU after it. The child dies with
its parent too (``PR_SET_PDEATHSIG`` on Linux), so a killed ``rlm`` leaves no query running.

Where ``os.fork`` does not exist (Windows) the evaluation runs in the calling thread, bounded only
by :class:`~rlm_core.ontology.budget.BudgetedGraph`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import pickle
import select
import signal
import sys
import time
import warnings
from collections.abc import Callable
from typing import TypeVar

__all__ = ["ChildFailed", "TimedOut", "run_killable"]

_T = TypeVar("_T")
_PR_SET_PDEATHSIG = 1


class TimedOut(Exception):
    """The child ran past its deadline and was killed."""


class ChildFailed(Exception):
    """The child died without an answer (e.g. out of memory); the message says how."""


def run_killable(function: Callable[[], _T], seconds: float) -> _T:
    """``function()`` evaluated in a forked child, killed after ``seconds``.

    The result (or the exception ``function`` raised) comes back pickled, so both must pickle.
    """
    if not hasattr(os, "fork"):
        return function()
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about forking a process with threads; the child only evaluates the
        # query and leaves with os._exit, touching no lock another thread could hold.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(function, write_end)
    os.close(write_end)
    try:
        data = _read_until(read_end, time.monotonic() + seconds)
    finally:
        os.close(read_end)
        _end(pid)
    if data is None:
        raise TimedOut(f"killed after {seconds:g} s")
    if not data:
        raise ChildFailed("the query process died without an answer (out of memory?)")
    ok, value = pickle.loads(data)
    if ok:
        return value  # type: ignore[no-any-return]
    raise value


def _child(function: Callable[[], object], write_end: int) -> None:
    code = 0
    try:
        _die_with_parent()
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_DFL)
        try:
            outcome: tuple[bool, object] = (True, function())
        except Exception as exc:
            outcome = (False, exc)
        try:
            data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # an exception type that does not pickle: keep its text
            failure = RuntimeError(f"{type(outcome[1]).__name__}: {outcome[1]}")
            data = pickle.dumps((False, failure if not outcome[0] else exc))
        view = memoryview(data)
        while view:
            view = view[os.write(write_end, view) :]
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the thread that forked it ends."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _read_until(descriptor: int, deadline: float) -> bytes | None:
    """All the child writes, or None when the deadline passes first."""
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([descriptor], [], [], left)
        if not ready:
            return None
        chunk = os.read(descriptor, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _end(pid: int) -> None:
    """Kill the child if it still runs, and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
