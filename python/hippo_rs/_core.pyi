from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str
MEASURES: List[str]
METHODS: List[str]
CONVENTIONS: List[str]
MEASURE_PARAMS: Dict[str, List[Tuple[str, float]]]
METHOD_WEIGHTS: Dict[str, Optional[float]]

def measure_params(measure: str, params: List[Tuple[str, float]]) -> List[float]: ...
def gbt_weight(method: str, gbt_alpha: Optional[float] = None) -> Optional[float]: ...
def check_convention(convention: str) -> None: ...
def check_dt(dt: float) -> None: ...
def gbt_rows(
    measure: str,
    steps: int,
    method: str,
    gbt_alpha: Optional[float],
    dt: Optional[float],
    convention: str,
    t: Union[None, int, npt.NDArray[np.uint64]] = None,
    timestamps: Optional[npt.NDArray[np.float64]] = None,
    t_prev: Optional[npt.NDArray[np.float64]] = None,
) -> npt.NDArray[np.float64]: ...

def transition(
    measure: str, n: int, params: List[Tuple[str, float]]
) -> Tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def discretize(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], dt: float, method: str, gbt_alpha: Optional[float] = None
) -> Tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def legs_step_matrices(
    n: int, t: int, method: str, gbt_alpha: Optional[float] = None, convention: str = "original"
) -> Tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def reconstruct(
    measure: str, params: List[Tuple[str, float]], c: npt.NDArray[np.floating], times: npt.NDArray[np.float64], t: float
) -> npt.NDArray[np.floating]: ...
def reconstruct_adjoint(
    measure: str,
    params: List[Tuple[str, float]],
    y: npt.NDArray[np.floating],
    times: npt.NDArray[np.float64],
    t: float,
    n: int,
) -> npt.NDArray[np.floating]: ...

# O(N) scans (float32 or float64, C-contiguous; GIL released) ----
_Float = Union[npt.NDArray[np.float32], npt.NDArray[np.float64]]

def gbt_scan(
    measure: str,
    params: Dict[str, float],
    f: _Float,
    c0: Optional[_Float],
    coef: npt.NDArray[np.float64],
    return_all: bool,
    out: Optional[_Float] = None,
) -> _Float: ...
def gbt_scan_adjoint(
    measure: str, params: Dict[str, float], grad: _Float, coef: npt.NDArray[np.float64], return_all: bool
) -> Tuple[_Float, _Float]: ...
def structured_apply(
    measure: str, params: Dict[str, float], x: npt.NDArray[np.float64], d: float, op: str
) -> npt.NDArray[np.float64]: ...
def zoh_scan(
    measure: str,
    params: Dict[str, float],
    f: _Float,
    c0: _Float,
    dt: Optional[float],
    return_all: bool,
    t: Union[None, int, npt.NDArray[np.uint64]] = None,
    timestamps: Optional[npt.NDArray[np.float64]] = None,
    t_prev: Optional[npt.NDArray[np.float64]] = None,
) -> _Float: ...
def zoh_scan_adjoint(
    measure: str, params: Dict[str, float], grad: _Float, dt: float, steps: int, return_all: bool
) -> Tuple[_Float, _Float]: ...
def _set_isa(name: Optional[str] = None) -> str: ...
