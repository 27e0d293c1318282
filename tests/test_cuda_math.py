"""The O(N) formulas of cuda/hippo_scan.cu, transcribed to numpy (sequential running sums instead of
block scans) and checked against the dense GBT step built from measure.rs's A and B.

Runs without a GPU: it checks the kernels' derivation (structure constants, the Riccati sweep of
LegT/LMU, parity signs, the running sums carried between steps, the adjoint), not the CUDA code
itself (tests/test_cuda_emulated.py runs that on CPU threads, tests/test_cuda.py on a GPU).
"""

import numpy as np
import pytest


def dense(measure, N, theta=1.0, beta=1.0):
    """Code-sign (A, B) exactly as rust/core/src/measure.rs builds them."""
    n = np.arange(N)
    r = np.sqrt(2 * n + 1.0)
    A = np.zeros((N, N))
    if measure == "legs":
        A = -np.tril(np.outer(r, r), -1) - np.diag(n + 1.0)
        B = r.copy()
    elif measure == "legt":
        s = np.where(n[None, :] <= n[:, None], 1.0, (-1.0) ** (n[None, :] - n[:, None]))
        A = -np.outer(r, r) * s / theta
        B = r / theta
    elif measure == "lmu":
        d = n[:, None] - n[None, :]
        A = (2 * n[:, None] + 1.0) / theta * np.where(d >= 0, -((-1.0) ** d), -1.0)
        B = (2 * n + 1.0) * (-1.0) ** n / theta
    elif measure == "lagt":
        A = -np.tril(np.ones((N, N)), -1) - np.eye(N) * (1 + beta) / 2
        B = np.ones(N)
    return A, B


def consts(measure, N, theta=1.0, beta=1.0):
    n = np.arange(N)
    r = np.sqrt(2 * n + 1.0)
    if measure == "legs":
        return dict(r=r, d=n + 1.0)
    if measure == "lagt":
        return dict(r=np.ones(N), d=np.full(N, (1 + beta) / 2))
    return dict(measure=measure, theta=theta, r=r, s=(-1.0) ** n)


def tri_fwd(k, x, f, coef):
    """One TRI step; x (N,) -> y. P_n = sum_{k<n} r_k x_k recomputed (the kernel carries it)."""
    r, d = k["r"], k["d"]
    ai, ae, ab = coef
    if np.isinf(ai):
        y = np.zeros_like(x)
        y[0] = f
        return y
    P = np.concatenate([[0.0], np.cumsum(r * x)[:-1]])
    b = x * (1 - ae * d) - ae * r * P + ab * r * f
    h = 1 / (1 + ai * d)
    y = np.empty_like(x)
    S = 0.0
    for n in range(len(x)):
        y[n] = h[n] * (b[n] - ai * r[n] * S)
        S += r[n] * y[n]
    return y


def tri_adj(k, lam, coef):
    r, d = k["r"], k["d"]
    ai, ae, ab = coef
    if np.isinf(ai):
        out = np.zeros_like(lam)
        return out, lam[0]
    h = 1 / (1 + ai * d)
    out = np.empty_like(lam)
    S = 0.0
    for n in reversed(range(len(lam))):
        w = h[n] * (lam[n] - ai * r[n] * S)
        out[n] = w * (1 - ae * d[n]) - ae * r[n] * S
        S += r[n] * w
    return out, ab * S


def m_solve(D, s, c, b):
    """(diag(D) + c M) z = b with M_lk = 1 (k <= l), s_l s_k (k > l), by the Riccati sweep of the
    kernel: rho (G_l = rho_l F_l + tau_l), tau (reverse), then F (forward). Returns z, m = M z,
    F_total and G_{-1} = tau_{-1}."""
    N = len(b)
    rho = np.zeros(N + 1)  # rho[l + 1] = rho_l, rho[0] = rho_{-1}
    tau = np.zeros(N + 1)
    for l in range(N - 1, -1, -1):
        den = D[l] + c + c * s[l] * rho[l + 1]
        rho[l] = ((D[l] - c) * rho[l + 1] - c * s[l]) / den
        tau[l] = (D[l] * tau[l + 1] + (rho[l + 1] + s[l]) * b[l]) / den
    z, m, F = np.empty(N), np.empty(N), 0.0
    for l in range(N):
        G = rho[l] * F + tau[l]
        z[l] = (b[l] - c * (F + s[l] * G)) / D[l]
        F += z[l]
        m[l] = F + s[l] * (rho[l + 1] * F + tau[l + 1])
    return z, m, F, tau[0]


def m_apply(s, u):
    """M u (the matvec the kernel carries between steps), M as in m_solve."""
    F = np.cumsum(u)
    G = np.concatenate([np.cumsum((s * u)[::-1])[::-1][1:], [0.0]])
    return F + s * G


