"""Benchmarks of the O(N) HiPPO updates and scans. Not part of the test command.

    python benches/bench_scan.py --blas-threads 1 [--quick]   # the tables; saved as benches/results/bench_scan_cpu.txt
    python benches/bench_scan.py --blas-threads 1 --isa avx2  # all of them on the AVX2 kernels of an AVX-512 CPU

With --blas-threads 1 every contender runs on one core: a step of this size runs on one (a second
thread costs more to wake than it saves), and so does the C baseline.

Every figure is the best of several timed repetitions (the machine may be shared), measured side by
side in one run with:
  (a) dense: the precomputed discretised transition matrix applied with numpy matmul,
      c @ Ad.T + f[:, None] * Bd (for LegS one fixed step's matrices: the cost is the same every step);
  (b) numpy O(N): a vectorised numpy implementation of the same O(N) step: np.cumsum for the running
      sums of the explicit half, and the implicit solve as a loop over n vectorised across the batch
      (its recurrence Q_n = a_n Q_{n-1} + b_n has no stable closed form in cumsum/cumprod: a_n
      changes sign and vanishes for LegS), so its per-step cost is O(N) numpy calls;
  (c) scalar C: the same LegS recurrence (paper §5: one running sum per half step, a division per
      element) compiled here with the system C compiler, -O3 -march=native, called through ctypes.
The first table compares with the targets and the machine's limit (model in benches/LIMITS.md); its
figures are timed in interleaved rounds (ours, the C baseline, dense numpy in turn), so that a change
of the machine's load during the run reaches all of them alike.
Throughput is state elements per second (batch x N per step).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

if __name__ == "__main__" and "--blas-threads" in sys.argv:
    # Must precede the numpy import. On a shared, loaded machine multi-threaded BLAS can stall at its
    # barriers (a descheduled thread), which makes the dense baseline erratic.
    _threads = sys.argv[sys.argv.index("--blas-threads") + 1]
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _threads

import numpy as np  # noqa: E402

import hippo_rs  # noqa: E402
from hippo_rs import _core  # noqa: E402

def best_time(fn, min_total=0.2, repeats=5):
    """Best per-call time over `repeats` rounds, each of enough calls to last ~min_total/repeats."""
    fn()
    t = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t, 1e-7)
    calls = max(1, int(min_total / repeats / one))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t) / calls)
    return best


def best_times_interleaved(fns, min_total=0.75, repeats=15):
    """Best per-call time of each of `fns`, their rounds taken in turn (fn 0, fn 1, ..., fn 0, ...),
    so that a change of the machine's load reaches every one of them and their ratios survive it."""
    calls = []
    for fn in fns:
        fn()
        t = time.perf_counter()
        fn()
        calls.append(max(1, int(min_total / repeats / max(time.perf_counter() - t, 1e-7))))
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            for _ in range(calls[i]):
                fn()
            best[i] = min(best[i], (time.perf_counter() - t) / calls[i])
    return best


# ---- (b) vectorised numpy O(N) steps (bilinear) -------------------------------------------------


def numpy_legs_step(c, f, t, out):
    """LegS bilinear step (original convention, t >= 1), O(N) per row, batch-vectorised."""
    N = c.shape[-1]
    n = np.arange(N, dtype=c.dtype)
    r = np.sqrt(2 * n + 1)
    ai = ae = c.dtype.type(0.5 / t)
    ab = c.dtype.type(1.0 / t)
    # (A x)_n = -r_n P_n + n x_n with P_n = sum_{k<=n} r_k x_k
    P = np.cumsum(c * r, axis=-1)
    u = c + ae * (n * c - r * P) + (ab * f)[:, None] * r
    # (I - ai A) y = u: y_n = (u_n - ai r_n Q_{n-1}) / (1 + ai (n + 1)), Q_n = Q_{n-1} + r_n y_n
    den = 1 + ai * (n + 1)
    q = np.zeros(c.shape[0], c.dtype)
    for k in range(N):
        out[:, k] = (u[:, k] - ai * r[k] * q) / den[k]
        q += r[k] * out[:, k]
    return out


