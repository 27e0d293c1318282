"""Test signals for online function approximation.

``white_signal`` is band-limited white noise, the signal of the HiPPO paper's function-approximation
experiment (Gu et al. 2020, section 4.3, Figure 4, Table 3), built the way the common "white signal"
processes build it (e.g. nengo's ``WhiteSignal``): random complex Fourier coefficients with
independent standard normal real and imaginary parts for every frequency 0 < nu <= cutoff, zero
elsewhere (so the signal has zero mean and is periodic over the record), an inverse real FFT, and a
rescale to the requested root-mean-square value.
"""

from __future__ import annotations

import operator
from typing import Any, Optional

import numpy as np

from . import _validate as _v

__all__ = ["white_signal"]


def white_signal(
    length: int = 1_000_000,
    *,
    dt: float = 1e-4,
    cutoff: float = 1.0,
    rms: float = 0.5,
    seed: Optional[int] = 0,
    dtype: Any = np.float64,
) -> np.ndarray:
    """Seeded band-limited white noise: ``length`` samples at spacing ``dt`` (seconds).

    Frequencies in (0, ``cutoff``] Hz carry independent normal complex amplitudes, the others none;
    the result is scaled so that ``sqrt(mean(x**2)) == rms``. The defaults (10^6 samples, dt = 1e-4,
    cutoff 1 Hz, RMS 0.5: 100 s, about a hundred cycles) are the paper's experiment. ``seed`` is
    passed to ``numpy.random.default_rng``; the same seed gives the same signal.
    """
    if isinstance(length, (bool, np.bool_)):
        raise TypeError("length: expected an integer >= 2, got a bool")
    try:
        n = operator.index(length)
    except TypeError:
        raise TypeError(f"length: expected an integer >= 2, got {type(length).__name__}") from None
    if n < 2:
        raise ValueError(f"length: expected an integer >= 2, got {n}")
    dt = _v.real(dt, "dt")
    cutoff = _v.real(cutoff, "cutoff")
    rms = _v.real(rms, "rms")
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt: expected a finite step > 0, got {dt}")
    if not (np.isfinite(rms) and rms >= 0):
        raise ValueError(f"rms: expected a finite value >= 0, got {rms}")
    lowest = 1.0 / (n * dt)
    if not (cutoff >= lowest):  # also rejects NaN
        raise ValueError(
            f"cutoff: expected at least the lowest frequency of the record, 1/(length*dt) = {lowest:g} Hz, got {cutoff}"
        )
    rng = np.random.default_rng(seed)
    freqs = np.fft.rfftfreq(n, dt)
    coef = rng.standard_normal(freqs.size) + 1j * rng.standard_normal(freqs.size)
    coef[0] = 0.0
    coef[freqs > cutoff] = 0.0
    if n % 2 == 0:
        coef[-1] = coef[-1].real  # the Nyquist term of a real signal is real
    x = np.fft.irfft(coef, n)
    x *= rms / np.sqrt(np.mean(x * x))
    return x.astype(dtype, copy=False)
