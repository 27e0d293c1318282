"""Reconstruction: evaluate the approximation of the past that HiPPO coefficients encode.

The math (basis per measure, derivations, stability) is in ``rust/core/src/reconstruct.rs`` and
``docs/conventions.md``; this module only checks and reshapes arguments.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _core
from . import _rules
from . import _validate as _v

#: Measures whose memory is the window [t - theta, t].
WINDOWED = ("legt", "lmu", "fout", "chebt")


def default_time(measure: str, params: dict[str, Any]) -> float:
    """The time ``t`` that ``reconstruct`` assumes when none is given.

    ``legs``: 1 (times are fractions of the history [0, 1]); windowed measures: ``theta`` (the window
    is [0, theta]); ``lagt``/``glagt``: 0 (times are minus the ages, <= 0).
    """
    if measure == "legs":
        return 1.0
    if measure in WINDOWED:
        return _v.real(params.get("theta", 1.0), "theta")
    return 0.0


def coefficients(c: Any, name: str = "c") -> np.ndarray:
    """A real array as C-contiguous float32 (kept) or float64 (everything else)."""
    arr = np.asarray(c)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    dtype = np.float32 if arr.dtype == np.float32 else np.float64
    return np.ascontiguousarray(arr, dtype=dtype)


def reconstruct(measure: str, c: Any, times: Any, *, t: Optional[float] = None, **params: float) -> np.ndarray:
    """Evaluate the function that the coefficients ``c`` (..., N) encode, at absolute past ``times``.

    ``t`` is the time of the state (the end of the remembered window); ``times`` must lie in the
    remembered window, per measure (s = t - time is the age):

    * ``legs``: [0, t], ``f(x) = sum_n c_n sqrt(2n+1) P_n(2x/t - 1)`` (exact projection);
    * ``legt``: [t - theta, t], ``f(t - s) = sum_n c_n sqrt(2n+1) P_n(1 - 2s/theta)``;
    * ``lmu``: [t - theta, t], ``f(t - s) = sum_n c_n P_n(2s/theta - 1)``;
    * ``fout``: [t - theta, t], ``f(t - s) = c_0 + sqrt2 sum_j (c_{2j-1} cos(2 pi j s/theta) +
      c_{2j} sin(2 pi j s/theta))``;
    * ``lagt`` (``beta``): (-inf, t], ``f(t - s) = exp(-(1 - beta) s/2) sum_n c_n L_n(s)``;
    * ``glagt`` (``alpha``, ``beta``): (-inf, t], ``f(t - s) = Gamma(1-alpha)^(1/2) beta^(-(1-alpha)/2)
      s^alpha exp(-(1 - beta) s/2) sum_n c_n L_n^(alpha)(s) / sqrt(Gamma(n+alpha+1)/n!)``.

    ``chebt`` is not supported. With ``t=None``: ``legs`` t = 1, windowed measures t = theta, Laguerre
    measures t = 0. ``times`` is a scalar or 1-D; the result has shape ``c.shape[:-1] + (len(times),)``
    (no time axis for a scalar), in ``c``'s dtype (float32 kept, other real dtypes become float64);
    the evaluation itself runs in float64 with three-term recurrences, stable for N in the thousands.
    """
    _rules.name(measure, "measure", _rules.MEASURES)
    c = coefficients(c)
    if c.ndim < 1 or c.shape[-1] < 1:
        raise ValueError(f"c: expected shape (..., N) with N >= 1, got {c.shape}")
    tau = np.asarray(times)
    if tau.dtype.kind not in "biuf":
        raise TypeError(f"times: expected real numbers, got dtype {tau.dtype}")
    if tau.ndim > 1:
        raise ValueError(f"times: expected a scalar or a 1-D array, got shape {tau.shape}")
    t_value = default_time(measure, params) if t is None else _v.real(t, "t")
    rows = c.reshape(-1, c.shape[-1])
    out = _core.reconstruct(
        measure, _v.params(params), rows, np.ascontiguousarray(tau.reshape(-1), dtype=np.float64), t_value
    )
    return out.reshape(c.shape[:-1] + tau.shape)