def numpy_legt_step(c, f, dt, out):
    """LegT (theta = 1) bilinear step: cumsum mul, Thomas solve of the tridiagonal M^{-1} form."""
    N = c.shape[-1]
    r = np.sqrt(2 * np.arange(N, dtype=c.dtype) + 1)
    s = (-1.0) ** np.arange(N)
    g = c.dtype.type(0.5 * dt)
    z = r * c
    # M z = prefix(z) + s * (sum_{k>n} s_k z_k); (I + g' A) x = x - g' D M D x
    pre = np.cumsum(z, axis=-1)
    sz = s * z
    suf = np.cumsum(sz[:, ::-1], axis=-1)[:, ::-1] - sz
    x = c - g * r * (pre + s * suf) + (dt * f)[:, None] * r
    # (T3 + g D^2) w = D x, y = x - g D w; T3 = (1/2)[corners 1, sub -1, super +1]
    diag = g * r * r
    diag[0] += 0.5
    diag[-1] += 0.5
    sup = np.empty(N, c.dtype)
    rhs = np.empty_like(c)
    prev_sup, prev = 0.0, np.zeros(c.shape[0], c.dtype)
    for k in range(N):
        piv = diag[k] + 0.5 * prev_sup
        prev_sup = 0.5 / piv
        sup[k] = prev_sup
        prev = (r[k] * x[:, k] + 0.5 * prev) / piv
        rhs[:, k] = prev
    w = np.zeros(c.shape[0], c.dtype)
    for k in range(N - 1, -1, -1):
        w = rhs[:, k] - sup[k] * w
        out[:, k] = x[:, k] - g * r[k] * w
    return out


def check_numpy_steps():
    rng = np.random.default_rng(0)
    c = rng.standard_normal((3, 16))
    f = rng.standard_normal(3)
    np.testing.assert_allclose(numpy_legs_step(c, f, 7, np.empty_like(c)), hippo_rs.legs_update(c, f, 7), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        numpy_legt_step(c, f, 0.01, np.empty_like(c)), hippo_rs.update(c, f, measure="legt", dt=0.01), rtol=1e-10, atol=1e-10
    )


def dense_matrices(measure, N, dtype):
    if measure == "legs":
        Ad, Bd = hippo_rs.legs_step_matrices(N, t=100)
    else:
        A, B = hippo_rs.transition("legt", N)
        Ad, Bd = hippo_rs.discretize(A, B, dt=0.01)
    return Ad.astype(dtype), Bd.astype(dtype)


def step_row(measure, dtype, R, N, lines, quick):
    rng = np.random.default_rng(1)
    c = rng.standard_normal((R, N)).astype(dtype) * 0.1
    f = rng.standard_normal(R).astype(dtype)
    out = np.empty_like(c)
    if measure == "legs":
        ours = best_time(lambda: hippo_rs.legs_update(c, f, 100, out=out))
        numpy_on = lambda: numpy_legs_step(c, f, 100, out)  # noqa: E731
    else:
        ours = best_time(lambda: hippo_rs.update(c, f, measure="legt", dt=0.01, out=out))
        numpy_on = lambda: numpy_legt_step(c, f, 0.01, out)  # noqa: E731
    Ad, Bd = dense_matrices(measure, N, dtype)
    AdT = np.ascontiguousarray(Ad.T)
    tmp = np.empty_like(c)

    def dense():
        np.matmul(c, AdT, out=tmp)
        np.add(tmp, f[:, None] * Bd, out=tmp)

    t_dense = best_time(dense)
    t_np = best_time(numpy_on, min_total=0.05 if quick else 0.2, repeats=3)
    el = R * N
    lines.append(
        f"{measure:5s} {np.dtype(dtype).name:8s} ({R:4d},{N:4d}) | {el / ours / 1e6:10.0f} | {el / t_dense / 1e6:10.0f} |"
        f" {el / t_np / 1e6:10.1f} | {t_dense / ours:8.1f}x | {t_np / ours:9.0f}x | {ours * 1e6:9.1f}"
    )


