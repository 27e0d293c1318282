//! ZOH scans (`zoh_scan`, `zoh_scan_adjoint`): dense step matrices from the core's `zoh` module;
//! float32 and float64 keep their dtype; the GIL is released during the work.

use std::collections::HashMap;

use hippo_core::rows::step_size;
use hippo_core::zoh::{self as core_zoh, ZohSteps};
use hippo_core::{Measure, Real};
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::convert::{guard, to_py, zeros};
use crate::scan::{as_slice, describe, measure_of, shape_error, typed};

/// How the steps were given, owned (converted before the GIL is released).
enum Steps {
    Indexed(f64, Vec<u64>),
    Timestamped(f64, Vec<f64>, usize, Option<Vec<f64>>),
}

impl Steps {
    fn view(&self) -> ZohSteps<'_> {
        match self {
            Steps::Indexed(dt, start) => ZohSteps::Indexed { dt: *dt, start },
            Steps::Timestamped(dt, ts, width, prev) => {
                ZohSteps::Timestamped { dt: *dt, timestamps: ts, width: *width, t_prev: prev.as_deref() }
            }
        }
    }
}

fn steps_of(
    m: &Measure,
    dt: Option<f64>,
    t: Option<&Bound<'_, PyAny>>,
    timestamps: Option<PyReadonlyArrayDyn<'_, f64>>,
    t_prev: Option<PyReadonlyArrayDyn<'_, f64>>,
) -> PyResult<Steps> {
    let h = step_size(m, dt, timestamps.is_some()).map_err(to_py)?;
    match timestamps {
        Some(ts) => {
            if t.is_some() {
                return Err(PyValueError::new_err("t: a step index is not used with timestamps"));
            }
            let width = if ts.ndim() == 2 { ts.shape()[1] } else { 1 };
            let prev = match &t_prev {
                Some(p) => Some(as_slice(p, "t_prev")?.to_vec()),
                None => None,
            };
            Ok(Steps::Timestamped(h, as_slice(&ts, "timestamps")?.to_vec(), width, prev))
        }
        None => {
            if t_prev.is_some() {
                return Err(PyValueError::new_err("t_prev: only used with timestamps"));
            }
            let start = match t {
                None => vec![0],
                Some(obj) => match obj.extract::<u64>() {
                    Ok(k) => vec![k],
                    Err(_) => {
                        let arr: PyReadonlyArrayDyn<'_, u64> = obj.extract().map_err(|_| {
                            PyValueError::new_err("t: expected a step index 0 <= t < 2**63 or a uint64 array (R,)")
                        })?;
                        as_slice(&arr, "t")?.to_vec()
                    }
                },
            };
            Ok(Steps::Indexed(h, start))
        }
    }
}

fn zoh_typed<'py, T: Real + Element>(
    py: Python<'py>,
    m: Measure,
    f: Bound<'py, PyArrayDyn<T>>,
    c0: &Bound<'py, PyAny>,
    steps: Steps,
    return_all: bool,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let (len, rows) = (f.shape()[0], f.shape()[1]);
    let c0 = typed::<T>(c0, "c0", &[2], dtype)?;
    if c0.shape()[0] != rows || c0.shape()[1] == 0 {
        return Err(shape_error("c0", format!("({rows}, N) with N >= 1 to match f"), c0.shape()));
    }
    let n = c0.shape()[1];
    let want: Vec<usize> = if return_all { vec![len, rows, n] } else { vec![rows, n] };
    let out =
        zeros::<T>(py, want.as_slice(), if return_all { "return_all=True: the states" } else { "the final state" })?;
    {
        let (f_ro, c_ro) = (f.readonly(), c0.readonly());
        let (fs, cs) = (as_slice(&f_ro, "f")?, as_slice(&c_ro, "c0")?);
        let mut out_rw = out.readwrite();
        let os = out_rw.as_slice_mut().map_err(|e| PyValueError::new_err(format!("out: {e}")))?;
        py.detach(|| core_zoh::zoh_scan(&m, n, fs, cs, steps.view(), len, rows, return_all, os)).map_err(to_py)?;
    }
    Ok(out.into_any())
}

