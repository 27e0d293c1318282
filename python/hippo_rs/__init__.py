"""hippo_rs: HiPPO memory (Gu, Dao, Ermon, Rudra, Re, NeurIPS 2020) with a Rust core.

Conventions (written down once in ``docs/conventions.md``):

* sign: ``dc/dt = A c + B f`` with a stable ``A`` (the paper writes ``-A``); LegS is scale-invariant,
  ``dc/dt = (A c + B f) / t``;
* normalisation: LegS/LegT coefficients of the orthonormal basis ``sqrt(2n+1) P_n``; ``lmu`` is the
  Legendre Memory Unit's; ``theta`` is the window length of the translated measures;
* LegS step index ``t``: the number of samples already absorbed; ``convention="original"`` (default,
  the original HiPPO code: ``A/t`` on both sides) or ``"paper"`` (App. B.3: ``1/(t+1)`` implicit,
  ``1/t`` explicit).
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from . import _core
from . import _validate as _v

# ---- issue 3 (branch ops): O(N) updates and scans ----
from ._scan import gbt_coefficients, legs_update, scan, update

__version__: str = _core.__version__

MEASURES: Tuple[str, ...] = tuple(_core.MEASURES)
METHODS: Tuple[str, ...] = tuple(_core.METHODS)
CONVENTIONS: Tuple[str, ...] = ("original", "paper")

__all__ = [
    "CONVENTIONS",
    "MEASURES",
    "METHODS",
    "discretize",
    "gbt_coefficients",
    "legs_update",
    "legs_step_matrices",
    "scan",
    "transition",
    "update",
]

# Online memory and reconstruction (issue 4).
from . import signals  # noqa: E402
from ._reconstruct import reconstruct  # noqa: E402
from .memory import Memory  # noqa: E402

__all__ += ["Memory", "reconstruct", "signals"]


def transition(measure: str, N: int, **params: float) -> Tuple[np.ndarray, np.ndarray]:
    """Closed-form HiPPO matrices ``(A, B)`` of order ``N`` (float64, A: (N, N), B: (N,)).

    Sign convention ``dc/dt = A c + B f``. Parameters per measure: ``legt``/``lmu``/``fout``/``chebt``:
    ``theta`` (window, default 1); ``lagt``: ``beta`` (tilt, default 1 = the paper's LagT, 0 = the
    older code's 1/2 diagonal); ``glagt``: ``alpha`` in (-1, 1) (default 0), ``beta`` > 0 (default 1).
    """
    if not isinstance(measure, str):
        raise TypeError(f"measure: expected a str, one of {MEASURES}, got {type(measure).__name__}")
    return _core.transition(measure, _v.order(N), _v.params(params))


def discretize(
    A: np.ndarray, B: np.ndarray, dt: float, method: str = "bilinear", alpha: Optional[float] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """Dense discretisation ``c_k = Ad c_{k-1} + Bd f_k`` of ``dc/dt = A c + B f`` with step ``dt``.

    ``method``: ``forward_euler``, ``backward_euler``, ``bilinear``, ``gbt`` (with ``alpha`` in
    [0, 1]: ``Ad = (I - alpha dt A)^-1 (I + (1 - alpha) dt A)``, ``Bd = dt (I - alpha dt A)^-1 B``) or
    ``zoh`` (``Ad = expm(dt A)``, ``Bd = A^-1 (Ad - I) B``, via an augmented exponential accurate to
    float64 rounding). ``B`` may be (N,) or (N, 1); ``Bd`` has the same shape.
    """
    A = _v.float64_array(A, "A")
    B = _v.float64_array(B, "B")
    if A.ndim != 2:
        raise ValueError(f"A: expected a 2-D (N, N) matrix, got shape {A.shape}")
    column = B.ndim == 2 and B.shape[1:] == (1,)
    if not (B.ndim == 1 or column):
        raise ValueError(f"B: expected shape (N,) or (N, 1), got {B.shape}")
    alpha = None if alpha is None else _v.real(alpha, "alpha")
    Ad, Bd = _core.discretize(A, B.reshape(-1), _v.real(dt, "dt"), method, alpha)
    return Ad, (Bd[:, None] if column else Bd)


def legs_step_matrices(
    N: int,
    t: int,
    method: str = "bilinear",
    alpha: Optional[float] = None,
    convention: str = "original",
) -> Tuple[np.ndarray, np.ndarray]:
    """Dense LegS transition ``(A_t, B_t)`` at step index ``t >= 1`` (``c_t = A_t c_{t-1} + B_t f_t``).

    ``convention="original"``: ``A/t`` on both sides of the GBT step; ``"paper"``: ``A/(t+1)`` on the
    implicit side and ``A/t`` on the explicit side. ``zoh``: ``expm(A log((t+1)/t))`` for both.
    """
    t_index = _v.order(t, "t")
    alpha = None if alpha is None else _v.real(alpha, "alpha")
    return _core.legs_step_matrices(_v.order(N), t_index, method, alpha, convention)
