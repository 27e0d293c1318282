//! C (+)= A B with the right operand B packed once and reused by every step of a sequence (the
//! layer's weights): a general GEMM packs B again on every call, which for the per-step products
//! (rows x M N)·(M N x 2 H) costs as much as a fifth of the multiply-adds.
//!
//! Packed layout: panels of `NR` = 32 columns, each (k, 32) row-major, the last one zero-padded.
//! float32 with AVX-512: a register-blocked micro-kernel (12 rows x 32 columns of C in 24 zmm
//! accumulators, A broadcast from memory, B streamed from the panel); with AVX2 + FMA the same loops
//! with 6 x 16 tiles in 12 ymm accumulators. Both run over blocks of `KC` = 256
//! of the inner dimension so that the block of a panel (32 KB) stays in L1 while every row tile of A
//! passes over it (the BLIS loop order). Otherwise each panel goes through the general GEMM.
//!
//! The same kernel serves a product whose right operand changes (the layer's weight gradient over a
//! chunk of steps): `PackedB::repack` packs the new operand into the existing buffer.

use super::gemm::{gemm, Gemm, MatMut, MatRef};

/// Columns per packed panel.
const NR: usize = 32;

/// B (k x n) packed in panels of `NR` columns.
pub(crate) struct PackedB<T> {
    data: Vec<T>,
    k: usize,
    n: usize,
}

impl<T: Gemm> PackedB<T> {
    pub(crate) fn new(b: MatRef<'_, T>) -> Self {
        let mut packed = PackedB { data: Vec::new(), k: 0, n: 0 };
        packed.repack(b);
        packed
    }

    /// Packs `b` in place of the current operand (reusing the buffer).
    pub(crate) fn repack(&mut self, b: MatRef<'_, T>) {
        let (k, n) = (b.n_rows(), b.n_cols());
        let panels = n.div_ceil(NR);
        let data = &mut self.data;
        data.clear();
        data.resize(panels * k * NR, T::zero());
        for p in 0..panels {
            let cols = (n - p * NR).min(NR);
            for kk in 0..k {
                let dst = &mut data[(p * k + kk) * NR..(p * k + kk) * NR + cols];
                for (jj, v) in dst.iter_mut().enumerate() {
                    *v = b.at(kk, p * NR + jj);
                }
            }
        }
        (self.k, self.n) = (k, n);
    }

    /// C <- A B (`accumulate` false) or C + A B, A (m x k) any strides; `scratch` holds packed A
    /// (grown as needed, kept by the caller across calls).
    pub(crate) fn gemm(&self, mut c: MatMut<'_, T>, accumulate: bool, a: MatRef<'_, T>, scratch: &mut Vec<T>) {
        let (m, k, n) = (a.n_rows(), self.k, self.n);
        assert!(a.n_cols() == k && c.n_rows() == m && c.n_cols() == n, "packed gemm: mismatched shapes");
        assert!(c.col_stride() == 1, "packed gemm: rows of C must be contiguous");
        if m == 0 || n == 0 {
            return;
        }
        let rsc = c.row_stride();
        // SAFETY: the view `c` was bounds-checked on construction and is a distinct &mut borrow.
        let a_strides = (a.row_stride(), a.col_stride());
        if unsafe {
            T::packed_kernel(m, k, n, a.data(), a_strides, &self.data, c.data_mut_ptr(), rsc, accumulate, scratch)
        } {
            return;
        }
        let beta = if accumulate { T::one() } else { T::zero() };
        let (a_data, c_data) = (a.data(), c.into_data());
        for p in 0..n.div_ceil(NR) {
            let cols = (n - p * NR).min(NR);
            let panel = MatRef::rows(&self.data[p * k * NR..(p + 1) * k * NR], k, cols, NR);
            let c_panel = MatMut::rows(&mut c_data[p * NR..], m, cols, rsc);
            gemm(c_panel, beta, MatRef::new(a_data, m, k, a.row_stride(), a.col_stride()), panel);
        }
    }
}

