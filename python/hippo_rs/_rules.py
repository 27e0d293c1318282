"""The core's rules as the Python layers use them: one checked entry per argument kind.

Names, aliases, parameters, defaults and ranges are defined once in the Rust core (``measure.rs``,
``discretize.rs``) and read here through ``hippo_rs._core``: the numpy functions, ``Memory``, the
CLI and the torch front end all validate through these helpers, so the same mistake raises the same
exception with the same message everywhere. Nothing here builds a matrix.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from . import _core
from . import _validate as _v

MEASURES = tuple(_core.MEASURES)
METHODS = tuple(_core.METHODS)
CONVENTIONS = tuple(_core.CONVENTIONS)


def name(value: Any, arg: str, valid: tuple) -> str:
    """A name argument (measure, method, convention): a ``str``, else ``TypeError``."""
    if not isinstance(value, str):
        raise TypeError(f"{arg}: expected a str, one of {valid}, got {type(value).__name__}")
    return value


def measure_params(measure: Any, params: Dict[str, Any], check: bool = True) -> Dict[str, float]:
    """The measure's parameters ``{name: value}`` in their fixed order with defaults filled in.

    ``check=False`` (inside ``torch.compile``, where the core cannot be called) reads the same
    table of names and defaults without the range checks."""
    name(measure, "measure", MEASURES)
    if not check:
        return {n: float(params.get(n, d)) for n, d in _core.MEASURE_PARAMS[measure]}
    values = _core.measure_params(measure, _v.params(params))
    return {n: v for (n, _), v in zip(_core.MEASURE_PARAMS[measure], values)}


def gbt_weight(method: Any, gbt_alpha: Any, check: bool = True) -> Optional[float]:
    """The GBT weight of ``method`` (``gbt`` takes ``gbt_alpha``), None for ZOH."""
    name(method, "method", METHODS)
    if not check:
        return _core.METHOD_WEIGHTS.get(method, gbt_alpha)
    return _core.gbt_weight(method, None if gbt_alpha is None else _v.real(gbt_alpha, "gbt_alpha"))


def gbt_step(measure: str, method: str, gbt_alpha: Any, dt: Optional[float], convention: str, timestamped: bool) -> None:
    """Checks the arguments of an O(N) GBT step together (ZOH has none; a time-invariant measure needs
    ``dt`` unless timestamped) by asking the core for zero rows."""
    stamps = np.empty(0) if timestamped else None
    _core.gbt_rows(measure, 0, method, gbt_alpha, dt, convention, None, stamps)


def convention(value: Any) -> str:
    """A LegS convention name (``original`` or ``paper``)."""
    _core.check_convention(name(value, "convention", CONVENTIONS))
    return value


def dt(value: Any) -> Optional[float]:
    """None, or a finite step ``dt > 0``."""
    if value is None:
        return None
    h = _v.real(value, "dt")
    _core.check_dt(h)
    return h


def step_index(value: Any, arg: str = "t") -> int:
    """A LegS step index: an integer ``0 <= t < 2**63`` (samples already absorbed)."""
    k = _v.integer(value, arg, "an integer step index >= 0")
    if not 0 <= k < 2**63:
        raise ValueError(f"{arg}: expected a step index 0 <= {arg} < 2**63, got {k}")
    return k


def flag(value: Any, arg: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{arg}: expected a bool, got {type(value).__name__}")
    return bool(value)
