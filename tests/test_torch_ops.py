"""torch.ops.hippo_rs.*: opcheck, gradcheck, agreement with the dense recurrence and the numpy API."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import _torch_reference as ref  # noqa: E402
import hippo_rs  # noqa: E402
import hippo_rs.torch as ht  # noqa: E402

ops = torch.ops.hippo_rs
F64 = torch.float64

MEASURES = ["legs", "legt", "lmu", "lagt", "glagt", "fout", "chebt"]
PARAMS = {"legs": {}, "legt": {"theta": 1.5}, "lmu": {"theta": 2.0}, "lagt": {"beta": 0.5},
          "glagt": {"alpha": 0.3, "beta": 0.8}, "fout": {"theta": 1.0}, "chebt": {"theta": 1.0}}
METHODS = [("forward_euler", None), ("backward_euler", None), ("bilinear", None), ("gbt", 0.3)]


def _plist(measure):
    return [PARAMS[measure].get(n, d) for n, d in ht.PARAM_NAMES[measure]]


def _kw(measure):
    return dict(PARAMS[measure])


def _coef(measure, L, method="bilinear", alpha=None, R=None, t0=0, dt=0.1):
    if R is not None:  # per-row coefficients: different step sizes / step indices per row
        if measure == "legs":
            return ht.gbt_coefficients(L, measure="legs", method=method, gbt_alpha=alpha, t=torch.arange(R) + t0)
        ts = torch.cumsum(torch.rand(L, R, dtype=F64) + 0.1, 0)
        return ht.gbt_coefficients(L, measure=measure, method=method, gbt_alpha=alpha, timestamps=ts, dt=dt)
    return ht.gbt_coefficients(L, measure=measure, method=method, gbt_alpha=alpha, t=t0, dt=dt)


def _inputs(L=5, R=3, N=4, dtype=F64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(L, R, generator=g, dtype=dtype), torch.randn(R, N, generator=g, dtype=dtype)


def test_import_hippo_rs_does_not_import_torch():
    code = "import sys, hippo_rs; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_schemas_are_the_contract():
    assert str(ops.gbt_scan.default._schema) == (
        "hippo_rs::gbt_scan(Tensor f, Tensor c0, Tensor coef, str measure, float[] params, bool return_all) -> Tensor"
    )
    assert str(ops.gbt_scan_backward.default._schema) == (
        "hippo_rs::gbt_scan_backward(Tensor grad, Tensor coef, str measure, float[] params, bool return_all, "
        "SymInt N) -> (Tensor, Tensor)"
    )
    assert str(ops.gbt_step.default._schema) == (
        "hippo_rs::gbt_step(Tensor c, Tensor f, Tensor coef, str measure, float[] params) -> Tensor"
    )
    assert str(ops.gbt_step_backward.default._schema) == (
        "hippo_rs::gbt_step_backward(Tensor grad, Tensor coef, str measure, float[] params) -> (Tensor, Tensor)"
    )


# ---------------------------------------------------------------------------------------------- opcheck


@pytest.mark.parametrize("measure", ["legs", "legt", "glagt"])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("return_all", [True, False])
@pytest.mark.parametrize("per_row", [False, True])
def test_opcheck_scan(measure, dtype, return_all, per_row):
    f, c0 = _inputs(dtype=dtype)
    coef = _coef(measure, 5, R=3 if per_row else None)
    torch.library.opcheck(ops.gbt_scan, (f, c0, coef, measure, _plist(measure), return_all))
    N = c0.shape[1]
    grad = torch.randn((5, 3, N) if return_all else (3, N), dtype=dtype)
    torch.library.opcheck(ops.gbt_scan_backward, (grad, coef, measure, _plist(measure), return_all, N))


@pytest.mark.parametrize("measure", ["legs", "lmu"])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("per_row", [False, True])
def test_opcheck_step(measure, dtype, per_row):
    _, c = _inputs(dtype=dtype)
    f = torch.randn(3, dtype=dtype)
    coef = _coef(measure, 1, R=3 if per_row else None, t0=2)[0]
    torch.library.opcheck(ops.gbt_step, (c, f, coef, measure, _plist(measure)))
    torch.library.opcheck(ops.gbt_step_backward, (torch.randn_like(c), coef, measure, _plist(measure)))


# -------------------------------------------------------------------------------------------- gradcheck


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("method,alpha", METHODS)
def test_gradcheck_scan(measure, method, alpha):
    f, c0 = _inputs(L=4, R=2, N=5)
    for coef in (_coef(measure, 4, method, alpha, t0=1), _coef(measure, 4, method, alpha, R=2)):
        for return_all in (True, False):
            def fn(f, c0, coef=coef, ra=return_all):
                return ops.gbt_scan(f, c0, coef, measure, _plist(measure), ra)

            assert torch.autograd.gradcheck(fn, (f.requires_grad_(), c0.requires_grad_()))


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("method,alpha", METHODS)
def test_gradcheck_step(measure, method, alpha):
    _, c = _inputs(R=3, N=5)
    f = torch.randn(3, dtype=F64)
    for coef in (_coef(measure, 1, method, alpha, t0=3)[0], _coef(measure, 1, method, alpha, R=3, t0=1)[0]):
        fn = lambda c, f, coef=coef: ops.gbt_step(c, f, coef, measure, _plist(measure))  # noqa: E731
        assert torch.autograd.gradcheck(fn, (c.requires_grad_(), f.requires_grad_()))


@pytest.mark.parametrize("measure", MEASURES)
def test_gradcheck_backward_ops_and_double_backward(measure):
    """The backward ops are differentiable (their adjoint is the forward op): gradcheck on them and
    gradgradcheck through the forward ops."""
    f, c0 = _inputs(L=4, R=2, N=5)
    coef = _coef(measure, 4, "gbt", 0.3, R=2)
    p = _plist(measure)
    for return_all in (True, False):
        g = torch.randn((4, 2, 5) if return_all else (2, 5), dtype=F64, requires_grad=True)
        bwd = lambda g, ra=return_all: ops.gbt_scan_backward(g, coef, measure, p, ra, 5)  # noqa: E731
        assert torch.autograd.gradcheck(bwd, (g,))
        fn = lambda f, c0, ra=return_all: ops.gbt_scan(f, c0, coef, measure, p, ra)  # noqa: E731
        assert torch.autograd.gradgradcheck(fn, (f.clone().requires_grad_(), c0.clone().requires_grad_()))
    step_coef = coef[1]
    g = torch.randn(2, 5, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda g: ops.gbt_step_backward(g, step_coef, measure, p), (g,))
    fn = lambda c, f: ops.gbt_step(c, f, step_coef, measure, p)  # noqa: E731
    assert torch.autograd.gradgradcheck(fn, (c0.clone().requires_grad_(), f[0].clone().requires_grad_()))


@pytest.mark.parametrize("convention", ["original", "paper"])
@pytest.mark.parametrize("method,alpha", METHODS)
def test_gradcheck_timestamped_legs(convention, method, alpha):
    """Irregular timestamps starting at 0 (the reset row) through the scan wrapper, per row."""
    ts = torch.cat((torch.zeros(1, 2, dtype=F64), torch.cumsum(torch.rand(5, 2, dtype=F64) + 0.2, 0)))
    if convention == "paper":
        ts = ts + 1.0  # the paper convention resets when t0 = 0 (the first step from time 0)
    f = torch.randn(6, 2, dtype=F64, requires_grad=True)
    c0 = torch.randn(2, 4, dtype=F64, requires_grad=True)

    def fn(f, c0):
        return ht.scan(f, c0=c0, timestamps=ts, method=method, gbt_alpha=alpha, convention=convention)

    assert torch.autograd.gradcheck(fn, (f, c0))


# ChebT's A (entries up to 4N/theta, far from normal) has a transient growth that overflows float64
# over a few steps at dt = 0.01 and N = 512: it is checked at large N with a short step.
_DT_LARGE_N = {**{m: 0.01 for m in MEASURES}, "chebt": 1e-5}


@pytest.mark.parametrize("measure", MEASURES)
def test_backward_matches_dense_autograd_n512(measure):
    """The ops' values and gradients equal autograd through the dense recurrence at N = 512."""
    L, R, N = 5, 2, 512
    f, c0 = _inputs(L, R, N)
    coef = _coef(measure, L, t0=3, dt=_DT_LARGE_N[measure])
    A, B = ref.dense_matrices(measure, N, PARAMS[measure])
    w = torch.randn(L, R, N, dtype=F64)
    results = []
    p = _plist(measure)
    for fn in (lambda f, c: ops.gbt_scan(f, c, coef, measure, p, True), lambda f, c: ref.dense_scan(f, c, coef, A, B)):
        fr, cr = f.clone().requires_grad_(), c0.clone().requires_grad_()
        out = fn(fr, cr)
        (out * w).sum().backward()
        results.append((out.detach(), fr.grad, cr.grad))
    for got, want in zip(*results):
        scale = want.abs().max()
        assert (got - want).abs().max() <= 1e-9 * scale, (measure, float((got - want).abs().max() / scale))


