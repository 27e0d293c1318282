"""The one error type of the experiments: bad user input, reported as one line and exit status 2."""

from __future__ import annotations


class ExperimentError(Exception):
    """A user's mistake (missing data, bad flag, existing run directory, ...): one line, exit status 2."""
