"""ZOH scans by dense per-step matrices (``O(N^2)`` per step; ``O(N^3)`` per step for LegS, whose
step matrix ``expm(A log((t+1)/t))`` changes every step, and for irregular timestamps)."""

from __future__ import annotations

import math
from typing import Any, Dict, Optional

import numpy as np

from . import _core


def _previous_times(ts: np.ndarray, t_prev: Optional[np.ndarray], legs: bool) -> np.ndarray:
    """Times of the state before each sample (L, R): t_prev then ts[:-1]; NaN where nothing was absorbed."""
    first = np.full(ts.shape[1:], np.nan if legs else 0.0) if t_prev is None else np.broadcast_to(t_prev, ts.shape[1:])
    if not legs:
        first = np.where(np.isnan(first), 0.0, first)
    return np.concatenate([first[None], ts[:-1]], axis=0)


def zoh_scan(
    measure: str,
    params: Dict[str, float],
    f: np.ndarray,
    c0: np.ndarray,
    dt: Optional[float],
    t: Any,
    timestamps: Optional[np.ndarray],
    t_prev: Optional[np.ndarray],
    return_all: bool,
) -> np.ndarray:
    """ZOH over f (L, R) from c0 (R, N); ``t``: the LegS step index (int or (R,) array); timestamps
    (L, R) already validated by the core's rows; returns (L, R, N) or (R, N) in f's dtype."""
    L, R = f.shape
    N = c0.shape[1]
    A, B = _core.transition(measure, N, list(params.items()))
    legs = measure == "legs"
    states = np.empty((L, R, N), f.dtype) if return_all else None
    c = c0.astype(np.float64)
    if timestamps is None:
        start = np.broadcast_to(np.asarray(t, dtype=np.uint64), (R,))
        if not legs:
            Ad, Bd = _core.discretize(A, B, dt, "zoh", None)
        for k in range(L):
            fk = f[k].astype(np.float64)
            if legs:
                for value in np.unique(start):
                    rows = start == value
                    index = int(value) + k
                    if index == 0:
                        c[rows] = 0.0
                        c[rows, 0] = fk[rows]
                    else:
                        Ad, Bd = _core.legs_step_matrices(N, index, "zoh", None, "original")
                        c[rows] = c[rows] @ Ad.T + fk[rows, None] * Bd
            else:
                c = c @ Ad.T + fk[:, None] * Bd
            if states is not None:
                states[k] = c
        return states if return_all else c.astype(f.dtype)
    ts = np.broadcast_to(timestamps.reshape(L, -1), (L, R))
    prev = np.broadcast_to(_previous_times(ts, t_prev, legs), (L, R))
    scale = 1.0 if dt is None else dt
    for k in range(L):
        fk = f[k].astype(np.float64)
        for r in range(R):
            t_from, t_to = prev[k, r], ts[k, r]
            if legs and (np.isnan(t_from) or t_from == 0):
                c[r] = 0.0
                c[r, 0] = fk[r]
                continue
            tau = math.log(t_to / t_from) if legs else scale * (t_to - t_from)
            Ad, Bd = _core.discretize(A, B, tau, "zoh", None)
            c[r] = Ad @ c[r] + Bd * fk[r]
        if states is not None:
            states[k] = c
    return states if return_all else c.astype(f.dtype)
