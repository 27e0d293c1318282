"""The ``hippo-rs approx`` job: stream the signal through each memory, reconstruct, compare."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import _rules
from ..memory import Memory
from ..signals import white_signal
from .errors import Cancelled, InputError
from .fit import optimal_fit
from .plot import plot
from .progress import Progress
from .signal_io import _check_signal, load_signal

PROG = "hippo-rs approx"
#: The discretisations the job offers: the core's methods but the weighted GBT (it needs a weight).
METHODS = tuple(m for m in _rules.METHODS if m != "gbt")
#: The picture's name in an ``--out`` folder, and the formats matplotlib writes.
DEFAULT_PLOT = "hippo_approx.png"
PLOT_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")
#: Samples per ``Memory.update`` call (progress advances per chunk), fewer at large N so that a
#: chunk (CHUNK_WORK state-element updates, a fraction of a second) keeps the progress moving.
CHUNK = 1 << 16
CHUNK_WORK = 1 << 24
#: Measures whose window theta is set to the record length.
WINDOWED = ("legt", "lmu", "fout")
SUPPORTED = ("legs", "legt", "lmu", "fout", "lagt", "glagt")
#: The default comparison: the scaled measure and two windows over the record, in the Legendre and
#: the Fourier basis. (LMU is LegT in another normalisation, the same reconstruction; LagT's
#: exponential measure cannot give back a record thousands of time constants long.)
DEFAULT_MEASURES = "legs,legt,fout"
#: State-element updates per second of one measure's scan (float64, one core of a 2-core Xeon):
#: the prefix-sum measures run about five times faster than the windowed ones. For the estimate.
SCAN_RATE = {"legs": 2e8, "lagt": 2e8, "glagt": 2e8}
SCAN_RATE_OTHER = 4e7
#: Multiply-adds per second of the optimal fit's O(L N) products, and the LSQR iterations it
#: usually needs (at most fit.LSQR_ITERATIONS). For the estimate.
FIT_RATE = 4e8
FIT_ITERATIONS = 20
#: Jobs estimated to take longer than this say so before they start.
ANNOUNCE_S = 10.0
#: Largest samples * N^2 that --method zoh (dense step matrices, O(N^2) per step; O(N^3) for legs) may run.
ZOH_WORK = 1e9


def run_measure(
    measure: str,
    x: np.ndarray,
    N: int,
    method: str,
    dtype: str,
    dt: float,
    quiet: bool,
    position: int = 0,
    stop: Optional[threading.Event] = None,
    zero_init: bool = False,
) -> Tuple[Dict[str, Any], np.ndarray]:
    """Streams ``x`` through one memory and reconstructs the record from the final state.

    ``stop`` (checked between chunks) ends the run early with ``Cancelled``."""
    L = x.size
    params = {"theta": L * dt} if measure in WINDOWED else {}
    start = time.perf_counter()
    mem = Memory(N, measure=measure, method=method, dtype=dtype, dt=dt, **params)
    # The memory absorbs x - x[0]: exactly the same for LegS (constants are exact: c = f e_0 is a fixed
    # point of every GBT step, so the offset only adds x[0] e_0), and for the windowed measures a
    # constant history x[0] before the record instead of zeros (a jump at the window's far edge,
    # which LegT/LMU/FouT handle worst, would otherwise dominate their error on signals with an offset).
    offset = 0.0 if zero_init else float(x[0])
    xs = (x - offset).astype(dtype)
    bar = Progress(L, measure, bar=not quiet, position=position, prog=PROG)
    scan_s = 0.0
    chunk = max(256, min(CHUNK, CHUNK_WORK // N))
    for k in range(0, L, chunk):
        if stop is not None and stop.is_set():
            raise Cancelled(measure)
        t0 = time.perf_counter()
        mem.update(xs[k : k + chunk])
        scan_s += time.perf_counter() - t0
        bar.update(min(chunk, L - k))
    bar.close()
    t0 = time.perf_counter()
    rec = mem.reconstruct(np.arange(L) * dt).astype(np.float64) + offset
    rec_s = time.perf_counter() - t0
    mse = float(np.mean((rec - x) ** 2))
    row = {
        "measure": measure,
        "params": params,
        "mse": mse,
        "steps_per_s": L / scan_s if scan_s > 0 else float("inf"),
        "scan_s": scan_s,
        "reconstruct_s": rec_s,
        "wall_s": time.perf_counter() - start,
    }
    return row, rec


def _measures(values: Optional[List[str]]) -> List[str]:
    names = [m.strip() for v in (values or [DEFAULT_MEASURES]) for m in v.split(",") if m.strip()]
    for m in names:
        if m not in SUPPORTED:
            raise InputError(f"argument --measure: '{m}' is not one of {', '.join(SUPPORTED)}")
    if not names:
        raise InputError("argument --measure: expected at least one measure")
    return list(dict.fromkeys(names))


def estimate(L: int, N: int, measures: List[str], jobs: int) -> Tuple[float, float]:
    """(seconds, bytes) the job will take, roughly: the scans and reconstructions (O(L N) each), the
    optimal fit (dense L N^2, or LSQR iterations of two O(L N) products), and the arrays of length L
    (the signal, one reconstruction per measure, the fit)."""
    from .fit import DENSE_FIT_WORK

    work = sum(L * N / SCAN_RATE.get(m, SCAN_RATE_OTHER) + L * N / FIT_RATE for m in measures)
    dense = L * float(N) ** 2 <= DENSE_FIT_WORK
    fit = L * float(N) ** 2 / FIT_RATE if dense else FIT_ITERATIONS * 2 * L * N / FIT_RATE
    seconds = max((work + fit) / max(1, jobs), fit)  # the fit runs in the same pool of `jobs` workers
    memory = 8.0 * L * (3 + 2 * len(measures)) + (8.0 * L * N if dense else 0.0)
    return seconds, memory


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _physical_memory() -> Optional[float]:
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def plot_path(out: str) -> str:
    """``--out``: a file, or a folder (existing, or named with a trailing separator) that receives
    ``hippo_approx.png``; checked to be writable before any work starts."""
    path = os.path.join(out, DEFAULT_PLOT) if os.path.isdir(out) or out.endswith(os.sep) else out
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"argument --out: folder {folder} does not exist")
    if os.path.isdir(path):
        raise InputError(f"argument --out: {path} is a folder")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise InputError(f"argument --out: cannot write {path} (permission denied)")
    if os.path.splitext(path)[1].lower() not in PLOT_FORMATS:
        raise InputError(
            f"argument --out: {path}: expected a picture file ending in {', '.join(PLOT_FORMATS)}, or a folder"
        )
    return path


def _white_signal_args(length: int, dt: float, cutoff: float) -> None:
    """The flags of the generated signal, checked against each other with the flag to change named."""
    if not (np.isfinite(cutoff) and cutoff > 0):
        raise InputError(f"argument --cutoff: expected a frequency > 0 Hz, got {cutoff}")
    nyquist = 0.5 / dt
    if cutoff > nyquist:
        raise InputError(
            f"argument --cutoff: {cutoff:g} Hz is above the Nyquist frequency 1/(2 dt) = {nyquist:g} Hz of "
            f"--dt {dt:g}: lower --cutoff or --dt"
        )
    lowest = 1.0 / (length * dt)
    if cutoff < lowest:
        need = int(np.ceil(1.0 / (cutoff * dt)))
        raise InputError(
            f"argument --length: {length:,} samples at --dt {dt:g} s last {length * dt:g} s, too short for "
            f"--cutoff {cutoff:g} Hz (the record's lowest frequency is {lowest:g} Hz): use --length {need} or "
            f"more, a larger --dt, or a larger --cutoff"
        )


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """The job, on parsed arguments; returns the results (what --json prints)."""
    if args.order < 1:
        raise InputError(f"argument --order: expected N >= 1, got {args.order}")
    if args.length is not None and args.length < 2:
        raise InputError(f"argument --length: expected at least 2 samples, got {args.length}")
    if args.jobs is not None and args.jobs < 1:
        raise InputError(f"argument --jobs: expected at least 1, got {args.jobs}")
    if args.dt is not None and not (np.isfinite(args.dt) and args.dt > 0):
        raise InputError(f"argument --dt: expected a finite step > 0, got {args.dt}")
    measures = _measures(args.measure)
    if args.method not in METHODS:
        raise InputError(f"argument --method: '{args.method}' is not one of {', '.join(METHODS)}")
    out = None if args.no_plot else plot_path(args.out)
    start = time.perf_counter()
    if args.input:
        if args.column is not None and args.column < 0:
            raise InputError(f"argument --column: expected an index >= 0, got {args.column}")
        x, file_dt = load_signal(args.input, args.column)
        if args.length is not None:
            x = x[: args.length]
        _check_signal(x, args.input)
        dt = args.dt or file_dt or 1.0
        unit = "s" if (args.dt or file_dt) else "samples"
        signal = {"input": args.input, "length": int(x.size), "dt": dt, "time_unit": unit}
    else:
        length = 1_000_000 if args.length is None else args.length
        dt = 1e-4 if args.dt is None else args.dt
        _white_signal_args(length, dt, args.cutoff)
        try:
            x = white_signal(length, dt=dt, cutoff=args.cutoff, rms=args.rms, seed=args.seed)
        except (TypeError, ValueError) as e:  # the message starts with the argument's name
            raise InputError(f"argument --{e}") from None
        signal = {
            "white_signal": True,
            "length": length,
            "dt": dt,
            "time_unit": "s",
            "cutoff": args.cutoff,
            "rms": args.rms,
            "seed": args.seed,
        }
    signal["rms_measured"] = float(np.sqrt(np.mean(x * x)))
    signal["variance"] = float(np.var(x))

    if args.method == "zoh" and x.size * float(args.order) ** 2 > ZOH_WORK:
        raise InputError(
            f"argument --method: zoh steps with dense matrices (O(N^2) per step, O(N^3) for legs), too slow for "
            f"{x.size:,} steps at N = {args.order}; use bilinear (or a shorter --length)"
        )

    jobs = min(len(measures), args.jobs or os.cpu_count() or 1)
    seconds, memory = estimate(x.size, args.order, measures, jobs)
    available = _physical_memory()
    if available is not None and memory > 0.8 * available:
        raise InputError(
            f"argument --length: {x.size:,} samples at N = {args.order} need about {memory / 2**30:.1f} GiB, more "
            f"than this machine's {available / 2**30:.1f} GiB: shorten --length or lower --order"
        )
    if seconds > ANNOUNCE_S:
        print(
            f"{PROG}: {x.size:,} samples, N = {args.order}, {len(measures)} measure(s): about "
            f"{_duration(seconds)} and {memory / 2**30:.2g} GiB on this machine (a rough estimate)",
            file=sys.stderr,
            flush=True,
        )

    def timed_fit() -> Tuple[np.ndarray, Dict[str, Any], float]:
        t0 = time.perf_counter()
        fit, info = optimal_fit(x, args.order)
        return fit, info, time.perf_counter() - t0

    # The measures (and the optimal fit) run side by side, `jobs` at a time: the Rust scans and
    # reconstructions release the GIL.
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        fit_future = pool.submit(timed_fit)
        futures = [
            pool.submit(run_measure, m, x, args.order, args.method, args.dtype, dt, args.json, i, stop, args.zero_init)
            for i, m in enumerate(measures)
        ]
        try:
            fit, fit_info, fit_s = fit_future.result()
            optimal = float(np.mean((fit - x) ** 2))
            done = [f.result() for f in futures]
        except (TypeError, ValueError) as e:
            stop.set()
            raise InputError(str(e)) from None
        except BaseException:  # KeyboardInterrupt: let the other measures stop at their next chunk
            stop.set()
            raise
    rows, recs = [], {}
    # No ratio when the fit is exact to rounding (the record is a polynomial of degree < N).
    exact = optimal <= 1e-12 * max(signal["variance"], np.finfo(float).tiny)
    for m, (row, rec) in zip(measures, done):
        row["ratio_to_optimal"] = None if exact else row["mse"] / optimal
        rows.append(row)
        recs[m] = rec

    written = None
    if out is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(
                f"{PROG}: note: plot skipped, matplotlib is not installed (pip install 'hippo_rs[experiments]')",
                file=sys.stderr,
            )
        else:
            try:
                plot(out, x, dt, recs, fit, args.order, signal["time_unit"], {r["measure"]: r["params"] for r in rows})
            except OSError as e:
                raise InputError(f"argument --out: cannot write {out} ({e})") from None
            written = out
    return {
        "signal": signal,
        "order": args.order,
        "method": args.method,
        "dtype": args.dtype,
        "jobs": jobs,
        "initial_state": "zero" if args.zero_init else "constant history f(0)",
        "optimal_mse": optimal,
        "optimal_s": fit_s,
        "optimal_fit": fit_info,
        "results": rows,
        "plot": written,
        "total_s": time.perf_counter() - start,
    }
