"""A watcher process that ends this process's REPL workers when this process dies, SIGKILL too.

DSPy starts each REPL worker in a session of its own, so neither Ctrl-C nor the death of ``rlm``
reaches it, nor what LM-written code started from it (``sleep 120``, a ``while True`` loop). A
normal end, Ctrl-C and SIGTERM shut workers down through DSPy; a SIGKILL leaves no chance to. So
one small watcher per process holds the process groups of the live workers and reads a pipe from
this process: the pipe closes when this process dies, however it dies, and the watcher then
kills those groups and exits.
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["forget_group", "watch_group"]

_WATCHER = """
import os, signal, sys
groups = set()
for line in sys.stdin:
    verb, _, number = line.partition(" ")
    if verb == "watch":
        groups.add(int(number))
    elif verb == "forget":
        groups.discard(int(number))
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""

_lock = threading.Lock()
_pipe: int | None = None  # the write end of the watcher's stdin; None until it is needed


def watch_group(group: int) -> None:
    """Kill process group ``group`` when this process dies, unless forgotten first."""
    _tell(f"watch {group}")


def forget_group(group: int) -> None:
    """``group`` has ended (its number may be reused): do not kill it."""
    _tell(f"forget {group}")


def _tell(line: str) -> None:
    global _pipe
    if os.name != "posix":  # no process groups to kill
        return
    with _lock:
        if _pipe is None:
            _pipe = _start_watcher()
        if _pipe is None:
            return  # no watcher: workers still end on every exit but SIGKILL
        try:
            os.write(_pipe, (line + "\n").encode("ascii"))
        except OSError:  # the watcher died; start another one next time
            os.close(_pipe)
            _pipe = None


def _start_watcher() -> int | None:
    """Spawn the watcher in a session of its own (Ctrl-C in the terminal is for rlm, not for it).

    Spawned without a ``Popen`` object: it outlives every reference this process holds to it,
    by design, and its pipe's write end (close-on-exec) stays in this process alone.
    """
    read_end, write_end = os.pipe()
    try:
        os.posix_spawn(
            sys.executable,
            [sys.executable, "-I", "-S", "-c", _WATCHER],
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, read_end, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ],
            setsid=True,
        )
    except OSError:
        os.close(write_end)
        return None
    finally:
        os.close(read_end)
    return write_end
