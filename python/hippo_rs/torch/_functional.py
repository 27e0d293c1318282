"""The torch front end's functions, with the same signatures as the numpy ones: ``scan``, ``update``,
``legs_update``, ``gbt_coefficients`` (batch dimensions, measure parameters by name)."""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Union

import numpy as np
import torch
from torch import Tensor

from .. import _core, _rules
from .._validate import order
from . import _ops  # registers torch.ops.hippo_rs.*
from ._ops import allocate
from ._coef import legs_coefficients, lti_coefficients, timestamped_coefficients

__all__ = ["gbt_coefficients", "legs_update", "scan", "update"]

_F64 = torch.float64


def checked_params(measure: Any, params: Dict[str, Any]) -> Dict[str, float]:
    """The measure's parameters in the ops' order (core-checked in eager mode; under
    ``torch.compile`` read from the same table without the range checks)."""
    return _rules.measure_params(measure, params, check=not torch.compiler.is_compiling())


def _tensor(value: Any, name: str) -> Tensor:
    """``value`` itself when it is a tensor, else a TypeError naming ``name``."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    return value


def _host(x: Any, dtype) -> np.ndarray:
    return (x.detach().to("cpu", dtype) if isinstance(x, Tensor) else torch.as_tensor(x, dtype=dtype)).numpy()


def gbt_coefficients(
    L: int,
    *,
    measure: str = "legs",
    method: str = "bilinear",
    gbt_alpha: Optional[float] = None,
    dt: Optional[float] = None,
    t: Union[int, Tensor] = 0,
    timestamps: Optional[Tensor] = None,
    t_prev: Union[None, float, Tensor] = None,
    convention: str = "original",
    device=None,
    **params: float,
) -> Tensor:
    """Float64 GBT coefficient rows (L, 3), or (L, R, 3) for per-row step indices ``t`` (R,) or
    timestamps (L, R): the rows of :func:`hippo_rs.gbt_coefficients`, as a tensor on ``device``.

    On the CPU in eager mode the core builds and checks them. On another device (and under
    ``torch.compile``) they are built there with tensor operations (``hippo_rs.torch._coef``, tied to
    the core by a test), so that nothing waits for the device; the core still checks the scalar
    arguments and, in eager mode outside a CUDA-graph capture, the timestamps (one copy to the host).
    """
    compiling = torch.compiler.is_compiling()
    on_cpu = device is None or torch.device(device).type == "cpu"
    if not compiling:
        _rules.measure_params(measure, params)
        _rules.gbt_weight(method, gbt_alpha)
        _rules.convention(convention)
        h = _rules.dt(dt)
        if timestamps is None and t_prev is not None:
            raise ValueError("t_prev: only used with timestamps")
        if on_cpu:
            return _core_rows(L, measure, method, gbt_alpha, h, convention, t, timestamps, t_prev)
        _rules.gbt_step(measure, method, gbt_alpha, h, convention, timestamps is not None)
        if timestamps is None and not isinstance(t, Tensor):
            _rules.step_index(t)
        capturing = torch.device(device).type == "cuda" and torch.cuda.is_current_stream_capturing()
        if timestamps is not None and not capturing:
            ts, tp = _host_stamps(timestamps, t_prev)
            _core.check_timestamps(measure, ts, tp)
    weight = _rules.gbt_weight(method, gbt_alpha, check=False)
    if timestamps is not None:
        return timestamped_coefficients(measure, timestamps.to(device=device, dtype=_F64), t_prev, weight, dt, convention)
    if measure == "legs":
        return legs_coefficients(L, t, weight, convention, device=device)
    return lti_coefficients(L, dt, weight, device=device)


def _host_stamps(timestamps: Any, t_prev: Any):
    """Timestamps and t_prev as contiguous float64 host arrays (t_prev flattened, broadcast per row)."""
    ts = np.ascontiguousarray(_host(timestamps, _F64))
    tp = None if t_prev is None else np.ascontiguousarray(_host(t_prev, _F64).reshape(-1))
    if tp is not None and ts.ndim == 2 and tp.size == 1:
        tp = np.broadcast_to(tp, ts.shape[1:]).copy()
    return ts, tp


def _core_rows(L, measure, method, gbt_alpha, h, convention, t, timestamps, t_prev) -> Tensor:
    """The core's rows (CPU, eager): step indices or timestamps in, float64 rows out."""
    if timestamps is not None:
        ts, tp = _host_stamps(timestamps, t_prev)
        return torch.from_numpy(_core.gbt_rows(measure, L, method, gbt_alpha, h, convention, None, ts, tp))
    if isinstance(t, Tensor):
        if t.dtype.is_floating_point or t.dtype == torch.bool or bool((t < 0).any()):
            raise ValueError("t: expected integer step indices >= 0 (samples already absorbed)")
        t = np.ascontiguousarray(_host(t.reshape(-1), torch.int64).astype(np.uint64))
    else:
        t = _rules.step_index(t)
    return torch.from_numpy(_core.gbt_rows(measure, L, method, gbt_alpha, h, convention, t))


