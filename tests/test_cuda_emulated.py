"""The CUDA kernels themselves, run on the CPU: cuda/hippo_scan.cu compiled as
host C++ with tests/cuda_emu/emu.h (one std::thread per CUDA thread, warp shuffles and block barriers
emulated with std::barrier), checked against the dense GBT recurrence; and the HiPPO-RNN loops of
cuda/hippo_rnn.cu on ATen's CPU tensors with those kernels emulated, checked against the CPU op.

This exercises the kernels' indexing, scans (warp and multi-warp, both directions), padding, register
layouts, coefficient layouts, reset rows and the adjoint, without a GPU. It says nothing about
memory-model or timing issues that only real hardware shows; tests/test_cuda.py covers those on a GPU.
Needs g++ with C++20 (<barrier>); skipped otherwise.
"""

import ctypes
import importlib.util
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_cuda_math import dense

ROOT = Path(__file__).resolve().parent
KINDS = {"legs": (0, 0.0), "legt": (1, 1.3), "lmu": (2, 0.9), "lagt": (3, 1.0)}


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ not found")
    so = tmp_path_factory.mktemp("cuda_emu") / "emu.so"
    cmd = [cxx, "-std=c++20", "-O1", "-pthread", "-shared", "-fPIC", "-I", str(ROOT / "cuda_emu"), "-o", str(so),
           str(ROOT / "cuda_emu" / "harness.cpp")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"could not compile the emulation: {res.stderr[-2000:]}")
    return ctypes.CDLL(str(so))


def ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


def run_scan(lib, measure, f, c0, coef, return_all):
    kind, p = KINDS[measure]
    L, R = f.shape
    N = c0.shape[1]
    out = np.empty((L, R, N) if return_all else (R, N), dtype=f.dtype)
    fn = lib.scan_f64 if f.dtype == np.float64 else lib.scan_f32
    fn(kind, ctypes.c_double(p), ptr(f), ptr(c0), ptr(coef), int(coef.ndim == 3), L, R, N, int(return_all), ptr(out))
    return out


def run_adjoint(lib, measure, grad, coef, L, R, N, return_all):
    kind, p = KINDS[measure]
    gf = np.empty((L, R), dtype=grad.dtype)
    gc = np.empty((R, N), dtype=grad.dtype)
    fn = lib.adjoint_f64 if grad.dtype == np.float64 else lib.adjoint_f32
    fn(kind, ctypes.c_double(p), ptr(grad), ptr(coef), int(coef.ndim == 3), L, R, N, int(return_all), ptr(gf),
       ptr(gc))
    return gf, gc


def params(measure):
    p = KINDS[measure][1]
    return {"legt": {"theta": p}, "lmu": {"theta": p}, "lagt": {"beta": p}}.get(measure, {})


def ref_scan(measure, f, c0, coef, return_all):
    """The contract's recurrence with dense float64 solves."""
    L, R = f.shape
    N = c0.shape[1]
    A, B = dense(measure, N, **params(measure))
    I = np.eye(N)
    c = c0.astype(np.float64).copy()
    out = np.empty((L, R, N))
    for k in range(L):
        for r in range(R):
            ai, ae, ab = coef[k, r] if coef.ndim == 3 else coef[k]
            if np.isinf(ai):
                c[r] = 0
                c[r, 0] = f[k, r]
            else:
                c[r] = np.linalg.solve(I - ai * A, (I + ae * A) @ c[r] + ab * B * f[k, r])
        out[k] = c
    return out if return_all else c


def ref_adjoint(measure, grad, coef, L, R, N, return_all):
    A, B = dense(measure, N, **params(measure))
    I = np.eye(N)
    gf = np.zeros((L, R))
    lam = (grad[L - 1] if return_all else grad).astype(np.float64).copy() if L else np.zeros((R, N))
    for k in range(L - 1, -1, -1):
        for r in range(R):
            ai, ae, ab = coef[k, r] if coef.ndim == 3 else coef[k]
            if np.isinf(ai):
                gf[k, r] = lam[r, 0]
                lam[r] = 0
            else:
                w = np.linalg.solve((I - ai * A).T, lam[r])
                gf[k, r] = ab * B @ w
                lam[r] = (I + ae * A).T @ w
        if return_all and k >= 1:
            lam += grad[k - 1]
    return gf, lam


