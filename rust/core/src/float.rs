//! The floating-point types the O(N) kernels run in: `f32` and `f64`. State vectors live in the
//! caller's dtype; per-step coefficients arrive as `f64` and are converted once per step.

use num_traits::Float;

/// A real scalar of the structured operators and scans (implemented for `f32` and `f64`).
pub trait Real: Float + Default + Send + Sync + std::fmt::Debug + std::iter::Sum + 'static {
    /// Rounds an `f64` to this type (`as` semantics: nearest, overflow to +-inf).
    fn cast(x: f64) -> Self;
    /// Widens to `f64` (exact for both implementations).
    fn widen(self) -> f64;
}

impl Real for f32 {
    #[inline(always)]
    fn cast(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn widen(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    #[inline(always)]
    fn cast(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn widen(self) -> f64 {
        self
    }
}