def par_fwd(k, x, f, coef):
    """LegT: logical order = n, A = -(1/theta) R M R; LMU: logical order reversed, A = -Q M^T."""
    r, s, th = k["r"], k["s"], k["theta"]
    ai, ae, ab = coef
    if np.isinf(ai):
        y = np.zeros_like(x)
        y[0] = f
        return y
    if k["measure"] == "legt":
        D, c = 1 / r**2, ai / th
        m = m_apply(s, r * x)
        b = x / r - ae / th * m + ab * f / th
        z, *_ = m_solve(D, s, c, b)
        return z / r
    rev = slice(None, None, -1)
    D, c = th / r**2, ai
    m = m_apply(s[rev], x[rev])[rev]
    b = x * D - ae * m + ab * f * s
    z, *_ = m_solve(D[rev], s[rev], c, b[rev])
    return z[rev]


def par_adj(k, lam, coef):
    r, s, th = k["r"], k["s"], k["theta"]
    ai, ae, ab = coef
    if np.isinf(ai):
        return np.zeros_like(lam), lam[0]
    rev = slice(None, None, -1)
    if k["measure"] == "legt":
        D, c = 1 / r**2, ai / th
        z, m, Ft, _ = m_solve(D[rev], s[rev], c, (lam / r)[rev])
        w = z[rev] / r
        return w - ae / th * r * m[rev], ab * Ft / th
    D, c = th / r**2, ai
    v, m, _, tau = m_solve(D, s, c, lam)
    return v * D - ae * m, ab * tau


CASES = [("legs", {}), ("lagt", {"beta": 1.0}), ("lagt", {"beta": 0.0}), ("legt", {"theta": 1.7}),
         ("lmu", {"theta": 0.8})]


@pytest.mark.parametrize("measure,kw", CASES)
@pytest.mark.parametrize("N", [1, 2, 5, 8])
@pytest.mark.parametrize("coef", [(0.05, 0.05, 0.1), (0.3, 0.0, 0.3), (0.0, 0.2, 0.2), (0.5, 1.5, 0.7)])
def test_step_and_adjoint_match_dense(measure, kw, N, coef):
    rng = np.random.default_rng(N)
    A, B = dense(measure, N, **kw)
    k = consts(measure, N, **kw)
    fwd, adj = (tri_fwd, tri_adj) if measure in ("legs", "lagt") else (par_fwd, par_adj)
    ai, ae, ab = coef
    I = np.eye(N)
    Ai = I - ai * A
    x, f, lam = rng.standard_normal(N), rng.standard_normal(), rng.standard_normal(N)
    want = np.linalg.solve(Ai, (I + ae * A) @ x + ab * B * f)
    np.testing.assert_allclose(fwd(k, x, f, coef), want, rtol=1e-10, atol=1e-10)
    w = np.linalg.solve(Ai.T, lam)
    got_lam, got_gf = adj(k, lam, coef)
    np.testing.assert_allclose(got_lam, (I + ae * A).T @ w, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got_gf, ab * B @ w, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("measure,kw", CASES)
def test_reset_row(measure, kw):
    k = consts(measure, 4, **kw)
    fwd, adj = (tri_fwd, tri_adj) if measure in ("legs", "lagt") else (par_fwd, par_adj)
    row = (np.inf, 0.0, 0.0)
    np.testing.assert_array_equal(fwd(k, np.ones(4), 2.5, row), [2.5, 0, 0, 0])
    lam, gf = adj(k, np.arange(1.0, 5.0), row)
    assert gf == 1.0 and not lam.any()


@pytest.mark.parametrize("measure", ["legt", "lmu"])
@pytest.mark.parametrize("a", [1e-3, 0.05, 1.0, 20.0])
def test_par_sweep_is_stable_for_large_n_and_steps(measure, a):
    # Sherman-Morrison on the nilpotent triangular part (the first design) overflowed float64 here
    # already at N = 64, a = 0.05; the sweep keeps |rho| <= 1 and its error tracks the conditioning
    # of I - a A (whose symmetric part is >= I).
    N = 512
    A, B = dense(measure, N)
    k = consts(measure, N)
    x = np.random.default_rng(0).standard_normal(N)
    want = np.linalg.solve(np.eye(N) - a * A, (np.eye(N) + a * A) @ x + a * B)
    got = par_fwd(k, x, 1.0, (a, a, a))
    assert np.abs(got - want).max() <= 1e-9 * np.abs(want).max()


def test_sweep_returns_the_carried_matvec():
    N = 9
    s = (-1.0) ** np.arange(N)
    b = np.random.default_rng(2).standard_normal(N)
    z, m, F, G = m_solve(1 / (2 * np.arange(N) + 1.0), s, 0.7, b)
    np.testing.assert_allclose(m, m_apply(s, z), rtol=1e-12, atol=1e-12)
    assert np.isclose(F, z.sum()) and np.isclose(G, (s * z).sum())