def make_coef(measure, L, R, per_row, rng):
    if measure == "legs":
        t = np.arange(L, dtype=np.float64)
        inv = 1 / np.maximum(t, 1)
        rows = np.stack([0.5 * inv, 0.5 * inv, inv], -1)
        rows[0] = (np.inf, 0, 0)
        if per_row:
            rows = np.repeat(rows[:, None], R, 1) * rng.uniform(0.5, 1.0, (L, R, 1))
            rows[rng.random((L, R)) < 0.15] = (np.inf, 0, 0)
            rows[0] = (np.inf, 0, 0)
        return np.ascontiguousarray(rows)
    alpha = 0.5
    if per_row:
        dt = rng.uniform(0.01, 0.3, (L, R))
        rows = np.stack([alpha * dt, (1 - alpha) * dt, dt], -1)
        rows[rng.random((L, R)) < 0.15] = (np.inf, 0, 0)  # the reset rule holds for every measure
        return np.ascontiguousarray(rows)
    dt = np.where(np.arange(L) % 3 == 2, 0.2, 0.05)  # a_i changes: exercises the cached solve
    return np.ascontiguousarray(np.stack([alpha * dt, (1 - alpha) * dt, dt], -1))


CASES = [(1, 2, 5), (5, 5, 7), (33, 3, 6), (64, 2, 5), (100, 5, 4), (257, 1, 4), (600, 1, 3)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("per_row", [False, True])
@pytest.mark.parametrize("measure", list(KINDS))
def test_emulated_kernels_match_dense(lib, measure, per_row, dtype):
    rng = np.random.default_rng(len(measure) + 10 * per_row)
    # float32 legt/lmu compute in float64 internally (only the stores round); legs/lagt in float32.
    tol = 1e-10 if dtype == np.float64 else (1e-5 if measure in ("legt", "lmu") else 3e-4)
    for N, R, L in CASES:
        coef = make_coef(measure, L, R, per_row, rng)
        f = rng.standard_normal((L, R)).astype(dtype)
        c0 = (0.3 * rng.standard_normal((R, N))).astype(dtype)
        for return_all in (True, False):
            what = f"{measure} N={N} R={R} L={L} per_row={per_row} return_all={return_all} {dtype.__name__}"
            want = ref_scan(measure, f, c0, coef, return_all)
            got = run_scan(lib, measure, f, c0, coef, return_all)
            scale = max(1.0, np.abs(want).max())
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg="forward " + what)
            grad = rng.standard_normal(want.shape).astype(dtype)
            gf_want, gc_want = ref_adjoint(measure, grad, coef, L, R, N, return_all)
            gf, gc = run_adjoint(lib, measure, grad, coef, L, R, N, return_all)
            scale = max(1.0, np.abs(gc_want).max(), np.abs(gf_want).max())
            np.testing.assert_allclose(gf, gf_want, rtol=tol, atol=tol * scale, err_msg="grad_f " + what)
            np.testing.assert_allclose(gc, gc_want, rtol=tol, atol=tol * scale, err_msg="grad_c0 " + what)


# --------------------------------------------------------------------------------------------------
# The HiPPO-RNN loops of cuda/hippo_rnn.cu (tests/cuda_emu/rnn_binding.cpp): ATen CPU tensors for the
# device's, the memory-step and gate kernels under the emulation, against the CPU op (Rust).
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rnn_lib(tmp_path_factory):
    """The binding compiled like torch.utils.cpp_extension would, without needing ninja; the backward
    pass runs chunks of 6 (step, row) pairs (HIPPO_RNN_CHUNK_ROWS) so that several chunks, a partial one
    and the first step's h0 all occur."""
    torch = pytest.importorskip("torch")
    import sysconfig

    from torch.utils import cpp_extension

    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ not found")
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        pytest.skip("the Python headers (Python.h) are not installed")
    out = tmp_path_factory.mktemp("rnn_emu")
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    libs = cpp_extension.library_paths()
    cmd = [cxx, "-std=c++20", "-O1", "-pthread", "-shared", "-fPIC", f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
           "-DTORCH_EXTENSION_NAME=hippo_rnn_emu", "-DTORCH_API_INCLUDE_EXTENSION_H", "-DHIPPO_RNN_CHUNK_ROWS=6",
           "-I", str(ROOT / "cuda_emu"), "-I", sysconfig.get_paths()["include"],
           *[f"-I{p}" for p in cpp_extension.include_paths()], str(ROOT / "cuda_emu" / "rnn_binding.cpp"),
           *[f"-L{p}" for p in libs], *[f"-Wl,-rpath,{p}" for p in libs],
           "-lc10", "-ltorch", "-ltorch_cpu", "-ltorch_python", "-o", str(out / "hippo_rnn_emu.so")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-4000:]
    spec = importlib.util.spec_from_file_location("hippo_rnn_emu", out / "hippo_rnn_emu.so")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rnn_case(measure, gate, L, B, I, H, N, M, lengths, per_row, dtype, seed):
    """Inputs of hippo_rs::rnn for a HiPPOCell: the coefficient rows its HiPPORNN would build."""
    import torch

    import hippo_rs.torch as ht
    from hippo_rs.torch._rnn import _coefficients

    torch.manual_seed(seed)
    kw = {"method": "bilinear"} if measure in ("legt", "lmu") else {}
    cell = ht.HiPPOCell(I, H, memory_order=N, memory_size=M, measure=measure, gate=gate, **kw).to(dtype)
    t = torch.arange(B, dtype=torch.float64) * 2 if per_row else torch.zeros(B, dtype=torch.float64)
    w = [p.detach() for p in (cell.W_f.weight, cell.W_f.bias, cell.W_h.weight, cell.W_h.bias)]
    w += [cell.W_g.weight.detach(), cell.W_g.bias.detach()] if gate else [None, None]
    return (torch.randn(L, B, I, dtype=dtype), torch.randn(B, H, dtype=dtype), 0.3 * torch.randn(B, M, N, dtype=dtype),
            _coefficients(cell, L, t, None), torch.tensor(lengths, dtype=torch.int64), *w, cell.measure, cell._plist)


