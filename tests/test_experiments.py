"""hippo_rs.experiments in one process: the data readers, the trajectory transforms against
hand-computed indices, the task protocols, and every user error (one line, exit 2, nothing written)."""

from __future__ import annotations

import argparse
import gzip
import os
import struct

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from hippo_rs.experiments.cli import main  # noqa: E402
from hippo_rs.experiments.data import read_idx, read_ts  # noqa: E402
from hippo_rs.experiments.errors import ExperimentError  # noqa: E402
from hippo_rs.experiments.tasks import pmnist, trajectories  # noqa: E402


# -- files the tests write ------------------------------------------------------------------------
def write_idx(path, array: np.ndarray, code: int = 0x08) -> None:
    raw = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype({0x08: ">u1", 0x0D: ">f4"}[code]).tobytes()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(raw)


def write_mnist(folder, n_train=60, n_test=20, size=4, gz=False):
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    ext = ".gz" if gz else ""
    for stem, n in (("train", n_train), ("t10k", n_test)):
        write_idx(os.path.join(folder, f"{stem}-images-idx3-ubyte{ext}"), rng.integers(0, 256, (n, size, size)))
        write_idx(os.path.join(folder, f"{stem}-labels-idx1-ubyte{ext}"), np.arange(n) % 3)


def write_ts(path, series, labels, channels=None):
    """A .ts file: ``series`` is a list of (channels, length) arrays."""
    channels = channels or len(series[0])
    lines = ["@problemName test", "@timeStamps false", "@missing false", f"@univariate {str(channels == 1).lower()}",
             f"@dimensions {channels}", "@equalLength false", "@seriesLength 0",
             f"@classLabel true {' '.join(sorted(set(labels)))}", "@data"]
    for s, y in zip(series, labels):
        lines.append(":".join(",".join(f"{v:g}" for v in ch) for ch in s) + f":{y}")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


# -- idx ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip(tmp_path, gz):
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(np.uint8)
    path = str(tmp_path / ("a.idx" + (".gz" if gz else "")))
    write_idx(path, a)
    np.testing.assert_array_equal(read_idx(path), a)
    f = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    write_idx(path, f, 0x0D)
    np.testing.assert_array_equal(read_idx(path), f)


def test_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x02ab")
    with pytest.raises(ExperimentError, match="bad magic"):
        read_idx(str(bad))
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 5) + b"abc")
    with pytest.raises(ExperimentError, match="shape"):
        read_idx(str(short))
    with pytest.raises(ExperimentError, match="cannot read"):
        read_idx(str(tmp_path / "missing"))


def test_pmnist_from_idx(tmp_path):
    write_mnist(str(tmp_path), gz=True)
    args = argparse.Namespace(data_dir=str(tmp_path), download=False, permutation=None)
    data = pmnist.load(args, "pmnist")
    assert (len(data.train), len(data.val), len(data.test)) == (54, 6, 20)
    assert data.train.x.shape == (54, 16, 1) and data.n_out == 3
    assert data.info["permutation"] == "bitrev"
    raw = read_idx(str(tmp_path / "t10k-images-idx3-ubyte.gz")).reshape(20, 16) / 255.0
    perm = pmnist.bitreversal_permutation(16)
    np.testing.assert_allclose(data.test.x[:, :, 0], raw[:, perm], rtol=1e-6)
    smnist = pmnist.load(argparse.Namespace(data_dir=str(tmp_path), download=False, permutation=None), "smnist")
    np.testing.assert_allclose(smnist.test.x[:, :, 0], raw, rtol=1e-6)


def test_bitreversal_permutation():
    # 0..7 with the 3 bits reversed; for 6, the same order of 0..7 with 6 and 7 left out
    assert pmnist.bitreversal_permutation(8).tolist() == [0, 4, 2, 6, 1, 5, 3, 7]
    assert pmnist.bitreversal_permutation(6).tolist() == [0, 4, 2, 1, 5, 3]
    p = pmnist.bitreversal_permutation(784)
    assert sorted(p.tolist()) == list(range(784)) and p[:4].tolist() == [0, 512, 256, 768]