def single_channel(measure, dtype, lines, quick):
    N, L = 256, 10**6
    f = np.random.default_rng(2).standard_normal(L).astype(dtype)
    kw = {} if measure == "legs" else {"dt": 1e-3}
    runs = []
    for _ in range(1 if quick else 3):
        t = time.perf_counter()
        final = hippo_rs.scan(f, N, measure=measure, return_all=False, **kw)
        runs.append(time.perf_counter() - t)
    assert np.all(np.isfinite(final))
    ours = min(runs)
    # Baselines on a prefix of the sequence (they are 1e2-1e4x slower), reported as steps/s.
    Ld = 2000 if quick else 10000
    Ad, Bd = dense_matrices(measure, N, dtype)
    c = np.zeros(N, dtype)
    t = time.perf_counter()
    for k in range(Ld):
        c = Ad @ c + Bd * f[k]
    t_dense = (time.perf_counter() - t) / Ld
    Ln = 20 if quick else 100
    c2 = np.zeros((1, N), dtype)
    o2 = np.empty_like(c2)
    t = time.perf_counter()
    for k in range(Ln):
        if measure == "legs":
            numpy_legs_step(c2, f[k : k + 1], k + 1, o2)
        else:
            numpy_legt_step(c2, f[k : k + 1], 1e-3, o2)
        c2, o2 = o2, c2
    t_np = (time.perf_counter() - t) / Ln
    lines.append(
        f"{measure:5s} {np.dtype(dtype).name:8s} L=1e6 N=256 final state: {ours:7.3f} s = {L / ours / 1e3:8.0f} k steps/s"
        f" | dense {1 / t_dense / 1e3:7.1f} k steps/s ({t_dense * L / ours:6.0f}x slower)"
        f" | numpy O(N) {1 / t_np / 1e3:6.2f} k steps/s ({t_np * L / ours:7.0f}x slower)"
    )


def bandwidth(lines, quick):
    L, R, N = (100, 512, 256) if not quick else (50, 256, 256)
    f = np.random.default_rng(3).standard_normal((L, R)).astype(np.float32)
    out = np.empty((L, R, N), np.float32)
    src = np.ones_like(out)
    t_copy = best_time(lambda: np.copyto(out, src), min_total=0.5, repeats=5)
    t_scan = best_time(lambda: hippo_rs.scan(f, N, measure="legs", out=out), min_total=0.5, repeats=5)
    gb = out.nbytes / 1e9
    lines.append(
        f"all states, LegS float32, (L, R, N) = ({L}, {R}, {N}), {out.nbytes / 1e6:.0f} MB written: scan {gb / t_scan:5.2f} GB/s,"
        f" np.copyto {gb / t_copy:5.2f} GB/s (of the array size) -> {100 * t_copy / t_scan:3.0f} % of copy bandwidth"
    )


def growth(lines):
    R = 100
    base = None
    for N in (256, 512, 1024, 2048, 4096):
        c = np.random.default_rng(4).standard_normal((R, N)).astype(np.float32) * 0.1
        f = np.ones(R, np.float32)
        # In place (out=c), the allocation-free stepping loop: N >= 2048 at batch 100 outgrows L2,
        # and a separate output array would double the memory traffic.
        t = best_time(lambda: hippo_rs.legs_update(c, f, 100, out=c))
        t_legt = best_time(lambda: hippo_rs.update(c, f, measure="legt", dt=1e-3, out=c))
        base = base or (t, t_legt)
        lines.append(
            f"N={N:5d}: LegS {t * 1e6:8.1f} us ({t / base[0]:5.1f}x N=256)   LegT {t_legt * 1e6:8.1f} us ({t_legt / base[1]:5.1f}x N=256)"
        )


# ---- (c) the scalar C recurrence -----------------------------------------------------------------

