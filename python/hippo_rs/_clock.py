"""The time axis of an online memory: how many samples it absorbed and when.

Without timestamps sample k (0-based) is at time ``k * dt`` (``dt`` = 1 when not given: times count
samples), so after ``count`` samples the state is at time ``(count - 1) * dt``. With timestamps
(absolute, strictly increasing) the state is at the last one. A stream is timestamped or not from
its first chunk on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np


@dataclass
class Clock:
    dt: Optional[float] = None
    count: int = 0
    timestamped: Optional[bool] = None
    first: Optional[float] = None
    last: Optional[float] = None

    @property
    def step(self) -> float:
        """The step between samples without timestamps (``dt``, default 1)."""
        return 1.0 if self.dt is None else self.dt

    @property
    def time(self) -> float:
        """The time of the state: ``(count - 1) * dt`` without timestamps, the last timestamp with them."""
        if self.count == 0:
            raise ValueError("time: the memory is empty (no samples absorbed yet)")
        if self.timestamped:
            assert self.last is not None
            return self.last
        return (self.count - 1) * self.step

    def timestamps(self, L: int, timestamps: Any) -> Optional[np.ndarray]:
        """The chunk's timestamps checked against the clock: None, or float64 (L,) strictly
        increasing after the last absorbed one."""
        stamped = timestamps is not None
        if self.timestamped is not None and stamped != self.timestamped:
            kind = "with" if self.timestamped else "without"
            raise ValueError(f"timestamps: this memory was started {kind} timestamps; keep feeding it that way")
        if not stamped:
            return None
        ts = np.asarray(timestamps)
        if ts.dtype.kind not in "biuf":
            raise TypeError(f"timestamps: expected real numbers, got dtype {ts.dtype}")
        ts = ts.astype(np.float64).reshape(-1) if ts.ndim <= 1 else ts
        if ts.shape != (L,):
            raise ValueError(f"timestamps: expected shape ({L},) to match the chunk, got {np.shape(timestamps)}")
        if not np.all(np.isfinite(ts)):
            raise ValueError("timestamps: expected finite values")
        if np.any(np.diff(ts) <= 0) or (self.last is not None and L and ts[0] <= self.last):
            raise ValueError("timestamps: expected strictly increasing times after the last absorbed one")
        return ts

    def advance(self, L: int, ts: Optional[np.ndarray]) -> None:
        """Records a chunk of L samples (with its timestamps, or None)."""
        if ts is not None:
            self.first = float(ts[0]) if self.first is None else self.first
            self.last = float(ts[-1])
        self.timestamped = ts is not None
        self.count += L

    def grid(self, lo: float, hi: float) -> np.ndarray:
        """The absorbed samples' times inside [lo, hi]: ``k * dt`` without timestamps; with them,
        ``count`` points evenly spaced from the first timestamp (or lo) to the last."""
        if self.timestamped:
            assert self.first is not None
            return np.linspace(max(lo, self.first), hi, self.count)
        step = self.step
        first = 0 if not np.isfinite(lo) else max(0, int(np.ceil(lo / step - 1e-9)))
        return np.arange(first, self.count, dtype=np.float64) * step

    def state(self) -> Dict[str, Any]:
        return {"count": self.count, "timestamped": self.timestamped, "first": self.first, "last": self.last}
