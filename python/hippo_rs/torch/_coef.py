"""Per-step GBT coefficient rows ``(a_i, a_e, a_b)`` built with torch operations, on the device.

The device-side copy of the core's rows (``rust/core/src/rows.rs``, served to numpy by
``hippo_rs._core.gbt_rows``), written with tensor operations so that they run on the device of the
signal and trace under ``torch.compile`` (timestamps and step indices may be tensors). The GBT weight
comes from the core's method table; ``tests/test_rules.py`` ties every row built here to the core's
over Hypothesis-drawn step indices, steps, timestamps, weights and conventions.
``(I - a_i A) c_k = (I + a_e A) c_{k-1} + a_b B f_k``:

* time-invariant measure, step ``dt``, weight ``alpha``: ``(alpha dt, (1 - alpha) dt, dt)``;
  timestamped: ``dt -> dt (t1 - t0)``;
* LegS at step index ``t >= 1`` (samples already absorbed), ``convention="original"``:
  ``(alpha/t, (1-alpha)/t, 1/t)``; ``"paper"``: ``(alpha/(t+1), (1-alpha)/t, alpha/(t+1) + (1-alpha)/t)``;
* timestamped LegS from ``t0`` to ``t1``: original ``delta = (t1 - t0)/t1`` on all three;
  paper ``((t1-t0)/t1 alpha, (t1-t0)/t0 (1-alpha), (t1-t0)/t1 alpha + (t1-t0)/t0 (1-alpha))``;
* the LegS first sample (``t = 0``; timestamped: nothing absorbed yet (``t_prev`` None or NaN), or
  ``t0 = 0`` paper) is the reset row ``(+inf, 0, 0)``: the kernels set ``c_k = f_k e_0``.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor

__all__ = ["legs_coefficients", "lti_coefficients", "timestamped_coefficients"]

_F64 = torch.float64


def _rows(a_i: Tensor, a_e: Tensor, a_b: Tensor, reset: Optional[Tensor]) -> Tensor:
    if reset is not None:
        a_i = torch.where(reset, torch.full_like(a_i, float("inf")), a_i)
        a_e = torch.where(reset, torch.zeros_like(a_e), a_e)
        a_b = torch.where(reset, torch.zeros_like(a_b), a_b)
    return torch.stack((a_i, a_e, a_b), dim=-1)


def lti_coefficients(L: int, dt: float, alpha: float, device=None) -> Tensor:
    """Time-invariant measure: L identical rows ``(alpha dt, (1 - alpha) dt, dt)``, shape (L, 3)."""
    row = torch.tensor([alpha * dt, (1.0 - alpha) * dt, dt], dtype=_F64, device=device)
    return row.expand(L, 3).contiguous()


def legs_coefficients(
    L: int, t0: Union[int, Tensor], alpha: float, convention: str, device=None
) -> Tensor:
    """LegS over L samples starting at step index ``t0`` (int: (L, 3); tensor (R,): (L, R, 3))."""
    if isinstance(t0, Tensor):
        t0 = t0.to(device=device, dtype=_F64)
        t = t0 if L == 1 else t0[None, :] + torch.arange(L, dtype=_F64, device=device)[:, None]
        t = t.reshape(L, -1)
    else:
        t = torch.arange(L, dtype=_F64, device=device) + float(t0)
    inv_t = 1.0 / t.clamp(min=1.0)  # t = 0 rows are overwritten by the reset row
    if convention == "original":
        rows = inv_t[..., None] * torch.tensor([alpha, 1.0 - alpha, 1.0], dtype=_F64, device=device)
    else:
        a_i = alpha / (t + 1.0)
        a_e = (1.0 - alpha) * inv_t
        rows = torch.stack((a_i, a_e, a_i + a_e), dim=-1)
    reset = torch.tensor([float("inf"), 0.0, 0.0], dtype=_F64, device=device)
    return torch.where((t == 0)[..., None], reset, rows)


def timestamped_coefficients(
    measure: str,
    timestamps: Tensor,
    t_prev: Union[None, float, Tensor],
    alpha: float,
    dt: Optional[float],
    convention: str,
) -> Tensor:
    """Coefficients from absolute timestamps (L,) -> (L, 3) or (L, R) -> (L, R, 3).

    ``t_prev`` is the time of the last sample already absorbed (scalar or (R,)); None (or NaN) means
    nothing absorbed yet: LegS then resets on the first sample, time-invariant measures start from
    time 0. LegS ignores ``dt``; time-invariant measures step ``dt (t1 - t0)`` (dt default 1).
    """
    legs = measure == "legs"
    t1 = timestamps.to(_F64)
    if t_prev is None:
        first = torch.full_like(t1[:1], float("nan") if legs else 0.0)
    else:
        first = torch.as_tensor(t_prev, dtype=_F64, device=t1.device).expand_as(t1[0])[None]
    t0 = torch.cat((first, t1[:-1]), dim=0)
    if not legs:
        t0 = torch.where(torch.isnan(t0), torch.zeros_like(t0), t0)  # nothing absorbed: time 0
    d = t1 - t0
    if not legs:
        step = d * (1.0 if dt is None else dt)
        return _rows(alpha * step, (1.0 - alpha) * step, step, None)
    fresh = torch.isnan(t0)
    if convention == "original":
        reset = fresh | (t1 == 0)
        delta = d / torch.where(reset, torch.ones_like(t1), t1)
        return _rows(alpha * delta, (1.0 - alpha) * delta, delta, reset)
    reset = fresh | (t0 == 0)
    a_i = alpha * d / torch.where(t1 == 0, torch.ones_like(t1), t1)
    a_e = (1.0 - alpha) * d / torch.where(reset, torch.ones_like(t0), t0)
    return _rows(a_i, a_e, a_i + a_e, reset)
