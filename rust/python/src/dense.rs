//! Dense, reference-quality entry points: transition matrices and discretised matrices (float64).

use hippo_core::discretize::{self as core_discretize, LegsConvention, Method};
use hippo_core::Measure;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::convert::{guard, param_refs, to_py};

type Pair<'py> = (Bound<'py, PyArray2<f64>>, Bound<'py, PyArray1<f64>>);

fn to_numpy<'py>(py: Python<'py>, n: usize, a: Vec<f64>, b: Vec<f64>) -> PyResult<Pair<'py>> {
    let a = a.into_pyarray(py).reshape([n, n])?;
    Ok((a, b.into_pyarray(py)))
}

/// transition(measure, N, params) -> (A, B): the closed-form HiPPO matrices in the code sign.
#[pyfunction]
fn transition<'py>(py: Python<'py>, measure: &str, n: usize, params: Vec<(String, f64)>) -> PyResult<Pair<'py>> {
    guard("transition", || {
        let m = Measure::new(measure, &param_refs(&params)).map_err(to_py)?;
        let (a, b) = py.detach(|| m.transition(n)).map_err(to_py)?;
        to_numpy(py, n, a, b)
    })
}

/// discretize(A, B, dt, method, gbt_alpha) -> (Ad, Bd) for a time-invariant system.
#[pyfunction]
#[pyo3(signature = (a, b, dt, method, gbt_alpha=None))]
fn discretize<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f64>,
    b: PyReadonlyArray1<'py, f64>,
    dt: f64,
    method: &str,
    gbt_alpha: Option<f64>,
) -> PyResult<Pair<'py>> {
    guard("discretize", || {
        let shape = a.shape().to_vec();
        if shape[0] != shape[1] {
            return Err(PyValueError::new_err(format!(
                "A: expected a square (N, N) matrix, got shape ({}, {})",
                shape[0], shape[1]
            )));
        }
        let n = shape[0];
        if b.len() != n {
            return Err(PyValueError::new_err(format!(
                "B: expected shape ({n},) to match A of shape ({n}, {n}), got ({},)",
                b.len()
            )));
        }
        if n == 0 {
            return Err(PyValueError::new_err("A: expected N >= 1, got an empty (0, 0) matrix"));
        }
        let method = Method::new(method, gbt_alpha).map_err(to_py)?;
        let a = a.as_array().iter().copied().collect::<Vec<f64>>();
        let b = b.as_array().iter().copied().collect::<Vec<f64>>();
        if a.iter().chain(&b).any(|x| !x.is_finite()) {
            return Err(PyValueError::new_err("A, B: expected finite entries, got NaN or inf"));
        }
        let (ad, bd) = py.detach(|| core_discretize::discretize(&a, &b, n, dt, method)).map_err(to_py)?;
        to_numpy(py, n, ad, bd)
    })
}

/// legs_step_matrices(N, t, method, gbt_alpha, convention) -> (A_t, B_t): dense LegS step at index t.
#[pyfunction]
#[pyo3(signature = (n, t, method, gbt_alpha=None, convention="original"))]
fn legs_step_matrices<'py>(
    py: Python<'py>,
    n: usize,
    t: u64,
    method: &str,
    gbt_alpha: Option<f64>,
    convention: &str,
) -> PyResult<Pair<'py>> {
    guard("legs_step_matrices", || {
        let method = Method::new(method, gbt_alpha).map_err(to_py)?;
        let convention = LegsConvention::new(convention).map_err(to_py)?;
        let (ad, bd) = py.detach(|| core_discretize::legs_step_matrices(n, t, method, convention)).map_err(to_py)?;
        to_numpy(py, n, ad, bd)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(transition, m)?)?;
    m.add_function(wrap_pyfunction!(discretize, m)?)?;
    m.add_function(wrap_pyfunction!(legs_step_matrices, m)?)?;
    Ok(())
}