@pytest.mark.parametrize("measure", MEASURES)
def test_gradcheck_n64(measure):
    f, c0 = _inputs(L=3, R=1, N=64)
    coef = _coef(measure, 3, t0=2, dt=_DT_LARGE_N[measure])
    fn = lambda f, c0: ops.gbt_scan(f, c0, coef, measure, _plist(measure), True)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (f.requires_grad_(), c0.requires_grad_()))


# ------------------------------------------------------------------------------- values and the numpy API


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("method,alpha", METHODS)
def test_scan_equals_dense(measure, method, alpha):
    f, c0 = _inputs(L=7, R=3, N=6)
    A, B = ref.dense_matrices(measure, 6, PARAMS[measure])
    for coef in (_coef(measure, 7, method, alpha), _coef(measure, 7, method, alpha, R=3)):
        want = ref.dense_scan(f, c0, coef, A, B)
        torch.testing.assert_close(ops.gbt_scan(f, c0, coef, measure, _plist(measure), True), want)
        torch.testing.assert_close(ops.gbt_scan(f, c0, coef, measure, _plist(measure), False), want[-1])
        for k in range(2):
            got = ops.gbt_step(want[k], f[k + 1], coef[k + 1], measure, _plist(measure))
            torch.testing.assert_close(got, want[k + 1])


