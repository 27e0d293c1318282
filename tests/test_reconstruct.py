"""hippo_rs.reconstruct against independent scipy evaluations and against the measures' dynamics."""

import numpy as np
import pytest
import scipy.special as ss
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import expm

import hippo_rs
from hippo_rs import _core

RNG = np.random.default_rng(1234)


def scipy_basis(measure, N, times, t, **p):
    """(N, P) basis values from scipy.special, written from docs/conventions.md's table."""
    n = np.arange(N)[:, None]
    tau = np.asarray(times, dtype=np.float64)[None, :]
    s = t - tau
    theta = p.get("theta", 1.0)
    if measure == "legs":
        return np.sqrt(2 * n + 1) * ss.eval_legendre(n, 2 * tau / t - 1)
    if measure == "legt":
        return np.sqrt(2 * n + 1) * ss.eval_legendre(n, 1 - 2 * s / theta)
    if measure == "lmu":
        return ss.eval_legendre(n, 2 * s / theta - 1) + 0 * n
    if measure == "fout":
        j = (n + 1) // 2
        w = 2 * np.pi * j * s / theta
        return np.where(n == 0, 1.0, np.sqrt(2) * np.where(n % 2 == 1, np.cos(w), np.sin(w)))
    if measure == "lagt":
        beta = p.get("beta", 1.0)
        return np.exp(-(1 - beta) * s / 2) * ss.eval_genlaguerre(n, 0, s)
    if measure == "glagt":
        a, beta = p.get("alpha", 0.0), p.get("beta", 1.0)
        lam = np.sqrt(ss.gamma(n + a + 1) / ss.gamma(n + 1))
        kappa = np.sqrt(ss.gamma(1 - a)) * beta ** (-(1 - a) / 2)
        return kappa * s**a * np.exp(-(1 - beta) * s / 2) * ss.eval_genlaguerre(n, a, s) / lam
    raise ValueError(measure)


CASES = [
    ("legs", {}, 0.0, 7.0),
    ("legt", {"theta": 2.5}, 4.5, 7.0),
    ("lmu", {"theta": 2.5}, 4.5, 7.0),
    ("fout", {"theta": 2.5}, 4.5, 7.0),
    ("lagt", {"beta": 1.0}, -5.0, 7.0),
    ("lagt", {"beta": 0.0}, -13.0, 7.0),
    ("glagt", {"alpha": 0.4, "beta": 0.6}, -6.0, 7.0),
    ("glagt", {"alpha": -0.3, "beta": 1.5}, -6.0, 7.0),  # singular at s = 0: times stop short of t
]


@pytest.mark.parametrize("measure,params,lo,t", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_scipy_evaluation(measure, params, lo, t, dtype):
    N = 23
    c = RNG.standard_normal((2, 3, N)) / (1 + np.arange(N))
    times = np.linspace(lo, t - 1e-3 if params.get("alpha", 0) < 0 else t, 101)
    got = hippo_rs.reconstruct(measure, c.astype(dtype), times, t=t, **params)
    assert got.shape == (2, 3, 101) and got.dtype == dtype
    want = c @ scipy_basis(measure, N, times, t, **params)
    tol = 1e-10 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 60), degree=st.integers(0, 59), t=st.floats(0.01, 1e4), seed=st.integers(0, 2**31))
def test_legs_reproduces_polynomials_of_degree_below_N(N, degree, t, seed):
    # Exact LegS coefficients c_n = (1/t) int_0^t f(x) sqrt(2n+1) P_n(2x/t - 1) dx by Gauss-Legendre.
    degree = min(degree, N - 1)
    p = np.random.default_rng(seed).standard_normal(degree + 1)
    f = lambda x: np.polynomial.legendre.legval(2 * x / t - 1, p)  # noqa: E731
    u, w = np.polynomial.legendre.leggauss(N + 1)
    x = (u + 1) * t / 2
    n = np.arange(N)[:, None]
    c = (np.sqrt(2 * n + 1) * ss.eval_legendre(n, u) * w * f(x)).sum(axis=1) / 2
    times = np.linspace(0, t, 57)
    np.testing.assert_allclose(
        hippo_rs.reconstruct("legs", c, times, t=t), f(times), atol=1e-11 * max(1, np.abs(p).sum())
    )


