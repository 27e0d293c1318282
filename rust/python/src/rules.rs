//! The core's rules, for the Python layers: measure, method and convention names with their
//! parameters, defaults and aliases (as module constants), argument checks that build nothing, and
//! the per-step coefficient rows of scans and steps.

use hippo_core::discretize::{self as core_discretize, LegsConvention, Method};
use hippo_core::measure::{self as core_measure, Measure};
use hippo_core::rows::{previous_times, RowRule};
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{guard, param_refs, to_py};

/// measure_params(measure, params) -> [values]: the measure's parameter values in their fixed order
/// (`MEASURE_PARAMS`), defaults filled in, names and ranges checked.
#[pyfunction]
fn measure_params(measure: &str, params: Vec<(String, f64)>) -> PyResult<Vec<f64>> {
    guard("measure_params", || {
        let values = core_measure::parameter_values(measure, &param_refs(&params)).map_err(to_py)?;
        Measure::from_values(measure, &values).map_err(to_py)?;
        Ok(values)
    })
}

/// gbt_weight(method, gbt_alpha=None) -> float | None: the GBT weight of the implicit side, None for ZOH.
#[pyfunction]
#[pyo3(signature = (method, gbt_alpha=None))]
fn gbt_weight(method: &str, gbt_alpha: Option<f64>) -> PyResult<Option<f64>> {
    guard("gbt_weight", || Ok(Method::new(method, gbt_alpha).map_err(to_py)?.alpha()))
}

/// check_convention(convention): a LegS convention name, or ValueError.
#[pyfunction]
fn check_convention(convention: &str) -> PyResult<()> {
    guard("check_convention", || LegsConvention::new(convention).map(|_| ()).map_err(to_py))
}

/// check_dt(dt): a finite step dt > 0, or ValueError.
#[pyfunction]
fn check_dt(dt: f64) -> PyResult<()> {
    guard("check_dt", || core_discretize::check_dt(dt).map_err(to_py))
}

/// check_timestamps(measure, timestamps (L,) | (L, R), t_prev=None): the checks of the timestamped
/// rows without building them (finite, LegS >= 0, strictly increasing, after t_prev).
#[pyfunction]
#[pyo3(signature = (measure, timestamps, t_prev=None))]
fn check_timestamps(
    measure: &str,
    timestamps: PyReadonlyArrayDyn<'_, f64>,
    t_prev: Option<PyReadonlyArrayDyn<'_, f64>>,
) -> PyResult<()> {
    guard("check_timestamps", || {
        let m = Measure::new(measure, &[]).map_err(to_py)?;
        let width = if timestamps.ndim() == 2 { timestamps.shape()[1] } else { 1 };
        if timestamps.len() == 0 || width == 0 {
            return Ok(());
        }
        let prev = match &t_prev {
            Some(p) => Some(slice_of(p, "t_prev")?),
            None => None,
        };
        previous_times(m.is_scale_invariant(), slice_of(&timestamps, "timestamps")?, width, prev)
            .map(|_| ())
            .map_err(to_py)
    })
}

fn slice_of<'a>(a: &'a PyReadonlyArrayDyn<'_, f64>, arg: &str) -> PyResult<&'a [f64]> {
    a.as_slice().map_err(|_| PyValueError::new_err(format!("{arg}: expected a C-contiguous array")))
}

