//! `_core.reconstruct` / `_core.reconstruct_adjoint`: evaluation of the function HiPPO coefficients
//! encode at past times, and its transpose (hippo_core::reconstruct).

use hippo_core::float::Real;
use hippo_core::reconstruct::{reconstruct as core_reconstruct, reconstruct_adjoint as core_adjoint};
use hippo_core::{Measure, Result as CoreResult};
use numpy::{
    Element, IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::convert::{guard, param_refs, to_py};

/// Which of the two maps to run: `Forward` takes c (R, N), `Adjoint(N)` takes y (R, P).
#[derive(Clone, Copy)]
enum Direction {
    Forward,
    Adjoint(usize),
}

fn run<'py, T: Element + Real>(
    py: Python<'py>,
    m: Measure,
    x: &Bound<'py, PyAny>,
    name: &str,
    times: &[f64],
    t: f64,
    direction: Direction,
) -> PyResult<Bound<'py, PyAny>> {
    let x: PyReadonlyArray2<'py, T> = x.extract()?;
    let (rows, cols) = (x.shape()[0], x.shape()[1]);
    let data = x.as_slice().map_err(|_| PyValueError::new_err(format!("{name}: expected a C-contiguous array")))?;
    let (out, width): (CoreResult<Vec<T>>, usize) = match direction {
        Direction::Forward => {
            if cols == 0 {
                return Err(PyValueError::new_err("c: expected N >= 1 coefficients on the last axis, got 0"));
            }
            (py.detach(|| core_reconstruct(&m, data, cols, times, t)), times.len())
        }
        Direction::Adjoint(n) => {
            if cols != times.len() {
                return Err(PyValueError::new_err(format!(
                    "y: expected {} values per row (one per time), got {cols}",
                    times.len()
                )));
            }
            (py.detach(|| core_adjoint(&m, data, n, times, t)), n)
        }
    };
    Ok(out.map_err(to_py)?.into_pyarray(py).reshape([rows, width])?.into_any())
}

fn dispatch<'py>(
    py: Python<'py>,
    m: Measure,
    x: &Bound<'py, PyAny>,
    name: &str,
    times: PyReadonlyArray1<'py, f64>,
    t: f64,
    direction: Direction,
) -> PyResult<Bound<'py, PyAny>> {
    let times = times.as_slice().map_err(|_| PyValueError::new_err("times: expected a contiguous array"))?;
    if x.cast::<PyArray2<f64>>().is_ok() {
        run::<f64>(py, m, x, name, times, t, direction)
    } else if x.cast::<PyArray2<f32>>().is_ok() {
        run::<f32>(py, m, x, name, times, t, direction)
    } else {
        Err(PyTypeError::new_err(format!("{name}: expected a 2-D float32 or float64 array")))
    }
}

/// reconstruct(measure, params, c, times, t) -> (R, P) in c's dtype: sum_k c[r, k] phi_k(times[p]).
/// c: (R, N) float32/float64 C-contiguous; times: (P,) float64 absolute times; t: the state's time.
#[pyfunction]
fn reconstruct<'py>(
    py: Python<'py>,
    measure: &str,
    params: Vec<(String, f64)>,
    c: &Bound<'py, PyAny>,
    times: PyReadonlyArray1<'py, f64>,
    t: f64,
) -> PyResult<Bound<'py, PyAny>> {
    guard("reconstruct", || {
        let m = Measure::new(measure, &param_refs(&params)).map_err(to_py)?;
        dispatch(py, m, c, "c", times, t, Direction::Forward)
    })
}

/// reconstruct_adjoint(measure, params, y, times, t, n) -> (R, N) in y's dtype: the transpose,
/// g[r, k] = sum_p y[r, p] phi_k(times[p]). y: (R, P) float32/float64 C-contiguous.
#[pyfunction]
fn reconstruct_adjoint<'py>(
    py: Python<'py>,
    measure: &str,
    params: Vec<(String, f64)>,
    y: &Bound<'py, PyAny>,
    times: PyReadonlyArray1<'py, f64>,
    t: f64,
    n: usize,
) -> PyResult<Bound<'py, PyAny>> {
    guard("reconstruct_adjoint", || {
        let m = Measure::new(measure, &param_refs(&params)).map_err(to_py)?;
        dispatch(py, m, y, "y", times, t, Direction::Adjoint(n))
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(reconstruct, m)?)?;
    m.add_function(wrap_pyfunction!(reconstruct_adjoint, m)?)?;
    Ok(())
}
