"""The ``hippo-rs approx`` job end to end on short signals, and its handling of bad input."""

import json
import os
import subprocess
import sys
import wave

import numpy as np
import pytest

import hippo_rs
from hippo_rs.approx import main, optimal_fit


SHORT = ["--length", "4000", "--cutoff", "60", "--order", "32"]


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def test_default_measures_end_to_end_with_plot(tmp_path, capsys):
    png = tmp_path / "fig.png"
    res = run_json(capsys, *SHORT, "--out", str(png))
    assert [r["measure"] for r in res["results"]] == ["legs", "legt", "fout"]
    assert [r["params"] for r in res["results"]] == [{}, {"theta": 4000 * 1e-4}, {"theta": 4000 * 1e-4}]
    assert png.stat().st_size > 10_000 and res["plot"] == str(png)
    legs = res["results"][0]
    # LegS keeps the optimal projection of the whole record (up to discretisation).
    assert res["optimal_mse"] <= legs["mse"] <= 1.5 * res["optimal_mse"]
    assert all(r["steps_per_s"] > 0 and r["wall_s"] > 0 for r in res["results"])
    assert res["signal"]["rms_measured"] == pytest.approx(0.5)


def test_table_output(tmp_path, capsys):
    assert main([*SHORT, "--measure", "legs", "--no-plot", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert "optimal degree-31" in out and out.splitlines()[3].startswith("legs")


def test_measure_lists_and_repeats(capsys):
    res = run_json(capsys, *SHORT, "--no-plot", "--measure", "legs,fout", "--measure", "lagt,glagt")
    assert [r["measure"] for r in res["results"]] == ["legs", "fout", "lagt", "glagt"]
    # measures run side by side give the same numbers as one at a time
    seq = run_json(capsys, *SHORT, "--no-plot", "--measure", "legs,fout", "--measure", "lagt,glagt", "--jobs", "1")
    assert [r["mse"] for r in seq["results"]] == [r["mse"] for r in res["results"]]


def write_wav(path, x, rate=8000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
        w.writeframes(np.stack([pcm, pcm], axis=1).tobytes())


@pytest.mark.parametrize("ext", [".npy", ".csv", ".wav"])
def test_input_files(tmp_path, capsys, ext):
    x = 0.5 * np.sin(np.linspace(0, 20, 3000)) + 0.1 * np.cos(np.linspace(0, 91, 3000))
    path = tmp_path / f"sig{ext}"
    if ext == ".npy":
        np.save(path, x[:, None])
    elif ext == ".csv":
        path.write_text("value\n" + "\n".join(f"{v:.17g}" for v in x))
    else:
        write_wav(path, x)
    res = run_json(capsys, "--input", str(path), "--order", "24", "--no-plot", "--measure", "legs")
    assert res["signal"]["length"] == 3000
    if ext == ".wav":
        assert res["signal"]["dt"] == pytest.approx(1 / 8000)
    assert res["results"][0]["mse"] <= 1.5 * res["optimal_mse"] + 1e-9


def test_columns_and_channels(tmp_path, capsys):
    x = np.sin(np.linspace(0, 9, 800))
    (tmp_path / "t.csv").write_text(
        "date,value\n" + "\n".join(f"2024-01-{i % 28 + 1:02d},{v:.17g}" for i, v in enumerate(x))
    )
    res = run_json(capsys, "--input", str(tmp_path / "t.csv"), "--column", "1", "--order", "8", "--no-plot")
    assert res["signal"]["length"] == 800 and res["signal"]["time_unit"] == "samples"
    np.savetxt(tmp_path / "t.txt", np.stack([x, 2 * x], axis=1))
    one = run_json(
        capsys, "--input", str(tmp_path / "t.txt"), "--column", "1", "--order", "8", "--no-plot", "--measure", "legs"
    )
    np.save(tmp_path / "t.npy", np.stack([x, 2 * x], axis=1))
    two = run_json(
        capsys, "--input", str(tmp_path / "t.npy"), "--column", "1", "--order", "8", "--no-plot", "--measure", "legs"
    )
    assert one["results"][0]["mse"] == pytest.approx(two["results"][0]["mse"], rel=1e-9)
    write_wav(tmp_path / "s.wav", 0.5 * x)
    res = run_json(
        capsys, "--input", str(tmp_path / "s.wav"), "--column", "1", "--order", "8", "--no-plot", "--measure", "legs"
    )
    assert res["signal"]["time_unit"] == "s"


def test_offset_signals_start_from_a_constant_history(tmp_path, capsys):
    # A large offset: LegS is the same either way (constants are exact); LMU with a zero initial state
    # sees a jump at its window's far edge, the default constant history f(0) does not.
    x = 300.0 + 0.5 * np.sin(np.linspace(0, 30, 5000))
    np.save(tmp_path / "x.npy", x)
    argv = ["--input", str(tmp_path / "x.npy"), "--order", "32", "--no-plot", "--measure", "legs,lmu"]
    const = run_json(capsys, *argv)
    zero = run_json(capsys, *argv, "--zero-init")
    assert const["results"][0]["mse"] == pytest.approx(zero["results"][0]["mse"], rel=1e-6)
    assert const["results"][1]["mse"] < 0.01 * zero["results"][1]["mse"]
    assert const["initial_state"] == "constant history f(0)" and zero["initial_state"] == "zero"


def test_length_truncates_input(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.sin(np.linspace(0, 5, 500)))
    res = run_json(capsys, "--input", str(tmp_path / "x.npy"), "--length", "200", "--order", "8", "--no-plot")
    assert res["signal"]["length"] == 200


@pytest.mark.parametrize("L,N,cutoff", [(20_000, 24, 2.0), (6_000, 120, 60.0), (3_000, 64, 5.0)])
def test_optimal_fit_lsqr_equals_the_dense_solve(L, N, cutoff, monkeypatch):
    # LSQR through reconstruct/reconstruct_adjoint reaches the dense least-squares fit, also when
    # L / N^2 is small (equispaced Legendre least squares is then ill-conditioned).
    import hippo_rs.approx.fit as approx

    x = hippo_rs.signals.white_signal(L, dt=1e-3, cutoff=cutoff, seed=3)
    monkeypatch.setattr(approx, "DENSE_FIT_WORK", float("inf"))
    dense, info = optimal_fit(x, N)
    assert info["method"] == "dense"
    monkeypatch.setattr(approx, "DENSE_FIT_WORK", 0.0)
    iterative, info = optimal_fit(x, N)
    assert info["method"] == "lsqr" and info["converged"]
    assert np.mean((iterative - x) ** 2) == pytest.approx(np.mean((dense - x) ** 2), rel=1e-6, abs=1e-14)


def bad_inputs(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "words.csv").write_text("a\nb\nc\n")
    (tmp_path / "two.csv").write_text("1,2\n3,4\n5,6\n")
    np.save(tmp_path / "nan.npy", np.array([0.0, 1.0, np.nan, 2.0]))
    np.save(tmp_path / "empty.npy", np.zeros(0))
    np.save(tmp_path / "str.npy", np.array(["a", "b"]))
    (tmp_path / "junk.wav").write_bytes(b"not a wav file at all")
    (tmp_path / "x.mp3").write_bytes(b"")
    return [
        (["--input", str(tmp_path / "missing.npy")], "no such file"),
        (["--input", str(tmp_path / "empty.csv")], "0 sample"),
        (["--input", str(tmp_path / "words.csv")], "numeric"),
        (["--input", str(tmp_path / "two.csv")], "--column"),
        (["--input", str(tmp_path / "two.csv"), "--column", "2"], "column 2"),
        (["--input", str(tmp_path / "two.csv"), "--column", "-1"], "--column"),
        (["--input", str(tmp_path / "nan.npy")], "non-finite"),
        (["--input", str(tmp_path / "empty.npy")], "0 sample"),
        (["--input", str(tmp_path / "str.npy")], "numeric"),
        (["--input", str(tmp_path / "junk.wav")], "wav"),
        (["--input", str(tmp_path / "x.mp3")], "unknown file type"),
        (["--input", str(tmp_path)], "directory"),
        (["--order", "0"], "--order"),
        (["--order", "x"], "--order"),
        (["--measure", "legs,nope"], "--measure"),
        (["--length", "1"], "--length"),
        (["--length", "1000"], "--length 10000 or more"),
        (["--cutoff", "6000"], "Nyquist"),
        (["--cutoff", "0"], "--cutoff"),
        (["--dt", "-1"], "--dt"),
        (["--jobs", "0"], "--jobs"),
        (["--method", "magic", "--length", "3000", "--cutoff", "20"], "--method"),
        (["--method", "zoh"], "--method"),
        (
            ["--out", str(tmp_path / "no" / "dir" / "f.png"), "--length", "3000", "--cutoff", "20", "--order", "4"],
            "--out",
        ),
        (["--out", str(tmp_path / "words.csv")], "picture file"),
        (["--out", str(tmp_path / "missing") + os.sep], "does not exist"),
        (["--bogus"], "unrecognized"),
        (["--input", str(tmp_path / "words.csv")], "line 2, column 0 (columns count from 0"),
        (["--input", str(tmp_path / "two.csv"), "--column", "1", "--length", "1"], "--length"),
    ]


def test_bad_input_gives_one_line_and_status_2(tmp_path, capsys):
    for argv, word in bad_inputs(tmp_path):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("hippo-rs approx: error:"), (argv, err)
        assert word in err, (argv, err)


def test_out_accepts_a_folder_and_is_checked_before_the_work(tmp_path, capsys, monkeypatch):
    res = run_json(capsys, *SHORT, "--measure", "legs", "--out", str(tmp_path))
    assert res["plot"] == str(tmp_path / "hippo_approx.png") and (tmp_path / "hippo_approx.png").exists()
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root writes anywhere: take the permission check's word for it
        monkeypatch.setattr(os, "access", lambda path, mode: not str(path).startswith(str(locked)))
    from hippo_rs.approx import job

    def no_work(*args, **kwargs):
        raise AssertionError("the job started before --out was checked")

    monkeypatch.setattr(job, "white_signal", no_work)
    assert main([*SHORT, "--out", str(locked / "f.png")]) == 2
    assert "permission denied" in capsys.readouterr().err


def test_long_jobs_announce_an_estimate_and_report_progress_off_a_terminal(monkeypatch, capsys):
    from hippo_rs.approx import job, progress

    monkeypatch.setattr(job, "ANNOUNCE_S", 0.0)
    monkeypatch.setattr(progress, "LINE_EVERY", 0.0)
    assert main(["--length", "300000", "--order", "8", "--measure", "legs", "--no-plot"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("hippo-rs approx: 300,000 samples, N = 8, 1 measure(s): about")
    assert any(line.startswith("hippo-rs approx: legs ") and "% (" in line for line in err[1:])


def test_estimate_grows_with_the_work():
    from hippo_rs.approx.job import estimate

    small = estimate(10**5, 256, ["legs"], 1)
    assert estimate(10**6, 256, ["legs"], 1)[0] > 5 * small[0]
    assert estimate(10**5, 256, ["legs", "legt", "fout"], 1)[0] > small[0]
    assert estimate(2 * 10**5, 10**5, ["legs"], 1)[0] > 600  # -N 100000 --length 200000: minutes, said up front


def test_python_dash_m_entry_point(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    ok = subprocess.run(
        [sys.executable, "-m", "hippo_rs", "approx", *SHORT, "--measure", "legs", "--out", str(tmp_path / "p.png")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    assert "legs" in ok.stdout and (tmp_path / "p.png").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "hippo_rs", "approx", "--input", "nope.npy"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert bad.returncode == 2 and bad.stderr.strip() == "hippo-rs approx: error: input: no such file: nope.npy"
    assert "Traceback" not in bad.stderr
