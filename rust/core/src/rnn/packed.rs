//! C (+)= A B with the right operand B packed once and reused by every step of a sequence (the
//! layer's weights): a general GEMM packs B again on every call, which for the per-step products
//! (rows x M N)·(M N x 2 H) costs as much as a fifth of the multiply-adds.
//!
//! Packed layout: panels of `NR` = 32 columns, each (k, 32) row-major, the last one zero-padded.
//! float32 with AVX-512: a register-blocked micro-kernel (12 rows x 32 columns of C in 24 zmm
//! accumulators, A broadcast from memory, B streamed from the panel). Otherwise each panel goes
//! through the general GEMM.

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
        let (k, n) = (b.n_rows(), b.n_cols());
        let panels = n.div_ceil(NR);
        let mut data = vec![T::zero(); panels * k * NR];
        for p in 0..panels {
            let cols = (n - p * NR).min(NR);
            for kk in 0..k {
                let dst = &mut data[(p * k + kk) * NR..(p * k + kk) * NR + cols];
                for (jj, v) in dst.iter_mut().enumerate() {
                    *v = b.at(kk, p * NR + jj);
                }
            }
        }
        PackedB { data, k, n }
    }

    /// C <- A B (`accumulate` false) or C + A B, A (m x k) with unit column stride; `scratch`
    /// holds packed A (grown as needed, kept by the caller across calls).
    pub(crate) fn gemm(&self, mut c: MatMut<'_, T>, accumulate: bool, a: MatRef<'_, T>, scratch: &mut Vec<T>) {
        let (m, k, n) = (a.n_rows(), self.k, self.n);
        assert!(a.n_cols() == k && c.n_rows() == m && c.n_cols() == n, "packed gemm: mismatched shapes");
        assert!(a.col_stride() == 1 && c.col_stride() == 1, "packed gemm: rows must be contiguous");
        if m == 0 || n == 0 {
            return;
        }
        let (rsa, rsc) = (a.row_stride(), c.row_stride());
        // SAFETY: the view `c` was bounds-checked on construction and is a distinct &mut borrow.
        if unsafe { T::packed_kernel(m, k, n, a.data(), rsa, &self.data, c.data_mut_ptr(), rsc, accumulate, scratch) } {
            return;
        }
        let beta = if accumulate { T::one() } else { T::zero() };
        let (a_data, c_data) = (a.data(), c.into_data());
        for p in 0..n.div_ceil(NR) {
            let cols = (n - p * NR).min(NR);
            let panel = MatRef::rows(&self.data[p * k * NR..(p + 1) * k * NR], k, cols, NR);
            let c_panel = MatMut::rows(&mut c_data[p * NR..], m, cols, rsc);
            gemm(c_panel, beta, MatRef::rows(a_data, m, k, rsa), panel);
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
    for p in 0..n.div_ceil(NR) {
        let cols = (n - p * NR).min(NR);
        let mask = |lo: usize| -> u16 {
            let w = cols.saturating_sub(lo).min(16);
            if w == 16 {
                u16::MAX
            } else {
                ((1u32 << w) - 1) as u16
            }
        };
        let (m0, m1) = (mask(0), mask(16));
        let panel = bp.add(p * k * NR);
        let mut r0 = 0;
        while r0 < m {
            let (ar, cr) = (ap.add(r0 * k), c.add(r0 * rsc + p * NR));
            let args = (k, ar, panel, cr, rsc, m0, m1, accumulate);
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

/// Rows per tile of packed A.
pub(crate) const MR: usize = 12;

/// A (m x k, row stride `rsa`) as tiles of MR rows, each (k, MR) row-major (zero-padded rows).
pub(crate) fn pack_a<T: Copy + Default>(a: &[T], m: usize, k: usize, rsa: usize, out: &mut Vec<T>) {
    out.clear();
    out.resize(m.div_ceil(MR) * MR * k, T::default());
    for (t, tile) in out.chunks_exact_mut(MR * k).enumerate() {
        for r in 0..MR.min(m - t * MR) {
            let row = &a[(t * MR + r) * rsa..(t * MR + r) * rsa + k];
            for (kk, v) in row.iter().enumerate() {
                tile[kk * MR + r] = *v;
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

    fn check<T: Gemm>(m: usize, k: usize, n: usize, tol: f64) {
        let a: Vec<T> = (0..m * k).map(|i| T::cast((i as f64 * 0.37).sin())).collect();
        let w: Vec<T> = (0..n * k).map(|i| T::cast((i as f64 * 0.11).cos())).collect(); // (n, k): B = w^T
        let packed = PackedB::new(MatRef::rows(&w, n, k, k).t());
        for accumulate in [false, true] {
            let mut c: Vec<T> = (0..m * (n + 3)).map(|i| T::cast(i as f64 * 0.01)).collect();
            let before = c.clone();
            packed.gemm(MatMut::rows(&mut c, m, n, n + 3), accumulate, MatRef::rows(&a, m, k, k), &mut Vec::new());
            for i in 0..m {
                for j in 0..n + 3 {
                    let got = c[i * (n + 3) + j].widen();
                    let want = if j >= n {
                        before[i * (n + 3) + j].widen()
                    } else {
                        let dot: f64 = (0..k).map(|q| a[i * k + q].widen() * w[j * k + q].widen()).sum();
                        dot + if accumulate { before[i * (n + 3) + j].widen() } else { 0.0 }
                    };
                    assert!((got - want).abs() <= tol * (1.0 + want.abs()), "({m},{k},{n}) [{i},{j}]: {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn packed_gemm_matches_loops_on_ragged_shapes() {
        for &(m, k, n) in &[(1, 1, 1), (13, 5, 33), (25, 17, 64), (12, 3, 15), (7, 40, 70)] {
            check::<f32>(m, k, n, 1e-5);
            check::<f64>(m, k, n, 1e-12);
        }
    }
}
