"""CUDA kernels of the ``torch.ops.hippo_rs`` ops: build, load and registration.

Importing this module registers a CUDA kernel for each op (``gbt_scan``, ``gbt_scan_backward``,
``gbt_step``, ``gbt_step_backward``, schemas in :mod:`hippo_rs.torch._ops`; the HiPPO-RNN layer
``rnn`` and ``rnn_backward``, schemas in :mod:`hippo_rs.torch._rnn`) with
``torch.library.register_kernel``; it compiles nothing. The first call of an op on CUDA tensors
compiles the kernels with :func:`torch.utils.cpp_extension.load` (one warning while it builds; the
result is cached by torch under ``TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``)
and later calls reuse it. ``python -m hippo_rs.torch.build_cuda`` builds ahead of time.

Sources: ``cuda/hippo_scan.cu`` (kernels, the formulas and their derivation in its header),
``cuda/hippo_rnn.cu`` (the HiPPO-RNN loops) and ``cuda/hippo_ops.cpp`` (binding) at the top of the
repository, with their headers, are the only copy; they ship inside the
package as ``hippo_rs/cuda/`` and are found with :mod:`importlib.resources`.

There is no CPU fallback: when the extension cannot be built (torch without CUDA, no ``nvcc``, a
compiler error), every CUDA call raises :class:`RuntimeError` saying what is missing and how to fix
it. Without CUDA, nothing here runs and the CPU ops are unaffected.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.resources
import os
import shutil
import threading
import warnings
from pathlib import Path
from types import ModuleType
from typing import Iterator, List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from . import _ops, _rnn  # define the ops this module registers kernels for

__all__ = ["MEASURES", "available", "build_error", "load", "rnn_available", "sources"]

_NAME = "hippo_rs_cuda"
#: The measures with CUDA kernels (``parse_measure`` in ``cuda/hippo_scan.cu``; a test ties the two).
MEASURES = ("legs", "legt", "lmu", "lagt")
_KERNELS = importlib.resources.files("hippo_rs") / "cuda"
_lock = threading.Lock()
_module: Optional[ModuleType] = None
_error: Optional[str] = None
_toolkit: Optional["PipToolkit"] = None

_FIX = (
    "Fix: install a CUDA toolkit whose major version matches torch.version.cuda and make nvcc findable "
    "(CUDA_HOME=/path/to/cuda or nvcc on PATH), then run `python -m hippo_rs.torch.build_cuda`; "
    "or move the tensors to the CPU (tensor.cpu()), where the Rust kernels run."
)


def sources() -> List[str]:
    """The extension's source files (shipped inside the package as ``hippo_rs/cuda``, with the headers
    they include)."""
    return [str(_KERNELS / name) for name in ("hippo_scan.cu", "hippo_rnn.cu", "hippo_ops.cpp")]


class PipToolkit(NamedTuple):
    """A CUDA toolkit from NVIDIA's pip wheels: CUDA_HOME and the extra header and library directories."""

    home: str
    include_dirs: List[str]
    library_dirs: List[str]


def _pip_toolkit(roots: List[str], major: str) -> Optional[PipToolkit]:
    """The pip toolkit of CUDA ``major`` under the ``nvidia`` namespace directories ``roots``:

    * CUDA 13 wheels (``nvidia-cuda-nvcc``, ``nvidia-cuda-crt``, ``nvidia-nvvm``): one tree
      ``nvidia/cu13`` with ``bin/nvcc``, ``include`` and ``lib``; the namespace package may span
      several site directories (the runtime headers and libraries that torch installed in one, nvcc
      in another), whose ``cu13/include`` (with ``include/cccl``) and ``cu13/lib`` are added;
    * CUDA 12 wheels (``nvidia-cuda-nvcc-cu12``, ``nvidia-cuda-runtime-cu12``): one tree per wheel,
      ``nvidia/cuda_nvcc`` (``bin/nvcc``) and ``nvidia/cuda_runtime`` (``include``, ``lib``).
    """
    for root in map(Path, roots):
        home = root / f"cu{major}"
        if (home / "bin" / "nvcc").is_file():
            others = [Path(r) / f"cu{major}" for r in roots if Path(r) != root]
            includes = [d for o in others for d in (o / "include", o / "include" / "cccl") if d.is_dir()]
            libs = [str(o / "lib") for o in others if (o / "lib").is_dir()]
            return PipToolkit(str(home), [str(d) for d in includes], libs)
        nvcc, runtime = root / "cuda_nvcc", root / "cuda_runtime"
        if major == "12" and (nvcc / "bin" / "nvcc").is_file() and (runtime / "include").is_dir():
            return PipToolkit(str(nvcc), [str(runtime / "include")], [str(runtime / "lib")])
    return None


