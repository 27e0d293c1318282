//! SIMD kernels across batch rows (x86_64 AVX2 + FMA, detected at run time).
//!
//! The fused `Prefix` step (LegS, LagT, GLagT; see `crate::scan::StepKernel`) is a chain of running
//! sums over the elements n of one row: serial within a row, independent across rows. A tile of W
//! rows (W = 8 float32 or 4 float64 lanes) is loaded W elements at a time, transposed in registers so
//! that one vector holds element n of every row, stepped element by element with the per-element
//! tables broadcast, transposed back and stored. The arithmetic is the scalar kernel's, operation for
//! operation (every `mul_add` is one fused FMA in both), so the results are bitwise the same.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// (Public only because `Real` requires it; not part of the API.) One fused `Prefix` step on whole tiles of rows: `state` holds rows of length `n` (row-major),
/// `abf[j]` = a_b f_j of row j, `table[i]` = (inv, e, a_e l, k, decay, r inv) of element i (see
/// `StepKernel::prepare`). Returns the number of leading rows done (a multiple of the lane count;
/// 0 when the CPU lacks AVX2/FMA); the caller finishes the rest with the scalar kernel.
pub trait TileKernel: Sized {
    fn prefix_forward_tiles(table: &[[Self; 6]], r: &[Self], b: &[Self], abf: &[Self], state: &mut [Self], n: usize) -> usize;
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

macro_rules! tile_kernel {
    ($t:ty, $lanes:expr, $vec:ty, $set1:ident, $load:ident, $store:ident, $fmadd:ident, $mul:ident, $sub:ident, $zero:ident, $transpose:ident, $avx:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx(table: &[[$t; 6]], r: &[$t], b: &[$t], abf: &[$t], state: &mut [$t], n: usize) -> usize {
            const W: usize = $lanes;
            let rows = abf.len();
            let tiles = rows / W;
            let whole = n / W * W;
            for tile in 0..tiles {
                let base = state.as_mut_ptr().add(tile * W * n);
                let abf_v = $load(abf.as_ptr().add(tile * W));
                let (mut sum_x, mut sum_y) = ($zero(), $zero());
                let mut v: [$vec; W] = [$zero(); W];
                for i0 in (0..whole).step_by(W) {
                    for (j, vj) in v.iter_mut().enumerate() {
                        *vj = $load(base.add(j * n + i0));
                    }
                    $transpose(&mut v);
                    for (j, vj) in v.iter_mut().enumerate() {
                        let i = i0 + j;
                        let [inv, e, ael, k, decay, rinv] = *table.get_unchecked(i);
                        let x = *vj;
                        // sum_x = r x + sum_x; u = abf b + (e x - ael sum_x); y = u inv - k sum_y;
                        // sum_y = decay sum_y + rinv u   (as in StepKernel::forward)
                        sum_x = $fmadd($set1(*r.get_unchecked(i)), x, sum_x);
                        let t = $fmadd($set1(e), x, $sub($zero(), $mul($set1(ael), sum_x)));
                        let u = $fmadd(abf_v, $set1(*b.get_unchecked(i)), t);
                        *vj = $fmadd(u, $set1(inv), $sub($zero(), $mul($set1(k), sum_y)));
                        sum_y = $fmadd($set1(decay), sum_y, $mul($set1(rinv), u));
                    }
                    $transpose(&mut v);
                    for (j, vj) in v.iter().enumerate() {
                        $store(base.add(j * n + i0), *vj);
                    }
                }
                if whole < n {
                    let (mut sx, mut sy) = ([0.0 as $t; W], [0.0 as $t; W]);
                    $store(sx.as_mut_ptr(), sum_x);
                    $store(sy.as_mut_ptr(), sum_y);
                    for j in 0..W {
                        let row = std::slice::from_raw_parts_mut(base.add(j * n), n);
                        let a = abf[tile * W + j];
                        for i in whole..n {
                            let [inv, e, ael, k, decay, rinv] = table[i];
                            let x = row[i];
                            sx[j] = r[i].mul_add(x, sx[j]);
                            let u = a.mul_add(b[i], e.mul_add(x, -(ael * sx[j])));
                            row[i] = u.mul_add(inv, -(k * sy[j]));
                            sy[j] = decay.mul_add(sy[j], rinv * u);
                        }
                    }
                }
            }
            tiles * W
        }

        impl TileKernel for $t {
            #[inline]
            fn prefix_forward_tiles(table: &[[$t; 6]], r: &[$t], b: &[$t], abf: &[$t], state: &mut [$t], n: usize) -> usize {
                let sizes_ok = table.len() == n && r.len() == n && b.len() == n && state.len() == abf.len() * n;
                if !sizes_ok || !has_avx2_fma() {
                    return 0;
                }
                // SAFETY: the features are present; every access is within `state` (rows x n) and
                // the tables (length n), whose sizes were just checked.
                unsafe { $avx(table, r, b, abf, state, n) }
            }
        }
    };
}

/// In-register transpose of an 8x8 float32 block (row j of the input becomes column j).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn transpose8_ps(v: &mut [__m256; 8]) {
    let t0 = _mm256_unpacklo_ps(v[0], v[1]);
    let t1 = _mm256_unpackhi_ps(v[0], v[1]);
    let t2 = _mm256_unpacklo_ps(v[2], v[3]);
    let t3 = _mm256_unpackhi_ps(v[2], v[3]);
    let t4 = _mm256_unpacklo_ps(v[4], v[5]);
    let t5 = _mm256_unpackhi_ps(v[4], v[5]);
    let t6 = _mm256_unpacklo_ps(v[6], v[7]);
    let t7 = _mm256_unpackhi_ps(v[6], v[7]);
    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    v[0] = _mm256_permute2f128_ps::<0x20>(s0, s4);
    v[1] = _mm256_permute2f128_ps::<0x20>(s1, s5);
    v[2] = _mm256_permute2f128_ps::<0x20>(s2, s6);
    v[3] = _mm256_permute2f128_ps::<0x20>(s3, s7);
    v[4] = _mm256_permute2f128_ps::<0x31>(s0, s4);
    v[5] = _mm256_permute2f128_ps::<0x31>(s1, s5);
    v[6] = _mm256_permute2f128_ps::<0x31>(s2, s6);
    v[7] = _mm256_permute2f128_ps::<0x31>(s3, s7);
}

