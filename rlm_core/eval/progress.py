"""Progress of an eval on a terminal: runs done / total, success so far, ETA (on stderr)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Counts finished runs; redraws one status line when the stream is a terminal."""

    def __init__(self, total: int, stream: TextIO | None = None, *, live: bool | None = None):
        self.total = total
        self.done = 0
        self.successes = 0
        self._stream = stream or sys.stderr
        self._live = self._stream.isatty() if live is None else live
        self._started = time.monotonic()
        self._lock = threading.Lock()

    def update(self, success: bool) -> None:
        with self._lock:
            self.done += 1
            self.successes += success
            if self._live:
                self._stream.write("\r" + self.line() + "\x1b[K")
                self._stream.flush()

    def line(self) -> str:
        rate = f"{100 * self.successes / self.done:.0f}%" if self.done else "-"
        elapsed = time.monotonic() - self._started
        left = self.total - self.done
        eta = _duration(elapsed / self.done * left) if self.done else "?"
        return f"eval: {self.done}/{self.total} runs, success {rate}, ETA {eta}"

    def finish(self) -> None:
        if self._live:
            self._stream.write("\n")
            self._stream.flush()


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
