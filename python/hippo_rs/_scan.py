"""Linear-time HiPPO updates and whole-sequence scans (numpy front end of the Rust O(N) kernels).

Every O(N) step is the generic GBT recurrence of ``docs/conventions.md``::

    (I - a_i A) c_k = (I + a_e A) c_{k-1} + a_b B f_k

with per-step scalars ``(a_i, a_e, a_b)`` built by :func:`gbt_coefficients`; a row with
``a_i = +inf`` is the LegS initialisation ``c_k = f_k e_0``. ZOH is not in this family: it is served
by dense per-step matrices (``O(N^2)`` per step, and LegS ZOH recomputes a matrix exponential per
step, ``O(N^3)``).

dtypes: float32 and float64 inputs keep their dtype (the state ``c0``/``c`` and ``f`` combine as
``np.result_type``); integer and bool inputs are converted to float64 and float16 to float32, as
numpy arithmetic would; complex, object and string inputs raise ``TypeError``.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from . import _core
from . import _validate as _v

_ALPHA = {
    "forward_euler": 0.0,
    "euler": 0.0,
    "forward": 0.0,
    "backward_euler": 1.0,
    "backward": 1.0,
    "bilinear": 0.5,
    "tustin": 0.5,
}

ArrayLike = Any


def _measure(measure: Any) -> str:
    if not isinstance(measure, str):
        raise TypeError(f"measure: expected a str, one of {tuple(_core.MEASURES)}, got {type(measure).__name__}")
    if measure not in _core.MEASURES:
        raise ValueError(f"measure: unknown measure '{measure}' (valid: {', '.join(_core.MEASURES)})")
    return measure


_FAST = (np.dtype(np.float32), np.dtype(np.float64))


def _params(measure: str, params: Dict[str, Any], extra: Optional[Dict[str, Any]] = None) -> Dict[str, float]:
    """Measure parameters from ``**params`` and the ``params=`` dict (the only way to pass GLagT's
    ``alpha``, since the keyword ``alpha`` is the GBT weight)."""
    if not params and not extra:
        return {}
    if extra is not None:
        if not isinstance(extra, dict):
            raise TypeError(f"params: expected a dict of measure parameters, got {type(extra).__name__}")
        both = set(extra) & set(params)
        if both:
            raise ValueError(f"params: {sorted(both)} given both as keywords and in params")
        params = {**extra, **params}
    checked = dict(_v.params(params))
    _core.transition(measure, 1, list(checked.items()))  # validates names and ranges (O(1))
    return checked


def _method(method: Any, alpha: Any) -> Optional[float]:
    """The GBT weight of ``method``, or None for ZOH."""
    if not isinstance(method, str):
        raise TypeError(f"method: expected a str, one of {tuple(_core.METHODS)}, got {type(method).__name__}")
    if method == "gbt":
        if alpha is None:
            raise ValueError("alpha: method 'gbt' needs alpha in [0, 1]")
        a = _v.real(alpha, "alpha")
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"alpha: expected 0 <= alpha <= 1, got {a}")
        return a
    if alpha is not None:
        raise ValueError(f"alpha: alpha is only used with method='gbt' (got alpha={alpha} with method='{method}')")
    if method == "zoh":
        return None
    if method not in _ALPHA:
        raise ValueError(f"method: unknown method '{method}' (valid: {', '.join(_core.METHODS)})")
    return _ALPHA[method]


def _convention(convention: Any) -> str:
    if convention not in ("original", "paper"):
        raise ValueError(f"convention: unknown LegS convention {convention!r} (valid: original, paper)")
    return convention


def _dt(dt: Any, required: bool, measure: str) -> float:
    if dt is None:
        if required:
            raise ValueError(f"dt: measure '{measure}' is time-invariant and needs a step dt > 0")
        return 1.0
    value = _v.real(dt, "dt")
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"dt: expected a finite step dt > 0, got {value}")
    return value


def _float_dtype(*arrays: np.ndarray) -> np.dtype:
    for a, name in arrays:
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name}: expected a real numeric array (float32 or float64), got dtype {a.dtype}")
    dt = np.result_type(*[a.dtype if a.dtype.kind == "f" else np.float64 for a, _ in arrays])
    if dt == np.float16:
        return np.dtype(np.float32)
    return np.dtype(np.float32) if dt == np.float32 else np.dtype(np.float64)


def _step_index(t: Any, name: str = "t0") -> int:
    if isinstance(t, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an integer >= 0, got a bool")
    try:
        value = operator.index(t)
    except TypeError:
        raise TypeError(f"{name}: expected an integer >= 0, got {type(t).__name__}") from None
    if not 0 <= value < 2**63:
        raise ValueError(f"{name}: expected an integer 0 <= {name} < 2**63, got {value}")
    return value


def _legs_rows(t: np.ndarray, alpha: float, convention: str) -> np.ndarray:
    """LegS coefficients at step indices t (float64 array, t >= 0): t = 0 is the reset row."""
    rows = np.empty(t.shape + (3,))
    with np.errstate(divide="ignore", invalid="ignore"):
        if convention == "original":
            np.divide(alpha, t, out=rows[..., 0])
            np.divide(1.0 - alpha, t, out=rows[..., 1])
            np.divide(1.0, t, out=rows[..., 2])
        else:
            np.divide(alpha, t + 1.0, out=rows[..., 0])
            np.divide(1.0 - alpha, t, out=rows[..., 1])
            np.add(rows[..., 0], rows[..., 1], out=rows[..., 2])
    rows[t == 0] = (np.inf, 0.0, 0.0)
    return rows


def _legs_timestamped_rows(t0: np.ndarray, t1: np.ndarray, alpha: float, convention: str) -> np.ndarray:
    """Timestamped LegS rows from t0 to t1 > t0 (t0 = NaN: nothing absorbed yet, a reset row)."""
    span = t1 - t0
    with np.errstate(divide="ignore", invalid="ignore"):
        if convention == "original":
            delta = span / t1
            rows = np.stack([alpha * delta, (1.0 - alpha) * delta, delta], axis=-1)
            reset = (t1 == 0) | np.isnan(t0)
        else:
            imp, exp = span / t1, span / t0
            rows = np.stack([alpha * imp, (1.0 - alpha) * exp, alpha * imp + (1.0 - alpha) * exp], axis=-1)
            reset = (t0 == 0) | np.isnan(t0)
    rows[reset] = (np.inf, 0.0, 0.0)
    return rows


def _times(value: Any, name: str) -> np.ndarray:
    """Real times as a float64 array of the same shape (0-d stays 0-d)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _timestamps(timestamps: Any, L: Optional[int], legs: bool) -> np.ndarray:
    ts = _times(timestamps, "timestamps")
    if ts.ndim == 0:
        raise ValueError(f"timestamps: expected shape (L,) or (L, ...), got a scalar")
    if L is not None and ts.shape[0] != L:
        raise ValueError(f"timestamps: expected {L} timestamps along axis 0 (one per sample), got shape {ts.shape}")
    if not np.all(np.isfinite(ts)):
        raise ValueError("timestamps: expected finite values, got NaN or inf")
    if legs and np.any(ts < 0):
        raise ValueError("timestamps: LegS times must be >= 0 (time 0 is the start of the memory)")
    if ts.shape[0] > 1 and np.any(np.diff(ts, axis=0) <= 0):
        raise ValueError("timestamps: expected strictly increasing timestamps along axis 0")
    return ts


