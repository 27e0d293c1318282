"""Ahead-of-time build of the hippo_rs CUDA kernels: ``python -m hippo_rs.torch.build_cuda``.

Compiles ``cuda/hippo_scan.cu`` and ``cuda/hippo_ops.cpp`` (shipped as ``hippo_rs/cuda``) with torch.utils.cpp_extension into
torch's extension cache (``TORCH_EXTENSIONS_DIR``), showing the compiler output, so that the first
CUDA call does not compile. Without a GPU, set ``TORCH_CUDA_ARCH_LIST`` (e.g. ``"9.0"`` for H100)
to choose the architectures; with one, the visible devices' architectures are used. Exit status 0
when built, 1 with the reason on stderr otherwise.
"""

from __future__ import annotations

import sys


def main() -> int:
    from . import _cuda

    try:
        module = _cuda.load(verbose=True)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"hippo_rs CUDA kernels built: {module.__file__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
