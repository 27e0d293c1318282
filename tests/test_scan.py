"""O(N) updates and scans against dense float64 math.

Dense oracle: (A, B) from `hippo_rs.transition` (tested against tests/reference.py) and the GBT step
    c_k = (I - a_i A)^{-1} ((I + a_e A) c_{k-1} + a_b B f_k)
solved with numpy in float64 on the same (dtype-rounded) inputs; a reset row (a_i = +inf) is c = f e_0.
The coefficient rows themselves are written out here from docs/conventions.md, independently of
`gbt_coefficients`, and compared with it.

Tolerance (float32 and float64 alike, u = the dtype's unit roundoff). Each O(N) step is a
backward-stable evaluation of one GBT step: its running sums over N terms carry a rounding error of
about sqrt(N) u relative to the size of the terms (random-walk rounding; ~4 roundings per element,
hence the factor 4), the coefficients are rounded to the dtype (another u), and the implicit solve
turns a backward error into a forward error amplified by at most kappa = cond(I - a_i A). Errors of
different steps are independent and are carried to the end by the step matrices Ad_k; for the
stable methods used here ||Ad_k|| stays near 1, and G = max_k ||Ad_k||_2 accounts for the rest. So
    |c_L - c_L^dense| <= 4 sqrt(N) sqrt(L) u kappa G M,
with M the largest magnitude among the states and inputs involved. Nothing here was tuned to pass.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hippo_rs
from hippo_rs import _core

PARAMS = {
    "legs": {},
    "legt": {"theta": 1.0},
    "lmu": {"theta": 1.0},
    "lagt": {"beta": 0.0},
    "glagt": {"alpha": 0.25, "beta": 0.5},
    "fout": {"theta": 1.0},
    "chebt": {"theta": 1.0},
}
METHODS = {"forward_euler": 0.0, "backward_euler": 1.0, "bilinear": 0.5, "gbt": 0.3}


def coef_rows(measure, L, alpha, dt, t0=0, convention="original"):
    """Per-step (a_i, a_e, a_b), written from docs/conventions.md."""
    rows = []
    for k in range(L):
        if measure == "legs":
            t = t0 + k
            if t == 0:
                rows.append((math.inf, 0.0, 0.0))
            elif convention == "original":
                rows.append((alpha / t, (1 - alpha) / t, 1 / t))
            else:
                rows.append((alpha / (t + 1), (1 - alpha) / t, alpha / (t + 1) + (1 - alpha) / t))
        else:
            rows.append((alpha * dt, (1 - alpha) * dt, dt))
    return np.array(rows, dtype=np.float64).reshape(L, 3)


def dense_scan(measure, N, f2, c0, coef):
    """float64 dense recurrence; returns (states (L, R, N), kappa, G)."""
    A, B = hippo_rs.transition(measure, N, **PARAMS[measure])  # transition has no GBT alpha
    I = np.eye(N)
    c = np.array(c0, dtype=np.float64)
    states = np.empty((f2.shape[0],) + c.shape)
    kappa, growth, cache = 1.0, 1.0, {}
    for k, (ai, ae, ab) in enumerate(coef):
        fk = f2[k].astype(np.float64)
        if ai == math.inf:
            c = np.zeros_like(c)
            c[:, 0] = fk
        else:
            key = (ai, ae, ab)
            if key not in cache:
                K = I - ai * A
                Ad = np.linalg.solve(K, I + ae * A)
                Bd = np.linalg.solve(K, ab * B)
                if not cache:  # the first GBT step has the largest a_i for LegS, the same for the rest
                    kappa = np.linalg.cond(K)
                if len(cache) < 8:  # LegS steps tend to the identity as t grows: the first dominate
                    growth = max(growth, np.linalg.norm(Ad, 2))
                cache[key] = (Ad, Bd)
            Ad, Bd = cache[key]
            c = c @ Ad.T + fk[:, None] * Bd
        states[k] = c
    return states, kappa, growth


def tolerance(dtype, N, L, kappa, growth, *arrays):
    u = np.finfo(dtype).eps / 2
    M = max([1.0] + [float(np.abs(a).max()) for a in arrays if a.size])
    return 4 * math.sqrt(N) * math.sqrt(max(L, 1)) * u * kappa * growth * M


cases = st.fixed_dictionaries(
    {
        "measure": st.sampled_from(list(PARAMS)),
        "method": st.sampled_from(list(METHODS)),
        "dtype": st.sampled_from([np.float32, np.float64]),
        "N": st.one_of(st.integers(1, 12), st.integers(13, 512)),
        # up to 7 rows: row by row; 8 or more: SIMD / transposed tiles of 8 rows (and a remainder)
        "batch": st.sampled_from([(), (1,), (3,), (2, 3), (0,), (0, 2), (8,), (3, 7)]),
        "dt": st.sampled_from([1e-3, 1e-2, 0.1]),
        "L": st.integers(1, 12),
        "seed": st.integers(0, 2**31 - 1),
        "convention": st.sampled_from(["original", "paper"]),
    }
)


def prepare(case):
    measure, N, L = case["measure"], case["N"], case["L"]
    if N > 64:
        L = min(L, 4)  # keeps the dense O(N^3)-per-step oracle cheap
    dt = case["dt"]
    if measure == "chebt":
        dt = min(dt, 0.1 / N)  # ChebT's (I - dA)^{-1} grows like (4 N dt)^N (see test_structured)
    if case["method"] == "forward_euler" and measure != "legs":
        dt = dt / N  # explicit Euler is stable only for dt |lambda_max| < 2, and |lambda_max| grows with N
    rng = np.random.default_rng(case["seed"])
    dtype = case["dtype"]
    f = rng.standard_normal((L,) + case["batch"]).astype(dtype)
    c0 = rng.standard_normal(case["batch"] + (N,)).astype(dtype) if measure != "legs" else None
    return measure, N, L, dt, f, c0


@settings(max_examples=50, deadline=None)
@given(case=cases)
def test_scan_and_step_match_dense(case):
    measure, N, L, dt, f, c0 = prepare(case)
    method, dtype, conv = case["method"], case["dtype"], case["convention"]
    alpha = METHODS[method]
    kw = dict(method=method, gbt_alpha=alpha if method == "gbt" else None)
    kw.update(dt=None if measure == "legs" else dt, convention=conv, **PARAMS[measure])
    if measure == "legs" and method == "forward_euler":
        # Forward Euler is unstable for LegS at small t (its eigenvalues leave the unit disc for t < N): start later.
        t0 = 8 * N
        c0 = np.zeros(f.shape[1:] + (N,), dtype)
    else:
        t0 = 0
    coef = coef_rows(measure, L, alpha, dt, t0, conv)
    np.testing.assert_array_equal(
        hippo_rs.gbt_coefficients(L, measure=measure, t=t0, **{k: v for k, v in kw.items()}), coef
    )
    states = hippo_rs.scan(f, N, measure=measure, c0=c0, t=t0, **kw)
    assert states.dtype == dtype and states.shape == f.shape + (N,)
    R = int(np.prod(f.shape[1:], dtype=int))
    c0_2 = np.zeros((R, N)) if c0 is None else c0.reshape(R, N)
    want, kappa, growth = dense_scan(measure, N, f.reshape(L, R), c0_2, coef)
    tol = tolerance(dtype, N, L, kappa, growth, want, f)
    np.testing.assert_allclose(states.reshape(L, R, N), want, rtol=0, atol=tol)
    final = hippo_rs.scan(f, N, measure=measure, c0=c0, t=t0, return_all=False, **kw)
    np.testing.assert_array_equal(final, states[-1])
    # One step from a random state equals the dense step.
    c = np.random.default_rng(1).standard_normal(f.shape[1:] + (N,)).astype(dtype)
    t_kw = {"t": t0 + 1} if measure == "legs" else {}
    step = hippo_rs.update(c, f[0], measure=measure, **t_kw, **{k: v for k, v in kw.items()})
    want1, kappa1, growth1 = dense_scan(measure, N, f[:1].reshape(1, R), c.reshape(R, N), coef_rows(measure, 1, alpha, dt, t0 + 1, conv))
    tol1 = tolerance(dtype, N, 1, kappa1, growth1, want1, f[:1], c)
    np.testing.assert_allclose(step.reshape(R, N), want1[0], rtol=0, atol=tol1)


@settings(max_examples=25, deadline=None)
@given(case=cases, split=st.integers(0, 12))
def test_continued_scan_equals_one_call(case, split):
    measure, N, L, dt, f, c0 = prepare(case)
    k = min(split, L)
    kw = dict(method=case["method"], gbt_alpha=0.3 if case["method"] == "gbt" else None, convention=case["convention"])
    kw.update(dt=None if measure == "legs" else dt, **PARAMS[measure])
    whole = hippo_rs.scan(f, N, measure=measure, c0=c0, **kw)
    head = hippo_rs.scan(f[:k], N, measure=measure, c0=c0, return_all=False, **kw)
    tail = hippo_rs.scan(f[k:], N, measure=measure, c0=head, t=k, **kw)
    np.testing.assert_array_equal(tail, whole[k:])
    if k:
        np.testing.assert_array_equal(head, whole[k - 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("measure", list(PARAMS))
def test_evenly_spaced_timestamps_equal_fixed_step(measure, dtype):
    N, L, h = 16, 30, 0.25
    rng = np.random.default_rng(0)
    f = rng.standard_normal((L, 4)).astype(dtype)
    p = PARAMS[measure]
    if measure == "legs":
        for conv, times, prev in (("original", h * np.arange(L), None), ("paper", h * np.arange(1, L + 1), 0.0)):
            fixed = hippo_rs.scan(f, N, measure=measure, convention=conv, **p)
            stamped = hippo_rs.scan(f, N, measure=measure, timestamps=times, t_prev=prev, convention=conv, **p)
            per_row = hippo_rs.scan(f, N, measure=measure, timestamps=np.repeat(times[:, None], 4, 1), t_prev=prev, convention=conv, **p)
            tol = 64 * np.finfo(dtype).eps * np.abs(fixed).max()
            np.testing.assert_allclose(stamped, fixed, rtol=0, atol=tol)
            np.testing.assert_array_equal(per_row, stamped)
    else:
        dt = 0.01
        fixed = hippo_rs.scan(f, N, measure=measure, dt=dt * h, **p)
        stamped = hippo_rs.scan(f, N, measure=measure, dt=dt, timestamps=h * np.arange(1, L + 1), **p)
        # The intervals h (k+1) - h k round to h within a few ulps: a relative perturbation of a step.
        tol = 64 * np.finfo(dtype).eps * max(1.0, np.abs(fixed).max())
        np.testing.assert_allclose(stamped, fixed, rtol=0, atol=tol)


@pytest.mark.parametrize("measure", list(PARAMS))
@pytest.mark.parametrize("return_all", [False, True])
@pytest.mark.parametrize("per_row", [False, True])
def test_adjoint_is_the_transpose_of_the_scan(measure, return_all, per_row):
    N, L, R = 9, 7, 19  # two tiles of 8 rows and 3 single rows
    rng = np.random.default_rng(3)
    f = rng.standard_normal((L, R))
    c0 = rng.standard_normal((R, N))
    if measure == "legs":
        times = np.cumsum(rng.uniform(0.5, 1.5, (L, R)), axis=0) if per_row else None
        coef = hippo_rs.gbt_coefficients(L, measure="legs", timestamps=times) if per_row else hippo_rs.gbt_coefficients(L, measure="legs", t=0)
    else:
        dt = 0.02 if measure != "chebt" else 0.002
        times = np.cumsum(rng.uniform(0.5, 1.5, (L, R)), axis=0) if per_row else None
        coef = hippo_rs.gbt_coefficients(L, measure=measure, dt=dt, timestamps=times, t_prev=0.0 if per_row else None, **PARAMS[measure])
    p = PARAMS[measure]
    y = _core.gbt_scan(measure, p, f, c0, coef, return_all)
    g = rng.standard_normal(y.shape)
    gf, gc0 = _core.gbt_scan_adjoint(measure, p, g, coef, return_all)
    lhs = float(np.sum(y * g))
    rhs = float(np.sum(f * gf) + np.sum(c0 * gc0))
    assert abs(lhs - rhs) <= 1e-11 * (np.abs(y).max() * np.abs(g).sum() + 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adjoint_float32_and_float64_keep_dtype(dtype):
    coef = hippo_rs.gbt_coefficients(3, measure="legt", dt=0.1)
    gf, gc0 = _core.gbt_scan_adjoint("legt", {}, np.ones((3, 2, 4), dtype), coef, True)
    assert gf.dtype == dtype and gc0.dtype == dtype and gf.shape == (3, 2) and gc0.shape == (2, 4)


def _legs_dense_affine(N, t_start, f):
    """The float64 LegS bilinear recurrence over f as one affine map, composed by a pairwise tree
    (batched numpy): x -> Ad x + Bd f per step, step indices t_start, t_start + 1, ..."""
    A, B = hippo_rs.transition("legs", N)
    I = np.eye(N)
    t = t_start + np.arange(len(f), dtype=np.float64)
    K = I - A[None] / (2 * t[:, None, None])
    E = I + A[None] / (2 * t[:, None, None])
    rhs = np.concatenate([E, (B[None, :] / t[:, None])[..., None]], axis=2)
    sol = np.linalg.solve(K, rhs)
    M, v = sol[:, :, :N], sol[:, :, N] * f[:, None]
    while len(M) > 1:  # compose neighbours: (M2, v2) o (M1, v1) = (M2 M1, M2 v1 + v2)
        if len(M) % 2:
            M = np.concatenate([M, I[None]])
            v = np.concatenate([v, np.zeros((1, N))])
        M1, M2, v1, v2 = M[0::2], M[1::2], v[0::2], v[1::2]
        M, v = M2 @ M1, np.einsum("kij,kj->ki", M2, v1) + v2
    return M[0], v[0]


def test_million_step_legs_scan_is_finite_and_matches_dense():
    N, L, block = 8, 10**6, 125_000
    rng = np.random.default_rng(7)
    # A smooth band-limited signal (sum of a few sines), as in the paper's function approximation.
    x = np.linspace(0.0, 1.0, L)
    f = sum(np.sin(2 * np.pi * w * x + ph) for w, ph in zip(rng.uniform(1, 50, 5), rng.uniform(0, 6, 5)))
    final = hippo_rs.scan(f, N, measure="legs", return_all=False)
    assert np.all(np.isfinite(final))
    c = np.zeros(N)
    c[0] = f[0]
    for start in range(1, L, block):
        chunk = f[start : start + block]
        M, v = _legs_dense_affine(N, start, chunk)
        c = M @ c + v
    # Errors of 10^6 steps, each a backward-stable step of a contractive (||Ad|| <= 1 + O(1/t)) map.
    np.testing.assert_allclose(final, c, rtol=0, atol=1e-9 * max(1.0, np.abs(c).max()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("measure", ["legs", "lagt", "glagt", "legt"])
@pytest.mark.parametrize("N", [1, 7, 64, 257])
def test_long_final_state_scan_matches_all_states_and_dense(measure, dtype, N):
    """Final-state scans of few rows run as a wavefront over time (several steps in flight). LegS, LagT
    and GLagT take the single-row form of the step there: the same bits on every SIMD path; LegT the
    step-by-step scan's bits. Both within the module's tolerance of dense float64 math."""
    L = 150
    f = np.random.default_rng(N).standard_normal((L, 2)).astype(dtype)
    kw = dict(PARAMS[measure]) if measure == "legs" else {"dt": 0.01, **PARAMS[measure]}
    final = hippo_rs.scan(f, N, measure=measure, return_all=False, **kw)
    states = hippo_rs.scan(f, N, measure=measure, **kw)
    if measure == "legt":
        np.testing.assert_array_equal(final, states[-1])
    for isa in ("avx2", "avx512"):
        try:
            _core._set_isa(isa)
        except ValueError:
            continue
        try:
            np.testing.assert_array_equal(hippo_rs.scan(f, N, measure=measure, return_all=False, **kw), final)
        finally:
            _core._set_isa(None)
    coef = coef_rows(measure, L, 0.5, 0.01)
    want, kappa, growth = dense_scan(measure, N, f, np.zeros((2, N)), coef)
    atol = tolerance(dtype, N, L, kappa, growth, want, f)
    np.testing.assert_allclose(final, want[-1], rtol=0, atol=atol)
    np.testing.assert_allclose(states[-1], want[-1], rtol=0, atol=atol)


def test_in_place_update_loop_equals_scan():
    N, L = 32, 50
    f = np.random.default_rng(2).standard_normal((L, 3, 2)).astype(np.float32)
    c = np.zeros((3, 2, N), np.float32)
    for t in range(L):
        r = hippo_rs.legs_update(c, f[t], t, out=c)
        assert r is c
    np.testing.assert_array_equal(c, hippo_rs.scan(f, N, measure="legs", return_all=False))
    out = np.empty((L, 3, 2, N), np.float32)
    assert hippo_rs.scan(f, N, measure="legs", out=out) is out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_legs_update_common_calls_equal_the_general_path(dtype):
    rng = np.random.default_rng(5)
    c = rng.standard_normal((3, 4, 16)).astype(dtype)
    f = rng.standard_normal((3, 4)).astype(dtype)
    for t, method, conv in ((0, "bilinear", "original"), (5, "backward_euler", "paper"), (9, "forward_euler", "original")):
        want = hippo_rs.update(c, f, measure="legs", t=t, method=method, convention=conv)
        np.testing.assert_array_equal(hippo_rs.legs_update(c, f, t, method=method, convention=conv), want)
        out = np.empty_like(c)
        assert hippo_rs.legs_update(c, f, t, method=method, convention=conv, out=out) is out
        np.testing.assert_array_equal(out, want)
        c2 = c.copy()
        assert hippo_rs.legs_update(c2, f, t, method=method, convention=conv, out=c2) is c2
        np.testing.assert_array_equal(c2, want)
    np.testing.assert_array_equal(hippo_rs.legs_update(c, 2.0, 3), hippo_rs.update(c, np.full((3, 4), 2.0, dtype), measure="legs", t=3))
    with pytest.raises(ValueError, match="out"):
        hippo_rs.legs_update(c, f, 3, out=c[..., ::2].copy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_legs_update_uncommon_calls_equal_the_general_path(dtype):
    """Calls the stepping-loop fast path does not take (overlapping out, views, subclasses, other
    dtypes, Python numbers) give the general path's result."""
    rng = np.random.default_rng(6)
    big = rng.standard_normal((5, 16)).astype(dtype)
    f = rng.standard_normal(4).astype(dtype)
    want = hippo_rs.update(big[:4].copy(), f, measure="legs", t=7)
    with pytest.raises(ValueError, match="out"):
        hippo_rs.legs_update(big[:4], f, 7, out=big[1:])
    view = big[:4]  # c itself through another view: in place
    assert hippo_rs.legs_update(big[:4], f, 7, out=view) is view
    np.testing.assert_array_equal(view, want)
    c = rng.standard_normal((4, 16)).astype(dtype)
    want = hippo_rs.update(c, f, measure="legs", t=7)
    np.testing.assert_array_equal(hippo_rs.legs_update(np.asfortranarray(c), f, 7), want)
    np.testing.assert_array_equal(hippo_rs.legs_update(c, np.ma.masked_array(f), 7), want)
    np.testing.assert_array_equal(hippo_rs.legs_update(c, list(f), 7), hippo_rs.update(c, list(f), measure="legs", t=7))
    np.testing.assert_array_equal(hippo_rs.legs_update(c, 3, 7), hippo_rs.update(c, np.full(4, 3.0, dtype), measure="legs", t=7))
    other = np.float64 if dtype == np.float32 else np.float32
    np.testing.assert_array_equal(
        hippo_rs.legs_update(c, f.astype(other), 7), hippo_rs.update(c, f.astype(other), measure="legs", t=7)
    )
    read_only = np.empty_like(c)
    read_only.flags.writeable = False
    with pytest.raises(ValueError):
        hippo_rs.legs_update(c, f, 7, out=read_only)
    with pytest.raises(TypeError, match="method"):
        hippo_rs.legs_update(c, f, 7, method=3)
    with pytest.raises(ValueError, match="t"):
        hippo_rs.legs_update(c, f, 2**63)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_legs_update_fast_path_refuses_aliased_and_unaligned_arrays(dtype):
    """The stepping-loop fast path reads and writes the arrays directly: an input f that shares memory
    with the state it writes, or unaligned data, takes the general path (same result or same error)."""
    rng = np.random.default_rng(8)
    c = rng.standard_normal((4, 1)).astype(dtype)
    f = c[:, 0]  # a C-contiguous view of c
    with pytest.raises(ValueError) as general:
        hippo_rs.update(c, f, measure="legs", t=3, out=c)
    before = c.copy()
    with pytest.raises(ValueError) as fast:
        hippo_rs.legs_update(c, f, 3, out=c)
    assert str(fast.value) == str(general.value)
    np.testing.assert_array_equal(c, before)
    R, N = 3, 5
    size = np.dtype(dtype).itemsize
    values = rng.standard_normal(R * N + R)

    def unaligned(aligned_c, aligned_f):
        """c (R, N) and f (R,) with the same values each call, misaligned unless asked otherwise."""
        raw = np.zeros(size * (R * N + R) + 1, np.uint8)
        c = raw[1 : 1 + size * R * N].view(dtype).reshape(R, N)
        f = raw[1 + size * R * N :].view(dtype)
        assert not c.flags.aligned and not f.flags.aligned
        c[...] = values[: R * N].reshape(R, N)
        f[...] = values[R * N :]
        return (c.copy() if aligned_c else c), (f.copy() if aligned_f else f)

    def outcome(fn, *args, **kw):
        try:
            return fn(*args, **kw).tolist()
        except ValueError as e:
            return str(e)

    for which in ((False, False), (True, False), (False, True)):
        general = outcome(hippo_rs.update, *unaligned(*which), measure="legs", t=4)
        assert outcome(hippo_rs.legs_update, *unaligned(*which), 4) == general
        c, f = unaligned(*which)
        general = outcome(hippo_rs.update, c, f, measure="legs", t=4, out=c)
        c, f = unaligned(*which)
        assert outcome(hippo_rs.legs_update, c, f, 4, out=c) == general