C_SOURCE = r"""
#include <stddef.h>
/* LegS, bilinear, original convention at step index t (A/t on both sides; paper §5), one row at a
   time: u_n = x_n + ae (n x_n - r_n P_n) + ab f r_n with P_n = sum_{k<=n} r_k x_k, then
   y_n = (u_n - ai r_n Q_{n-1}) / (1 + ai (n + 1)), Q_n = Q_{n-1} + r_n y_n; r_n = sqrt(2n + 1). */
#define LEGS(T, STEP, SCAN)                                                                  \
    void STEP(T *c, const T *f, const T *r, long R, long N, double t) {                        \
        T ai = (T)(0.5 / t), ae = (T)(0.5 / t), ab = (T)(1.0 / t);                            \
        for (long j = 0; j < R; j++) {                                                        \
            T *x = c + j * N, P = 0, Q = 0, fr = f[j];                                        \
            for (long n = 0; n < N; n++) {                                                    \
                P += r[n] * x[n];                                                             \
                T u = x[n] + ae * ((T)n * x[n] - r[n] * P) + ab * fr * r[n];                  \
                T y = (u - ai * r[n] * Q) / ((T)1 + ai * (T)(n + 1));                         \
                Q += r[n] * y;                                                                \
                x[n] = y;                                                                     \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    void SCAN(T *c, const T *f, const T *r, long N, long L, long t0) {                         \
        for (long k = 0; k < L; k++) STEP(c, f + k, r, 1, N, (double)(t0 + k));               \
    }
LEGS(float, legs_step_f32, legs_scan_f32)
LEGS(double, legs_step_f64, legs_scan_f64)
"""


