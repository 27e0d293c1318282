"""The Figure 4 style plot of ``hippo-rs approx``."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

#: Points per plotted line (the plot is decimated; the errors are computed on every sample).
PLOT_POINTS = 20_000


def plot(
    path: str, x: np.ndarray, dt: float, recs: Dict[str, np.ndarray], fit: np.ndarray, N: int, unit: str = "s"
) -> None:
    """Figure 4 style: the signal with its reconstructions (whole record, and a zoom on its oldest
    tenth, the hardest part to remember), and the errors over the whole record."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    L = x.size
    zoom = max(2, L // 10)
    fig, (top, mid, bottom) = plt.subplots(3, 1, figsize=(12, 9), gridspec_kw={"height_ratios": [2, 1.5, 1]})
    style = {
        "legs": dict(color="tab:red", zorder=4),
        "legt": dict(color="tab:blue", zorder=3),
        "lmu": dict(color="tab:green", ls=(0, (4, 3)), zorder=3),  # LMU = LegT in another basis: same curve
        "fout": dict(color="tab:purple", zorder=2),
        "lagt": dict(color="tab:orange", zorder=2),
        "glagt": dict(color="tab:brown", zorder=2),
    }

    def lines(ax: Any, stop: int, legend: bool) -> None:
        step = max(1, stop // PLOT_POINTS)
        tt = np.arange(0, stop, step) * dt
        ax.plot(tt, x[:stop:step], color="black", lw=2.0, label="signal", zorder=1)
        for name, rec in recs.items():
            label = f"{name} (MSE {np.mean((rec - x) ** 2):.3g})" if legend else None
            ax.plot(tt, rec[:stop:step], lw=1.0, label=label, **style.get(name, {}))
        label = f"optimal degree-{N - 1} fit (MSE {np.mean((fit - x) ** 2):.3g})" if legend else None
        ax.plot(tt, fit[:stop:step], lw=0.8, ls=":", color="gray", label=label, zorder=5)
        ax.set_xlim(0, (stop - 1) * dt)

    lines(top, L, True)
    top.set_ylabel("whole record")
    top.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8, ncol=len(recs) + 2, frameon=False)
    lines(mid, zoom, False)
    mid.set_ylabel("oldest tenth (zoom)")
    step = max(1, L // PLOT_POINTS)
    tt = np.arange(0, L, step) * dt
    for name, rec in recs.items():
        bottom.plot(tt, (rec - x)[::step], lw=0.8, **style.get(name, {}))
    bottom.axhline(0.0, color="black", lw=0.5)
    bottom.set_xlim(0, (L - 1) * dt)
    bottom.set_ylabel("reconstruction - signal")
    bottom.set_xlabel(f"time ({unit})")
    fig.suptitle(f"Reconstruction of the whole history from the final state: N = {N}, {L:,} samples")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