def _previous_times(ts: np.ndarray, t_prev: Any, legs: bool) -> np.ndarray:
    """Times of the state before each sample: t_prev then ts[:-1]; NaN where nothing was absorbed (LegS)."""
    if t_prev is None:
        first = np.full(ts.shape[1:], np.nan if legs else 0.0)
    else:
        first = _times(t_prev, "t_prev")
        if not np.all(np.isfinite(first)):
            raise ValueError("t_prev: expected finite times, got NaN or inf")
        try:
            first = np.broadcast_to(first, ts.shape[1:])
        except ValueError:
            raise ValueError(f"t_prev: expected a scalar or shape {ts.shape[1:]}, got {first.shape}") from None
        if legs and np.any(first < 0):
            raise ValueError("t_prev: LegS times must be >= 0")
    if ts.shape[0] and np.any(ts[0] <= first):
        what = "t_prev" if t_prev is not None else "0 (the default time of c0)"
        raise ValueError(f"timestamps: expected timestamps[0] > {what}: the state c0 is at time t_prev")
    return np.concatenate([first[None], ts[:-1]], axis=0)


def gbt_coefficients(
    measure: str,
    L: int,
    *,
    method: str = "bilinear",
    alpha: Optional[float] = None,
    dt: Optional[float] = None,
    timestamps: Optional[ArrayLike] = None,
    t0: int = 0,
    t_prev: Optional[ArrayLike] = None,
    convention: str = "original",
    params: Optional[Dict[str, float]] = None,
    **measure_params: float,
) -> np.ndarray:
    """Per-step GBT coefficients ``(a_i, a_e, a_b)`` of a scan of length ``L``: float64 ``(L, 3)``, or
    ``(L, R, 3)`` for timestamps of shape ``(L, R)`` (``(L, ...)`` is flattened to ``(L, R)``).

    - time-invariant measures, step ``dt``, GBT weight alpha: ``(alpha dt, (1 - alpha) dt, dt)``;
      with ``timestamps`` the step from ``t_prev`` (default 0, the time of ``c0``) to ``t`` is
      ``dt * (t - t_prev)`` (``dt`` defaults to 1 there).
    - LegS at step index ``t = t0 + k`` (samples already absorbed): ``original``
      ``(alpha/t, (1-alpha)/t, 1/t)``; ``paper`` ``(alpha/(t+1), (1-alpha)/t, alpha/(t+1) + (1-alpha)/t)``;
      ``t = 0`` is the reset row ``(+inf, 0, 0)`` (``c = f e_0``). ``dt`` is not used (scale invariance).
    - timestamped LegS from ``t0`` to ``t1``: ``original`` ``delta = (t1 - t0)/t1`` on all three;
      ``paper`` ``(t1-t0)/t1`` implicit, ``(t1-t0)/t0`` explicit. The first sample is a reset when
      ``t_prev`` is None (nothing absorbed yet), and also at ``t1 = 0`` (original) / ``t0 = 0`` (paper).
    Measure parameters (keywords, or the ``params`` dict; GLagT's ``alpha`` only through ``params``,
    since ``alpha`` is the GBT weight) are validated; theta lives in A, not in the coefficients.
    """
    measure = _measure(measure)
    _params(measure, measure_params, params)
    steps = _step_index(L, "L")
    a = _method(method, alpha)
    if a is None:
        raise ValueError("method: 'zoh' has no O(N) GBT coefficients; scan/update serve it with dense matrices")
    return _coefficients(measure, steps, a, dt, timestamps, t0, t_prev, _convention(convention))