def build_c():
    """The C recurrence as a shared library (None without a C compiler), and the compiler's name."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, "no C compiler"
    tmp = tempfile.mkdtemp(prefix="bench_scan_c")
    src, lib = os.path.join(tmp, "legs.c"), os.path.join(tmp, "legs.so")
    with open(src, "w") as fh:
        fh.write(C_SOURCE)
    subprocess.run([cc, "-O3", "-march=native", "-shared", "-fPIC", "-o", lib, src], check=True)
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    so = ctypes.CDLL(lib)
    for name in ("legs_step_f32", "legs_step_f64"):
        getattr(so, name).argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_long, ctypes.c_long, ctypes.c_double]
    for name in ("legs_scan_f32", "legs_scan_f64"):
        getattr(so, name).argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_long, ctypes.c_long, ctypes.c_long]
    return so, f"{version}, -O3 -march=native"


def ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


# ---- the machine -----------------------------------------------------------------------------------


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            info = fh.read()
    except OSError:
        return platform.processor() or platform.machine(), None, ""
    field = lambda key: next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith(key)), "")  # noqa: E731
    flags = field("flags").split()
    mhz = field("cpu MHz")
    simd = " ".join(f for f in ("avx2", "fma", "avx512f") if f in flags) or "no AVX2"
    return field("model name"), float(mhz) * 1e6 if mhz else None, simd


# Cycles per state element at the kernel's bound (benches/LIMITS.md: vector FP operations per element
# on two FMA ports, and the division throughput of the wavefront), for float32.
LIMIT_CYCLES = {
    # fused Prefix step on row tiles of W = 8 rows: 6 vector FP ops (4 FMA + 2 mul) + 4 shuffles + 1 insert
    # per element, on 3 vector ports
    "step": (6 + 4 + 1) / (3 * 8),
    # time wavefront: 8 vector FP ops + 1 division per lane-element; 16 lanes (AVX-512) or 8 (AVX2);
    # vdivps: 10 cycles per zmm / 5 per ymm (reciprocal throughput, Ice Lake / Sapphire Rapids server)
    "wave_avx512": max(8 / (2 * 16), 10 / 16),
    "wave_avx2": max(8 / (2 * 8), 5 / 8),
}


def side_by_side(lines, quick, so, freq, isa):
    """The three speed targets in one run: step vs C and dense numpy, single-row LegS scan vs C,
    single-row LegT/LMU vs LegS; with the fraction of the kernel's limit."""
    N, R = 256, 100
    rng = np.random.default_rng(7)
    c = (0.1 * rng.standard_normal((R, N))).astype(np.float32)
    f = rng.standard_normal(R).astype(np.float32)
    out = np.empty_like(c)
    rt = np.sqrt(2 * np.arange(N) + 1).astype(np.float32)
    Ad, Bd = dense_matrices("legs", N, np.float32)
    AdT, tmp = np.ascontiguousarray(Ad.T), np.empty_like(c)

    def dense():
        np.matmul(c, AdT, out=tmp)
        np.add(tmp, f[:, None] * Bd, out=tmp)

    cc = c.copy()
    # The same step without the Python layer: the binding and the kernel (coefficient row of t = 100).
    coef = np.array([[0.5 / 100, 0.5 / 100, 1.0 / 100]])
    f2 = f.reshape(1, R)
    fns = [
        lambda: hippo_rs.legs_update(c, f, 100, out=out),
        lambda: _core.gbt_scan("legs", {}, f2, c, coef, False, out),
        dense,
    ]
    if so:
        fns.append(lambda: so.legs_step_f32(ptr(cc), ptr(f), ptr(rt), R, N, 100.0))
    ours, t_core, t_dense, t_c = (best_times_interleaved(fns) + [float("nan")])[:4]
    el = R * N
    limit = el * LIMIT_CYCLES["step"] / freq if freq else float("nan")
    for name, t in (("legs_update", ours), ("_core.gbt_scan", t_core)):
        lines.append(
            f"LegS bilinear step (100, 256) float32, {name:14s}: {t * 1e6:6.1f} us | scalar C {t_c * 1e6:6.1f} us -> {t_c / t:5.1f}x (target >= 18x)"
            f" | dense numpy {t_dense * 1e6:6.1f} us -> {t_dense / t:5.1f}x (target >= 15x) | limit {limit * 1e6:4.1f} us = {100 * limit / t:3.0f} % reached"
        )
    L = 10**5 if quick else 10**6
    fs = np.random.default_rng(8).standard_normal(L).astype(np.float32)
    runs = lambda fn: min(timed(fn) for _ in range(1 if quick else 3))  # noqa: E731
    c1 = np.zeros(N, np.float32)
    t_legs = t_cscan = float("inf")
    for _ in range(1 if quick else 3):  # in turn, as above
        t_legs = min(t_legs, timed(lambda: hippo_rs.scan(fs, N, measure="legs", return_all=False)))
        t_cscan = min(t_cscan, timed(lambda: so.legs_scan_f32(ptr(c1), ptr(fs), ptr(rt), N, L, 1)) if so else float("nan"))
    wave = LIMIT_CYCLES["wave_avx512" if isa == "avx512" else "wave_avx2"]
    limit = L * N * wave / freq if freq else float("nan")
    lines.append(
        f"LegS single row, L = {L:.0e}, N = 256, float32, final state: ours {t_legs:6.3f} s | scalar C {t_cscan:6.3f} s -> {t_cscan / t_legs:5.1f}x (target >= 12x)"
        f" | limit {limit:6.3f} s = {100 * limit / t_legs:3.0f} % reached"
    )
    for m in ("legt", "lmu"):
        t_m = runs(lambda: hippo_rs.scan(fs, N, measure=m, dt=1e-4, return_all=False))
        lines.append(f"{m.upper():4s} single row, same L, N, dt = 1e-4: ours {t_m:6.3f} s = {t_m / t_legs:4.2f}x LegS (target <= 2x)")


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def per_isa(lines, forced):
    """The same calls on every instruction set of this CPU (forced), float32, N = 256; then back to
    `forced` (None: the detected one)."""
    N, R = 256, 100
    rng = np.random.default_rng(9)
    c = (0.1 * rng.standard_normal((R, N))).astype(np.float32)
    f = rng.standard_normal(R).astype(np.float32)
    out = np.empty_like(c)
    L = 10**5
    fs = rng.standard_normal(L).astype(np.float32)
    for isa in ("scalar", "avx2", "avx512"):
        try:
            _core._set_isa(isa)
        except ValueError:
            lines.append(f"{isa:7s}: not on this CPU")
            continue
        try:
            step = best_time(lambda: hippo_rs.legs_update(c, f, 100, out=out), min_total=0.2, repeats=5)
            row = f"{isa:7s}: LegS step (100, 256) {step * 1e6:8.1f} us"
            if isa != "scalar":  # the portable build has no FMA instruction: its mul_add is a libm call
                t_s = min(timed(lambda: hippo_rs.scan(fs, N, measure="legs", return_all=False)) for _ in range(2))
                t_t = min(timed(lambda: hippo_rs.scan(fs, N, measure="legt", dt=1e-4, return_all=False)) for _ in range(2))
                row += f" | single row L = 1e5: LegS {t_s * 1e3:6.1f} ms, LegT {t_t * 1e3:6.1f} ms"
            lines.append(row)
        finally:
            _core._set_isa(forced)


