"""usage: hippo-rs COMMAND [options]   (or: python -m hippo_rs COMMAND [options])

commands:
  approx   online function approximation (HiPPO paper section 4.3, Figure 4); hippo-rs approx --help
  train    the paper's experiments: train a model on a task (pmnist, trajectories, ...); hippo-rs train --help
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Dispatches to the command's ``main``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "approx":
        from .approx import main as approx_main

        return approx_main(rest)
    if command == "train":
        from .experiments import main as train_main

        return train_main(rest)
    print(f"hippo-rs: error: unknown command '{command}' (commands: approx, train)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
