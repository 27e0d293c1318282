"""PyTorch front end of hippo_rs: custom ops with autograd, HiPPO-RNN cells and a sequence memory layer.

Importing this subpackage imports torch and registers the ops ``torch.ops.hippo_rs.gbt_scan``,
``gbt_scan_backward``, ``gbt_step`` and ``gbt_step_backward`` (schemas in ``docs/torch.md``) with their
CPU kernels (the Rust core) and CUDA kernels (``csrc/``, compiled on first CUDA use); the top-level
``hippo_rs`` package never imports torch.
"""

from __future__ import annotations

from . import _ops
from . import _cuda  # registers the CUDA kernels of the ops (built on first CUDA use)
from ._functional import coefficients, scan, step
from ._ops import PARAM_NAMES
from .cells import CELLS, GRUCell, HiPPOCell, HiPPOState, LSTMCell, RNNCell, make_cell
from .rnn import HiPPOMemory, HiPPORNN

__all__ = [
    "CELLS",
    "GRUCell",
    "HiPPOCell",
    "HiPPOMemory",
    "HiPPORNN",
    "HiPPOState",
    "LSTMCell",
    "PARAM_NAMES",
    "RNNCell",
    "coefficients",
    "make_cell",
    "scan",
    "step",
]
