"""The training loop: seeded, data-parallel under ``torchrun`` (DDP: gloo on CPU, NCCL on GPU), an
atomic checkpoint every epoch, and a run directory with ``config.json``, ``metrics.csv``,
``checkpoint.pt``, ``results.json`` and ``curves.png``.

Exact resume: the order of the training samples in epoch e is ``default_rng([seed, e])``'s
permutation, and the checkpoint holds the model, the optimizer, the RNG states and the metrics of
every finished epoch, so a run resumed after a kill ends with the same weights and metrics as an
uninterrupted one. Data parallel: each global batch (``--batch-size`` rows) is dealt to the K
processes (rows r, r + K, ...); each process's loss is its rows' loss sum times K / batch, so DDP's
gradient average is the gradient of the global batch's mean loss, as in one process.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import random
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .errors import ExperimentError
from .models import build_model
from .tasks.base import Split, TaskData

CHECKPOINT, CONFIG, METRICS, RESULTS, CURVES = "checkpoint.pt", "config.json", "metrics.csv", "results.json", "curves.png"
#: Rows per evaluation batch (no gradients: larger than the training batch).
EVAL_BATCH = 500
#: Seconds between progress lines when stderr is not a terminal.
LOG_EVERY_S = 5.0


# -- distributed ----------------------------------------------------------------------------------
def _world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else the CPU; under torchrun, ``cuda`` is this process's GPU
    (``cuda:LOCAL_RANK``)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ExperimentError(f"--device {name}: CUDA is not available here (use --device cpu)")
    if name == "cuda" and _world() > 1:
        name = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    try:
        return torch.device(name)
    except RuntimeError:
        raise ExperimentError(f"--device: expected auto, cpu, cuda or cuda:K, got {name!r}") from None


def distributed(device: torch.device) -> Tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun (WORLD_SIZE > 1):
    NCCL for GPUs, gloo for CPUs."""
    if _world() > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (identity in one process)."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def leave() -> None:
    """Leaves the process group, if any."""
    if dist.is_initialized():
        dist.destroy_process_group()


# -- files ----------------------------------------------------------------------------------------
def _atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader (or a kill) sees the old file or the new one."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: str, obj: Any) -> None:
    _atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())


def _write_metrics(path: str, rows: List[Dict[str, float]]) -> None:
    out = io.StringIO()
    if rows:
        w = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    _atomic_write(path, out.getvalue().encode())


