"""``torch.ops.hippo_rs.rnn``: the HiPPO-RNN layer over a whole sequence as one op (Gu et al. 2020,
Sec. 5 and App. E), forward and backpropagation through time in one native loop each.

Schemas::

    hippo_rs::rnn(Tensor x, Tensor h0, Tensor c0, Tensor coef, Tensor lengths, Tensor w_f, Tensor b_f,
                  Tensor w_h, Tensor b_h, Tensor? w_g, Tensor? b_g, str measure, float[] params,
                  bool save, float? zoh_dt) -> (Tensor y, Tensor h_n, Tensor c_n, Tensor c, Tensor h_tilde,
                  Tensor g)
    hippo_rs::rnn_backward(Tensor grad_y, Tensor grad_h_n, Tensor grad_c_n, Tensor x, Tensor h0,
                  Tensor c0, Tensor coef, Tensor lengths, Tensor w_f, Tensor b_f, Tensor w_h,
                  Tensor b_h, Tensor? w_g, Tensor? b_g, Tensor y, Tensor c, Tensor h_tilde, Tensor g,
                  str measure, float[] params, float? zoh_dt) -> (Tensor x4, Tensor x5) (the gradients of x, h0,
                  c0, w_f, b_f, w_h, b_h, w_g, b_g; those of w_g, b_g empty without the gate)

x (L, B, I), h0 (B, H), c0 (B, M, N), coef (L, 3) or (L, B, 3) float64 (the GBT rows of the memory
step, :mod:`._coef`), lengths (B,) int64 (row b runs ``lengths[b]`` steps, then holds its state and
outputs zeros), weights as the ``nn.Linear`` layers of :class:`HiPPOCell`. Outputs: y (L, B, H),
the final h_n, c_n, and the tensors the backward pass reads: every memory state c (L, B, M, N), h~ and
g (L, B, H) (g empty without the gate). Memory kept for the backward pass: L B (M N + 3 H) values.
With ``save=False`` (inference: no gradient is needed) c, h~ and g are empty, nothing is kept, and the
op cannot be differentiated. With ``zoh_dt`` the memory step is the zero-order hold of the
(time-invariant) measure at that step, c_k = Ad c_{k-1} + Bd f_k (the original code's LegT/LMU cells;
a dense (B M, N) x (N, N) product per step), and ``coef`` is not read.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from .. import _core
from ._functional import gbt_coefficients
from ._ops import _shared_rows, params_dict

__all__ = ["fused_applies", "hippo_rnn"]

_FLOATS = (torch.float32, torch.float64)


def _check(x: Tensor, h0: Tensor, c0: Tensor, coef: Tensor, lengths: Tensor, weights) -> None:
    if x.dtype not in _FLOATS:
        raise TypeError(f"x: expected a float32 or float64 tensor, got {x.dtype}")
    if x.dim() != 3 or h0.dim() != 2 or c0.dim() != 3:
        raise ValueError(
            f"x, h0, c0: expected shapes (L, B, I), (B, H), (B, M, N), got "
            f"{tuple(x.shape)}, {tuple(h0.shape)}, {tuple(c0.shape)}"
        )
    for name, t in (("h0", h0), ("c0", c0), *weights):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"{name}: expected the dtype of x ({x.dtype}), got {t.dtype}")
    if coef.dtype != torch.float64:
        raise TypeError(f"coef: expected a float64 tensor, got {coef.dtype}")
    if lengths.dtype != torch.int64 or lengths.shape != (x.shape[1],):
        raise ValueError(
            f"lengths: expected an int64 tensor of shape ({x.shape[1]},), got {lengths.dtype} {tuple(lengths.shape)}"
        )


def _np(t: Optional[Tensor], like: Tensor):
    """A numpy view (contiguous copy only when needed); absent weights are empty arrays."""
    if t is None:
        return like.new_empty(0).numpy()
    return t.detach().contiguous().numpy()


def _rows(coef: Tensor) -> Tensor:
    """Per-row coefficient rows (L, B, 3) that agree across the batch as one shared row per step."""
    return _shared_rows(coef) if coef.dim() == 3 else coef


def _out_shapes(x: Tensor, h0: Tensor, c0: Tensor, gate: bool, save: bool):
    L, B = x.shape[0], x.shape[1]
    H = h0.shape[1]
    if not save:
        return [(L, B, H), (B, H), tuple(c0.shape), (0,), (0,), (0,)]
    return [(L, B, H), (B, H), tuple(c0.shape), (L, *c0.shape), (L, B, H), (L, B, H) if gate else (0,)]


@torch.library.custom_op("hippo_rs::rnn", mutates_args=(), device_types="cpu")
def rnn(
    x: Tensor, h0: Tensor, c0: Tensor, coef: Tensor, lengths: Tensor, w_f: Tensor, b_f: Tensor,
    w_h: Tensor, b_h: Tensor, w_g: Optional[Tensor], b_g: Optional[Tensor], measure: str, params: List[float],
    save: bool, zoh_dt: Optional[float],
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The layer over the sequence (see the module docs)."""
    weights = (("w_f", w_f), ("b_f", b_f), ("w_h", w_h), ("b_h", b_h), ("w_g", w_g), ("b_g", b_g))
    _check(x, h0, c0, coef, lengths, weights)
    outs = [x.new_empty(s) for s in _out_shapes(x, h0, c0, w_g is not None, save)]
    _core.rnn_forward(
        measure, params_dict(measure, params), [_np(t, x) for t in (x, h0, c0)], _np(_rows(coef), x),
        _np(lengths, x), [_np(w, x) for _, w in weights], [o.numpy() for o in outs], torch.get_num_threads(),
        zoh_dt,
    )
    return tuple(outs)