@settings(max_examples=60, deadline=None)
@given(
    batch=st.lists(st.integers(0, 5), max_size=2).map(tuple),
    N=st.integers(1, 12),
    dtype=st.sampled_from([np.float32, np.float64]),
    t=st.sampled_from([0, 1, 2, 7, 1000, 2**40]),
    method=st.sampled_from(["bilinear", "backward_euler", "forward_euler"]),
    convention=st.sampled_from(["original", "paper"]),
    number=st.booleans(),
    out=st.sampled_from([None, "c", "separate"]),
    seed=st.integers(0, 2**16),
)
def test_legs_update_equals_the_general_path(batch, N, dtype, t, method, convention, number, out, seed):
    """Every kind of call the fast path takes gives bitwise the general path's state."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal(batch + (N,)).astype(dtype)
    f = 0.75 if number else rng.standard_normal(batch).astype(dtype)
    kw = dict(method=method, convention=convention)
    want = hippo_rs.update(c.copy(), np.broadcast_to(np.asarray(f, dtype), batch).copy(), measure="legs", t=t, **kw)
    if out is None:
        got = hippo_rs.legs_update(c, f, t, **kw)
    else:
        target = c if out == "c" else np.full_like(c, np.nan)
        got = hippo_rs.legs_update(c, f, t, out=target, **kw)
        assert got is target
    assert got.dtype == dtype and got.shape == c.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("out", [None, "c", "separate"])
def test_legs_update_large_step_equals_the_general_path(out):
    """A step of 2^16 state elements (it releases the GIL and borrows through rust-numpy's tracking)."""
    rng = np.random.default_rng(11)
    c = rng.standard_normal((256, 256)).astype(np.float32)
    f = rng.standard_normal(256).astype(np.float32)
    want = hippo_rs.update(c.copy(), f, measure="legs", t=9)
    target = {None: None, "c": c, "separate": np.empty_like(c)}[out]
    got = hippo_rs.legs_update(c, f, 9, out=target)
    assert out is None or got is target
    np.testing.assert_array_equal(got, want)
    column = rng.standard_normal((2**16, 1)).astype(np.float32)
    with pytest.raises(ValueError) as general:
        hippo_rs.update(column, column[:, 0], measure="legs", t=9, out=column)
    with pytest.raises(ValueError) as fast:
        hippo_rs.legs_update(column, column[:, 0], 9, out=column)  # f a view of the state it writes
    assert str(fast.value) == str(general.value)


@pytest.mark.parametrize("rows", [64, 65])
def test_legs_update_number_input_on_many_rows(rows):
    c = np.random.default_rng(rows).standard_normal((rows, 8)).astype(np.float32)
    want = hippo_rs.update(c, np.full(rows, 0.25, np.float32), measure="legs", t=6)
    np.testing.assert_array_equal(hippo_rs.legs_update(c, 0.25, 6), want)
    assert hippo_rs.legs_update(c, 0.25, 6, out=c) is c
    np.testing.assert_array_equal(c, want)


def test_legs_update_alternating_methods_and_conventions():
    """Names changing between calls, literals (interned: the same objects each time) or built at run
    time, each give their own coefficient row."""
    rng = np.random.default_rng(9)
    c = rng.standard_normal((2, 6))
    f = rng.standard_normal(2)
    calls = [("bilinear", "original"), ("backward_euler", "original"), ("backward_euler", "paper"), ("bilinear", "paper")]
    for t in range(1, 5):
        for method, conv in calls + calls[::-1]:
            if t % 2:
                method, conv = "".join(list(method)), "".join(list(conv))
            want = hippo_rs.update(c, f, measure="legs", t=t, method=method, convention=conv)
            np.testing.assert_array_equal(hippo_rs.legs_update(c, f, t, method=method, convention=conv), want)


def test_per_row_step_indices_and_timestamped_update():
    N = 6
    c = np.random.default_rng(0).standard_normal((3, N))
    f = np.array([1.0, 2.0, 3.0])
    t = np.array([0, 1, 5])
    got = hippo_rs.legs_update(c, f, t)
    for r in range(3):
        np.testing.assert_array_equal(got[r], hippo_rs.legs_update(c[r], f[r], int(t[r])))
    np.testing.assert_array_equal(got[0], [1.0, 0, 0, 0, 0, 0])
    stamped = hippo_rs.update(c, f, timestamps=np.array([2.0, 4.0, 6.0]), t_prev=np.array([1.0, 2.0, 3.0]))
    # from t0 = 2 to t1 = 4: delta = (t1 - t0)/t1 = 1/2, the step index t = 2
    np.testing.assert_allclose(stamped[1], hippo_rs.legs_update(c[1], f[1], 2), rtol=1e-14, atol=1e-14)
    lti = hippo_rs.update(c, f, measure="legt", timestamps=1.5, t_prev=1.0, dt=0.2)
    np.testing.assert_allclose(lti, hippo_rs.update(c, f, measure="legt", dt=0.1), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("measure", ["legs", "legt", "lagt"])
def test_zoh_uses_dense_matrices(measure):
    N, L = 5, 6
    f = np.random.default_rng(4).standard_normal((L, 2))
    kw = {} if measure == "legs" else {"dt": 0.1}
    got = hippo_rs.scan(f, N, measure=measure, method="zoh", **kw)
    A, B = hippo_rs.transition(measure, N)
    c = np.zeros((2, N))
    for k in range(L):
        if measure == "legs":
            if k == 0:
                c = np.zeros((2, N))
                c[:, 0] = f[0]
                np.testing.assert_allclose(got[0], c)
                continue
            Ad, Bd = hippo_rs.legs_step_matrices(N, t=k, method="zoh")
        else:
            Ad, Bd = hippo_rs.discretize(A, B, dt=0.1, method="zoh")
        c = c @ Ad.T + f[k][:, None] * Bd
        np.testing.assert_allclose(got[k], c, rtol=1e-12, atol=1e-12)
    step = hippo_rs.update(got[-2], f[-1], measure=measure, method="zoh", **({"t": L - 1} if measure == "legs" else kw))
    np.testing.assert_allclose(step, got[-1], rtol=1e-12, atol=1e-12)


def test_empty_and_dtype_conversions():
    assert hippo_rs.scan(np.zeros((0, 3)), 4, measure="legs").shape == (0, 3, 4)
    np.testing.assert_array_equal(hippo_rs.scan(np.zeros((0, 3)), 4, measure="legs", return_all=False), np.zeros((3, 4)))
    assert hippo_rs.scan(np.zeros((5, 0)), 4, measure="legt", dt=0.1).shape == (5, 0, 4)
    assert hippo_rs.scan(np.arange(5), 3, measure="legs").dtype == np.float64
    assert hippo_rs.scan(np.arange(5, dtype=np.float16), 3, measure="legs").dtype == np.float32
    assert hippo_rs.scan(np.ones(1, np.float32), 3, measure="legs").shape == (1, 3)
    assert hippo_rs.update(np.zeros(4, np.float32), 1.0, measure="lmu", dt=0.1).dtype == np.float32


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: hippo_rs.scan(np.ones(3), 0, measure="legs"), ValueError, "N"),
        (lambda: hippo_rs.scan(np.ones(3), 2.5, measure="legs"), TypeError, "N"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="nope"), ValueError, "measure"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure=3), TypeError, "measure"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legs", method="rk4"), ValueError, "method"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legs", method="gbt"), ValueError, "gbt_alpha"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legs", method="gbt", gbt_alpha=2.0), ValueError, "gbt_alpha"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legt"), ValueError, "dt"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legt", dt=0.0), ValueError, "dt"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legt", dt=-1.0), ValueError, "dt"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legt", dt=float("nan")), ValueError, "dt"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legt", dt="x"), TypeError, "dt"),
        (lambda: hippo_rs.scan(np.ones(3, complex), 4, measure="legs"), TypeError, "f"),
        (lambda: hippo_rs.scan(np.array(["a"]), 4, measure="legs"), TypeError, "f"),
        (lambda: hippo_rs.scan(np.float64(1.0), 4, measure="legs"), ValueError, "f"),
        (lambda: hippo_rs.scan(np.ones((3, 2)), 4, measure="legs", c0=np.ones((3, 4))), ValueError, "c0"),
        (lambda: hippo_rs.scan(np.ones((3, 2)), 4, measure="legs", c0=np.ones((2, 5))), ValueError, "c0"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legs", t=-1), ValueError, "t"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legs", timestamps=[0.0, 2.0, 1.0]), ValueError, "timestamps"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legs", timestamps=[0.0, 1.0, 1.0]), ValueError, "timestamps"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legs", timestamps=[0.0, 1.0]), ValueError, "timestamps"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legs", timestamps=[-1.0, 1.0, 2.0]), ValueError, "timestamps"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legs", timestamps=[1.0, 2.0, 3.0], t_prev=1.0), ValueError, "timestamps"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legt", timestamps=[0.0, 1.0, 2.0]), ValueError, "timestamps"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legt", dt=0.1, theta=-1.0), ValueError, "theta"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legs", theta=1.0), ValueError, "theta"),
        (lambda: hippo_rs.scan(np.ones(3), 4, measure="legs", convention="x"), ValueError, "convention"),
        (lambda: hippo_rs.legs_update(np.zeros(4), 1.0, -1), ValueError, "t"),
        (lambda: hippo_rs.legs_update(np.zeros(4), 1.0, 1.5), TypeError, "t"),
        (lambda: hippo_rs.legs_update(np.zeros(4), np.ones(3), 1), ValueError, "f"),
        (lambda: hippo_rs.legs_update(np.zeros((2, 0)), 1.0, 1), ValueError, "c"),
        (lambda: hippo_rs.legs_update(np.zeros(4), 1.0, 1, out=np.zeros(4, np.float32)), ValueError, "out"),
        (lambda: hippo_rs.update(np.zeros(4), 1.0, measure="legs"), ValueError, "t"),
        (lambda: hippo_rs.update(np.zeros(4), 1.0, measure="legt", dt=0.1, t=3), ValueError, "t"),
        (lambda: hippo_rs.gbt_coefficients(3, measure="legt", dt=0.1, method="zoh"), ValueError, "method"),
        (lambda: _core.gbt_scan("legs", {}, np.ones((2, 1)), np.ones((1, 3), np.float32), np.ones((2, 3)), True), TypeError, "c0"),
        (lambda: _core.gbt_scan("legs", {}, np.ones((2, 1)), np.ones((1, 3)), np.ones((3, 3)), True), ValueError, "coef"),
        (lambda: _core.gbt_scan("legs", {}, np.ones((2, 1)), np.ones((1, 3)), np.full((2, 3), np.nan), True), ValueError, "coef"),
        (lambda: _core.gbt_scan("legs", {}, np.ones((2, 1), np.int64), np.ones((1, 3)), np.ones((2, 3)), True), TypeError, "f"),
        (lambda: _core.gbt_scan("legs", {}, np.ones((2, 1)), np.ones((1, 0)), np.ones((2, 3)), True), ValueError, "N"),
        (lambda: _core.gbt_scan("legs", {}, np.ones((2, 1)), np.ones((2, 3)), np.ones((2, 3)), True), ValueError, "c0"),
        (lambda: _core.gbt_scan("legs", {}, np.ones((4, 2))[::2], np.ones((2, 3)), np.ones((2, 3)), True), ValueError, "contiguous"),
        (lambda: _core.gbt_scan_adjoint("legs", {}, np.ones((2, 3)), np.ones((2, 3)), True), ValueError, "grad"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
