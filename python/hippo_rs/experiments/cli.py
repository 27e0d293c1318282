"""``hippo-rs train TASK [flags]`` / ``python -m hippo_rs.experiments TASK [flags]``.

Every task takes the same runner flags (``--model --epochs --batch-size --lr --hidden --seed --device
--out --resume``); each task adds its own data flags. Bad input: one line on stderr, exit status 2,
nothing written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from .errors import ExperimentError
from .models import MODELS, TIMESTAMPED
from .tasks import HELP, TASKS

PROG = "hippo-rs train"
#: Runner flags: every task has them; None means "the task's default" (tasks/*.DEFAULTS).
COMMON = ("model", "epochs", "batch_size", "lr", "hidden", "seed", "device", "threads", "out", "resume")
#: Flags that may change when a run is resumed.
RESUMABLE = ("epochs", "device", "threads", "resume")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise ExperimentError(message)


def _positive(kind):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return v

    return parse


def _overview() -> str:
    tasks = "\n".join(f"  {name:<13}{HELP[name]}" for name in TASKS)
    flags = _parser(None).format_help()
    return (
        f"usage: {PROG} TASK [flags]   |   {PROG} --resume RUN_DIR [--epochs N] [--device D]\n\n"
        f"Trains a model on one of the HiPPO paper's tasks (section 4) and writes a run directory.\n\n"
        f"tasks:\n{tasks}\n\n{PROG} TASK --help lists the flags; every task has:\n"
        + flags[flags.index("  --model"):]
    )


def _parser(task: Optional[str]) -> argparse.ArgumentParser:
    p = _Parser(prog=f"{PROG} {task}" if task else PROG, description=TASKS[task].__doc__ if task else None,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = TASKS[task].DEFAULTS if task else {}

    def default(key: str) -> str:
        return f" (default {d[key]})" if key in d else " (default: the task's)"

    p.add_argument("--model", help=f"{', '.join(MODELS)}{default('model')}")
    p.add_argument("--epochs", type=_positive(int), help="training epochs" + default("epochs"))
    p.add_argument("--batch-size", type=_positive(int), help="global batch size" + default("batch_size"))
    p.add_argument("--lr", type=_positive(float), help="Adam learning rate" + default("lr"))
    p.add_argument("--hidden", type=_positive(int), help="hidden size = memory order N" + default("hidden"))
    p.add_argument("--seed", type=int, help="seed of the weights, the batch order and generated data (default 0)")
    p.add_argument("--device", help="auto (CUDA when available), cpu, cuda or cuda:K (default auto)")
    p.add_argument("--threads", type=_positive(int),
                   help="CPU threads per process (default 1: a step-by-step recurrence gains little from "
                        "more and loses much when the cores are shared)")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory, must not exist (default runs/TASK-MODEL-TIME)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a run from its last checkpoint (its task and flags are read back)")
    if task:
        TASKS[task].add_arguments(p)
    return p


def _given(args: argparse.Namespace, defaults: argparse.Namespace) -> List[str]:
    return [k for k, v in vars(args).items() if v != getattr(defaults, k)]


def _resolve(task: str, args: argparse.Namespace) -> Dict[str, Any]:
    """The full configuration of a new run: the task's defaults filled in, the model checked."""
    d = TASKS[task].DEFAULTS
    config: Dict[str, Any] = {"task": task}
    for key in COMMON[:-2]:
        v = getattr(args, key)
        config[key] = v if v is not None else d.get(key, {"seed": 0, "device": "auto", "threads": 1}.get(key))
    if getattr(args, "timestamps", False):
        if args.model not in (None, *TIMESTAMPED):
            raise ExperimentError(f"--timestamps: only {', '.join(TIMESTAMPED)} reads sample times, got --model {args.model}")
        config["model"] = TIMESTAMPED[0]
    if config["model"] not in MODELS:
        raise ExperimentError(f"--model: unknown model '{config['model']}' (models: {', '.join(MODELS)})")
    config.update({k: v for k, v in vars(args).items() if k not in COMMON})
    return config


