"""HiPPO-RNN cells (Gu et al. 2020, Sec. 5 and App. E), LSTM/GRU baselines with the same interface.

The cell of the paper's experiments (Gu et al. 2020, Sec. 5 and App. E)::

    f_t = W_f [x_t, h_{t-1}]                      (M scalars: one per memory unit, identity activation)
    c_t = HiPPO update of c_{t-1} (M x N) with f_t (the ``hippo_rs::gbt_step`` op)
    h~  = tanh(W_h [x_t, vec(c_t)]),   g = sigmoid(W_g [x_t, vec(c_t)])
    h_t = (1 - g) h_{t-1} + g h~                  (h_t = h~ without the gate)

Every cell takes ``(x_t (B, input_size), state or None, timestamp=None)`` and returns
``(output (B, hidden_size), new_state)``; ``initial_state(batch, ...)`` gives the zero state and the
state is a tuple of tensors with the batch first, so :class:`hippo_rs.torch.HiPPORNN` runs any of them.
"""

from __future__ import annotations

from typing import Callable, Dict, NamedTuple, Optional

import torch
from torch import Tensor, nn

from .. import _rules
from .._validate import order
from ._functional import checked_params, gbt_coefficients

__all__ = ["CELL_DEFAULTS", "CELLS", "GRUCell", "HiPPOCell", "HiPPOState", "LSTMCell", "RNNCell", "make_cell"]

_F64 = torch.float64

#: Cell defaults per measure: every window spans about 100 steps (theta/dt = 100), like the paper's
#: cells, and LegT and the LMU use ZOH, the original code's discretisation of its LTI cells.
CELL_DEFAULTS = {
    "legs": {"method": "bilinear"},
    "legt": {"method": "zoh", "dt": 0.01, "theta": 1.0},
    "lmu": {"method": "zoh", "dt": 1.0, "theta": 100.0},
    "fout": {"method": "bilinear", "dt": 0.01, "theta": 1.0},
    "chebt": {"method": "bilinear", "dt": 0.01, "theta": 1.0},
    "lagt": {"method": "bilinear", "dt": 0.01},
    "glagt": {"method": "bilinear", "dt": 0.01},
}


def cell_measure(measure: str, method: Optional[str], timestamped: bool, dt: Optional[float], params: dict):
    """A cell's measure with its defaults filled in (:data:`CELL_DEFAULTS`): ``tlegs`` is timestamped
    LegS; returns ``(measure, method, timestamped, dt, params)``."""
    if measure == "tlegs":
        measure, timestamped = "legs", True
    _rules.name(measure, "measure", _rules.MEASURES)
    if measure not in CELL_DEFAULTS:
        raise ValueError(f"measure: expected one of {('tlegs', *CELL_DEFAULTS)}, got {measure!r}")
    if timestamped and measure != "legs":
        raise ValueError(f"timestamped: only LegS has a timestamped cell here, got measure {measure!r}")
    defaults = dict(CELL_DEFAULTS[measure])
    default_dt, default_method = defaults.pop("dt", None), defaults.pop("method")
    dt = default_dt if dt is None or measure == "legs" else _rules.dt(dt)
    return measure, default_method if method is None else method, timestamped, dt, {**defaults, **params}


def check_cell_step(measure: str, method: str, gbt_alpha, dt, convention: str, timestamped: bool) -> bool:
    """Checks a cell's discretisation; True for ZOH (time-invariant measures at a fixed step only)."""
    zoh = _rules.gbt_weight(method, gbt_alpha) is None
    _rules.convention(convention)
    if zoh and (measure == "legs" or timestamped):
        raise ValueError("method: 'zoh' cells are time-invariant (legt, lmu, ...); LegS cells take a GBT method")
    if not zoh:
        _rules.gbt_step(measure, method, gbt_alpha, dt, convention, timestamped)
    return zoh


class HiPPOState(NamedTuple):
    """State of a :class:`HiPPOCell`: hidden ``h`` (B, H), memory ``c`` (B, M, N) and ``t`` (B,) float64.

    ``t`` is the LegS step index (samples already absorbed, never clamped), the time of the last
    absorbed sample for timestamped LegS (NaN before the first), and a step counter for the
    time-invariant measures.
    """

    h: Tensor
    c: Tensor
    t: Tensor