/// gbt_rows(measure, steps, method, gbt_alpha, dt, convention, t=None, timestamps=None, t_prev=None)
/// -> float64 rows (steps, 3), or (steps, R, 3) for per-row step indices `t` (int64 (R,)) or
/// timestamps (steps, R). `t`: the LegS step index of the first sample (an int; default 0);
/// `timestamps` (steps,) or (steps, R) with `t_prev` (1 or R times; NaN: nothing absorbed).
#[pyfunction]
#[pyo3(signature = (measure, steps, method, gbt_alpha, dt, convention, t=None, timestamps=None, t_prev=None))]
#[allow(clippy::too_many_arguments)]
fn gbt_rows<'py>(
    py: Python<'py>,
    measure: &str,
    steps: usize,
    method: &str,
    gbt_alpha: Option<f64>,
    dt: Option<f64>,
    convention: &str,
    t: Option<&Bound<'py, PyAny>>,
    timestamps: Option<PyReadonlyArrayDyn<'py, f64>>,
    t_prev: Option<PyReadonlyArrayDyn<'py, f64>>,
) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    guard("gbt_rows", || {
        let m = Measure::new(measure, &[]).map_err(to_py)?;
        let method = Method::new(method, gbt_alpha).map_err(to_py)?;
        let convention = LegsConvention::new(convention).map_err(to_py)?;
        let rule = RowRule::new(&m, method, dt, convention, timestamps.is_some()).map_err(to_py)?;
        let (rows, shape) = match timestamps {
            Some(ts) => {
                if t.is_some() {
                    return Err(PyValueError::new_err("t: a step index is not used with timestamps"));
                }
                let shape = ts.shape().to_vec();
                if shape.is_empty() || shape.len() > 2 || shape[0] != steps {
                    return Err(PyValueError::new_err(format!(
                        "timestamps: expected shape ({steps},) or ({steps}, R), got {shape:?}"
                    )));
                }
                let width = if shape.len() == 2 { shape[1] } else { 1 };
                let prev = match &t_prev {
                    Some(p) => Some(slice_of(p, "t_prev")?),
                    None => None,
                };
                let values = slice_of(&ts, "timestamps")?;
                let rows = if steps == 0 || width == 0 {
                    Vec::new()
                } else {
                    py.detach(|| rule.timestamp_rows(values, width, prev)).map_err(to_py)?
                };
                let mut out_shape = shape;
                out_shape.push(3);
                (rows, out_shape)
            }
            None => {
                if t_prev.is_some() {
                    return Err(PyValueError::new_err("t_prev: only used with timestamps"));
                }
                match t {
                    None => (rule.index_rows(steps, &[0], false).map_err(to_py)?, vec![steps, 3]),
                    Some(obj) => match obj.extract::<u64>() {
                        Ok(k) => (rule.index_rows(steps, &[k], false).map_err(to_py)?, vec![steps, 3]),
                        Err(_) => {
                            let arr: PyReadonlyArrayDyn<'py, u64> = obj.extract().map_err(|_| {
                                PyValueError::new_err("t: expected a step index 0 <= t < 2**63 or a uint64 array (R,)")
                            })?;
                            let ks =
                                arr.as_slice().map_err(|_| PyValueError::new_err("t: expected a contiguous array"))?;
                            let rows = rule.index_rows(steps, ks, true).map_err(to_py)?;
                            (rows, vec![steps, ks.len(), 3])
                        }
                    },
                }
            }
        };
        rows.into_pyarray(py).reshape(shape)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("MEASURES", core_measure::measure_names().collect::<Vec<_>>())?;
    m.add("METHODS", core_discretize::METHOD_NAMES.to_vec())?;
    m.add("CONVENTIONS", core_discretize::CONVENTION_NAMES.to_vec())?;
    let params = PyDict::new(py);
    for (name, list) in core_measure::MEASURE_PARAMS {
        params.set_item(name, list.to_vec())?;
    }
    m.add("MEASURE_PARAMS", params)?;
    let weights = PyDict::new(py);
    for (name, method) in core_discretize::METHOD_SPELLINGS {
        weights.set_item(name, method.alpha())?;
    }
    m.add("METHOD_WEIGHTS", weights)?;
    m.add_function(wrap_pyfunction!(measure_params, m)?)?;
    m.add_function(wrap_pyfunction!(gbt_weight, m)?)?;
    m.add_function(wrap_pyfunction!(check_convention, m)?)?;
    m.add_function(wrap_pyfunction!(check_dt, m)?)?;
    m.add_function(wrap_pyfunction!(gbt_rows, m)?)?;
    m.add_function(wrap_pyfunction!(check_timestamps, m)?)?;
    Ok(())
}
