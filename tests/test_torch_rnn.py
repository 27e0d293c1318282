"""torch.ops.hippo_rs.rnn (the HiPPO-RNN layer as one op) against the cell run step by step.

The step-by-step path is the independent reference here: :class:`HiPPOCell` written with torch
operations and the ``gbt_step`` op, itself tested against the dense recurrence (test_torch_modules,
test_torch_ops). A subclass that overrides ``forward`` keeps :class:`HiPPORNN` on that path.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import hippo_rs.torch as ht
from hippo_rs.torch._rnn import fused_applies

F64 = torch.float64
# "legt" and "lmu" cells default to the original code's ZOH step; "-bilinear" takes their GBT step.
MEASURES = ["legs", "tlegs", "legt", "legt-bilinear", "lmu", "lmu-bilinear", "lagt", "glagt", "fout", "chebt"]


class StepCell(ht.HiPPOCell):
    """The same cell, run step by step (a subclass with its own forward is never fused)."""

    def forward(self, x, state=None, timestamp=None):
        return super().forward(x, state, timestamp)


def _pair(name, I, H, dtype=F64, seed=0, **kw):
    name, _, method = name.partition("-")
    if method:
        kw.setdefault("method", method)
    torch.manual_seed(seed)
    fused = ht.HiPPORNN(name, I, H, **kw).to(dtype)
    cell_kw = dict(kw)
    cell_kw.pop("batch_first", None)
    step_cell = StepCell(I, H, measure=name, **{k: v for k, v in cell_kw.items()}).to(dtype)
    step_cell.load_state_dict(fused.cell.state_dict())
    step = ht.HiPPORNN(step_cell, batch_first=fused.batch_first)
    return fused, step


def _run(rnn, x, state=None, lengths=None, timestamps=None):
    """Outputs, final state and the gradients of x, the initial state and every parameter."""
    x = x.clone().requires_grad_()
    if state is not None:
        state = ht.HiPPOState(state.h.clone().requires_grad_(), state.c.clone().requires_grad_(), state.t)
    y, s = rnn(x, state, lengths=lengths, timestamps=timestamps)
    probe = torch.sin(torch.arange(y.numel(), dtype=y.dtype)).reshape(y.shape)
    loss = (y * probe).sum() + (s.h * 0.3).sum() + (s.c**2).sum()
    inputs = [x] + ([state.h, state.c] if state is not None else []) + list(rnn.parameters())
    grads = torch.autograd.grad(loss, inputs)
    return [y, *s, *grads]


def _assert_same(a, b, dtype=F64):
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == F64 else dict(rtol=2e-4, atol=2e-5)
    assert len(a) == len(b)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, equal_nan=True, **tol)


def _timestamps(L, B, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.cumsum(torch.rand(L, B, generator=g, dtype=F64) + 0.05, 0)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("gate", [True, False])
def test_fused_equals_step_by_step(measure, gate):
    fused, step = _pair(measure, 3, 6, memory_order=5, gate=gate)
    assert fused_applies(fused.cell, torch.zeros(1, dtype=F64)) and not fused_applies(step.cell, torch.zeros(1))
    x = torch.randn(9, 4, 3, dtype=F64)
    ts = _timestamps(9, 4)
    _assert_same(_run(fused, x, timestamps=ts), _run(step, x, timestamps=ts))


@pytest.mark.parametrize("measure", ["legt", "lmu"])
def test_zoh_cells_are_fused(measure):
    """LegT/LMU cells default to the original code's ZOH (a dense step matrix): fused too, with
    lengths, M = 2 memory units and an initial state."""
    fused, step = _pair(measure, 3, 6, memory_order=5, memory_size=2)
    assert fused.cell.method == "zoh" and fused_applies(fused.cell, torch.zeros(1, dtype=F64))
    x, lengths = torch.randn(8, 4, 3, dtype=F64), torch.tensor([8, 0, 3, 6])
    state = ht.HiPPOState(torch.randn(4, 6, dtype=F64), torch.randn(4, 2, 5, dtype=F64), torch.zeros(4, dtype=F64))
    _assert_same(_run(fused, x, state, lengths=lengths), _run(step, x, state, lengths=lengths))


@pytest.mark.parametrize("measure", ["legs", "tlegs", "lmu", "fout"])
def test_lengths_units_batch_first_and_initial_state(measure):
    """Per-row lengths (0, partial, full), M = 2 memory units, batch_first, and a non-zero
    initial state (LegS: a carried step index, per row)."""
    fused, step = _pair(measure, 2, 4, memory_order=3, memory_size=2, batch_first=True)
    B, L = 5, 7
    x = torch.randn(B, L, 2, dtype=F64)
    ts = _timestamps(L, B, seed=3).T
    lengths = torch.tensor([7, 0, 3, 7, 1])
    s0 = fused.cell.initial_state(B)
    t0 = torch.tensor([0.0, 2.0, 5.0, 1.0, 3.0], dtype=F64)
    if measure == "tlegs":
        t0 = torch.tensor([float("nan"), 0.0, float("nan"), 0.01, 0.02], dtype=F64)  # before the first sample
    state = ht.HiPPOState(torch.randn(B, 4, dtype=F64), torch.randn(B, 2, 3, dtype=F64), t0)
    for st_ in (None, state):
        _assert_same(
            _run(fused, x, st_, lengths=lengths, timestamps=ts), _run(step, x, st_, lengths=lengths, timestamps=ts)
        )
    assert s0.t.dtype == F64


@pytest.mark.parametrize(
    "method, alpha, convention",
    [("forward_euler", None, "original"), ("backward_euler", None, "paper"), ("gbt", 0.3, "paper")],
)
def test_methods_and_conventions(method, alpha, convention):
    for name in ("legs", "tlegs"):
        fused, step = _pair(name, 2, 5, memory_order=4, method=method, gbt_alpha=alpha, convention=convention)
        x = torch.randn(6, 3, 2, dtype=F64)
        ts = _timestamps(6, 3, seed=1)
        _assert_same(_run(fused, x, timestamps=ts), _run(step, x, timestamps=ts))
    fused, step = _pair("legt", 2, 5, memory_order=4, method=method, gbt_alpha=alpha)
    x = torch.randn(6, 3, 2, dtype=F64)
    _assert_same(_run(fused, x), _run(step, x))


@settings(max_examples=12, deadline=None)
@given(
    measure=st.sampled_from(MEASURES),
    L=st.integers(1, 6),
    B=st.integers(1, 80),
    H=st.integers(1, 40),
    N=st.integers(1, 9),
    M=st.integers(1, 2),
    I=st.integers(1, 3),
    gate=st.booleans(),
)
def test_shapes_hypothesis(measure, L, B, H, N, M, I, gate):
    """Any sizes, including batches split into parallel blocks and ragged GEMM tiles."""
    fused, step = _pair(measure, I, H, memory_order=N, memory_size=M, gate=gate)
    x = torch.randn(L, B, I, dtype=F64)
    ts = _timestamps(L, B)
    lengths = torch.randint(0, L + 1, (B,))
    _assert_same(_run(fused, x, lengths=lengths, timestamps=ts), _run(step, x, lengths=lengths, timestamps=ts))


@pytest.mark.parametrize("measure", ["legs", "lmu"])
def test_float32_within_rounding(measure):
    """float32 (the AVX-512 kernels, the fast activations) against the float64 step-by-step path."""
    fused, _ = _pair(measure, 1, 48, dtype=torch.float32, memory_order=40)
    _, step64 = _pair(measure, 1, 48, dtype=F64, memory_order=40)
    x = torch.randn(50, 37, 1)
    got = _run(fused, x)
    want = _run(step64, x.double())
    for u, v in zip(got, want):
        scale = v.detach().abs().max().clamp(min=1.0)
        assert float((u.detach().double() - v.detach()).abs().max() / scale) < 1e-4


def test_gradcheck_op():
    torch.manual_seed(1)
    for name in ("legs", "lmu"):
        rnn = ht.HiPPORNN(name, 2, 3, memory_order=3, memory_size=2).double()
        x = torch.randn(4, 3, 2, dtype=F64, requires_grad=True)
        h0 = torch.randn(3, 3, dtype=F64, requires_grad=True)
        c0 = torch.randn(3, 2, 3, dtype=F64, requires_grad=True)
        t0 = torch.tensor([0.0, 1.0, 4.0], dtype=F64)
        lengths = torch.tensor([4, 2, 3])

        def fn(x, h0, c0, *params):
            out = torch.func.functional_call(
                rnn, dict(zip([n for n, _ in rnn.named_parameters()], params)),
                (x, ht.HiPPOState(h0, c0, t0)), {"lengths": lengths},
            )
            return out[0], out[1].h, out[1].c

        params = [p.detach().clone().requires_grad_() for p in rnn.parameters()]
        assert torch.autograd.gradcheck(fn, (x, h0, c0, *params))


def test_opcheck():
    torch.manual_seed(0)
    for gate in (True, False):
        cell = ht.HiPPOCell(2, 3, memory_order=4, gate=gate)
        L, B = 5, 3
        x, h0, c0 = torch.randn(L, B, 2), torch.randn(B, 3), torch.randn(B, 1, 4)
        coef = ht.gbt_coefficients(L, measure="legs", t=torch.tensor([0, 1, 2]))
        lengths = torch.tensor([5, 2, 0])
        wg = (cell.W_g.weight, cell.W_g.bias) if gate else (None, None)
        weights = (cell.W_f.weight, cell.W_f.bias, cell.W_h.weight, cell.W_h.bias, *wg)
        torch.library.opcheck(torch.ops.hippo_rs.rnn, (x, h0, c0, coef, lengths, *weights, "legs", [], True, None))
        # Inference (nothing saved): not differentiable, so no autograd checks.
        inference = (x, h0, c0, coef, lengths, *weights, "legs", [], False, None)
        torch.library.opcheck(torch.ops.hippo_rs.rnn, inference, test_utils=("test_schema", "test_faketensor"))


def test_inference_saves_nothing_and_gives_the_training_outputs():
    torch.manual_seed(0)
    rnn = ht.HiPPORNN("legs", 2, 8, memory_order=6)
    x, lengths = torch.randn(9, 4, 2), torch.tensor([9, 5, 1, 0])
    y, s = rnn(x, lengths=lengths)
    with torch.no_grad():
        y0, s0 = rnn(x, lengths=lengths)
    assert torch.equal(y0, y) and all(torch.equal(a, b) for a, b in zip(s0, s))
    cell = rnn.cell
    coef = ht.gbt_coefficients(9, measure="legs")
    w = (cell.W_f.weight, cell.W_f.bias, cell.W_h.weight, cell.W_h.bias, cell.W_g.weight, cell.W_g.bias)
    h0, c0 = torch.zeros(4, 8), torch.zeros(4, 1, 6)
    with torch.no_grad():
        out = torch.ops.hippo_rs.rnn(x, h0, c0, coef, lengths, *w, "legs", [], False, None)
    assert [o.numel() for o in out[3:]] == [0, 0, 0]
    assert torch.equal(out[0], y0)


def test_compile_matches_eager():
    torch._dynamo.reset()
    torch.manual_seed(0)
    rnn = ht.HiPPORNN("legs", 2, 8, memory_order=6)
    x = torch.randn(7, 3, 2)
    lengths = torch.tensor([7, 4, 1])
    eager = rnn(x, lengths=lengths)[0]
    got = torch.compile(rnn, fullgraph=True, backend="aot_eager")(x, lengths=lengths)[0]
    torch.testing.assert_close(got, eager)
    g_eager = torch.autograd.grad(eager.sum(), list(rnn.parameters()))
    g_got = torch.autograd.grad(got.sum(), list(rnn.parameters()))
    for a, b in zip(g_got, g_eager):
        torch.testing.assert_close(a, b)


def test_empty_sequence_keeps_the_state():
    rnn = ht.HiPPORNN("legs", 2, 3, memory_order=4).double()
    state = ht.HiPPOState(torch.randn(2, 3, dtype=F64), torch.randn(2, 1, 4, dtype=F64), torch.tensor([3.0, 0.0], dtype=F64))
    y, s = rnn(torch.zeros(0, 2, 2, dtype=F64), state)
    assert y.shape == (0, 2, 3)
    for a, b in zip(s, state):
        assert torch.equal(a, b)


def test_bad_inputs_are_errors():
    cell = ht.HiPPOCell(2, 3, memory_order=4)
    x, h0, c0 = torch.randn(5, 3, 2), torch.randn(3, 3), torch.randn(3, 1, 4)
    coef = ht.gbt_coefficients(5, measure="legs")
    lengths = torch.full((3,), 5)
    w = (cell.W_f.weight, cell.W_f.bias, cell.W_h.weight, cell.W_h.bias, cell.W_g.weight, cell.W_g.bias)
    with pytest.raises(TypeError, match="h0"):
        torch.ops.hippo_rs.rnn(x, h0.double(), c0, coef, lengths, *w, "legs", [], True, None)
    with pytest.raises(ValueError, match="lengths"):
        torch.ops.hippo_rs.rnn(x, h0, c0, coef, lengths[:2], *w, "legs", [], True, None)
    with pytest.raises(ValueError, match="w_h"):
        torch.ops.hippo_rs.rnn(x, h0, c0, coef, lengths, w[0], w[1], w[2][:, :3], *w[3:], "legs", [], True, None)
    with pytest.raises(ValueError, match="coef"):
        torch.ops.hippo_rs.rnn(x, h0, c0, coef[:3], lengths, *w, "legs", [], True, None)
    with pytest.raises(ValueError, match="timestamps"):
        ht.HiPPORNN("tlegs", 2, 3)(x)
