"""The HiPPO paper's experiments as one runner: ``hippo-rs train TASK`` (``python -m hippo_rs.experiments``).

Tasks (``tasks/``): ``pmnist``/``smnist``, ``trajectories``, ``adding``, ``copying``; models: every
HiPPO cell of :func:`hippo_rs.torch.make_cell` and the LSTM/GRU baselines (``models``); the loop,
checkpoints, resume and DDP in ``runner``; the command line in ``cli``.
"""

from .cli import main

__all__ = ["main"]
