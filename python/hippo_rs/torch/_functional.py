"""Friendly wrappers over the ops: batch dimensions, measure parameters by name, coefficient rules."""

from __future__ import annotations

import math
from typing import Optional, Union

import torch
from torch import Tensor

from .. import _core
from .._validate import order, real
from . import _ops  # registers torch.ops.hippo_rs.*
from ._coef import gbt_alpha, legs_coefficients, lti_coefficients, timestamped_coefficients
from ._ops import params_list

__all__ = ["coefficients", "scan", "step"]

_MEASURES = tuple(_ops.PARAM_NAMES)


def _merge_params(measure: str, measure_params: dict, params: Optional[dict] = None) -> dict:
    """Measure parameters from keywords and the ``params`` dict, as in :func:`hippo_rs.scan` (the
    dict is the only way to pass GLagT's ``alpha``: the keyword ``alpha`` is the GBT weight).
    Names are checked here; ranges (eager mode) by the core's measure constructor."""
    if params is not None:
        if not isinstance(params, dict):
            raise TypeError(f"params: expected a dict of measure parameters, got {type(params).__name__}")
        both = set(params) & set(measure_params)
        if both:
            raise ValueError(f"params: {sorted(both)} given both as keywords and in params")
        measure_params = {**params, **measure_params}
    merged = dict(zip((n for n, _ in _ops.PARAM_NAMES.get(measure, ())), params_list(measure, measure_params)))
    if not torch.compiler.is_compiling():
        _core.transition(measure, 1, list(merged.items()))
    return merged


def coefficients(
    measure: str,
    L: int,
    *,
    method: str = "bilinear",
    alpha: Optional[float] = None,
    dt: Optional[float] = None,
    timestamps: Optional[Tensor] = None,
    t0: Union[int, Tensor] = 0,
    t_prev: Union[None, float, Tensor] = None,
    convention: str = "original",
    device=None,
) -> Tensor:
    """Float64 GBT coefficient rows (L, 3), or (L, R, 3) for per-row step indices / timestamps.

    Same rules as :func:`hippo_rs.gbt_coefficients` (see ``hippo_rs.torch._coef``): LegS uses the
    step index ``t0`` (samples already absorbed; a tensor (R,) gives per-row indices) and ignores
    ``dt``; time-invariant measures need ``dt``. With ``timestamps`` (L,) or (L, R) the steps come
    from absolute times, ``t_prev`` being the time of the last absorbed sample (None or NaN: nothing
    absorbed yet; LegS then resets on the first sample, time-invariant measures start at time 0).
    """
    if measure not in _MEASURES:
        raise ValueError(f"measure: expected one of {_MEASURES}, got {measure!r}")
    w = gbt_alpha(method, alpha)
    if timestamps is not None:
        if not isinstance(timestamps, Tensor):
            timestamps = torch.as_tensor(timestamps, dtype=torch.float64, device=device)
        if timestamps.shape[0] != L:
            raise ValueError(f"timestamps: expected {L} steps on the first axis, got {tuple(timestamps.shape)}")
        return timestamped_coefficients(measure, timestamps, t_prev, w, dt, convention)
    if measure == "legs":
        if not isinstance(t0, Tensor) and (isinstance(t0, bool) or int(t0) != t0 or t0 < 0):
            raise ValueError(f"t0: expected a step index >= 0 (samples already absorbed), got {t0!r}")
        return legs_coefficients(L, t0, w, convention, device=device)
    if dt is None:
        raise ValueError(f"dt: required for the time-invariant measure {measure!r}")
    step_size = real(dt, "dt")
    if not (step_size > 0 and math.isfinite(step_size)):
        raise ValueError(f"dt: expected a finite step > 0, got {step_size}")
    return lti_coefficients(L, step_size, w, device=device)