def _coefficients(
    measure: str, L: int, a: float, dt: Any, timestamps: Any, t0: Any, t_prev: Any, convention: str
) -> np.ndarray:
    legs = measure == "legs"
    if timestamps is None:
        if t_prev is not None:
            raise ValueError("t_prev: only used with timestamps")
        if legs:
            _dt(dt, False, measure)
            return _legs_rows(_step_index(t0) + np.arange(L, dtype=np.float64), a, convention)
        _step_index(t0)
        h = _dt(dt, True, measure)
        return np.tile(np.array([a * h, (1.0 - a) * h, h]), (L, 1))
    ts = _timestamps(timestamps, L, legs)
    prev = _previous_times(ts, t_prev, legs)
    if legs:
        _dt(dt, False, measure)
        rows = _legs_timestamped_rows(prev, ts, a, convention)
    else:
        h = _dt(dt, False, measure) * (ts - prev)
        rows = np.stack([a * h, (1.0 - a) * h, h], axis=-1)
    return np.ascontiguousarray(rows.reshape(L, -1, 3) if ts.ndim > 1 else rows)


def _zoh_scan(
    measure: str,
    params: Dict[str, float],
    f: np.ndarray,
    c0: np.ndarray,
    dt: Any,
    timestamps: Any,
    t0: Any,
    t_prev: Any,
    return_all: bool,
) -> np.ndarray:
    """ZOH by dense per-step matrices (O(N^2) per step; O(N^3) per step for LegS and timestamps)."""
    L, R = f.shape
    N = c0.shape[1]
    A, B = _core.transition(measure, N, list(params.items()))
    legs = measure == "legs"
    dtype = f.dtype
    states = np.empty((L, R, N), dtype) if return_all else None
    c = c0.astype(np.float64)
    if timestamps is None:
        if t_prev is not None:
            raise ValueError("t_prev: only used with timestamps")
        start = _step_index(t0)
        if not legs:
            Ad, Bd = _core.discretize(A, B, _dt(dt, True, measure), "zoh", None)
        for k in range(L):
            fk = f[k].astype(np.float64)
            if legs:
                t = start + k
                if t == 0:
                    c = np.zeros_like(c)
                    c[:, 0] = fk
                    if states is not None:
                        states[k] = c
                    continue
                Ad, Bd = _core.legs_step_matrices(N, t, "zoh", None, "original")
            c = c @ Ad.T + fk[:, None] * Bd
            if states is not None:
                states[k] = c
        return states if return_all else c.astype(dtype)
    ts = _timestamps(timestamps, L, legs)
    ts = np.broadcast_to(ts.reshape(L, -1), (L, R))
    prev = np.broadcast_to(_previous_times(ts, t_prev, legs), (L, R))
    scale = _dt(dt, False, measure)
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
    return states if return_all else c.astype(dtype)