def _zoh(f2: Tensor, c02: Tensor, measure: str, plist, dt, t, timestamps, return_all: bool) -> Tensor:
    """The ``hippo_rs::zoh_scan`` op: ZOH of a time-invariant measure at a fixed step (LegS's and
    timestamped ZOH need a matrix exponential per step and are served by the numpy functions)."""
    if measure == "legs":
        raise ValueError("method: 'zoh' in hippo_rs.torch is for the time-invariant measures; LegS takes a GBT "
                         "method here (its ZOH, an O(N^3) exponential per step, is in hippo_rs.scan)")
    if timestamps is not None:
        raise ValueError("timestamps: 'zoh' in hippo_rs.torch takes a fixed step dt (timestamped ZOH: hippo_rs.scan)")
    if t is not None and not (isinstance(t, int) and t == 0):
        raise ValueError(f"t: measure '{measure}' is time-invariant; pass dt")
    if dt is None:
        raise ValueError(f"dt: measure '{measure}' is time-invariant and needs a step dt > 0")
    h = dt if torch.compiler.is_compiling() else _rules.dt(dt)
    return torch.ops.hippo_rs.zoh_scan(f2, c02, measure, plist, h, return_all)


def _flatten_stamps(timestamps: Any, t_prev: Any, shape, device):
    """Timestamps broadcast to the signal's (L, ...) and flattened to (L, R) when they or t_prev vary per
    row; t_prev to (R,) then."""
    ts = torch.as_tensor(timestamps, dtype=_F64, device=device)
    per_row_prev = isinstance(t_prev, Tensor) and t_prev.dim() > 0
    if ts.dim() > 1 or per_row_prev:
        if ts.dim() == 1:
            ts = ts.reshape(shape[0], *([1] * (len(shape) - 1)))
        ts = ts.expand(shape).reshape(shape[0], -1)
        if per_row_prev:
            t_prev = t_prev.expand(shape[1:]).reshape(-1)
    return ts, t_prev


def scan(
    f: Tensor,
    N: Optional[int] = None,
    *,
    measure: str = "legs",
    method: str = "bilinear",
    gbt_alpha: Optional[float] = None,
    dt: Optional[float] = None,
    c0: Optional[Tensor] = None,
    t: Union[int, Tensor] = 0,
    timestamps: Optional[Tensor] = None,
    t_prev: Union[None, float, Tensor] = None,
    return_all: bool = True,
    convention: str = "original",
    **params: float,
) -> Tensor:
    """HiPPO memory of a whole sequence with the ``hippo_rs::gbt_scan`` op (differentiable in f, c0);
    the same arguments and results as :func:`hippo_rs.scan`.

    ``f`` (L, ...) float32/float64 -> (L, ..., N) if ``return_all`` else (..., N). ``c0`` (..., N)
    is the state before the first sample (zeros by default; ``N`` may then be omitted). LegS: ``t``
    = samples already absorbed (0 starts a new stream: the first sample resets the state to
    ``f_0 e_0``; an int or an integer tensor of the batch's shape); continuing
    ``scan(f[k:], c0=c_k, t=k)`` equals one call. ``timestamps`` (L,) or (L, ...) are absolute
    sample times and ``t_prev`` the time of ``c0`` (None: nothing absorbed). Measure parameters are
    keywords (``theta``, ``beta``, glagt's ``alpha``); the GBT weight is ``gbt_alpha``.
    ``method="zoh"`` runs the ``hippo_rs::zoh_scan`` op (time-invariant measures at a fixed ``dt``).
    """
    _tensor(f, "f")
    if f.dim() < 1:
        raise ValueError("f: expected a tensor of shape (L, ...), got a 0-d tensor")
    plist = list(checked_params(measure, params).values())
    L, batch = f.shape[0], f.shape[1:]
    if c0 is None:
        if N is None:
            raise ValueError("N: required when c0 is not given")
        n = order(N)
        c0 = allocate(f, (*batch, n), f"N: the state of order {n}", zero=True)
    else:
        n = _tensor(c0, "c0").shape[-1]
        if N is not None and order(N) != n:
            raise ValueError(f"c0: expected last dimension N={N}, got {tuple(c0.shape)}")
        if c0.shape[:-1] != batch:
            raise ValueError(f"c0: expected shape {(*batch, n)}, got {tuple(c0.shape)}")
    R = math.prod(batch)
    f2 = f.reshape(L, R)
    if _rules.gbt_weight(method, gbt_alpha, check=not torch.compiler.is_compiling()) is None:
        out = _zoh(f2, c0.reshape(R, n), measure, plist, dt, t, timestamps, return_all)
        return out.reshape((L, *batch, n) if return_all else (*batch, n))
    if isinstance(t, Tensor):
        t = t.expand(batch).reshape(R)
    if timestamps is not None:
        timestamps, t_prev = _flatten_stamps(timestamps, t_prev, f.shape, f.device)
    coef = gbt_coefficients(
        L, measure=measure, method=method, gbt_alpha=gbt_alpha, dt=dt, timestamps=timestamps, t=t,
        t_prev=t_prev, convention=convention, device=f.device,
    )
    out = torch.ops.hippo_rs.gbt_scan(f2, c0.reshape(R, n), coef, measure, plist, return_all)
    return out.reshape((L, *batch, n) if return_all else (*batch, n))


