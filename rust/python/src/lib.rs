//! hippo_rs._core: the thin PyO3 layer over hippo-core. It converts arrays, validates what only
//! Python can see (dtypes, shapes), releases the GIL around the work and maps `HippoError` to typed
//! Python exceptions. No math lives here.

use pyo3::prelude::*;

mod convert;
mod dense;
mod reconstruct;
mod rnn;
mod rules;
mod scan;
mod zoh;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    dense::register(m)?;
    reconstruct::register(m)?;
    rules::register(m)?;
    scan::register(m)?;
    zoh::register(m)?;
    m.add_function(wrap_pyfunction!(convert::_panic_for_tests, m)?)?;
    rnn::register(m)?;
    Ok(())
}