def test_per_row_coefficients_equal_across_rows_match_shared():
    """Per-row coefficient rows that agree across the batch take the shared-row kernel path."""
    f, c0 = _inputs(L=6, R=3, N=5)
    coef = ht.gbt_coefficients(6, measure="legs", t=2)
    per_row = coef[:, None, :].expand(6, 3, 3).contiguous()
    for ra in (True, False):
        want = ops.gbt_scan(f, c0, coef, "legs", [], ra)
        torch.testing.assert_close(ops.gbt_scan(f, c0, per_row, "legs", [], ra), want)
        g = torch.randn((6, 3, 5) if ra else (3, 5), dtype=F64)
        want = ops.gbt_scan_backward(g, coef, "legs", [], ra, 5)
        for a, b in zip(ops.gbt_scan_backward(g, per_row, "legs", [], ra, 5), want):
            torch.testing.assert_close(a, b)
    want = ops.gbt_step(c0, f[0], coef[1], "legs", [])
    torch.testing.assert_close(ops.gbt_step(c0, f[0], per_row[1], "legs", []), want)


def test_legs_first_sample_resets_and_continuation():
    f = torch.randn(9, 2, 3, dtype=F64)
    c = ht.scan(f, 8)
    torch.testing.assert_close(c[0], f[0, ..., None] * torch.eye(8, dtype=F64)[0])
    k = 4
    torch.testing.assert_close(ht.scan(f[k:], c0=c[k - 1], t=k), c[k:])
    torch.testing.assert_close(ht.scan(f[k:], c0=c[k - 1], t=k, return_all=False), c[-1])
    # step-by-step with the step wrapper (t = samples already absorbed)
    s = torch.zeros(2, 3, 8, dtype=F64)
    for t in range(9):
        s = ht.update(s, f[t], t=t)
    torch.testing.assert_close(s, c[-1])


