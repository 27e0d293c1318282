"""Per-step coefficient rows ``(a_i, a_e, a_b)`` of a numpy scan or step, from the core.

Every O(N) step is the GBT recurrence ``(I - a_i A) c_k = (I + a_e A) c_{k-1} + a_b B f_k``; the rows
are defined in the Rust core (``rows.rs``): a time-invariant measure with step ``dt`` and weight
``alpha`` has ``(alpha dt, (1 - alpha) dt, dt)``; LegS at step index ``t`` (samples already absorbed)
``(alpha/t, (1-alpha)/t, 1/t)`` (``convention="original"``) or
``(alpha/(t+1), (1-alpha)/t, alpha/(t+1) + (1-alpha)/t)`` (``"paper"``, paper App. B.3); ``t = 0`` is
the reset row ``(+inf, 0, 0)`` (``c = f e_0``). This module only shapes the arguments.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _core
from . import _rules

ArrayLike = Any


def times(value: Any, arg: str) -> np.ndarray:
    """Real times as a float64 array of the same shape (0-d stays 0-d)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{arg}: expected real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def step_indices(t: Any, batch: Tuple[int, ...]) -> Any:
    """A LegS step index: an int, or an integer array broadcast to ``batch`` (flattened, uint64)."""
    if isinstance(t, (int, np.integer)) and not isinstance(t, (bool, np.bool_)):
        return _rules.step_index(t)
    ta = np.asarray(t)
    if ta.ndim == 0:
        return _rules.step_index(ta.item() if ta.dtype.kind in "iu" else t)
    if ta.dtype.kind not in "iu":
        raise TypeError(f"t: expected an integer step index (or an integer array per row), got dtype {ta.dtype}; "
                        "timestamps go in timestamps=")
    if np.any(ta < 0) or (ta.dtype.kind == "u" and np.any(ta >= 2**63)):
        raise ValueError("t: expected step indices 0 <= t < 2**63 (t = 0 initialises the state)")
    try:
        flat = np.broadcast_to(ta, batch).reshape(-1)
    except ValueError:
        raise ValueError(f"t: expected a scalar or a shape broadcastable to {batch}, got {ta.shape}") from None
    return np.ascontiguousarray(flat, dtype=np.uint64)


def rows(
    measure: str,
    L: int,
    method: str,
    gbt_alpha: Optional[float],
    dt: Optional[float],
    convention: str,
    t: Any = None,
    timestamps: Optional[np.ndarray] = None,
    t_prev: Optional[np.ndarray] = None,
) -> np.ndarray:
    """The core's rows: (L, 3), or (L, R, 3) for per-row step indices or timestamps (L, R)."""
    ts = None if timestamps is None else np.ascontiguousarray(timestamps, dtype=np.float64)
    tp = None if t_prev is None else np.ascontiguousarray(np.reshape(t_prev, -1), dtype=np.float64)
    return _core.gbt_rows(measure, L, method, gbt_alpha, dt, convention, t, ts, tp)


_ROW_CACHE: Dict[Tuple[Any, ...], np.ndarray] = {}


def cached_row(measure: str, method: str, gbt_alpha: Optional[float], dt: Optional[float], convention: str, t: Any) -> np.ndarray:
    """A read-only (1, 3) row, cached: a stepping loop asks for the same few rows."""
    key = (measure, method, gbt_alpha, dt, convention, t)
    arr = _ROW_CACHE.get(key)
    if arr is None:
        if len(_ROW_CACHE) > 4096:
            _ROW_CACHE.clear()
        arr = rows(measure, 1, method, gbt_alpha, dt, convention, t)
        arr.flags.writeable = False
        _ROW_CACHE[key] = arr
    return arr


def gbt_coefficients(
    L: int,
    *,
    measure: str = "legs",
    method: str = "bilinear",
    gbt_alpha: Optional[float] = None,
    dt: Optional[float] = None,
    t: Any = 0,
    timestamps: Optional[ArrayLike] = None,
    t_prev: Optional[ArrayLike] = None,
    convention: str = "original",
    **params: float,
) -> np.ndarray:
    """Per-step GBT coefficients ``(a_i, a_e, a_b)`` of a scan of length ``L``: float64 ``(L, 3)``,
    or ``(L, R, 3)`` for per-row step indices ``t`` (R,) or timestamps ``(L, R)``.

    - time-invariant measures, step ``dt``, GBT weight alpha: ``(alpha dt, (1 - alpha) dt, dt)``;
      with ``timestamps`` the step from ``t_prev`` (default 0, the time of ``c0``) to a timestamp
      ``s`` is ``dt * (s - t_prev)`` (``dt`` defaults to 1 there).
    - LegS at step index ``t + k`` (samples already absorbed): ``original``
      ``(alpha/t, (1-alpha)/t, 1/t)``; ``paper`` ``(alpha/(t+1), (1-alpha)/t, alpha/(t+1) + (1-alpha)/t)``;
      ``t = 0`` is the reset row ``(+inf, 0, 0)`` (``c = f e_0``). ``dt`` is not used (scale invariance).
    - timestamped LegS from ``s0`` to ``s1``: ``original`` ``delta = (s1 - s0)/s1`` on all three;
      ``paper`` ``(s1-s0)/s1`` implicit, ``(s1-s0)/s0`` explicit. The first sample is a reset when
      ``t_prev`` is None or NaN (nothing absorbed yet), and also at ``s0 = 0`` (paper).
    Measure parameters (``theta``, ``beta``, ``alpha`` for glagt) are validated; theta lives in A.
    """
    _rules.measure_params(measure, params)
    steps = _rules.step_index(L, "L")
    _rules.gbt_weight(method, gbt_alpha)
    _rules.convention(convention)
    h = _rules.dt(dt)
    if timestamps is None:
        if t_prev is not None:
            raise ValueError("t_prev: only used with timestamps")
        return rows(measure, steps, method, gbt_alpha, h, convention, step_indices(t, np.shape(t)))
    ts = times(timestamps, "timestamps")
    if ts.ndim == 0:
        raise ValueError("timestamps: expected shape (L,) or (L, ...), got a scalar")
    ts = ts.reshape(ts.shape[0], -1) if ts.ndim > 2 else ts
    tp = None if t_prev is None else times(t_prev, "t_prev")
    if tp is not None and tp.size not in (1, (ts.shape[1] if ts.ndim == 2 else 1)):
        raise ValueError(f"t_prev: expected a scalar or one time per row, got shape {tp.shape}")
    if tp is not None and ts.ndim == 2 and tp.size == 1:
        tp = np.broadcast_to(tp.reshape(1), ts.shape[1:])
    return rows(measure, steps, method, gbt_alpha, h, convention, None, ts, tp)
