"""GPU benchmarks of the hippo_rs CUDA kernels. Needs a CUDA device:

    python benches/bench_cuda.py [--quick] [--out benches/results]

Measures, all float32 on the current device:
1. the device copy bandwidth: ``dst.copy_(src)`` of 2 GiB, bytes read + written / time;
2. ``gbt_scan`` (LegS bilinear, return_all) for B*M = 4096 rows, L = 1024, N = 64 / 256 / 1024:
   forward and forward + backward (``gbt_scan_backward``), as time and as bytes moved / time
   (forward: f, c0, coef read, states written; backward: grad read, grad_f, grad_c0 written)
   against the copy bandwidth; and the dense PyTorch scan on the same shapes (per-step matrices
   Ad_k = (I - a_i A)^-1 (I + a_e A), Bd_k = a_b (I - a_i A)^-1 B; c_k = c_{k-1} Ad_k^T + f_k Bd_k^T,
   one matmul per step), with the speed-up;
3. ``gbt_step`` latency (one launch through the torch op, R = 100 and 4096 rows, N = 512);
4. a training step (forward, cross-entropy, backward, Adam) at the permuted-MNIST shape (batch 100,
   hidden 512, N = 512, L = 784, 10 classes) of the LegS ``HiPPOCell`` run over the sequence by the
   fused op ``hippo_rs::rnn`` (coefficient rows precomputed), the same through ``hippo_rs.torch.HiPPORNN``,
   a HiPPO-LegS RNN written step by step in PyTorch with the step op memory and with the dense memory,
   and ``torch.nn.LSTM(1, 512)`` (cuDNN); eager and, where capture works, replayed as a CUDA graph;
   with the ratios fused / LSTM;
5. inference at the same shape (forward only, no autograd): the LegS cell through the fused op
   against the LSTM, as time per batch and sequences per second.
Timings are medians over repeats, bracketed by CUDA events after warm-up. The raw figures go to
``<out>/bench_cuda_<device>_<UTC time>.json`` (with the device name, torch and CUDA versions and the
git commit) and the table to a ``.txt`` beside it. Exit status 1 with a message when there is no
CUDA device.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List

import torch
from torch import nn

GiB = 1024**3


def median_ms(fn: Callable[[], object], warmup: int = 2, iters: int = 10) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def copy_bandwidth() -> Dict[str, float]:
    n = 2 * GiB // 4
    src = torch.empty(n, dtype=torch.float32, device="cuda").normal_()
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), warmup=3, iters=10)
    return {"bytes": 2 * n * 4, "ms": ms, "GBps": 2 * n * 4 / ms / 1e6}


# --------------------------------------------------------------------------------------------------
# LegS matrices and coefficient rows (the code sign of rust/core/src/measure.rs)
# --------------------------------------------------------------------------------------------------


def legs_AB(N: int, dtype=torch.float64, device="cuda"):
    n = torch.arange(N, dtype=dtype, device=device)
    r = torch.sqrt(2 * n + 1)
    A = -torch.tril(torch.outer(r, r), -1) - torch.diag(n + 1)
    return A, r


def legs_coef(L: int, alpha: float = 0.5, device="cuda") -> torch.Tensor:
    """Original-convention LegS rows: t = 0 reset (+inf, 0, 0), then (alpha/t, (1-alpha)/t, 1/t)."""
    t = torch.arange(L, dtype=torch.float64, device=device)
    inv = 1.0 / t.clamp(min=1)
    coef = torch.stack([alpha * inv, (1 - alpha) * inv, inv], dim=-1)
    coef[0] = torch.tensor([math.inf, 0.0, 0.0], dtype=torch.float64)
    return coef


def dense_steps(coef: torch.Tensor, N: int, dtype=torch.float32, chunk: int = 64):
    """Per-step dense (Ad_k, Bd_k) of the GBT rows (reset row: Ad = 0, Bd = e0), built in float64."""
    A, B = legs_AB(N, device=coef.device)
    I = torch.eye(N, dtype=torch.float64, device=coef.device)
    L = coef.shape[0]
    Ad = torch.empty(L, N, N, dtype=dtype, device=coef.device)
    Bd = torch.empty(L, N, dtype=dtype, device=coef.device)
    for k0 in range(0, L, chunk):
        c = coef[k0 : k0 + chunk]
        reset = torch.isinf(c[:, 0])
        ai = torch.where(reset, torch.zeros_like(c[:, 0]), c[:, 0])
        lhs = I - ai[:, None, None] * A
        rhs = torch.cat([I + c[:, 1, None, None] * A, (c[:, 2, None] * B)[:, :, None]], dim=2)
        sol = torch.linalg.solve(lhs, rhs)
        sol[reset] = 0
        sol[reset, 0, N] = 1
        Ad[k0 : k0 + chunk] = sol[:, :, :N].to(dtype)
        Bd[k0 : k0 + chunk] = sol[:, :, N].to(dtype)
    return Ad, Bd


def dense_scan(f: torch.Tensor, c0: torch.Tensor, Ad: torch.Tensor, Bd: torch.Tensor) -> torch.Tensor:
    out = torch.empty(f.shape[0], *c0.shape, dtype=f.dtype, device=f.device)
    c = c0
    for k in range(f.shape[0]):
        c = torch.addmm(f[k, :, None] * Bd[k], c, Ad[k].T)
        out[k] = c
    return out


# --------------------------------------------------------------------------------------------------
# 2. scan throughput
# --------------------------------------------------------------------------------------------------


def scan_row(R: int, L: int, N: int, coef: torch.Tensor, copy_GBps: float, dense: bool) -> Dict[str, object]:
    """One N: its tensors are freed when it returns (the largest case holds ~32 GiB)."""
    ops = torch.ops.hippo_rs
    f = torch.randn(L, R, device="cuda")
    c0 = torch.zeros(R, N, device="cuda")
    state_bytes = L * R * N * 4
    fwd_bytes = f.numel() * 4 + c0.numel() * 4 + coef.numel() * 8 + state_bytes
    bwd_bytes = state_bytes + coef.numel() * 8 + L * R * 4 + R * N * 4
    row: Dict[str, object] = {"R": R, "L": L, "N": N, "dtype": "float32", "measure": "legs", "method": "bilinear"}
    row["fwd_ms"] = median_ms(lambda: ops.gbt_scan(f, c0, coef, "legs", [], True))
    row["fwd_GBps"] = fwd_bytes / row["fwd_ms"] / 1e6
    row["fwd_frac_copy_bw"] = row["fwd_GBps"] / copy_GBps
    grad = torch.randn(L, R, N, device="cuda")

    def fwd_bwd():
        ops.gbt_scan(f, c0, coef, "legs", [], True)
        ops.gbt_scan_backward(grad, coef, "legs", [], True, N)

    row["fwd_bwd_ms"] = median_ms(fwd_bwd)
    row["fwd_bwd_GBps"] = (fwd_bytes + bwd_bytes) / row["fwd_bwd_ms"] / 1e6
    row["fwd_bwd_frac_copy_bw"] = row["fwd_bwd_GBps"] / copy_GBps
    grad = None  # frees ~L R N floats before the dense baseline allocates its matrices
    if dense:
        torch.cuda.empty_cache()
        try:
            Ad, Bd = dense_steps(coef, N)
            row["dense_fwd_ms"] = median_ms(lambda: dense_scan(f, c0, Ad, Bd), warmup=1, iters=3)
            row["speedup_vs_dense_fwd"] = row["dense_fwd_ms"] / row["fwd_ms"]
        except torch.cuda.OutOfMemoryError as exc:
            row["dense_fwd_ms"] = f"out of memory: {exc}".splitlines()[0]
    return row


def bench_scan(R: int, L: int, Ns: List[int], copy_GBps: float, dense_max_N: int) -> List[Dict]:
    coef = legs_coef(L)
    rows = []
    for N in Ns:
        torch.cuda.empty_cache()
        rows.append(scan_row(R, L, N, coef, copy_GBps, N <= dense_max_N))
    return rows


# --------------------------------------------------------------------------------------------------
# 3. step latency
# --------------------------------------------------------------------------------------------------


def bench_step(N: int = 512) -> List[Dict]:
    ops = torch.ops.hippo_rs
    k = torch.tensor([0.05, 0.05, 0.1], dtype=torch.float64, device="cuda")
    rows = []
    for R in (100, 4096):
        c = torch.randn(R, N, device="cuda")
        f = torch.randn(R, device="cuda")
        reps = 200
        ms = median_ms(lambda: [ops.gbt_step(c, f, k, "legs", []) for _ in range(reps)], iters=5)
        rows.append({"R": R, "N": N, "us_per_step": ms * 1e3 / reps})
    return rows


# --------------------------------------------------------------------------------------------------
# 4. pMNIST-shape training step
# --------------------------------------------------------------------------------------------------


class HiPPOLegSRNN(nn.Module):
    """HiPPO-RNN cell of the paper (one memory unit; Gu et al. 2020, Sec. 5 and App. E): f = W_f[x, h];
    c = LegS step (op or dense per-step matrices); h~ = tanh(W_h[x, c]); g = sigmoid(W_g[x, c]);
    h = (1 - g) h + g h~; logits from the last h."""

    def __init__(self, L: int, d_in: int, hidden: int, N: int, classes: int, memory: str):
        super().__init__()
        self.hidden, self.N, self.memory = hidden, N, memory
        self.W_f = nn.Linear(d_in + hidden, 1)
        self.W_hg = nn.Linear(d_in + N, 2 * hidden)
        self.head = nn.Linear(hidden, classes)
        coef = legs_coef(L)
        self.register_buffer("coef", coef)
        if memory == "dense":
            Ad, Bd = dense_steps(coef, N)
            self.register_buffer("Ad_T", Ad.transpose(1, 2).contiguous())
            self.register_buffer("Bd", Bd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (L, B, d_in)
        L, B, _ = x.shape
        h = x.new_zeros(B, self.hidden)
        c = x.new_zeros(B, self.N)
        for t in range(L):
            f = self.W_f(torch.cat([x[t], h], -1))
            if self.memory == "op":
                c = torch.ops.hippo_rs.gbt_step(c, f.squeeze(-1), self.coef[t], "legs", [])
            else:
                c = torch.addmm(f * self.Bd[t], c, self.Ad_T[t])
            hh, g = self.W_hg(torch.cat([x[t], c], -1)).chunk(2, -1)
            g = torch.sigmoid(g)
            h = (1 - g) * h + g * torch.tanh(hh)
        return self.head(h)


class FusedHiPPORNN(nn.Module):
    """The LegS ``HiPPOCell`` (bilinear, gated, one memory unit) over the sequence as one op per direction
    (``hippo_rs::rnn``), its coefficient rows precomputed (a buffer, so that a CUDA graph can capture the
    step); logits from the last output."""

    def __init__(self, L: int, d_in: int, hidden: int, N: int, classes: int):
        super().__init__()
        import hippo_rs.torch as ht

        self.cell = ht.HiPPOCell(d_in, hidden, memory_order=N)
        self.head = nn.Linear(hidden, classes)
        self.register_buffer("coef", ht.gbt_coefficients(L, measure="legs"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        L, B, c = x.shape[0], x.shape[1], self.cell
        lengths = torch.full((B,), L, dtype=torch.int64, device=x.device)
        h0, c0 = x.new_zeros(B, c.hidden_size), x.new_zeros(B, 1, c.memory_order)
        y, *_ = torch.ops.hippo_rs.rnn(x, h0, c0, self.coef, lengths, c.W_f.weight, c.W_f.bias, c.W_h.weight,
                                       c.W_h.bias, c.W_g.weight, c.W_g.bias, "legs", [], True, None)
        return self.head(y[-1])


class HiPPORNNClassifier(nn.Module):
    """``hippo_rs.torch.HiPPORNN`` (LegS, the fused op on CUDA) as a user writes it; logits from the last
    output."""

    def __init__(self, d_in: int, hidden: int, N: int, classes: int):
        super().__init__()
        import hippo_rs.torch as ht

        self.rnn = ht.HiPPORNN("legs", d_in, hidden, memory_order=N)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[-1])


class LSTMClassifier(nn.Module):
    def __init__(self, d_in: int, hidden: int, classes: int):
        super().__init__()
        self.lstm = nn.LSTM(d_in, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[-1])


def train_row(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Dict[str, object]:
    """Eager and CUDA-graph time of one training step (forward, loss, backward, Adam)."""
    model = model.cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True)

    def step():
        opt.zero_grad(set_to_none=False)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    L, B = x.shape[0], x.shape[1]
    row: Dict[str, object] = {"model": name, "L": L, "batch": B}
    row["eager_ms"] = median_ms(step, warmup=2, iters=5)
    try:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):
                step()
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        row["cuda_graph_ms"] = median_ms(graph.replay, warmup=2, iters=10)
    except Exception as exc:  # capture is best effort; the reason is recorded
        row["cuda_graph_ms"] = f"capture failed: {type(exc).__name__}: {exc}".splitlines()[0]
    return row


def bench_train(L: int, B: int, hidden: int, N: int) -> List[Dict]:
    rows = []
    x = torch.randn(L, B, 1, device="cuda")
    y = torch.randint(0, 10, (B,), device="cuda")
    models = {
        "hippo_rnn_fused": lambda: FusedHiPPORNN(L, 1, hidden, N, 10),
        "hippo_legs_op": lambda: HiPPOLegSRNN(L, 1, hidden, N, 10, "op"),
        "hippo_legs_dense": lambda: HiPPOLegSRNN(L, 1, hidden, N, 10, "dense"),
        "lstm_cudnn": lambda: LSTMClassifier(1, hidden, 10),
        # last: HiPPORNN builds its coefficient rows on the device in each call, which a capture may refuse
        "hippo_rnn_module": lambda: HiPPORNNClassifier(1, hidden, N, 10),
    }
    for name, make in models.items():
        torch.cuda.empty_cache()
        rows.append({**train_row(name, make(), x, y), "hidden": hidden, "N": N})
    by = {r["model"]: r for r in rows}
    for key in ("eager_ms", "cuda_graph_ms"):
        op, dense, lstm = (by[m].get(key) for m in ("hippo_legs_op", "hippo_legs_dense", "lstm_cudnn"))
        if all(isinstance(v, float) for v in (op, dense, lstm)):
            by["hippo_legs_op"][f"{key}_speedup_vs_dense"] = dense / op
            by["hippo_legs_op"][f"{key}_ratio_to_lstm"] = op / lstm
        fused = by["hippo_rnn_fused"].get(key)
        if isinstance(fused, float) and isinstance(lstm, float):
            by["hippo_rnn_fused"][f"{key}_ratio_to_lstm"] = fused / lstm
        if isinstance(fused, float) and isinstance(op, float):
            by["hippo_rnn_fused"][f"{key}_speedup_vs_step_by_step"] = op / fused
    return rows


def bench_infer(L: int, B: int, hidden: int, N: int) -> List[Dict]:
    """Forward only (no autograd) at the training shape: time per batch and sequences per second."""
    x = torch.randn(L, B, 1, device="cuda")
    rows = []
    for name, make in (("hippo_rnn_fused", lambda: FusedHiPPORNN(L, 1, hidden, N, 10)),
                       ("lstm_cudnn", lambda: LSTMClassifier(1, hidden, 10))):
        torch.cuda.empty_cache()
        model = make().cuda().eval()
        with torch.no_grad():
            ms = median_ms(lambda: model(x), warmup=2, iters=10)
        rows.append({"model": name, "L": L, "batch": B, "hidden": hidden, "N": N, "ms": ms,
                     "sequences_per_s": B / ms * 1e3})
    rows[0]["ratio_to_lstm"] = rows[0]["ms"] / rows[1]["ms"]
    return rows


# --------------------------------------------------------------------------------------------------


def environment() -> Dict[str, object]:
    props = torch.cuda.get_device_properties(0)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "device": torch.cuda.get_device_name(0),
        "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
        "memory_GiB": props.total_memory / GiB,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "python": platform.python_version(),
        "git_commit": commit,
        "utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def table(results: Dict[str, object]) -> str:
    lines = [f"{k}: {v}" for k, v in results["environment"].items()]
    lines.append(f"copy bandwidth: {results['copy']['GBps']:.0f} GB/s")
    for section in ("scan", "step", "infer", "train"):
        for row in results[section]:
            lines.append(f"{section}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                    for k, v in row.items()))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes (a smoke run, not the reported figures)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"), help="directory for the raw output")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_cuda: no CUDA device (torch.cuda.is_available() is False); nothing measured", file=sys.stderr)
        return 1
    import hippo_rs.torch  # noqa: F401  (defines the ops)
    from hippo_rs.torch import _cuda

    _cuda.load()  # build outside the timings
    torch.backends.cuda.matmul.allow_tf32 = False  # the dense baseline in full float32, like the kernels
    results: Dict[str, object] = {"environment": environment(), "quick": args.quick}
    results["copy"] = copy_bandwidth()
    if args.quick:
        results["scan"] = bench_scan(256, 128, [64, 256], results["copy"]["GBps"], 256)
        results["step"] = bench_step()
        results["infer"] = bench_infer(32, 100, 64, 64)
        results["train"] = bench_train(32, 100, 64, 64)
    else:
        results["scan"] = bench_scan(4096, 1024, [64, 256, 1024], results["copy"]["GBps"], 1024)
        results["step"] = bench_step()
        results["infer"] = bench_infer(784, 100, 512, 512)
        results["train"] = bench_train(784, 100, 512, 512)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    device = "".join(ch if ch.isalnum() else "_" for ch in results["environment"]["device"])
    stem = out / f"bench_cuda_{device}_{stamp}{'_quick' if args.quick else ''}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    text = table(results)
    stem.with_suffix(".txt").write_text(text + "\n")
    print(text)
    print(f"raw output: {stem}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
