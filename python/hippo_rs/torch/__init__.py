"""PyTorch front end of hippo_rs: custom ops with autograd, HiPPO-RNN cells and a sequence memory layer.

Importing this subpackage imports torch and registers the ops ``torch.ops.hippo_rs.gbt_scan``,
``gbt_scan_backward``, ``gbt_step`` and ``gbt_step_backward`` (schemas in ``docs/torch.md``) with their
CPU kernels (the Rust core) and CUDA kernels (top-level ``cuda/``, compiled on first CUDA use); the top-level
``hippo_rs`` package never imports torch.
"""

from __future__ import annotations

from . import _cuda  # noqa: F401  (registers the CUDA kernels of the ops, built on first CUDA use)
from . import _ops  # noqa: F401  (registers torch.ops.hippo_rs.* and their CPU kernels)
from ._cuda import load as load_cuda
from ._functional import gbt_coefficients, legs_update, scan, update
from ._ops import PARAM_NAMES
from .cells import CELL_DEFAULTS, CELLS, GRUCell, HiPPOCell, HiPPOState, LSTMCell, RNNCell, make_cell
from .rnn import HiPPOMemory, HiPPORNN

__all__ = [
    "CELL_DEFAULTS",
    "CELLS",
    "PARAM_NAMES",
    "GRUCell",
    "HiPPOCell",
    "HiPPOMemory",
    "HiPPORNN",
    "HiPPOState",
    "LSTMCell",
    "RNNCell",
    "gbt_coefficients",
    "legs_update",
    "load_cuda",
    "make_cell",
    "scan",
    "update",
]