/// zoh_scan(measure, params, f (L, R), c0 (R, N), dt, return_all, t=None, timestamps=None, t_prev=None)
/// -> states (L, R, N) if return_all else (R, N); float32 or float64 as f. Steps: a fixed dt
/// (time-invariant), LegS step indices `t` (int or uint64 (R,)), or timestamps (L,) / (L, R) with
/// t_prev (1 or R times; NaN: nothing absorbed).
#[pyfunction]
#[pyo3(signature = (measure, params, f, c0, dt, return_all, t=None, timestamps=None, t_prev=None))]
#[allow(clippy::too_many_arguments)]
fn zoh_scan<'py>(
    py: Python<'py>,
    measure: &str,
    params: HashMap<String, f64>,
    f: &Bound<'py, PyAny>,
    c0: &Bound<'py, PyAny>,
    dt: Option<f64>,
    return_all: bool,
    t: Option<&Bound<'py, PyAny>>,
    timestamps: Option<PyReadonlyArrayDyn<'py, f64>>,
    t_prev: Option<PyReadonlyArrayDyn<'py, f64>>,
) -> PyResult<Bound<'py, PyAny>> {
    guard("zoh_scan", || {
        let m = measure_of(measure, &params)?;
        let steps = steps_of(&m, dt, t, timestamps, t_prev)?;
        if let Ok(f32s) = typed::<f32>(f, "f", &[2], "float32") {
            return zoh_typed(py, m, f32s, c0, steps, return_all, "float32");
        }
        let f64s = typed::<f64>(f, "f", &[2], "float64").map_err(|e| {
            if e.is_instance_of::<PyTypeError>(py) {
                PyTypeError::new_err(format!(
                    "f: expected a float32 or float64 array of shape (L, R), got {}",
                    describe(f)
                ))
            } else {
                e
            }
        })?;
        zoh_typed(py, m, f64s, c0, steps, return_all, "float64")
    })
}

fn adjoint_typed<'py, T: Real + Element>(
    py: Python<'py>,
    m: Measure,
    dt: f64,
    grad: Bound<'py, PyArrayDyn<T>>,
    steps: usize,
    return_all: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let shape = grad.shape().to_vec();
    let ok = if return_all { shape.len() == 3 && shape[0] == steps } else { shape.len() == 2 };
    if !ok || shape.last() == Some(&0) {
        let want = if return_all { format!("({steps}, R, N)") } else { "(R, N)".to_string() };
        return Err(shape_error("grad", want, &shape));
    }
    let (rows, n) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let grad_f = zeros::<T>(py, [steps, rows].as_slice(), "the gradient of f")?;
    let grad_c0 = zeros::<T>(py, [rows, n].as_slice(), "the gradient of c0")?;
    {
        let g_ro = grad.readonly();
        let gs = as_slice(&g_ro, "grad")?;
        let (mut gf_rw, mut gc_rw) = (grad_f.readwrite(), grad_c0.readwrite());
        let gf = gf_rw.as_slice_mut().map_err(|e| PyValueError::new_err(e.to_string()))?;
        let gc = gc_rw.as_slice_mut().map_err(|e| PyValueError::new_err(e.to_string()))?;
        py.detach(|| core_zoh::zoh_scan_adjoint(&m, n, dt, gs, steps, rows, return_all, gf, gc)).map_err(to_py)?;
    }
    Ok((grad_f, grad_c0).into_pyobject(py)?.into_any())
}

/// zoh_scan_adjoint(measure, params, grad, dt, steps, return_all) -> (grad_f (L, R), grad_c0 (R, N)):
/// the adjoint of a fixed-step ZOH scan of a time-invariant measure.
#[pyfunction]
fn zoh_scan_adjoint<'py>(
    py: Python<'py>,
    measure: &str,
    params: HashMap<String, f64>,
    grad: &Bound<'py, PyAny>,
    dt: f64,
    steps: usize,
    return_all: bool,
) -> PyResult<Bound<'py, PyAny>> {
    guard("zoh_scan_adjoint", || {
        let m = measure_of(measure, &params)?;
        let dt = step_size(&m, Some(dt), false).map_err(to_py)?;
        if let Ok(g) = typed::<f32>(grad, "grad", &[2, 3], "float32") {
            return adjoint_typed(py, m, dt, g, steps, return_all);
        }
        let g = typed::<f64>(grad, "grad", &[2, 3], "float64")?;
        adjoint_typed(py, m, dt, g, steps, return_all)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(zoh_scan, m)?)?;
    m.add_function(wrap_pyfunction!(zoh_scan_adjoint, m)?)?;
    Ok(())
}