def update(
    c: Tensor,
    f: Tensor,
    *,
    measure: str = "legs",
    method: str = "bilinear",
    gbt_alpha: Optional[float] = None,
    dt: Optional[float] = None,
    t: Union[None, int, Tensor] = None,
    timestamps: Union[None, float, Tensor] = None,
    t_prev: Union[None, float, Tensor] = None,
    convention: str = "original",
    **params: float,
) -> Tensor:
    """One HiPPO update of a batch of states with the ``hippo_rs::gbt_step`` op; the same arguments
    and result as :func:`hippo_rs.update`.

    ``c`` (..., N), ``f`` (...) -> (..., N). LegS: ``t`` = samples already absorbed (int or an
    integer tensor of f's shape; ``t = 0`` resets to ``f e_0``). Timestamped: ``timestamps`` = time
    of ``f`` and ``t_prev`` that of ``c`` (None or NaN: nothing absorbed, LegS resets).
    Time-invariant measures: ``dt``. Measure parameters as in :func:`scan`.
    """
    plist = list(checked_params(measure, params).values())
    if _tensor(c, "c").dim() < 1:
        raise ValueError("c: expected a tensor of shape (..., N), got a 0-d tensor")
    if c.shape[:-1] != _tensor(f, "f").shape:
        raise ValueError(f"f: expected shape {tuple(c.shape[:-1])} (c without its last axis), got {tuple(f.shape)}")
    n = c.shape[-1]
    c2, f2 = c.reshape(-1, n), f.reshape(-1)
    if _rules.gbt_weight(method, gbt_alpha, check=not torch.compiler.is_compiling()) is None:
        if t_prev is not None:
            raise ValueError("t_prev: only used with timestamps (the time of f)")
        return _zoh(f2[None], c2, measure, plist, dt, t, timestamps, False).reshape(c.shape)
    if timestamps is not None:
        if t is not None:
            raise ValueError("t: a step index is not used with timestamps (t_prev gives the time of c)")
        ts, t_prev = _flatten_stamps(torch.as_tensor(timestamps, dtype=_F64)[None], t_prev, (1, *f.shape), f.device)
        coef = gbt_coefficients(
            1, measure=measure, method=method, gbt_alpha=gbt_alpha, dt=dt, timestamps=ts, t_prev=t_prev,
            convention=convention, device=f.device,
        )[0]
    else:
        if t_prev is not None:
            raise ValueError("t_prev: only used with timestamps (the time of f)")
        if measure == "legs":
            if t is None:
                raise ValueError("t: LegS needs the step index t (samples already absorbed; t = 0 initialises)")
            if isinstance(t, Tensor):
                t = t.expand(f.shape).reshape(-1)
        elif t is not None:
            raise ValueError(f"t: measure '{measure}' is time-invariant; pass dt (or timestamps with t_prev)")
        coef = gbt_coefficients(
            1, measure=measure, method=method, gbt_alpha=gbt_alpha, dt=dt, t=0 if t is None else t,
            convention=convention, device=f.device,
        )[0]
    return torch.ops.hippo_rs.gbt_step(c2, f2, coef, measure, plist).reshape(c.shape)


def legs_update(
    c: Tensor,
    f: Tensor,
    t: Union[int, Tensor],
    *,
    method: str = "bilinear",
    gbt_alpha: Optional[float] = None,
    convention: str = "original",
) -> Tensor:
    """One LegS step: :func:`update` with ``measure="legs"`` (``t`` the step index), as
    :func:`hippo_rs.legs_update`."""
    return update(c, f, measure="legs", method=method, gbt_alpha=gbt_alpha, t=t, convention=convention)
