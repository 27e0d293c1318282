"""HiPPO-RNN training and inference: the fused op vs the step-by-step cell vs torch.nn.LSTM / GRU.

Models: a recurrent layer (hidden H, input 1) and a linear head on the last output (10 classes).
- ``fused``: :class:`hippo_rs.torch.HiPPORNN` with the LegS :class:`HiPPOCell` (memory order N = H,
  bilinear): one ``torch.ops.hippo_rs.rnn`` op forward, one native BPTT loop backward;
- ``step``: the same cell run step by step by autograd (a subclass that keeps HiPPORNN off the op);
- ``lstm`` / ``gru``: ``torch.nn.LSTM(1, H)`` / ``torch.nn.GRU(1, H)`` (oneDNN / ATen kernels).

Shapes: pMNIST (L = 784, batch 100, H = N = 512) and short (L = 64, batch 50, H = N = 128, the 8x8
digits). For each: one training step (forward, cross-entropy, backward, Adam) and inference
(forward under no_grad), at torch/rayon threads 1 and 2. Best wall time of the repetitions, the
models alternating within a round (load from other processes hits them alike), and the best CPU
time of the process for a training step (less sensitive to a shared machine). Memory: bytes of the
tensors autograd keeps for the backward pass (saved tensors, unique storages) of one training step.

    python benches/bench_rnn.py [--reps 3] [--threads 1 2] [--shapes pMNIST short] [--models fused step lstm gru]
                                [--out benches/results/bench_rnn_cpu.txt] [--append]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time

import torch
import torch.nn.functional as F

import hippo_rs
import hippo_rs.torch as ht


class StepCell(ht.HiPPOCell):
    """The HiPPO cell run step by step (a subclass with its own forward is never fused)."""

    def forward(self, x, state=None, timestamp=None):
        return super().forward(x, state, timestamp)


class Classifier(torch.nn.Module):
    def __init__(self, kind: str, hidden: int):
        super().__init__()
        self.kind = kind
        if kind == "fused":
            self.rnn = ht.HiPPORNN(ht.HiPPOCell(1, hidden))
        elif kind == "step":
            self.rnn = ht.HiPPORNN(StepCell(1, hidden))
        elif kind == "lstm":
            self.rnn = torch.nn.LSTM(1, hidden)
        else:
            self.rnn = torch.nn.GRU(1, hidden)
        self.head = torch.nn.Linear(hidden, 10)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y[-1])


KINDS = ("fused", "step", "lstm", "gru")


def best_times(fns, reps: int, warmups) -> tuple:
    """Best wall time and best CPU time of this process (all its threads) of each function."""
    for warm in warmups:
        warm()
    wall, cpu = [float("inf")] * len(fns), [float("inf")] * len(fns)
    for _ in range(reps):
        for i, fn in enumerate(fns):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[i] = min(wall[i], time.perf_counter() - t0)
            cpu[i] = min(cpu[i], time.process_time() - c0)
    return wall, cpu


def saved_bytes(model, x, labels) -> int:
    """Bytes of the unique storages autograd saves for the backward pass of one training step."""
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x), labels)
    loss.backward()
    model.zero_grad()
    return sum(storages.values())


def bench_shape(L: int, batch: int, hidden: int, threads: int, reps: int, kinds, memory: bool):
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(L, batch, 1, generator=gen)
    labels = torch.randint(0, 10, (batch,), generator=gen)
    models = {}
    for k in kinds:
        torch.manual_seed(0)
        models[k] = Classifier(k, hidden)
    if "step" in models and "fused" in models:  # the same weights: the fused op must agree
        models["step"].load_state_dict(models["fused"].state_dict())
        with torch.no_grad():
            a, b = models["fused"](x[:50]), models["step"](x[:50])
        diff = float((a - b).abs().max() / b.abs().max())
    else:
        diff = float("nan")
    opts = {k: torch.optim.Adam(m.parameters(), lr=1e-3) for k, m in models.items()}

    def train(k, inputs):
        loss = F.cross_entropy(models[k](inputs), labels)
        opts[k].zero_grad()
        loss.backward()
        opts[k].step()

    def infer(k):
        with torch.no_grad():
            models[k](x)

    warm = [lambda k=k: train(k, x[: min(L, 20)]) for k in kinds]
    t_train, c_train = best_times([lambda k=k: train(k, x) for k in kinds], reps, warm)
    t_infer, _ = best_times([lambda k=k: infer(k) for k in kinds], reps, [])
    mem = {k: saved_bytes(models[k], x, labels) for k in kinds} if memory else {}
    return dict(zip(kinds, t_train)), dict(zip(kinds, c_train)), dict(zip(kinds, t_infer)), mem, diff


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            info = fh.read()
        model = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags"))
        avx512 = sorted(f for f in flags if f.startswith("avx512"))
        return f"{model}; AVX-512: {' '.join(avx512) if avx512 else 'no'}"
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _git_rev() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=os.path.dirname(os.path.abspath(__file__)))
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


SHAPES = {"pMNIST": (784, 100, 512), "short": (64, 50, 128)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions (best of)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--models", nargs="+", default=list(KINDS), choices=list(KINDS), help="lstm is always run")
    parser.add_argument("--flush-denormal", action="store_true",
                        help="torch.set_flush_denormal(True): gradients that decay through time become 0, not subnormal")
    parser.add_argument("--append", action="store_true", help="append the table to --out")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "bench_rnn_cpu.txt"))
    args = parser.parse_args()
    torch.set_flush_denormal(args.flush_denormal)

    lines = [
        "HiPPO-RNN (LegS, N = H) fused op vs step by step vs torch.nn.LSTM / GRU, float32, CPU",
        f"cpu: {_cpu_model()}",
        f"{os.cpu_count()} cores, torch {torch.__version__}, hippo_rs {hippo_rs.__version__} (git {_git_rev()}); "
        f"best wall time of {args.reps}; train = forward + cross-entropy + backward + Adam; infer = forward, no_grad",
        "load average at start (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg())
        + f"; flush denormals: {args.flush_denormal}",
        "",
        f"{'shape':<30}{'thr':>4}{'model':>7}{'train s':>10}{'cpu s':>8}{'infer s':>10}{'infer seq/s':>13}"
        f"{'train/LSTM':>12}{'cpu/LSTM':>10}{'saved MB':>10}",
    ]
    print("\n".join(lines), flush=True)
    for name in args.shapes:
        L, batch, hidden = SHAPES[name]
        label = f"{name} L={L} B={batch} H=N={hidden}"
        kinds = tuple(k for k in KINDS if k in args.models or k == "lstm")
        for threads in args.threads:
            t_train, c_train, t_infer, mem, diff = bench_shape(L, batch, hidden, threads, args.reps, kinds, threads == args.threads[0])
            for k in kinds:
                saved = f"{mem[k] / 2**20:>10.0f}" if k in mem else f"{'':>10}"
                row = (
                    f"{label:<30}{threads:>4}{k:>7}{t_train[k]:>10.3f}{c_train[k]:>8.2f}{t_infer[k]:>10.3f}"
                    f"{batch / t_infer[k]:>13.0f}{t_train[k] / t_train['lstm']:>11.2f}x"
                    f"{c_train[k] / c_train['lstm']:>9.2f}x{saved}"
                )
                print(row, flush=True)
                lines.append(row)
            parts = []
            if "step" in kinds and "fused" in kinds:
                parts.append(
                    f"fused vs step: train {t_train['step'] / t_train['fused']:.1f}x faster, infer "
                    f"{t_infer['step'] / t_infer['fused']:.1f}x (max rel diff of outputs {diff:.1e})"
                )
            if "fused" in kinds:
                parts.append(
                    f"fused vs LSTM: train {t_train['fused'] / t_train['lstm']:.2f}x the wall time, "
                    f"{c_train['fused'] / c_train['lstm']:.2f}x the CPU time"
                )
            summary = f"{'':<30}{threads:>4}  " + "; ".join(parts)
            print(summary, flush=True)
            lines.append(summary)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "a" if args.append else "w") as fh:
        fh.write(("\n" if args.append else "") + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
