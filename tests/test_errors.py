"""Bad input gives a clear ValueError/TypeError/MemoryError naming the argument, never a crash."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import hippo_rs

A4, B4 = hippo_rs.transition("legt", 4)

TRANSITION_CASES = [
    (("nope", 4), {}, ValueError, "measure"),
    ((3, 4), {}, TypeError, "measure"),
    (("legs", 0), {}, ValueError, "N"),
    (("legs", -3), {}, ValueError, "N"),
    (("legs", 2.5), {}, TypeError, "N"),
    (("legs", True), {}, TypeError, "N"),
    (("legs", "4"), {}, TypeError, "N"),
    (("legs", 4), {"theta": 1.0}, ValueError, "theta"),
    (("legt", 4), {"theta": 0.0}, ValueError, "theta"),
    (("legt", 4), {"theta": -1.0}, ValueError, "theta"),
    (("legt", 4), {"theta": float("nan")}, ValueError, "theta"),
    (("legt", 4), {"theta": float("inf")}, ValueError, "theta"),
    (("legt", 4), {"theta": "1"}, TypeError, "theta"),
    (("lmu", 4), {"beta": 1.0}, ValueError, "beta"),
    (("lagt", 4), {"beta": -0.5}, ValueError, "beta"),
    (("glagt", 4), {"alpha": -1.0}, ValueError, "alpha"),
    (("glagt", 4), {"alpha": 1.0}, ValueError, "alpha"),
    (("glagt", 4), {"beta": 0.0}, ValueError, "beta"),
    (("fout", 4), {"theta": 1j}, TypeError, "theta"),
    (("legs", 2**40), {}, MemoryError, "N"),
    (("legs", 2**62), {}, MemoryError, "N"),
]


@pytest.mark.parametrize("args, kwargs, exc, name", TRANSITION_CASES)
def test_transition_errors_name_the_argument(args, kwargs, exc, name):
    with pytest.raises(exc, match=name):
        hippo_rs.transition(*args, **kwargs)


def test_unknown_measure_lists_the_valid_ones():
    with pytest.raises(ValueError) as info:
        hippo_rs.transition("legendre", 4)
    for measure in hippo_rs.MEASURES:
        assert measure in str(info.value)


DISCRETIZE_CASES = [
    ((np.ones((4, 3)), B4, 0.1), {}, ValueError, "A"),
    ((np.ones(4), B4, 0.1), {}, ValueError, "A"),
    ((A4, np.ones(3), 0.1), {}, ValueError, "B"),
    ((A4, np.ones((4, 2)), 0.1), {}, ValueError, "B"),
    ((A4, B4, float("nan")), {}, ValueError, "dt"),
    ((A4, B4, -0.1), {}, ValueError, "dt"),
    ((A4, B4, 0.0), {}, ValueError, "dt"),
    ((A4, B4, float("inf")), {}, ValueError, "dt"),
    ((A4, B4, "0.1"), {}, TypeError, "dt"),
    ((A4, B4, 0.1, "rk4"), {}, ValueError, "method"),
    ((A4, B4, 0.1, "gbt"), {}, ValueError, "gbt_alpha"),
    ((A4, B4, 0.1, "gbt", 1.5), {}, ValueError, "gbt_alpha"),
    ((A4, B4, 0.1, "bilinear", 0.5), {}, ValueError, "gbt_alpha"),
    ((A4 + 1j, B4, 0.1), {}, TypeError, "A"),
    ((np.array([["a"] * 4] * 4), B4, 0.1), {}, TypeError, "A"),
    ((np.full((4, 4), np.nan), B4, 0.1), {}, ValueError, "A"),
    ((np.zeros((4, 4)), B4, 1.0, "backward_euler"), {}, None, None),  # I - dt*0 is fine
    ((np.eye(4), B4, 1.0, "backward_euler"), {}, ValueError, "singular"),
]


def _discretize(args, kwargs):
    """Cases are (A, B, dt[, method[, gbt_alpha]]); every option after A, B is a keyword."""
    A, B, dt, *options = args
    return hippo_rs.discretize(A, B, dt=dt, **dict(zip(("method", "gbt_alpha"), options)), **kwargs)


@pytest.mark.parametrize("args, kwargs, exc, name", DISCRETIZE_CASES)
def test_discretize_errors_name_the_argument(args, kwargs, exc, name):
    if exc is None:
        _discretize(args, kwargs)
        return
    with pytest.raises(exc, match=name):
        _discretize(args, kwargs)


LEGS_STEP_CASES = [
    ((4, 0), {}, ValueError, "t"),
    ((4, -1), {}, ValueError, "t"),
    ((4, 1.5), {}, TypeError, "t"),
    ((0, 3), {}, ValueError, "N"),
    ((4, 3), {"method": "rk4"}, ValueError, "method"),
    ((4, 3), {"convention": "new"}, ValueError, "convention"),
    ((4, 3), {"method": "gbt"}, ValueError, "gbt_alpha"),
    ((2**40, 3), {}, MemoryError, "N"),
]


@pytest.mark.parametrize("args, kwargs, exc, name", LEGS_STEP_CASES)
def test_legs_step_matrices_errors_name_the_argument(args, kwargs, exc, name):
    N, t = args
    with pytest.raises(exc, match=name):
        hippo_rs.legs_step_matrices(N, t=t, **kwargs)


def test_sweep_of_bad_inputs_never_crashes_the_interpreter():
    """A crash (panic across FFI, abort on allocation) would kill the child; exceptions are fine."""
    code = """
import itertools, numpy as np, hippo_rs
values = [0, -1, 1, 3, 2**31, 2**63 - 1, 2**64, 1.5, float('nan'), float('inf'), -0.0, None, 'x', (), np.ones(3)]
for measure in ['legs', 'legt', 'glagt', 'fout', 'chebt', 'bad']:
    for N, p in itertools.product(values, values):
        for name in ['theta', 'alpha', 'beta']:
            try:
                hippo_rs.transition(measure, N, **{name: p})
            except (ValueError, TypeError, MemoryError, OverflowError):
                pass
for A, B, dt in itertools.product([np.eye(3), np.ones((3, 2)), np.ones((0, 0)), np.full((3, 3), np.inf)],
                                  [np.ones(3), np.ones(0)], values):
    for method in ['zoh', 'bilinear', 'gbt', 'x']:
        try:
            hippo_rs.discretize(A, B, dt=dt, method=method)
        except (ValueError, TypeError, MemoryError, OverflowError):
            pass
print('survived')
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "survived" in out.stdout


def test_a_panic_in_the_core_is_a_runtime_error_carrying_its_message():
    """Every binding entry point runs under catch_unwind: a bug surfaces as an ordinary exception."""
    with pytest.raises(RuntimeError, match="internal error in _panic_for_tests: boom"):
        hippo_rs._core._panic_for_tests("boom")


def test_a_result_larger_than_memory_is_a_memory_error_naming_it():
    with pytest.raises(MemoryError, match="return_all=True"):
        hippo_rs.scan(np.zeros(10**7, np.float32), 10**5, return_all=True)
    with pytest.raises(MemoryError, match="N"):
        hippo_rs.scan(np.zeros(3, np.float32), 2**62, return_all=False)