def _task_args(config: Dict[str, Any]) -> argparse.Namespace:
    return argparse.Namespace(**{k: v for k, v in config.items() if k != "task"})


def _new_run_dir(config: Dict[str, Any], out: Optional[str]) -> str:
    path = out or os.path.join("runs", f"{config['task']}-{config['model']}-{time.strftime('%Y%m%d-%H%M%S')}")
    if os.path.exists(path):
        raise ExperimentError(f"--out {path}: already exists (choose another RUN_DIR, or --resume {path} to continue it)")
    try:
        os.makedirs(path)
    except OSError as e:
        raise ExperimentError(f"--out {path}: cannot create it ({e.strerror})") from None
    return path


def _read_run(run_dir: str) -> Dict[str, Any]:
    from .runner import CHECKPOINT, CONFIG

    if not os.path.isfile(os.path.join(run_dir, CHECKPOINT)):
        raise ExperimentError(f"--resume {run_dir}: no {CHECKPOINT} there (no epoch finished yet? start a new run with --out)")
    try:
        with open(os.path.join(run_dir, CONFIG)) as fh:
            return json.load(fh)
    except (OSError, ValueError) as e:
        raise ExperimentError(f"--resume {run_dir}: cannot read {CONFIG} ({e})") from None


def parse(argv: Sequence[str]):
    """(config, resume run dir or None, new run dir or None) from the command line."""
    argv = list(argv)
    task = argv[0] if argv and not argv[0].startswith("-") else None
    if task is not None and task not in TASKS:
        raise ExperimentError(f"unknown task '{task}' (tasks: {', '.join(TASKS)})")
    p = _parser(task)
    args = p.parse_args(argv[1:] if task else argv)
    if args.resume is None:
        if task is None:
            raise ExperimentError(f"give a TASK ({', '.join(TASKS)}) or --resume RUN_DIR")
        return _resolve(task, args), None, args.out
    config = _read_run(args.resume)
    if task is not None and task != config.get("task"):
        raise ExperimentError(f"--resume {args.resume}: that run is task '{config.get('task')}', not '{task}'")
    extra = [k for k in _given(args, p.parse_args([])) if k not in RESUMABLE]
    if extra:
        flags = ", ".join("--" + k.replace("_", "-") for k in extra)
        raise ExperimentError(f"--resume: {flags} cannot change on resume (the run's flags are read back; "
                              f"only --epochs, --device and --threads may be given)")
    for key in ("epochs", "device", "threads"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    return config, args.resume, None


def run(argv: Sequence[str]) -> int:
    from . import runner

    config, resume_dir, out = parse(argv)
    device = runner.resolve_device(config["device"])  # checked before any data is read
    rank = runner.distributed(device)[0]
    data = TASKS[config["task"]].load(_task_args(config), config["task"])
    if resume_dir is None:
        created = None
        if rank == 0:
            try:
                created = _new_run_dir(config, out)
            except ExperimentError as e:
                created = e
        run_dir = runner.broadcast(created)
        if isinstance(run_dir, ExperimentError):
            raise run_dir
        config["out"] = run_dir
    else:
        run_dir = resume_dir
    if rank == 0:
        print(f"{config['task']} / {config['model']} on {device} -> {run_dir} ({len(data.train)} train, "
              f"{len(data.val)} val, {len(data.test)} test sequences)", flush=True)
    runner.train(config, data, run_dir, resume=resume_dir is not None)
    runner.leave()
    if rank == 0:
        print(f"results: {os.path.join(run_dir, runner.RESULTS)}", flush=True)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit status (2 with one line on stderr for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_overview(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    try:
        return run(argv)
    except ExperimentError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (the last finished epoch is in the run's checkpoint; --resume continues it)",
              file=sys.stderr)
        return 130
