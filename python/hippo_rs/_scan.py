"""Linear-time HiPPO scans and updates: the numpy front end of the Rust O(N) kernels.

Every O(N) step is the GBT recurrence ``(I - a_i A) c_k = (I + a_e A) c_{k-1} + a_b B f_k`` with
the per-step rows of :mod:`hippo_rs._rows`; ZOH (``method="zoh"``) runs the core's dense ZOH scan
(one step matrix for a time-invariant measure at a fixed ``dt``, O(N^2) per step; LegS and irregular
timestamps need a matrix exponential per step, O(N^3)).

dtypes: float32 and float64 inputs keep their dtype (the state ``c0``/``c`` and ``f`` combine as
``np.result_type``); integer and bool inputs are converted to float64 and float16 to float32, as
numpy arithmetic would; complex, object and string inputs raise ``TypeError``.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Tuple

import numpy as np

from . import _core
from . import _rules
from . import _validate as _v
from ._rows import cached_row, rows, step_indices, times

ArrayLike = Any

_FAST = (np.dtype(np.float32), np.dtype(np.float64))
_legs_step = _core.legs_step


def _float_dtype(*arrays: Tuple[np.ndarray, str]) -> np.dtype:
    for a, arg in arrays:
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{arg}: expected a real numeric array (float32 or float64), got dtype {a.dtype}")
    dt = np.result_type(*[a.dtype if a.dtype.kind == "f" else np.float64 for a, _ in arrays])
    return np.dtype(np.float32) if dt in (np.float16, np.float32) else np.dtype(np.float64)


def _stamps(timestamps: Any, t_prev: Any, L: int, batch: Tuple[int, ...]):
    """Timestamps as (L,) or (L, R) float64 and t_prev as None or (R,) (or (1,)) float64."""
    R = math.prod(batch)
    ts = times(timestamps, "timestamps")
    if ts.ndim == 0:
        raise ValueError("timestamps: expected shape (L,) or (L, ...), got a scalar")
    if ts.shape[0] != L:
        raise ValueError(f"timestamps: expected {L} timestamps along axis 0 (one per sample), got shape {ts.shape}")
    tp = None if t_prev is None else times(t_prev, "t_prev")
    per_row = ts.ndim > 1 or (tp is not None and tp.ndim > 0)
    if per_row:
        try:
            ts = np.broadcast_to(ts.reshape((L,) + (1,) * len(batch)) if ts.ndim == 1 else ts, (L,) + batch)
        except ValueError:
            raise ValueError(f"timestamps: expected shape (L,) or {(L,) + batch}, got {ts.shape}") from None
        ts = ts.reshape(L, R)
        if tp is not None:
            try:
                tp = np.broadcast_to(tp, batch).reshape(R)
            except ValueError:
                raise ValueError(f"t_prev: expected a scalar or shape {batch}, got {tp.shape}") from None
    return ts, tp


def scan(
    f: ArrayLike,
    N: Optional[int] = None,
    *,
    measure: str = "legs",
    method: str = "bilinear",
    gbt_alpha: Optional[float] = None,
    dt: Optional[float] = None,
    c0: Optional[ArrayLike] = None,
    t: Any = 0,
    timestamps: Optional[ArrayLike] = None,
    t_prev: Optional[ArrayLike] = None,
    return_all: bool = True,
    convention: str = "original",
    out: Optional[np.ndarray] = None,
    **params: float,
) -> np.ndarray:
    """Runs the HiPPO recurrence over a whole sequence ``f`` of shape ``(L, ...)`` in one call.

    Returns every state ``(L, ..., N)`` (``return_all=True``) or the final state ``(..., N)``.
    ``c0`` (``(..., N)``, default zeros; ``N`` may then be omitted) is the state before ``f[0]``; for
    LegS ``t`` is the step index of ``f[0]`` (samples already absorbed: ``t = 0`` initialises the
    state; an int or an integer array of the batch's shape), so
    ``scan(f[k:], c0=scan(f[:k], N, return_all=False), t=k)`` equals one call. Time-invariant
    measures need ``dt``. ``timestamps`` (``(L,)`` or ``(L, ...)``, strictly increasing absolute
    times) give irregular steps, continued with ``t_prev``, the time of ``c0`` (see
    :func:`gbt_coefficients`). GBT methods run in O(N) per step in Rust (GIL released, rows in
    parallel); ``zoh`` runs dense step matrices in Rust (O(N^2) per step, one matrix computed once,
    for the time-invariant measures; a matrix exponential per step, O(N^3), for LegS). ``out``
    (optional, C-contiguous, of the result's shape and dtype) receives the result. Measure
    parameters are keywords: ``theta``, ``beta``, ``alpha`` (glagt); the GBT weight is ``gbt_alpha``.
    """
    checked = _rules.measure_params(measure, params)
    weight = _rules.gbt_weight(method, gbt_alpha)
    _rules.convention(convention)
    h = _rules.dt(dt)
    return_all = _rules.flag(return_all, "return_all")
    f = np.asarray(f)
    if f.ndim == 0:
        raise ValueError("f: expected shape (L, ...), got a scalar")
    c0_arr = None if c0 is None else np.asarray(c0)
    if N is None and c0_arr is None:
        raise ValueError("N: required when c0 is not given")
    dtype = _float_dtype((f, "f"), *(() if c0_arr is None else ((c0_arr, "c0"),)))
    L, batch = f.shape[0], f.shape[1:]
    R = math.prod(batch)
    n = _v.order(N) if N is not None else (c0_arr.shape[-1] if c0_arr.ndim else 0)
    f2 = np.ascontiguousarray(f.reshape(L, R), dtype=dtype)
    if c0_arr is None:
        c02 = _v.zeros((R, n), dtype, f"N: the state of order {n}")
    else:
        if c0_arr.ndim == 0 or c0_arr.shape[-1] != n or n < 1:
            raise ValueError(f"c0: expected shape {batch + (n,)} (the batch of f and N = {n}), got {c0_arr.shape}")
        try:
            c02 = np.ascontiguousarray(np.broadcast_to(c0_arr, batch + (n,)).reshape(R, n), dtype=dtype)
        except ValueError:
            raise ValueError(f"c0: expected shape {batch + (n,)} (the batch of f and N = {n}), got {c0_arr.shape}") from None
    shape = (L,) + batch + (n,) if return_all else batch + (n,)
    if timestamps is None:
        if t_prev is not None:
            raise ValueError("t_prev: only used with timestamps")
        ts, tp, index = None, None, step_indices(t, batch)
    else:
        if not (isinstance(t, int) and t == 0):
            raise ValueError("t: a step index is not used with timestamps (t_prev gives the time of c0)")
        ts, tp = _stamps(timestamps, t_prev, L, batch)
        index = None
    # The core validates the step index, dt and the timestamps while it builds the rows (or steps).
    if weight is None:
        res = _core.zoh_scan(measure, checked, f2, c02, h, return_all, index, ts, tp)
        return _deliver(res.reshape(shape), out)
    coef = rows(measure, L, method, gbt_alpha, h, convention, index, ts, tp)
    target = _out_view(out, shape, dtype, (L, R, n) if return_all else (R, n))
    res = _core.gbt_scan(measure, checked, f2, c02, coef, return_all, target)
    return out if out is not None else res.reshape(shape)


def _out_view(out: Optional[np.ndarray], shape: Tuple[int, ...], dtype: np.dtype, flat: Tuple[int, ...]):
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a numpy array, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(f"out: expected shape {shape} and dtype {dtype}, got {out.shape} and {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out: expected a writeable C-contiguous array")
    return out.reshape(flat)


def _deliver(res: np.ndarray, out: Optional[np.ndarray]) -> np.ndarray:
    if out is None:
        return res
    _out_view(out, res.shape, res.dtype, res.shape)
    np.copyto(out, res)
    return out


def update(
    c: ArrayLike,
    f: ArrayLike,
    *,
    measure: str = "legs",
    method: str = "bilinear",
    gbt_alpha: Optional[float] = None,
    dt: Optional[float] = None,
    t: Any = None,
    timestamps: Optional[ArrayLike] = None,
    t_prev: Optional[ArrayLike] = None,
    convention: str = "original",
    out: Optional[np.ndarray] = None,
    **params: float,
) -> np.ndarray:
    """One HiPPO step for a batch of states ``c`` ``(..., N)`` and inputs ``f`` (broadcastable to
    ``c.shape[:-1]``); returns the new state (``out`` may be ``c`` itself for an in-place update).

    Time-invariant measures: step ``dt``. LegS: ``t`` is the step index (samples already absorbed;
    an int, or an integer array per row); ``t = 0`` initialises ``c = f e_0``. Timestamped step:
    ``timestamps`` the time of ``f`` and ``t_prev`` that of ``c`` (scalars or per row; ``t_prev``
    None or NaN: nothing absorbed yet); time-invariant measures then step ``dt * (timestamps -
    t_prev)`` (``dt`` defaults to 1). Measure parameters as in :func:`scan`.
    """
    checked = _rules.measure_params(measure, params)
    weight = _rules.gbt_weight(method, gbt_alpha)
    _rules.convention(convention)
    h = _rules.dt(dt)
    c = np.asarray(c)
    if c.ndim == 0:
        raise ValueError("c: expected shape (..., N), got a scalar")
    n = c.shape[-1]
    if n < 1:
        raise ValueError(f"c: expected a memory order N >= 1 in the last axis, got shape {c.shape}")
    weak = isinstance(f, (int, float)) and not isinstance(f, bool)  # Python scalars don't promote (NEP 50)
    f = np.asarray(f)
    if c.dtype in _FAST and (weak or f.dtype == c.dtype):
        dtype = c.dtype
    else:
        dtype = _float_dtype((c, "c")) if weak else _float_dtype((c, "c"), (f, "f"))
    batch = c.shape[:-1]
    R = math.prod(batch)
    if f.shape != batch:
        try:
            f = np.broadcast_to(f, batch)
        except ValueError:
            raise ValueError(f"f: expected a shape broadcastable to {batch} (c.shape[:-1]), got {f.shape}") from None
    f2 = np.ascontiguousarray(f.reshape(1, R), dtype=dtype)
    if weight is None:
        return _update_zoh(measure, checked, c, f2, h, t, timestamps, t_prev, batch, dtype, out)
    ts = tp = index = None
    if timestamps is not None:
        if t is not None:
            raise ValueError("t: a step index is not used with timestamps (t_prev gives the time of c)")
        ts = times(timestamps, "timestamps")
        tp = None if t_prev is None else times(t_prev, "t_prev")
        try:
            if ts.ndim or (tp is not None and tp.ndim):
                ts = np.broadcast_to(ts, batch).reshape(1, R)
                tp = None if tp is None else np.broadcast_to(tp, batch).reshape(R)
            else:
                ts = ts.reshape(1)
        except ValueError:
            raise ValueError(f"timestamps, t_prev: expected scalars or shapes broadcastable to {batch}") from None
        coef = rows(measure, 1, method, gbt_alpha, h, convention, None, ts, tp)
    elif t_prev is not None:
        raise ValueError("t_prev: only used with timestamps (the time of f)")
    elif measure == "legs":
        if t is None:
            raise ValueError("t: LegS needs the step index t (samples already absorbed; t = 0 initialises)")
        index = step_indices(t, batch)
        if isinstance(index, int):
            coef = cached_row(measure, method, gbt_alpha, h, convention, index)
        else:
            coef = rows(measure, 1, method, gbt_alpha, h, convention, index)
    else:
        if t is not None:
            raise ValueError(f"t: measure '{measure}' is time-invariant; pass dt (or timestamps with t_prev)")
        coef = cached_row(measure, method, gbt_alpha, h, convention, None)
    target = _out_view(out, batch + (n,), dtype, (R, n))
    if target is not None and np.may_share_memory(target, c):
        if not (target.__array_interface__["data"][0] == c.__array_interface__["data"][0] and c.flags.c_contiguous):
            raise ValueError("out: may be c itself but must not partially overlap it")
        _core.gbt_scan(measure, checked, f2, None, coef, False, target)
        return out
    c2 = np.ascontiguousarray(c.reshape(R, n), dtype=dtype)
    res = _core.gbt_scan(measure, checked, f2, c2, coef, False, target)
    return out if out is not None else res.reshape(batch + (n,))


def _update_zoh(measure, params, c, f2, h, t, timestamps, t_prev, batch, dtype, out):
    """One ZOH step: a scan of length 1 from the state c (see :func:`update` for the arguments)."""
    R, n = f2.shape[1], c.shape[-1]
    c2 = np.ascontiguousarray(c.reshape(R, n), dtype=dtype)
    index = ts = tp = None
    if timestamps is not None:
        if t is not None:
            raise ValueError("t: a step index is not used with timestamps (t_prev gives the time of c)")
        ts, tp = _stamps(np.reshape(times(timestamps, "timestamps"), (1,) + np.shape(timestamps)), t_prev, 1, batch)
    elif t_prev is not None:
        raise ValueError("t_prev: only used with timestamps (the time of f)")
    elif measure == "legs":
        if t is None:
            raise ValueError("t: LegS needs the step index t (samples already absorbed; t = 0 initialises)")
        index = step_indices(t, batch)
    elif t is not None:
        raise ValueError(f"t: measure '{measure}' is time-invariant; pass dt (or timestamps with t_prev)")
    res = _core.zoh_scan(measure, params, f2, c2, h, False, index, ts, tp)
    return _deliver(res.reshape(batch + (n,)), out)


def legs_update(
    c: ArrayLike,
    f: ArrayLike,
    t: Any,
    *,
    method: str = "bilinear",
    gbt_alpha: Optional[float] = None,
    convention: str = "original",
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """One LegS step for a batch: ``c`` ``(..., N)``, ``f`` broadcastable to ``c.shape[:-1]``, ``t`` the
    step index (samples already absorbed: an int >= 0 or an integer array per row; ``t = 0``
    initialises ``c = f e_0``). Returns the new state; ``out`` (may be ``c``) allows allocation-free
    loops. Timestamped LegS steps: :func:`update` with ``timestamps`` and ``t_prev``.
    """
    if gbt_alpha is None:
        # The common stepping-loop call (float32/float64 C-contiguous arrays, an int t, out None, c or a
        # separate array of c's kind) goes straight to the core; None: any other call, checked below.
        done = _legs_step(c, f, t, method, convention, out)
        if done is not None:
            return done
    return update(c, f, measure="legs", t=t, method=method, gbt_alpha=gbt_alpha, convention=convention, out=out)
