"""The CUDA extension's sources, registration, build contract and argument checks (runs without a GPU)."""

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hippo_rs.torch")
from torch.utils import cpp_extension  # noqa: E402

from hippo_rs.torch import _cuda  # noqa: E402

OPS = ("gbt_scan", "gbt_scan_backward", "gbt_step", "gbt_step_backward")


REPO = Path(__file__).resolve().parent.parent


def test_sources_ship_with_the_package():
    """Found through importlib.resources inside the package; the same files as the top-level cuda/."""
    assert [Path(p).name for p in _cuda.sources()] == ["hippo_scan.cu", "hippo_ops.cpp"]
    assert all(Path(p).is_file() for p in _cuda.sources())
    for p in _cuda.sources():
        assert Path(p).read_bytes() == (REPO / "cuda" / Path(p).name).read_bytes()


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
