"""The O(N) structured operators against dense float64 matrices, and their adjoint identities.

`_core.structured_apply` is a test hook running one Rust operator on each row of x:
"mul" (I + dA)x, "solve" (I - dA)^{-1}x, "mul_t" (I + dA)^T x, "solve_t" (I - dA)^{-T}x.
Dense oracle: A from `hippo_rs.transition` (itself tested against tests/reference.py), numpy LA.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hippo_rs
from hippo_rs import _core

MEASURES = [
    ("legs", {}),
    ("legt", {"theta": 1.0}),
    ("legt", {"theta": 2.5}),
    ("lmu", {"theta": 0.7}),
    ("lagt", {"beta": 1.0}),
    ("lagt", {"beta": 0.0}),
    ("glagt", {"alpha": 0.3, "beta": 0.5}),
    ("fout", {"theta": 1.3}),
    ("chebt", {"theta": 1.0}),
]


def dense_ops(A, d):
    I = np.eye(A.shape[0])
    M, K = I + d * A, I - d * A
    return {
        "mul": lambda x: x @ M.T,
        "mul_t": lambda x: x @ M,
        "solve": lambda x: np.linalg.solve(K, x.T).T,
        "solve_t": lambda x: np.linalg.solve(K.T, x.T).T,
    }


@settings(max_examples=60, deadline=None)
@given(
    case=st.sampled_from(MEASURES),
    N=st.one_of(st.integers(1, 9), st.integers(10, 200)),
    d=st.sampled_from([0.0, 1e-3, 0.05, 0.5, 3.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_operators_match_dense(case, N, d, seed):
    measure, params = case
    if measure == "chebt":
        # ChebT's I - dA is unit lower triangular with entries up to 4N d/theta: its inverse grows like
        # (4 N d)^N, so a float64 comparison of the solves is only meaningful for small N d.
        d = min(d, 0.1 / N)
    A, _ = hippo_rs.transition(measure, N, **params)
    x = np.random.default_rng(seed).standard_normal((3, N))
    dense = dense_ops(A, d)
    for op in ("mul", "mul_t", "solve", "solve_t"):
        got = _core.structured_apply(measure, params, x, d, op)
        want = dense[op](x)
        # Backward-error check for the solves: residual of the dense system at the O(N) solution,
        # relative to |K| |y| (float64 rounding of O(N) running sums: a few N eps).
        if op.startswith("solve"):
            K = np.eye(N) - d * A
            K = K if op == "solve" else K.T
            resid = np.abs(got @ K.T - x).max()
            scale = (np.abs(K).sum(1).max()) * np.abs(got).max() + np.abs(x).max()
            assert resid <= 50 * N * np.finfo(float).eps * scale, (measure, op, resid, scale)
        else:
            scale = (1 + d * np.abs(A).sum(1).max()) * np.abs(x).max()
            np.testing.assert_allclose(got, want, rtol=0, atol=50 * N * np.finfo(float).eps * scale)


@pytest.mark.parametrize("measure,params", MEASURES)
@pytest.mark.parametrize("N", [1, 2, 3, 16, 33, 512])
def test_transposes_are_adjoint(measure, params, N):
    rng = np.random.default_rng(N)
    x, y = rng.standard_normal((2, 1, N))
    d = 0.02 / N if measure == "chebt" else 0.02
    for op, op_t in (("mul", "mul_t"), ("solve", "solve_t")):
        mx = _core.structured_apply(measure, params, x, d, op)
        mty = _core.structured_apply(measure, params, y, d, op_t)
        lhs, rhs = float((y @ mx.T)[0, 0]), float((mty @ x.T)[0, 0])
        assert abs(lhs - rhs) <= 1e-10 * max(1.0, np.abs(mx).max() * np.abs(y).sum(), np.abs(mty).max() * np.abs(x).sum())


def test_hook_errors():
    with pytest.raises(ValueError, match="op"):
        _core.structured_apply("legs", {}, np.zeros((1, 3)), 0.1, "nope")
    with pytest.raises(ValueError, match="N >= 1"):
        _core.structured_apply("legs", {}, np.zeros((1, 0)), 0.1, "mul")
    with pytest.raises(TypeError, match="x"):
        _core.structured_apply("legs", {}, np.zeros((1, 3), np.float32), 0.1, "mul")
