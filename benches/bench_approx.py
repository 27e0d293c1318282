"""Benchmark of the main job and of reconstruction precision.

1. ``hippo-rs approx`` with its defaults (10^6 samples, N = 256, LegS/LegT/LMU), timed end to end
   (signal, three measures, optimal fit, plot) in a subprocess, as a user runs it.
2. LegS MSE against the optimal projection over several seeds (float32 and float64 states).
3. Reconstruction of a 10^6-sample history from N = 1024 coefficients: float32 vs float64 relative
   error, and the time per call.

Run: ``python benches/bench_approx.py [--quick]``; results are printed (the repository keeps a copy
in ``benches/results/bench_approx_cpu.txt``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

import hippo_rs
from hippo_rs.approx import main as approx_main


def default_job() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "hippo_rs", "approx", "--out", os.path.join(tmp, "fig.png")],
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        wall = time.perf_counter() - start
    print("== default job: python -m hippo_rs approx (process wall time includes interpreter start)")
    print(proc.stdout.rstrip())
    if proc.returncode:
        print(proc.stderr.rstrip())
    print(f"process wall time: {wall:.2f} s")


def seeds(n_seeds: int) -> None:
    print(f"== LegS MSE vs optimal over {n_seeds} seeds (default signal, N = 256, bilinear)")
    print(f"{'seed':>4} {'optimal':>9} {'f64 MSE':>9} {'ratio':>6} {'f32 MSE':>9} {'ratio':>6}")
    for seed in range(n_seeds):
        vals = []
        for dtype in ("float64", "float32"):
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                approx_main(
                    ["--seed", str(seed), "--measure", "legs", "--dtype", dtype, "--no-plot", "--json", "--jobs", "1"]
                )
            vals.append(json.loads(buf.getvalue()))
        opt = vals[0]["optimal_mse"]
        m64, m32 = (v["results"][0]["mse"] for v in vals)
        print(f"{seed:>4} {opt:>9.5f} {m64:>9.5f} {m64 / opt:>6.3f} {m32:>9.5f} {m32 / opt:>6.3f}")


def reconstruction_precision(points: int) -> None:
    N = 1024
    x = hippo_rs.signals.white_signal(points, dt=1e-4, cutoff=1.0, seed=0)
    mem = hippo_rs.Memory(N, measure="legs", dtype=np.float64)
    for k in range(0, points, 1 << 16):
        mem.update(x[k : k + (1 << 16)])
    c64 = mem.state
    c32 = c64.astype(np.float32)
    times = np.arange(points) * 1e-4
    t = mem.time
    start = time.perf_counter()
    r64 = hippo_rs.reconstruct("legs", c32.astype(np.float64), times, t=t)
    t64 = time.perf_counter() - start
    start = time.perf_counter()
    r32 = hippo_rs.reconstruct("legs", c32, times, t=t)
    t32 = time.perf_counter() - start
    rel = np.linalg.norm(r32 - r64) / np.linalg.norm(r64)
    print(f"== reconstruction, N = {N}, {points:,} times (LegS state of the default signal)")
    print(f"float32 vs float64 (same coefficients): relative L2 error {rel:.2e}, max abs {np.abs(r32 - r64).max():.2e}")
    rel_state = np.linalg.norm(hippo_rs.reconstruct("legs", c64, times, t=t) - r64) / np.linalg.norm(r64)
    print(f"  (rounding the state itself to float32: relative L2 change {rel_state:.2e})")
    print(f"time per call: float64 {t64:.3f} s, float32 {t32:.3f} s")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one seed instead of three")
    args = p.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, {platform.platform()}")
    print(f"hippo_rs {hippo_rs.__version__}, numpy {np.__version__}")
    default_job()
    seeds(1 if args.quick else 3)
    reconstruction_precision(1_000_000)
