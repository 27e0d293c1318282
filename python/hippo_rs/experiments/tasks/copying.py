"""The copying memory task (Arjovsky et al. 2016): ten symbols drawn from 1..8, ``--length`` blanks
(0) whose last is replaced by the delimiter 9, then ten more blanks; during the last ten steps the
model must output the ten symbols in order. Inputs are one-hot (10 channels); metric: per-symbol
accuracy over the last ten outputs (chance 1/8)."""

from __future__ import annotations

import argparse

import numpy as np

from ..errors import ExperimentError
from .base import Split, TaskData, step_times

DEFAULTS = {"model": "legs", "epochs": 10, "batch_size": 100, "lr": 1e-3, "hidden": 128}
HELP = "the copying memory task: repeat ten symbols after a long blank stretch (generated)"
SYMBOLS, ALPHABET, COPY = 8, 10, 10


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--length", type=int, default=50, help="blank steps between symbols and recall (default 50)")
    p.add_argument("--samples", type=int, default=5000, help="training sequences (default 5000; 1000 val, 1000 test)")


def generate(n: int, blanks: int, rng: np.random.Generator) -> Split:
    symbols = rng.integers(1, SYMBOLS + 1, (n, COPY))
    seq = np.zeros((n, COPY + blanks + COPY), dtype=np.int64)
    seq[:, :COPY] = symbols
    seq[:, COPY + blanks - 1] = ALPHABET - 1  # the delimiter
    x = np.eye(ALPHABET, dtype=np.float32)[seq]
    # targets: classes 0..7 for symbols 1..8
    return Split(x, symbols - 1, step_times(n, seq.shape[1]))


def load(args: argparse.Namespace, task: str) -> TaskData:
    if args.length < 1:
        raise ExperimentError(f"--length: expected at least 1, got {args.length}")
    if args.samples < 1:
        raise ExperimentError(f"--samples: expected at least 1, got {args.samples}")
    rng = np.random.default_rng([args.seed, 2])  # the data: a function of --seed alone
    test_n = max(1, min(1000, args.samples // 5))
    return TaskData(
        train=generate(args.samples, args.length, rng), val=generate(test_n, args.length, rng),
        test=generate(test_n, args.length, rng), n_out=SYMBOLS, kind="copy", outputs_last=COPY,
        info={"data": "generated", "length": args.length, "sizes": [args.samples, test_n, test_n]},
    )
