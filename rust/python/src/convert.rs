//! Error mapping and small argument converters shared by the binding modules.

use hippo_core::HippoError;
use pyo3::exceptions::{PyMemoryError, PyValueError};
use pyo3::PyErr;

/// `HippoError` -> Python: invalid arguments are `ValueError`, failed allocations `MemoryError`.
pub fn to_py(err: HippoError) -> PyErr {
    match err {
        HippoError::InvalidArgument { .. } => PyValueError::new_err(err.to_string()),
        HippoError::Allocation { .. } => PyMemoryError::new_err(err.to_string()),
    }
}

/// Borrowed `(name, value)` pairs from owned ones, as `Measure::new` takes them.
pub fn param_refs(params: &[(String, f64)]) -> Vec<(&str, f64)> {
    params.iter().map(|(k, v)| (k.as_str(), *v)).collect()
}
