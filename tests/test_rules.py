"""The rules are defined once, in the Rust core: every copy and every front end is tied to it here.

* the torch device-side coefficient rows (``hippo_rs.torch._coef``, used under ``torch.compile``)
  equal the core's rows (``_core.gbt_rows``) over Hypothesis-drawn step indices, steps, timestamps,
  weights and conventions;
* the numpy and torch front ends accept the same names (with the core's aliases) and raise the same
  exception type, naming the same argument, for the same mistake.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hippo_rs
from hippo_rs import _core

torch = pytest.importorskip("torch")

import hippo_rs.torch as ht  # noqa: E402
from hippo_rs.torch import _coef  # noqa: E402

F64 = torch.float64
weights = st.sampled_from([0.0, 0.5, 1.0]) | st.floats(0.0, 1.0)
conventions = st.sampled_from(["original", "paper"])


def _method(w):
    return ("gbt", w)


def _close(got: torch.Tensor, want: np.ndarray):
    """Equal up to float64 rounding of the few operations in each formula; +inf (reset) exactly."""
    got = got.numpy()
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=4e-16 * 8, atol=0)


@settings(max_examples=60, deadline=None)
@given(L=st.integers(1, 20), t0=st.integers(0, 10**6), w=weights, conv=conventions)
def test_device_legs_rows_equal_the_core(L, t0, w, conv):
    want = _core.gbt_rows("legs", L, "gbt", w, None, conv, t0)
    _close(_coef.legs_coefficients(L, t0, w, conv), want)


@settings(max_examples=40, deadline=None)
@given(L=st.integers(1, 8), t0=st.lists(st.integers(0, 50), min_size=1, max_size=5), w=weights, conv=conventions)
def test_device_per_row_legs_rows_equal_the_core(L, t0, w, conv):
    want = _core.gbt_rows("legs", L, "gbt", w, None, conv, np.array(t0, dtype=np.uint64))
    _close(_coef.legs_coefficients(L, torch.tensor(t0), w, conv), want)


@settings(max_examples=40, deadline=None)
@given(L=st.integers(1, 8), dt=st.floats(1e-6, 1e3), w=weights)
def test_device_time_invariant_rows_equal_the_core(L, dt, w):
    _close(_coef.lti_coefficients(L, dt, w), _core.gbt_rows("legt", L, "gbt", w, dt, "original"))


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.lists(st.floats(1e-3, 10.0), min_size=3, max_size=3), min_size=1, max_size=6),
    start=st.sampled_from([None, 0.0, 0.5, float("nan")]),
    legs=st.booleans(),
    dt=st.sampled_from([None, 0.1, 2.0]),
    w=weights,
    conv=conventions,
)
def test_device_timestamped_rows_equal_the_core(gaps, start, legs, dt, w, conv):
    measure = "legs" if legs else "lmu"
    first = 0.0 if start is None or np.isnan(start) else start
    ts = first + np.cumsum(np.array(gaps), axis=0)  # (L, 3), strictly increasing after t_prev
    t_prev = None if start is None else np.full(3, start)
    want = _core.gbt_rows(measure, ts.shape[0], "gbt", w, dt, conv, None, ts, t_prev)
    got = _coef.timestamped_coefficients(
        measure, torch.from_numpy(ts), None if t_prev is None else torch.from_numpy(t_prev), w, dt, conv
    )
    _close(got, want)


@pytest.mark.parametrize("alias,name", [("euler", "forward_euler"), ("forward", "forward_euler"),
                                        ("backward", "backward_euler"), ("tustin", "bilinear")])
def test_method_aliases_are_the_core_table_in_numpy_and_torch(alias, name):
    assert _core.METHOD_WEIGHTS[alias] == _core.METHOD_WEIGHTS[name]
    f = np.random.default_rng(0).standard_normal((6, 2))
    want = hippo_rs.scan(f, 4, method=name)
    np.testing.assert_array_equal(hippo_rs.scan(f, 4, method=alias), want)
    np.testing.assert_array_equal(ht.scan(torch.from_numpy(f), 4, method=alias).numpy(), want)


def test_parameter_table_is_the_core_table():
    assert ht.PARAM_NAMES == {m: tuple(p) for m, p in _core.MEASURE_PARAMS.items()}
    assert tuple(_core.MEASURE_PARAMS) == hippo_rs.MEASURES
    for measure, params in _core.MEASURE_PARAMS.items():
        assert _core.measure_params(measure, []) == [d for _, d in params]


MISTAKES = [
    (dict(measure=3), TypeError, "measure"),
    (dict(measure="legx"), ValueError, "measure"),
    (dict(method=None), TypeError, "method"),
    (dict(method="rk4"), ValueError, "method"),
    (dict(method="gbt"), ValueError, "gbt_alpha"),
    (dict(method="gbt", gbt_alpha=1.5), ValueError, "gbt_alpha"),
    (dict(gbt_alpha=0.5), ValueError, "gbt_alpha"),
    (dict(measure="legt"), ValueError, "dt"),
    (dict(measure="legt", dt=-1.0), ValueError, "dt"),
    (dict(measure="legt", dt="x"), TypeError, "dt"),
    (dict(measure="legt", dt=0.1, theta=0.0), ValueError, "theta"),
    (dict(measure="legt", dt=0.1, beta=1.0), ValueError, "beta"),
    (dict(alpha=0.5), ValueError, "alpha"),
    (dict(measure="glagt", dt=0.1, alpha=1.0), ValueError, "alpha"),
    (dict(measure="glagt", dt=0.1, beta="x"), TypeError, "beta"),
    (dict(convention="new"), ValueError, "convention"),
    (dict(t=-1), ValueError, "t"),
    (dict(timestamps=[1.0, 1.0, 2.0]), ValueError, "timestamps"),
    (dict(timestamps=[1.0, 2.0, float("nan")]), ValueError, "timestamps"),
    (dict(timestamps=[1.0, 2.0, 3.0], t_prev=1.5), ValueError, "timestamps"),
    (dict(t_prev=1.0), ValueError, "t_prev"),
]


@pytest.mark.parametrize("kwargs,exc,arg", MISTAKES)
def test_same_mistake_same_error_in_numpy_and_torch(kwargs, exc, arg):
    f = np.ones((3, 2))
    with pytest.raises(exc, match=f"^{arg}:") as numpy_error:
        hippo_rs.scan(f, 4, **kwargs)
    with pytest.raises(exc, match=f"^{arg}:") as torch_error:
        ht.scan(torch.from_numpy(f), 4, **kwargs)
    assert str(numpy_error.value) == str(torch_error.value)


def test_rows_for_another_device_are_built_there_and_checked_by_the_core():
    """Off the CPU the rows are built on the device (here "meta": shapes only) and the core still
    checks the arguments; the values are those of the device-side builder tied above."""
    rows = ht.gbt_coefficients(5, t=3, device="meta")
    assert rows.device.type == "meta" and rows.shape == (5, 3)
    assert ht.gbt_coefficients(4, measure="lmu", dt=0.1, device="meta").shape == (4, 3)
    with pytest.raises(ValueError, match="^dt:"):
        ht.gbt_coefficients(4, measure="lmu", device="meta")
    with pytest.raises(ValueError, match="^method:"):
        ht.gbt_coefficients(4, method="zoh", device="meta")
    with pytest.raises(ValueError, match="^t:"):
        ht.gbt_coefficients(4, t=-1, device="meta")
    with pytest.raises(ValueError, match="^theta:"):
        ht.gbt_coefficients(4, measure="legt", dt=0.1, theta=-1.0, device="meta")