/// In-register transpose of a 4x4 float64 block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn transpose4_pd(v: &mut [__m256d; 4]) {
    let t0 = _mm256_unpacklo_pd(v[0], v[1]);
    let t1 = _mm256_unpackhi_pd(v[0], v[1]);
    let t2 = _mm256_unpacklo_pd(v[2], v[3]);
    let t3 = _mm256_unpackhi_pd(v[2], v[3]);
    v[0] = _mm256_permute2f128_pd::<0x20>(t0, t2);
    v[1] = _mm256_permute2f128_pd::<0x20>(t1, t3);
    v[2] = _mm256_permute2f128_pd::<0x31>(t0, t2);
    v[3] = _mm256_permute2f128_pd::<0x31>(t1, t3);
}

#[cfg(target_arch = "x86_64")]
tile_kernel!(f32, 8, __m256, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_fmadd_ps, _mm256_mul_ps, _mm256_sub_ps, _mm256_setzero_ps, transpose8_ps, prefix_tiles_f32_avx2);
#[cfg(target_arch = "x86_64")]
tile_kernel!(f64, 4, __m256d, _mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_fmadd_pd, _mm256_mul_pd, _mm256_sub_pd, _mm256_setzero_pd, transpose4_pd, prefix_tiles_f64_avx2);

#[cfg(not(target_arch = "x86_64"))]
impl TileKernel for f32 {
    fn prefix_forward_tiles(_: &[[f32; 6]], _: &[f32], _: &[f32], _: &[f32], _: &mut [f32], _: usize) -> usize {
        0
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl TileKernel for f64 {
    fn prefix_forward_tiles(_: &[[f64; 6]], _: &[f64], _: &[f64], _: &[f64], _: &mut [f64], _: usize) -> usize {
        0
    }
}
