"""The adding problem (Hochreiter & Schmidhuber 1997): two channels, random values in [0, 1) and a
marker that is 1 at two steps (one in each half of the sequence); the target is the sum of the two
marked values, read from the last output. Metric: mean squared error (predicting the mean, 1, gives
1/6)."""

from __future__ import annotations

import argparse

import numpy as np

from ..errors import ExperimentError
from .base import Split, TaskData, step_times

DEFAULTS = {"model": "legs", "epochs": 10, "batch_size": 100, "lr": 1e-3, "hidden": 128}
HELP = "the adding problem: sum of the two marked values of a long sequence (generated)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--length", type=int, default=100, help="sequence length (default 100)")
    p.add_argument("--samples", type=int, default=5000, help="training sequences (default 5000; 1000 val, 1000 test)")


def generate(n: int, length: int, rng: np.random.Generator) -> Split:
    values = rng.random((n, length))
    half = length // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, length, n)
    marker = np.zeros((n, length))
    marker[np.arange(n), first] = marker[np.arange(n), second] = 1.0
    y = values[np.arange(n), first] + values[np.arange(n), second]
    return Split(np.stack([values, marker], axis=2).astype(np.float32), y.astype(np.float32), step_times(n, length))


def load(args: argparse.Namespace, task: str) -> TaskData:
    if args.length < 2:
        raise ExperimentError(f"--length: expected at least 2, got {args.length}")
    if args.samples < 1:
        raise ExperimentError(f"--samples: expected at least 1, got {args.samples}")
    rng = np.random.default_rng([args.seed, 1])  # the data: a function of --seed alone
    test_n = max(1, min(1000, args.samples // 5))
    return TaskData(
        train=generate(args.samples, args.length, rng), val=generate(test_n, args.length, rng),
        test=generate(test_n, args.length, rng), n_out=1, kind="regress",
        info={"data": "generated", "length": args.length, "sizes": [args.samples, test_n, test_n]},
    )