def test_constant_input_is_a_fixed_point_of_legs():
    """A e0 = -B: f == 1 keeps c = e0 exactly under LegS (both conventions)."""
    f = torch.ones(50, 1, dtype=F64)
    for convention in ("original", "paper"):
        c = ht.scan(f, 16, convention=convention)
        torch.testing.assert_close(c[-1, 0], torch.eye(16, dtype=F64)[0])


def test_timestamps_0_1_2_equal_fixed_step_legs():
    f = torch.randn(10, 3, dtype=F64)
    ts = torch.arange(10, dtype=F64)
    torch.testing.assert_close(ht.scan(f, 6, timestamps=ts), ht.scan(f, 6))
    torch.testing.assert_close(ht.scan(f, 6, timestamps=ts + 1, convention="paper"), ht.scan(f, 6, convention="paper"))


def test_per_row_timestamps_broadcast():
    f = torch.randn(6, 2, 3, dtype=F64)
    ts = torch.cumsum(torch.rand(6, 2, 1, dtype=F64), 0)
    got = ht.scan(f, 4, timestamps=ts)
    for i in range(2):
        torch.testing.assert_close(got[:, i], ht.scan(f[:, i], 4, timestamps=ts[:, i, 0]))


def test_float32_close_to_float64():
    f = torch.randn(200, 4, dtype=F64)
    c64 = ht.scan(f, 32)
    c32 = ht.scan(f.float(), 32)
    assert c32.dtype == torch.float32
    torch.testing.assert_close(c32.double(), c64, rtol=1e-4, atol=1e-5)


def test_non_contiguous_inputs_are_made_contiguous():
    f, c0 = _inputs(L=6, R=4, N=5)
    coef = ht.gbt_coefficients(6, measure="legt", dt=0.1)
    want = ops.gbt_scan(f, c0, coef, "legt", [1.0], True)
    got = ops.gbt_scan(f.T.contiguous().T, c0.T.contiguous().T, coef, "legt", [1.0], True)
    torch.testing.assert_close(got, want)


def test_errors_name_the_argument():
    f, c0 = _inputs()
    coef = ht.gbt_coefficients(5, measure="legs")
    with pytest.raises(TypeError, match="f:"):
        ops.gbt_scan(f.half(), c0.half(), coef, "legs", [], True)
    with pytest.raises(TypeError, match="f:"):
        ops.gbt_scan(f.long(), c0.long(), coef, "legs", [], True)
    with pytest.raises(TypeError, match="c0:"):
        ops.gbt_scan(f, c0.float(), coef, "legs", [], True)
    with pytest.raises(TypeError, match="coef:"):
        ops.gbt_scan(f, c0, coef.float(), "legs", [], True)
    with pytest.raises(ValueError, match="coef:"):
        ops.gbt_scan(f, c0, coef[:3], "legs", [], True)
    with pytest.raises(ValueError, match="params:"):
        ops.gbt_scan(f, c0, coef, "legt", [], True)
    with pytest.raises(ValueError, match="measure:"):
        ops.gbt_scan(f, c0, coef, "nope", [], True)
    with pytest.raises(ValueError, match="method:"):
        ht.scan(f, 4, method="zoh")
    with pytest.raises(ValueError, match="dt:"):
        ht.scan(f, 4, measure="legt")
    with pytest.raises(ValueError, match="gbt_alpha:"):
        ht.scan(f, 4, method="gbt")
    with pytest.raises(ValueError, match="theta:"):
        ht.scan(f, 4, measure="lagt", dt=0.1, theta=2.0)
    with pytest.raises(ValueError, match="theta"):
        ht.scan(f, 4, measure="legt", dt=0.1, theta=-1.0)
    with pytest.raises(ValueError, match="alpha: .*gbt_alpha"):
        ht.scan(f, 4, measure="legt", dt=0.1, alpha=0.5)
    with pytest.raises(TypeError, match="beta:"):
        ht.scan(f, 4, measure="glagt", dt=0.1, beta="x")
    with pytest.raises(ValueError, match="t:"):
        ht.update(c0, f[0])


