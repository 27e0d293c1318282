"""The CUDA extension's registration and its errors when it cannot be built (runs without a GPU)."""

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hippo_rs.torch")
from torch.utils import cpp_extension  # noqa: E402

from hippo_rs.torch import _cuda  # noqa: E402

OPS = ("gbt_scan", "gbt_scan_backward", "gbt_step", "gbt_step_backward")


def test_sources_ship_with_the_package():
    assert [Path(p).name for p in _cuda.sources()] == ["hippo_scan.cu", "hippo_ops.cpp"]
    assert all(Path(p).is_file() for p in _cuda.sources())


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
