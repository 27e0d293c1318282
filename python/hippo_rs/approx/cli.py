"""The command line of ``hippo-rs approx``: arguments, exit status, output."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from .errors import InputError
from .job import DEFAULT_MEASURES, DEFAULT_PLOT, METHODS, PROG, SUPPORTED, run
from .report import report


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
        help=f"measure(s), repeatable or comma-separated, from {', '.join(SUPPORTED)} (default {DEFAULT_MEASURES}); "
        "the windowed measures (legt, lmu, fout) take theta = the record's length",
    )
    p.add_argument(
        "--method", default="bilinear", help=f"discretisation, one of {', '.join(METHODS)} (default bilinear)"
    )
    p.add_argument("--dtype", default="float64", choices=("float32", "float64"), help="state dtype (default float64)")
    p.add_argument(
        "--out",
        default=DEFAULT_PLOT,
        help=f"picture file (.png, .pdf, .svg, .jpg), or a folder to write {DEFAULT_PLOT} in (default {DEFAULT_PLOT})",
    )
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
