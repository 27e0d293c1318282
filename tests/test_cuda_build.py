"""The CUDA extension's sources, registration, build contract and argument checks (runs without a GPU)."""

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hippo_rs.torch")
from torch.utils import cpp_extension  # noqa: E402

from hippo_rs.torch import _cuda  # noqa: E402

OPS = ("gbt_scan", "gbt_scan_backward", "gbt_step", "gbt_step_backward", "rnn", "rnn_backward")


REPO = Path(__file__).resolve().parent.parent


def test_sources_ship_with_the_package():
    """Found through importlib.resources inside the package; the same files as the top-level cuda/,
    with the headers they include."""
    assert [Path(p).name for p in _cuda.sources()] == ["hippo_scan.cu", "hippo_rnn.cu", "hippo_ops.cpp"]
    shipped = [Path(p) for p in _cuda.sources()]
    shipped += [shipped[0].parent / name for name in ("hippo_scan.h", "hippo_rnn_kernels.cuh")]
    for p in shipped:
        assert p.read_bytes() == (REPO / "cuda" / p.name).read_bytes()


def test_cuda_measures_are_the_kernels_measures():
    """_cuda.MEASURES (where HiPPORNN runs the fused op on CUDA) names the measures parse_measure accepts."""
    source = (REPO / "cuda" / "hippo_scan.cu").read_text()
    body = source[source.index("MeasureArgs parse_measure("):]
    body = body[: body.index("TORCH_CHECK_NOT_IMPLEMENTED")]  # the branches before: measures with kernels
    body = body[: body.rindex("} else if")]
    assert sorted(_cuda.MEASURES) == sorted(set(re.findall(r'measure == "(\w+)"', body)))
    assert "(CUDA supports " + ", ".join(_cuda.MEASURES) + ")" in source


def test_load_cuda_is_public():
    import hippo_rs.torch as ht

    assert ht.load_cuda is _cuda.load


def _rows(bad):
    coef = torch.tensor([[float("inf"), 0.0, 0.0], [0.25, 0.25, 0.5], [0.1, 0.1, 0.2]], dtype=torch.float64)
    coef[2, 0] = bad
    return coef


@pytest.mark.parametrize("bad", [float("nan"), float("-inf")])
def test_cuda_kernels_refuse_nan_and_minus_inf_rows_like_the_cpu(bad):
    """The checks run before the extension is loaded, so they are exercised here on CPU tensors."""
    f, c0, coef = torch.zeros(3, 2, dtype=torch.float64), torch.zeros(2, 4, dtype=torch.float64), _rows(bad)
    with pytest.raises(ValueError, match="^coef:"):
        torch.ops.hippo_rs.gbt_scan(f, c0, coef, "legs", [], True)
    with pytest.raises(ValueError, match="^coef:"):
        _cuda._gbt_scan(f, c0, coef, "legs", [], True)
    with pytest.raises(ValueError, match="^coef:"):
        _cuda._gbt_scan_backward(torch.zeros(3, 2, 4, dtype=torch.float64), coef, "legs", [], True, 4)
    with pytest.raises(ValueError, match="^coef:"):
        _cuda._gbt_step(c0, f[0], coef[2], "legs", [])
    with pytest.raises(ValueError, match="^coef:"):
        _cuda._gbt_step_backward(c0, coef[2], "legs", [])


def _layer(L=3, B=2, I=1, H=4, M=1, N=5, coef=None):
    x = torch.zeros(L, B, I, dtype=torch.float64)
    ws = [torch.zeros(s, dtype=torch.float64) for s in ((M, I + H), (M,), (H, I + M * N), (H,), (H, I + M * N), (H,))]
    coef = torch.tensor([[0.1, 0.1, 0.2]] * L, dtype=torch.float64) if coef is None else coef
    return (x, torch.zeros(B, H, dtype=torch.float64), torch.zeros(B, M, N, dtype=torch.float64), coef,
            torch.full((B,), L), *ws, "legs", [], True, None)


def test_cuda_rnn_kernels_check_like_the_cpu_op_before_loading():
    """The layer's CUDA kernels run the CPU op's checks first (exercised here on CPU tensors)."""
    with pytest.raises(ValueError, match="^coef:"):
        _cuda._rnn_forward(*_layer(coef=_rows(float("nan"))))
    with pytest.raises(ValueError, match="^coef: expected a tensor on"):
        _cuda._rnn_forward(*_layer(coef=_rows(0.1).to("meta")))
    args = list(_layer())
    args[4] = args[4].to(torch.int32)
    with pytest.raises(ValueError, match="^lengths: expected an int64 tensor"):
        _cuda._rnn_forward(*args)
    args = list(_layer())
    args[5] = args[5].float()
    with pytest.raises(TypeError, match="^w_f: expected the dtype of x"):
        _cuda._rnn_forward(*args)


