"""The optimal least-squares polynomial fit of a record: the reference of ``hippo-rs approx``."""

from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np

from .. import _core

#: Above this many multiply-adds (samples * N^2) the optimal fit is iterative, not a dense solve.
DENSE_FIT_WORK = 2e8


#: The iterative fit: relative tolerance of LSQR's stopping tests, and most iterations.
LSQR_TOL = 1e-8
LSQR_ITERATIONS = 100


def optimal_fit(x: np.ndarray, N: int) -> Tuple[np.ndarray, Dict[str, Any]]:
    """The least-squares fit of ``x`` (uniform samples) by polynomials of degree < N, at the samples,
    and how it was computed.

    In the orthonormal basis sqrt(2n+1) P_n(2u - 1) of [0, 1] at u_k = k/(L-1): small problems
    (L N^2 <= DENSE_FIT_WORK) by a dense least-squares solve; larger ones by
    ``scipy.sparse.linalg.lsqr`` on a ``LinearOperator`` whose matvec and rmatvec are the core's
    O(L N) evaluation and its transpose (``_core.reconstruct`` / ``_core.reconstruct_adjoint``),
    started from the trapezoid-rule projection. LSQR decreases the residual monotonically, so an
    unconverged MSE is an upper bound of the optimum.
    """
    L = x.size
    u = np.linspace(0.0, 1.0, L)
    if N >= L:
        return x.copy(), {"method": "interpolation", "iterations": 0, "converged": True}
    if L * float(N) ** 2 <= DENSE_FIT_WORK:
        V = np.polynomial.legendre.legvander(2.0 * u - 1.0, N - 1) * np.sqrt(2.0 * np.arange(N) + 1.0)
        coef, *_ = np.linalg.lstsq(V, x, rcond=None)
        return V @ coef, {"method": "dense", "iterations": 0, "converged": True}
    from scipy.sparse.linalg import LinearOperator, lsqr

    scale = 1.0 / np.sqrt(L)  # V / sqrt(L) has singular values ~1 when L >> N^2
    V = LinearOperator(
        (L, N),
        matvec=lambda c: _core.reconstruct("legs", [], np.ascontiguousarray(c).reshape(1, N), u, 1.0)[0] * scale,
        rmatvec=lambda r: _core.reconstruct_adjoint("legs", [], (np.reshape(r, (1, L)) * scale), u, 1.0, N)[0],
        dtype=np.float64,
    )
    w = np.full(L, 1.0 / (L - 1))
    w[0] = w[-1] = 0.5 / (L - 1)
    start = _core.reconstruct_adjoint("legs", [], (x * w)[None], u, 1.0, N)[0]
    coef, istop, iterations = lsqr(V, x * scale, atol=LSQR_TOL, btol=LSQR_TOL, iter_lim=LSQR_ITERATIONS, x0=start)[:3]
    fit = _core.reconstruct("legs", [], coef[None], u, 1.0)[0]
    return fit, {"method": "lsqr", "iterations": int(iterations), "converged": bool(istop in (1, 2))}
