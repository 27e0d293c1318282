//! The cell's activations on whole rows: h~ = tanh(z_h), g = sigmoid(z_g).
//!
//! float64 uses the libm functions. float32 uses a branch-free exp (Cody-Waite range reduction,
//! degree-6 polynomial, exponent by bit shifts) that the compiler vectorises over a row:
//!     sigmoid(z) = 1 / (1 + exp(-z)),
//!     tanh(z) = sign(z) (1 - e) / (1 + e), e = exp(-2|z|)   (|z| >= 1/16),
//!     tanh(z) = z - z^3/3 + 2 z^5/15 - 17 z^7/315              (|z| < 1/16, where 1 - e cancels).
//! Both are within a few float32 ulps of the correctly rounded values (tested below).

use super::gemm::Gemm;

/// Float types with row-wise cell activations.
pub trait Activations: Gemm {
    /// `out[j] = tanh(z[j])`.
    fn tanh_row(z: &[Self], out: &mut [Self]);
    /// `out[j] = 1 / (1 + exp(-z[j]))`.
    fn sigmoid_row(z: &[Self], out: &mut [Self]);
}

impl Activations for f64 {
    fn tanh_row(z: &[f64], out: &mut [f64]) {
        for (o, x) in out.iter_mut().zip(z) {
            *o = x.tanh();
        }
    }
    fn sigmoid_row(z: &[f64], out: &mut [f64]) {
        for (o, x) in out.iter_mut().zip(z) {
            *o = 1.0 / (1.0 + (-x).exp());
        }
    }
}

/// exp(x) for float32, vectorisable: x = n ln2 + r, n = floor(x log2 e + 1/2), |r| <= ln2/2 (about), exp(r) by its Taylor polynomial
/// to degree 6 (relative error < 2e-8 on the interval), times 2^n built in the exponent bits;
/// +inf above 88 and about 1e-38 (not the subnormal value) below -87.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let big = x > 88.0;
    let x = x.clamp(-87.0, 88.0);
    let n = x.mul_add(std::f32::consts::LOG2_E, 0.5).floor();
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    let p = r.mul_add(1.0 / 720.0, 1.0 / 120.0);
    let p = r.mul_add(p, 1.0 / 24.0);
    let p = r.mul_add(p, 1.0 / 6.0);
    let p = r.mul_add(p, 0.5);
    let p = r.mul_add(p, 1.0);
    let p = r.mul_add(p, 1.0);
    // SAFETY: n is finite and in [-126, 128] (x was clamped), so the conversion is exact.
    let n = unsafe { n.to_int_unchecked::<i32>() };
    let e = p * f32::from_bits(((n + 127) as u32) << 23);
    if big {
        f32::INFINITY
    } else {
        e
    }
}

#[inline(always)]
fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let e = exp_f32(-2.0 * a);
    let big = ((1.0 - e) / (1.0 + e)).copysign(x);
    let x2 = x * x;
    let small = x * x2.mul_add(x2.mul_add(x2.mul_add(-17.0 / 315.0, 2.0 / 15.0), -1.0 / 3.0), 1.0);
    if a < 0.0625 {
        small
    } else {
        big
    }
}

impl Activations for f32 {
    fn tanh_row(z: &[f32], out: &mut [f32]) {
        vectorised(|| {
            for (o, x) in out.iter_mut().zip(z) {
                *o = tanh_f32(*x);
            }
        })
    }
    fn sigmoid_row(z: &[f32], out: &mut [f32]) {
        vectorised(|| {
            for (o, x) in out.iter_mut().zip(z) {
                *o = 1.0 / (1.0 + exp_f32(-*x));
            }
        })
    }
}

/// Runs `work` compiled for AVX-512 (else AVX2 + FMA) when the CPU has it.
#[inline(always)]
fn vectorised<R>(work: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx2,fma")]
        unsafe fn with_avx512<R>(work: impl FnOnce() -> R) -> R {
            work()
        }
        if crate::simd::Isa::active() == crate::simd::Isa::Avx512 {
            // SAFETY: the CPU supports AVX-512F (crate::simd::Isa, the one CPU-feature check), hence AVX2 and FMA.
            return unsafe { with_avx512(work) };
        }
    }
    crate::simd::accelerated(work)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float32_activations_are_within_a_few_ulps() {
        let z: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.004).chain([-100.0, -30.0, 1e-6, 30.0, 100.0]).collect();
        let (mut t, mut s) = (vec![0.0; z.len()], vec![0.0; z.len()]);
        f32::tanh_row(&z, &mut t);
        f32::sigmoid_row(&z, &mut s);
        for ((x, t), s) in z.iter().zip(&t).zip(&s) {
            let want_t = (*x as f64).tanh();
            let want_s = 1.0 / (1.0 + (-*x as f64).exp());
            assert!((*t as f64 - want_t).abs() <= 4.0 * f32::EPSILON as f64 * want_t.abs().max(1e-30), "tanh({x})");
            assert!((*s as f64 - want_s).abs() <= 4.0 * f32::EPSILON as f64 * want_s + 1e-37, "sigmoid({x})");
        }
    }
}
