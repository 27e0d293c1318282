"""Reading a signal for ``hippo-rs approx``: .npy, .csv, .txt/.dat and .wav files."""

from __future__ import annotations

import os
import re
import warnings
import wave
from typing import Optional, Tuple

import numpy as np

from .errors import InputError

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


def _where(err: Exception, skipped: int) -> str:
    """numpy's "... at row R, column C." with the file's line (from 1, as editors count) and the column
    from 0, as ``--column`` counts."""
    m = re.search(r"^(.*) at row (\d+), column (\d+)\.?$", str(err))
    if m is None:
        return str(err)
    line, column = int(m.group(2)) + skipped + 1, int(m.group(3)) - 1
    return f"{m.group(1)} on line {line}, column {column} (columns count from 0, as --column)"


def _read_text(path: str, column: Optional[int], delimiter: Optional[str]) -> np.ndarray:
    usecols = None if column is None else [column]
    for skip in (0, 1):  # allow one header line
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "input contained no data": reported by _check_signal
                x = np.loadtxt(path, delimiter=delimiter, ndmin=2, skiprows=skip, dtype=np.float64, usecols=usecols)
            break
        except (ValueError, IndexError) as e:
            err = _where(e, skip)
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