def _pip_cuda_home() -> Optional[PipToolkit]:
    """The toolkit of NVIDIA's pip wheels matching torch's CUDA major version (:func:`_pip_toolkit`),
    used when no other toolkit is configured."""
    if torch.version.cuda is None:
        return None
    try:
        import nvidia  # namespace package of NVIDIA's CUDA wheels
    except ImportError:
        return None
    return _pip_toolkit(list(getattr(nvidia, "__path__", [])), torch.version.cuda.split(".")[0])


def _cudart_link_flags(cuda_home: str, library_dirs: List[str]) -> List[str]:
    """Linker flags for a toolkit without the unversioned ``libcudart.so`` (NVIDIA's pip wheels ship
    only ``libcudart.so.<major>``, while cpp_extension links with ``-lcudart``): a private directory
    holding ``libcudart.so`` -> the versioned library. At run time the library torch already loaded
    satisfies the dependency."""
    libs = [Path(cuda_home) / d for d in ("lib64", "lib")] + [Path(d) for d in library_dirs]
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
        link.symlink_to(versioned[0])  # under the build lock: no other process is making it
    return [f"-L{link_dir}"]


def _missing() -> Optional[str]:
    """Why the extension cannot be built here, or None."""
    if torch.version.cuda is None:
        return (
            f"this torch build ({torch.__version__}) has no CUDA support; install a CUDA build of torch "
            "(see https://pytorch.org/get-started/locally/)"
        )
    from torch.utils import cpp_extension

    global _toolkit
    if cpp_extension.CUDA_HOME is None:
        _toolkit = _pip_cuda_home()
        if _toolkit is None:
            return (
                f"nvcc was not found (torch.version.cuda = {torch.version.cuda}; CUDA_HOME is unset, no nvcc on "
                "PATH, no /usr/local/cuda, no NVIDIA CUDA 12 or 13 pip toolkit)"
            )
        # cpp_extension resolved CUDA_HOME at import time; point it at the pip toolkit.
        os.environ["CUDA_HOME"] = _toolkit.home
        cpp_extension.CUDA_HOME = _toolkit.home
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