@pytest.mark.parametrize("convention", ["original", "paper"])
@pytest.mark.parametrize("method,alpha", METHODS)
def test_coefficients_equal_numpy_api(convention, method, alpha):
    kw = dict(method=method, gbt_alpha=alpha, convention=convention)
    for t0 in (0, 5):
        want = hippo_rs.gbt_coefficients(8, measure="legs", t=t0, **kw)
        np.testing.assert_allclose(ht.gbt_coefficients(8, measure="legs", t=t0, **kw).numpy(), want)
    want = hippo_rs.gbt_coefficients(8, measure="legt", dt=0.1, theta=2.0, **kw)
    np.testing.assert_allclose(ht.gbt_coefficients(8, measure="legt", dt=0.1, **kw).numpy(), want)
    for measure, dt in (("legs", None), ("lmu", 0.5)):
        ts = np.cumsum(np.random.default_rng(0).uniform(0.1, 1.0, (6, 3)), 0)
        if measure == "legs":
            ts[0, 0] = 0.0  # LegS may start at time 0; time-invariant steps need t > t_prev (0)
        for t_prev in (None, np.array([0.0, 0.05, 0.01]) if measure == "lmu" else None):
            want = hippo_rs.gbt_coefficients(6, measure=measure, timestamps=ts, t_prev=t_prev, dt=dt, **kw)
            got = ht.gbt_coefficients(6, measure=measure, timestamps=torch.from_numpy(ts), dt=dt,
                                  t_prev=None if t_prev is None else torch.from_numpy(t_prev), **kw)
            np.testing.assert_allclose(got.numpy(), want)
    want = hippo_rs.gbt_coefficients(3, measure="legs", timestamps=ts[1:4] + 1, t_prev=ts[0] + 1, **kw)
    got = ht.gbt_coefficients(3, measure="legs", timestamps=torch.from_numpy(ts[1:4] + 1), t_prev=torch.from_numpy(ts[0] + 1), **kw)
    np.testing.assert_allclose(got.numpy(), want)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scan_equals_numpy_api(measure, dtype):
    f = np.random.default_rng(0).standard_normal((30, 2, 3)).astype(dtype)
    kw = _kw(measure)
    dt = None if measure == "legs" else 0.05
    want = hippo_rs.scan(f, 8, measure=measure, dt=dt, **kw)
    got = ht.scan(torch.from_numpy(f), 8, measure=measure, dt=dt, **kw)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got.numpy(), want, rtol=tol, atol=tol)
    # per-row timestamps, continuing from a state
    ts = np.cumsum(np.random.default_rng(1).uniform(0.1, 1.0, (30, 2, 3)), 0) + 1.0
    c0 = want[4]
    want = hippo_rs.scan(f, 8, measure=measure, dt=dt, timestamps=ts, c0=c0, t_prev=np.full((2, 3), 0.5), **kw)
    got = ht.scan(torch.from_numpy(f), 8, measure=measure, dt=dt, timestamps=torch.from_numpy(ts),
                  c0=torch.from_numpy(c0), t_prev=torch.full((2, 3), 0.5, dtype=F64), **kw)
    np.testing.assert_allclose(got.numpy(), want, rtol=10 * tol, atol=10 * tol)


# -------------------------------------------------------------------------------------------- compile


def test_compile_fullgraph_equals_eager():
    torch._dynamo.reset()
    torch.manual_seed(0)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = torch.nn.Linear(3, 2)
            self.mem = ht.HiPPOMemory(8, measure="legs")
            self.out = torch.nn.Linear(16, 1)

        def forward(self, x):  # x (L, B, 3)
            c = self.mem(self.inp(x))  # (L, B, 2, 8)
            return self.out(c.flatten(2)).sum()

    model = Model()
    x = torch.randn(12, 4, 3)
    eager = model(x)
    g_eager = torch.autograd.grad(eager, list(model.parameters()))
    compiled = torch.compile(model, fullgraph=True)
    got = compiled(x)
    g_got = torch.autograd.grad(got, list(model.parameters()))
    torch.testing.assert_close(got, eager)
    for a, b in zip(g_got, g_eager):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", ["legs", "tlegs", "lmu"])