/// The float32 AVX-512 kernel of `PackedB::gemm` (see the module docs).
///
/// # Safety
/// AVX-512F is available; `ap` holds A (m x k) packed by `pack_a`; `bp` the packed panels of B;
/// `c` points to rows 0..m of n columns at stride `rsc`, not overlapping `ap` or `bp`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_packed_avx512(
    m: usize,
    k: usize,
    n: usize,
    ap: *const f32,
    bp: *const f32,
    c: *mut f32,
    rsc: usize,
    accumulate: bool,
) {
    let mask = |cols: usize, lo: usize| -> u16 {
        let w = cols.saturating_sub(lo).min(16);
        if w == 16 {
            u16::MAX
        } else {
            ((1u32 << w) - 1) as u16
        }
    };
    for k0 in (0..k.max(1)).step_by(KC) {
        let kc = KC.min(k - k0);
        let add = accumulate || k0 > 0;
        for p in 0..n.div_ceil(NR) {
            let cols = (n - p * NR).min(NR);
            let (m0, m1) = (mask(cols, 0), mask(cols, 16));
            let panel = bp.add(p * k * NR + k0 * NR);
            let mut r0 = 0;
            while r0 < m {
                let (ar, cr) = (ap.add(r0 * k + k0 * MR), c.add(r0 * rsc + p * NR));
                let args = (kc, ar, panel, cr, rsc, m0, m1, add);
                match (m - r0).min(MR) {
                    12 => tile::<12>(args),
                    11 => tile::<11>(args),
                    10 => tile::<10>(args),
                    9 => tile::<9>(args),
                    8 => tile::<8>(args),
                    7 => tile::<7>(args),
                    6 => tile::<6>(args),
                    5 => tile::<5>(args),
                    4 => tile::<4>(args),
                    3 => tile::<3>(args),
                    2 => tile::<2>(args),
                    _ => tile::<1>(args),
                }
                r0 += MR.min(m - r0);
            }
        }
    }
}

