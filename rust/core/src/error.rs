//! The one error type of the core. The binding layer maps each variant to a typed Python
//! exception (`InvalidArgument` -> `ValueError`, `Allocation` -> `MemoryError`).

use std::fmt;

/// Everything the core can reject. No core function panics on user input: it returns one of these.
#[derive(Debug, Clone, PartialEq)]
pub enum HippoError {
    /// An argument has a bad value; `arg` names it, `expected` says what was expected and got.
    InvalidArgument { arg: String, expected: String },
    /// A buffer of `bytes` bytes could not be allocated (e.g. a huge N).
    Allocation { what: String, bytes: u128 },
}

pub type Result<T> = std::result::Result<T, HippoError>;

impl HippoError {
    pub fn invalid(arg: impl Into<String>, expected: impl Into<String>) -> Self {
        HippoError::InvalidArgument { arg: arg.into(), expected: expected.into() }
    }
}

impl fmt::Display for HippoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HippoError::InvalidArgument { arg, expected } => write!(f, "{arg}: {expected}"),
            HippoError::Allocation { what, bytes } => {
                write!(f, "cannot allocate {what} ({bytes} bytes)")
            }
        }
    }
}

impl std::error::Error for HippoError {}

/// Allocates a zeroed `Vec<f64>`-like buffer of `len` elements, reporting failure instead of aborting.
pub fn try_zeros<T: Clone + Default>(len: usize, what: &str) -> Result<Vec<T>> {
    let bytes = (len as u128) * (std::mem::size_of::<T>() as u128);
    let mut v: Vec<T> = Vec::new();
    v.try_reserve_exact(len).map_err(|_| HippoError::Allocation { what: what.to_string(), bytes })?;
    v.resize(len, T::default());
    Ok(v)
}

/// `n * n` without overflow, as an error naming `arg` when it does not fit.
pub fn square_len(n: usize, arg: &str) -> Result<usize> {
    n.checked_mul(n).ok_or_else(|| HippoError::Allocation {
        what: format!("an {arg} x {arg} matrix with {arg} = {n}"),
        bytes: (n as u128).saturating_mul(n as u128).saturating_mul(8),
    })
}