def _save_checkpoint(path: str, state: Dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    _atomic_write(path, buf.getvalue())


# -- progress -------------------------------------------------------------------------------------
class Progress:
    """tqdm bar on a terminal; otherwise a plain line every few seconds (rank 0 only)."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.total, self.desc, self.enabled, self.n = total, desc, enabled, 0
        self.t0 = self.last = time.perf_counter()
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="step", leave=False, dynamic_ncols=True)

    def update(self, **stats: float) -> None:
        self.n += 1
        text = " ".join(f"{k} {v:.4g}" for k, v in stats.items())
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update()
        elif self.enabled and time.perf_counter() - self.last >= LOG_EVERY_S:
            self.last = time.perf_counter()
            rate = self.n / (self.last - self.t0)
            print(f"{self.desc} step {self.n}/{self.total} {text} {rate:.2f} steps/s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# -- loss and metric ------------------------------------------------------------------------------
def metric_name(kind: str) -> str:
    return "mse" if kind == "regress" else "acc"


def _loss_and_hits(kind: str, out: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """Per-row loss (b,), the metric's sum (correct predictions or squared errors), its count."""
    if kind == "regress":
        sq = (out[:, 0] - y) ** 2
        return sq, sq.detach().sum(), len(y)
    if kind == "copy":  # out (b, K, classes), y (b, K)
        ce = F.cross_entropy(out.transpose(1, 2), y, reduction="none").mean(dim=1)
        return ce, (out.detach().argmax(-1) == y).sum(), y.numel()
    return F.cross_entropy(out, y, reduction="none"), (out.detach().argmax(-1) == y).sum(), len(y)


def _batch(split: Split, rows: np.ndarray, device: torch.device):
    return (
        torch.from_numpy(split.x[rows]).to(device),
        torch.from_numpy(np.ascontiguousarray(split.y[rows])).to(device),
        torch.from_numpy(split.times[rows]).to(device),
    )


def _reduce(values: List[float], device: torch.device) -> List[float]:
    if not dist.is_initialized():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


@torch.no_grad()
def evaluate(model: nn.Module, data: TaskData, split: Split, device: torch.device, rank: int, world: int):
    """(mean loss, metric) over ``split``; the rows are shared out between the processes."""
    model.eval()
    rows = np.arange(len(split))[rank::world]
    loss = hits = count = 0.0
    for start in range(0, len(rows), EVAL_BATCH):
        x, y, t = _batch(split, rows[start : start + EVAL_BATCH], device)
        per, h, c = _loss_and_hits(data.kind, model(x, t, data.outputs_last), y)
        loss, hits, count = loss + float(per.sum()), hits + float(h), count + c
    loss, hits, count, n = _reduce([loss, hits, count, float(len(rows))], device)
    return loss / n, hits / count


# -- the run --------------------------------------------------------------------------------------
def _versions() -> Dict[str, str]:
    import hippo_rs

    return {"hippo_rs": hippo_rs.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({torch.get_num_threads()} threads)"


def _rng_state() -> Dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train(config: Dict[str, Any], data: TaskData, run_dir: str, resume: bool) -> Dict[str, Any]:
    """Trains ``config["model"]`` on ``data`` for ``config["epochs"]`` epochs in ``run_dir`` (after
    writing ``config.json`` there); returns the results (also written to ``results.json``)."""
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    main = rank == 0
    device = resolve_device(config["device"])
    torch.set_num_threads(config["threads"])
    seed, epochs, bs = config["seed"], config["epochs"], config["batch_size"]
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    model = build_model(config["model"], data.input_size, config["hidden"], data.n_out).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    history: List[Dict[str, float]] = []
    start_epoch, wall, steps_done, train_time, cpu = 0, 0.0, 0, 0.0, 0.0
    ckpt_path = os.path.join(run_dir, CHECKPOINT)
    if resume:
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        start_epoch, history = state["epoch"], state["history"]
        wall, steps_done, train_time = state["wall_time_s"], state["steps"], state["train_time_s"]
        cpu = state["cpu_time_s"]
        if epochs < start_epoch:
            raise ExperimentError(f"--epochs {epochs}: the run has already finished {start_epoch} epochs")
    if main:
        write_json(os.path.join(run_dir, CONFIG), config)
    net = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    m = metric_name(data.kind)
    n = len(data.train)
    n_steps = -(-n // bs)
    for epoch in range(start_epoch, epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        net.train()
        order = np.random.default_rng([seed, epoch]).permutation(n)
        progress = Progress(n_steps, f"epoch {epoch + 1}/{epochs}", main)
        loss_sum = hits = count = 0.0
        for start in range(0, n, bs):
            chunk = order[start : start + bs]
            rows, weight = chunk[rank::world], 1.0
            if len(rows) == 0:  # fewer rows than processes: a zero-weight stand-in keeps DDP in step
                rows, weight = chunk[:1], 0.0
            x, y, t = _batch(data.train, rows, device)
            per, h, c = _loss_and_hits(data.kind, net(x, t, data.outputs_last), y)
            loss = per.sum() * (weight * world / len(chunk))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += weight * float(per.detach().sum())
            hits, count = hits + weight * float(h), count + weight * c
            progress.update(loss=float(per.detach().mean()), **{m: float(h) / c})
        progress.close()
        epoch_train_s = time.perf_counter() - t0
        loss_sum, hits, count = _reduce([loss_sum, hits, count], device)
        val_loss, val_m = evaluate(model, data, data.val, device, rank, world)
        test_loss, test_m = evaluate(model, data, data.test, device, rank, world)
        elapsed = time.perf_counter() - t0
        wall, steps_done, train_time = wall + elapsed, steps_done + n_steps, train_time + epoch_train_s
        cpu += time.process_time() - c0
        history.append({
            "epoch": epoch + 1, "train_loss": loss_sum / n, f"train_{m}": hits / count,
            "val_loss": val_loss, f"val_{m}": val_m, "test_loss": test_loss, f"test_{m}": test_m,
            "epoch_time_s": round(elapsed, 3), "steps_per_s": round(n_steps / epoch_train_s, 3),
            "wall_time_s": round(wall, 3),
        })
        if main:
            _write_metrics(os.path.join(run_dir, METRICS), history)
            _save_checkpoint(ckpt_path, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": _rng_state(),
                "epoch": epoch + 1, "history": history, "wall_time_s": wall, "steps": steps_done,
                "train_time_s": train_time, "cpu_time_s": cpu, "config": config,
            })
            r = history[-1]
            print(f"epoch {epoch + 1}/{epochs}: train loss {r['train_loss']:.4f} {m} {r[f'train_{m}']:.4f} | "
                  f"val {m} {val_m:.4f} | test {m} {test_m:.4f} | {elapsed:.1f} s", flush=True)
        if dist.is_initialized():
            dist.barrier()
    params = sum(p.numel() for p in model.parameters())
    results = summarize(config, data, history, wall, steps_done, train_time, cpu, device, world, params)
    if main:
        write_json(os.path.join(run_dir, RESULTS), results)
        from .plots import plot_curves

        plot_curves(history, m, f"{config['task']} / {config['model']}", os.path.join(run_dir, CURVES))
    return results


def summarize(config, data: TaskData, history, wall, steps, train_time, cpu, device, world, params) -> Dict[str, Any]:
    """``cpu_time_s``: rank 0's CPU seconds (with one thread, its wall time on an otherwise idle core)."""
    m = metric_name(data.kind)
    pick = min if m == "mse" else max
    best = pick(history, key=lambda r: r[f"val_{m}"]) if history else None
    final = history[-1] if history else None
    return {
        "task": config["task"], "model": config["model"], "metric": m,
        "final": None if final is None else {"epoch": final["epoch"], f"val_{m}": final[f"val_{m}"],
                                             f"test_{m}": final[f"test_{m}"]},
        "best": None if best is None else {"epoch": best["epoch"], f"val_{m}": best[f"val_{m}"],
                                           f"test_{m}": best[f"test_{m}"]},
        "epochs": len(history), "wall_time_s": round(wall, 3), "train_time_s": round(train_time, 3),
        "cpu_time_s": round(cpu, 3),
        "steps": steps, "steps_per_s": round(steps / train_time, 3) if train_time else None,
        "device": str(device), "device_name": _device_name(device), "world_size": world,
        "parameters": params,
        "data": data.info, "versions": _versions(),
    }
