//! hippo-core: the pure-Rust core of hippo_rs (no Python in it).
//!
//! - [`measure`]: the HiPPO measures and their closed-form (A, B), defined once.
//! - [`discretize`]: methods and their aliases, GBT step coefficients, LegS conventions, dense
//!   reference discretisations.
//! - [`rows`]: the per-step coefficient rows of scans and steps (step indices, step sizes, timestamps).
//! - [`zoh`]: zero-order-hold scans (dense step matrices) and their adjoint.
//! - [`dense`]: dense float64 linear algebra (LU, expm) for the reference paths.
//! - [`reconstruct`]: evaluation of the function a state encodes, at past times.
//!
//! Conventions (sign, normalisation, theta, LegS step index) are in `docs/conventions.md`.

pub mod dense;
pub mod discretize;
pub mod error;
pub mod measure;
pub mod reconstruct;
pub mod rows;
pub mod zoh;

pub use discretize::{GbtStep, LegsConvention, Method};
pub use error::{HippoError, Result};
pub use measure::Measure;

// Linear-time operators and scans.
pub mod float;
pub mod scan;
#[doc(hidden)]
pub mod simd;
pub mod structured;

pub use float::Real;
pub use structured::Structured;

// The HiPPO-RNN layer over a sequence (forward and backpropagation through time).
pub mod rnn;
