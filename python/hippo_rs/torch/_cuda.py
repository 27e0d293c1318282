"""CUDA kernels of the ``torch.ops.hippo_rs`` ops: build, load and registration.

Importing this module registers a CUDA kernel for each op (``gbt_scan``, ``gbt_scan_backward``,
``gbt_step``, ``gbt_step_backward``; schemas in :mod:`hippo_rs.torch._ops`) with
``torch.library.register_kernel``; it compiles nothing. The first call of an op on CUDA tensors
compiles the kernels with :func:`torch.utils.cpp_extension.load` (one warning while it builds; the
result is cached by torch under ``TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``)
and later calls reuse it. ``python -m hippo_rs.torch.build_cuda`` builds ahead of time.

Sources: ``csrc/hippo_scan.cu`` (kernels, the formulas and their derivation in its header) and
``csrc/hippo_ops.cpp`` (binding) in this package directory are the only copy; they ship in the wheel.

There is no CPU fallback: when the extension cannot be built (torch without CUDA, no ``nvcc``, a
compiler error), every CUDA call raises :class:`RuntimeError` saying what is missing and how to fix
it. Without CUDA, nothing here runs and the CPU ops are unaffected.
"""

from __future__ import annotations

import os
import shutil
import threading
import warnings
from pathlib import Path
from types import ModuleType
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from . import _ops  # defines the ops this module registers kernels for

__all__ = ["available", "build_error", "load", "sources"]

_NAME = "hippo_rs_cuda"
_CSRC = Path(__file__).resolve().parent / "csrc"
_lock = threading.Lock()
_module: Optional[ModuleType] = None
_error: Optional[str] = None

_FIX = (
    "Fix: install a CUDA toolkit whose major version matches torch.version.cuda and make nvcc findable "
    "(CUDA_HOME=/path/to/cuda or nvcc on PATH), then run `python -m hippo_rs.torch.build_cuda`; "
    "or move the tensors to the CPU (tensor.cpu()), where the Rust kernels run."
)


def sources() -> List[str]:
    """The extension's source files (shipped inside the package)."""
    return [str(_CSRC / "hippo_scan.cu"), str(_CSRC / "hippo_ops.cpp")]


def _pip_cuda_home() -> Optional[str]:
    """The toolkit of NVIDIA's pip wheels matching torch's CUDA major version, when no other toolkit is
    configured: ``nvidia/cu<major>`` with ``bin/nvcc`` next to the runtime headers (the layout of the
    CUDA 13 wheels ``nvidia-cuda-nvcc``, ``nvidia-cuda-crt``, ``nvidia-nvvm`` of the same version)."""
    if torch.version.cuda is None:
        return None
    try:
        import nvidia  # namespace package of NVIDIA's CUDA wheels
    except ImportError:
        return None
    major = torch.version.cuda.split(".")[0]
    for root in getattr(nvidia, "__path__", []):
        home = Path(root) / f"cu{major}"
        if (home / "bin" / "nvcc").is_file():
            return str(home)
    return None


def _cudart_link_flags(cuda_home: str) -> List[str]:
    """Linker flags for a toolkit without the unversioned ``libcudart.so`` (NVIDIA's pip wheels ship
    only ``libcudart.so.<major>``, while cpp_extension links with ``-lcudart``): a private directory
    holding ``libcudart.so`` -> the versioned library. At run time the library torch already loaded
    satisfies the dependency."""
    libs = [Path(cuda_home) / d for d in ("lib64", "lib")]
    if any((d / "libcudart.so").exists() for d in libs):
        return []
    versioned = sorted(p for d in libs if d.is_dir() for p in d.glob("libcudart.so.*"))
    if not versioned:
        return []
    from torch.utils import cpp_extension

    link_dir = Path(cpp_extension.get_default_build_root()) / "hippo_rs_cudart_link"
    link_dir.mkdir(parents=True, exist_ok=True)
    link = link_dir / "libcudart.so"
    if not link.exists():
        link.symlink_to(versioned[0])
    return [f"-L{link_dir}"]