@rnn.register_fake
def _(x, h0, c0, coef, lengths, w_f, b_f, w_h, b_h, w_g, b_g, measure, params, save, zoh_dt):
    weights = (("w_f", w_f), ("b_f", b_f), ("w_h", w_h), ("b_h", b_h), ("w_g", w_g), ("b_g", b_g))
    _check(x, h0, c0, coef, lengths, weights)
    return tuple(x.new_empty(s) for s in _out_shapes(x, h0, c0, w_g is not None, save))


@torch.library.custom_op("hippo_rs::rnn_backward", mutates_args=(), device_types="cpu")
def rnn_backward(
    grad_y: Tensor, grad_h_n: Tensor, grad_c_n: Tensor, x: Tensor, h0: Tensor, c0: Tensor, coef: Tensor,
    lengths: Tensor, w_f: Tensor, b_f: Tensor, w_h: Tensor, b_h: Tensor, w_g: Optional[Tensor],
    b_g: Optional[Tensor], y: Tensor, c: Tensor, h_tilde: Tensor, g: Tensor, measure: str, params: List[float],
    zoh_dt: Optional[float],
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Backpropagation through time: the gradients of x, h0, c0, w_f, b_f, w_h, b_h, w_g, b_g."""
    weights = (w_f, b_f, w_h, b_h, w_g, b_g)
    grads = [torch.empty_like(t, memory_format=torch.contiguous_format) for t in (x, h0, c0)]
    grads += [
        x.new_empty(0) if w is None else torch.empty_like(w, memory_format=torch.contiguous_format) for w in weights
    ]
    _core.rnn_backward(
        measure, params_dict(measure, params), [_np(t, x) for t in (x, h0, c0)], _np(_rows(coef), x),
        _np(lengths, x), [_np(w, x) for w in weights], [_np(t, x) for t in (y, c, h_tilde, g)],
        [_np(t, x) for t in (grad_y, grad_h_n, grad_c_n)], [t.numpy() for t in grads], torch.get_num_threads(),
        zoh_dt,
    )
    return tuple(grads)


@rnn_backward.register_fake
def _(grad_y, grad_h_n, grad_c_n, x, h0, c0, coef, lengths, w_f, b_f, w_h, b_h, w_g, b_g, y, c, h_tilde, g,
      measure, params, zoh_dt):
    grads = [torch.empty_like(t) for t in (x, h0, c0)]
    weights = (w_f, b_f, w_h, b_h, w_g, b_g)
    return tuple(grads + [x.new_empty(0) if w is None else torch.empty_like(w) for w in weights])


def _setup_context(ctx, inputs, output):
    x, h0, c0, coef, lengths, w_f, b_f, w_h, b_h, w_g, b_g, measure, params, save, zoh_dt = inputs
    y, _, _, c, h_tilde, g = output
    ctx.save_for_backward(x, h0, c0, coef, lengths, w_f, b_f, w_h, b_h, w_g, b_g, y, c, h_tilde, g)
    ctx.measure, ctx.params, ctx.gate, ctx.saved, ctx.zoh_dt = measure, params, w_g is not None, save, zoh_dt
    ctx.mark_non_differentiable(c, h_tilde, g)


def _backward(ctx, grad_y, grad_h_n, grad_c_n, *_saved_grads):
    if not ctx.saved:
        raise RuntimeError("hippo_rs::rnn: called with save=False, which keeps nothing to differentiate")
    x, h0, c0, coef, lengths, w_f, b_f, w_h, b_h, w_g, b_g, y, c, h_tilde, g = ctx.saved_tensors
    grad_y = torch.zeros_like(y) if grad_y is None else grad_y
    grad_h_n = torch.zeros_like(h0) if grad_h_n is None else grad_h_n
    grad_c_n = torch.zeros_like(c0) if grad_c_n is None else grad_c_n
    grads = torch.ops.hippo_rs.rnn_backward(
        grad_y, grad_h_n, grad_c_n, x, h0, c0, coef, lengths, w_f, b_f, w_h, b_h, w_g, b_g, y, c, h_tilde, g,
        ctx.measure, ctx.params, ctx.zoh_dt,
    )
    dx, dh0, dc0, dwf, dbf, dwh, dbh, dwg, dbg = grads
    if not ctx.gate:
        dwg = dbg = None
    return dx, dh0, dc0, None, None, dwf, dbf, dwh, dbh, dwg, dbg, None, None, None, None


rnn.register_autograd(_backward, setup_context=_setup_context)


def fused_applies(cell, x: Tensor) -> bool:
    """Whether :class:`HiPPORNN` runs ``cell`` through the fused op: one of the library's HiPPO cells,
    not a subclass that changes its step, on the CPU (any memory step: GBT or ZOH) or on CUDA (GBT
    steps of the measures with CUDA kernels, when the extension builds), in the dtype of its
    weights."""
    from .cells import HiPPOCell

    return (
        isinstance(cell, HiPPOCell)
        and type(cell).forward is HiPPOCell.forward
        and type(cell).memory_step is HiPPOCell.memory_step
        and (x.device.type == "cpu" or _cuda_applies(cell, x))
        and x.dtype in _FLOATS
        and x.dtype == cell.W_f.weight.dtype
        and cell.W_f.bias is not None
    )


def _cuda_applies(cell, x: Tensor) -> bool:
    """CUDA tensors, a measure with CUDA kernels, and the CUDA extension available."""
    from . import _cuda

    return (
        x.device.type == "cuda" and not cell._zoh and cell.measure in _cuda.MEASURES and _cuda.rnn_available()
    )


def _coefficients(cell, L: int, t: Tensor, timestamps: Optional[Tensor]) -> Tensor:
    """The memory step's GBT rows of all L steps: (L, B, 3) for LegS (per-row step index or
    timestamps), (L, 3) for the time-invariant measures -- the rows :meth:`HiPPOCell.memory_step`
    uses step by step."""
    if cell.timestamped and timestamps is None:
        raise ValueError("timestamps: required by the timestamped LegS cell (the time of each sample)")
    if L == 0 or cell._zoh:  # ZOH: no coefficient rows (the op steps by its dense matrices)
        return torch.zeros((0, 3), dtype=torch.float64, device=t.device)
    rule = dict(measure="legs", method=cell.method, gbt_alpha=cell.gbt_alpha, convention=cell.convention)
    if cell.timestamped:
        return gbt_coefficients(L, timestamps=timestamps.to(torch.float64), t_prev=t, device=t.device, **rule)
    if cell.measure == "legs":
        return gbt_coefficients(L, t=t.to(torch.int64), device=t.device, **rule)
    return cell._lti_row.to(t.device).expand(L, 3).contiguous()


def hippo_rnn(cell, x: Tensor, state, lengths: Optional[Tensor], timestamps: Optional[Tensor]):
    """``cell`` (a :class:`HiPPOCell`) over x (L, B, I) by the fused op: (outputs (L, B, H), final
    state), equal to running the cell step by step (:class:`HiPPORNN`)."""
    from .cells import HiPPOState

    L, B = x.shape[0], x.shape[1]
    h0, c0, t = state
    t = t.to(torch.float64)
    coef = _coefficients(cell, L, t, timestamps)
    steps = torch.full((B,), L, dtype=torch.int64, device=x.device) if lengths is None else lengths.to(torch.int64)
    taken = steps.clamp(0, L)  # steps each row absorbs
    if cell.timestamped:
        last = timestamps.to(torch.float64).gather(0, (taken - 1).clamp(min=0)[None])[0] if L > 0 else t
        t_n = torch.where(taken > 0, last, t)
    else:
        t_n = t + taken.to(torch.float64)
    w_g = cell.W_g.weight if cell.W_g is not None else None
    b_g = cell.W_g.bias if cell.W_g is not None else None
    differentiable = (x, h0, c0, *cell.parameters())
    save = torch.is_grad_enabled() and any(t.requires_grad for t in differentiable)
    y, h_n, c_n, _, _, _ = torch.ops.hippo_rs.rnn(
        x.contiguous(), h0.contiguous(), c0.contiguous(), coef, steps, cell.W_f.weight, cell.W_f.bias,
        cell.W_h.weight, cell.W_h.bias, w_g, b_g, cell.measure, cell._plist, save, cell.dt if cell._zoh else None,
    )
    return y, HiPPOState(h_n, c_n, t_n)
