"""``Memory``: an online HiPPO memory that absorbs a stream in chunks of any length.

Feeding a signal in chunks gives exactly the state that one ``hippo_rs.scan`` over the whole signal
gives: each chunk continues the scan from the stored state (``c0``), the LegS step index (``t0``,
the number of samples absorbed) or the time of the last absorbed sample (``t_prev``).

Time axis (:class:`hippo_rs._clock.Clock`). Without timestamps, sample k (0-based) is at time
``k * dt`` (``dt`` = 1 when not given, i.e. times count samples), so after ``t`` samples the state is
at time ``(t - 1) * dt``. With timestamps (absolute times, shape (L,), shared by the batch, strictly
increasing), the state is at the last timestamp and time-invariant measures step by the time differences (``scan(..., dt=1,
timestamps=...)``; the very first sample takes one step of ``dt``), so ``theta`` is in the timestamps'
unit; LegS's first sample initialises the state whatever its time.

The remembered window at state time T is [0, T] for ``legs``, [T - theta, T] for ``legt``/``lmu``/
``fout``/``chebt`` and (-inf, T] for ``lagt``/``glagt`` (see ``hippo_rs.reconstruct``).
"""

from __future__ import annotations

import operator
from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _rules
from . import _validate as _v
from ._clock import Clock
from ._reconstruct import WINDOWED, reconstruct
from ._scan import scan

__all__ = ["Memory"]

_CONFIG = ("measure", "N", "method", "gbt_alpha", "dtype", "batch_shape", "dt", "convention", "params")

#: The layout of ``Memory.state_dict()``. A state carries it as ``"format"``; this version reads
#: states of format 1 (and the unversioned states of hippo_rs 0.1, which have the same keys) and
#: refuses newer ones. Change the layout only together with this number and a reader of the old one.
STATE_FORMAT = 1

def _check_format(d: Any) -> None:
    """A saved state is a dict of a format this version reads (see ``STATE_FORMAT``)."""
    if not isinstance(d, dict):
        raise TypeError(f"state_dict: expected a dict from Memory.state_dict(), got {type(d).__name__}")
    version = d.get("format", STATE_FORMAT)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"state_dict: 'format' must be a positive integer, got {version!r}")
    if version > STATE_FORMAT:
        raise ValueError(
            f"state_dict: format {version} was written by a newer hippo_rs; this version reads "
            f"format {STATE_FORMAT} and older: upgrade hippo_rs to load it"
        )