def test_digits_default_split():
    data = pmnist.load(argparse.Namespace(data_dir=None, download=False, permutation=None), "pmnist")
    assert (len(data.train), len(data.val), len(data.test)) == (1293, 144, 360)
    assert data.train.x.shape[1:] == (64, 1) and data.info["permutation"] == "random"
    # stratified: every class in the test split in proportion (1797 digits, about 180 per class)
    assert np.bincount(data.test.y).min() >= 35


# -- .ts and the trajectories protocol ------------------------------------------------------------
def test_read_ts_variable_length(tmp_path):
    path = str(tmp_path / "a.ts")
    series = [np.array([[1.0, 2, 3], [4, 5, 6]]), np.array([[7.0, 8], [9, 10]])]
    write_ts(path, series, ["b", "a"])
    xs, y = read_ts(path)
    assert [x.shape for x in xs] == [(3, 2), (2, 2)]
    np.testing.assert_array_equal(xs[1], [[7, 9], [8, 10]])
    assert y.tolist() == ["b", "a"]


def test_read_ts_mismatched_channels(tmp_path):
    path = str(tmp_path / "a.ts")
    write_ts(path, [np.ones((2, 3)), np.ones((3, 3))], ["a", "b"], channels=2)
    with pytest.raises(ExperimentError, match="a.ts"):
        read_ts(path)


def test_uniform_indices_hand_computed():
    assert trajectories.uniform_indices(7, 0.5).tolist() == [0, 2, 4]  # int(3.5) = 3 samples
    assert trajectories.uniform_indices(6, 0.5).tolist() == [0, 2, 4]
    assert trajectories.uniform_indices(4, 1.0).tolist() == [0, 1, 2, 3]
    assert trajectories.uniform_indices(3, 2.0).tolist() == [0, 0, 1, 1, 2, 2]
    assert trajectories.uniform_indices(10, 0.25).tolist() == [0, 4]


def test_drop_indices_hand_computed():
    import torch

    idx = trajectories.drop_indices(5, 2, 0.4)  # keep int(5 * 0.6) = 3 of 5, per series
    g = torch.Generator().manual_seed(56789)
    first, second = (sorted(torch.randperm(5, generator=g)[:3].tolist()) for _ in range(2))
    assert idx.tolist() == [first, second]
    assert idx.shape == (2, 3) and all(len(set(r)) == 3 for r in idx.tolist())
    assert (trajectories.drop_indices(5, 2, 0.0) == np.arange(5)).all()  # drop 0 keeps every step, in order


def test_resample_values_and_times():
    x = np.arange(2 * 8 * 1, dtype=np.float64).reshape(2, 8, 1)
    values, times = trajectories.resample(x, 0.5, 0.0, 3.0)
    assert values[:, :, 0].tolist() == [[0, 2, 4, 6], [8, 10, 12, 14]]
    assert times.tolist() == [[0, 6, 12, 18]] * 2
    values, times = trajectories.resample(x, 0.5, 0.5, 1.0)  # 4 kept, then 2 of those 4 per series
    assert values.shape == (2, 2, 1)
    assert np.isin(times, [0, 2, 4, 6]).all() and (np.diff(times, axis=1) > 0).all()
    np.testing.assert_array_equal(values[:, :, 0] - np.array([[0], [8]]), times)


def _trajectory_files(tmp_path, channels_test=2):
    rng = np.random.default_rng(1)
    labels = ["z", "y", "x"]
    tr = [rng.normal(size=(2, int(rng.integers(3, 7)))) for _ in range(30)]
    te = [rng.normal(size=(channels_test, int(rng.integers(3, 7)))) for _ in range(12)]
    write_ts(str(tmp_path / "T_TRAIN.ts"), tr, [labels[i % 3] for i in range(30)])
    write_ts(str(tmp_path / "T_TEST.ts"), te, [labels[i % 3] for i in range(12)])
    return tr, te