def scan(
    f: Tensor,
    N: Optional[int] = None,
    *,
    measure: str = "legs",
    method: str = "bilinear",
    alpha: Optional[float] = None,
    dt: Optional[float] = None,
    timestamps: Optional[Tensor] = None,
    c0: Optional[Tensor] = None,
    t0: Union[int, Tensor] = 0,
    t_prev: Union[None, float, Tensor] = None,
    return_all: bool = True,
    convention: str = "original",
    params: Optional[dict] = None,
    **measure_params: float,
) -> Tensor:
    """HiPPO memory of a whole sequence with the ``hippo_rs::gbt_scan`` op (differentiable in f, c0).

    ``f`` (L, ...) float32/float64 -> (L, ..., N) if ``return_all`` else (..., N). ``c0`` (..., N)
    is the state before the first sample (zeros by default; ``N`` may then be omitted). LegS: ``t0``
    = samples already absorbed (0 starts a new stream: the first sample resets the state to
    ``f_0 e_0``); continuing ``scan(f[k:], c0=c_k, t0=k)`` equals one call. ``timestamps`` (L,) or
    (L, ...) are absolute sample times (timestamped LegS; time-invariant measures step
    ``dt (t1 - t0)``; broadcast against f) and ``t_prev`` the time of the last absorbed sample (None:
    nothing absorbed; times must increase strictly, checked in eager mode). Measure parameters:
    keywords (``theta``, ``beta``) or the ``params`` dict (GLagT's ``alpha`` only there).
    """
    if not isinstance(f, Tensor) or f.dim() < 1:
        raise ValueError("f: expected a tensor of shape (L, ...)")
    plist = params_list(measure, _merge_params(measure, measure_params, params))
    L, batch = f.shape[0], f.shape[1:]
    if c0 is None:
        if N is None:
            raise ValueError("N: required when c0 is not given")
        n = order(N)
        c0 = f.new_zeros((*batch, n))
    else:
        n = c0.shape[-1]
        if N is not None and order(N) != n:
            raise ValueError(f"c0: expected last dimension N={N}, got {tuple(c0.shape)}")
        if c0.shape[:-1] != batch:
            raise ValueError(f"c0: expected shape {(*batch, n)}, got {tuple(c0.shape)}")
    f2 = f.reshape(L, -1)
    R = f2.shape[1]
    if isinstance(t0, Tensor):
        t0 = t0.expand(batch).reshape(R)
    if timestamps is not None:
        timestamps = torch.as_tensor(timestamps, dtype=torch.float64, device=f.device)
        per_row_prev = isinstance(t_prev, Tensor) and t_prev.dim() > 0
        if timestamps.dim() > 1 or per_row_prev:
            if timestamps.dim() == 1:
                timestamps = timestamps.reshape(L, *([1] * len(batch)))
            timestamps = timestamps.expand(f.shape).reshape(L, R)
            if per_row_prev:
                t_prev = t_prev.expand(batch).reshape(R)
    coef = coefficients(
        measure, L, method=method, alpha=alpha, dt=dt, timestamps=timestamps, t0=t0, t_prev=t_prev,
        convention=convention, device=f.device,
    )
    out = torch.ops.hippo_rs.gbt_scan(f2, c0.reshape(R, n), coef, measure, plist, return_all)
    return out.reshape((L, *batch, n) if return_all else (*batch, n))


def step(
    c: Tensor,
    f: Tensor,
    *,
    measure: str = "legs",
    method: str = "bilinear",
    alpha: Optional[float] = None,
    t: Union[None, int, Tensor] = None,
    dt: Optional[float] = None,
    timestamp: Union[None, float, Tensor] = None,
    t_prev: Union[None, float, Tensor] = None,
    convention: str = "original",
    params: Optional[dict] = None,
    **measure_params: float,
) -> Tensor:
    """One HiPPO update of a batch of states with the ``hippo_rs::gbt_step`` op.

    ``c`` (..., N), ``f`` (...) -> (..., N). LegS: ``t`` = samples already absorbed (int or an
    integer tensor of f's shape; ``t = 0`` resets to ``f e_0``). Timestamped: ``timestamp`` = time of
    this sample and ``t_prev`` that of the previous one (None or NaN: none, LegS resets). Time-invariant
    measures: ``dt``. Measure parameters as in :func:`scan`.
    """
    plist = params_list(measure, _merge_params(measure, measure_params, params))
    if c.shape[:-1] != f.shape:
        raise ValueError(f"f: expected shape {tuple(c.shape[:-1])} (c without its last axis), got {tuple(f.shape)}")
    n = c.shape[-1]
    c2, f2 = c.reshape(-1, n), f.reshape(-1)
    R = f2.shape[0]
    if timestamp is not None:
        ts = torch.as_tensor(timestamp, dtype=torch.float64, device=f.device)
        per_row_prev = isinstance(t_prev, Tensor) and t_prev.dim() > 0
        if ts.dim() > 0 or per_row_prev:
            ts = ts.expand(f.shape).reshape(R)
        if per_row_prev:
            t_prev = t_prev.expand(f.shape).reshape(R)
        coef = coefficients(
            measure, 1, method=method, alpha=alpha, dt=dt, timestamps=ts[None], t_prev=t_prev,
            convention=convention, device=f.device,
        )[0]
    else:
        if measure == "legs":
            if t is None:
                raise ValueError("t: required for measure 'legs' (the number of samples already absorbed)")
            if isinstance(t, Tensor):
                t = t.expand(f.shape).reshape(R)
        coef = coefficients(
            measure, 1, method=method, alpha=alpha, dt=dt, t0=0 if t is None else t,
            convention=convention, device=f.device,
        )[0]
    return torch.ops.hippo_rs.gbt_step(c2, f2, coef, measure, plist).reshape(c.shape)
