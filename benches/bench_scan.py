"""Benchmarks of the O(N) HiPPO updates and scans . Not part of the test command.

    python benches/bench_scan.py [--quick]   # prints the table; saved as benches/results/bench_scan_cpu.txt

Every figure is the best of several timed repetitions (the machine may be shared), measured side by
side in one run with:
  (a) dense: the precomputed discretised transition matrix applied with numpy matmul,
      c @ Ad.T + f[:, None] * Bd (for LegS one fixed step's matrices: the cost is the same every step);
  (b) numpy O(N): a vectorised numpy implementation of the same O(N) step: np.cumsum for the running
      sums of the explicit half, and the implicit solve as a loop over n vectorised across the batch
      (its recurrence Q_n = a_n Q_{n-1} + b_n has no stable closed form in cumsum/cumprod: a_n
      changes sign and vanishes for LegS), so its per-step cost is O(N) numpy calls.
Throughput is state elements per second (batch x N per step).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

if __name__ == "__main__" and "--blas-threads" in sys.argv:
    # Must precede the numpy import. On a shared, loaded machine multi-threaded BLAS can stall at its
    # barriers (a descheduled thread), which makes the dense baseline erratic.
    _threads = sys.argv[sys.argv.index("--blas-threads") + 1]
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _threads

import numpy as np  # noqa: E402

import hippo_rs  # noqa: E402


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--blas-threads", default=None, help="threads of numpy's BLAS (set before numpy loads)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "bench_scan_cpu.txt"))
    args = ap.parse_args()
    check_numpy_steps()
    lines = [
        f"hippo_rs {hippo_rs.__version__} bench_scan.py  {time.strftime('%Y-%m-%d %H:%M:%S')}",
        f"machine: {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()} "
        f"load avg={' '.join(f'{x:.2f}' for x in os.getloadavg())}; python {sys.version.split()[0]}, numpy {np.__version__}, "
        f"BLAS threads={args.blas_threads or 'default'}",
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