def scan(
    measure: str,
    f: ArrayLike,
    N: int,
    *,
    method: str = "bilinear",
    alpha: Optional[float] = None,
    dt: Optional[float] = None,
    timestamps: Optional[ArrayLike] = None,
    c0: Optional[ArrayLike] = None,
    t0: int = 0,
    t_prev: Optional[ArrayLike] = None,
    return_all: bool = True,
    convention: str = "original",
    out: Optional[np.ndarray] = None,
    params: Optional[Dict[str, float]] = None,
    **measure_params: float,
) -> np.ndarray:
    """Runs the HiPPO recurrence over a whole sequence ``f`` of shape ``(L, ...)`` in one call.

    Returns every state ``(L, ..., N)`` (``return_all=True``) or the final state ``(..., N)``.
    ``c0`` (``(..., N)``, default zeros) is the state before ``f[0]``; for LegS ``t0`` is the number of
    samples already absorbed (``t0 = 0``: ``f[0]`` initialises the state), so
    ``scan(f[k:], c0=scan(f[:k], ..., return_all=False), t0=k)`` equals one call. Time-invariant
    measures need ``dt``. ``timestamps`` (``(L,)`` or ``(L, ...)``, strictly increasing absolute
    times) give irregular steps, continued with ``t_prev`` (see :func:`gbt_coefficients`).
    GBT methods run in O(N) per step in Rust (GIL released, rows in parallel); ``zoh`` uses dense
    per-step matrices in numpy (O(N^2) per step; O(N^3) for LegS). ``out`` (optional, C-contiguous,
    of the result's shape and dtype) receives the result. Measure parameters: keywords (``theta``,
    ``beta``) or the ``params`` dict (GLagT's ``alpha`` only there: ``alpha`` is the GBT weight).
    """
    measure = _measure(measure)
    checked = _params(measure, measure_params, params)
    n = _v.order(N)
    a = _method(method, alpha)
    conv = _convention(convention)
    if not isinstance(return_all, (bool, np.bool_)):
        raise TypeError(f"return_all: expected a bool, got {type(return_all).__name__}")
    f = np.asarray(f)
    if f.ndim == 0:
        raise ValueError("f: expected shape (L, ...), got a scalar")
    c0_arr = None if c0 is None else np.asarray(c0)
    dtype = _float_dtype((f, "f"), *(() if c0_arr is None else ((c0_arr, "c0"),)))
    L, batch = f.shape[0], f.shape[1:]
    R = int(np.prod(batch, dtype=np.int64))
    f2 = np.ascontiguousarray(f.reshape(L, R), dtype=dtype)
    if c0_arr is None:
        c02 = np.zeros((R, n), dtype)
    else:
        if c0_arr.ndim == 0 or c0_arr.shape[-1] != n:
            raise ValueError(f"c0: expected shape {batch + (n,)} (the batch of f and N = {n}), got {c0_arr.shape}")
        try:
            c02 = np.ascontiguousarray(np.broadcast_to(c0_arr, batch + (n,)).reshape(R, n), dtype=dtype)
        except ValueError:
            raise ValueError(f"c0: expected shape {batch + (n,)} (the batch of f and N = {n}), got {c0_arr.shape}") from None
    shape = (L,) + batch + (n,) if return_all else batch + (n,)
    if a is None:
        res = _zoh_scan(measure, checked, f2, c02, dt, timestamps, t0, t_prev, bool(return_all))
        return _deliver(res.reshape(shape).astype(dtype, copy=False), out)
    if timestamps is not None:
        ts = np.asarray(timestamps)
        if ts.ndim > 1:
            try:
                timestamps = np.broadcast_to(ts, (L,) + batch).reshape(L, R)
            except ValueError:
                raise ValueError(f"timestamps: expected shape (L,) or {(L,) + batch}, got {ts.shape}") from None
        if t_prev is not None:
            tp = np.asarray(t_prev)
            if tp.ndim > 0:
                try:
                    t_prev = np.broadcast_to(tp, batch).reshape(R)
                except ValueError:
                    raise ValueError(f"t_prev: expected a scalar or shape {batch}, got {tp.shape}") from None
                if np.ndim(timestamps) == 1:
                    timestamps = np.broadcast_to(np.asarray(timestamps)[:, None], (L, R))
    coef = _coefficients(measure, L, a, dt, timestamps, t0, t_prev, conv)
    target = _out_view(out, shape, dtype, (L, R, n) if return_all else (R, n))
    res = _core.gbt_scan(measure, checked, f2, c02, coef, bool(return_all), target)
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
    measure: str,
    c: ArrayLike,
    f: ArrayLike,
    *,
    dt: Optional[float] = None,
    t: Optional[Union[int, ArrayLike]] = None,
    method: str = "bilinear",
    alpha: Optional[float] = None,
    convention: str = "original",
    t_prev: Optional[ArrayLike] = None,
    out: Optional[np.ndarray] = None,
    params: Optional[Dict[str, float]] = None,
    **measure_params: float,
) -> np.ndarray:
    """One HiPPO step for a batch of states ``c`` ``(..., N)`` and inputs ``f`` (broadcastable to
    ``c.shape[:-1]``); returns the new state (``out`` may be ``c`` itself for an in-place update).

    Time-invariant measures: step ``dt``; or, with ``t_prev``, the timestamped step
    ``dt * (t - t_prev)`` (``dt`` defaults to 1). LegS: ``t`` is the step index (samples already
    absorbed; an int, or an integer array per row); ``t = 0`` initialises ``c = f e_0``; with
    ``t_prev`` (a float or per-row array) ``t`` is the time of ``f`` and the step is the timestamped
    one (see :func:`gbt_coefficients`). Measure parameters as in :func:`scan`.
    """
    measure = _measure(measure)
    checked = _params(measure, measure_params, params)
    a = _method(method, alpha)
    conv = _convention(convention)
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
    legs = measure == "legs"
    if a is None:
        coef = None
    elif t_prev is not None:
        if t is None:
            raise ValueError("t: the timestamped step needs the time t of f (and t_prev of c)")
        ts = _times(t, "t")
        tp = _times(t_prev, "t_prev")
        try:
            if ts.ndim or tp.ndim:
                ts = np.broadcast_to(ts, batch).reshape(1, R)
                tp = np.broadcast_to(tp, batch).reshape(R)
            else:
                ts = ts.reshape(1)
        except ValueError:
            raise ValueError(f"t, t_prev: expected scalars or shapes broadcastable to {batch}") from None
        coef = _coefficients(measure, 1, a, dt, ts, 0, tp, conv)
    elif legs:
        if t is None:
            raise ValueError("t: LegS needs the step index t (samples already absorbed; t = 0 initialises)")
        coef = _legs_index_coefficients(t, batch, R, a, conv)
        if dt is not None:
            _dt(dt, False, measure)
    else:
        if t is not None:
            raise ValueError(f"t: measure '{measure}' is time-invariant; pass dt (or t with t_prev for timestamps)")
        h = _dt(dt, True, measure)
        coef = _cached_row(("dt", h, a), (a * h, (1.0 - a) * h, h))
    target = _out_view(out, batch + (n,), dtype, (R, n))
    if a is None:
        res = _update_zoh(measure, checked, c, f2, dt, t, t_prev, dtype, batch, R, n)
        return _deliver(res, out)
    if target is not None and np.may_share_memory(target, c):
        if not (target.__array_interface__["data"][0] == c.__array_interface__["data"][0] and c.flags.c_contiguous):
            raise ValueError("out: may be c itself but must not partially overlap it")
        _core.gbt_scan(measure, checked, f2, None, coef, False, target)
        return out
    c2 = np.ascontiguousarray(c.reshape(R, n), dtype=dtype)
    res = _core.gbt_scan(measure, checked, f2, c2, coef, False, target)
    return out if out is not None else res.reshape(batch + (n,))


