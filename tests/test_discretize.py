"""hippo_rs.discretize and hippo_rs.legs_step_matrices against the reference math and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

import hippo_rs
from reference import MEASURE_DEFAULTS, discretize_ref, legs_step_ref, transition_ref

METHODS = ["forward_euler", "backward_euler", "bilinear", "gbt", "zoh"]
SCIPY_METHOD = {"forward_euler": "euler", "backward_euler": "backward_diff", "bilinear": "bilinear"}


def _rel_err(x, ref):
    return np.abs(x - ref).max() / max(np.abs(ref).max(), 1e-300)


@st.composite
def lti_case(draw, max_n=96):
    measure = draw(st.sampled_from(sorted(set(MEASURE_DEFAULTS) - {"legs"})))
    N = draw(st.integers(1, max_n))
    dt = draw(st.floats(1e-4, 1.0))
    method = draw(st.sampled_from(METHODS))
    alpha = draw(st.floats(0.0, 1.0)) if method == "gbt" else None
    return measure, N, dt, method, alpha


def _cond_bound(A, dt, method, alpha):
    """Forward-error scale of the dense reference: rounding (~1e-16) times the condition number of the
    matrix the GBT inverts (I - alpha dt A); ZOH's exponential is accurate to rounding times ||dt A||."""
    if method == "zoh":
        return 1.0 + np.linalg.norm(dt * A, 1)
    a = {"forward_euler": 0.0, "backward_euler": 1.0, "bilinear": 0.5}.get(method, alpha)
    return np.linalg.cond(np.eye(A.shape[0]) - a * dt * A, 1)


@settings(max_examples=80, deadline=None)
@given(lti_case())
def test_discretize_matches_reference(case):
    measure, N, dt, method, alpha = case
    A, B = transition_ref(measure, N)
    Ad, Bd = hippo_rs.discretize(A, B, dt=dt, method=method, gbt_alpha=alpha)
    Ad_ref, Bd_ref = discretize_ref(A, B, dt, method, alpha)
    tol = 1e-13 * _cond_bound(A, dt, method, alpha)
    # Normwise forward error of the whole discretised system [Ad, Bd] (both come from one solve or one
    # exponential of the augmented matrix, so they share its error scale).
    scale = max(np.abs(Ad_ref).max(), np.abs(Bd_ref).max())
    assert np.abs(Ad - Ad_ref).max() < tol * scale
    assert np.abs(Bd - Bd_ref).max() < tol * scale


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # ChebT at large dt: cond ~ 1e70
@settings(max_examples=60, deadline=None)
@given(lti_case(max_n=48))
def test_discretize_matches_scipy_cont2discrete(case):
    measure, N, dt, method, alpha = case
    A, B = hippo_rs.transition(measure, N)
    C, D = np.eye(1, N), np.zeros((1, 1))
    kwargs = {"alpha": alpha} if method == "gbt" else {}
    Ad_sp, Bd_sp, *_ = scipy.signal.cont2discrete((A, B[:, None], C, D), dt, SCIPY_METHOD.get(method, method), **kwargs)
    Ad, Bd = hippo_rs.discretize(A, B[:, None], dt=dt, method=method, gbt_alpha=alpha)
    assert Bd.shape == (N, 1)
    tol = 1e-12 * _cond_bound(A, dt, method, alpha)
    scale = max(np.abs(Ad_sp).max(), np.abs(Bd_sp).max())
    assert np.abs(Ad - Ad_sp).max() < tol * scale
    assert np.abs(Bd - Bd_sp).max() < tol * scale


