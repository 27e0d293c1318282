"""Sequence modules: :class:`HiPPORNN` (a cell over a sequence) and :class:`HiPPOMemory` (the linear
HiPPO memory of a whole sequence through the ``hippo_rs::gbt_scan`` op)."""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor, nn

from .._validate import order
from ._functional import checked_params, scan
from .cells import HiPPOCell, cell_measure, check_cell_step, make_cell
from ._rnn import fused_applies, hippo_rnn

__all__ = ["HiPPOMemory", "HiPPORNN"]


def _select(mask: Tensor, new, old):
    """Per batch row: ``new`` where mask else ``old`` (states are tuples of batch-first tensors)."""
    out = [torch.where(mask.view(-1, *([1] * (n.dim() - 1))), n, o) for n, o in zip(new, old)]
    return type(new)(*out) if hasattr(new, "_fields") else type(new)(out)


def _continue_padding(timestamps: Tensor, lengths: Tensor) -> Tensor:
    """Timestamps (L, B) with the padding after ``lengths[b]`` replaced by last + 1, last + 2, ...: the
    padded steps are discarded, but they must stay valid (increasing, finite) for the cells' checks."""
    L = timestamps.shape[0]
    if L == 0:
        return timestamps
    k = torch.arange(L, device=timestamps.device)[:, None]
    lengths = lengths.to(timestamps.device)[None, :]
    last = timestamps.gather(0, (lengths - 1).clamp(0, L - 1))  # rows longer than L have no padding
    return torch.where(k >= lengths, last + (k - lengths + 1).to(timestamps.dtype), timestamps)


class HiPPORNN(nn.Module):
    """Runs a cell over a sequence, like ``torch.nn.RNN`` with one layer.

    ``HiPPORNN(cell)`` with a cell module, or ``HiPPORNN(name, input_size, hidden_size, **kwargs)`` /
    ``HiPPORNN(input_size=..., hidden_size=..., measure=...)`` to build one (:func:`make_cell`; the
    default is the LegS :class:`HiPPOCell`). ``forward(input, state=None, lengths=None, timestamps=None)``:
    input (L, B, I) (or (B, L, I) with ``batch_first``) -> (outputs (L, B, H), final state). With
    ``lengths`` (B,) the state of row b stops after ``lengths[b]`` steps (the final state is the one
    at its length) and its outputs beyond it are zero. ``timestamps`` (L, B) (or (L, B, 1); (B, L)
    with ``batch_first``) feed timestamped cells
    (cells that are not timestamped ignore them, so that cells can be swapped by name).

    A :class:`HiPPOCell` on the CPU runs as one op over the whole sequence (``torch.ops.hippo_rs.rnn``:
    forward and backpropagation through time natively, the same values as step by step), and so does
    one on CUDA with a measure that has CUDA kernels (legs, legt, lmu, lagt) when the CUDA extension
    builds; any other cell runs step by step.
    """

    def __init__(self, cell: Union[nn.Module, str, None] = None, *args, batch_first: bool = False, **kwargs) -> None:
        super().__init__()
        if isinstance(cell, nn.Module):
            if args or kwargs:
                raise ValueError("cell: pass either a cell module or the arguments to build one, not both")
            self.cell = cell
        elif isinstance(cell, str):
            self.cell = make_cell(cell, *args, **kwargs)
        elif cell is None:
            self.cell = HiPPOCell(*args, **kwargs)
        else:
            raise TypeError(f"cell: expected an nn.Module, a cell name or None, got {type(cell).__name__}")
        self.batch_first = batch_first

    def forward(
        self,
        input: Tensor,
        state=None,
        lengths: Optional[Tensor] = None,
        timestamps: Optional[Tensor] = None,
    ):
        if not isinstance(input, Tensor):
            raise TypeError(f"input: expected a torch.Tensor, got {type(input).__name__}")
        layout = "(B, L, input_size)" if self.batch_first else "(L, B, input_size)"
        features = getattr(self.cell, "input_size", None)
        if input.dim() != 3 or (features is not None and input.shape[2] != features):
            raise ValueError(
                f"input: expected shape {layout} with input_size = {features}, got {tuple(input.shape)}"
            )
        x = input.transpose(0, 1) if self.batch_first else input
        L, B = x.shape[0], x.shape[1]
        if state is None:
            state = self.cell.initial_state(B, x.dtype, x.device)
        if timestamps is not None:
            timestamps = torch.as_tensor(timestamps, device=x.device)
            timestamps = timestamps.transpose(0, 1) if self.batch_first else timestamps
            if timestamps.dim() == 3 and timestamps.shape[2] == 1:  # (L, B, 1), like the inputs
                timestamps = timestamps[..., 0]
            if timestamps.shape != (L, B):
                raise ValueError(f"timestamps: expected shape ({L}, {B}), got {tuple(timestamps.shape)}")
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device)
            if lengths.shape != (B,):
                raise ValueError(f"lengths: expected shape ({B},), got {tuple(lengths.shape)}")
            if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
                raise TypeError(f"lengths: expected integers, got {lengths.dtype}")
            checkable = B and not torch.compiler.is_compiling()  # (values are data under torch.compile)
            if checkable and (int(lengths.min()) < 0 or int(lengths.max()) > L):
                raise ValueError(
                    f"lengths: expected 0 <= lengths <= {L} (the sequence length), got {lengths.tolist()}"
                )
            if timestamps is not None:
                timestamps = _continue_padding(timestamps, lengths)
        if fused_applies(self.cell, x):  # one op for the whole sequence (torch.ops.hippo_rs.rnn)
            y, state = hippo_rnn(self.cell, x, state, lengths, timestamps)
            return (y.transpose(0, 1) if self.batch_first else y), state
        outputs = []
        for k in range(L):
            out, new_state = self.cell(x[k], state, None if timestamps is None else timestamps[k])
            if lengths is not None:
                active = lengths > k
                new_state = _select(active, new_state, state)
                out = out * active[:, None].to(out.dtype)
            state = new_state
            outputs.append(out)
        y = torch.stack(outputs, dim=1 if self.batch_first else 0)
        return y, state