def projection(measure, N, t, f, **p):
    """Least-squares coefficients of f over the window, uniform weight (Gauss-Legendre), basis from
    hippo_rs.reconstruct itself: the coefficients the measure's dynamics should carry."""
    lo = 0.0 if measure == "legs" else t - p["theta"]
    u, w = np.polynomial.legendre.leggauss(4 * N)
    x = lo + (u + 1) * (t - lo) / 2
    Phi = hippo_rs.reconstruct(measure, np.eye(N), x, t=t, **p)  # (N, P) basis values
    G = (Phi * w) @ Phi.T
    return np.linalg.solve(G, (Phi * w) @ f(x))


@pytest.mark.parametrize(
    "measure,params,f",
    [
        ("legs", {}, lambda x: 0.3 - 0.2 * x + 0.05 * x**3),
        ("legt", {"theta": 1.7}, lambda x: 1 + x - 0.4 * x**2 + 0.1 * x**5),
        ("lmu", {"theta": 1.7}, lambda x: 1 + x - 0.4 * x**2 + 0.1 * x**5),
        ("fout", {"theta": 1.7}, lambda x: 0.5 + np.cos(2 * np.pi * x / 1.7) - 0.3 * np.sin(4 * np.pi * x / 1.7)),
    ],
)
def test_basis_is_the_one_the_transition_matrices_evolve(measure, params, f):
    # For f in the span (polynomials of degree < N; theta-periodic trigonometric polynomials for fout)
    # the HiPPO ODE is exact: d/dt proj(t) = A proj(t) + B f(t) (divided by t for legs), with A, B from
    # measure.rs. This pins the normalisation and the signs of the reconstruction to the dynamics.
    N = 8
    A, B = hippo_rs.transition(measure, N, **params)
    t, h = 3.0, 1e-4
    c = projection(measure, N, t, f, **params)
    dc = (projection(measure, N, t + h, f, **params) - projection(measure, N, t - h, f, **params)) / (2 * h)
    rhs = A @ c + B * f(t)
    if measure == "legs":
        rhs /= t
    np.testing.assert_allclose(dc, rhs, atol=1e-6 * np.abs(rhs).max())
    # ... and the projection reproduces f on the window.
    lo = 0.0 if measure == "legs" else t - params["theta"]
    x = np.linspace(lo, t, 33)
    np.testing.assert_allclose(hippo_rs.reconstruct(measure, c, x, t=t, **params), f(x), atol=1e-9)


@pytest.mark.parametrize(
    "measure,params", [("lagt", {"beta": 1.0}), ("lagt", {"beta": 0.3}), ("glagt", {"alpha": 0.35, "beta": 0.8})]
)
def test_laguerre_basis_is_dual_to_the_impulse_response(measure, params):
    # c(t) = int_0^inf f(t - s) K(s) ds with K(s) = e^{sA} B (the response to an impulse s ago);
    # the reconstruction functions g_m must satisfy int K_n g_m ds = delta_nm.
    N = 6
    A, B = hippo_rs.transition(measure, N, **params)
    a = params.get("alpha", 0.0)
    # Gauss-Laguerre for weight s^a e^{-s}: int h(s) ds = sum w_i e^{s_i} s_i^-a h(s_i).
    s, w = ss.roots_genlaguerre(20, a)
    K = np.stack([expm(si * A) @ B for si in s], axis=1)  # (N, P)
    g = hippo_rs.reconstruct(measure, np.eye(N), -s, t=0.0, **params)  # times = -s at t = 0
    M = (K * (w * np.exp(s) * s**-a)) @ g.T
    np.testing.assert_allclose(M, np.eye(N), atol=1e-9)


def test_adjoint_is_the_transpose():
    N, P = 17, 40
    c = RNG.standard_normal((3, N))
    y = RNG.standard_normal((3, P))
    times = np.linspace(-2.0, 1.0, P)
    for measure, params in [
        ("legs", []),
        ("legt", [("theta", 3.0)]),
        ("lagt", [("beta", 0.5)]),
        ("fout", [("theta", 3.0)]),
    ]:
        t = 1.0
        tt = np.linspace(0, 1, P) if measure == "legs" else times
        fc = _core.reconstruct(measure, params, c, tt, t)
        g = _core.reconstruct_adjoint(measure, params, y, tt, t, N)
        np.testing.assert_allclose((fc * y).sum(), (c * g).sum(), rtol=1e-12)


