"""Every SIMD code path of the O(N) scans (scalar, AVX2, AVX-512: each one this CPU has, forced in
turn) against the dense float64 recurrence, and bitwise against each other (each form of the step); the blocked form of long
time-invariant scans (LegT, LMU) against the same reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hippo_rs import _core
from reference import gbt_ref, transition_ref

ISAS = ["scalar", "avx2", "avx512"]
PARAMS = {"legs": {}, "legt": {"theta": 1.0}, "lmu": {"theta": 0.8}, "lagt": {"beta": 0.5}, "glagt": {"alpha": 0.3, "beta": 0.6}}


def available(isa):
    try:
        _core._set_isa(isa)
        return True
    except ValueError:
        return False
    finally:
        _core._set_isa(None)


def scan(measure, f, c0, coef, return_all, isa):
    """The Rust scan with the SIMD kernels of `isa`."""
    _core._set_isa(isa)
    try:
        return _core.gbt_scan(measure, PARAMS[measure], f, c0, coef, return_all)
    finally:
        _core._set_isa(None)


def coefficients(measure, L, dt):
    """Bilinear rows (a_i, a_e, a_b): LegS (original convention) from t = 0, whose first row is the
    reset c = f e_0 (paper App. B.3); an LTI measure with step dt."""
    if measure == "legs":
        k = np.arange(1, L, dtype=np.float64)
        return np.vstack([[np.inf, 0.0, 0.0], np.stack([0.5 / k, 0.5 / k, 1.0 / k], axis=1)])
    return np.tile([0.5 * dt, 0.5 * dt, dt], (L, 1))


def dense_scan(measure, f, c0, coef):
    """The same recurrence with dense float64 matrices: c_k = Ad_k c_{k-1} + Bd_k f_k."""
    A, B = transition_ref(measure, c0.shape[1], **PARAMS[measure])
    c = c0.astype(np.float64).copy()
    out = []
    for k, (ai, _, ab) in enumerate(coef):
        if np.isinf(ai):
            c = np.zeros_like(c)
            c[:, 0] = f[k]
        else:
            Ad, Bd = gbt_ref(A, B, ab, ai / ab)
            c = c @ Ad.T + f[k][:, None] * Bd
        out.append(c)
    return np.stack(out)


def single_row_form(measure, L, R, return_all, isa):
    """Whether a scan takes the single-row form of the step (LegS, LagT, GLagT on SIMD CPUs: the final
    state of fewer than 8 rows over many steps): bitwise the same on every SIMD path, and within
    rounding of the scalar path's per-step table form."""
    prefix = measure in ("legs", "lagt", "glagt")
    return prefix and isa != "scalar" and not return_all and R < 8 and L >= _core._ROW_FORM_STEPS


def check_paths(measure, L, R, N, dtype, dt, seed):
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((L, R)).astype(dtype)
    c0 = (0.1 * rng.standard_normal((R, N))).astype(dtype)
    coef = coefficients(measure, L, dt)
    want = dense_scan(measure, f.astype(np.float64), c0.astype(np.float64), coef)
    scale = max(1.0, float(np.abs(want).max()))
    # float64: rounding of O(N) operations per step over L steps; float32: the same in float32's epsilon.
    tol = (1e-12 if dtype == np.float64 else 2e-5) * np.sqrt(L) * N * scale
    first = {}
    for isa in filter(available, ISAS):
        for return_all in (True, False):
            got = scan(measure, f, c0, coef, return_all, isa)
            assert got.dtype == dtype
            np.testing.assert_allclose(got, want if return_all else want[-1], rtol=0, atol=tol, err_msg=isa)
            form = (return_all, single_row_form(measure, L, R, return_all, isa))
            if form in first:
                assert np.array_equal(got, first[form]), f"{isa} differs from the bits of the first path of its form"
            else:
                first[form] = got
        # in place: out holds c0 and receives the final state
        _core._set_isa(isa)
        try:
            state = c0.copy()
            _core.gbt_scan(measure, PARAMS[measure], f, None, coef, False, state)
        finally:
            _core._set_isa(None)
        form = (False, single_row_form(measure, L, R, False, isa))
        assert np.array_equal(state, first[form]), f"{isa} in place differs from the bits out of place"


@pytest.mark.parametrize("measure", ["legs", "legt", "lmu", "glagt"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("L", "R", "N"), [(90, 1, 37), (12, 37, 33), (2, 100, 40), (8, 16, 64), (70, 3, 8)])
def test_every_isa_matches_dense_and_scalar_bits(measure, dtype, L, R, N):
    check_paths(measure, L, R, N, dtype, 0.01, 0)


@settings(max_examples=20, deadline=None)
@given(
    measure=st.sampled_from(["legs", "legt", "lagt"]),
    dtype=st.sampled_from([np.float32, np.float64]),
    L=st.integers(1, 80),
    R=st.integers(1, 20),
    N=st.integers(1, 40),
    dt=st.floats(1e-3, 0.05),
)
def test_every_isa_over_shapes(measure, dtype, L, R, N, dt):
    check_paths(measure, L, R, N, dtype, dt, 1)


@pytest.mark.parametrize("measure", ["legt", "lmu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_lti_scan_in_blocks_matches_dense(measure, dtype):
    # N = 8: blocks of T = 32 steps from L = 2^14 on; a remainder of 23 single steps.
    N, L, dt = 8, 2**14 + 23, 1e-3
    rng = np.random.default_rng(5)
    f = rng.standard_normal((L, 1))
    c0 = 0.1 * rng.standard_normal((1, N))
    coef = coefficients(measure, L, dt)
    A, B = transition_ref(measure, N, **PARAMS[measure])
    Ad, Bd = gbt_ref(A, B, dt, 0.5)
    want = c0[0]
    for fk in f[:, 0]:
        want = Ad @ want + Bd * fk
    got = _core.gbt_scan(measure, PARAMS[measure], f.astype(dtype), c0.astype(dtype), coef, False)
    # float32 against the float64 truth: within a small factor of the step-by-step float32 scan's error.
    stepwise = _core.gbt_scan(measure, PARAMS[measure], f.astype(dtype), c0.astype(dtype), coef, True)[-1]
    err, err_stepwise = np.abs(got - want).max(), np.abs(stepwise - want).max()
    # (plus a few float32 roundings of the state's scale, when the step-by-step error happens to vanish)
    scale = max(1e-3, float(np.abs(want).max()))
    assert err <= (1e-11 * scale if dtype == np.float64 else 4 * err_stepwise + 16 * np.finfo(np.float32).eps * scale)


def test_set_isa_refuses_unknown_names():
    with pytest.raises(ValueError, match="isa"):
        _core._set_isa("sse")
    assert _core._set_isa(None) in ISAS
