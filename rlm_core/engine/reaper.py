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
import subprocess
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
_watcher: subprocess.Popen[str] | None = None


def watch_group(group: int) -> None:
    """Kill process group ``group`` when this process dies, unless forgotten first."""
    _tell(f"watch {group}")


def forget_group(group: int) -> None:
    """``group`` has ended (its number may be reused): do not kill it."""
    _tell(f"forget {group}")


def _tell(line: str) -> None:
    global _watcher
    if os.name != "posix":  # no process groups to kill
        return
    with _lock:
        if _watcher is None or _watcher.poll() is not None:
            try:
                _watcher = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _WATCHER],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # Ctrl-C in the terminal is for rlm, not for it
                    text=True,
                )
            except OSError:
                return  # no watcher: workers are still ended on every exit but SIGKILL
        assert _watcher.stdin is not None
        try:
            _watcher.stdin.write(line + "\n")
            _watcher.stdin.flush()
        except OSError:
            _watcher = None