def _missing() -> Optional[str]:
    """Why the extension cannot be built here, or None."""
    if torch.version.cuda is None:
        return (
            f"this torch build ({torch.__version__}) has no CUDA support; install a CUDA build of torch "
            "(see https://pytorch.org/get-started/locally/)"
        )
    from torch.utils import cpp_extension

    if cpp_extension.CUDA_HOME is None:
        home = _pip_cuda_home()
        if home is None:
            return (
                f"nvcc was not found (torch.version.cuda = {torch.version.cuda}; CUDA_HOME is unset, no nvcc on "
                "PATH, no /usr/local/cuda)"
            )
        # cpp_extension resolved CUDA_HOME at import time; point it at the pip toolkit.
        os.environ["CUDA_HOME"] = home
        cpp_extension.CUDA_HOME = home
    if shutil.which(os.environ.get("CXX", "c++")) is None:
        return "no C++ compiler found (c++ on PATH or CXX) for the extension's host code"
    if not cpp_extension.is_ninja_available():
        return "ninja was not found (torch.utils.cpp_extension builds with it: pip install ninja)"
    return None


def _is_built() -> bool:
    """Whether torch's extension cache already holds a build (then load() only loads it)."""
    from torch.utils import cpp_extension

    build_dir = Path(cpp_extension._get_build_directory(_NAME, verbose=False))
    return (build_dir / f"{_NAME}.so").exists()


def load(verbose: bool = False) -> ModuleType:
    """Builds (first time) and loads the CUDA extension; raises RuntimeError saying what is missing."""
    global _module, _error
    with _lock:
        if _module is not None:
            return _module
        if _error is not None:
            raise RuntimeError(_error)
        missing = _missing()
        if missing is not None:
            _error = f"hippo_rs CUDA kernels unavailable: {missing}. {_FIX}"
            raise RuntimeError(_error)
        from torch.utils import cpp_extension

        if not _is_built():
            warnings.warn(
                "hippo_rs: compiling the CUDA kernels (first use, a few minutes; cached afterwards)",
                RuntimeWarning,
                stacklevel=3,
            )
        try:
            _module = cpp_extension.load(
                name=_NAME,
                sources=sources(),
                extra_cflags=["-O3"],
                extra_cuda_cflags=["-O3", "--expt-relaxed-constexpr"],
                extra_ldflags=_cudart_link_flags(cpp_extension.CUDA_HOME),
                verbose=verbose,
            )
        except Exception as exc:  # the compiler's output is in the exception (or above, verbose=True)
            _error = (
                f"hippo_rs CUDA kernels failed to build: {type(exc).__name__}: {exc}. "
                f"Rebuild with `python -m hippo_rs.torch.build_cuda` to see the compiler output. {_FIX}"
            )
            raise RuntimeError(_error) from exc
        return _module


def available() -> bool:
    """True when CUDA is usable and the extension is built or buildable (builds it if needed)."""
    if not torch.cuda.is_available():
        return False
    try:
        load()
    except RuntimeError:
        return False
    return True


def build_error() -> Optional[str]:
    """The message of the last failed build, or None."""
    return _error


# --------------------------------------------------------------------------------------------------
# CUDA kernels of the ops (argument checks are in C++, with shapes and dtypes in the messages)
# --------------------------------------------------------------------------------------------------


def _gbt_scan(f: Tensor, c0: Tensor, coef: Tensor, measure: str, params: List[float], return_all: bool) -> Tensor:
    return load().gbt_scan(f, c0, coef, measure, list(params), return_all)


def _gbt_scan_backward(
    grad: Tensor, coef: Tensor, measure: str, params: List[float], return_all: bool, N: int
) -> Tuple[Tensor, Tensor]:
    return tuple(load().gbt_scan_backward(grad, coef, measure, list(params), return_all, int(N)))


def _gbt_step(c: Tensor, f: Tensor, coef: Tensor, measure: str, params: List[float]) -> Tensor:
    return load().gbt_step(c, f, coef, measure, list(params))


def _gbt_step_backward(grad: Tensor, coef: Tensor, measure: str, params: List[float]) -> Tuple[Tensor, Tensor]:
    return tuple(load().gbt_step_backward(grad, coef, measure, list(params)))


for _op, _kernel in (
    (_ops.gbt_scan, _gbt_scan),
    (_ops.gbt_scan_backward, _gbt_scan_backward),
    (_ops.gbt_step, _gbt_step),
    (_ops.gbt_step_backward, _gbt_step_backward),
):
    torch.library.register_kernel(_op, "cuda", _kernel)