def _traj_args(tmp_path, **kw):
    a = dict(train=str(tmp_path / "T_TRAIN.ts"), test=str(tmp_path / "T_TEST.ts"), data_dir=None, dataset=None,
             split=None, train_hz=1.0, eval_hz=1.0, drop=0.0, timestamps=False, train_ts=1.0, eval_ts=1.0)
    a.update(kw)
    return argparse.Namespace(**a)


def test_trajectories_protocol(tmp_path):
    tr, te = _trajectory_files(tmp_path)
    data = trajectories.load(_traj_args(tmp_path), "trajectories")
    assert data.info["split"] == "paper" and data.info["classes"] == ["z", "y", "x"]  # order of appearance
    assert (len(data.train), len(data.val), len(data.test)) == (29, 6, 7)  # 70/15/15 of 42, stratified
    L = max(s.shape[1] for s in tr + te)
    assert data.train.x.shape[1:] == (L, 2)
    # normalised with the training split's statistics: mean 0, unbiased std 1 (up to the 1e-5)
    flat = data.train.x.reshape(-1, 2).astype(np.float64)
    np.testing.assert_allclose(flat.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(flat.std(0, ddof=1), 1, rtol=1e-4)
    # padding with the last value: every series is constant after its own length
    archive = trajectories.load(_traj_args(tmp_path, split="archive", eval_hz=0.5, eval_ts=2.0), "trajectories")
    assert len(archive.test) == 12 and len(archive.train) + len(archive.val) == 30
    short = min(range(12), key=lambda i: te[i].shape[1])
    n = te[short].shape[1]
    kept = trajectories.uniform_indices(L, 0.5)
    tail = archive.test.x[short][kept >= n - 1]
    assert len(tail) == 0 or np.ptp(tail, axis=0).max() == 0
    assert archive.test.times[0].tolist() == (kept * 2.0).tolist()
    assert archive.test.y.tolist() == [i % 3 for i in range(12)]


def test_trajectories_channel_mismatch(tmp_path):
    _trajectory_files(tmp_path, channels_test=3)
    with pytest.raises(ExperimentError, match="channels"):
        trajectories.load(_traj_args(tmp_path), "trajectories")


# -- errors through the command line --------------------------------------------------------------
def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("hippo-rs train: error:") and "Traceback" not in err
    return err


def test_errors(tmp_path, capsys):
    assert "unknown task 'mnist'" in _error(capsys, ["mnist"])
    assert "unknown model 'transformer'" in _error(capsys, ["adding", "--model", "transformer"])
    assert "--epochs" in _error(capsys, ["adding", "--epochs", "0"])
    assert "no such folder" in _error(capsys, ["pmnist", "--data-dir", str(tmp_path / "none")])
    assert "missing train-images-idx3-ubyte" in _error(capsys, ["pmnist", "--data-dir", str(tmp_path)])
    (tmp_path / "x.ts").write_text("not a ts file\n")
    assert "x.ts" in _error(capsys, ["trajectories", "--train", str(tmp_path / "x.ts"), "--test", str(tmp_path / "x.ts")])
    assert "no such file" in _error(capsys, ["trajectories", "--train", str(tmp_path / "a.ts"), "--test", str(tmp_path / "b.ts")])
    assert "--drop" in _error(capsys, ["trajectories", "--drop", "1"])
    assert "--timestamps" in _error(capsys, ["trajectories", "--timestamps", "--model", "gru"])
    assert "give a TASK" in _error(capsys, ["--epochs", "3"])
    # --resume without a checkpoint
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no checkpoint.pt" in _error(capsys, ["--resume", str(empty)])
    assert list(empty.iterdir()) == []
    # an existing run directory is never written to
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("mine")
    assert "already exists" in _error(capsys, ["adding", "--out", str(run), "--samples", "10", "--length", "4"])
    assert [p.name for p in run.iterdir()] == ["keep.txt"] and (run / "keep.txt").read_text() == "mine"


def test_top_level_help(capsys):
    from hippo_rs.__main__ import main as top

    assert top(["--help"]) == 0
    out = capsys.readouterr().out
    assert "approx" in out and "train" in out
    assert top(["train", "--help"]) == 0
    assert "trajectories" in capsys.readouterr().out
