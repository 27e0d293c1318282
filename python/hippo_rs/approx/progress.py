"""Progress of ``hippo-rs approx`` on any stream: a tqdm bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional, TextIO

#: Seconds between two progress lines when stderr is not a terminal (a log file, a CI job, a pipe).
LINE_EVERY = 5.0


class Progress:
    """Steps done out of ``total`` for one named task. On a terminal a tqdm bar (when tqdm is
    installed and ``bar`` is true); elsewhere one line every ``LINE_EVERY`` seconds, so a long job
    is never silent in a log."""

    def __init__(self, total: int, desc: str, *, bar: bool = True, position: int = 0,
                 stream: Optional[TextIO] = None, prog: str = "hippo-rs approx") -> None:
        self.total, self.desc, self.prog = total, desc, prog
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self.start = self.last = time.perf_counter()
        self._bar: Any = None
        if bar and _isatty(self.stream):
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=total, desc=desc, unit="step", unit_scale=True, leave=False,
                                 file=self.stream, position=position)
        self._lines = not _isatty(self.stream)

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._lines:
            now = time.perf_counter()
            if now - self.last >= LINE_EVERY:
                self.last = now
                elapsed = now - self.start
                rate = self.done / elapsed if elapsed > 0 else 0.0
                left = (self.total - self.done) / rate if rate > 0 else float("nan")
                print(f"{self.prog}: {self.desc} {100 * self.done / self.total:.0f}% "
                      f"({self.done:,}/{self.total:,} steps, {elapsed:.0f} s, about {left:.0f} s left)",
                      file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
