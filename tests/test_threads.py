"""Many threads calling the kernels at once give the serial results bit for bit.

The binding releases the GIL around every kernel and keeps one operator cache per (measure, N, dtype)
shared by all threads, so concurrent calls really overlap; each call must still see its own
arguments and produce exactly what the same call produces alone. ``Memory`` objects are not shared
between threads here (one object per thread): see the README's "Threads" section for what may be.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import hippo_rs

THREADS = 8
ROUNDS = 3


def _signal(seed: int, shape, dtype) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _numpy_jobs():
    """(name, zero-argument callable) pairs over mixed measures, dtypes and sizes."""
    jobs = []
    for i, (measure, params, N, dtype) in enumerate(
        [
            ("legs", {}, 64, np.float32),
            ("legs", {}, 300, np.float64),
            ("legt", {"theta": 2.0}, 48, np.float32),
            ("lmu", {"theta": 1.0}, 33, np.float64),
            ("lagt", {"beta": 0.5}, 16, np.float32),
            ("glagt", {"alpha": 0.3, "beta": 1.0}, 24, np.float64),
            ("fout", {"theta": 1.0}, 31, np.float32),
            ("chebt", {"theta": 1.0}, 20, np.float64),
        ]
    ):
        dt = None if measure == "legs" else 1e-2
        f = _signal(i, (400, 3), dtype)
        jobs.append((f"scan-{measure}", lambda f=f, N=N, m=measure, p=params, dt=dt: hippo_rs.scan(
            f, N, measure=m, dt=dt, **p)))
        c = _signal(100 + i, (9, N), dtype)
        x = _signal(200 + i, (9,), dtype)
        if measure == "legs":
            jobs.append((f"legs_update-{N}", lambda c=c, x=x: hippo_rs.legs_update(c, x, 7)))
        else:
            jobs.append((f"update-{measure}", lambda c=c, x=x, m=measure, p=params: hippo_rs.update(
                c, x, measure=m, dt=1e-2, **p)))
    coef = hippo_rs.scan(_signal(7, 500, np.float64), 40)
    times = np.linspace(0.0, 500.0, 257)
    jobs.append(("reconstruct", lambda: hippo_rs.reconstruct("legs", coef, times, t=500.0)))
    jobs.append(("memory", lambda: _memory_run(np.float32)))
    jobs.append(("memory-legt", lambda: _memory_run(np.float64, measure="legt", dt=1e-3, theta=0.5)))
    return jobs


def _memory_run(dtype, **options):
    """A fresh Memory per call (Memory objects are not shared): chunks, then a reconstruction."""
    mem = hippo_rs.Memory(32, dtype=dtype, **options)
    x = _signal(11, 3000, dtype)
    for chunk in np.array_split(x, 5):
        mem.update(chunk)
    return np.concatenate([mem.state.ravel().astype(np.float64), mem.reconstruct().ravel()])


def _run_concurrently(jobs):
    """Every job THREADS * ROUNDS times, interleaved across THREADS threads released together."""
    barrier = threading.Barrier(THREADS)

    def worker(k):
        barrier.wait()
        order = list(range(len(jobs)))
        np.random.default_rng(k).shuffle(order)
        return [(j, jobs[j][1]()) for _ in range(ROUNDS) for j in order]

    with ThreadPoolExecutor(THREADS) as pool:
        return [r for rs in pool.map(worker, range(THREADS)) for r in rs]


def _assert_bitwise(jobs, results):
    serial = [fn() for _, fn in jobs]
    for j, got in results:
        want = serial[j]
        name = jobs[j][0]
        assert isinstance(got, type(want)), name
        got_a, want_a = np.asarray(got), np.asarray(want)
        assert got_a.dtype == want_a.dtype and got_a.shape == want_a.shape, name
        assert got_a.tobytes() == want_a.tobytes(), f"{name}: a concurrent call differs from the serial one"


def test_numpy_api_threads_bitwise_equal_serial():
    jobs = _numpy_jobs()
    _assert_bitwise(jobs, _run_concurrently(jobs))


def test_threads_really_overlap_in_the_kernels():
    """The GIL is released: a long scan in one thread does not stop another thread from running."""
    f = np.ones(2_000_000, np.float32)
    done = threading.Event()
    ticks = []

    def long_scan():
        hippo_rs.scan(f, 256, return_all=False)
        done.set()

    thread = threading.Thread(target=long_scan)
    thread.start()
    while not done.is_set():
        ticks.append(1)
        done.wait(0.001)
    thread.join()
    # Had the scan held the GIL, the loop could not have ticked while it ran.
    assert len(ticks) > 3


def test_torch_ops_threads_bitwise_equal_serial():
    torch = pytest.importorskip("torch")
    import hippo_rs.torch as ht

    jobs = []
    for i, (measure, params, N, dtype) in enumerate(
        [
            ("legs", {}, 64, torch.float32),
            ("legt", {"theta": 1.0}, 32, torch.float64),
            ("fout", {"theta": 1.0}, 17, torch.float32),
            ("lagt", {}, 8, torch.float64),
        ]
    ):
        dt = None if measure == "legs" else 1e-2
        g = torch.Generator().manual_seed(i)
        f = torch.randn(200, 4, generator=g, dtype=dtype)
        jobs.append((f"ht.scan-{measure}", lambda f=f, N=N, m=measure, p=params, dt=dt: ht.scan(
            f, N, measure=m, dt=dt, **p).numpy()))
        c = torch.randn(4, N, generator=g, dtype=dtype)
        jobs.append((f"ht.update-{measure}", lambda c=c, f=f, m=measure, p=params, dt=dt: ht.update(
            c, f[0], measure=m, dt=dt, t=5 if m == "legs" else None, **p).numpy()))
    _assert_bitwise(jobs, _run_concurrently(jobs))
