"""A progress line on a terminal's stderr for runs over many files.

Shown only when stderr is a terminal and there is enough work to wait for; it is
redrawn at most ten times a second and erased before anything else is printed, so it
never mixes with findings, and reports written to stdout or a file never contain it.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

# Fewer files than this to parse finish too fast for a progress line to help.
MIN_FILES = 50
_INTERVAL = 0.1


class Progress:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._last = 0.0
        self._shown = False

    @classmethod
    def for_terminal(cls, stream: TextIO | None = None) -> Progress | None:
        """A progress line on ``stream`` (stderr) if it is a terminal, else None."""
        stream = stream or sys.stderr
        if os.environ.get("TERM") == "dumb" or os.environ.get("CI"):
            return None
        isatty = getattr(stream, "isatty", None)
        return cls(stream) if isatty is not None and isatty() else None

    def __call__(self, phase: str, done: int, total: int) -> None:
        if total < MIN_FILES:
            return
        now = time.monotonic()
        if done < total and now - self._last < _INTERVAL:
            return
        self._last = now
        self.stream.write(f"\r\x1b[Kfastdb-lint: {phase} {done}/{total} files")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False
