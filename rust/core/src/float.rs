//! The floating-point types the O(N) kernels run in: `f32` and `f64`. State vectors live in the
//! caller's dtype; per-step coefficients arrive as `f64` and are converted once per step.

use num_traits::Float;

/// A real scalar of the structured operators and scans (implemented for `f32` and `f64`).
pub trait Real:
    Float + Default + Send + Sync + std::fmt::Debug + std::iter::Sum + crate::simd::TileKernel + 'static
{
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

/// What the O(N) operators run on: one element of one row (`T`), or the same element of W rows at
/// once (`[T; W]`, a transposed tile that the compiler vectorises across rows). The operations are
/// the same, lane by lane, so a tile gives bitwise the results of its rows run one by one.
pub trait Lane<T: Real>: Copy + Send + Sync {
    fn splat(x: T) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    /// self * s.
    fn scale(self, s: T) -> Self;
    /// self / s.
    fn div(self, s: T) -> Self;
    /// s * self + acc, fused (one rounding).
    fn scale_add(self, s: T, acc: Self) -> Self;
}

impl<T: Real> Lane<T> for T {
    #[inline(always)]
    fn splat(x: T) -> Self {
        x
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self + o
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self - o
    }
    #[inline(always)]
    fn scale(self, s: T) -> Self {
        self * s
    }
    #[inline(always)]
    fn div(self, s: T) -> Self {
        self / s
    }
    #[inline(always)]
    fn scale_add(self, s: T, acc: Self) -> Self {
        s.mul_add(self, acc)
    }
}

impl<T: Real, const W: usize> Lane<T> for [T; W] {
    // Plain loops over the lanes (not `array::from_fn`) so that they inline and vectorise in any
    // codegen-unit split.
    #[inline(always)]
    fn splat(x: T) -> Self {
        [x; W]
    }
    #[inline(always)]
    fn add(mut self, o: Self) -> Self {
        for j in 0..W {
            self[j] = self[j] + o[j];
        }
        self
    }
    #[inline(always)]
    fn sub(mut self, o: Self) -> Self {
        for j in 0..W {
            self[j] = self[j] - o[j];
        }
        self
    }
    #[inline(always)]
    fn scale(mut self, s: T) -> Self {
        for x in self.iter_mut() {
            *x = *x * s;
        }
        self
    }
    #[inline(always)]
    fn div(mut self, s: T) -> Self {
        for x in self.iter_mut() {
            *x = *x / s;
        }
        self
    }
    #[inline(always)]
    fn scale_add(mut self, s: T, acc: Self) -> Self {
        for j in 0..W {
            self[j] = s.mul_add(self[j], acc[j]);
        }
        self
    }
}
