"""The Figure 4 style plot of ``hippo-rs approx``."""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

#: Points per plotted line (the plot is decimated; the errors are computed on every sample).
PLOT_POINTS = 20_000


def plot(
    path: str,
    x: np.ndarray,
    dt: float,
    recs: Dict[str, np.ndarray],
    fit: np.ndarray,
    N: int,
    unit: str = "s",
    params: Optional[Dict[str, Dict[str, float]]] = None,
) -> None:
    """Figure 4 style: the signal with its reconstructions (whole record, and a zoom on its oldest
    tenth, the hardest part to remember), and the errors over the whole record. Every curve stays
    visible where curves coincide: widest at the bottom (the optimal fit a pale band, LegT a wide
    line), the signal over them, the others thin on top (LMU, the same reconstruction as LegT in
    another normalisation, dashed). ``params`` (the measures' parameters, e.g. the window theta)
    go into the legend."""
    params = params or {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    L = x.size
    zoom = max(2, L // 10)
    fig, (top, mid, bottom) = plt.subplots(3, 1, figsize=(12, 9), gridspec_kw={"height_ratios": [2, 1.5, 1]})
    style = {
        "legs": dict(color="tab:red", lw=1.0, zorder=5),
        "legt": dict(color="tab:blue", lw=3.5, alpha=0.6, zorder=2),
        "lmu": dict(color="tab:green", lw=1.0, ls=(0, (4, 3)), zorder=6),
        "fout": dict(color="tab:purple", lw=1.0, zorder=4),
        "lagt": dict(color="tab:orange", lw=1.0, zorder=4),
        "glagt": dict(color="tab:brown", lw=1.0, ls=(0, (1, 1)), zorder=4),
    }

    def name_of(measure: str) -> str:
        extra = ", ".join(f"{k} = {v:g}{' ' + unit if k == 'theta' else ''}" for k, v in params.get(measure, {}).items())
        return f"{measure} ({extra})" if extra else measure

    def lines(ax: Any, stop: int, legend: bool) -> None:
        step = max(1, stop // PLOT_POINTS)
        tt = np.arange(0, stop, step) * dt
        ax.plot(tt, x[:stop:step], color="black", lw=1.6, label="signal", zorder=3)
        for name, rec in recs.items():
            label = f"{name_of(name)}: MSE {np.mean((rec - x) ** 2):.3g}" if legend else None
            ax.plot(tt, rec[:stop:step], label=label, **style.get(name, dict(lw=1.0)))
        label = f"optimal degree-{N - 1} fit: MSE {np.mean((fit - x) ** 2):.3g}" if legend else None
        ax.plot(tt, fit[:stop:step], lw=7.0, alpha=0.35, color="tab:gray", label=label, zorder=1,
                solid_capstyle="butt")
        ax.set_xlim(0, (stop - 1) * dt)

    lines(top, L, True)
    top.set_ylabel("whole record")
    top.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8, ncol=min(3, len(recs) + 2), frameon=False)
    lines(mid, zoom, False)
    mid.set_ylabel("oldest tenth (zoom)")
    step = max(1, L // PLOT_POINTS)
    tt = np.arange(0, L, step) * dt
    for name, rec in recs.items():
        bottom.plot(tt, (rec - x)[::step], **{**style.get(name, {}), "lw": 0.8 if name != "legt" else 1.8})
    bottom.axhline(0.0, color="black", lw=0.5)
    bottom.set_xlim(0, (L - 1) * dt)
    bottom.set_ylabel("reconstruction - signal")
    bottom.set_xlabel(f"time ({unit})")
    fig.suptitle(f"Reconstruction of the whole history from the final state: N = {N}, {L:,} samples")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
