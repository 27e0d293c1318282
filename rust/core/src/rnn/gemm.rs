//! Strided matrix views and C <- beta C + A B on them (the `matrixmultiply` crate: packed
//! micro-kernels with runtime-detected AVX-512 / AVX2 + FMA, one thread).

use crate::float::Real;

/// A read-only `rows x cols` view: element (i, j) at `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// A mutable `rows x cols` view, same indexing as [`MatRef`].
pub(crate) struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// The largest index of a strided view (none when it is empty).
fn last_index(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    (rows > 0 && cols > 0).then(|| (rows - 1) * rs + (cols - 1) * cs)
}

impl<'a, T> MatRef<'a, T> {
    /// Panics when the view does not fit in `data` (a bug of the caller, never user input).
    pub(crate) fn new(data: &'a [T], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        if let Some(last) = last_index(rows, cols, rs, cs) {
            assert!(last < data.len(), "matrix view out of bounds");
        }
        MatRef { data, rows, cols, rs, cs }
    }

    /// Row-major `rows x cols` with row stride `rs`.
    pub(crate) fn rows(data: &'a [T], rows: usize, cols: usize, rs: usize) -> Self {
        Self::new(data, rows, cols, rs, 1)
    }

    /// The transpose (no copy).
    pub(crate) fn t(self) -> Self {
        MatRef { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    pub(crate) fn n_rows(&self) -> usize {
        self.rows
    }
    pub(crate) fn n_cols(&self) -> usize {
        self.cols
    }
    pub(crate) fn row_stride(&self) -> usize {
        self.rs
    }
    pub(crate) fn col_stride(&self) -> usize {
        self.cs
    }
    pub(crate) fn data(&self) -> &'a [T] {
        self.data
    }
    pub(crate) fn at(&self, i: usize, j: usize) -> T
    where
        T: Copy,
    {
        self.data[i * self.rs + j * self.cs]
    }
}

impl<'a, T> MatMut<'a, T> {
    pub(crate) fn new(data: &'a mut [T], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        if let Some(last) = last_index(rows, cols, rs, cs) {
            assert!(last < data.len(), "matrix view out of bounds");
        }
        MatMut { data, rows, cols, rs, cs }
    }

    pub(crate) fn rows(data: &'a mut [T], rows: usize, cols: usize, rs: usize) -> Self {
        Self::new(data, rows, cols, rs, 1)
    }

    pub(crate) fn n_rows(&self) -> usize {
        self.rows
    }
    pub(crate) fn n_cols(&self) -> usize {
        self.cols
    }
    pub(crate) fn row_stride(&self) -> usize {
        self.rs
    }
    pub(crate) fn col_stride(&self) -> usize {
        self.cs
    }
    pub(crate) fn data_mut_ptr(&mut self) -> *mut T {
        self.data.as_mut_ptr()
    }
    pub(crate) fn into_data(self) -> &'a mut [T] {
        self.data
    }
}

/// The float types with a GEMM.
pub trait Gemm: Real {
    /// C <- beta C + A B (C is not read when beta = 0).
    ///
    /// # Safety
    /// The pointers and strides describe valid, non-overlapping (A, B with C) matrices.
    #[allow(clippy::too_many_arguments)]
    unsafe fn raw_gemm(
        m: usize,
        k: usize,
        n: usize,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );

    /// C <- A B (or C + A B) with B packed by `packed::PackedB`, when this type has a dedicated
    /// kernel on this CPU; false (nothing done) otherwise. A (m x k): element (i, j) at
    /// `a[i * a_strides.0 + j * a_strides.1]`; C with contiguous rows.
    ///
    /// # Safety
    /// `c` is valid for rows 0..m of n values at stride `rsc` and does not overlap `a` or `bp`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn packed_kernel(
        _m: usize,
        _k: usize,
        _n: usize,
        _a: &[Self],
        _a_strides: (usize, usize),
        _bp: &[Self],
        _c: *mut Self,
        _rsc: usize,
        _accumulate: bool,
        _scratch: &mut Vec<Self>,
    ) -> bool {
        false
    }
}

impl Gemm for f32 {
    unsafe fn raw_gemm(
        m: usize,
        k: usize,
        n: usize,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::sgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }

    unsafe fn packed_kernel(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        a_strides: (usize, usize),
        bp: &[f32],
        c: *mut f32,
        rsc: usize,
        accumulate: bool,
        scratch: &mut Vec<f32>,
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::simd::Isa;
            let isa = Isa::active();
            if isa == Isa::Scalar {
                return false;
            }
            assert!(bp.len() >= n.div_ceil(32) * k * 32, "packed gemm: B out of bounds");
            super::packed::pack_a(a, m, k, a_strides, scratch);
            let (ap, bp) = (scratch.as_ptr(), bp.as_ptr());
            // SAFETY: the instruction set is present (the one CPU-feature check, crate::simd::Isa);
            // packed A has m.div_ceil(MR) tiles of k x MR, B is bounds-checked above, C by the
            // caller's view.
            unsafe {
                if isa == Isa::Avx512 {
                    super::packed::sgemm_packed_avx512(m, k, n, ap, bp, c, rsc, accumulate)
                } else {
                    super::packed::sgemm_packed_avx2(m, k, n, ap, bp, c, rsc, accumulate)
                }
            }
            true
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }
}

impl Gemm for f64 {
    unsafe fn raw_gemm(
        m: usize,
        k: usize,
        n: usize,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        matrixmultiply::dgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
    }
}

/// Thin products: at most this many rows of C, or this inner dimension, run as scaled row additions
/// (`rows_form`); at most this many columns of C as dot products (`dots_form`). A packed GEMM would
/// fill a few lanes of its register tile and pay its packing for them.
const THIN: usize = 4;

