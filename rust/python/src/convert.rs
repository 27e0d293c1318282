//! Error mapping and small argument converters shared by the binding modules.

use std::ffi::c_int;
use std::panic::{self, AssertUnwindSafe};

use hippo_core::HippoError;
use numpy::npyffi::{npy_intp, PY_ARRAY_API};
use numpy::{Element, PyArrayDescrMethods, PyArrayDyn};
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

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

/// Runs the body of a binding entry point. A panic inside it (a bug: every user error is a
/// `HippoError`) is caught here and becomes a Python `RuntimeError` naming the entry point and
/// carrying the panic's message, instead of unwinding into the interpreter as PyO3's
/// `PanicException` (a `BaseException` that `except Exception` does not catch).
pub fn guard<R>(entry: &str, body: impl FnOnce() -> PyResult<R>) -> PyResult<R> {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            Err(PyRuntimeError::new_err(format!(
                "hippo_rs internal error in {entry}: {message} (please report this with the call that caused it)"
            )))
        }
    }
}

/// A new zeroed C-order numpy array of `shape`. A size that cannot be addressed, or an allocation
/// numpy cannot make, is a `MemoryError` naming `what` and the size (rust-numpy's own `zeros`
/// panics on a failed allocation).
pub fn zeros<'py, T: Element>(py: Python<'py>, shape: &[usize], what: &str) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let bytes = shape
        .iter()
        .try_fold(std::mem::size_of::<T>(), |acc, &d| acc.checked_mul(d))
        .filter(|&b| b <= isize::MAX as usize);
    let Some(bytes) = bytes else {
        return Err(PyMemoryError::new_err(format!("{what}: shape {shape:?} is larger than any memory can hold")));
    };
    let mut dims: Vec<npy_intp> = shape.iter().map(|&d| d as npy_intp).collect();
    // SAFETY: dims outlives the call; PyArray_Zeros steals the dtype reference that into_dtype_ptr
    // hands over, and returns a new reference or NULL with a Python error set.
    let array = unsafe {
        let ptr = PY_ARRAY_API.PyArray_Zeros(
            py,
            dims.len() as c_int,
            dims.as_mut_ptr(),
            T::get_dtype(py).into_dtype_ptr(),
            0,
        );
        Bound::from_owned_ptr_or_err(py, ptr)
    };
    match array {
        Ok(array) => Ok(unsafe { array.cast_into_unchecked() }),
        Err(err) if err.is_instance_of::<PyMemoryError>(py) => Err(PyMemoryError::new_err(format!(
            "{what}: cannot allocate {shape:?} ({:.3} GiB)",
            bytes as f64 / f64::from(1u32 << 30)
        ))),
        Err(err) => Err(err),
    }
}

/// Asks Linux to back the 2 MiB-aligned interior of `buf` with transparent huge pages
/// (`madvise(MADV_HUGEPAGE)`), for large output buffers the caller allocated and nothing has touched
/// yet (torch's `empty`): their first write then faults in 2 MiB at a time instead of 4 KiB, which on
/// the layer's hundreds of MB of saved tensors costs a large share of a training step in page
/// faults. Advice only: the contents are unchanged, and a refusal (THP off, another OS) is ignored.
pub fn advise_huge_pages<T>(buf: &mut [T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = buf.as_mut_ptr() as usize;
        let (first, end) = (start.next_multiple_of(HUGE), start + std::mem::size_of_val(buf));
        let last = end - end % HUGE;
        if last > first {
            // SAFETY: [first, last) lies inside `buf`, which this call borrows mutably; MADV_HUGEPAGE
            // changes how future faults are served, never the memory's contents or mapping.
            unsafe { libc::madvise(first as *mut libc::c_void, last - first, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

/// A test hook: panics with `message` inside a guarded entry point (proves that no panic reaches
/// Python as anything but a `RuntimeError`).
#[pyfunction]
pub fn _panic_for_tests(message: &str) -> PyResult<()> {
    guard("_panic_for_tests", || panic!("{message}"))
}
