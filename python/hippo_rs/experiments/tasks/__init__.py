"""The tasks by name; each module owns its protocol (data, splits, transforms, default flags)."""

from . import adding, copying, pmnist, trajectories

#: Task name -> module with ``DEFAULTS``, ``add_arguments(parser)`` and ``load(args, task)``.
TASKS = {"pmnist": pmnist, "smnist": pmnist, "trajectories": trajectories, "adding": adding, "copying": copying}
#: One line per task for ``--help``.
HELP = {
    "pmnist": "pixel-by-pixel classification, permuted pixels (MNIST idx files; offline: 8x8 digits)",
    "smnist": "pixel-by-pixel classification, pixels in raster order (same data as pmnist)",
    "trajectories": trajectories.HELP,
    "adding": adding.HELP,
    "copying": copying.HELP,
}

__all__ = ["HELP", "TASKS"]
