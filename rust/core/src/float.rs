//! The floating-point types the O(N) kernels run in: `f32` and `f64`. State vectors live in the
//! caller's dtype; per-step coefficients arrive as `f64` and are converted once per step.

use num_traits::Float;

/// A real scalar of the structured operators and scans (implemented for `f32` and `f64`).
pub trait Real: Float + Default + Send + Sync + std::fmt::Debug + std::iter::Sum + crate::simd::TileKernel + 'static {
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

/// Runs `work` compiled for AVX2 + FMA when the CPU has them (runtime detection), else as is.
///
/// The kernels use `mul_add` for their running sums: with the `fma` feature it is one instruction,
/// without it a slow libm call, and AVX2 doubles the SIMD width of the baseline x86-64 target. The
/// kernels are `#[inline(always)]` so that they are compiled inside the feature-enabled frame.
#[inline(always)]
pub fn accelerated<R>(work: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn with_avx2_fma<R>(work: impl FnOnce() -> R) -> R {
            work()
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the enabled features (checked just above).
            return unsafe { with_avx2_fma(work) };
        }
    }
    work()
}