class HiPPOCell(nn.Module):
    """The HiPPO-RNN cell with ``M`` memory units of order ``N`` (``memory_order``, default hidden_size).

    ``measure``: ``legs`` (step index in the state), ``tlegs`` (timestamped LegS: pass ``timestamp``
    (B,) to :meth:`forward`; same as ``measure="legs", timestamped=True``), or a time-invariant
    ``legt``, ``lmu``, ``lagt``, ``glagt``, ``fout``, ``chebt`` with step ``dt`` and window ``theta``
    (defaults give a window of about 100 steps: ``lmu`` theta=100, dt=1; the others theta=1, dt=0.01).
    ``method``: a GBT method (``bilinear``, ``forward_euler``, ``backward_euler``, ``gbt`` with
    ``gbt_alpha``) or, for the time-invariant measures, ``zoh`` (the default for ``legt`` and ``lmu``,
    as in the original code; ``bilinear`` for the others). ``convention``: LegS ``original`` (default, the paper's code) or ``paper``.
    Measure parameters are keywords: ``theta``, ``beta``, ``alpha`` (glagt).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        memory_order: Optional[int] = None,
        memory_size: int = 1,
        measure: str = "legs",
        method: Optional[str] = None,
        gbt_alpha: Optional[float] = None,
        gate: bool = True,
        dt: Optional[float] = None,
        convention: str = "original",
        timestamped: bool = False,
        **params: float,
    ) -> None:
        super().__init__()
        measure, method, timestamped, dt, params = cell_measure(measure, method, timestamped, dt, params)
        self.input_size = order(input_size, "input_size")
        self.hidden_size = order(hidden_size, "hidden_size")
        self.memory_order = order(hidden_size if memory_order is None else memory_order, "memory_order")
        self.memory_size = order(memory_size, "memory_size")
        self.measure, self.method, self.gbt_alpha, self.gate = measure, method, gbt_alpha, gate
        self.dt, self.convention, self.timestamped = dt, convention, timestamped
        # Measure parameters, method, gbt_alpha, dt and convention are validated once, here.
        self.params = checked_params(measure, params)
        self._plist = list(self.params.values())
        self._zoh = check_cell_step(measure, method, gbt_alpha, dt, convention, timestamped)
        # Time-invariant measures: one constant row (alpha dt, (1 - alpha) dt, dt) for every step.
        self._lti_row = None
        if measure != "legs" and not self._zoh:
            self._lti_row = gbt_coefficients(1, measure=measure, method=method, gbt_alpha=gbt_alpha, dt=dt)[0]
        M, N, H, I = self.memory_size, self.memory_order, self.hidden_size, self.input_size
        try:
            self.W_f = nn.Linear(I + H, M)
            self.W_h = nn.Linear(I + M * N, H)
            self.W_g = nn.Linear(I + M * N, H) if gate else None
        except RuntimeError as e:  # torch's allocator: a MemoryError naming the sizes, as numpy's is
            if "alloc" not in str(e).lower() and "overflow" not in str(e).lower():
                raise
            raise MemoryError(
                f"hidden_size, memory_order, memory_size: the weights of input_size={I}, hidden_size={H}, "
                f"memory_order={N}, memory_size={M} do not fit in memory"
            ) from None

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, memory_order={self.memory_order}, "
            f"memory_size={self.memory_size}, measure={self.measure!r}, method={self.method!r}, "
            f"gate={self.gate}, dt={self.dt}, timestamped={self.timestamped}, params={self.params}"
        )

    def initial_state(self, batch: int, dtype=None, device=None) -> HiPPOState:
        """Zero hidden state and memory, nothing absorbed: ``t = 0`` (LegS step index, step counter) or,
        for timestamped LegS, ``t = NaN`` (no previous sample: the first one resets the memory)."""
        dtype = dtype or self.W_f.weight.dtype
        device = device or self.W_f.weight.device
        return HiPPOState(
            torch.zeros(batch, self.hidden_size, dtype=dtype, device=device),
            torch.zeros(batch, self.memory_size, self.memory_order, dtype=dtype, device=device),
            torch.full((batch,), float("nan") if self.timestamped else 0.0, dtype=_F64, device=device),
        )

    def _coef(self, t: Tensor, timestamp: Optional[Tensor], device) -> Tensor:
        """Coefficient rows of this step: (3,) for time-invariant measures, (B, 3) for LegS."""
        rule = dict(measure="legs", method=self.method, gbt_alpha=self.gbt_alpha, convention=self.convention)
        if self.timestamped:
            return gbt_coefficients(1, timestamps=timestamp[None], t_prev=t, device=device, **rule)[0]
        if self.measure == "legs":
            return gbt_coefficients(1, t=t.to(torch.int64), device=device, **rule)[0]
        return self._lti_row.to(device)

    def memory_step(self, c: Tensor, f: Tensor, t: Tensor, timestamp: Optional[Tensor] = None):
        """The linear memory update alone: c (B, M, N), f (B, M), t (B,) -> (c', t')."""
        if self.timestamped:
            if timestamp is None:
                raise ValueError("timestamp: required by the timestamped LegS cell (the time of this sample)")
            timestamp = torch.as_tensor(timestamp, dtype=_F64, device=c.device).expand(t.shape)
            t_next = timestamp
        else:
            t_next = t + 1
        B, M, N = c.shape
        if self._zoh:
            c_new = torch.ops.hippo_rs.zoh_scan(f.reshape(1, B * M), c.reshape(B * M, N), self.measure, self._plist,
                                                self.dt, False)
            return c_new.reshape(B, M, N), t_next
        coef = self._coef(t, timestamp, c.device)
        if coef.dim() == 2 and M > 1:
            coef = coef.repeat_interleave(M, dim=0)  # rows are (batch, memory unit), batch-major
        c_new = torch.ops.hippo_rs.gbt_step(c.reshape(B * M, N), f.reshape(B * M), coef, self.measure, self._plist)
        return c_new.reshape(B, M, N), t_next

    def forward(self, x: Tensor, state: Optional[HiPPOState] = None, timestamp: Optional[Tensor] = None):
        """One step: x (B, input_size) -> (h (B, hidden_size), new state)."""
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.input_size:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x: expected shape (B, input_size = {self.input_size}), got {got}")
        if state is None:
            state = self.initial_state(x.shape[0], x.dtype, x.device)
        h, c, t = state
        f = self.W_f(torch.cat((x, h), dim=-1))
        c, t = self.memory_step(c, f, t, timestamp)
        xc = torch.cat((x, c.flatten(1)), dim=-1)
        h_new = torch.tanh(self.W_h(xc))
        if self.W_g is not None:
            g = torch.sigmoid(self.W_g(xc))
            h_new = (1 - g) * h + g * h_new
        return h_new, HiPPOState(h_new, c, t)


class _TorchCell(nn.Module):
    """A ``torch.nn`` recurrent cell behind the HiPPO cell interface (timestamps are ignored)."""

    cell_type: Callable[..., nn.Module]

    def __init__(self, input_size: int, hidden_size: int, **kwargs) -> None:
        super().__init__()
        self.input_size = order(input_size, "input_size")
        self.hidden_size = order(hidden_size, "hidden_size")
        self.cell = self.cell_type(self.input_size, self.hidden_size, **kwargs)

    def _dtype_device(self, dtype, device):
        w = next(self.cell.parameters())
        return dtype or w.dtype, device or w.device


class LSTMCell(_TorchCell):
    """``nn.LSTMCell``; state ``(h, c)``."""

    cell_type = nn.LSTMCell

    def initial_state(self, batch: int, dtype=None, device=None):
        dtype, device = self._dtype_device(dtype, device)
        z = torch.zeros(batch, self.hidden_size, dtype=dtype, device=device)
        return (z, z.clone())

    def forward(self, x: Tensor, state=None, timestamp=None):
        h, c = self.cell(x, state)
        return h, (h, c)


class GRUCell(_TorchCell):
    """``nn.GRUCell``; state ``(h,)``."""

    cell_type = nn.GRUCell

    def initial_state(self, batch: int, dtype=None, device=None):
        dtype, device = self._dtype_device(dtype, device)
        return (torch.zeros(batch, self.hidden_size, dtype=dtype, device=device),)

    def forward(self, x: Tensor, state=None, timestamp=None):
        h = self.cell(x, None if state is None else state[0])
        return h, (h,)


class RNNCell(GRUCell):
    """``nn.RNNCell`` (tanh); state ``(h,)``."""

    cell_type = nn.RNNCell


def _hippo(measure: str) -> Callable[..., HiPPOCell]:
    def build(input_size: int, hidden_size: int, **kwargs) -> HiPPOCell:
        return HiPPOCell(input_size, hidden_size, measure=measure, **kwargs)

    return build


#: Cell constructors by name: ``make_cell(name, input_size, hidden_size, **kwargs)``.
CELLS: Dict[str, Callable[..., nn.Module]] = {
    **{m: _hippo(m) for m in ("legs", "tlegs", "legt", "lmu", "lagt", "glagt", "fout", "chebt")},
    "lstm": LSTMCell,
    "gru": GRUCell,
    "rnn": RNNCell,
}


def make_cell(name: str, input_size: int, hidden_size: int, **kwargs) -> nn.Module:
    """A cell by name (:data:`CELLS`): HiPPO measures (``legs``, ``tlegs``, ``legt``, ``lmu``,
    ``lagt``, ``glagt``, ``fout``, ``chebt``) or the baselines ``lstm``, ``gru``, ``rnn``."""
    if name not in CELLS:
        raise ValueError(f"name: expected one of {tuple(CELLS)}, got {name!r}")
    return CELLS[name](input_size, hidden_size, **kwargs)
