"""Hypothesis fuzzing of the public Python API's argument space, in a child interpreter.

Every public entry point (the numpy functions, Memory, the torch functions, the raw torch ops, the
cells and HiPPORNN) is called with arguments drawn from valid values and from the mistakes a
user makes (wrong types, NaN and inf, negative and huge sizes, wrong shapes and dtypes, empty and
non-contiguous arrays, unknown names). Each call must either return or raise ValueError, TypeError or
MemoryError whose message names one of the function's arguments. The child is a separate interpreter
so that a crash (a Rust panic or an abort) fails the test instead of killing pytest; the examples are
derandomized, so a failure reproduces.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    r'''
    import inspect, sys
    import numpy as np
    from hypothesis import HealthCheck, given, settings, strategies as st
    import hippo_rs

    EXPECTED = (ValueError, TypeError, MemoryError)
    SETTINGS = settings(max_examples=int(sys.argv[1]), deadline=None, derandomize=True, database=None,
                        suppress_health_check=list(HealthCheck))

    def arrays(*shapes):
        out = []
        for shape in shapes:
            for dtype in (np.float32, np.float64, np.int64, np.complex128, object):
                a = np.ones(shape, dtype=dtype) if dtype is not object else np.full(shape, "x", dtype=object)
                out.append(a)
        out.append(np.ones((12, 6), np.float64)[:, ::2])  # non-contiguous
        out.append(np.full(3, np.nan))
        out.append(np.full((2, 3), np.inf, np.float32))
        return out

    SIZES = [0, -1, 1, 3, 8, 2**40, 2**62, 2**64, 1.5, "8", None, True, np.int64(4), np.float64(4.0)]
    FLOATS = [0.0, -1.0, 1e-3, 0.5, 1.0, 2.0, float("nan"), float("inf"), -float("inf"), 1e308, "1", None, 1j]
    NAMES = ["legs", "legt", "lmu", "lagt", "glagt", "fout", "chebt", "LEGS", "", "nope", 3, None, b"legs"]
    METHODS = ["bilinear", "zoh", "gbt", "forward_euler", "backward_euler", "tustin", "euler", "rk4", 1, None]
    SIGNALS = [[0.1, 0.2], 0.3, "abc", None] + arrays((0,), (5,), (5, 2), (2, 3, 4))
    STATES = [None, 0.0] + arrays((3,), (2, 3), (2, 8), (5, 8), (8,))
    TIMES = [None, 0.0, 1.0, -1.0, [0.0, 1.0], np.array([1.0, 0.5]), np.arange(5.0), np.arange(5.0) + 1,
             np.full(5, np.nan), "t"]

    def pick(values):
        return st.sampled_from(range(len(values))).map(lambda i: values[i])

    def options(**pools):
        """Dicts of keyword arguments: each key present or not, its value from its pool."""
        return st.fixed_dictionaries({}, optional={k: pick(v) for k, v in pools.items()})

    def check(fn, *args, **kwargs):
        try:
            fn(*args, **kwargs)
        except EXPECTED as e:
            names = set(inspect.signature(fn).parameters) | set(kwargs) | {
                "measure", "method", "gbt_alpha", "theta", "beta", "alpha", "dt", "t", "N", "f", "c", "c0",
                "timestamps", "t_prev", "convention", "out", "times", "chunk", "dtype", "batch_shape", "A", "B"}
            message = str(e)
            assert any(n in message for n in names), f"{fn.__name__}{args!r}{kwargs!r}: {type(e).__name__}: {message!r} names no argument"

    COMMON = dict(measure=NAMES, method=METHODS, gbt_alpha=FLOATS, theta=FLOATS, beta=FLOATS,
                  alpha=FLOATS, convention=["original", "paper", "new", 0])

    @SETTINGS
    @given(pick(SIGNALS), pick(SIZES), options(dt=FLOATS, c0=STATES, t=SIZES, timestamps=TIMES, t_prev=FLOATS,
                                               return_all=[True, False, None, "yes"], **COMMON))
    def fuzz_scan(f, N, kw):
        check(hippo_rs.scan, f, N, **kw)

    @SETTINGS
    @given(pick(STATES), pick(SIGNALS), options(dt=FLOATS, t=SIZES, timestamps=TIMES, t_prev=FLOATS, **COMMON))
    def fuzz_update(c, f, kw):
        check(hippo_rs.update, c, f, **kw)

    @SETTINGS
    @given(pick(STATES), pick(SIGNALS), pick(SIZES), options(method=METHODS, gbt_alpha=FLOATS,
                                                           convention=COMMON["convention"]))
    def fuzz_legs_update(c, f, t, kw):
        check(hippo_rs.legs_update, c, f, t, **kw)

    @SETTINGS
    @given(pick(NAMES), pick(SIZES), options(theta=FLOATS, beta=FLOATS, alpha=FLOATS))
    def fuzz_transition(measure, N, kw):
        check(hippo_rs.transition, measure, N, **kw)

    @SETTINGS
    @given(pick(STATES + [np.eye(3), np.eye(8)]), pick(STATES), options(dt=FLOATS, method=METHODS, gbt_alpha=FLOATS))
    def fuzz_discretize(A, B, kw):
        kw.setdefault("dt", 0.1)
        check(hippo_rs.discretize, A, B, **kw)

    @SETTINGS
    @given(pick(SIZES), options(t=SIZES, method=METHODS, gbt_alpha=FLOATS, convention=COMMON["convention"]))
    def fuzz_legs_step_matrices(N, kw):
        kw.setdefault("t", 1)
        check(hippo_rs.legs_step_matrices, N, **kw)

    @SETTINGS
    @given(pick(NAMES), pick(STATES), pick(TIMES), options(t=FLOATS, theta=FLOATS, beta=FLOATS, alpha=FLOATS))
    def fuzz_reconstruct(measure, c, times, kw):
        kw.setdefault("t", 1.0)
        check(hippo_rs.reconstruct, measure, c, times, **kw)

    @SETTINGS
    @given(pick(SIZES), options(dt=FLOATS, dtype=[np.float32, np.float64, np.int32, "float32", None, "x"],
                                batch_shape=[(), (2,), (0,), (-1,), 3, "x"], **COMMON),
           pick(SIGNALS), pick(TIMES))
    def fuzz_memory(N, kw, chunk, timestamps):
        try:
            mem = hippo_rs.Memory(N, **kw)
        except EXPECTED as e:
            check(hippo_rs.Memory, N, **kw)
            return
        check(mem.update, chunk, timestamps)
        check(mem.reconstruct, timestamps)

    fuzzers = [fuzz_scan, fuzz_update, fuzz_legs_update, fuzz_transition, fuzz_discretize,
               fuzz_legs_step_matrices, fuzz_reconstruct, fuzz_memory]
    if sys.argv[2] == "torch":
        import torch
        import hippo_rs.torch as ht

        T_SIGNALS = [torch.ones(5), torch.ones(5, 2, dtype=torch.float64), torch.ones(0), torch.ones(5, 2, dtype=torch.int64),
                     torch.full((5,), float("nan")), torch.ones(5, 2)[:, :1], [0.1, 0.2], None, np.ones(5)]
        T_STATES = [None, torch.zeros(8), torch.zeros(2, 8), torch.zeros(5, 8, dtype=torch.float64),
                    torch.zeros(2, 3), torch.zeros(2, 8, dtype=torch.int32), np.zeros(8)]

        @SETTINGS
        @given(pick(T_SIGNALS), pick(SIZES), options(dt=FLOATS, c0=T_STATES, t=SIZES, timestamps=TIMES,
                                                     return_all=[True, False], **COMMON))
        def fuzz_torch_scan(f, N, kw):
            check(ht.scan, f, N, **kw)

        @SETTINGS
        @given(pick(T_STATES), pick(T_SIGNALS), options(dt=FLOATS, t=SIZES, **COMMON))
        def fuzz_torch_update(c, f, kw):
            check(ht.update, c, f, **kw)

        def check_op(op, *args):
            """A raw op: our checks raise ValueError/TypeError naming the argument; a value the schema
            cannot take at all is the dispatcher's RuntimeError, which names the op and the argument."""
            try:
                check(op, *args)
            except RuntimeError as e:
                assert str(e).startswith("hippo_rs::"), f"{op}{args!r}: RuntimeError {e}"

        F2 = [torch.ones(4, 2), torch.ones(4, 2, dtype=torch.float64), torch.ones(0, 2), torch.ones(4),
              torch.ones(4, 2, dtype=torch.int32), torch.full((4, 2), float("nan")), "f"]
        C2 = [torch.zeros(2, 8), torch.zeros(2, 8, dtype=torch.float64), torch.zeros(3, 8), torch.zeros(8), None]
        COEF = [torch.full((4, 3), 0.01, dtype=torch.float64), torch.full((4, 3), float("nan"), dtype=torch.float64),
                torch.full((4, 3), -float("inf"), dtype=torch.float64), torch.full((4, 2, 3), 0.01, dtype=torch.float64),
                torch.full((4, 3), 0.01), torch.zeros(4, 2, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64)]
        PARAMS = [[], [1.0], [0.0], [float("nan")], [1.0, 2.0], [-1.0]]

        @SETTINGS
        @given(pick(F2), pick(C2), pick(COEF), pick(NAMES[:8]), pick(PARAMS), st.booleans())
        def fuzz_raw_gbt_scan(f, c0, coef, measure, params, return_all):
            check_op(torch.ops.hippo_rs.gbt_scan, f, c0, coef, measure, params, return_all)

        @SETTINGS
        @given(pick(C2), pick(F2 + [torch.ones(2), torch.ones(3)]), pick(COEF + [torch.full((2, 3), 0.1, dtype=torch.float64)]),
               pick(NAMES[:8]), pick(PARAMS))
        def fuzz_raw_gbt_step(c, f, coef, measure, params):
            check_op(torch.ops.hippo_rs.gbt_step, c, f, coef, measure, params)

        @SETTINGS
        @given(pick(SIZES), pick(SIZES), options(memory_order=SIZES, memory_size=SIZES, gate=[True, False, None],
                                                 dt=FLOATS, timestamped=[True, False, 1], **COMMON),
               pick([torch.ones(5, 2, 3), torch.ones(5, 2, 4), torch.ones(2, 3), torch.ones(5, 2, 3, dtype=torch.float64)]),
               pick([None, torch.tensor([5, 1]), torch.tensor([6, 1]), torch.tensor([-1, 2]), torch.tensor([5.0, 1.0])]),
               pick([None, torch.cumsum(torch.ones(5, 2), 0), torch.ones(4, 2)]))
        def fuzz_modules(input_size, hidden_size, kw, x, lengths, timestamps):
            try:
                cell = ht.HiPPOCell(input_size, hidden_size, **kw)
            except EXPECTED:
                check(ht.HiPPOCell, input_size, hidden_size, **kw)
                return
            if cell.hidden_size * cell.memory_order * cell.memory_size > 10**5:
                return
            check(ht.HiPPORNN(cell), x, None, lengths, timestamps)
            check(cell, x[0] if x.dim() == 3 else x)

        fuzzers += [fuzz_torch_scan, fuzz_torch_update, fuzz_raw_gbt_scan, fuzz_raw_gbt_step, fuzz_modules]

    for fuzz in fuzzers:
        fuzz()
    print("fuzzed", len(fuzzers), "entry points")
    '''
)


@pytest.mark.parametrize("front", ["numpy", "torch"])
def test_public_api_fuzz(front):
    if front == "torch":
        pytest.importorskip("torch")
    examples = os.environ.get("HIPPO_API_FUZZ_EXAMPLES", "150")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, examples, front], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    assert "fuzzed" in proc.stdout
