"""Structured HiPPO ops (hippo_rs.torch, Rust CPU kernels) vs the dense PyTorch implementation.

Dense = what the original HiPPO code does (``model/memory.py``, ``LSICell``): precompute the per-step
LegS transition matrices ``A_t = (I - A/(2t))^-1 (I + A/(2t))``, ``B_t = (I - A/(2t))^-1 B/t``
(bilinear, original convention) for every step and apply them with ``F.linear``; autograd does the
backward pass. Structured = ``hippo_rs.torch.scan`` / ``HiPPOCell`` (O(N) per step forward and
backward). Both use the same first-sample reset (step 0: ``c = f e_0``) so their outputs agree.

1. memory forward+backward over a sequence: batch 100, L = 784, N = 256 and 512, one memory unit;
2. one training step (forward, backward, Adam) of a HiPPO-LegS RNN classifier (hidden 512,
   N = 512, input 1, 10 classes, batch 100, L = 784) with the structured vs the dense memory.

    python benches/bench_torch.py [--reps 5] [--rnn-reps 2] [--out benches/results/bench_torch_cpu.txt]
    THP_MEM_ALLOC_ENABLE=1 python benches/bench_torch.py --append   # torch's huge-page allocator (both sides)
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time

import hippo_rs
import hippo_rs.torch as ht
import numpy as np
import scipy.linalg as sla
import torch
import torch.nn.functional as F


def dense_legs_matrices(N: int, L: int):
    """Stacked per-step LegS matrices for steps 0..L-1 (float32), as the original code precomputes."""
    A, B = hippo_rs.transition("legs", N)
    I = np.eye(N)
    A_st = np.zeros((L, N, N), dtype=np.float32)
    B_st = np.zeros((L, N), dtype=np.float32)
    B_st[0, 0] = 1.0  # step 0 absorbs the first sample: c = f e0
    for t in range(1, L):
        At = A / t
        lhs = I - At / 2
        A_st[t] = sla.solve_triangular(lhs, I + At / 2, lower=True)
        B_st[t] = sla.solve_triangular(lhs, B / t, lower=True)
    return torch.from_numpy(A_st), torch.from_numpy(B_st)


def dense_scan(f: torch.Tensor, A_st: torch.Tensor, B_st: torch.Tensor) -> torch.Tensor:
    """f (L, B) -> all states (L, B, N): c_t = A_t c_{t-1} + B_t f_t with F.linear."""
    c = f.new_zeros(f.shape[1], A_st.shape[-1])
    out = []
    for t in range(f.shape[0]):
        c = F.linear(c, A_st[t]) + f[t, :, None] * B_st[t]
        out.append(c)
    return torch.stack(out)


def best_times(fns, reps: int, warmups=None) -> list:
    """Best wall time of each function over ``reps`` rounds; the functions alternate within a round so
    that load from other processes on a shared machine hits them alike."""
    for warm in warmups or fns:
        warm()
    best = [float("inf")] * len(fns)
    for _ in range(reps):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def bench_memory(N: int, L: int, batch: int, reps: int, mats):
    gen = torch.Generator().manual_seed(0)
    f = torch.randn(L, batch, generator=gen)
    w = torch.randn(L, batch, N, generator=gen)

    def run(scan_fn):  # forward, then backward of a given upstream gradient w = dLoss/dc
        x = f.clone().requires_grad_()
        c = scan_fn(x)
        c.backward(w)
        return c.detach(), x.grad

    structured = lambda x: ht.scan(x, N)  # noqa: E731
    dense = lambda x: dense_scan(x, *mats)  # noqa: E731
    (c_s, g_s), (c_d, g_d) = run(structured), run(dense)
    err = max(
        ((c_s - c_d).abs().max() / c_d.abs().max()).item(),
        ((g_s - g_d).abs().max() / g_d.abs().max()).item(),
    )
    ts, td = best_times([lambda: run(structured), lambda: run(dense)], reps)
    return ts, td, err


class DenseLegSCell(ht.HiPPOCell):
    """The same HiPPO-LegS cell with the memory update done by the dense stacked matrices."""

    def __init__(self, *args, mats, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("A_st", mats[0], persistent=False)
        self.register_buffer("B_st", mats[1], persistent=False)

    def memory_step(self, c, f, t, timestamp=None):
        k = int(t[0])  # every row of the batch is at the same step
        return F.linear(c, self.A_st[k]) + f[..., None] * self.B_st[k], t + 1


class Classifier(torch.nn.Module):
    def __init__(self, cell, classes: int = 10):
        super().__init__()
        self.rnn = ht.HiPPORNN(cell)
        self.head = torch.nn.Linear(cell.hidden_size, classes)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y[-1])


def bench_rnn(hidden: int, L: int, batch: int, reps: int, mats):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(L, batch, 1, generator=gen)
    labels = torch.randint(0, 10, (batch,), generator=gen)
    torch.manual_seed(0)
    structured = Classifier(ht.HiPPOCell(1, hidden, memory_order=hidden))
    torch.manual_seed(0)
    dense = Classifier(DenseLegSCell(1, hidden, memory_order=hidden, mats=mats))
    with torch.no_grad():
        ref = dense(x[:50])
        err = ((structured(x[:50]) - ref).abs().max() / ref.abs().max()).item()

    def train_step(model, opt, inputs):
        loss = F.cross_entropy(model(inputs), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()

    opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in (structured, dense)]
    steps = [lambda m=m, o=o: train_step(m, o, x) for m, o in zip((structured, dense), opts)]
    warmups = [lambda m=m, o=o: train_step(m, o, x[:20]) for m, o in zip((structured, dense), opts)]
    ts, td = best_times(steps, reps, warmups)  # warm-up on a short sequence (allocator, threads)
    return ts, td, err


def _git_rev() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=os.path.dirname(os.path.abspath(__file__)))
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--L", type=int, default=784)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--N", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions of the memory (best of)")
    parser.add_argument("--rnn-reps", type=int, default=2, help="timed training steps per RNN (best of)")
    parser.add_argument("--skip-rnn", action="store_true")
    parser.add_argument("--append", action="store_true", help="append the table to --out")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "bench_torch_cpu.txt"))
    args = parser.parse_args()

    lines = [
        "hippo_rs.torch vs dense PyTorch (per-step matrices + F.linear, as the original HiPPO code), float32, CPU",
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), hippo_rs {hippo_rs.__version__} (git {_git_rev()})",
        f"L = {args.L}, batch = {args.batch}, one memory unit, LegS bilinear; best of the timed repetitions; "
        f"THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')} (torch huge pages for large tensors)",
        "",
        f"{'benchmark':<44}{'structured s':>14}{'dense s':>12}{'speed-up':>10}{'max rel diff':>14}",
    ]
    print("\n".join(lines), flush=True)
    mats_cache = {}
    for N in args.N:
        t0 = time.perf_counter()
        mats_cache[N] = dense_legs_matrices(N, args.L)
        setup = time.perf_counter() - t0
        ts, td, err = bench_memory(N, args.L, args.batch, args.reps, mats_cache[N])
        name = f"memory fwd+bwd N={N} (dense setup {setup:.1f} s)"
        row = f"{name:<44}{ts:>14.3f}{td:>12.3f}{td / ts:>9.1f}x{err:>14.1e}"
        print(row, flush=True)
        lines.append(row)
    if not args.skip_rnn:
        H = args.hidden
        mats = mats_cache.get(H) or dense_legs_matrices(H, args.L)
        ts, td, err = bench_rnn(H, args.L, args.batch, args.rnn_reps, mats)
        row = f"{f'LegS RNN train step hidden=N={H}':<44}{ts:>14.3f}{td:>12.3f}{td / ts:>9.1f}x{err:>14.1e}"
        print(row, flush=True)
        lines.append(row)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "a" if args.append else "w") as fh:
        fh.write(("\n" if args.append else "") + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
