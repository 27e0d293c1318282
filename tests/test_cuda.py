"""CUDA kernels of the hippo_rs torch ops against the CPU (Rust) ops. Skipped without a CUDA device.

Covers: forward/backward scans and steps for every CUDA measure, GBT weight and coefficient layout
(shared (L, 3), per row (L, R, 3), LegS reset rows), float32 and float64, N from 1 to 2048;
gradcheck in float64 on the GPU; opcheck; torch.compile; CUDA-graph capture; a HiPPO-RNN
training step with the same loss and gradients on CPU and GPU; and the HiPPO-RNN layer as one op
(hippo_rs::rnn on CUDA) against the CPU op and against the cell run step by step, with gradcheck,
opcheck, torch.compile and CUDA-graph capture.
"""

import copy
import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA device (torch.cuda.is_available() is False)", allow_module_level=True)

import hippo_rs.torch  # noqa: E402,F401  (defines the ops)
from hippo_rs.torch import _cuda  # noqa: E402  (registers their CUDA kernels)
from hippo_rs.torch._rnn import fused_applies  # noqa: E402

ops = torch.ops.hippo_rs
CUDA = torch.device("cuda")
INF = math.inf
PARAMS = {"legs": [], "legt": [1.3], "lmu": [0.9], "lagt": [1.0]}
MEASURES = list(PARAMS)
METHODS = {"forward_euler": 0.0, "bilinear": 0.5, "backward_euler": 1.0, "gbt0.3": 0.3}


def legs_coef(L, alpha, convention="original", t0=0):
    """LegS rows at step index t = t0 + k (docs/conventions.md); t = 0 is the reset row."""
    rows = []
    for t in range(t0, t0 + L):
        if t == 0:
            rows.append((INF, 0.0, 0.0))
        elif convention == "original":
            rows.append((alpha / t, (1 - alpha) / t, 1.0 / t))
        else:
            rows.append((alpha / (t + 1), (1 - alpha) / t, alpha / (t + 1) + (1 - alpha) / t))
    return torch.tensor(rows, dtype=torch.float64).reshape(L, 3)


def lti_coef(L, dt, alpha):
    return torch.tensor([[alpha * dt, (1 - alpha) * dt, dt]], dtype=torch.float64).expand(L, 3).contiguous()


def per_row_coef(L, R, alpha, measure, rng, dt_scale):
    """Timestamped rows, one per step and row: random steps, and LegS resets at random places."""
    if measure == "legs":
        t1 = np.cumsum(rng.uniform(0.1, 2.0, (L, R)), axis=0)
        t0 = np.concatenate([np.zeros((1, R)), t1[:-1]])
        delta = (t1 - t0) / t1
        coef = np.stack([alpha * delta, (1 - alpha) * delta, delta], axis=-1)
        coef[0] = (INF, 0.0, 0.0)
        coef[rng.random((L, R)) < 0.05] = (INF, 0.0, 0.0)
    else:
        dt = rng.uniform(0.001, 0.2, (L, R)) * dt_scale
        coef = np.stack([alpha * dt, (1 - alpha) * dt, dt], axis=-1)
        coef[rng.random((L, R)) < 0.05] = (INF, 0.0, 0.0)  # the reset rule holds for every measure
    return torch.from_numpy(coef)


def coef_for(measure, L, R, method, layout, rng, N):
    """Rows for a test case. Explicit-leaning weights (alpha < 1/2) are unstable for stiff A: their
    time-invariant steps shrink with N (dt ~ 1/N^2) so that the states stay finite."""
    alpha = METHODS[method]
    dt_scale = 1.0 if alpha >= 0.5 else 1.0 / N**2
    if layout == "per_row":
        return per_row_coef(L, R, alpha, measure, rng, dt_scale)
    if measure == "legs":
        return legs_coef(L, alpha, "paper" if layout == "paper" else "original", t0=int(rng.integers(0, 3)))
    return lti_coef(L, float(rng.uniform(0.005, 0.1)) * dt_scale, alpha)