def check_rnn_loops(lib, args, dtype):
    import torch

    ops = torch.ops.hippo_rs
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=2e-4, atol=2e-5)
    want, got = ops.rnn(*args, True, None), lib.rnn_forward(*args)
    for name, a, b in zip(("y", "h_n", "c_n", "c", "h_tilde", "g"), got, want):
        torch.testing.assert_close(a, b, **tol, msg=lambda m: f"{name}: {m}")
    c0, lengths, measure = args[2], args[4], args[11]
    for b, n in enumerate(lengths.tolist()):  # held rows: y = 0; LegS/LagT memory held bit for bit
        assert not got[0][n:, b].any()
        if measure in ("legs", "lagt"):
            held = c0[b] if n == 0 else got[3][n - 1, b]
            assert torch.equal(got[3][n:, b], held.expand_as(got[3][n:, b]))
    x, h0, c0 = args[:3]
    L, B, H = want[0].shape
    grads_out = (torch.randn(L, B, H, dtype=dtype), torch.randn(B, H, dtype=dtype), torch.randn(c0.shape, dtype=dtype))
    bargs = (*grads_out, *args[:11], want[0], want[3], want[4], want[5], *args[11:])
    names = ("x", "h0", "c0", "w_f", "b_f", "w_h", "b_h", "w_g", "b_g")
    for name, a, b in zip(names, lib.rnn_backward(*bargs), ops.rnn_backward(*bargs, None)):
        torch.testing.assert_close(a, b, **tol, msg=lambda m: f"grad {name}: {m}")


@pytest.mark.parametrize("gate", [True, False])
@pytest.mark.parametrize("measure", list(KINDS))
def test_emulated_rnn_loops_match_the_cpu_op(rnn_lib, measure, gate):
    """Every measure, gate on and off, M = 2 memory units, rows that stop early (0 and 4 steps of 8),
    per-row LegS rows (rows at different step indices); float64 to 1e-10."""
    import torch

    for lengths, per_row in (([8, 8, 8], False), ([8, 0, 4], measure == "legs")):
        args = rnn_case(measure, gate, 8, 3, 2, 5, 6, 2, lengths, per_row, torch.float64, seed=len(measure))
        check_rnn_loops(rnn_lib, args, torch.float64)


@pytest.mark.parametrize("gate", [True, False])
def test_emulated_rnn_loops_with_several_gate_blocks(rnn_lib, gate):
    """B H = 5 x 60 > 256: the gate kernels run two blocks (their grid-stride loops)."""
    import torch

    args = rnn_case("lagt", gate, 3, 5, 1, 60, 4, 1, [3, 1, 0, 3, 2], False, torch.float64, seed=5)
    check_rnn_loops(rnn_lib, args, torch.float64)


@settings(max_examples=12, deadline=None)
@given(
    measure=st.sampled_from(list(KINDS)),
    gate=st.booleans(),
    L=st.integers(0, 9),
    B=st.integers(1, 4),
    I=st.integers(1, 3),
    H=st.integers(1, 6),
    N=st.integers(1, 40),
    M=st.integers(1, 3),
    float32=st.booleans(),
    data=st.data(),
)
def test_emulated_rnn_loops_hypothesis(rnn_lib, measure, gate, L, B, I, H, N, M, float32, data):
    import torch

    lengths = data.draw(st.lists(st.integers(0, L), min_size=B, max_size=B))
    dtype = torch.float32 if float32 else torch.float64
    args = rnn_case(measure, gate, L, B, I, H, N, M, lengths, measure == "legs", dtype, seed=L * 7 + B)
    check_rnn_loops(rnn_lib, args, dtype)
