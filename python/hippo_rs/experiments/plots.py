"""Learning curves of a run: loss and metric per epoch for the training, validation and test splits."""

from __future__ import annotations

from typing import Dict, List


def plot_curves(history: List[Dict[str, float]], metric: str, title: str, path: str) -> None:
    """Writes a two-panel PNG (loss | metric against epoch) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    label = {"acc": "accuracy", "mse": "mean squared error"}[metric]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, key, name in ((axes[0], "loss", "loss"), (axes[1], metric, label)):
        for split, style in (("train", "-"), ("val", "--"), ("test", ":")):
            ax.plot(epochs, [r[f"{split}_{key}"] for r in history], style, marker=".", label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_yscale("log")
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
