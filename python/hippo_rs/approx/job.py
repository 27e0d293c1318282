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
from .signal_io import _check_signal, load_signal

PROG = "hippo-rs approx"
#: The discretisations the job offers: the core's methods but the weighted GBT (it needs a weight).
METHODS = tuple(m for m in _rules.METHODS if m != "gbt")
#: Samples per ``Memory.update`` call (the progress bar advances per chunk).
CHUNK = 1 << 16
#: Measures whose window theta is set to the record length.
WINDOWED = ("legt", "lmu", "fout")
SUPPORTED = ("legs", "legt", "lmu", "fout", "lagt", "glagt")
#: Largest samples * N^2 that --method zoh (dense step matrices, O(N^2) per step; O(N^3) for legs) may run.
ZOH_WORK = 1e9


def _progress(total: int, desc: str, quiet: bool, position: int) -> Any:
    if quiet or total < 4 * CHUNK:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(
        total=total,
        desc=desc,
        unit="step",
        unit_scale=True,
        leave=False,
        disable=None,
        file=sys.stderr,
        position=position,
    )


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
    bar = _progress(L, measure, quiet, position)
    scan_s = 0.0
    for k in range(0, L, CHUNK):
        if stop is not None and stop.is_set():
            raise Cancelled(measure)
        t0 = time.perf_counter()
        mem.update(xs[k : k + CHUNK])
        scan_s += time.perf_counter() - t0
        if bar is not None:
            bar.update(min(CHUNK, L - k))
    if bar is not None:
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
    names = [m.strip() for v in (values or ["legs,legt,lmu"]) for m in v.split(",") if m.strip()]
    for m in names:
        if m not in SUPPORTED:
            raise InputError(f"argument --measure: '{m}' is not one of {', '.join(SUPPORTED)}")
    if not names:
        raise InputError("argument --measure: expected at least one measure")
    return list(dict.fromkeys(names))


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

    def timed_fit() -> Tuple[np.ndarray, Dict[str, Any], float]:
        t0 = time.perf_counter()
        fit, info = optimal_fit(x, args.order)
        return fit, info, time.perf_counter() - t0

    # The measures (and the optimal fit) run side by side, `jobs` at a time: the Rust scans and
    # reconstructions release the GIL.
    jobs = min(len(measures), args.jobs or os.cpu_count() or 1)
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

    plot_path = None
    if not args.no_plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(
                f"{PROG}: note: plot skipped, matplotlib is not installed (pip install 'hippo_rs[experiments]')",
                file=sys.stderr,
            )
        else:
            try:
                plot(args.out, x, dt, recs, fit, args.order, signal["time_unit"])
            except OSError as e:
                raise InputError(f"argument --out: cannot write {args.out} ({e})") from None
            plot_path = args.out
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
        "plot": plot_path,
        "total_s": time.perf_counter() - start,
    }
