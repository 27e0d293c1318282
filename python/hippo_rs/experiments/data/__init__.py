"""Readers of the data formats the tasks accept: MNIST-format idx files and UEA/UCR ``.ts`` archives."""

from .idx import read_idx
from .ts import bundled_ts_dir, read_ts

__all__ = ["bundled_ts_dir", "read_idx", "read_ts"]
