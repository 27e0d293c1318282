"""The tasks by name; each module owns its protocol (data, splits, transforms, default flags)."""

from . import adding, copying, pmnist, trajectories

#: Task name -> module with ``DEFAULTS``, ``HELP``, ``add_arguments(parser)`` and ``load(args, task)``.
TASKS = {"pmnist": pmnist, "smnist": pmnist, "trajectories": trajectories, "adding": adding, "copying": copying}

__all__ = ["TASKS"]