def close(gpu, cpu, dtype, what):
    """GPU result (any dtype, cast to float64) against the float64 CPU op, relative to the signal scale:
    1e-9 for float64, 2e-4 for float32 (float32 rounding over the recurrence)."""
    scale = max(1.0, cpu.abs().max().item()) if cpu.numel() else 1.0
    tol = 1e-9 if dtype == torch.float64 else 2e-4
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=tol, atol=tol * scale, msg=lambda m: f"{what}: {m}")


CASES = [
    # (N, R, L)
    (1, 3, 9),
    (5, 2, 40),
    (32, 5, 33),
    (33, 4, 64),
    (64, 37, 70),
    (100, 3, 31),
    (256, 6, 20),
    (300, 2, 17),
    (513, 3, 12),
    (1024, 2, 10),
    (2048, 1, 5),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layout", ["shared", "per_row", "paper"])
@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("measure", MEASURES)
def test_scan_forward_and_backward_match_cpu(measure, method, layout, dtype):
    rng = np.random.default_rng(zlib.crc32(f"{measure} {method} {layout} {dtype}".encode()))
    for N, R, L in CASES:
        if measure == "legs" and METHODS[method] < 0.5 and N > 16:
            continue  # LegS with alpha < 1/2 amplifies by ~prod_t |1 - (n+1)/t|: overflows float32 for large N
        coef = coef_for(measure, L, R, method, layout, rng, N)
        f = torch.from_numpy(rng.standard_normal((L, R))).to(dtype)
        c0 = torch.from_numpy(rng.standard_normal((R, N))).to(dtype) * 0.1
        for return_all in (True, False):
            what = f"{measure} {method} {layout} {dtype} N={N} R={R} L={L} return_all={return_all}"
            p = PARAMS[measure]
            # The CPU op in float64 on the same (rounded) inputs is the reference for both dtypes.
            cpu = ops.gbt_scan(f.double(), c0.double(), coef, measure, p, return_all)
            gpu = ops.gbt_scan(f.to(CUDA), c0.to(CUDA), coef.to(CUDA), measure, p, return_all)
            close(gpu.double(), cpu, dtype, "forward " + what)
            grad = torch.from_numpy(rng.standard_normal(tuple(cpu.shape))).to(dtype)
            gf_cpu, gc_cpu = ops.gbt_scan_backward(grad.double(), coef, measure, p, return_all, N)
            gf_gpu, gc_gpu = ops.gbt_scan_backward(grad.to(CUDA), coef.to(CUDA), measure, p, return_all, N)
            close(gf_gpu.double(), gf_cpu, dtype, "grad_f " + what)
            close(gc_gpu.double(), gc_cpu, dtype, "grad_c0 " + what)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("measure", MEASURES)
def test_step_and_step_backward_match_cpu(measure, dtype):
    rng = np.random.default_rng(7)
    for N, R in [(1, 1), (17, 5), (64, 100), (700, 3)]:
        c = torch.from_numpy(rng.standard_normal((R, N))).to(dtype)
        f = torch.from_numpy(rng.standard_normal(R)).to(dtype)
        for coef in (
            torch.tensor([0.05, 0.05, 0.1], dtype=torch.float64),
            torch.from_numpy(rng.uniform(0.0, 0.2, (R, 3))),
            torch.tensor([INF, 0.0, 0.0], dtype=torch.float64),
        ):
            p = PARAMS[measure]
            close(ops.gbt_step(c.to(CUDA), f.to(CUDA), coef.to(CUDA), measure, p).double(),
                  ops.gbt_step(c.double(), f.double(), coef, measure, p), dtype, f"step {measure} N={N}")
            gc, gf = ops.gbt_step_backward(c.to(CUDA), coef.to(CUDA), measure, p)
            gc_cpu, gf_cpu = ops.gbt_step_backward(c.double(), coef, measure, p)
            close(gc.double(), gc_cpu, dtype, f"step grad_c {measure} N={N}")
            close(gf.double(), gf_cpu, dtype, f"step grad_f {measure} N={N}")


def test_long_legs_scan_keeps_constant_input_at_e0():
    # f = 1 keeps c = e0 exactly under every GBT discretisation of LegS (the LegS column 0 of A is -B, paper App. D.1).
    L, R, N = 5000, 4, 1024
    f = torch.ones(L, R, device=CUDA)
    out = ops.gbt_scan(f, torch.zeros(R, N, device=CUDA), legs_coef(L, 0.5).to(CUDA), "legs", [], False)
    want = torch.zeros(R, N, device=CUDA)
    want[:, 0] = 1
    torch.testing.assert_close(out, want, rtol=0, atol=1e-4)


@pytest.mark.parametrize("measure", MEASURES)
def test_gradcheck_float64_on_gpu(measure):
    rng = np.random.default_rng(3)
    L, R, N = 6, 3, 9
    coef = coef_for(measure, L, R, "bilinear", "per_row", rng, N).to(CUDA)
    f = torch.randn(L, R, dtype=torch.float64, device=CUDA, requires_grad=True)
    c0 = torch.randn(R, N, dtype=torch.float64, device=CUDA, requires_grad=True)
    p = PARAMS[measure]
    for return_all in (True, False):
        assert torch.autograd.gradcheck(lambda f, c0: ops.gbt_scan(f, c0, coef, measure, p, return_all), (f, c0))
    c = torch.randn(R, N, dtype=torch.float64, device=CUDA, requires_grad=True)
    fs = torch.randn(R, dtype=torch.float64, device=CUDA, requires_grad=True)
    k = torch.tensor([0.1, 0.05, 0.2], dtype=torch.float64, device=CUDA)
    assert torch.autograd.gradcheck(lambda c, fs: ops.gbt_step(c, fs, k, measure, p), (c, fs))


@pytest.mark.parametrize("measure", ["legs", "legt"])
def test_opcheck_on_gpu(measure):
    L, R, N = 5, 3, 8
    coef = (legs_coef(L, 0.5) if measure == "legs" else lti_coef(L, 0.05, 0.5)).to(CUDA)
    f = torch.randn(L, R, dtype=torch.float64, device=CUDA, requires_grad=True)
    c0 = torch.randn(R, N, dtype=torch.float64, device=CUDA, requires_grad=True)
    p = PARAMS[measure]
    torch.library.opcheck(ops.gbt_scan.default, (f, c0, coef, measure, p, True))
    torch.library.opcheck(ops.gbt_scan_backward.default, (torch.randn(L, R, N, dtype=torch.float64, device=CUDA),
                                                          coef, measure, p, True, N))
    torch.library.opcheck(ops.gbt_step.default, (c0, f[0], coef[1], measure, p))
    torch.library.opcheck(ops.gbt_step_backward.default, (c0.detach(), coef[1], measure, p))


class ScanModel(torch.nn.Module):
    """A small model over the scan op: linear input -> HiPPO-LegS memory of every step -> readout."""

    def __init__(self, N=32, R=8):
        super().__init__()
        self.inp = torch.nn.Linear(1, R)
        self.out = torch.nn.Linear(R * N, 1)
        self.N = N

    def forward(self, x, coef):  # x (L, B, 1)
        L, B, _ = x.shape
        f = self.inp(x).reshape(L, -1)  # (L, B*R)
        c0 = x.new_zeros(f.shape[1], self.N)
        c = ops.gbt_scan(f, c0, coef, "legs", [], True)  # (L, B*R, N)
        return self.out(c.reshape(L, B, -1)).squeeze(-1)


def test_torch_compile_matches_eager():
    torch.manual_seed(0)
    model = ScanModel().to(CUDA)
    x = torch.randn(50, 4, 1, device=CUDA)
    coef = legs_coef(50, 0.5).to(CUDA)
    compiled = torch.compile(model, fullgraph=True)
    eager_out = model(x, coef)
    comp_out = compiled(x, coef)
    torch.testing.assert_close(comp_out, eager_out, rtol=1e-5, atol=1e-5)
    g1 = torch.autograd.grad(eager_out.square().sum(), list(model.parameters()))
    g2 = torch.autograd.grad(compiled(x, coef).square().sum(), list(model.parameters()))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_cuda_graph_capture_of_forward_and_backward():
    torch.manual_seed(0)
    model = ScanModel().to(CUDA)
    coef = legs_coef(40, 0.5).to(CUDA)
    static_x = torch.randn(40, 4, 1, device=CUDA)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # warm-up outside the capture (builds and loads the extension)
        for _ in range(2):
            model.zero_grad(set_to_none=True)
            model(static_x, coef).square().sum().backward()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    model.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = model(static_x, coef).square().sum()
        static_loss.backward()
    x = torch.randn(40, 4, 1, device=CUDA)
    static_x.copy_(x)
    graph.replay()
    torch.cuda.synchronize()
    graph_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    loss = model(x, coef).square().sum()
    loss.backward()
    torch.testing.assert_close(static_loss, loss, rtol=1e-5, atol=1e-5)
    for a, p in zip(graph_grads, model.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=1e-5, atol=1e-5)


class TinyHiPPORNN(torch.nn.Module):
    """The HiPPO-RNN cell of the paper (Gu et al. 2020, Sec. 5 and App. E) over the step op: f_t = W_f[x, h],
    c_t = LegS step, h~ = tanh(W_h[x, c]), g = sigmoid(W_g[x, c]), h = (1 - g) h + g h~."""

    def __init__(self, d_in, hidden, N, classes):
        super().__init__()
        self.f = torch.nn.Linear(d_in + hidden, 1)
        self.h = torch.nn.Linear(d_in + N, hidden)
        self.g = torch.nn.Linear(d_in + N, hidden)
        self.head = torch.nn.Linear(hidden, classes)
        self.hidden, self.N = hidden, N

    def forward(self, x, coef):  # x (L, B, d_in), coef (L, 3)
        L, B, _ = x.shape
        h = x.new_zeros(B, self.hidden)
        c = x.new_zeros(B, self.N)
        for t in range(L):
            f = self.f(torch.cat([x[t], h], -1)).squeeze(-1)
            c = ops.gbt_step(c, f, coef[t], "legs", [])
            xc = torch.cat([x[t], c], -1)
            g = torch.sigmoid(self.g(xc))
            h = (1 - g) * h + g * torch.tanh(self.h(xc))
        return self.head(h)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_hippo_rnn_training_step_same_on_cpu_and_gpu(dtype):
    torch.manual_seed(0)
    L, B = 30, 8
    cpu_model = TinyHiPPORNN(1, 16, 24, 10).to(dtype)
    gpu_model = TinyHiPPORNN(1, 16, 24, 10).to(dtype).to(CUDA)
    gpu_model.load_state_dict(cpu_model.state_dict())
    x = torch.randn(L, B, 1, dtype=dtype)
    y = torch.randint(0, 10, (B,))
    coef = legs_coef(L, 0.5)
    losses, grads = [], []
    for model, dev in ((cpu_model, "cpu"), (gpu_model, CUDA)):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x.to(dev), coef.to(dev)), y.to(dev))
        loss.backward()
        losses.append(loss.detach().cpu())
        grads.append([p.grad.detach().cpu() for p in model.parameters()])
        opt.step()
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(losses[1], losses[0], rtol=tol, atol=tol)
    for a, b in zip(grads[1], grads[0]):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    for a, b in zip(gpu_model.parameters(), cpu_model.parameters()):
        torch.testing.assert_close(a.detach().cpu(), b.detach(), rtol=tol, atol=tol)


