"""Dense references for the torch tests: the GBT recurrence with explicit matrices.

* :func:`dense_scan` -- pure torch, differentiable: per step ``c_k = (I - a_i A)^-1 [(I + a_e A) c_{k-1}
  + a_b B f_k]`` with dense ``A, B`` from :func:`hippo_rs.transition`; a row with ``a_i = +inf`` is the
  LegS reset ``c_k = f_k e_0``. Its autograd is the reference for the ops' backward passes.
* :func:`np_gbt_scan` / :func:`np_gbt_scan_adjoint` -- numpy stand-ins with the signatures of
  ``hippo_rs._core.gbt_scan`` / ``gbt_scan_adjoint`` (the contract), installed by
  :func:`install_standins` only while the Rust kernels are absent.
"""

from __future__ import annotations

import numpy as np
import torch

import hippo_rs
from hippo_rs import _core


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


def np_gbt_scan(measure, params, f, c0, coef, return_all, out=None):
    A, B = dense_matrices(measure, c0.shape[1], params)
    res = dense_scan(torch.from_numpy(np.asarray(f, np.float64)), torch.from_numpy(np.asarray(c0, np.float64)),
                     torch.from_numpy(coef), A, B, return_all).numpy().astype(f.dtype)
    if out is None:
        return res
    out[...] = res
    return out


def np_gbt_scan_adjoint(measure, params, grad, coef, return_all):
    """Transpose of :func:`np_gbt_scan` with dense matrices: lambda_L = grad_L; for k = L..1:
    w = (I - a_i A)^-T lambda_k, grad_f_k = a_b <B, w>, lambda_{k-1} = (I + a_e A)^T w (+ grad_{k-1});
    a reset row gives grad_f_k = lambda_k[0], lambda_{k-1} = 0 (+ grad_{k-1})."""
    g = torch.from_numpy(np.asarray(grad, np.float64))
    L = coef.shape[0]
    R, N = g.shape[-2:]
    A, B = dense_matrices(measure, N, params)
    eye = torch.eye(N, dtype=torch.float64)
    rows = torch.from_numpy(np.array(np.broadcast_to(coef[:, None, :] if coef.ndim == 2 else coef, (L, R, 3))))
    lam = g[L - 1].clone() if return_all else g.clone()
    grad_f = torch.zeros(L, R, dtype=torch.float64)
    for k in range(L - 1, -1, -1):
        a_i, a_e, a_b = rows[k, :, 0], rows[k, :, 1], rows[k, :, 2]
        reset = torch.isinf(a_i)
        a_i = torch.where(reset, torch.zeros_like(a_i), a_i)
        lhs_t = (eye - a_i[:, None, None] * A).transpose(-1, -2)
        w = torch.linalg.solve(lhs_t, lam)
        gf = a_b * (w @ B)
        lam_new = torch.einsum("rji,rj->ri", eye + a_e[:, None, None] * A, w)
        grad_f[k] = torch.where(reset, lam[:, 0], gf)
        lam = torch.where(reset[:, None], torch.zeros_like(lam_new), lam_new)
        if return_all and k > 0:
            lam = lam + g[k - 1]
    return grad_f.numpy().astype(grad.dtype), lam.numpy().astype(grad.dtype)


def install_standins():
    """Use the numpy stand-ins while ``hippo_rs._core`` has no scan kernels (before `ops` lands)."""
    if not hasattr(_core, "gbt_scan"):
        _core.gbt_scan = np_gbt_scan
        _core.gbt_scan_adjoint = np_gbt_scan_adjoint
