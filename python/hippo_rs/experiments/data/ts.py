"""UEA/UCR ``.ts`` archives through aeon's reader (``aeon.datasets.load_from_ts_file``)."""

from __future__ import annotations

import os
from typing import List, Tuple

import numpy as np

from ..errors import ExperimentError


def read_ts(path: str) -> Tuple[List[np.ndarray], np.ndarray]:
    """The series of a ``.ts`` file as a list of (length_i, channels) float arrays and their labels.

    Trailing missing values (NaN in every channel: how some archives store shorter series) are cut
    off; any other missing value, a file aeon cannot parse, or series whose channel counts differ
    raise ExperimentError naming the file.
    """
    try:
        from aeon.datasets import load_from_ts_file
    except ImportError:
        raise ExperimentError("reading .ts files needs aeon: pip install 'hippo_rs[experiments]'") from None
    if not os.path.isfile(path):
        raise ExperimentError(f"{path}: no such file")
    try:
        X, y = load_from_ts_file(path)
    except (OSError, ValueError, IndexError, TypeError, KeyError, UnicodeDecodeError) as e:
        raise ExperimentError(f"{path}: not a readable .ts file ({str(e).strip() or type(e).__name__})") from None
    series = [np.asarray(x, dtype=np.float64) for x in X]
    if not series:
        raise ExperimentError(f"{path}: no series")
    channels = {s.shape[0] for s in series}
    if len(channels) != 1:
        raise ExperimentError(f"{path}: series with different numbers of channels {sorted(channels)}")
    out = []
    for i, s in enumerate(series):
        s = s.T  # (length, channels)
        missing = np.isnan(s).all(axis=1)
        keep = len(s) - int(np.argmin(missing[::-1])) if not missing.all() else 0
        s = s[:keep]
        if len(s) == 0 or np.isnan(s).any():
            raise ExperimentError(f"{path}: series {i} has missing values (only trailing ones are supported)")
        out.append(s)
    return out, np.asarray(y)


def bundled_ts_dir(name: str) -> str:
    """Folder of a data set shipped inside aeon's wheel (``aeon/datasets/data/NAME``)."""
    try:
        import aeon.datasets
    except ImportError:
        raise ExperimentError("the bundled data sets come with aeon: pip install 'hippo_rs[experiments]'") from None
    return os.path.join(os.path.dirname(aeon.datasets.__file__), "data", name)