def test_float32_within_1e_4_of_float64_at_N_1024():
    N = 1024
    c = (RNG.standard_normal(N) / np.sqrt(1 + np.arange(N))).astype(np.float32)
    times = np.linspace(0.0, 1.0, 100_000)
    a = hippo_rs.reconstruct("legs", c.astype(np.float64), times)
    b = hippo_rs.reconstruct("legs", c, times)
    assert b.dtype == np.float32
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 1e-4


def test_stable_for_thousands_of_coefficients():
    # P_n(x) for n = 4000 stays bounded by 1 (no blow-up of the recurrence), and matches scipy.
    N = 4001
    c = np.zeros(N)
    c[-1] = 1.0 / np.sqrt(2 * N - 1)
    x = np.linspace(0, 1, 501)
    got = hippo_rs.reconstruct("legs", c, x)
    np.testing.assert_allclose(got, ss.eval_legendre(N - 1, 2 * x - 1), atol=1e-11)


def test_defaults_shapes_and_dtypes():
    c = np.array([1.0, 0.5])
    assert hippo_rs.reconstruct("legs", c, 1.0).shape == ()
    assert hippo_rs.reconstruct("legs", c, [0.0, 1.0]).tolist() == pytest.approx(
        [1 - 0.5 * np.sqrt(3), 1 + 0.5 * np.sqrt(3)]
    )
    # default t: legs 1, windowed theta, Laguerre 0
    assert hippo_rs.reconstruct("legt", c, [0.0, 2.0], theta=2.0).shape == (2,)
    assert hippo_rs.reconstruct("lagt", c, [-3.0, 0.0]).shape == (2,)
    assert hippo_rs.reconstruct("legs", np.array([1, 0]), [0.5]).dtype == np.float64
    assert hippo_rs.reconstruct("legs", np.zeros((0, 4)), [0.5]).shape == (0, 1)
    assert hippo_rs.reconstruct("legs", c, np.zeros(0)).shape == (0,)


@pytest.mark.parametrize(
    "kwargs,exc,word",
    [
        (dict(measure="legs", c=[1.0], times=[1.5], t=1.0), ValueError, "times"),
        (dict(measure="legt", c=[1.0], times=[0.5], t=5.0, theta=2.0), ValueError, "times"),
        (dict(measure="lagt", c=[1.0], times=[0.5], t=0.0), ValueError, "times"),
        (dict(measure="legs", c=[1.0], times=[np.nan], t=1.0), ValueError, "times"),
        (dict(measure="legs", c=[1.0], times=[0.5], t=-1.0), ValueError, "t"),
        (dict(measure="legs", c=[1.0], times=[0.5], t=np.inf), ValueError, "t"),
        (dict(measure="chebt", c=[1.0], times=[0.5]), ValueError, "measure"),
        (dict(measure="nope", c=[1.0], times=[0.5]), ValueError, "measure"),
        (dict(measure="legs", c=[1.0], times=[0.5], theta=1.0), ValueError, "theta"),
        (dict(measure="legs", c=[1j], times=[0.5]), TypeError, "c"),
        (dict(measure="legs", c=np.zeros((2, 0)), times=[0.5]), ValueError, "c"),
        (dict(measure="legs", c=[1.0], times=[["a"]]), TypeError, "times"),
        (dict(measure="legs", c=[1.0], times=np.zeros((2, 2))), ValueError, "times"),
        (dict(measure=3, c=[1.0], times=[0.5]), TypeError, "measure"),
    ],
)
def test_errors_name_the_argument(kwargs, exc, word):
    measure, c, times = kwargs.pop("measure"), kwargs.pop("c"), kwargs.pop("times")
    with pytest.raises(exc, match=f"^{word}"):
        hippo_rs.reconstruct(measure, c, times, **kwargs)