class HiPPOMemory(nn.Module):
    """The linear HiPPO memory of a whole sequence (no feedback; no parameters): ``f -> c``.

    ``forward(f, c0=None, t=0, timestamps=None, t_prev=None, return_all=True)``: f (L, ...) (or
    (B, L, ...) with ``batch_first``) -> all states (L, ..., N) or the last one (..., N), computed by
    the ``hippo_rs::gbt_scan`` op in O(L N) per row and differentiable in ``f`` and ``c0``. It is
    the memory of :class:`HiPPOCell` with the same arguments run over the sequence at once (LegS
    ``t`` = samples already absorbed). ``measure="tlegs"`` (or ``timestamped=True``) needs
    ``timestamps``. Measure parameters as in :class:`HiPPOCell`.
    """

    def __init__(
        self,
        memory_order: int,
        *,
        measure: str = "legs",
        method: Optional[str] = None,
        gbt_alpha: Optional[float] = None,
        dt: Optional[float] = None,
        convention: str = "original",
        timestamped: bool = False,
        batch_first: bool = False,
        **params: float,
    ) -> None:
        super().__init__()
        measure, method, timestamped, dt, params = cell_measure(measure, method, timestamped, dt, params)
        self.memory_order = order(memory_order, "memory_order")
        self.measure, self.method, self.gbt_alpha, self.convention = measure, method, gbt_alpha, convention
        self.dt, self.timestamped, self.batch_first = dt, timestamped, batch_first
        self.params = checked_params(measure, params)
        check_cell_step(measure, method, gbt_alpha, dt, convention, timestamped)

    def extra_repr(self) -> str:
        return (
            f"{self.memory_order}, measure={self.measure!r}, method={self.method!r}, dt={self.dt}, "
            f"timestamped={self.timestamped}, params={self.params}"
        )

    def forward(
        self,
        f: Tensor,
        c0: Optional[Tensor] = None,
        t: Union[int, Tensor] = 0,
        timestamps: Optional[Tensor] = None,
        t_prev: Union[None, float, Tensor] = None,
        return_all: bool = True,
    ) -> Tensor:
        if self.timestamped and timestamps is None:
            raise ValueError("timestamps: required by the timestamped LegS memory")
        if self.batch_first:
            f = f.transpose(0, 1)
            timestamps = None if timestamps is None else timestamps.transpose(0, 1)
        c = scan(
            f, self.memory_order, measure=self.measure, method=self.method, gbt_alpha=self.gbt_alpha,
            dt=self.dt, timestamps=timestamps, c0=c0, t=t, t_prev=t_prev, return_all=return_all,
            convention=self.convention, **self.params,
        )
        return c.transpose(0, 1) if (self.batch_first and return_all) else c
