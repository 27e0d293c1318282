"""``hippo-rs approx``: online function approximation (HiPPO paper, section 4.3, Figure 4, Table 3).

Streams a signal through HiPPO memories of order N (LegS, and LegT/LMU with a window equal to the
record), reconstructs the whole history from each final state, and reports per measure the mean
squared error, the error of the optimal degree-(N-1) least-squares polynomial fit of the same record
(uniform weight: the best any N coefficients of polynomials can do, and what exact LegS would give),
steps per second of the streaming update and wall time. Writes a plot like the paper's Figure 4.

Default signal: ``hippo_rs.signals.white_signal`` (10^6 samples, dt = 1e-4, cutoff 1 Hz, RMS 0.5).
``--input`` reads .npy, .csv, .txt/.dat (one column, or the one chosen by ``--column``) or .wav
(channels averaged unless ``--column`` picks one, PCM scaled to [-1, 1], dt = 1/rate). The measures
run side by side on threads (``--jobs``); bad input is one line on stderr and exit status 2.
The memories start from the constant history f(0) (state f(0) e_0; ``--zero-init`` for zeros).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import warnings
import wave
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from .memory import Memory
from .signals import white_signal

PROG = "hippo-rs approx"
METHODS = ("bilinear", "forward_euler", "backward_euler", "zoh")
#: Samples per ``Memory.update`` call (the progress bar advances per chunk).
CHUNK = 1 << 16
#: Measures whose window theta is set to the record length.
WINDOWED = ("legt", "lmu", "fout")
SUPPORTED = ("legs", "legt", "lmu", "fout", "lagt", "glagt")
#: Above this many multiply-adds (samples * N^2) the optimal fit uses CGLS, not a dense solve.
DENSE_FIT_WORK = 2e8
#: Largest samples * N^2 that --method zoh (dense per-step matrices) is allowed to run.
ZOH_WORK = 1e9
#: CGLS of the optimal fit: relative tolerance on the normal equations, and most iterations.
CGLS_TOL = 1e-6
CGLS_ITERATIONS = 100
#: Points per plotted line (the plot is decimated; the errors are computed on every sample).
PLOT_POINTS = 20_000


class InputError(Exception):
    """Bad user input: reported as one line on stderr and exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise InputError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Online function approximation (HiPPO paper, section 4.3, Figure 4, Table 3): stream a signal "
        "through HiPPO memories of order N, reconstruct the whole history from the final state, and compare the "
        "error with the optimal degree-(N-1) least-squares fit of the record. Default signal: band-limited white "
        "noise, 10^6 samples, dt = 1e-4 s, cutoff 1 Hz, RMS 0.5.",
    )
    p.add_argument(
        "--input", metavar="FILE", help="signal file: .npy, .csv, .txt/.dat (one column, or --column) or .wav"
    )
    p.add_argument("--column", type=int, help="0-based column of a table (or channel of a .wav) to use")
    p.add_argument("--length", type=int, help="samples to generate (default 1000000), or to keep from --input")
    p.add_argument(
        "--dt", type=float, help="sample spacing in seconds (default 1e-4; .wav: 1/rate; other files: 1 sample)"
    )
    p.add_argument("--cutoff", type=float, default=1.0, help="white-noise cutoff frequency in Hz (default 1)")
    p.add_argument("--rms", type=float, default=0.5, help="white-noise RMS (default 0.5)")
    p.add_argument("--seed", type=int, default=0, help="white-noise seed (default 0)")
    p.add_argument("--order", "-N", type=int, default=256, help="memory order N (default 256)")
    p.add_argument(
        "--measure",
        action="append",
        help=f"measure(s), repeatable or comma-separated, from {', '.join(SUPPORTED)} (default legs,legt,lmu)",
    )
    p.add_argument(
        "--method", default="bilinear", help=f"discretisation, one of {', '.join(METHODS)} (default bilinear)"
    )
    p.add_argument("--dtype", default="float64", choices=("float32", "float64"), help="state dtype (default float64)")
    p.add_argument("--out", default="hippo_approx.png", help="plot file (default hippo_approx.png)")
    p.add_argument("--no-plot", action="store_true", help="skip the plot")
    p.add_argument(
        "--zero-init",
        action="store_true",
        help="start the memories from a zero state; by default they start from the constant history f(0), "
        "the same for legs and fairer to the windowed measures on signals with an offset",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument(
        "--jobs", type=int, help="measures run at the same time (default: one per CPU); 1 gives undisturbed timings"
    )
    return p


# -- input --------------------------------------------------------------------------------------
def _pick(x: np.ndarray, column: Optional[int], path: str, what: str) -> np.ndarray:
    """One channel of a (L,) or (L, C) array: the only one, or ``column``."""
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise InputError(f"input: {path}: expected a 1-D signal or (samples, {what}s), got shape {x.shape}")
    if column is None:
        if x.shape[1] != 1:
            raise InputError(f"input: {path}: expected one {what}, got {x.shape[1]} (choose one with --column)")
        column = 0
    if not 0 <= column < x.shape[1]:
        raise InputError(f"argument --column: {path} has {what}s 0..{x.shape[1] - 1}, got {column}")
    return x[:, column]


def _wav_samples(path: str) -> Tuple[np.ndarray, int]:
    """The raw samples (frames x channels, or frames) and the rate: scipy if present, else ``wave``."""
    try:
        from scipy.io import wavfile
    except ImportError:
        wavfile = None
    if wavfile is not None:
        rate, data = wavfile.read(path)
        return np.asarray(data), rate
    with wave.open(path, "rb") as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width not in (1, 2, 4):
        raise InputError(f"input: {path}: unsupported {8 * width}-bit PCM (install scipy for more formats)")
    kind = {1: np.uint8, 2: np.int16, 4: np.int32}[width]
    return np.frombuffer(raw, dtype=kind).reshape(-1, channels), rate


def _read_wav(path: str, column: Optional[int]) -> Tuple[np.ndarray, float]:
    try:
        data, rate = _wav_samples(path)
    except InputError:
        raise
    except Exception as e:  # scipy and wave raise ValueError, wave.Error, EOFError... on bad files
        raise InputError(f"input: {path}: not a readable .wav file ({e or type(e).__name__})") from None
    if data.dtype == np.uint8:
        x = (data.astype(np.float64) - 128.0) / 128.0
    elif data.dtype.kind == "i":
        x = data.astype(np.float64) / float(-np.iinfo(data.dtype).min)
    else:
        x = data.astype(np.float64)
    if x.ndim == 2 and column is None:
        x = x.mean(axis=1)  # mono mix-down
    return _pick(x, column, path, "channel"), 1.0 / float(rate)


def _read_text(path: str, column: Optional[int], delimiter: Optional[str]) -> np.ndarray:
    usecols = None if column is None else [column]
    for skip in (0, 1):  # allow one header line
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "input contained no data": reported by _check_signal
                x = np.loadtxt(path, delimiter=delimiter, ndmin=2, skiprows=skip, dtype=np.float64, usecols=usecols)
            break
        except (ValueError, IndexError) as e:
            err = e
    else:
        if column is not None:
            raise InputError(f"input: {path}: cannot read column {column} as numbers ({err})")
        raise InputError(f"input: {path}: not a numeric table ({err}); pick a numeric column with --column")
    if x.size == 0:
        return x.reshape(-1)
    return _pick(x, None if column is None else 0, path, "column")


def load_signal(path: str, column: Optional[int] = None) -> Tuple[np.ndarray, Optional[float]]:
    """The samples of ``path`` as float64 (1-D), and the file's sample spacing if it has one (.wav).

    .npy: a 1-D array or (samples, columns); .csv (comma-separated) and .txt/.dat (whitespace), one
    header line allowed; .wav: PCM scaled to [-1, 1], channels averaged. ``column`` picks one column
    (0-based) of a table or one channel of a .wav.
    """
    if not os.path.exists(path):
        raise InputError(f"input: no such file: {path}")
    if os.path.isdir(path):
        raise InputError(f"input: {path} is a directory, expected a file")
    ext = os.path.splitext(path)[1].lower()
    dt: Optional[float] = None
    if ext == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except Exception as e:
            raise InputError(f"input: {path}: not a readable .npy array ({e})") from None
        if x.dtype.kind not in "biuf":
            raise InputError(f"input: {path}: expected a real numeric array, got dtype {x.dtype}")
        x = _pick(x.astype(np.float64), column, path, "column") if x.size else x.astype(np.float64).reshape(-1)
    elif ext == ".csv":
        x = _read_text(path, column, ",")
    elif ext in (".txt", ".dat"):
        x = _read_text(path, column, None)
    elif ext == ".wav":
        x, dt = _read_wav(path, column)
    else:
        raise InputError(f"input: {path}: unknown file type '{ext}' (expected .npy, .csv, .txt, .dat or .wav)")
    return x, dt


def _check_signal(x: np.ndarray, name: str) -> None:
    if x.size < 2:
        raise InputError(f"input: {name} holds {x.size} sample(s), expected at least 2")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise InputError(f"input: {name} has {bad.size} non-finite value(s) (NaN or inf), the first at sample {bad[0]}")


# -- the job ------------------------------------------------------------------------------------
def optimal_fit(x: np.ndarray, N: int) -> Tuple[np.ndarray, Dict[str, Any]]:
    """The least-squares fit of ``x`` (uniform samples) by polynomials of degree < N, at the samples,
    and how it was computed.

    In the orthonormal basis sqrt(2n+1) P_n(2u - 1) of [0, 1] at u_k = k/(L-1): small problems
    (L N^2 <= DENSE_FIT_WORK) by a dense least-squares solve; larger ones by CGLS (conjugate gradients
    on the normal equations) with ``_core.reconstruct`` / ``_core.reconstruct_adjoint`` as the operator
    and its transpose (O(L N) per iteration), started from the trapezoid-rule projection, until the
    normal-equation residual is below CGLS_TOL (relative) or CGLS_ITERATIONS. CGLS decreases the
    residual monotonically, so an unconverged MSE is an upper bound of the optimum.
    """
    L = x.size
    u = np.linspace(0.0, 1.0, L)
    if N >= L:
        return x.copy(), {"method": "interpolation", "iterations": 0, "converged": True}
    if L * float(N) ** 2 <= DENSE_FIT_WORK:
        V = np.polynomial.legendre.legvander(2.0 * u - 1.0, N - 1) * np.sqrt(2.0 * np.arange(N) + 1.0)
        coef, *_ = np.linalg.lstsq(V, x, rcond=None)
        return V @ coef, {"method": "dense", "iterations": 0, "converged": True}
    scale = 1.0 / np.sqrt(L)  # A = V / sqrt(L) has singular values ~1 when L >> N^2

    def A(c: np.ndarray) -> np.ndarray:
        return _core.reconstruct("legs", [], c[None], u, 1.0)[0] * scale

    def At(r: np.ndarray) -> np.ndarray:
        return _core.reconstruct_adjoint("legs", [], (r * scale)[None], u, 1.0, N)[0]

    w = np.full(L, 1.0 / (L - 1))
    w[0] = w[-1] = 0.5 / (L - 1)
    coef = _core.reconstruct_adjoint("legs", [], (x * w)[None], u, 1.0, N)[0]
    b = x * scale
    r = b - A(coef)
    g = At(r)
    p = g.copy()
    gamma = float(g @ g)
    target = CGLS_TOL * float(np.linalg.norm(At(b)))
    converged = np.sqrt(gamma) <= target
    iterations = 0
    while not converged and iterations < CGLS_ITERATIONS:
        iterations += 1
        q = A(p)
        step = gamma / float(q @ q)
        coef = coef + step * p
        r = r - step * q
        g = At(r)
        gamma, previous = float(g @ g), gamma
        converged = np.sqrt(gamma) <= target
        p = g + (gamma / previous) * p
    fit = _core.reconstruct("legs", [], coef[None], u, 1.0)[0]
    return fit, {"method": "cgls", "iterations": iterations, "converged": bool(converged)}


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


class Cancelled(Exception):
    """A measure's run was stopped because another one failed or the user interrupted."""


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


def plot(
    path: str, x: np.ndarray, dt: float, recs: Dict[str, np.ndarray], fit: np.ndarray, N: int, unit: str = "s"
) -> None:
    """Figure 4 style: the signal with its reconstructions (whole record, and a zoom on its oldest
    tenth, the hardest part to remember), and the errors over the whole record."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    L = x.size
    zoom = max(2, L // 10)
    fig, (top, mid, bottom) = plt.subplots(3, 1, figsize=(12, 9), gridspec_kw={"height_ratios": [2, 1.5, 1]})
    style = {
        "legs": dict(color="tab:red", zorder=4),
        "legt": dict(color="tab:blue", zorder=3),
        "lmu": dict(color="tab:green", ls=(0, (4, 3)), zorder=3),  # LMU = LegT in another basis: same curve
        "fout": dict(color="tab:purple", zorder=2),
        "lagt": dict(color="tab:orange", zorder=2),
        "glagt": dict(color="tab:brown", zorder=2),
    }

    def lines(ax: Any, stop: int, legend: bool) -> None:
        step = max(1, stop // PLOT_POINTS)
        tt = np.arange(0, stop, step) * dt
        ax.plot(tt, x[:stop:step], color="black", lw=2.0, label="signal", zorder=1)
        for name, rec in recs.items():
            label = f"{name} (MSE {np.mean((rec - x) ** 2):.3g})" if legend else None
            ax.plot(tt, rec[:stop:step], lw=1.0, label=label, **style.get(name, {}))
        label = f"optimal degree-{N - 1} fit (MSE {np.mean((fit - x) ** 2):.3g})" if legend else None
        ax.plot(tt, fit[:stop:step], lw=0.8, ls=":", color="gray", label=label, zorder=5)
        ax.set_xlim(0, (stop - 1) * dt)

    lines(top, L, True)
    top.set_ylabel("whole record")
    top.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8, ncol=len(recs) + 2, frameon=False)
    lines(mid, zoom, False)
    mid.set_ylabel("oldest tenth (zoom)")
    step = max(1, L // PLOT_POINTS)
    tt = np.arange(0, L, step) * dt
    for name, rec in recs.items():
        bottom.plot(tt, (rec - x)[::step], lw=0.8, **style.get(name, {}))
    bottom.axhline(0.0, color="black", lw=0.5)
    bottom.set_xlim(0, (L - 1) * dt)
    bottom.set_ylabel("reconstruction - signal")
    bottom.set_xlabel(f"time ({unit})")
    fig.suptitle(f"Reconstruction of the whole history from the final state: N = {N}, {L:,} samples")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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


def report(res: Dict[str, Any]) -> str:
    """The human-readable table."""
    s = res["signal"]
    src = s["input"] if "input" in s else f"white noise, cutoff {s['cutoff']:g} Hz, RMS {s['rms']:g}, seed {s['seed']}"
    lines = [
        f"signal: {src}; {s['length']:,} samples, "
        + ("time in samples" if s["time_unit"] == "samples" else f"dt = {s['dt']:g} s")
        + f", variance {s['variance']:.4g}",
        f"N = {res['order']}, method {res['method']}, state dtype {res['dtype']}; optimal degree-{res['order'] - 1} "
        f"least-squares fit of the record: MSE {res['optimal_mse']:.5g}"
        + ("" if res["optimal_fit"]["converged"] else " (an upper bound: CGLS did not converge)"),
        f"{'measure':<8} {'MSE':>10} {'/optimal':>9} {'steps/s':>12} {'scan s':>8} {'wall s':>8}",
    ]
    for r in res["results"]:
        ratio = "n/a" if r["ratio_to_optimal"] is None else f"{r['ratio_to_optimal']:.3f}"
        lines.append(
            f"{r['measure']:<8} {r['mse']:>10.5g} {ratio:>9} {r['steps_per_s']:>12,.0f} "
            f"{r['scan_s']:>8.2f} {r['wall_s']:>8.2f}"
        )
    tail = f"total {res['total_s']:.2f} s"
    if res["jobs"] > 1:
        tail += f" ({res['jobs']} measures ran side by side; --jobs 1 times each alone)"
    if res["plot"]:
        tail += f"; plot written to {res['plot']}"
    lines.append(tail)
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``hippo-rs approx``; returns the exit status (0 ok, 2 bad input)."""
    try:
        args = _parser().parse_args(argv)
        res = run(args)
    except InputError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(res, indent=2) if args.json else report(res))
    return 0
