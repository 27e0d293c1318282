"""The idx format of MNIST and its look-alikes (Fashion-MNIST, KMNIST, ...), plain or gzip-compressed.

Layout (big-endian): two zero bytes, a type code (0x08 = uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), the number of dimensions D, then D uint32 sizes, then the data.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

from ..errors import ExperimentError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str) -> np.ndarray:
    """The array stored in an idx file (``.gz`` is decompressed); ExperimentError when it is not one."""
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as e:
        raise ExperimentError(f"{path}: cannot read ({e.strerror or e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise ExperimentError(f"{path}: not an idx file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ExperimentError(f"{path}: truncated idx header")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", ndim, 4))
    dtype = np.dtype(_TYPES[raw[2]])
    count = int(np.prod(shape)) if shape else 1
    if len(raw) != header + count * dtype.itemsize:
        raise ExperimentError(
            f"{path}: idx header says shape {shape} ({count * dtype.itemsize} data bytes), "
            f"file has {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype, count, header).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx(data_dir: str, stem: str) -> str:
    """``data_dir/stem`` or ``data_dir/stem.gz``, whichever exists; ExperimentError naming both if neither."""
    for name in (stem, stem + ".gz"):
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    raise ExperimentError(f"--data-dir {data_dir}: missing {stem} (or {stem}.gz)")