@pytest.mark.parametrize("measure", ["legs", "tlegs", "legt", "lmu", "lagt"])
def test_hippo_rnn_module_training_step_same_on_cpu_and_gpu(measure):
    """hippo_rs.torch.HiPPORNN (the package's cell, coefficient rows built on the signal's device)."""
    torch.manual_seed(0)
    cpu = hippo_rs.torch.HiPPORNN(None, 1, 16, memory_order=12, memory_size=2, measure=measure).double()
    gpu = copy.deepcopy(cpu).to(CUDA)
    x = torch.randn(25, 4, 1, dtype=torch.float64)
    ts = torch.cumsum(torch.rand(25, 4, dtype=torch.float64) + 0.1, 0) if measure == "tlegs" else None
    losses, grads = [], []
    for model, dev in ((cpu, "cpu"), (gpu, CUDA)):
        out, _ = model(x.to(dev), timestamps=None if ts is None else ts.to(dev))
        loss = out[-1].square().sum()
        loss.backward()
        losses.append(loss.detach().cpu())
        grads.append([p.grad.detach().cpu() for p in model.parameters()])
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-10, atol=1e-10)
    for a, b in zip(grads[1], grads[0]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_argument_errors_name_shapes_and_dtypes():
    f = torch.randn(4, 3, device=CUDA)
    c0 = torch.randn(3, 8, device=CUDA)
    coef = legs_coef(4, 0.5).to(CUDA)
    with pytest.raises(ValueError, match=r"coef: expected shape \(4, 3\) or \(4, 3, 3\)"):
        _cuda.load().gbt_scan(f, c0, coef[:2], "legs", [], True)
    with pytest.raises(TypeError, match="c0: expected the dtype of f"):
        _cuda.load().gbt_scan(f, c0.double(), coef, "legs", [], True)
    with pytest.raises(TypeError, match="coef: expected a float64 tensor"):
        _cuda.load().gbt_scan(f, c0, coef.float(), "legs", [], True)
    with pytest.raises(NotImplementedError, match="measure 'fout' has no CUDA kernel"):
        ops.gbt_scan(f, c0, coef, "fout", [1.0], True)
    with pytest.raises(ValueError, match="N: the CUDA kernels support"):
        _cuda.load().gbt_scan(f, torch.zeros(3, 5000, device=CUDA), coef, "legs", [], False)


# --------------------------------------------------------------------------------------------------
# The HiPPO-RNN layer as one op (torch.ops.hippo_rs.rnn / rnn_backward) on CUDA
# --------------------------------------------------------------------------------------------------

RNN_MEASURES = ["legs", "tlegs", "legt", "lmu", "lagt"]


class StepCell(hippo_rs.torch.HiPPOCell):
    """The same cell run step by step (a subclass with its own forward is never fused)."""

    def forward(self, x, state=None, timestamp=None):
        return super().forward(x, state, timestamp)


def rnn_pair(measure, I, H, dtype, seed=0, **kw):
    """A fused HiPPORNN and a step-by-step one with the same weights, on CUDA."""
    if measure in ("legt", "lmu"):
        kw.setdefault("method", "bilinear")  # their cells default to ZOH, which is not a GBT step
    torch.manual_seed(seed)
    fused = hippo_rs.torch.HiPPORNN(measure, I, H, **kw).to(dtype).to(CUDA)
    cell_kw = {k: v for k, v in kw.items() if k != "batch_first"}
    step_cell = StepCell(I, H, measure=measure, **cell_kw).to(dtype).to(CUDA)
    step_cell.load_state_dict(fused.cell.state_dict())
    return fused, hippo_rs.torch.HiPPORNN(step_cell, batch_first=fused.batch_first)


def run_rnn(rnn, x, state=None, lengths=None, timestamps=None):
    """Outputs, final state and the gradients of x, the initial state and every parameter."""
    x = x.clone().requires_grad_()
    if state is not None:
        state = hippo_rs.torch.HiPPOState(state.h.clone().requires_grad_(), state.c.clone().requires_grad_(), state.t)
    y, s = rnn(x, state, lengths=lengths, timestamps=timestamps)
    probe = torch.sin(torch.arange(y.numel(), dtype=y.dtype, device=y.device)).reshape(y.shape)
    loss = (y * probe).sum() + (s.h * 0.3).sum() + (s.c**2).sum()
    inputs = [x] + ([state.h, state.c] if state is not None else []) + list(rnn.parameters())
    return [y, *s, *torch.autograd.grad(loss, inputs)]


def stamps(L, B, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.cumsum(torch.rand(L, B, generator=g, dtype=torch.float64) + 0.05, 0).to(CUDA)


@pytest.mark.parametrize("gate", [True, False])
@pytest.mark.parametrize("measure", RNN_MEASURES)
def test_fused_cuda_layer_equals_step_by_step(measure, gate):
    """HiPPORNN on CUDA runs the fused op and matches the cell run step by step on CUDA: rows that stop
    early (0, partial, full), M = 2 memory units, a non-zero initial state (LegS: per-row step index),
    timestamps, batch_first; float64 to 1e-10."""
    fused, step = rnn_pair(measure, 2, 6, torch.float64, memory_order=7, memory_size=2, gate=gate, batch_first=True)
    B, L = 5, 9
    x = torch.randn(B, L, 2, dtype=torch.float64, device=CUDA)
    assert fused_applies(fused.cell, x) and not fused_applies(step.cell, x)
    ts = stamps(L, B, seed=3).T
    lengths = torch.tensor([9, 0, 3, 9, 1], device=CUDA)
    t0 = torch.tensor([0.0, 2.0, 5.0, 1.0, 3.0], dtype=torch.float64, device=CUDA)
    if measure == "tlegs":
        t0 = torch.tensor([float("nan"), 0.0, float("nan"), 0.01, 0.02], dtype=torch.float64, device=CUDA)
    state = hippo_rs.torch.HiPPOState(torch.randn(B, 6, dtype=torch.float64, device=CUDA),
                                      torch.randn(B, 2, 7, dtype=torch.float64, device=CUDA), t0)
    for st, ln in ((None, None), (state, lengths)):
        got = run_rnn(fused, x, st, lengths=ln, timestamps=ts)
        want = run_rnn(step, x, st, lengths=ln, timestamps=ts)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("measure", ["legs", "lmu"])
def test_fused_cuda_layer_float32_within_rounding(measure):
    """float32 (cuBLAS, the float32 memory kernels) against the float64 step-by-step path, at N = 300
    (several warps per memory row) and a hidden size that is not a multiple of the block."""
    fused, _ = rnn_pair(measure, 1, 300, torch.float32, memory_order=300)
    _, step64 = rnn_pair(measure, 1, 300, torch.float64, memory_order=300)
    x = torch.randn(60, 37, 1, device=CUDA)
    for u, v in zip(run_rnn(fused, x), run_rnn(step64, x.double())):
        scale = v.detach().abs().max().clamp(min=1.0)
        assert float((u.detach().double() - v.detach()).abs().max() / scale) < 1e-4


def rnn_op_args(measure, gate, L, B, I, H, N, M, dtype, per_row, seed):
    """torch.ops.hippo_rs.rnn arguments for a HiPPOCell, on the CPU (float64) and on CUDA (dtype)."""
    from hippo_rs.torch._rnn import _coefficients

    kw = {"method": "bilinear"} if measure in ("legt", "lmu") else {}
    torch.manual_seed(seed)
    cell = hippo_rs.torch.HiPPOCell(I, H, memory_order=N, memory_size=M, measure=measure, gate=gate, **kw).double()
    t = torch.randint(0, 4, (B,)).double() if per_row else torch.zeros(B, dtype=torch.float64)
    lengths = torch.randint(0, L + 1, (B,))
    w = [p.detach() for p in (cell.W_f.weight, cell.W_f.bias, cell.W_h.weight, cell.W_h.bias)]
    w += [cell.W_g.weight.detach(), cell.W_g.bias.detach()] if gate else [None, None]
    cpu = [torch.randn(L, B, I, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64),
           0.3 * torch.randn(B, M, N, dtype=torch.float64), _coefficients(cell, L, t, None), lengths, *w]
    gpu = [None if a is None else a.to(CUDA, dtype if a.dtype == torch.float64 and i != 3 else a.dtype)
           for i, a in enumerate(cpu)]
    tail = [cell.measure, cell._plist, True, None]  # save (the tensors the backward reads); GBT steps
    return cpu + tail, gpu + tail


@settings(max_examples=25, deadline=None)
@given(
    measure=st.sampled_from(["legs", "legt", "lmu", "lagt"]),
    gate=st.booleans(),
    L=st.integers(0, 12),
    B=st.integers(1, 70),
    I=st.integers(1, 3),
    H=st.integers(1, 300),
    N=st.sampled_from([1, 7, 32, 33, 100, 257, 513]),
    M=st.integers(1, 3),
    per_row=st.booleans(),
    float32=st.booleans(),
)
def test_fused_cuda_op_equals_the_cpu_op(measure, gate, L, B, I, H, N, M, per_row, float32):
    """Every output and saved tensor of hippo_rs::rnn and every gradient of hippo_rs::rnn_backward on
    CUDA against the CPU op in float64 (float64: 1e-9, float32: 2e-4 relative to the scale)."""
    dtype = torch.float32 if float32 else torch.float64
    cpu, gpu = rnn_op_args(measure, gate, L, B, I, H, N, M, dtype, per_row and measure == "legs", seed=L + B + N)
    want, got = ops.rnn(*cpu), ops.rnn(*gpu)
    for name, a, b in zip(("y", "h_n", "c_n", "c", "h_tilde", "g"), got, want):
        close(a.double(), b, dtype, f"{name} {measure} gate={gate} L={L} B={B} H={H} N={N} M={M}")
    grads = [torch.randn(want[i].shape, dtype=torch.float64) for i in range(3)]
    bcpu = [*grads, *cpu[:11], want[0], want[3], want[4], want[5], *cpu[11:13], None]
    bgpu = [*(g.to(CUDA, dtype) for g in grads), *gpu[:11], got[0], got[3], got[4], got[5], *gpu[11:13], None]
    names = ("x", "h0", "c0", "w_f", "b_f", "w_h", "b_h", "w_g", "b_g")
    for name, a, b in zip(names, ops.rnn_backward(*bgpu), ops.rnn_backward(*bcpu)):
        close(a.double(), b, dtype, f"grad {name} {measure} gate={gate} L={L} B={B} H={H} N={N} M={M}")


@pytest.mark.parametrize("measure", ["legs", "lmu"])
def test_fused_cuda_gradcheck_float64(measure):
    torch.manual_seed(1)
    kw = {"method": "bilinear"} if measure == "lmu" else {}  # the LMU cell defaults to ZOH (step by step)
    rnn = hippo_rs.torch.HiPPORNN(measure, 2, 3, memory_order=3, memory_size=2, **kw).double().to(CUDA)
    x = torch.randn(4, 3, 2, dtype=torch.float64, device=CUDA, requires_grad=True)
    h0 = torch.randn(3, 3, dtype=torch.float64, device=CUDA, requires_grad=True)
    c0 = torch.randn(3, 2, 3, dtype=torch.float64, device=CUDA, requires_grad=True)
    t0 = torch.tensor([0.0, 1.0, 4.0], dtype=torch.float64, device=CUDA)
    lengths = torch.tensor([4, 2, 3], device=CUDA)
    assert fused_applies(rnn.cell, x)

    def fn(x, h0, c0, *params):
        names = [n for n, _ in rnn.named_parameters()]
        out = torch.func.functional_call(rnn, dict(zip(names, params)), (x, hippo_rs.torch.HiPPOState(h0, c0, t0)),
                                         {"lengths": lengths})
        return out[0], out[1].h, out[1].c

    params = [p.detach().clone().requires_grad_() for p in rnn.parameters()]
    assert torch.autograd.gradcheck(fn, (x, h0, c0, *params))


@pytest.mark.parametrize("gate", [True, False])
def test_fused_cuda_opcheck(gate):
    cpu, gpu = rnn_op_args("legs", gate, 5, 3, 2, 4, 6, 1, torch.float32, True, seed=0)
    torch.library.opcheck(ops.rnn.default, tuple(gpu))
    y, _, _, c, h_tilde, g = ops.rnn(*gpu)
    grads = (torch.randn_like(y), torch.randn_like(gpu[1]), torch.randn_like(gpu[2]))
    torch.library.opcheck(ops.rnn_backward.default, (*grads, *gpu[:11], y, c, h_tilde, g, *gpu[11:13], None))


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_fused_cuda_compile_matches_eager(backend):
    torch._dynamo.reset()
    torch.manual_seed(0)
    rnn = hippo_rs.torch.HiPPORNN("legs", 2, 8, memory_order=6).to(CUDA)
    x = torch.randn(7, 3, 2, device=CUDA)
    lengths = torch.tensor([7, 4, 1], device=CUDA)
    eager = rnn(x, lengths=lengths)[0]
    got = torch.compile(rnn, fullgraph=True, backend=backend)(x, lengths=lengths)[0]
    torch.testing.assert_close(got, eager)
    g_eager = torch.autograd.grad(eager.sum(), list(rnn.parameters()))
    g_got = torch.autograd.grad(got.sum(), list(rnn.parameters()))
    for a, b in zip(g_got, g_eager):
        torch.testing.assert_close(a, b)


class OpClassifier(torch.nn.Module):
    """A HiPPOCell's weights run over the sequence by the op (LegS rows precomputed as a buffer, per-row
    lengths), a linear head on the last output."""

    def __init__(self, L, H=32, N=40):
        super().__init__()
        self.cell = hippo_rs.torch.HiPPOCell(1, H, memory_order=N)
        self.head = torch.nn.Linear(H, 10)
        self.register_buffer("coef", hippo_rs.torch.gbt_coefficients(L, measure="legs"))

    def forward(self, x, lengths):
        B, c = x.shape[1], self.cell
        h0, c0 = x.new_zeros(B, c.hidden_size), x.new_zeros(B, 1, c.memory_order)
        y, h_n, c_n, *_ = ops.rnn(x, h0, c0, self.coef, lengths, c.W_f.weight, c.W_f.bias, c.W_h.weight,
                                  c.W_h.bias, c.W_g.weight, c.W_g.bias, "legs", [], True, None)
        return self.head(y[-1] + h_n) + c_n.sum()


def test_fused_cuda_graph_capture_of_forward_and_backward():
    """A training step through the op (rows of different lengths) captured once and replayed on new data:
    the loss and the gradients of an eager step on the same data. Nothing in the op reads the lengths
    on the host."""
    torch.manual_seed(0)
    model = OpClassifier(50).to(CUDA)
    static_x = torch.randn(50, 8, 1, device=CUDA)
    lengths = torch.tensor([50, 0, 7, 50, 49, 1, 25, 50], device=CUDA)
    target = torch.randint(0, 10, (8,), device=CUDA)

    def step():
        loss = torch.nn.functional.cross_entropy(model(static_x, lengths), target)
        loss.backward()
        return loss

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # warm-up outside the capture
        for _ in range(2):
            model.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    model.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = step()
    static_x.copy_(torch.randn(50, 8, 1, device=CUDA))
    graph.replay()
    torch.cuda.synchronize()
    graph_loss, graph_grads = static_loss.clone(), [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    loss = step()
    torch.testing.assert_close(graph_loss, loss, rtol=1e-5, atol=1e-5)
    for a, p in zip(graph_grads, model.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=1e-5, atol=1e-5)


def test_fused_cuda_errors_name_the_argument():
    _, gpu = rnn_op_args("legs", True, 4, 3, 2, 5, 6, 1, torch.float32, False, seed=0)
    bad = list(gpu)
    bad[7] = bad[7][:, :3]
    with pytest.raises(ValueError, match="w_h: expected shape"):
        ops.rnn(*bad)
    _, large = rnn_op_args("legs", True, 2, 2, 1, 3, 5000, 1, torch.float32, False, seed=0)
    with pytest.raises(ValueError, match="N: the CUDA kernels support"):
        ops.rnn(*large)
    bad = list(gpu)
    bad[1] = bad[1].cpu()
    with pytest.raises(ValueError, match="h0: expected a tensor on"):
        ops.rnn(*bad)
