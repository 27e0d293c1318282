"""Dense reference for the torch tests: the GBT recurrence with explicit matrices.

:func:`dense_scan` is pure torch and differentiable: per step ``c_k = (I - a_i A)^-1 [(I + a_e A)
c_{k-1} + a_b B f_k]`` with dense ``A, B`` from :func:`hippo_rs.transition`; a row with ``a_i = +inf``
is the LegS reset ``c_k = f_k e_0``. Its autograd is the reference for the ops' backward passes.
"""

from __future__ import annotations

import hippo_rs
import torch


def dense_matrices(measure, N, params, dtype=torch.float64):
    A, B = hippo_rs.transition(measure, N, **params)
    return torch.as_tensor(A, dtype=dtype), torch.as_tensor(B, dtype=dtype)


def _step_matrices(A, B, row):
    """Dense (Ad, Bd) of one coefficient row ``(a_i, a_e, a_b)`` (any leading batch dims)."""
    a_i, a_e, a_b = row[..., 0, None, None], row[..., 1, None, None], row[..., 2, None]
    eye = torch.eye(A.shape[0], dtype=A.dtype)
    lhs = eye - a_i * A
    Ad = torch.linalg.solve(lhs, eye + a_e * A)
    Bd = a_b * torch.linalg.solve(lhs, B.expand(lhs.shape[:-1]))
    return Ad, Bd


def dense_scan(f, c0, coef, A, B, return_all=True):
    """f (L, R), c0 (R, N), coef (L, 3) or (L, R, 3) float64 -> (L, R, N) or (R, N)."""
    A, B, coef = A.to(f.dtype), B.to(f.dtype), coef.to(f.dtype)
    c, outs = c0, []
    e0 = torch.zeros(A.shape[0], dtype=f.dtype)
    e0[0] = 1
    for k in range(f.shape[0]):
        row = coef[k]
        finite = torch.isfinite(row[..., 0])
        safe = torch.where(finite[..., None], row, torch.zeros_like(row))
        Ad, Bd = _step_matrices(A, B, safe)
        if row.dim() == 1:
            new = c @ Ad.T + f[k, :, None] * Bd
        else:
            new = torch.einsum("rij,rj->ri", Ad, c) + f[k, :, None] * Bd
        reset = f[k, :, None] * e0
        c = torch.where(finite[..., None].expand(new.shape) if row.dim() > 1 else finite, new, reset)
        outs.append(c)
    return torch.stack(outs) if return_all else c
