"""Multivariate sequence classification under sampling-rate shift and missing samples (HiPPO paper
section 4.2; the original code's protocol for CharacterTrajectories), on UEA/UCR ``.ts`` archives.

Step by step:

1. read the TRAIN and TEST files (aeon's reader), concatenate them (TRAIN first); labels become
   0, 1, ... in order of first appearance;
2. pad every series with its last value to the longest length L;
3. split: ``paper`` -- stratified 70/15/15 of the concatenation,
   ``train_test_split(train_size=0.7, random_state=0, stratify=y)`` then the remaining 30 % halved
   with ``random_state=1`` into validation and test (the original code); ``archive`` -- the files'
   own split: TEST is the test split, and a stratified 15 % of TRAIN (random_state 0) validates;
4. normalise each channel with the training split's mean and unbiased std: (x - mean)/(std + 1e-5);
5. resample each split at its rate hz (``--train-hz`` for training, ``--eval-hz`` for validation
   and test): the kept indices are ``floor(arange(int(L hz)) / hz)`` (hz = 0.5 keeps every other
   step); then ``--drop P`` keeps a random sorted subset of ``int(L' (1 - P))`` of the L' samples of
   each series, drawn with ``torch.randperm`` from one generator seeded 56789 per split (with hz = 1,
   ``--drop 1-h`` is the original code's non-uniform sampling at rate h);
6. sample times: the kept indices times ``--train-ts`` (training) or ``--eval-ts`` (validation,
   test); the timestamped LegS cell (``--model tlegs``, or ``--timestamps``) reads them, every other
   model sees only the values.

Data: ``--train FILE --test FILE``, or ``--data-dir DIR --dataset NAME`` (``DIR/NAME/NAME_TRAIN.ts``
or ``DIR/NAME_TRAIN.ts``), or by default JapaneseVowels as bundled in aeon's wheel (12 channels,
lengths 7-29, 9 classes). Default split: ``archive`` for the bundled set, ``paper`` for given files.
"""

from __future__ import annotations

import argparse
import os
from typing import List

import numpy as np
import torch

from ..data.ts import bundled_ts_dir, read_ts
from ..errors import ExperimentError
from .base import Split, TaskData, stratified_split

DEFAULTS = {"model": "legs", "epochs": 40, "batch_size": 25, "lr": 2e-3, "hidden": 64}
HELP = "multivariate .ts sequence classification with rate shift / missing samples (default: JapaneseVowels)"
BUNDLED = "JapaneseVowels"
#: Seed of the per-split generator of the random subsets (the original code's).
DROP_SEED = 56789


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", metavar="FILE", help="training .ts file (with --test)")
    p.add_argument("--test", metavar="FILE", help="test .ts file (with --train)")
    p.add_argument("--data-dir", metavar="DIR", help="folder of UEA/UCR archives (with --dataset)")
    p.add_argument("--dataset", metavar="NAME", help="archive name, e.g. CharacterTrajectories")
    p.add_argument("--split", choices=("paper", "archive"),
                   help="paper: 70/15/15 of TRAIN+TEST (the original code); archive: the files' own "
                        "TRAIN/TEST (default: archive for the bundled set, paper for given files)")
    p.add_argument("--train-hz", type=float, default=1.0, help="sampling rate of the training split (default 1)")
    p.add_argument("--eval-hz", type=float, default=1.0, help="sampling rate of validation/test (default 1)")
    p.add_argument("--drop", type=float, default=0.0, metavar="P",
                   help="fraction of samples removed at random from each series (default 0)")
    p.add_argument("--timestamps", action="store_true", help="feed the sample times: the model is tlegs")
    p.add_argument("--train-ts", type=float, default=1.0, help="time between full-rate samples, training")
    p.add_argument("--eval-ts", type=float, default=1.0, help="time between full-rate samples, validation/test")


def uniform_indices(length: int, hz: float) -> np.ndarray:
    """Kept indices at rate ``hz``: ``floor(arange(int(length hz)) / hz)``."""
    return np.floor(np.arange(int(length * hz)) / hz).astype(np.int64)


def drop_indices(length: int, count: int, drop: float, seed: int = DROP_SEED) -> np.ndarray:
    """(count, int(length (1 - drop))) sorted random subsets of range(length), one per series,
    from one ``torch.Generator`` seeded ``seed``."""
    g = torch.Generator().manual_seed(seed)
    keep = int(length * (1 - drop))
    return np.stack([np.sort(torch.randperm(length, generator=g)[:keep].numpy()) for _ in range(count)])


