"""The CUDA kernels themselves, run on the CPU: cuda/hippo_scan.cu compiled as
host C++ with tests/cuda_emu/emu.h (one std::thread per CUDA thread, warp shuffles and block barriers
emulated with std::barrier), checked against the dense GBT recurrence.

This exercises the kernels' indexing, scans (warp and multi-warp, both directions), padding, register
layouts, coefficient layouts, reset rows and the adjoint, without a GPU. It says nothing about
memory-model or timing issues that only real hardware shows; tests/test_cuda.py covers those on a GPU.
Needs g++ with C++20 (<barrier>); skipped otherwise.
"""

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

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