def test_hippo_rnn_runs_cuda_tensors_fused_only_where_the_kernels_apply(monkeypatch):
    """Fused on CUDA: a measure with CUDA kernels and the extension available; otherwise step by step
    (as before the fused CUDA op)."""
    from hippo_rs.torch import HiPPOCell
    from hippo_rs.torch._rnn import fused_applies

    x = SimpleNamespace(device=torch.device("cuda"), dtype=torch.float32)
    legs, fout = HiPPOCell(1, 4, memory_order=5), HiPPOCell(1, 4, memory_order=5, measure="fout")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not fused_applies(legs, x)
    monkeypatch.setattr(_cuda, "rnn_available", lambda: True)
    assert fused_applies(legs, x)
    assert not fused_applies(fout, x)
    assert not fused_applies(legs, SimpleNamespace(device=torch.device("cuda"), dtype=torch.float64))


def test_cuda_kernels_refuse_mixed_devices():
    f, c0 = torch.zeros(3, 2, dtype=torch.float64), torch.zeros(2, 4, dtype=torch.float64)
    coef = _rows(0.1).to("meta")
    with pytest.raises(ValueError, match="^coef:.*device|^coef: expected a tensor on"):
        _cuda._gbt_scan(f, c0, coef, "legs", [], True)
    with pytest.raises(ValueError, match="^coef: expected a tensor on"):
        _cuda._gbt_step(c0, f[0], coef[2], "legs", [])


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")


def test_pip_toolkit_layouts_of_cuda_12_and_13(tmp_path):
    cu13, cu12 = tmp_path / "a", tmp_path / "b"
    _touch(cu13 / "cu13" / "bin" / "nvcc")
    _touch(cu12 / "cuda_nvcc" / "bin" / "nvcc")
    _touch(cu12 / "cuda_runtime" / "include" / "cuda_runtime.h")
    assert _cuda._pip_toolkit([str(cu13)], "13") == _cuda.PipToolkit(str(cu13 / "cu13"), [], [])
    assert _cuda._pip_toolkit([str(cu12)], "12") == _cuda.PipToolkit(
        str(cu12 / "cuda_nvcc"), [str(cu12 / "cuda_runtime" / "include")], [str(cu12 / "cuda_runtime" / "lib")]
    )
    assert _cuda._pip_toolkit([str(cu13), str(cu12)], "12").home == str(cu12 / "cuda_nvcc")
    assert _cuda._pip_toolkit([str(cu12)], "13") is None


def test_pip_toolkit_spanning_several_site_directories(tmp_path):
    """nvcc in one site directory, the runtime headers (with cccl) and libraries torch installed in another."""
    tools, runtime = tmp_path / "tools", tmp_path / "runtime"
    _touch(tools / "cu13" / "bin" / "nvcc")
    _touch(runtime / "cu13" / "include" / "cccl" / "thrust" / "complex.h")
    _touch(runtime / "cu13" / "lib" / "libcudart.so.13")
    home = runtime / "cu13"
    assert _cuda._pip_toolkit([str(tools), str(runtime)], "13") == _cuda.PipToolkit(
        str(tools / "cu13"), [str(home / "include"), str(home / "include" / "cccl")], [str(home / "lib")]
    )


def test_concurrent_first_builds_take_turns(tmp_path):
    """Processes holding the build lock never overlap: each records its enter and exit times."""
    code = (
        "import sys, time; from pathlib import Path; from hippo_rs.torch import _cuda\n"
        "with _cuda.build_lock(Path(sys.argv[1])):\n"
        "    start = time.monotonic(); time.sleep(0.3); print(start, time.monotonic())\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    spans = sorted(tuple(map(float, p.communicate(timeout=120)[0].split())) for p in procs)
    assert all(p.returncode == 0 for p in procs) and len(spans) == 3
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end


@pytest.mark.parametrize("op", OPS)
def test_every_op_has_a_cuda_kernel(op):
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"hippo_rs::{op}", "CUDA")


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(_cuda, "_module", None)
    monkeypatch.setattr(_cuda, "_error", None)


def test_torch_without_cuda_is_named(fresh, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(RuntimeError, match="has no CUDA support") as err:
        _cuda.load()
    assert "Fix:" in str(err.value) and "tensor.cpu()" in str(err.value)
    # The failure is remembered: the next call raises at once, with the same message.
    with pytest.raises(RuntimeError, match="has no CUDA support"):
        _cuda.load()
    assert _cuda.build_error() == str(err.value)


def test_missing_nvcc_is_named(fresh, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "13.2")
    monkeypatch.setattr(cpp_extension, "CUDA_HOME", None)
    monkeypatch.setattr(_cuda, "_pip_cuda_home", lambda: None)
    with pytest.raises(RuntimeError, match="nvcc was not found.*CUDA_HOME"):
        _cuda.load()


def test_missing_ninja_is_named(fresh, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.version, "cuda", "13.2")
    monkeypatch.setattr(cpp_extension, "CUDA_HOME", str(tmp_path))
    monkeypatch.setattr(cpp_extension, "is_ninja_available", lambda: False)
    with pytest.raises(RuntimeError, match="ninja was not found"):
        _cuda.load()


def test_available_is_false_without_a_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _cuda.available() is False