@pytest.mark.parametrize("dt", [1e-8, 0.3, 10.0, 300.0])
@pytest.mark.parametrize("measure", ["legt", "lmu", "fout", "lagt"])
def test_zoh_is_accurate_also_for_large_steps(measure, dt):
    """ZOH against a 30-digit mpmath exponential, for ||dt A|| up to ~1e5. Scaling and squaring
    guarantees a normwise error of order eps ||dt A|| (relative to max(1, ||e^{dt A}||)); scipy's expm
    is held to the same bound, so the test also says we are as accurate as scipy."""
    mpmath = pytest.importorskip("mpmath")
    N = 24
    A, B = hippo_rs.transition(measure, N)
    # Augmented system: expm(dt [[A, B], [0, 0]]) = [[Ad, Bd], [0, 1]] (also valid for singular A).
    M = np.zeros((N + 1, N + 1))
    M[:N, :N], M[:N, N] = A, B
    with mpmath.workdps(30):
        exact = np.array(mpmath.expm(mpmath.matrix(dt * M)).tolist(), dtype=np.float64)
    Ad, Bd = hippo_rs.discretize(A, B, dt=dt, method="zoh")
    bound = 1e-15 * (1 + np.linalg.norm(dt * M, 1)) * max(1.0, np.abs(exact).max())
    assert np.abs(Ad - exact[:N, :N]).max() < bound
    assert np.abs(Bd - exact[:N, N]).max() < bound
    assert np.abs(scipy.linalg.expm(dt * M) - exact).max() < bound


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 128),
    st.integers(1, 10**6),
    st.sampled_from(METHODS),
    st.floats(0.0, 1.0),
    st.sampled_from(["original", "paper"]),
)
def test_legs_step_matrices_match_reference(N, t, method, alpha, convention):
    alpha = alpha if method == "gbt" else None
    At, Bt = hippo_rs.legs_step_matrices(N, t=t, method=method, gbt_alpha=alpha, convention=convention)
    At_ref, Bt_ref = legs_step_ref(N, t, method, alpha, convention)
    A, _ = transition_ref("legs", N)
    tol = 1e-12 * _cond_bound(A, 1.0 / t, method, 1.0 if alpha is None else alpha) * (1 + np.log1p(N))
    assert _rel_err(At, At_ref) < tol
    assert _rel_err(Bt, Bt_ref) < tol


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 256), st.integers(1, 10**5), st.sampled_from(METHODS), st.floats(0.0, 1.0),
       st.sampled_from(["original", "paper"]))
def test_constant_input_is_a_fixed_point_of_every_legs_step(N, t, method, alpha, convention):
    """A e0 = -B makes c = e0 a fixed point for f = 1 under every GBT step (and ZOH)."""
    alpha = alpha if method == "gbt" else None
    At, Bt = hippo_rs.legs_step_matrices(N, t=t, method=method, gbt_alpha=alpha, convention=convention)
    e0 = np.eye(N)[0]
    np.testing.assert_allclose(At @ e0 + Bt, e0, atol=1e-11 * (1 + np.log1p(N)))


def test_conventions_differ_and_agree_in_the_limit():
    """The two LegS conventions are different maps at small t and agree as t grows (both O(1/t^2) apart)."""
    At_o, _ = hippo_rs.legs_step_matrices(16, t=1, method="bilinear", convention="original")
    At_p, _ = hippo_rs.legs_step_matrices(16, t=1, method="bilinear", convention="paper")
    assert np.abs(At_o - At_p).max() > 1e-2
    gaps = []
    for t in [100, 1000]:
        At_o, _ = hippo_rs.legs_step_matrices(16, t=t, method="bilinear", convention="original")
        At_p, _ = hippo_rs.legs_step_matrices(16, t=t, method="bilinear", convention="paper")
        gaps.append(np.abs(At_o - At_p).max())
    assert gaps[1] < gaps[0] / 50


def test_bilinear_legs_is_stable_and_forward_euler_is_not_at_small_t():
    """Reference notes s.4: bilinear keeps the LegS step's eigenvalues in (-1, 1) at every t; forward
    Euler's are 1 - (n+1)/t, outside the unit disc for small t."""
    N = 32
    for t in [1, 2, 10, 1000]:
        At, _ = hippo_rs.legs_step_matrices(N, t=t, method="bilinear")
        assert np.abs(np.diag(At)).max() < 1  # lower triangular: eigenvalues on the diagonal
    At, _ = hippo_rs.legs_step_matrices(N, t=1, method="forward_euler")
    assert np.abs(np.diag(At)).max() > 1


def test_legs_zoh_composes_like_the_exact_flow():
    """ZOH at index t is the exact flow over log-time ln((t+1)/t): composing t=1..4 equals ln 5."""
    N = 10
    A, _ = hippo_rs.transition("legs", N)
    total = np.eye(N)
    for t in range(1, 5):
        At, _ = hippo_rs.legs_step_matrices(N, t=t, method="zoh")
        total = At @ total
    np.testing.assert_allclose(total, scipy.linalg.expm(A * np.log(5.0)), atol=1e-12)