def call_overhead(lines):
    """The fixed cost of one call: the Rust binding on the smallest arrays, and legs_update's Python path."""
    f, c0, coef = np.ones((1, 1), np.float32), np.zeros((1, 1), np.float32), np.array([[0.5, 0.5, 1.0]])
    out = np.empty((1, 1), np.float32)
    t_core = best_time(lambda: _core.gbt_scan("legs", {}, f, None, coef, False, out), min_total=0.2)
    c, f1 = np.zeros((1, 1), np.float32), np.ones(1, np.float32)
    t_py = best_time(lambda: hippo_rs.legs_update(c, f1, 100, out=c), min_total=0.2)
    lines.append(f"_core.gbt_scan on (1, 1) arrays: {t_core * 1e6:5.2f} us per call; legs_update (1 row, N = 1, out=): {t_py * 1e6:5.2f} us")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, L = 1e5 in the first table")
    ap.add_argument("--blas-threads", default=None, help="threads of numpy's BLAS (set before numpy loads)")
    ap.add_argument("--isa", choices=("scalar", "avx2", "avx512"), default=None,
                    help="run every table on this instruction set's kernels (default: the best this CPU has)")
    ap.add_argument("--out", default=None, help="where the tables are saved (default: benches/results/bench_scan_cpu[_ISA].txt)")
    args = ap.parse_args()
    if args.out is None:
        name = "bench_scan_cpu" + (f"_{args.isa}" if args.isa else "") + ".txt"
        args.out = os.path.join(os.path.dirname(__file__), "results", name)
    try:
        isa = _core._set_isa(args.isa)
    except ValueError as err:
        ap.error(f"--isa: {err}")
    check_numpy_steps()
    model, freq, simd = cpu_model()
    so, compiler = build_c()
    width = {"avx512": "512-bit (16 float32)", "avx2": "256-bit (8 float32)", "scalar": "scalar"}[isa]
    lines = [
        f"hippo_rs {hippo_rs.__version__} bench_scan.py  {time.strftime('%Y-%m-%d %H:%M:%S')}",
        f"CPU: {model} ({simd}; nominal {freq / 1e9 if freq else float('nan'):.2f} GHz), cores={os.cpu_count()}, "
        f"load avg={' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"kernels: {isa}{' (forced by --isa)' if args.isa else ''}, vector width {width}; C baseline: {compiler}; python {sys.version.split()[0]}, "
        f"numpy {np.__version__}, BLAS threads={args.blas_threads or 'default'}",
        "",
        "Targets, side by side (limit: benches/LIMITS.md, at the nominal clock)",
    ]
    side_by_side(lines, args.quick, so, freq, isa)
    lines += ["", "Every instruction set of this CPU, forced in turn (float32)"]
    per_isa(lines, args.isa)
    lines += ["", "Call overhead"]
    call_overhead(lines)
    lines += [
        "",
        "Per-step throughput, bilinear (M state elements/s; LegS at t = 100, LegT dt = 0.01, theta = 1)",
        "measure dtype    (   R,   N) |       ours |      dense | numpy O(N) | vs dense | vs numpy | ours us/step",
    ]
    for measure in ("legs", "legt"):
        for dtype in (np.float32, np.float64):
            for R, N in ((1, 256), (100, 256), (100, 512), (4096, 64)):
                step_row(measure, dtype, R, N, lines, args.quick)
    lines += ["", "Single channel, whole scan (bilinear; LegT dt = 1e-3)"]
    for measure in ("legs", "legt"):
        for dtype in (np.float32, np.float64):
            single_channel(measure, dtype, lines, args.quick)
    lines += ["", "Memory bound: all states of a many-channel scan vs np.copyto of an array of the same size"]
    bandwidth(lines, args.quick)
    lines += ["", "Time per step at batch 100, float32 bilinear, in place (O(N) growth: N=4096 is 16x the state of N=256)"]
    growth(lines)
    text = "\n".join(lines)
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write(text + "\n")


if __name__ == "__main__":
    main()