@contextlib.contextmanager
def build_lock(build_root: Path) -> Iterator[None]:
    """An exclusive lock across processes (``fcntl.flock`` on ``hippo_rs_cuda.lock`` in torch's
    extension root) around the first build: several processes starting at once (data-parallel
    workers) build once, one after the other, instead of failing each other."""
    build_root.mkdir(parents=True, exist_ok=True)
    with open(build_root / f"{_NAME}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load(verbose: bool = False) -> ModuleType:
    """Builds (first time) and loads the CUDA extension; raises RuntimeError saying what is missing.

    Also ``hippo_rs.torch.load_cuda()``: call it before capturing a CUDA graph, so that the capture
    does not compile."""
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
        extra = _toolkit or PipToolkit(cpp_extension.CUDA_HOME, [], [])
        try:
            with build_lock(Path(cpp_extension.get_default_build_root())):
                _module = cpp_extension.load(
                    name=_NAME,
                    sources=sources(),
                    extra_cflags=["-O3"],
                    extra_cuda_cflags=["-O3", "--expt-relaxed-constexpr"],
                    extra_include_paths=extra.include_dirs,
                    extra_ldflags=_cudart_link_flags(cpp_extension.CUDA_HOME, extra.library_dirs),
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


@torch.compiler.assume_constant_result
def rnn_available() -> bool:
    """Whether :class:`~hippo_rs.torch.HiPPORNN` runs CUDA tensors through the fused op here: a CUDA
    device and the extension (built on the first call). A constant to ``torch.compile``."""
    return available()


def build_error() -> Optional[str]:
    """The message of the last failed build, or None."""
    return _error


# --------------------------------------------------------------------------------------------------
# CUDA kernels of the ops. The CPU contract is checked here first (the same functions as the CPU
# kernels: dtypes, shapes, one device; coefficient rows finite or the +inf reset), then the C++
# launchers check shapes and dtypes again, with them in the messages.
# --------------------------------------------------------------------------------------------------


def check_rows(coef: Tensor) -> None:
    """Coefficient rows are finite, or the reset row (a_i = +inf): NaN or -inf is a ValueError, as
    on the CPU. Skipped while a CUDA graph is captured (the check reads the rows back)."""
    if coef.is_cuda and torch.cuda.is_current_stream_capturing():
        return
    a_i = coef[..., 0]
    ok = (torch.isfinite(a_i) | (a_i == float("inf"))) & torch.isfinite(coef[..., 1:]).all(dim=-1)
    if not bool(ok.all()):
        raise ValueError("coef: expected finite (a_i, a_e, a_b) or a reset row with a_i = +inf, got NaN or -inf")


def _same_device(first: Tensor, **others: Tensor) -> None:
    for name, x in others.items():
        if x.device != first.device:
            raise ValueError(f"{name}: expected a tensor on {first.device}, got {x.device}")


def _gbt_scan(f: Tensor, c0: Tensor, coef: Tensor, measure: str, params: List[float], return_all: bool) -> Tensor:
    _ops._check_scan(f, c0, coef)
    check_rows(coef)
    return load().gbt_scan(f, c0, coef, measure, list(params), return_all)


def _gbt_scan_backward(
    grad: Tensor, coef: Tensor, measure: str, params: List[float], return_all: bool, N: int
) -> Tuple[Tensor, Tensor]:
    _same_device(grad, coef=coef)
    _ops._check_scan_grad(grad, coef, return_all, N)
    check_rows(coef)
    return tuple(load().gbt_scan_backward(grad, coef, measure, list(params), return_all, int(N)))


def _gbt_step(c: Tensor, f: Tensor, coef: Tensor, measure: str, params: List[float]) -> Tensor:
    _same_device(c, f=f, coef=coef)
    _ops._check_step(c, f, coef)
    check_rows(coef)
    return load().gbt_step(c, f, coef, measure, list(params))


def _gbt_step_backward(grad: Tensor, coef: Tensor, measure: str, params: List[float]) -> Tuple[Tensor, Tensor]:
    _same_device(grad, coef=coef)
    _ops._check_step_grad(grad, coef)
    check_rows(coef)
    return tuple(load().gbt_step_backward(grad, coef, measure, list(params)))


def _layer_inputs(x: Tensor, h0: Tensor, c0: Tensor, coef: Tensor, lengths: Tensor, weights) -> None:
    """The CPU op's checks of the layer's inputs (dtypes, shapes), one device, valid coefficient rows."""
    _rnn._check(x, h0, c0, coef, lengths, weights)
    _same_device(x, h0=h0, c0=c0, coef=coef, lengths=lengths, **{n: w for n, w in weights if w is not None})
    check_rows(coef)


def _gbt_only(zoh_dt: Optional[float]) -> None:
    if zoh_dt is not None:
        raise ValueError("zoh_dt: the CUDA layer takes GBT memory steps only (ZOH cells run step by step on CUDA)")


def _rnn_forward(
    x: Tensor, h0: Tensor, c0: Tensor, coef: Tensor, lengths: Tensor, w_f: Tensor, b_f: Tensor, w_h: Tensor,
    b_h: Tensor, w_g: Optional[Tensor], b_g: Optional[Tensor], measure: str, params: List[float], save: bool,
    zoh_dt: Optional[float],
) -> Tuple[Tensor, ...]:
    weights = (("w_f", w_f), ("b_f", b_f), ("w_h", w_h), ("b_h", b_h), ("w_g", w_g), ("b_g", b_g))
    _gbt_only(zoh_dt)
    _layer_inputs(x, h0, c0, coef, lengths, weights)
    out = load().rnn_forward(x, h0, c0, coef, lengths, w_f, b_f, w_h, b_h, w_g, b_g, measure, list(params))
    if not save:  # inference: the saved tensors are dropped here (the loop writes them as it goes)
        out = [*out[:3], *(x.new_empty(0) for _ in range(3))]
    return tuple(out)


def _rnn_backward(
    grad_y: Tensor, grad_h_n: Tensor, grad_c_n: Tensor, x: Tensor, h0: Tensor, c0: Tensor, coef: Tensor,
    lengths: Tensor, w_f: Tensor, b_f: Tensor, w_h: Tensor, b_h: Tensor, w_g: Optional[Tensor],
    b_g: Optional[Tensor], y: Tensor, c: Tensor, h_tilde: Tensor, g: Tensor, measure: str, params: List[float],
    zoh_dt: Optional[float],
) -> Tuple[Tensor, ...]:
    weights = (("w_f", w_f), ("b_f", b_f), ("w_h", w_h), ("b_h", b_h), ("w_g", w_g), ("b_g", b_g))
    _gbt_only(zoh_dt)
    _layer_inputs(x, h0, c0, coef, lengths, weights)
    return tuple(load().rnn_backward(grad_y, grad_h_n, grad_c_n, x, h0, c0, coef, lengths, w_f, b_f, w_h, b_h, w_g,
                                     b_g, y, c, h_tilde, g, measure, list(params)))


for _op, _kernel in (
    (_ops.gbt_scan, _gbt_scan),
    (_ops.gbt_scan_backward, _gbt_scan_backward),
    (_ops.gbt_step, _gbt_step),
    (_ops.gbt_step_backward, _gbt_step_backward),
    (_rnn.rnn, _rnn_forward),
    (_rnn.rnn_backward, _rnn_backward),
):
    torch.library.register_kernel(_op, "cuda", _kernel)
