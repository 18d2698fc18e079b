"""SIGTERM ends a run the way Ctrl-C does.

``docker stop``, systemd and CI runners send SIGTERM, whose default action kills the process on
the spot: no ``run_end``, trackers left with a run that never ends, a REPL worker orphaned. While
a command runs a run, SIGTERM instead raises :class:`Terminated` (a ``KeyboardInterrupt``, so it
goes through every place Ctrl-C goes through and fault isolation never swallows it); the run ends
with ``run_end`` saying it was terminated and the command exits with 143 (128 + SIGTERM).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["EXIT_TERMINATED", "Terminated", "sigterm_ends_runs"]

EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM; the run ends as if interrupted."""


@contextlib.contextmanager
def sigterm_ends_runs() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread.

    Only the first SIGTERM raises; later ones are ignored while the run ends (a second exception
    in the middle of ``run_end`` would lose it). Outside the main thread this does nothing, as
    Python only lets the main thread set signal handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated("the run was terminated by SIGTERM")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