/// The float32 AVX2 + FMA kernel of `PackedB::gemm`: the loops of `sgemm_packed_avx512`, each
/// 32-column panel taken as two halves of 16 columns, each 12-row tile of A as two of 6 rows: 6 x 16
/// of C in 12 ymm accumulators (the 16 ymm registers hold them, two of B and a broadcast of A).
///
/// # Safety
/// AVX2 and FMA are available; otherwise as `sgemm_packed_avx512`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm_packed_avx2(
    m: usize,
    k: usize,
    n: usize,
    ap: *const f32,
    bp: *const f32,
    c: *mut f32,
    rsc: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    let mask = |width: usize| -> __m256i {
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(width.min(8) as i32), lane)
    };
    for k0 in (0..k.max(1)).step_by(KC) {
        let kc = KC.min(k - k0);
        let add = accumulate || k0 > 0;
        for p in 0..n.div_ceil(NR) {
            let cols = (n - p * NR).min(NR);
            for half in (0..cols).step_by(16) {
                let width = cols - half;
                let masks = (mask(width), mask(width.saturating_sub(8)));
                let panel = bp.add(p * k * NR + k0 * NR + half);
                for r0 in (0..m).step_by(6) {
                    // Rows r0.. lie in tile r0 / MR of packed A, at row r0 % MR within it.
                    let ar = ap.add((r0 / MR) * MR * k + k0 * MR + r0 % MR);
                    let cr = c.add(r0 * rsc + p * NR + half);
                    let args = (kc, ar, panel, cr, rsc, masks, add);
                    match (m - r0).min(6) {
                        6 => tile_avx2::<6>(args),
                        5 => tile_avx2::<5>(args),
                        4 => tile_avx2::<4>(args),
                        3 => tile_avx2::<3>(args),
                        2 => tile_avx2::<2>(args),
                        _ => tile_avx2::<1>(args),
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
type TileArgsAvx2 =
    (usize, *const f32, *const f32, *mut f32, usize, (std::arch::x86_64::__m256i, std::arch::x86_64::__m256i), bool);

/// R rows x 16 columns of C (R <= 6): acc[r] += a[kk][r] * panel[kk][0..16] over kk, then stored
/// (masked columns).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn tile_avx2<const R: usize>((k, a, panel, c, rsc, (m0, m1), accumulate): TileArgsAvx2) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for kk in 0..k {
        let b0 = _mm256_loadu_ps(panel.add(kk * NR));
        let b1 = _mm256_loadu_ps(panel.add(kk * NR + 8));
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*a.add(kk * MR + r));
            acc_r[0] = _mm256_fmadd_ps(av, b0, acc_r[0]);
            acc_r[1] = _mm256_fmadd_ps(av, b1, acc_r[1]);
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        let cr = c.add(r * rsc);
        let (mut v0, mut v1) = (acc_r[0], acc_r[1]);
        if accumulate {
            v0 = _mm256_add_ps(v0, _mm256_maskload_ps(cr, m0));
            v1 = _mm256_add_ps(v1, _mm256_maskload_ps(cr.add(8), m1));
        }
        _mm256_maskstore_ps(cr, m0, v0);
        _mm256_maskstore_ps(cr.add(8), m1, v1);
    }
}

/// Inner-dimension block of the kernels: a panel's block (KC x 32 float32 = 32 KB) fits L1.
const KC: usize = 256;

/// Rows per tile of packed A.
pub(crate) const MR: usize = 12;

/// A (m x k, element (i, j) at `a[i * rs + j * cs]`) as tiles of MR rows, each (k, MR) row-major
/// (zero-padded rows). Reads run along whichever stride is 1.
pub(crate) fn pack_a<T: Copy + Default>(a: &[T], m: usize, k: usize, (rs, cs): (usize, usize), out: &mut Vec<T>) {
    let len = m.div_ceil(MR) * MR * k;
    if out.len() != len {
        out.clear();
        out.resize(len, T::default());
    }
    for (t, tile) in out.chunks_exact_mut(MR * k).enumerate() {
        let rows = MR.min(m - t * MR);
        if rows < MR {
            tile.fill(T::default()); // the padding rows of the last tile
        }
        if rs == 1 && cs != 1 {
            for (kk, dst) in tile.chunks_exact_mut(MR).enumerate() {
                let at = t * MR + kk * cs;
                for (v, x) in dst[..rows].iter_mut().zip(&a[at..at + rows]) {
                    *v = *x;
                }
            }
        } else {
            for r in 0..rows {
                let at = (t * MR + r) * rs;
                for kk in 0..k {
                    tile[kk * MR + r] = a[at + kk * cs];
                }
            }
        }
    }
}

type TileArgs = (usize, *const f32, *const f32, *mut f32, usize, u16, u16, bool);

/// R rows x 32 columns of C: acc[r] += a[kk][r] * panel[kk] over kk, then stored (masked columns).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn tile<const R: usize>((k, a, panel, c, rsc, m0, m1, accumulate): TileArgs) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    for kk in 0..k {
        let b0 = _mm512_loadu_ps(panel.add(kk * NR));
        let b1 = _mm512_loadu_ps(panel.add(kk * NR + 16));
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*a.add(kk * MR + r));
            acc_r[0] = _mm512_fmadd_ps(av, b0, acc_r[0]);
            acc_r[1] = _mm512_fmadd_ps(av, b1, acc_r[1]);
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        let cr = c.add(r * rsc);
        let (mut v0, mut v1) = (acc_r[0], acc_r[1]);
        if accumulate {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr.add(16)));
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr.add(16), m1, v1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// C (+)= A B against float64 loops, A row-major or transposed, after packing another B first
    /// (so that `repack` is exercised); `u`: the unit roundoff of T.
    fn check<T: Gemm>(m: usize, k: usize, n: usize, u: f64) {
        let a: Vec<T> = (0..m * k).map(|i| T::cast((i as f64 * 0.37).sin())).collect();
        let a_t: Vec<T> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect(); // (k, m): A^T
        let w: Vec<T> = (0..n * k).map(|i| T::cast((i as f64 * 0.11).cos())).collect(); // (n, k): B = w^T
        let other: Vec<T> = vec![T::one(); (n + 1) * (k + 2)];
        let mut packed = PackedB::new(MatRef::rows(&other, k + 2, n + 1, n + 1));
        packed.repack(MatRef::rows(&w, n, k, k).t());
        let tol = 4.0 * k as f64 * u;
        for (a_view, accumulate) in [
            (MatRef::rows(&a, m, k, k), false),
            (MatRef::rows(&a, m, k, k), true),
            (MatRef::rows(&a_t, k, m, m).t(), true),
        ] {
            let mut c: Vec<T> = (0..m * (n + 3)).map(|i| T::cast(i as f64 * 0.01)).collect();
            let before = c.clone();
            packed.gemm(MatMut::rows(&mut c, m, n, n + 3), accumulate, a_view, &mut Vec::new());
            for i in 0..m {
                for j in 0..n + 3 {
                    let got = c[i * (n + 3) + j].widen();
                    let (want, scale) = if j >= n {
                        (before[i * (n + 3) + j].widen(), 0.0)
                    } else {
                        let terms = (0..k).map(|q| a[i * k + q].widen() * w[j * k + q].widen());
                        let start = if accumulate { before[i * (n + 3) + j].widen() } else { 0.0 };
                        (start + terms.clone().sum::<f64>(), 1.0 + terms.map(f64::abs).sum::<f64>())
                    };
                    assert!((got - want).abs() <= tol * scale, "({m},{k},{n}) [{i},{j}]: {got} vs {want}");
                }
            }
        }
    }

    /// Every instruction set of this CPU (the AVX-512 and AVX2 kernels, the general GEMM for scalar);
    /// k > KC: several inner blocks, the last one partial. The two kernels add in the same order, so
    /// they agree bitwise.
    #[test]
    fn packed_gemm_matches_loops_on_ragged_shapes() {
        use crate::simd::Isa;
        let shapes = [(1, 1, 1), (13, 5, 33), (25, 17, 64), (12, 3, 15), (7, 40, 70), (14, 600, 35)];
        let mut simd_results = Vec::new();
        for isa in [Isa::Scalar, Isa::Avx2, Isa::Avx512] {
            if Isa::force(Some(isa)).is_err() {
                continue; // not on this CPU
            }
            for &(m, k, n) in &shapes {
                check::<f32>(m, k, n, f32::EPSILON as f64 / 2.0);
                check::<f64>(m, k, n, f64::EPSILON / 2.0);
            }
            if isa != Isa::Scalar {
                let (m, k, n) = (25, 600, 70);
                let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
                let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
                let mut c = vec![0.5f32; m * n];
                PackedB::new(MatRef::rows(&b, k, n, n)).gemm(
                    MatMut::rows(&mut c, m, n, n),
                    true,
                    MatRef::rows(&a, m, k, k),
                    &mut Vec::new(),
                );
                simd_results.push(c);
            }
        }
        Isa::force(None).unwrap();
        assert!(simd_results.windows(2).all(|w| w[0] == w[1]));
    }
}

