"""A Memory fed 10^8 samples in chunks against one scan of the whole stream, float32 and float64.

Checks (and times) what the test suite cannot afford: the chunked online path (`Memory.update`, any
chunk sizes) equals one `scan` of the whole stream after 10^8 steps -- bit for bit for LegS (the same
steps in the same order), and to rounding for LegT, whose long final-state scans run in blocks of T
steps (c_{k+T} = Ad^T c_k + K f, float64 between blocks) that start wherever a chunk starts -- and
reports the float32 drift against float64 at that length.

    python benches/bench_long_stream.py [--length 100000000] [--order 64]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import hippo_rs


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                flags = open("/proc/cpuinfo").read()
                return line.split(":", 1)[1].strip() + (" (AVX-512)" if "avx512f" in flags else " (no AVX-512)")
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def stream(length: int, dtype) -> np.ndarray:
    """A bounded multi-tone signal, computed in float64 then rounded (cheap at 10^8 samples)."""
    t = np.arange(length, dtype=np.float64) * 1e-4
    x = 0.5 * np.sin(2 * np.pi * 0.7 * t) + 0.3 * np.sin(2 * np.pi * 3.1 * t + 1.0) + 0.1 * np.cos(2 * np.pi * 0.05 * t)
    return x.astype(dtype)


def chunk_sizes(length: int, seed: int):
    """Irregular chunks (1 sample to ~3 million), as a live source delivers them."""
    rng = np.random.default_rng(seed)
    at = 0
    while at < length:
        size = int(min(length - at, rng.choice([1, 17, 4096, 65536, 3_000_000])))
        yield at, size
        at += size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--length", type=int, default=10**8)
    p.add_argument("--order", type=int, default=64)
    args = p.parse_args()
    L, N = args.length, args.order
    print(f"# bench_long_stream: L = {L:,}, N = {N}; {cpu_model()}; hippo_rs {hippo_rs.__version__}")
    finals = {}
    for measure, options in [("legs", {}), ("legt", {"dt": 1e-4, "theta": 1.0})]:
        for dtype in (np.float32, np.float64):
            x = stream(L, dtype)
            t0 = time.perf_counter()
            whole = hippo_rs.scan(x, N, measure=measure, return_all=False, **options)
            scan_s = time.perf_counter() - t0
            mem = hippo_rs.Memory(N, measure=measure, dtype=dtype, **options)
            t0 = time.perf_counter()
            chunks = 0
            for at, size in chunk_sizes(L, seed=1):
                mem.update(x[at : at + size])
                chunks += 1
            memory_s = time.perf_counter() - t0
            bitwise = mem.state.tobytes() == whole.tobytes() and mem.t == L
            diff = float(np.abs(mem.state.astype(np.float64) - whole).max() / np.abs(whole).max())
            finals[measure, dtype] = whole
            print(
                f"{measure:5} {np.dtype(dtype).name:8} scan {scan_s:7.2f} s ({L / scan_s / 1e6:6.1f} M steps/s)  "
                f"Memory in {chunks:,} chunks {memory_s:7.2f} s  bitwise equal: {bitwise}  "
                f"max difference {diff:.2g} of max|c|"
            )
            # LegS: the same steps in the same order. LegT: blocks from other starting points, equal
            # to a few roundings of the dtype (the blocks' products are float64).
            tolerance = 0.0 if measure == "legs" else 64 * np.finfo(dtype).eps
            if mem.t != L or diff > tolerance:
                raise SystemExit(f"{measure} {np.dtype(dtype).name}: the chunked Memory differs from the scan")
    for measure in ("legs", "legt"):
        c32, c64 = finals[measure, np.float32], finals[measure, np.float64]
        drift = np.abs(c32.astype(np.float64) - c64).max() / np.abs(c64).max()
        print(f"{measure:5} float32 drift after {L:,} steps: {drift:.3g} of max|c|")


if __name__ == "__main__":
    main()