_ROW_CACHE: Dict[Tuple[Any, ...], np.ndarray] = {}


def _cached_row(key: Tuple[Any, ...], row: Tuple[float, float, float]) -> np.ndarray:
    """A read-only (1, 3) coefficient array, cached: a stepping loop asks for the same few rows."""
    arr = _ROW_CACHE.get(key)
    if arr is None:
        if len(_ROW_CACHE) > 4096:
            _ROW_CACHE.clear()
        arr = np.array([row])
        arr.flags.writeable = False
        _ROW_CACHE[key] = arr
    return arr


def _legs_index_coefficients(t: Any, batch: Tuple[int, ...], R: int, a: float, conv: str) -> np.ndarray:
    if type(t) is int or (isinstance(t, numbers.Integral) and not isinstance(t, (bool, np.bool_))):
        k = float(_step_index(t, "t"))  # one row, in Python floats (the same formulas as _legs_rows)
        if k == 0:
            row = (math.inf, 0.0, 0.0)
        elif conv == "original":
            row = (a / k, (1.0 - a) / k, 1.0 / k)
        else:
            row = (a / (k + 1.0), (1.0 - a) / k, a / (k + 1.0) + (1.0 - a) / k)
        return _cached_row(("legs", k, a, conv), row)
    ta = np.asarray(t)
    if ta.dtype.kind == "f" and ta.size and np.all(ta == np.round(ta)) and np.all(np.isfinite(ta)):
        ta = ta.astype(np.int64)
    if ta.dtype.kind not in "iu":
        raise TypeError(f"t: expected an integer step index (or an integer array per row), got dtype {ta.dtype}; "
                        "pass t_prev for timestamps")
    if np.any(ta < 0) or (ta.dtype.kind == "u" and np.any(ta >= 2**63)):
        raise ValueError("t: expected step indices 0 <= t < 2**63 (t = 0 initialises the state)")
    try:
        tb = np.broadcast_to(ta, batch).reshape(R)
    except ValueError:
        raise ValueError(f"t: expected a scalar or a shape broadcastable to {batch}, got {ta.shape}") from None
    return np.ascontiguousarray(_legs_rows(tb.astype(np.float64), a, conv).reshape(1, R, 3))


