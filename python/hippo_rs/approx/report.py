"""The human-readable table of ``hippo-rs approx``."""

from __future__ import annotations

from typing import Any, Dict


def report(res: Dict[str, Any]) -> str:
    """The human-readable table."""
    s = res["signal"]
    src = s["input"] if "input" in s else f"white noise, cutoff {s['cutoff']:g} Hz, RMS {s['rms']:g}, seed {s['seed']}"
    lines = [
        f"signal: {src}; {s['length']:,} samples, "
        + ("time in samples" if s["time_unit"] == "samples" else f"dt = {s['dt']:g} s")
        + f", variance {s['variance']:.4g}",
        f"N = {res['order']}, method {res['method']}, state dtype {res['dtype']}; optimal degree-{res['order'] - 1} "
        f"least-squares fit of the record: MSE {res['optimal_mse']:.5g}"
        + ("" if res["optimal_fit"]["converged"] else " (an upper bound: LSQR did not converge)"),
        f"{'measure':<22} {'MSE':>10} {'/optimal':>9} {'steps/s':>12} {'scan s':>8} {'wall s':>8}",
    ]
    unit = "s" if s["time_unit"] == "s" else "samples"
    for r in res["results"]:
        ratio = "n/a" if r["ratio_to_optimal"] is None else f"{r['ratio_to_optimal']:.4g}"
        extra = ", ".join(f"{k} = {v:g}{' ' + unit if k == 'theta' else ''}" for k, v in r["params"].items())
        name = f"{r['measure']} ({extra})" if extra else r["measure"]
        lines.append(
            f"{name:<22} {r['mse']:>10.5g} {ratio:>9} {r['steps_per_s']:>12,.0f} "
            f"{r['scan_s']:>8.2f} {r['wall_s']:>8.2f}"
        )
    tail = f"total {res['total_s']:.2f} s"
    if res["jobs"] > 1:
        tail += f" ({res['jobs']} measures ran side by side; --jobs 1 times each alone)"
    if res["plot"]:
        tail += f"; plot written to {res['plot']}"
    lines.append(tail)
    return "\n".join(lines)
