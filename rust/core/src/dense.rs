//! Dense float64 linear algebra for reference-quality discretisations: row-major n x n matrices,
//! LU with partial pivoting, and the matrix exponential by scaling and squaring with the [13/13]
//! Pade approximant (Higham, "The scaling and squaring method for the matrix exponential
//! revisited", SIAM J. Matrix Anal. Appl. 26(4), 2005, Algorithm 2.3 with m = 13).
//! These are O(n^3) and used for dense discretised matrices (and ZOH), never in the O(N) hot paths.

use crate::error::{square_len, try_zeros, HippoError, Result};

/// The n x n identity, row-major.
pub fn identity(n: usize) -> Result<Vec<f64>> {
    let mut m = try_zeros::<f64>(square_len(n, "N")?, "an identity matrix")?;
    for i in 0..n {
        m[i * n + i] = 1.0;
    }
    Ok(m)
}

/// C = A B for row-major n x n A and n x m B.
pub fn matmul(a: &[f64], b: &[f64], n: usize, m: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * m];
    for i in 0..n {
        let row = &mut c[i * m..(i + 1) * m];
        for k in 0..n {
            let aik = a[i * n + k];
            if aik != 0.0 {
                for (cj, bj) in row.iter_mut().zip(&b[k * m..(k + 1) * m]) {
                    *cj += aik * bj;
                }
            }
        }
    }
    c
}

/// The 1-norm (largest absolute column sum) of a row-major n x n matrix.
pub fn norm1(a: &[f64], n: usize) -> f64 {
    (0..n).map(|j| (0..n).map(|i| a[i * n + j].abs()).sum::<f64>()).fold(0.0, f64::max)
}

/// Solves M X = Y in place (Y is n x m, row-major) by LU with partial pivoting.
/// Errors, like LAPACK's `dgesv`, when a pivot is exactly zero (or M is not finite); an ill-conditioned
/// but nonsingular M is solved. `what` names M in that error.
pub fn solve(mat: &[f64], y: &mut [f64], n: usize, m: usize, what: &str) -> Result<()> {
    let mut lu = mat.to_vec();
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| lu[i * n + col].abs().total_cmp(&lu[j * n + col].abs())).unwrap_or(col);
        if !(lu[piv * n + col].abs() > 0.0 && lu[piv * n + col].is_finite()) {
            return Err(HippoError::invalid(what, "expected a nonsingular matrix, got a singular one"));
        }
        if piv != col {
            for j in 0..n {
                lu.swap(col * n + j, piv * n + j);
            }
            for j in 0..m {
                y.swap(col * m + j, piv * m + j);
            }
        }
        let d = lu[col * n + col];
        for i in col + 1..n {
            let f = lu[i * n + col] / d;
            if f != 0.0 {
                for j in col + 1..n {
                    lu[i * n + j] -= f * lu[col * n + j];
                }
                for j in 0..m {
                    y[i * m + j] -= f * y[col * m + j];
                }
            }
        }
    }
    for i in (0..n).rev() {
        for j in 0..m {
            let mut s = y[i * m + j];
            for k in i + 1..n {
                s -= lu[i * n + k] * y[k * m + j];
            }
            y[i * m + j] = s / lu[i * n + i];
        }
    }
    Ok(())
}

/// e^A for a row-major n x n matrix A (Higham 2005, m = 13 Pade with scaling and squaring).
pub fn expm(a: &[f64], n: usize) -> Result<Vec<f64>> {
    const THETA13: f64 = 5.371_920_351_148_152;
    const B: [f64; 14] = [
        64_764_752_532_480_000.0,
        32_382_376_266_240_000.0,
        7_771_770_303_897_600.0,
        1_187_353_796_428_800.0,
        129_060_195_264_000.0,
        10_559_470_521_600.0,
        670_442_572_800.0,
        33_522_128_640.0,
        1_323_241_920.0,
        40_840_800.0,
        960_960.0,
        16_380.0,
        182.0,
        1.0,
    ];
    let norm = norm1(a, n);
    if !norm.is_finite() {
        return Err(HippoError::invalid("A", "expected finite entries for the matrix exponential"));
    }
    let s = if norm > THETA13 { (norm / THETA13).log2().ceil() as i32 } else { 0 };
    let scale = 0.5f64.powi(s);
    let a1: Vec<f64> = a.iter().map(|x| x * scale).collect();
    let a2 = matmul(&a1, &a1, n, n);
    let a4 = matmul(&a2, &a2, n, n);
    let a6 = matmul(&a4, &a2, n, n);
    let id = identity(n)?;
    let lin = |c: [f64; 4]| -> Vec<f64> {
        (0..n * n).map(|i| c[0] * a6[i] + c[1] * a4[i] + c[2] * a2[i] + c[3] * id[i]).collect()
    };
    // U = A [A6 (b13 A6 + b11 A4 + b9 A2) + b7 A6 + b5 A4 + b3 A2 + b1 I]
    let u_inner = matmul(&a6, &lin([B[13], B[11], B[9], 0.0]), n, n);
    let u_sum: Vec<f64> = u_inner.iter().zip(lin([B[7], B[5], B[3], B[1]])).map(|(x, y)| x + y).collect();
    let u = matmul(&a1, &u_sum, n, n);
    // V = A6 (b12 A6 + b10 A4 + b8 A2) + b6 A6 + b4 A4 + b2 A2 + b0 I
    let v_inner = matmul(&a6, &lin([B[12], B[10], B[8], 0.0]), n, n);
    let v: Vec<f64> = v_inner.iter().zip(lin([B[6], B[4], B[2], B[0]])).map(|(x, y)| x + y).collect();
    // (V - U) R = (V + U)
    let p: Vec<f64> = v.iter().zip(&u).map(|(v, u)| v - u).collect();
    let mut r: Vec<f64> = v.iter().zip(&u).map(|(v, u)| v + u).collect();
    solve(&p, &mut r, n, n, "the Pade denominator of expm")?;
    for _ in 0..s {
        r = matmul(&r, &r, n, n);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expm_of_diagonal_and_rotation() {
        let a = [-3.0, 0.0, 0.0, 0.5];
        let e = expm(&a, 2).unwrap();
        assert!((e[0] - (-3.0f64).exp()).abs() < 1e-15);
        assert!((e[3] - 0.5f64.exp()).abs() < 1e-15);
        let w = 40.0;
        let e = expm(&[0.0, -w, w, 0.0], 2).unwrap();
        assert!((e[0] - w.cos()).abs() < 1e-12 && (e[2] - w.sin()).abs() < 1e-12);
    }

    #[test]
    fn solve_recovers_rhs_and_flags_singular() {
        let m = [2.0, 1.0, 1.0, 3.0];
        let mut y = [3.0, 4.0];
        solve(&m, &mut y, 2, 1, "M").unwrap();
        assert!((y[0] - 1.0).abs() < 1e-15 && (y[1] - 1.0).abs() < 1e-15);
        let mut y = [1.0, 1.0];
        assert!(solve(&[1.0, 2.0, 2.0, 4.0], &mut y, 2, 1, "M").is_err());
    }
}
