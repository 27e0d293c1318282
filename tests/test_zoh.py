"""ZOH scans and updates (Rust, dense step matrices) against the dense recurrence in numpy.

Oracle: per step c_k = Ad c_{k-1} + Bd f_k in float64 with the dense ZOH matrices of the span of the
step (``hippo_rs.discretize(..., method="zoh")``, itself tested against scipy's ``expm`` in
tests/test_discretize.py): dt for the time-invariant measures, dt (t1 - t0) with timestamps,
ln((k+1)/k) for LegS at step index k and ln(t1/t0) for timestamped LegS; the LegS first sample is
c = f e_0. Tolerance (u = the dtype's unit roundoff): the matrices are rounded to the dtype (u) and
each output is an (N+1)-term sum (N u), so step k adds at most e_k = (N + 2) u max(|Ad||c| + |Bd||f|)
and carries the earlier error through ||Ad_k||_inf: E_k = ||Ad_k||_inf E_{k-1} + e_k (ChebT and FouT
have ||Ad|| > 1). The test allows 4 E_L. Nothing here was tuned to pass.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hippo_rs

PARAMS = {"legs": {}, "legt": {"theta": 1.5}, "lmu": {"theta": 2.0}, "lagt": {"beta": 0.5},
          "glagt": {"alpha": 0.25, "beta": 0.5}, "fout": {"theta": 1.0}, "chebt": {"theta": 1.0}}


def dense_zoh(measure, N, f, c0, spans, u):
    """f (L, R), c0 (R, N), spans (L, R) (NaN: the LegS reset) -> (every state (L, R, N) in float64,
    the error bound E_L of the module docstring for unit roundoff u)."""
    A, B = hippo_rs.transition(measure, N, **PARAMS[measure])
    c, out, bound = c0.astype(np.float64).copy(), [], np.zeros(f.shape[1])
    for k in range(f.shape[0]):
        for r in range(f.shape[1]):
            if np.isnan(spans[k, r]):
                c[r] = 0.0
                c[r, 0] = f[k, r]
                bound[r] = u * abs(f[k, r])
            else:
                Ad, Bd = hippo_rs.discretize(A, B, dt=spans[k, r], method="zoh")
                local = (N + 2) * u * np.max(np.abs(Ad) @ np.abs(c[r]) + np.abs(Bd) * abs(f[k, r]))
                bound[r] = np.abs(Ad).sum(axis=1).max() * bound[r] + local
                c[r] = Ad @ c[r] + Bd * f[k, r]
        out.append(c.copy())
    return np.stack(out), bound.max()


def check(got, measure, N, f, c0, spans):
    want, bound = dense_zoh(measure, N, f, c0, spans, np.finfo(got.dtype).eps / 2)
    np.testing.assert_allclose(got, want, rtol=0, atol=4 * bound)


@settings(max_examples=40, deadline=None)
@given(
    measure=st.sampled_from(sorted(PARAMS)),
    N=st.integers(1, 12),
    L=st.integers(1, 6),
    R=st.integers(1, 4),
    dt=st.floats(1e-3, 1.0),
    dtype=st.sampled_from([np.float32, np.float64]),
    stamped=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_zoh_scan_equals_expm_steps(measure, N, L, R, dt, dtype, stamped, seed):
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((L, R)).astype(dtype)
    c0 = rng.standard_normal((R, N)).astype(dtype)
    legs = measure == "legs"
    kw = dict(measure=measure, method="zoh", **PARAMS[measure])
    if stamped:
        ts = np.cumsum(rng.uniform(0.05, 1.0, (L, R)), axis=0)
        t_prev = rng.uniform(0.0, 0.04, R)
        prev = np.concatenate([t_prev[None], ts[:-1]])
        spans = np.log(ts / prev) if legs else dt * (ts - prev)
        if legs:
            spans[0, t_prev == 0] = np.nan
        got = hippo_rs.scan(f, N, c0=c0, dt=dt, timestamps=ts, t_prev=t_prev, **kw)
    else:
        t0 = rng.integers(0, 3, R)
        k = t0[None, :] + np.arange(L)[:, None]
        with np.errstate(divide="ignore"):
            spans = np.where(k == 0, np.nan, np.log((k + 1) / np.maximum(k, 1))) if legs else np.full((L, R), dt)
        got = hippo_rs.scan(f, N, c0=c0, t=t0, **({} if legs else {"dt": dt}), **kw)
    assert got.dtype == dtype and got.shape == (L, R, N)
    check(got, measure, N, f, c0, spans)
    last = hippo_rs.scan(f, N, c0=c0, return_all=False, **({"t": t0} if not stamped else
                         {"timestamps": ts, "t_prev": t_prev, "dt": dt}), **({} if legs or stamped else {"dt": dt}), **kw)
    np.testing.assert_array_equal(last, got[-1])


@pytest.mark.parametrize("measure", ["legs", "legt", "lmu"])
def test_zoh_update_continues_the_scan(measure):
    rng = np.random.default_rng(1)
    f = rng.standard_normal((5, 3))
    kw = dict(measure=measure, method="zoh", **({} if measure == "legs" else {"dt": 0.1}))
    states = hippo_rs.scan(f, 6, **kw)
    step = hippo_rs.update(states[-2], f[-1], **({"t": 4} if measure == "legs" else {}), **kw)
    np.testing.assert_array_equal(step, states[-1])
    out = np.empty_like(step)
    assert hippo_rs.update(states[-2], f[-1], out=out, **({"t": 4} if measure == "legs" else {}), **kw) is out


def test_zoh_errors_name_the_argument():
    f = np.ones((3, 2))
    with pytest.raises(ValueError, match="^dt:"):
        hippo_rs.scan(f, 4, measure="legt", method="zoh")
    with pytest.raises(ValueError, match="^timestamps:"):
        hippo_rs.scan(f, 4, method="zoh", timestamps=[1.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="^t:"):
        hippo_rs.scan(f, 4, method="zoh", t=-1)
    with pytest.raises(ValueError, match="^t_prev:"):
        hippo_rs.scan(f, 4, method="zoh", t_prev=1.0)
