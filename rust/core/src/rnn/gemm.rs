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
    /// kernel on this CPU; false (nothing done) otherwise. A and C have contiguous rows.
    ///
    /// # Safety
    /// `c` is valid for rows 0..m of n values at stride `rsc` and does not overlap `a` or `bp`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn packed_kernel(
        _m: usize,
        _k: usize,
        _n: usize,
        _a: &[Self],
        _rsa: usize,
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
        rsa: usize,
        bp: &[f32],
        c: *mut f32,
        rsc: usize,
        accumulate: bool,
        scratch: &mut Vec<f32>,
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if crate::simd::Isa::active() == crate::simd::Isa::Avx512 {
            assert!(bp.len() >= n.div_ceil(32) * k * 32, "packed gemm: B out of bounds");
            super::packed::pack_a(a, m, k, rsa, scratch);
            // SAFETY: AVX-512F present (the one CPU-feature check, crate::simd::Isa); packed A has m.div_ceil(MR) tiles of k x MR, B bounds checked
            // above, C by the caller's view.
            unsafe { super::packed::sgemm_packed_avx512(m, k, n, scratch.as_ptr(), bp.as_ptr(), c, rsc, accumulate) };
            return true;
        }
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

/// C <- beta C + A B. Panics on mismatched shapes (a bug of the caller).
pub(crate) fn gemm<T: Gemm>(c: MatMut<'_, T>, beta: T, a: MatRef<'_, T>, b: MatRef<'_, T>) {
    assert!(a.rows == c.rows && b.cols == c.cols && a.cols == b.rows, "gemm: mismatched shapes");
    if c.rows == 0 || c.cols == 0 {
        return;
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

#[cfg(test)]
mod tests {
    use super::*;

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