def test_compile_fullgraph_cell_rnn_equals_eager(name):
    """The step op inside an unrolled HiPPO-RNN traces without graph breaks (aot_eager: quick)."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    rnn = ht.HiPPORNN(name, 2, 4, memory_order=3, memory_size=2)
    x = torch.randn(5, 3, 2)
    ts = torch.cumsum(torch.rand(5, 3, dtype=F64), 0)
    eager = rnn(x, timestamps=ts)[0]
    got = torch.compile(rnn, fullgraph=True, backend="aot_eager")(x, timestamps=ts)[0]
    torch.testing.assert_close(got, eager)
    g_eager = torch.autograd.grad(eager.sum(), list(rnn.parameters()))
    g_got = torch.autograd.grad(got.sum(), list(rnn.parameters()))
    for a, b in zip(g_got, g_eager):
        torch.testing.assert_close(a, b)


def test_export_with_dynamic_length():
    """torch.export traces the scan op (its fake kernel) with a symbolic sequence length."""
    torch.manual_seed(0)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = torch.nn.Linear(3, 2)
            self.mem = ht.HiPPOMemory(8, measure="legs")
            self.out = torch.nn.Linear(16, 1)

        def forward(self, x):
            return self.out(self.mem(self.inp(x)).flatten(2))

    model = Model()
    L = torch.export.Dim("L", min=2)
    exported = torch.export.export(model, (torch.randn(12, 4, 3),), dynamic_shapes={"x": {0: L}})
    x = torch.randn(20, 4, 3)
    torch.testing.assert_close(exported.module()(x), model(x))


# ------------------------------------------------------------------------------------------------ zoh

LTI = [m for m in MEASURES if m != "legs"]


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("return_all", [True, False])
def test_opcheck_zoh(dtype, return_all):
    f, c0 = _inputs(dtype=dtype)
    torch.library.opcheck(ops.zoh_scan, (f, c0, "lmu", _plist("lmu"), 0.1, return_all))
    grad = torch.randn((5, 3, 4) if return_all else (3, 4), dtype=dtype)
    torch.library.opcheck(ops.zoh_scan_backward, (grad, "lmu", _plist("lmu"), 0.1, return_all, 5))


@pytest.mark.parametrize("measure", LTI)
def test_zoh_gradcheck_and_numpy_agreement(measure):
    f, c0 = _inputs(L=4, R=2, N=5)
    kw = dict(measure=measure, method="zoh", dt=0.2, **_kw(measure))
    for return_all in (True, False):
        def fn(f, c0, ra=return_all):
            return ht.scan(f, 5, c0=c0, return_all=ra, **kw)

        assert torch.autograd.gradcheck(fn, (f.requires_grad_(), c0.requires_grad_()))
        assert torch.autograd.gradgradcheck(fn, (f, c0))
        want = hippo_rs.scan(f.detach().numpy(), 5, c0=c0.detach().numpy(), return_all=return_all, **kw)
        np.testing.assert_array_equal(fn(f, c0).detach().numpy(), want)
    step = ht.update(c0, f[0], **kw)
    np.testing.assert_array_equal(step.detach().numpy(), hippo_rs.update(c0.detach().numpy(), f[0].detach().numpy(), **kw))


def test_zoh_cells_use_the_original_defaults():
    """LegT and LMU cells default to ZOH (the original code's), and their memory is the numpy ZOH update."""
    torch.manual_seed(0)
    for measure in ("legt", "lmu"):
        cell = ht.HiPPOCell(2, 3, memory_order=4, measure=measure).double()
        assert cell.method == "zoh"
        c, f = torch.randn(2, 1, 4, dtype=F64), torch.randn(2, 1, dtype=F64)
        got, _ = cell.memory_step(c, f, torch.zeros(2, dtype=F64))
        want = hippo_rs.update(c.numpy(), f.numpy(), measure=measure, method="zoh", dt=cell.dt, **cell.params)
        np.testing.assert_array_equal(got.numpy(), want)
    with pytest.raises(ValueError, match="^method:"):
        ht.HiPPOCell(2, 3, measure="legs", method="zoh")
    with pytest.raises(ValueError, match="^method:"):
        ht.scan(torch.ones(3, 2), 4, method="zoh")
    with pytest.raises(ValueError, match="^timestamps:"):
        ht.scan(torch.ones(3, 2), 4, measure="lmu", method="zoh", timestamps=torch.arange(1.0, 4.0))
