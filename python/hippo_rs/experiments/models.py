"""Sequence models by name: a recurrent layer and a linear head on its output.

Names: every HiPPO cell of :func:`hippo_rs.torch.make_cell` (``legs``, ``tlegs``, ``legt``, ``lmu``,
``lagt``, ``glagt``, ``fout``, ``chebt``; memory order N = hidden size, the paper's setting) run by
:class:`hippo_rs.torch.HiPPORNN`, and the baselines ``lstm`` and ``gru`` as ``torch.nn.LSTM`` /
``torch.nn.GRU`` layers (the fused implementations a user would compare against).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from hippo_rs.torch import CELLS, HiPPORNN, make_cell

BASELINES = {"lstm": nn.LSTM, "gru": nn.GRU}
HIPPO = tuple(name for name in CELLS if name not in ("lstm", "gru", "rnn"))
MODELS = HIPPO + tuple(BASELINES)
#: Models that read the sample times.
TIMESTAMPED = ("tlegs",)


class SequenceModel(nn.Module):
    """``forward(x (B, L, C), times (B, L), last=None)``: logits of the last step (B, n_out), or of
    each of the last ``last`` steps (B, last, n_out)."""

    def __init__(self, name: str, input_size: int, hidden_size: int, n_out: int) -> None:
        super().__init__()
        if name in BASELINES:
            self.rnn: nn.Module = BASELINES[name](input_size=input_size, hidden_size=hidden_size, batch_first=True)
        else:
            self.rnn = HiPPORNN(make_cell(name, input_size=input_size, hidden_size=hidden_size), batch_first=True)
        self.timestamped = name in TIMESTAMPED
        self.head = nn.Linear(hidden_size, n_out)

    def forward(self, x: Tensor, times: Optional[Tensor] = None, last: Optional[int] = None) -> Tensor:
        if isinstance(self.rnn, HiPPORNN):
            out, _ = self.rnn(x, timestamps=times if self.timestamped else None)
        else:
            out, _ = self.rnn(x)
        return self.head(out[:, -1] if last is None else out[:, -last:])


def build_model(name: str, input_size: int, hidden_size: int, n_out: int) -> SequenceModel:
    if name not in MODELS:
        raise ValueError(f"model: expected one of {MODELS}, got {name!r}")
    return SequenceModel(name, input_size, hidden_size, n_out)
