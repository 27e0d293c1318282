"""Argument checks shared by the public functions: clear TypeError/ValueError naming the argument."""

from __future__ import annotations

import math
import numbers
import operator
import sys
from typing import Any

import numpy as np


def integer(value: Any, name: str, what: str) -> int:
    """A Python or numpy integer (bool is refused: TypeError ``{name}: expected {what}, ...``)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected {what}, got a bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected {what}, got {type(value).__name__}") from None


def order(value: Any, name: str = "N") -> int:
    """A memory order: a Python or numpy integer >= 1."""
    n = integer(value, name, "an integer >= 1")
    if n < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {n}")
    if n > sys.maxsize:
        raise MemoryError(f"{name}: an order of {n} cannot be addressed (at most {sys.maxsize} elements)")
    return n


def real(value: Any, name: str) -> float:
    """A real scalar (Python or numpy number, not bool, not complex)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    return float(value)


def params(values: dict[str, Any]) -> list[tuple[str, float]]:
    """Measure parameters as (name, float) pairs; the core checks names and ranges."""
    return [(k, real(v, k)) for k, v in values.items()]


def float64_array(value: Any, name: str) -> np.ndarray:
    """A real array converted to float64 (complex, object and string arrays are refused)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def zeros(shape: tuple, dtype: Any, what: str) -> np.ndarray:
    """``np.zeros``; a size no memory can hold is a ``MemoryError`` naming ``what`` and the size
    (numpy says ``ValueError: array is too big`` past the address space, ``MemoryError`` below it)."""
    try:
        return np.zeros(shape, dtype)
    except (ValueError, MemoryError):
        size = np.dtype(dtype).itemsize * math.prod(shape)
        raise MemoryError(f"{what}: cannot allocate {shape} {np.dtype(dtype).name} ({size / 2**30:.3g} GiB)") from None
