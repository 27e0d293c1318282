"""``torch.ops.hippo_rs.*``: the HiPPO GBT recurrence as PyTorch custom ops (CPU kernels in Rust).

Every op is one instance of the generic GBT recurrence (``docs/conventions.md``, ``docs/torch.md``)::

    (I - a_i A) c_k = (I + a_e A) c_{k-1} + a_b B f_k,      (a_i, a_e, a_b) = coef[k]  (or coef[k, r])

applied independently to R rows of N coefficients, with A, B the structured HiPPO matrices of
``measure`` (never formed: the Rust core applies the O(N) operators). A coefficient row with
``a_i = +inf`` is the LegS reset ``c_k = f_k e_0`` (the first sample of a LegS stream).

Schemas (the contract the CUDA kernels register against, see ``docs/torch.md``)::

    hippo_rs::gbt_scan(Tensor f, Tensor c0, Tensor coef, str measure, float[] params, bool return_all) -> Tensor
    hippo_rs::gbt_scan_backward(Tensor grad, Tensor coef, str measure, float[] params, bool return_all,
                                SymInt N) -> (Tensor, Tensor)
    hippo_rs::gbt_step(Tensor c, Tensor f, Tensor coef, str measure, float[] params) -> Tensor
    hippo_rs::gbt_step_backward(Tensor grad, Tensor coef, str measure, float[] params) -> (Tensor, Tensor)
    hippo_rs::zoh_scan(Tensor f, Tensor c0, str measure, float[] params, float dt, bool return_all) -> Tensor
    hippo_rs::zoh_scan_backward(Tensor grad, str measure, float[] params, float dt, bool return_all,
                                SymInt L) -> (Tensor, Tensor)

``zoh_scan`` is the zero-order hold of a time-invariant measure at a fixed step ``dt`` (dense step
matrices computed once; O(N^2) per step; CPU only). ``params`` are the measure parameters in a fixed order (:data:`PARAM_NAMES`). Gradients flow to ``f``
and ``c0`` (resp. ``c`` and ``f``); ``coef`` gets none (step sizes and timestamps are not learnable).
The backward ops are the adjoint recurrences (the transposed O(N) operators run in reverse), so the
backward pass costs the same as the forward one. The backward ops are linear in ``grad`` and are
differentiable in turn (their adjoint is the forward op), so double backward works too.

CPU kernels: ``f``/``c0``/``c`` must be float32 or float64 (same dtype), ``coef`` float64; other
dtypes raise ``TypeError`` naming the argument (cast explicitly: the recurrence is not meaningful in
half precision over long sequences). Non-contiguous inputs are made contiguous (one copy); contiguous
inputs and the outputs are shared with the Rust core without copies (``Tensor.numpy()`` views).
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor

from .. import _core
from .. import _rules

__all__ = ["PARAM_NAMES", "params_dict"]

#: Measure parameters in the fixed order of the ops' ``float[] params`` argument, with defaults: the
#: core's table (``MEASURE_PARAMS`` in ``rust/core/src/measure.rs``).
PARAM_NAMES: Dict[str, Tuple[Tuple[str, float], ...]] = {m: tuple(p) for m, p in _core.MEASURE_PARAMS.items()}

_FLOATS = (torch.float32, torch.float64)


def params_dict(measure: str, params: Sequence[float]) -> Dict[str, float]:
    """The ops' ordered ``float[] params`` as ``{name: value}`` (the measure's name is checked by the core)."""
    if measure not in PARAM_NAMES:
        _rules.measure_params(measure, {})  # raises the core's error naming the measure
    names = PARAM_NAMES[measure]
    if len(params) != len(names):
        raise ValueError(
            f"params: measure {measure!r} takes {len(names)} parameters {[n for n, _ in names]}, got {len(params)}"
        )
    return {n: float(v) for (n, _), v in zip(names, params)}


def _check_tensor(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a tensor, got {type(x).__name__}")


def _check_float(x: Tensor, name: str) -> None:
    _check_tensor(x, name)
    if x.dtype not in _FLOATS:
        raise TypeError(f"{name}: expected a float32 or float64 tensor, got {x.dtype}")


def _check_coef(coef: Tensor, L: int, R: int, name: str = "coef") -> None:
    _check_tensor(coef, name)
    if coef.dtype != torch.float64:
        raise TypeError(f"{name}: expected a float64 tensor, got {coef.dtype}")
    if not (coef.shape == (L, 3) or coef.shape == (L, R, 3)):
        raise ValueError(f"{name}: expected shape ({L}, 3) or ({L}, {R}, 3), got {tuple(coef.shape)}")


def _check_signal_and_state(f: Tensor, c0: Tensor, *others: Tuple[Tensor, str]) -> None:
    """f (L, R) float32/float64, c0 (R, N) of its dtype, every tensor on the device of f."""
    _check_float(f, "f")
    _check_tensor(c0, "c0")
    if c0.dtype != f.dtype:
        raise TypeError(f"c0: expected the dtype of f ({f.dtype}), got {c0.dtype}")
    if f.dim() != 2:
        raise ValueError(f"f: expected shape (L, R), got {tuple(f.shape)}")
    if c0.dim() != 2 or c0.shape[0] != f.shape[1]:
        raise ValueError(f"c0: expected shape ({f.shape[1]}, N), got {tuple(c0.shape)}")
    for x, name in ((c0, "c0"), *others):
        if x.device != f.device:
            raise ValueError(f"{name}: expected a tensor on {f.device} (the device of f), got {x.device}")


def _check_scan(f: Tensor, c0: Tensor, coef: Tensor) -> None:
    _check_signal_and_state(f, c0, (coef, "coef"))
    _check_coef(coef, f.shape[0], f.shape[1])


def _check_step(c: Tensor, f: Tensor, coef: Tensor) -> None:
    _check_float(c, "c")
    _check_tensor(f, "f")
    _check_tensor(coef, "coef")
    if f.dtype != c.dtype:
        raise TypeError(f"f: expected the dtype of c ({c.dtype}), got {f.dtype}")
    if c.dim() != 2:
        raise ValueError(f"c: expected shape (R, N), got {tuple(c.shape)}")
    if f.shape != (c.shape[0],):
        raise ValueError(f"f: expected shape ({c.shape[0]},), got {tuple(f.shape)}")
    if coef.shape != (3,) and coef.shape != (c.shape[0], 3):
        raise ValueError(f"coef: expected shape (3,) or ({c.shape[0]}, 3), got {tuple(coef.shape)}")
    if coef.dtype != torch.float64:
        raise TypeError(f"coef: expected a float64 tensor, got {coef.dtype}")


def _shared_rows(coef: Tensor) -> Tensor:
    """Per-row coefficients (..., R, 3) that are equal across the rows, as one shared row (..., 3): the
    kernels prepare one step table per coefficient row, so shared rows are much cheaper (LegS cells
    keep a per-row step index that is usually the same for the whole batch)."""
    if coef.dim() >= 2 and coef.shape[-2] > 1 and bool((coef == coef[..., :1, :]).all()):
        return coef[..., 0, :]
    return coef


def _np(x: Tensor):
    """A zero-copy numpy view of a CPU tensor (one copy only when it is not contiguous)."""
    return x.detach().contiguous().numpy()


def allocate(like: Tensor, shape: Sequence[int], what: str, zero: bool = False) -> Tensor:
    """A new tensor of ``like``'s dtype and device; a failed allocation is a ``MemoryError`` naming
    ``what`` and the size (as numpy's is), not torch's ``RuntimeError``."""
    try:
        return like.new_zeros(shape) if zero else like.new_empty(shape)
    except RuntimeError as e:
        if "alloc" not in str(e).lower() and "overflow" not in str(e).lower():
            raise
        size = like.element_size()
        for d in shape:
            size *= d
        raise MemoryError(f"{what}: cannot allocate {tuple(shape)} {like.dtype} ({size / 2**30:.3g} GiB)") from None


# --------------------------------------------------------------------------------------------------
# gbt_scan / gbt_scan_backward
# --------------------------------------------------------------------------------------------------


@torch.library.custom_op("hippo_rs::gbt_scan", mutates_args=(), device_types="cpu")
def gbt_scan(
    f: Tensor, c0: Tensor, coef: Tensor, measure: str, params: List[float], return_all: bool
) -> Tensor:
    """The GBT recurrence over L steps: f (L, R), c0 (R, N) -> (L, R, N) (return_all) or (R, N)."""
    _check_scan(f, c0, coef)
    L, R = f.shape
    N = c0.shape[1]
    out = allocate(f, (L, R, N) if return_all else (R, N), "return_all=True: the states" if return_all else "c0")
    coef = _shared_rows(coef) if coef.dim() == 3 else coef
    _core.gbt_scan(measure, params_dict(measure, params), _np(f), _np(c0), _np(coef), return_all, out=out.numpy())
    return out


@gbt_scan.register_fake
def _(f, c0, coef, measure, params, return_all):
    _check_scan(f, c0, coef)
    L, R = f.shape
    N = c0.shape[1]
    return f.new_empty((L, R, N) if return_all else (R, N))


def _check_scan_grad(grad: Tensor, coef: Tensor, return_all: bool, N: int) -> Tuple[int, int]:
    _check_float(grad, "grad")
    if return_all:
        if grad.dim() != 3 or grad.shape[2] != N:
            raise ValueError(f"grad: expected shape (L, R, {N}), got {tuple(grad.shape)}")
        L, R = grad.shape[0], grad.shape[1]
    else:
        if grad.dim() != 2 or grad.shape[1] != N:
            raise ValueError(f"grad: expected shape (R, {N}), got {tuple(grad.shape)}")
        L, R = coef.shape[0], grad.shape[0]
    _check_coef(coef, L, R)
    return L, R


@torch.library.custom_op("hippo_rs::gbt_scan_backward", mutates_args=(), device_types="cpu")
def gbt_scan_backward(
    grad: Tensor, coef: Tensor, measure: str, params: List[float], return_all: bool, N: int
) -> Tuple[Tensor, Tensor]:
    """Adjoint of :func:`gbt_scan` as a linear map of (f, c0): returns (grad_f (L, R), grad_c0 (R, N)).

    lambda_L = grad_L; for k = L..1: w = (I - a_i A)^-T lambda_k, grad_f_k = a_b <B, w>,
    lambda_{k-1} = (I + a_e A)^T w (+ grad_{k-1} if return_all); grad_c0 = lambda_0.
    """
    _check_scan_grad(grad, coef, return_all, N)
    coef = _shared_rows(coef) if coef.dim() == 3 else coef
    grad_f, grad_c0 = _core.gbt_scan_adjoint(measure, params_dict(measure, params), _np(grad), _np(coef), return_all)
    return torch.from_numpy(grad_f), torch.from_numpy(grad_c0)


@gbt_scan_backward.register_fake
def _(grad, coef, measure, params, return_all, N):
    L, R = _check_scan_grad(grad, coef, return_all, N)
    return grad.new_empty((L, R)), grad.new_empty((R, N))


def _scan_setup_context(ctx, inputs, output):
    _, c0, coef, measure, params, return_all = inputs
    ctx.save_for_backward(coef)
    ctx.measure, ctx.params, ctx.return_all, ctx.N = measure, params, return_all, c0.shape[1]


def _scan_backward(ctx, grad):
    (coef,) = ctx.saved_tensors
    grad_f, grad_c0 = torch.ops.hippo_rs.gbt_scan_backward(
        grad, coef, ctx.measure, ctx.params, ctx.return_all, ctx.N
    )
    return grad_f, grad_c0, None, None, None, None


gbt_scan.register_autograd(_scan_backward, setup_context=_scan_setup_context)


def _scan_backward_setup_context(ctx, inputs, output):
    grad, coef, measure, params, return_all, N = inputs
    ctx.save_for_backward(coef)
    ctx.measure, ctx.params, ctx.return_all = measure, params, return_all
    ctx.L, ctx.R, ctx.N = coef.shape[0], (grad.shape[1] if return_all else grad.shape[0]), N


def _scan_backward_backward(ctx, u_f, u_c0):
    """gbt_scan_backward is the linear map grad -> J^T grad; its own adjoint is J = gbt_scan."""
    (coef,) = ctx.saved_tensors
    dtype, device = (u_f if u_f is not None else u_c0).dtype, coef.device
    u_f = torch.zeros((ctx.L, ctx.R), dtype=dtype, device=device) if u_f is None else u_f
    u_c0 = torch.zeros((ctx.R, ctx.N), dtype=dtype, device=device) if u_c0 is None else u_c0
    grad_grad = torch.ops.hippo_rs.gbt_scan(u_f, u_c0, coef, ctx.measure, ctx.params, ctx.return_all)
    return grad_grad, None, None, None, None, None


gbt_scan_backward.register_autograd(_scan_backward_backward, setup_context=_scan_backward_setup_context)


# --------------------------------------------------------------------------------------------------
# gbt_step / gbt_step_backward (one step of R rows = gbt_scan with L = 1, return_all=False)
# --------------------------------------------------------------------------------------------------


@torch.library.custom_op("hippo_rs::gbt_step", mutates_args=(), device_types="cpu")
def gbt_step(c: Tensor, f: Tensor, coef: Tensor, measure: str, params: List[float]) -> Tensor:
    """One GBT step of R rows: c (R, N), f (R,), coef (3,) or (R, 3) -> c' (R, N)."""
    _check_step(c, f, coef)
    out = torch.empty_like(c, memory_format=torch.contiguous_format)
    coef = _shared_rows(coef) if coef.dim() == 2 else coef
    _core.gbt_scan(
        measure, params_dict(measure, params), _np(f)[None], _np(c), _np(coef)[None], False, out=out.numpy()
    )
    return out


@gbt_step.register_fake
def _(c, f, coef, measure, params):
    _check_step(c, f, coef)
    return torch.empty_like(c, memory_format=torch.contiguous_format)


def _check_step_grad(grad: Tensor, coef: Tensor) -> None:
    _check_float(grad, "grad")
    if grad.dim() != 2:
        raise ValueError(f"grad: expected shape (R, N), got {tuple(grad.shape)}")
    if coef.shape != (3,) and coef.shape != (grad.shape[0], 3):
        raise ValueError(f"coef: expected shape (3,) or ({grad.shape[0]}, 3), got {tuple(coef.shape)}")
    if coef.dtype != torch.float64:
        raise TypeError(f"coef: expected a float64 tensor, got {coef.dtype}")


@torch.library.custom_op("hippo_rs::gbt_step_backward", mutates_args=(), device_types="cpu")
def gbt_step_backward(grad: Tensor, coef: Tensor, measure: str, params: List[float]) -> Tuple[Tensor, Tensor]:
    """Adjoint of :func:`gbt_step`: grad (R, N) -> (grad_c (R, N), grad_f (R,))."""
    _check_step_grad(grad, coef)
    coef = _shared_rows(coef) if coef.dim() == 2 else coef
    grad_f, grad_c = _core.gbt_scan_adjoint(measure, params_dict(measure, params), _np(grad), _np(coef)[None], False)
    return torch.from_numpy(grad_c), torch.from_numpy(grad_f).reshape(-1)


@gbt_step_backward.register_fake
def _(grad, coef, measure, params):
    _check_step_grad(grad, coef)
    return torch.empty_like(grad, memory_format=torch.contiguous_format), grad.new_empty((grad.shape[0],))


def _step_setup_context(ctx, inputs, output):
    _, _, coef, measure, params = inputs
    ctx.save_for_backward(coef)
    ctx.measure, ctx.params = measure, params


def _step_backward(ctx, grad):
    (coef,) = ctx.saved_tensors
    grad_c, grad_f = torch.ops.hippo_rs.gbt_step_backward(grad, coef, ctx.measure, ctx.params)
    return grad_c, grad_f, None, None, None


gbt_step.register_autograd(_step_backward, setup_context=_step_setup_context)


def _step_backward_setup_context(ctx, inputs, output):
    grad, coef, measure, params = inputs
    ctx.save_for_backward(coef)
    ctx.measure, ctx.params, ctx.shape = measure, params, grad.shape


def _step_backward_backward(ctx, u_c, u_f):
    """gbt_step_backward is grad -> J^T grad; its adjoint is J = gbt_step."""
    (coef,) = ctx.saved_tensors
    dtype, device = (u_c if u_c is not None else u_f).dtype, coef.device
    u_c = torch.zeros(ctx.shape, dtype=dtype, device=device) if u_c is None else u_c
    u_f = torch.zeros(ctx.shape[:1], dtype=dtype, device=device) if u_f is None else u_f
    return torch.ops.hippo_rs.gbt_step(u_c, u_f, coef, ctx.measure, ctx.params), None, None, None


gbt_step_backward.register_autograd(_step_backward_backward, setup_context=_step_backward_setup_context)


# --------------------------------------------------------------------------------------------------
# zoh_scan / zoh_scan_backward (time-invariant measures at a fixed step dt; dense step matrices)
# --------------------------------------------------------------------------------------------------


def _check_zoh(f: Tensor, c0: Tensor, measure: str) -> None:
    _check_signal_and_state(f, c0)
    if measure == "legs":
        raise ValueError("measure: the ZOH op is for the time-invariant measures (LegS: use a GBT method)")


@torch.library.custom_op("hippo_rs::zoh_scan", mutates_args=(), device_types="cpu")
def zoh_scan(f: Tensor, c0: Tensor, measure: str, params: List[float], dt: float, return_all: bool) -> Tensor:
    """ZOH recurrence c_k = Ad c_{k-1} + Bd f_k, (Ad, Bd) = (e^{dt A}, A^{-1}(e^{dt A} - I) B) computed
    once: f (L, R), c0 (R, N) -> (L, R, N) (return_all) or (R, N)."""
    _check_zoh(f, c0, measure)
    out = _core.zoh_scan(measure, params_dict(measure, params), _np(f), _np(c0), dt, return_all)
    return torch.from_numpy(out)


@zoh_scan.register_fake
def _(f, c0, measure, params, dt, return_all):
    _check_zoh(f, c0, measure)
    L, R = f.shape
    N = c0.shape[1]
    return f.new_empty((L, R, N) if return_all else (R, N))


@torch.library.custom_op("hippo_rs::zoh_scan_backward", mutates_args=(), device_types="cpu")
def zoh_scan_backward(
    grad: Tensor, measure: str, params: List[float], dt: float, return_all: bool, L: int
) -> Tuple[Tensor, Tensor]:
    """Adjoint of :func:`zoh_scan` as a linear map of (f, c0): lambda = grad_L; for k = L..1:
    grad_f_k = <Bd, lambda>, lambda <- Ad^T lambda (+ grad_{k-1} if return_all); grad_c0 = lambda."""
    _check_float(grad, "grad")
    grad_f, grad_c0 = _core.zoh_scan_adjoint(measure, params_dict(measure, params), _np(grad), dt, L, return_all)
    return torch.from_numpy(grad_f), torch.from_numpy(grad_c0)


@zoh_scan_backward.register_fake
def _(grad, measure, params, dt, return_all, L):
    R, N = grad.shape[-2], grad.shape[-1]
    return grad.new_empty((L, R)), grad.new_empty((R, N))


def _zoh_setup_context(ctx, inputs, output):
    f, _, measure, params, dt, return_all = inputs
    ctx.measure, ctx.params, ctx.dt, ctx.return_all, ctx.L = measure, params, dt, return_all, f.shape[0]


def _zoh_backward(ctx, grad):
    grad_f, grad_c0 = torch.ops.hippo_rs.zoh_scan_backward(grad, ctx.measure, ctx.params, ctx.dt, ctx.return_all, ctx.L)
    return grad_f, grad_c0, None, None, None, None


zoh_scan.register_autograd(_zoh_backward, setup_context=_zoh_setup_context)


def _zoh_backward_setup_context(ctx, inputs, output):
    grad, measure, params, dt, return_all, L = inputs
    ctx.measure, ctx.params, ctx.dt, ctx.return_all = measure, params, dt, return_all


def _zoh_backward_backward(ctx, u_f, u_c0):
    """zoh_scan_backward is grad -> J^T grad; its adjoint is J = zoh_scan."""
    grad = torch.ops.hippo_rs.zoh_scan(u_f, u_c0, ctx.measure, ctx.params, ctx.dt, ctx.return_all)
    return grad, None, None, None, None, None


zoh_scan_backward.register_autograd(_zoh_backward_backward, setup_context=_zoh_backward_setup_context)
