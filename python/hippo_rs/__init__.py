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
from . import _rules
from . import _validate as _v
from . import signals
from ._reconstruct import reconstruct
from ._rows import gbt_coefficients
from ._scan import legs_update, scan, update
from .memory import Memory

__version__: str = _core.__version__

MEASURES: Tuple[str, ...] = _rules.MEASURES
METHODS: Tuple[str, ...] = _rules.METHODS
CONVENTIONS: Tuple[str, ...] = _rules.CONVENTIONS

__all__ = [
    "CONVENTIONS",
    "MEASURES",
    "METHODS",
    "Memory",
    "discretize",
    "gbt_coefficients",
    "legs_step_matrices",
    "legs_update",
    "reconstruct",
    "scan",
    "signals",
    "transition",
    "update",
]


def transition(measure: str, N: int, **params: float) -> Tuple[np.ndarray, np.ndarray]:
    """Closed-form HiPPO matrices ``(A, B)`` of order ``N`` (float64, A: (N, N), B: (N,)).

    Sign convention ``dc/dt = A c + B f``. Parameters per measure: ``legt``/``lmu``/``fout``/``chebt``:
    ``theta`` (window, default 1); ``lagt``: ``beta`` (tilt, default 1 = the paper's LagT, 0 = the
    older code's 1/2 diagonal); ``glagt``: ``alpha`` in (-1, 1) (default 0), ``beta`` > 0 (default 1).
    """
    checked = _rules.measure_params(measure, params)
    return _core.transition(measure, _v.order(N), list(checked.items()))


def discretize(
    A: np.ndarray, B: np.ndarray, *, dt: float, method: str = "bilinear", gbt_alpha: Optional[float] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """Dense discretisation ``c_k = Ad c_{k-1} + Bd f_k`` of ``dc/dt = A c + B f`` with step ``dt``.

    ``method``: ``forward_euler`` (alias ``euler``, ``forward``), ``backward_euler`` (``backward``),
    ``bilinear`` (``tustin``), ``gbt`` (with ``gbt_alpha`` in [0, 1]:
    ``Ad = (I - a dt A)^-1 (I + (1 - a) dt A)``, ``Bd = dt (I - a dt A)^-1 B``) or ``zoh``
    (``Ad = expm(dt A)``, ``Bd = A^-1 (Ad - I) B``, via an augmented exponential accurate to float64
    rounding). ``B`` may be (N,) or (N, 1); ``Bd`` has the same shape.
    """
    A = _v.float64_array(A, "A")
    B = _v.float64_array(B, "B")
    if A.ndim != 2:
        raise ValueError(f"A: expected a 2-D (N, N) matrix, got shape {A.shape}")
    column = B.ndim == 2 and B.shape[1:] == (1,)
    if not (B.ndim == 1 or column):
        raise ValueError(f"B: expected shape (N,) or (N, 1), got {B.shape}")
    _rules.gbt_weight(method, gbt_alpha)
    Ad, Bd = _core.discretize(A, B.reshape(-1), _v.real(dt, "dt"), method, gbt_alpha)
    return Ad, (Bd[:, None] if column else Bd)


def legs_step_matrices(
    N: int,
    *,
    t: int,
    method: str = "bilinear",
    gbt_alpha: Optional[float] = None,
    convention: str = "original",
) -> Tuple[np.ndarray, np.ndarray]:
    """Dense LegS transition ``(A_t, B_t)`` at step index ``t >= 1`` (``c_t = A_t c_{t-1} + B_t f_t``).

    ``convention="original"``: ``A/t`` on both sides of the GBT step; ``"paper"``: ``A/(t+1)`` on the
    implicit side and ``A/t`` on the explicit side. ``zoh``: ``expm(A log((t+1)/t))`` for both.
    """
    t_index = _v.order(t, "t")
    _rules.gbt_weight(method, gbt_alpha)
    _rules.convention(convention)
    return _core.legs_step_matrices(_v.order(N), t_index, method, gbt_alpha, convention)