def resample(x: np.ndarray, hz: float, drop: float, ts: float):
    """Steps 5-6: (n, L, C) -> (values (n, L', C), times (n, L'))."""
    n, L = x.shape[:2]
    idx = np.broadcast_to(uniform_indices(L, hz), (n, int(L * hz)))
    if drop > 0:
        idx = np.take_along_axis(idx, drop_indices(idx.shape[1], n, drop), axis=1)
    return np.take_along_axis(x, idx[:, :, None], axis=1), idx.astype(np.float64) * ts


def pad_last(series: List[np.ndarray]) -> np.ndarray:
    """Step 2: (n, L, C), every series continued with its last value to the longest length."""
    L = max(len(s) for s in series)
    return np.stack([np.concatenate([s, np.repeat(s[-1:], L - len(s), axis=0)]) for s in series])


def _files(args: argparse.Namespace):
    if (args.train is None) != (args.test is None):
        raise ExperimentError("--train and --test: give both files (or --data-dir with --dataset)")
    if (args.data_dir is None) != (args.dataset is None):
        raise ExperimentError("--data-dir and --dataset: give both (or --train and --test)")
    if args.train and args.data_dir:
        raise ExperimentError("give either --train/--test or --data-dir/--dataset, not both")
    if args.train:
        return args.train, args.test, os.path.basename(args.train), False
    name = args.dataset or BUNDLED
    folder = args.data_dir or bundled_ts_dir(BUNDLED)
    for d in (os.path.join(folder, name), folder):
        train, test = (os.path.join(d, f"{name}_{s}.ts") for s in ("TRAIN", "TEST"))
        if os.path.isfile(train) or os.path.isfile(test):
            return train, test, name, args.dataset is None
    raise ExperimentError(f"--data-dir {folder}: no {name}_TRAIN.ts (looked in {folder}/{name} and {folder})")


def _check(args: argparse.Namespace) -> None:
    for flag in ("train_hz", "eval_hz", "train_ts", "eval_ts"):
        v = getattr(args, flag)
        if not (np.isfinite(v) and v > 0):
            raise ExperimentError(f"--{flag.replace('_', '-')}: expected a positive number, got {v}")
    if not 0 <= args.drop < 1:
        raise ExperimentError(f"--drop: expected a fraction in [0, 1), got {args.drop}")


def load(args: argparse.Namespace, task: str) -> TaskData:
    _check(args)
    train_file, test_file, name, bundled = _files(args)
    xa, ya = read_ts(train_file)
    xb, yb = read_ts(test_file)
    if xa[0].shape[1] != xb[0].shape[1]:
        raise ExperimentError(
            f"{test_file}: {xb[0].shape[1]} channels, but {train_file} has {xa[0].shape[1]}"
        )
    labels, y = np.unique(np.concatenate([ya, yb]), return_inverse=True)
    first = np.argsort([np.flatnonzero(y == k)[0] for k in range(len(labels))])  # order of appearance
    y = np.argsort(first)[y]
    x = pad_last(xa + xb)
    split = args.split or ("archive" if bundled else "paper")
    if split == "paper":
        tr, rest = stratified_split(y, 0.7, 0)
        va, te = (rest[i] for i in stratified_split(y[rest], 0.5, 1))
    else:
        tr, va = stratified_split(y[: len(xa)], 0.85, 0)
        te = np.arange(len(xa), len(x))
    mean = x[tr].mean(axis=(0, 1))
    std = x[tr].reshape(-1, x.shape[2]).std(axis=0, ddof=1)
    x = (x - mean) / (std + 1e-5)
    splits = {}
    for key, rows, hz, ts in (("train", tr, args.train_hz, args.train_ts), ("val", va, args.eval_hz, args.eval_ts),
                              ("test", te, args.eval_hz, args.eval_ts)):
        values, times = resample(x[rows], hz, args.drop, ts)
        if values.shape[1] == 0:
            raise ExperimentError(f"--{'train' if key == 'train' else 'eval'}-hz/--drop keep no sample of "
                                  f"the {x.shape[1]}-step series")
        splits[key] = Split(values.astype(np.float32), y[rows].astype(np.int64), times)
    return TaskData(
        **splits, n_out=len(labels), kind="classify",
        info={"data": name, "files": [os.path.abspath(train_file), os.path.abspath(test_file)],
              "split": split, "length": int(x.shape[1]), "channels": int(x.shape[2]),
              "classes": [str(v) for v in labels[first]], "sizes": {k: len(v) for k, v in splits.items()}},
    )