/// C <- beta C + A B. Panics on mismatched shapes (a bug of the caller).
pub(crate) fn gemm<T: Gemm>(c: MatMut<'_, T>, beta: T, a: MatRef<'_, T>, b: MatRef<'_, T>) {
    assert!(a.rows == c.rows && b.cols == c.cols && a.cols == b.rows, "gemm: mismatched shapes");
    if c.rows == 0 || c.cols == 0 {
        return;
    }
    if c.cs == 1 && b.cs == 1 && (a.cols <= THIN || c.rows <= THIN) {
        return rows_form(c, beta, a, b);
    }
    if c.cols <= THIN && a.cs == 1 && b.rs == 1 {
        return dots_form(c, beta, a, b);
    }
    // SAFETY: the views were bounds-checked on construction; C is a distinct &mut borrow.
    unsafe {
        T::raw_gemm(
            c.rows,
            a.cols,
            c.cols,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.data.as_mut_ptr(),
            c.rs as isize,
            c.cs as isize,
        )
    }
}

/// C <- beta C + A B row by row: row i of C plus A[i, q] times row q of B, over q (B and C with
/// contiguous rows; vectorised along the rows).
fn rows_form<T: Gemm>(c: MatMut<'_, T>, beta: T, a: MatRef<'_, T>, b: MatRef<'_, T>) {
    let (n, rsc, rsb) = (c.cols, c.rs, b.rs);
    for i in 0..c.rows {
        let c_row = &mut c.data[i * rsc..i * rsc + n];
        if beta == T::zero() {
            c_row.fill(T::zero());
        } else if beta != T::one() {
            c_row.iter_mut().for_each(|v| *v = beta * *v);
        }
        for q in 0..a.cols {
            let (s, b_row) = (a.at(i, q), &b.data[q * rsb..q * rsb + n]);
            for (v, w) in c_row.iter_mut().zip(b_row) {
                *v = *v + s * *w;
            }
        }
    }
}

/// C <- beta C + A B entry by entry: C[i, j] = beta C[i, j] + (row i of A) . (column j of B) (A with
/// contiguous rows, B with contiguous columns).
fn dots_form<T: Gemm>(c: MatMut<'_, T>, beta: T, a: MatRef<'_, T>, b: MatRef<'_, T>) {
    let k = a.cols;
    for i in 0..c.rows {
        let a_row = &a.data[i * a.rs..i * a.rs + k];
        for j in 0..c.cols {
            let d = dot(a_row, &b.data[j * b.cs..j * b.cs + k]);
            let v = &mut c.data[i * c.rs + j * c.cs];
            *v = if beta == T::zero() { d } else { beta * *v + d };
        }
    }
}

/// x . y with 16 partial sums (vectorised), added pairwise at the end.
fn dot<T: Gemm>(x: &[T], y: &[T]) -> T {
    const LANES: usize = 16;
    let mut acc = [T::zero(); LANES];
    let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let tail: T = xc.remainder().iter().zip(yc.remainder()).fold(T::zero(), |s, (a, b)| s + *a * *b);
    for (xs, ys) in xc.zip(yc) {
        for l in 0..LANES {
            acc[l] = acc[l] + xs[l] * ys[l];
        }
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] = acc[l] + acc[l + width];
        }
    }
    acc[0] + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every form (thin rows, thin inner dimension, thin columns, the general GEMM) on strided and
    /// transposed views, with beta 0, 1 and 2, against loops.
    #[test]
    fn thin_and_general_products_match_loops() {
        for &(m, k, n) in &[(1, 300, 40), (3, 2, 50), (40, 1, 33), (37, 70, 2), (30, 20, 25), (2, 3, 1)] {
            let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
            let a_t: Vec<f64> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
            let b_t: Vec<f64> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let views_a = [MatRef::rows(&a, m, k, k), MatRef::rows(&a_t, k, m, m).t()];
            let views_b = [MatRef::rows(&b, k, n, n), MatRef::rows(&b_t, n, k, k).t()];
            for (va, vb, beta) in views_a
                .iter()
                .flat_map(|va| views_b.iter().flat_map(move |vb| [0.0, 1.0, 2.0].map(|beta| (va, vb, beta))))
            {
                let mut c: Vec<f64> = (0..m * n).map(|i| if beta == 0.0 { f64::NAN } else { i as f64 }).collect();
                gemm(MatMut::rows(&mut c, m, n, n), beta, *va, *vb);
                for i in 0..m {
                    for j in 0..n {
                        let dot: f64 = (0..k).map(|q| a[i * k + q] * b[q * n + j]).sum();
                        let want = if beta == 0.0 { dot } else { beta * (i * n + j) as f64 + dot };
                        assert!((c[i * n + j] - want).abs() < 1e-12 * (1.0 + want.abs()), "({m},{k},{n}) beta {beta}");
                    }
                }
            }
        }
    }

    #[test]
    fn strided_gemm_matches_loops() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..n * k).map(|i| (i as f64 * 0.11).cos()).collect(); // stored (n, k)
        let mut c = vec![1.0; m * n];
        gemm(MatMut::rows(&mut c, m, n, n), 2.0, MatRef::rows(&a, m, k, k), MatRef::rows(&b, n, k, k).t());
        for i in 0..m {
            for j in 0..n {
                let want = 2.0 + (0..k).map(|q| a[i * k + q] * b[j * k + q]).sum::<f64>();
                assert!((c[i * n + j] - want).abs() < 1e-12);
            }
        }
    }
}
