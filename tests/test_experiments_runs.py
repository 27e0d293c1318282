"""hippo_rs.experiments end to end through the command line: a tiny run of every task, resume after
a kill equals the uninterrupted run, and two gloo processes under torchrun equal one process."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
#: Columns of metrics.csv that are measured times, not results.
TIMES = {"epoch_time_s", "steps_per_s", "wall_time_s"}


def train(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``hippo-rs train ARGS`` in this process (the command line's own entry point, without the
    seconds of a fresh interpreter importing torch); kills and torchrun below use real processes."""
    from hippo_rs.__main__ import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", *args])
    if check:
        assert code == 0, err.getvalue()
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def metrics(run) -> list:
    with open(os.path.join(run, "metrics.csv")) as fh:
        return [{k: float(v) for k, v in row.items() if k not in TIMES} for row in csv.DictReader(fh)]


def weights(run) -> dict:
    return torch.load(os.path.join(run, "checkpoint.pt"), weights_only=False)["model"]


ADDING = ("adding", "--length", "6", "--samples", "40", "--hidden", "8", "--batch-size", "10")


@pytest.mark.parametrize("task, flags", [
    ("pmnist", ("--hidden", "8", "--model", "lstm")),
    ("smnist", ("--hidden", "4", "--batch-size", "200")),
    ("trajectories", ("--hidden", "8", "--train-hz", "0.5")),
    ("trajectories", ("--hidden", "8", "--timestamps", "--drop", "0.3", "--train-ts", "0.5")),
    ("adding", ("--length", "8", "--samples", "30", "--hidden", "8", "--model", "gru")),
    ("copying", ("--length", "4", "--samples", "30", "--hidden", "8", "--model", "legt")),
])
def test_every_task_runs(tmp_path, task, flags):
    run = str(tmp_path / "run")
    p = train(task, "--epochs", "1", "--out", run, *flags)
    assert "results:" in p.stdout
    assert sorted(os.listdir(run)) == ["checkpoint.pt", "config.json", "curves.png", "metrics.csv", "results.json"]
    res = json.load(open(os.path.join(run, "results.json")))
    m = res["metric"]
    assert res["task"] == task and res["epochs"] == 1 and res["steps_per_s"] > 0
    assert 0 <= res["final"][f"test_{m}"] and res["versions"]["torch"] == torch.__version__
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["task"] == task and config["out"] == run
    assert len(metrics(run)) == 1


def test_resume_equals_uninterrupted(tmp_path):
    whole, part = str(tmp_path / "whole"), str(tmp_path / "part")
    train(*ADDING, "--epochs", "3", "--out", whole)
    train(*ADDING, "--epochs", "1", "--out", part)
    p = train("--resume", part, "--epochs", "3")
    assert "epoch 2/3" in p.stdout and "epoch 1/3" not in p.stdout
    assert metrics(part) == metrics(whole)
    a, b = weights(whole), weights(part)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.load(open(os.path.join(part, "results.json")))["final"] == \
        json.load(open(os.path.join(whole, "results.json")))["final"]


def test_resume_after_sigkill(tmp_path):
    flags = ("adding", "--length", "20", "--samples", "200", "--hidden", "16", "--batch-size", "20", "--epochs", "4")
    whole, killed = str(tmp_path / "whole"), str(tmp_path / "killed")
    train(*flags, "--out", whole)
    proc = subprocess.Popen([sys.executable, "-m", "hippo_rs", "train", *flags, "--out", killed],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = os.path.join(killed, "checkpoint.pt")
    deadline = time.time() + 300
    while not os.path.exists(ckpt) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert os.path.exists(ckpt)
    train("--resume", killed)
    assert metrics(killed) == metrics(whole)
    a, b = weights(whole), weights(killed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_rejects_changed_flags(tmp_path):
    run = str(tmp_path / "run")
    train(*ADDING, "--epochs", "2", "--out", run)
    before = {f: open(os.path.join(run, f), "rb").read() for f in os.listdir(run)}
    p = train("--resume", run, "--lr", "0.1", check=False)
    assert p.returncode == 2 and "--lr" in p.stderr and p.stderr.count("\n") == 1
    p = train("copying", "--resume", run, check=False)
    assert p.returncode == 2 and "task 'adding'" in p.stderr
    p = train("--resume", run, "--epochs", "1", check=False)
    assert p.returncode == 2 and "already finished 2 epochs" in p.stderr
    assert {f: open(os.path.join(run, f), "rb").read() for f in os.listdir(run)} == before


def test_torchrun_two_processes_equal_one(tmp_path):
    # 45 rows in global batches of 10: the last batch of 5 is dealt 3 + 2, so the shares are uneven
    flags = ("adding", "--length", "6", "--samples", "45", "--hidden", "8", "--batch-size", "10", "--epochs", "2",
             "--device", "cpu")
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    train(*flags, "--out", one)
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "hippo_rs", "train", *flags, "--out", two], capture_output=True, text=True, env=ENV,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    assert json.load(open(os.path.join(two, "results.json")))["world_size"] == 2
    for r1, r2 in zip(metrics(one), metrics(two)):
        assert r1.keys() == r2.keys()
        for k in r1:
            assert r1[k] == pytest.approx(r2[k], rel=1e-4, abs=1e-6), k
    a, b = weights(one), weights(two)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)