class Memory:
    """Online HiPPO memory of order ``N`` over a batch of independent streams.

    ``Memory(N=256, *, measure="legs", method="bilinear", gbt_alpha=None, dtype=np.float32,
    batch_shape=(), dt=None, convention="original", **params)``: ``params`` are the measure's
    parameters (``theta``, ``beta``, glagt's ``alpha``); the GBT weight of ``method="gbt"`` is
    ``gbt_alpha``.

    * ``update(chunk, timestamps=None)``: absorb ``chunk`` of shape ``(L, *batch_shape)`` (or one
      sample of shape ``batch_shape``); returns ``self``.
    * ``state``: the coefficients, ``(*batch_shape, N)`` in ``dtype`` (a copy).
    * ``t``: samples absorbed (int) without timestamps, the last timestamp (float) with them.
    * ``time``: the time of the state; ``window``: the remembered interval (lo, hi).
    * ``grid()``: the default reconstruction times; ``reconstruct(times=None)``:
      ``(*batch_shape, len(times))``.
    * ``reset()``, ``state_dict()`` / ``load_state_dict()``, ``copy.copy``/pickle round trips.
    """

    def __init__(
        self,
        N: int = 256,
        *,
        measure: str = "legs",
        method: str = "bilinear",
        gbt_alpha: Optional[float] = None,
        dtype: Any = np.float32,
        batch_shape: Tuple[int, ...] = (),
        dt: Optional[float] = None,
        convention: str = "original",
        **params: float,
    ) -> None:
        # Measure, parameters, method, gbt_alpha, convention and dt are checked here, before any data.
        self.params: Dict[str, float] = _rules.measure_params(measure, params)
        self.gbt_alpha = None if gbt_alpha is None else _v.real(gbt_alpha, "gbt_alpha")
        _rules.gbt_weight(method, self.gbt_alpha)
        _rules.convention(convention)
        dt = _rules.dt(dt)
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
        try:
            batch = tuple(operator.index(b) for b in batch_shape)
        except TypeError:
            raise TypeError(f"batch_shape: expected a tuple of integers, got {batch_shape!r}") from None
        if any(b < 0 for b in batch):
            raise ValueError(f"batch_shape: expected non-negative sizes, got {batch}")
        self.measure = measure
        self.N = _v.order(N)
        self.method = method
        self.dtype = dtype
        self.batch_shape = batch
        self.dt = dt
        self.convention = convention
        self.reset()

    # -- state ---------------------------------------------------------------------------------
    def reset(self) -> "Memory":
        """Forget everything: zero state, no samples absorbed."""
        self._state = _v.zeros(self.batch_shape + (self.N,), self.dtype, f"N: the state of order {self.N}")
        self._clock = Clock(self.dt)
        return self

    @property
    def state(self) -> np.ndarray:
        """The coefficients, shape ``(*batch_shape, N)``, in ``dtype`` (a copy)."""
        return self._state.copy()

    @property
    def t(self) -> Any:
        """Samples absorbed (int), or the last timestamp (float) for a timestamped stream."""
        return self._clock.last if self._clock.timestamped else self._clock.count

    @property
    def count(self) -> int:
        """The number of samples absorbed."""
        return self._clock.count

    @property
    def time(self) -> float:
        """The time of the state: ``(t - 1) * dt`` without timestamps, the last timestamp with them."""
        return self._clock.time

    @property
    def window(self) -> Tuple[float, float]:
        """The remembered interval (lo, hi) at the state's time (lo = -inf for Laguerre measures)."""
        hi = self.time
        if self.measure == "legs":
            return (0.0, hi)
        if self.measure in WINDOWED:
            return (hi - self.params["theta"], hi)
        return (-np.inf, hi)

    # -- streaming -----------------------------------------------------------------------------
    def update(self, chunk: Any, timestamps: Any = None) -> "Memory":
        """Absorb ``chunk`` (``(L, *batch_shape)``, or one sample of shape ``batch_shape``).

        ``timestamps``: None, or the absolute times of the samples, shape (L,), strictly increasing
        and after the last absorbed one. A memory is timestamped or not from its first update on.
        """
        x = np.asarray(chunk)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"chunk: expected real numbers, got dtype {x.dtype}")
        if x.shape == self.batch_shape:
            x = x[None]
        if x.shape[1:] != self.batch_shape:
            raise ValueError(f"chunk: expected shape (L, *{self.batch_shape}) or {self.batch_shape}, got {x.shape}")
        L = x.shape[0]
        clock = self._clock
        ts = clock.timestamps(L, timestamps)
        if L == 0:
            return self
        kwargs: Dict[str, Any] = dict(
            measure=self.measure, method=self.method, gbt_alpha=self.gbt_alpha, convention=self.convention,
            return_all=False, **self.params,
        )
        if clock.count:
            kwargs["c0"] = self._state
        if ts is not None:
            kwargs["timestamps"] = ts
            kwargs["t_prev"] = clock.last
            if self.measure != "legs":
                kwargs["dt"] = 1.0  # the step is the time difference itself
                if clock.last is None:  # the first sample takes one step of dt, as without timestamps
                    kwargs["t_prev"] = float(ts[0]) - clock.step
        elif self.measure == "legs":
            kwargs["t"] = clock.count
        else:
            kwargs["dt"] = clock.step
        self._state = np.asarray(scan(np.ascontiguousarray(x, dtype=self.dtype), self.N, **kwargs), dtype=self.dtype)
        clock.advance(L, ts)
        return self

    # -- reconstruction ------------------------------------------------------------------------
    def grid(self) -> np.ndarray:
        """Default reconstruction times: the absorbed samples' times inside the remembered window.

        Without timestamps these are the sample times ``k * dt``; with timestamps, ``count`` points
        evenly spaced from the first timestamp (or the window's start) to the last.
        """
        return self._clock.grid(*self.window)

    def reconstruct(self, times: Any = None) -> np.ndarray:
        """The remembered signal at ``times`` (default ``grid()``): ``(*batch_shape, len(times))``."""
        if times is None:
            times = self.grid()
        return reconstruct(self.measure, self._state, times, t=self.time, **self.params)

    # -- persistence ---------------------------------------------------------------------------
    def _config(self) -> Dict[str, Any]:
        return {
            "measure": self.measure,
            "N": self.N,
            "method": self.method,
            "gbt_alpha": self.gbt_alpha,
            "dtype": self.dtype.name,
            "batch_shape": self.batch_shape,
            "dt": self.dt,
            "convention": self.convention,
            "params": dict(self.params),
        }

    def state_dict(self) -> Dict[str, Any]:
        """Everything needed to continue the stream: the configuration, the state and the clock."""
        return {"format": STATE_FORMAT, **self._config(), "state": self._state.copy(), **self._clock.state()}

    def load_state_dict(self, d: Dict[str, Any]) -> "Memory":
        """Restore a ``state_dict()`` taken from a memory with the same configuration."""
        _check_format(d)
        missing = [k for k in _CONFIG + ("state", "count", "timestamped", "first", "last") if k not in d]
        if missing:
            raise ValueError(f"state_dict: missing keys {missing}")
        mine = self._config()
        for key in _CONFIG:
            theirs = tuple(d[key]) if key == "batch_shape" else d[key]
            if theirs != mine[key]:
                raise ValueError(f"state_dict: '{key}' is {theirs!r}, this memory has {mine[key]!r}")
        state = np.asarray(d["state"])
        if state.shape != self._state.shape:
            raise ValueError(f"state_dict: 'state' has shape {state.shape}, expected {self._state.shape}")
        self._state = np.array(state, dtype=self.dtype)
        self._clock = Clock(self.dt, int(d["count"]), d["timestamped"], d["first"], d["last"])
        return self

    @classmethod
    def from_state_dict(cls, d: Dict[str, Any]) -> "Memory":
        """A new memory with the configuration and state of ``d``."""
        _check_format(d)
        missing = [k for k in _CONFIG if k not in d]
        if missing:
            raise ValueError(f"state_dict: missing keys {missing}")
        mem = cls(
            d["N"],
            measure=d["measure"],
            method=d["method"],
            gbt_alpha=d["gbt_alpha"],
            dtype=d["dtype"],
            batch_shape=tuple(d["batch_shape"]),
            dt=d["dt"],
            convention=d["convention"],
            **d["params"],
        )
        return mem.load_state_dict(d)

    def __getstate__(self) -> Dict[str, Any]:
        return self.state_dict()

    def __setstate__(self, d: Dict[str, Any]) -> None:
        self.__dict__.update(Memory.from_state_dict(d).__dict__)

    def __repr__(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return (
            f"Memory({self.N}, measure={self.measure!r}, method={self.method!r}, dtype={self.dtype.name}, "
            f"batch_shape={self.batch_shape}, dt={self.dt}{params}; t={self.t})"
        )
