"""Pixel-by-pixel image classification: ``pmnist`` (permuted pixels) and ``smnist`` (raster order).

Each image is a sequence of its pixels (one input channel, values in [0, 1]); the class is read from
the last output. Data, in order of precedence:

* ``--data-dir DIR`` with MNIST-format idx files (``train-images-idx3-ubyte[.gz]``,
  ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``):
  MNIST, Fashion-MNIST, ...; 10 % of the training images (stratified, seed 0) are the validation
  split, as the original code's 90/10 split; the t10k files are the test split.
* ``--download`` (with ``--data-dir``): torchvision fetches MNIST into the folder first.
* neither: scikit-learn's bundled 8x8 digits (1797 images, 64 steps): a stratified 20 % test split,
  then 10 % of the rest for validation (``train_test_split``, random_state 0).

Permutation (``pmnist``): ``bitrev``, the bit-reversal permutation the original HiPPO code applies
to the 784 MNIST pixels (the index k = 0 .. 2^m - 1 with its m bits reversed, entries >= the image
size dropped), or ``random``, ``numpy.random.default_rng(0).permutation(pixels)``: one fixed
permutation, the same for every training seed. Default: ``random`` for the 8x8 digits (on 64 = 2^6
pixels bit reversal keeps the image's coarse row/column structure), ``bitrev`` for idx data.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from ..data.idx import find_idx, read_idx
from ..errors import ExperimentError
from .base import Split, TaskData, step_times, stratified_split

DEFAULTS = {"model": "legs", "epochs": 20, "batch_size": 50, "lr": 2e-3, "hidden": 256}
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR", help="folder with MNIST-format idx files (default: 8x8 digits)")
    p.add_argument("--download", action="store_true", help="download MNIST into --data-dir with torchvision")
    p.add_argument(
        "--permutation", choices=("bitrev", "random"),
        help="pixel order of pmnist (default: random for the 8x8 digits, bitrev for idx data)",
    )


def bitreversal_permutation(n: int) -> np.ndarray:
    """0 .. 2^m - 1 (2^m >= n) in bit-reversed order, entries >= n dropped (the original code's)."""
    m = max(int(n - 1).bit_length(), 0)
    k = np.arange(1 << m)
    rev = np.zeros_like(k)
    for b in range(m):
        rev |= ((k >> b) & 1) << (m - 1 - b)
    return rev[rev < n]


def permutation(kind: str, n: int) -> np.ndarray:
    return bitreversal_permutation(n) if kind == "bitrev" else np.random.default_rng(0).permutation(n)


def _download(data_dir: str) -> str:
    try:
        from torchvision.datasets import MNIST
    except ImportError:
        raise ExperimentError("--download needs torchvision (pip install torchvision), or pass idx files") from None
    try:
        MNIST(data_dir, train=True, download=True)
        MNIST(data_dir, train=False, download=True)
    except Exception as e:  # network or disk: report it, the run cannot start
        raise ExperimentError(f"--download: torchvision could not fetch MNIST ({e})") from None
    return os.path.join(data_dir, "MNIST", "raw")


def _images(path: str) -> np.ndarray:
    a = read_idx(path)
    if a.ndim != 3:
        raise ExperimentError(f"{path}: expected images (count, rows, cols), got shape {a.shape}")
    scale = 255.0 if a.dtype == np.uint8 else max(float(np.abs(a).max()), 1e-12)
    return a.reshape(len(a), -1).astype(np.float32) / scale


def _labels(path: str, count: int) -> np.ndarray:
    a = read_idx(path)
    if a.ndim != 1 or len(a) != count:
        raise ExperimentError(f"{path}: expected {count} labels, got shape {a.shape}")
    return a.astype(np.int64)


def _split(x: np.ndarray, y: np.ndarray, perm) -> Split:
    x = x if perm is None else x[:, perm]
    return Split(x[:, :, None].astype(np.float32), y, step_times(len(x), x.shape[1]))


def load(args: argparse.Namespace, task: str) -> TaskData:
    if args.download and not args.data_dir:
        raise ExperimentError("--download: give the folder to download into with --data-dir")
    if task == "smnist" and args.permutation:
        raise ExperimentError("--permutation: smnist keeps the pixels in raster order (use pmnist)")
    if args.data_dir:
        d = _download(args.data_dir) if args.download else args.data_dir
        if not os.path.isdir(d):
            raise ExperimentError(f"--data-dir {d}: no such folder")
        xtr, xte = _images(find_idx(d, FILES[0])), _images(find_idx(d, FILES[2]))
        ytr, yte = _labels(find_idx(d, FILES[1]), len(xtr)), _labels(find_idx(d, FILES[3]), len(xte))
        tr, va = stratified_split(ytr, 0.9, 0)
        split = {"train": (xtr[tr], ytr[tr]), "val": (xtr[va], ytr[va]), "test": (xte, yte)}
        source, default_perm = os.path.abspath(d), "bitrev"
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x, y = digits.data.astype(np.float32) / 16.0, digits.target.astype(np.int64)
        rest, te = stratified_split(y, 0.8, 0)
        tr, va = (rest[i] for i in stratified_split(y[rest], 0.9, 0))
        split = {"train": (x[tr], y[tr]), "val": (x[va], y[va]), "test": (x[te], y[te])}
        source, default_perm = "scikit-learn digits (8x8)", "random"
    perm_kind = None if task == "smnist" else (args.permutation or default_perm)
    pixels = split["train"][0].shape[1]
    perm = None if perm_kind is None else permutation(perm_kind, pixels)
    n_classes = int(max(s[1].max() for s in split.values())) + 1
    return TaskData(
        **{k: _split(x, y, perm) for k, (x, y) in split.items()},
        n_out=n_classes,
        kind="classify",
        info={"data": source, "permutation": perm_kind, "steps": pixels,
              "sizes": {k: len(v[1]) for k, v in split.items()}},
    )
