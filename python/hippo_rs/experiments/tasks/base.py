"""What a task hands the runner: three splits of sequences and what the model must predict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import numpy as np
from sklearn.model_selection import train_test_split

from ..errors import ExperimentError


@dataclass
class Split:
    """One split: inputs ``x`` (n, L, C) float32, targets ``y`` ((n,) class or value, (n, K) per step),
    sample times ``times`` (n, L) float64 (read by the timestamped cell ``tlegs`` only)."""

    x: np.ndarray
    y: np.ndarray
    times: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class TaskData:
    """``kind``: ``classify`` (cross-entropy on the last output, accuracy), ``regress`` (squared error
    on the last output, MSE) or ``copy`` (cross-entropy on each of the last ``outputs_last`` outputs,
    per-symbol accuracy). ``n_out``: classes (or 1)."""

    train: Split
    val: Split
    test: Split
    n_out: int
    kind: str
    outputs_last: Optional[int] = None
    info: Dict[str, Any] = field(default_factory=dict)

    @property
    def input_size(self) -> int:
        return self.train.x.shape[2]


def step_times(n: int, length: int) -> np.ndarray:
    """Sample times 0, 1, ..., length - 1 for every series (uniformly sampled data)."""
    return np.broadcast_to(np.arange(length, dtype=np.float64), (n, length)).copy()


def stratified_split(y: np.ndarray, first: float, seed: int):
    """Indices (a, b) of a stratified split with ``first`` of the rows in ``a`` (scikit-learn's
    ``train_test_split(train_size=first, random_state=seed, shuffle=True, stratify=y)``)."""
    idx = np.arange(len(y))
    try:
        a, b = train_test_split(idx, train_size=first, random_state=seed, shuffle=True, stratify=y)
    except ValueError as e:  # a class too small to appear on both sides
        raise ExperimentError(f"cannot split the {len(y)} sequences by class: {e}") from None
    return np.asarray(a), np.asarray(b)