/// Rate of the packed kernel on the layer's products (`cargo test -p hippo-core --release timing --
/// --ignored --nocapture`): per step (B, M N) x (M N, 2 H) and (B, 2 H) x (2 H, M N), and the weight
/// gradient over a chunk, (2 H, chunk) x (chunk, M N), at the permuted-MNIST shape.
#[cfg(test)]
#[test]
#[ignore]
fn timing_of_the_packed_kernel() {
    for (m, k, n, a_transposed) in [(100, 512, 1024, false), (100, 1024, 512, false), (1024, 2000, 512, true)] {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 97) as f32 * 0.01).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 89) as f32 * 0.01).collect();
        let mut c = vec![0.0f32; m * n];
        let packed = PackedB::new(MatRef::rows(&b, k, n, n));
        let a_view = if a_transposed { MatRef::rows(&a, k, m, m).t() } else { MatRef::rows(&a, m, k, k) };
        let mut scratch = Vec::new();
        let reps = (2e10 / (2.0 * (m * k * n) as f64)) as usize;
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t = std::time::Instant::now();
            for _ in 0..reps {
                packed.gemm(MatMut::rows(&mut c, m, n, n), true, a_view, &mut scratch);
            }
            best = best.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        println!("({m} x {k}) x ({k} x {n}): {:.0} GFLOP/s", 2.0 * (m * k * n) as f64 / best / 1e9);
    }
}