def _update_zoh(measure, params, c, f2, dt, t, t_prev, dtype, batch, R, n):
    c2 = np.ascontiguousarray(c.reshape(R, n), dtype=dtype)
    if measure == "legs" and t_prev is None:
        if t is None:
            raise ValueError("t: LegS needs the step index t (samples already absorbed; t = 0 initialises)")
        _legs_index_coefficients(t, batch, R, 0.5, "original")  # validates t
        ta = np.broadcast_to(np.asarray(t), batch).reshape(R)
        out = np.empty((R, n), dtype)
        for value in np.unique(ta):
            rows = ta == value
            out[rows] = _zoh_scan(measure, params, f2[:, rows], c2[rows], dt, None, int(value), None, False)
        return out.reshape(batch + (n,))
    ts = None if t_prev is None else np.broadcast_to(_times(t, "t"), batch).reshape(1, R)
    tp = None if t_prev is None else np.broadcast_to(_times(t_prev, "t_prev"), batch).reshape(R)
    return _zoh_scan(measure, params, f2, c2, dt, ts, 0, tp, False).reshape(batch + (n,))


def legs_update(
    c: ArrayLike,
    f: ArrayLike,
    t: Union[int, ArrayLike],
    method: str = "bilinear",
    *,
    alpha: Optional[float] = None,
    convention: str = "original",
    t_prev: Optional[ArrayLike] = None,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """One LegS step for a batch: ``c`` ``(..., N)``, ``f`` broadcastable to ``c.shape[:-1]``, ``t`` the
    step index (samples already absorbed: an int >= 0 or an integer array per row; ``t = 0``
    initialises ``c = f e_0``), or, with ``t_prev``, the time of ``f`` (timestamped step). Returns the
    new state; ``out`` (may be ``c``) allows allocation-free loops. See :func:`update`.
    """
    if t_prev is None and alpha is None and type(t) is int and type(c) is np.ndarray:
        done = _legs_update_fast(c, f, t, method, convention, out)
        if done is not None:
            return done
    return update("legs", c, f, t=t, method=method, alpha=alpha, convention=convention, t_prev=t_prev, out=out)


def _legs_update_fast(c: np.ndarray, f: Any, t: int, method: str, convention: str, out: Any) -> Optional[np.ndarray]:
    """The common stepping-loop call (float32/float64 C-contiguous state, an int step index, f of the
    batch's shape and dtype or a Python number, `out` None, c itself or a fresh array of the same
    kind) without the general argument handling; None when the call is not of that kind."""
    dtype = c.dtype
    if dtype not in _FAST or not c.flags.c_contiguous or c.ndim == 0 or c.shape[-1] == 0 or t < 0:
        return None
    if method not in _ALPHA or convention not in ("original", "paper"):
        return None
    if type(f) is float or type(f) is int:
        f = np.full(c.shape[:-1], f, dtype)
    elif type(f) is not np.ndarray or f.dtype != dtype or f.shape != c.shape[:-1]:
        return None
    n = c.shape[-1]
    R = c.size // n
    coef = _legs_index_coefficients(t, c.shape[:-1], R, _ALPHA[method], convention)
    f2 = f.reshape(1, R)
    if out is None:
        return _core.gbt_scan("legs", {}, f2, c.reshape(R, n), coef, False).reshape(c.shape)
    if type(out) is not np.ndarray or out.dtype != dtype or out.shape != c.shape or not out.flags.c_contiguous or not out.flags.writeable:
        return None
    if out is c:
        _core.gbt_scan("legs", {}, f2, None, coef, False, out.reshape(R, n))
    elif np.may_share_memory(out, c):
        return None
    else:
        _core.gbt_scan("legs", {}, f2, c.reshape(R, n), coef, False, out.reshape(R, n))
    return out
