"""Independent dense float64 reference math for the tests, written from the paper's formulas.

This module never imports hippo_rs: every function here is a second, deliberately different
implementation (vectorised numpy/scipy, paper sign first and negated at the end) of what the Rust core
computes, so that the tests compare two derivations rather than one twice.

Sources: Gu, Dao, Ermon, Rudra, Re, "HiPPO: Recurrent Memory with Optimal Polynomial Projections"
(NeurIPS 2020, arXiv 2008.07669), Theorem 1, Appendix B.3 (GBT), Appendix D (closed forms).
Sign: the paper writes dc/dt = -A c + B f with a positive A; hippo_rs (and these functions' return
values) use dc/dt = A c + B f.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.special

MEASURE_DEFAULTS = {
    "legs": {},
    "legt": {"theta": 1.0},
    "lmu": {"theta": 1.0},
    "lagt": {"beta": 1.0},
    "glagt": {"alpha": 0.0, "beta": 1.0},
    "fout": {"theta": 1.0},
    "chebt": {"theta": 1.0},
}


def _paper_legs(N):
    """Paper Thm 1: A_nk = sqrt(2n+1) sqrt(2k+1) (n > k), n + 1 (n = k), 0 (n < k); B_n = sqrt(2n+1)."""
    n, k = np.indices((N, N), dtype=np.float64)
    r = np.sqrt(2 * np.arange(N, dtype=np.float64) + 1)
    A = np.where(n > k, np.outer(r, r), 0.0) + np.diag(np.arange(1, N + 1, dtype=np.float64))
    return A, r.copy()


def _paper_legt(N, theta):
    """Paper Thm 1 (LegT): A_nk = (1/theta) sqrt(2n+1) sqrt(2k+1) (1 if k <= n else (-1)^(n-k))."""
    n, k = np.indices((N, N))
    r = np.sqrt(2 * np.arange(N, dtype=np.float64) + 1)
    sign = np.where(k <= n, 1.0, (-1.0) ** ((n - k) % 2))
    return sign * np.outer(r, r) / theta, r / theta


def _paper_lmu(N, theta):
    """Voelker et al. (2019), paper App. D.2: A_nk = (2n+1)/theta ((-1)^(n-k) if n >= k else 1),
    B_n = (2n+1)(-1)^n / theta (paper sign: the code's A is the negation, B unchanged)."""
    n, k = np.indices((N, N))
    q = 2 * np.arange(N, dtype=np.float64) + 1
    sign = np.where(n >= k, (-1.0) ** ((n - k) % 2), 1.0)
    return sign * q[:, None] / theta, q * (-1.0) ** np.arange(N) / theta


def _paper_lagt(N, beta):
    """Paper Thm 1 LagT (beta = 1: lower triangle of ones); the tilt moves the diagonal to (1+beta)/2."""
    A = np.tril(np.ones((N, N)), -1) + (1 + beta) / 2 * np.eye(N)
    return A, np.ones(N)


def _paper_glagt(N, alpha, beta):
    """Paper App. D.3: A = Lam^-1 M Lam, M = (1+beta)/2 on the diagonal and 1 below;
    Lam = diag(sqrt(Gamma(n+alpha+1)/Gamma(n+1))); B = Gamma(1-alpha)^(-1/2) beta^((1-alpha)/2)
    Lam^-1 binom(n+alpha, n)."""
    idx = np.arange(N, dtype=np.float64)
    lam = np.exp(0.5 * (scipy.special.gammaln(idx + alpha + 1) - scipy.special.gammaln(idx + 1)))
    M = np.tril(np.ones((N, N)), -1) + (1 + beta) / 2 * np.eye(N)
    A = M * lam[None, :] / lam[:, None]
    binom = scipy.special.binom(idx + alpha, idx)
    scale = np.exp(-0.5 * scipy.special.gammaln(1 - alpha)) * beta ** ((1 - alpha) / 2)
    return A, scale * binom / lam


def fout_complex(K, theta):
    """Paper App. D.4 (FouT), complex exponential basis e^{2 pi i n (t - x)/theta}, n = -K..K, in the
    "plus" form dc/dt = A c + B f: A_nk = -1/theta (k != n), (2 pi i n - 1)/theta (k = n); B = 1/theta.
    Returns (A, B, frequencies)."""
    freqs = np.arange(-K, K + 1)
    size = freqs.size
    A = -np.ones((size, size), dtype=complex) / theta + np.diag(2j * np.pi * freqs / theta)
    return A, np.ones(size, dtype=complex) / theta, freqs


def _code_fout(N, theta):
    """The real form of the complex FouT system, by a change of basis computed numerically.

    Real basis: phi_0 = 1, phi_{2j-1} = sqrt2 cos(w_j s), phi_{2j} = sqrt2 sin(w_j s) (s = t - x,
    w_j = 2 pi j / theta). With complex coefficients z_n (basis e^{i w_n s}) the real ones are
    c_0 = z_0, c_{2j-1} = (z_j + z_{-j})/sqrt2, c_{2j} = -i (z_j - z_{-j})/sqrt2 (z_{+-j} = (c_cos +- i c_sin)/sqrt2), i.e. c = T z and
    A_real = T A_complex T^-1, B_real = T B_complex. For even N the last cosine has no sine partner:
    the system is computed for K = N/2 and truncated (orthogonal projection onto the first N).
    """
    K = N // 2
    Ac, Bc, freqs = fout_complex(K, theta)
    size = freqs.size
    T = np.zeros((size, size), dtype=complex)
    pos = {f: i for i, f in enumerate(freqs)}
    T[0, pos[0]] = 1.0
    for j in range(1, K + 1):
        T[2 * j - 1, pos[j]] = T[2 * j - 1, pos[-j]] = 1 / np.sqrt(2)
        T[2 * j, pos[j]] = -1j / np.sqrt(2)
        T[2 * j, pos[-j]] = 1j / np.sqrt(2)
    A = T @ Ac @ np.linalg.inv(T)
    B = T @ Bc
    assert np.abs(A.imag).max() < 1e-9 and np.abs(B.imag).max() < 1e-12
    return A.real[:N, :N], B.real[:N]


def _paper_chebt(N, theta):
    """Paper App. D.5 (ChebT): dc/dt = -(1/theta) A c +
    (1/theta) B f, A_nk = 4n (1 <= k < n, n - k odd), 4n/sqrt2 (k = 0, n odd), 0 otherwise;
    B = (2^{3/2}/pi) [1, sqrt2, sqrt2, ...]."""
    n, k = np.indices((N, N))
    odd = (n - k) % 2 == 1
    A = np.where(odd & (k >= 1) & (k < n), 4.0 * n, 0.0)
    A = A + np.where(odd & (k == 0), 4.0 * n / np.sqrt(2), 0.0)
    B = 2**1.5 / np.pi * np.where(np.arange(N) == 0, 1.0, np.sqrt(2))
    return A / theta, B / theta


def transition_ref(measure: str, N: int, **params) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) in the code sign dc/dt = A c + B f, float64, B of shape (N,)."""
    p = {**MEASURE_DEFAULTS[measure], **params}
    if measure == "fout":
        return _code_fout(N, p["theta"])
    paper = {
        "legs": lambda: _paper_legs(N),
        "legt": lambda: _paper_legt(N, p["theta"]),
        "lmu": lambda: _paper_lmu(N, p["theta"]),
        "lagt": lambda: _paper_lagt(N, p["beta"]),
        "glagt": lambda: _paper_glagt(N, p["alpha"], p["beta"]),
        "chebt": lambda: _paper_chebt(N, p["theta"]),
    }[measure]
    A, B = paper()
    return -A, B


def gbt_ref(A, B, dt, alpha):
    """Paper App. B.3 GBT: Ad = (I - alpha dt A)^-1 (I + (1 - alpha) dt A), Bd = dt (I - alpha dt A)^-1 B."""
    eye = np.eye(A.shape[0])
    lhs = eye - alpha * dt * A
    return np.linalg.solve(lhs, eye + (1 - alpha) * dt * A), dt * np.linalg.solve(lhs, B)


def zoh_ref(A, B, dt):
    """Zero-order hold: Ad = e^{dt A}, Bd = int_0^dt e^{sA} ds B, via the block exponential
    expm([[A, B], [0, 0]] dt) = [[Ad, Bd], [0, 1]] (scipy.linalg.expm)."""
    N = A.shape[0]
    M = np.zeros((N + 1, N + 1))
    M[:N, :N] = A
    M[:N, N] = B
    E = scipy.linalg.expm(M * dt)
    return E[:N, :N], E[:N, N]


METHOD_ALPHA = {"forward_euler": 0.0, "backward_euler": 1.0, "bilinear": 0.5}


def discretize_ref(A, B, dt, method, alpha=None):
    if method == "zoh":
        return zoh_ref(A, B, dt)
    return gbt_ref(A, B, dt, alpha if method == "gbt" else METHOD_ALPHA[method])


def legs_step_ref(N, t, method, alpha=None, convention="original"):
    """Dense LegS step at index t >= 1 (t samples already absorbed):
    original: (I - a A/t) c+ = (I + (1-a) A/t) c + (B/t) f;
    paper (App. B.3): (I - a A/(t+1)) c+ = (I + (1-a) A/t) c + (a/(t+1) + (1-a)/t) B f;
    zoh: LegS in log-time over [t, t+1]: Ad = expm(A ln((t+1)/t)), Bd = A^-1 (Ad - I) B."""
    A, B = transition_ref("legs", N)
    if method == "zoh":
        return zoh_ref(A, B, np.log((t + 1) / t))
    a = alpha if method == "gbt" else METHOD_ALPHA[method]
    eye = np.eye(N)
    if convention == "original":
        implicit, explicit, inp = a / t, (1 - a) / t, 1 / t
    else:
        implicit, explicit, inp = a / (t + 1), (1 - a) / t, a / (t + 1) + (1 - a) / t
    lhs = eye - implicit * A
    return np.linalg.solve(lhs, eye + explicit * A), inp * np.linalg.solve(lhs, B)
