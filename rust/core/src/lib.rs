//! hippo-core: the pure-Rust core of hippo_rs (no Python in it).
//!
//! - [`measure`]: the HiPPO measures and their closed-form (A, B), defined once.
//! - [`discretize`]: methods, GBT step coefficients, LegS conventions, dense reference discretisations.
//! - [`dense`]: dense float64 linear algebra (LU, expm) for the reference paths.
//! - [`reconstruct`]: evaluation of the function a state encodes, at past times.
//!
//! Conventions (sign, normalisation, theta, LegS step index) are in `docs/conventions.md`.

pub mod dense;
pub mod discretize;
pub mod error;
pub mod measure;
pub mod reconstruct;

pub use discretize::{GbtStep, LegsConvention, Method};
pub use error::{HippoError, Result};
pub use measure::Measure;

// ---- issue 3 (branch ops): linear-time operators and scans ----
pub mod float;
pub mod scan;
#[doc(hidden)]
pub mod simd;
pub mod structured;

pub use float::Real;
pub use structured::Structured;

// The HiPPO-RNN layer over a sequence (forward and backpropagation through time).
pub mod rnn;
