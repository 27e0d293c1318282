"""hippo_rs.transition against the paper's closed forms, the measures' defining projections, and the
conventions of the other public implementations (as docs/conventions.md states them)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st

import hippo_rs
from reference import MEASURE_DEFAULTS, transition_ref

positive = st.floats(0.05, 20.0)


@st.composite
def measure_and_params(draw):
    measure = draw(st.sampled_from(sorted(MEASURE_DEFAULTS)))
    params = {}
    if measure in ("legt", "lmu", "fout", "chebt"):
        params["theta"] = draw(positive)
    elif measure == "lagt":
        params["beta"] = draw(st.floats(0.0, 5.0))
    elif measure == "glagt":
        params["alpha"] = draw(st.floats(-0.95, 0.95))
        params["beta"] = draw(st.floats(0.01, 5.0))
    return measure, params


@settings(max_examples=120, deadline=None)
@given(measure_and_params(), st.integers(1, 256))
def test_matches_closed_forms(mp, N):
    measure, params = mp
    A, B = hippo_rs.transition(measure, N, **params)
    A_ref, B_ref = transition_ref(measure, N, **params)
    assert A.shape == (N, N) and B.shape == (N,) and A.dtype == B.dtype == np.float64
    # Entries are sums of a few O(1) terms: relative to the largest entry, 1e-12 covers rounding.
    np.testing.assert_allclose(A, A_ref, rtol=1e-12, atol=1e-12 * np.abs(A_ref).max())
    np.testing.assert_allclose(B, B_ref, rtol=1e-12, atol=1e-12 * np.abs(B_ref).max())


@pytest.mark.parametrize("measure", sorted(MEASURE_DEFAULTS))
def test_defaults_are_the_documented_ones(measure):
    A, B = hippo_rs.transition(measure, 7)
    A_ref, B_ref = transition_ref(measure, 7)
    np.testing.assert_allclose(A, A_ref, atol=1e-13)
    np.testing.assert_allclose(B, B_ref, atol=1e-13)


@pytest.mark.parametrize("N", [1, 2, 5, 17, 64, 256])
def test_legs_eigenvalues_are_minus_one_to_minus_n(N):
    A, _ = hippo_rs.transition("legs", N)
    assert np.array_equal(np.triu(A, 1), np.zeros((N, N)))  # lower triangular: eigenvalues = diagonal
    assert np.array_equal(np.diag(A), -np.arange(1, N + 1, dtype=np.float64))
    if N <= 17:  # LegS's eigenvectors are badly conditioned; check the numerics where they are usable
        np.testing.assert_allclose(np.sort(np.linalg.eigvals(A).real), -np.arange(N, 0, -1), rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["legs", "legt", "lmu"]), st.integers(1, 256), positive)
def test_column_zero_is_minus_b(measure, N, theta):
    params = {} if measure == "legs" else {"theta": theta}
    A, B = hippo_rs.transition(measure, N, **params)
    np.testing.assert_allclose(A[:, 0], -B, rtol=1e-14, atol=0)


# --- the measures' defining projections ---------------------------------------------------------

GAUSS_X, GAUSS_W = np.polynomial.legendre.leggauss(200)


def _legendre_basis(N, x):
    """sqrt(2n+1) P_n(x), n = 0..N-1, for x in [-1, 1] (shape (N, len(x)))."""
    return np.array([np.sqrt(2 * n + 1) * scipy.special.eval_legendre(n, x) for n in range(N)])


@pytest.mark.parametrize("N", [1, 4, 9])
def test_legs_ode_holds_for_exact_projections(N):
    """c_n(t) = (1/t) int_0^t f(x) sqrt(2n+1) P_n(2x/t - 1) dx satisfies t dc/dt = A c + B f(t) exactly
    (paper Thm 1), for any f: checked with f = sin(3x) + x^2 and dc/dt by the derivative of the integral."""
    f = lambda x: np.sin(3 * x) + x**2  # noqa: E731
    df = lambda x: 3 * np.cos(3 * x) + 2 * x  # noqa: E731
    A, B = hippo_rs.transition("legs", N)
    basis = _legendre_basis(N, GAUSS_X)
    for t in [0.5, 1.0, 3.0]:
        # Substituting x = t u: c(t) = int_0^1 f(t u) phi(2u - 1) du, dc/dt = int_0^1 u f'(t u) phi du.
        u = (GAUSS_X + 1) / 2
        c = basis @ (GAUSS_W / 2 * f(t * u))
        dc = basis @ (GAUSS_W / 2 * u * df(t * u))
        np.testing.assert_allclose(t * dc, A @ c + B * f(t), atol=1e-10)


@pytest.mark.parametrize("measure", ["legt", "lmu"])
@pytest.mark.parametrize("N", [3, 8])
def test_legt_ode_is_exact_for_polynomials_below_order_n(measure, N):
    """LegT's derivation replaces f(t - theta) by its reconstruction, which is exact for polynomials of
    degree < N: then dc/dt = A c + B f(t) holds exactly with c the projection on [t - theta, t]."""
    theta = 2.5
    rng = np.random.default_rng(N)
    poly = np.polynomial.Polynomial(rng.standard_normal(N))
    A, B = hippo_rs.transition(measure, N, theta=theta)
    s = theta * (GAUSS_X + 1) / 2  # s = t - x in [0, theta]
    if measure == "legt":
        basis = _legendre_basis(N, 1 - 2 * s / theta) / theta  # c_n = (1/theta) int f sqrt(2n+1) P_n(1-2s/theta)
    else:
        # LMU: f(t - s) = sum c_n P_n(2s/theta - 1), so c_n = (2n+1)/theta int f P_n(2s/theta - 1) ds.
        basis = np.array(
            [(2 * n + 1) * scipy.special.eval_legendre(n, 2 * s / theta - 1) for n in range(N)]
        ) / theta
    weights = GAUSS_W * theta / 2
    for t in [0.0, 1.3]:
        c = basis @ (weights * poly(t - s))
        dc = basis @ (weights * poly.deriv()(t - s))
        np.testing.assert_allclose(dc, A @ c + B * poly(t), rtol=1e-9, atol=1e-9 * np.abs(dc).max())


@pytest.mark.parametrize("N", [1, 5, 9])
def test_fout_ode_is_exact_for_trigonometric_polynomials(N):
    """With f periodic of period theta and frequencies representable by the basis, f(t - theta) = f(t)
    equals its reconstruction, so dc/dt = A c + B f(t) holds exactly for the projection
    c_k = (1/theta) int_0^theta f(t - s) phi_k(s) ds, phi = [1, sqrt2 cos(w_j s), sqrt2 sin(w_j s), ...]."""
    theta = 1.7
    K = (N - 1) // 2
    rng = np.random.default_rng(N)
    a, b = rng.standard_normal(K + 1), rng.standard_normal(K + 1)
    w = 2 * np.pi * np.arange(K + 1) / theta
    f = lambda x: sum(a[j] * np.cos(w[j] * x) + b[j] * np.sin(w[j] * x) for j in range(K + 1))  # noqa: E731
    df = lambda x: sum(w[j] * (b[j] * np.cos(w[j] * x) - a[j] * np.sin(w[j] * x)) for j in range(K + 1))  # noqa: E731
    s = np.linspace(0, theta, 4096, endpoint=False)  # the trapezoid rule is exact for trig polynomials
    phi = [np.ones_like(s)]
    for j in range(1, K + 1):
        phi += [np.sqrt(2) * np.cos(w[j] * s), np.sqrt(2) * np.sin(w[j] * s)]
    phi = np.array(phi[:N])
    A, B = hippo_rs.transition("fout", N, theta=theta)
    for t in [0.0, 0.4]:
        c = phi @ f(t - s) / s.size
        dc = phi @ df(t - s) / s.size
        np.testing.assert_allclose(dc, A @ c + B * f(t), atol=1e-9)


def test_legs_oracles_for_t_and_t_squared():
    """Reference notes s.3: f(t) = t -> c = t [1/2, sqrt3/6, 0, ...]; f(t) = t^2 -> t^2 [1/3, sqrt3/6,
    sqrt5/30, 0, ...]. With c = t v, t dc/dt = A c + B f gives A v + B = v; with c = t^2 w, 2w = A w + B."""
    N = 6
    A, B = hippo_rs.transition("legs", N)
    v = np.array([1 / 2, np.sqrt(3) / 6, 0, 0, 0, 0])
    w = np.array([1 / 3, np.sqrt(3) / 6, np.sqrt(5) / 30, 0, 0, 0])
    np.testing.assert_allclose(A @ v + B, v, atol=1e-14)
    np.testing.assert_allclose(A @ w + B, 2 * w, atol=1e-14)


# --- other public implementations, through the conversions in docs/conventions.md ----------------


def _hippo_code_style(measure, N, **args):
    """The original hippo-code and state-spaces conventions, written out from their definitions:
    lagt: A = I/2 - tril(ones), B = b*1; tlagt(beta): A = (1-beta)/2 I - tril(ones), B = beta*1;
    legt: A_nk = -sqrt(2n+1)sqrt(2k+1) (1 if k <= n else (-1)^(n-k)), B = sqrt(2n+1) (theta = 1);
    state-spaces legt = that halved; glagt defaults beta = 0.01."""
    n = np.arange(N)
    if measure == "lagt":
        return np.eye(N) / 2 - np.tril(np.ones((N, N))), args.get("b", 1.0) * np.ones(N)
    if measure == "tlagt":
        beta = args["beta"]
        return (1 - beta) / 2 * np.eye(N) - np.tril(np.ones((N, N))), beta * np.ones(N)
    if measure in ("legt", "ss_legt"):
        r = np.sqrt(2 * n + 1)
        row, col = np.meshgrid(n, n, indexing="ij")
        A = -np.outer(r, r) * np.where(row < col, (-1.0) ** ((row - col) % 2), 1.0)
        return (A / 2, r / 2) if measure == "ss_legt" else (A, r)
    raise KeyError(measure)


def test_conversions_to_other_public_implementations():
    N = 12
    A, B = hippo_rs.transition("lagt", N, beta=0.0)
    A_code, B_code = _hippo_code_style("lagt", N)
    np.testing.assert_allclose(A, A_code, atol=1e-15)
    np.testing.assert_allclose(B, B_code, atol=1e-15)
    for beta in [0.3, 1.0, 2.0]:
        A, B = hippo_rs.transition("lagt", N, beta=beta)
        A_code, B_code = _hippo_code_style("tlagt", N, beta=beta)
        np.testing.assert_allclose(A, A_code, atol=1e-15)
        np.testing.assert_allclose(beta * B, B_code, atol=1e-15)
    A, B = hippo_rs.transition("legt", N)
    A_code, B_code = _hippo_code_style("legt", N)
    np.testing.assert_allclose(A, A_code, atol=1e-13)
    np.testing.assert_allclose(B, B_code, atol=1e-13)
    A, B = hippo_rs.transition("legt", N, theta=2.0)
    A_ss, B_ss = _hippo_code_style("ss_legt", N)
    np.testing.assert_allclose(A, A_ss, atol=1e-13)
    np.testing.assert_allclose(B, B_ss, atol=1e-13)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 128), positive)
def test_lmu_is_legt_in_another_basis(N, theta):
    """A_lmu = S A_legt S^-1, B_lmu = S B_legt with S = diag((-1)^n sqrt(2n+1))."""
    A_t, B_t = hippo_rs.transition("legt", N, theta=theta)
    A_l, B_l = hippo_rs.transition("lmu", N, theta=theta)
    s = (-1.0) ** np.arange(N) * np.sqrt(2 * np.arange(N) + 1)
    np.testing.assert_allclose(A_l, s[:, None] * A_t / s[None, :], rtol=1e-12, atol=1e-12 * np.abs(A_l).max())
    np.testing.assert_allclose(B_l, s * B_t, rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 64), st.floats(0.01, 5.0))
def test_glagt_with_alpha_zero_is_lagt(N, beta):
    A_g, B_g = hippo_rs.transition("glagt", N, alpha=0.0, beta=beta)
    A_l, B_l = hippo_rs.transition("lagt", N, beta=beta)
    np.testing.assert_allclose(A_g, A_l, atol=1e-14)
    np.testing.assert_allclose(B_g, np.sqrt(beta) * B_l, rtol=1e-13)
