//! Long scans of one row with a time-invariant step (the same (a_i, a_e, a_b) at every step), in
//! blocks of T steps: the convolution form of a linear time-invariant recurrence (LSSL, Gu et al.
//! 2021, §3.2: c_k = sum_j Ad^j Bd f_{k-j}). With Ad = (I - a_i A)^{-1}(I + a_e A) and
//! Bd = a_b (I - a_i A)^{-1} B,
//!     c_{k+T} = Ad^T c_k + sum_{j<T} Ad^{T-1-j} Bd f_{k+1+j}.
//! Ad (one O(N) step of the rows of the identity) gives P = Ad^T by log2(T) squarings, and T O(N)
//! steps from a unit impulse give the Krylov matrix K = [Bd, Ad Bd, ..., Ad^{T-1} Bd], once;
//! each block then costs (N + T) N multiply-adds, i.e. O(N) per step for T = N, vectorised and
//! independent of the serial sweeps of the tridiagonal solve that make a single LegT/LMU row slow.
//! The result differs from the step-by-step scan by rounding only (tested against dense float64);
//! the blocks run in float64 (see `scan_blocked`).

use crate::discretize::GbtStep;
use crate::error::Result;
use crate::float::Real;
use crate::simd::{accelerated, Isa};
use crate::structured::Structured;

use super::step::StepKernel;
use super::{gbt_scan, is_reset, Coefficients, TILE};

/// Largest order for the blocked form: P and K hold 2 N^2 values (8 MB in float32 at N = 1024).
const MAX_ORDER: usize = 1024;

/// Fewest steps for the blocked form: below, a scan is short enough step by step (and its final
/// state stays bitwise the last state of the same scan with every state kept).
pub(crate) const MIN_STEPS: usize = 1 << 14;

/// The block length T for order n: a power of two (P = Ad^T by repeated squaring).
fn block_len(n: usize) -> usize {
    n.max(32).next_power_of_two()
}

/// The shared step when a scan should run in blocks: few rows (below one tile of rows), only the
/// final state, a structure without the fused `Prefix` loop (those have the time wavefront), the same
/// non-reset step everywhere, and enough steps to repay the set-up (log2(T) products of N x N
/// matrices, about N T / 2 steps of one row), at least `MIN_STEPS`.
pub(crate) fn blocked_step<T: Real>(
    op: &Structured<T>,
    coef: &Coefficients<'_>,
    steps: usize,
    rows: usize,
    return_all: bool,
) -> Option<GbtStep> {
    let n = op.order();
    let Coefficients::PerStep(c) = *coef else { return None };
    if return_all || rows >= TILE || n > MAX_ORDER || op.has_prefix() || steps < (n * block_len(n) / 2).max(MIN_STEPS) {
        return None;
    }
    let first = &c[..3];
    if !c.chunks_exact(3).all(|row| row == first) {
        return None;
    }
    let step = GbtStep { implicit: first[0], explicit: first[1], input: first[2] };
    (!is_reset(&step)).then_some(step)
}

/// `gbt_scan` (final state only) of `rows` rows with the time-invariant `step` (see `blocked_step`).
/// P, K and the state between blocks are float64 whatever `T` is: P is applied once per block, so
/// its rounding adds up over the blocks; in float64 a float32 scan is as accurate as step by step.
#[allow(clippy::too_many_arguments)]
pub(crate) fn scan_blocked<T: Real>(
    op: &Structured<T>,
    f: &[T],
    c0: Option<&[T]>,
    step: GbtStep,
    steps: usize,
    rows: usize,
    out: &mut [T],
) -> Result<()> {
    let n = op.order();
    let t = block_len(n);
    let op = Structured::<f64>::new(op.measure(), n)?;
    let coef: Vec<f64> = (0..t).flat_map(|_| [step.implicit, step.explicit, step.input]).collect();
    // Row j of `p` = Ad^T e_j (column j of P): `p` holds P^T, and (Ad^2k)^T = (Ad^k)^T (Ad^k)^T.
    let mut p = vec![0.0; n * n];
    for j in 0..n {
        p[j * n + j] = 1.0;
    }
    gbt_scan(&op, &vec![0.0; n], None, Coefficients::PerStep(&coef[..3]), 1, n, false, &mut p)?;
    let mut square = vec![0.0; n * n];
    for _ in 0..t.trailing_zeros() {
        accelerated(
            #[inline(always)]
            || {
                square.fill(0.0);
                for (row, out) in p.chunks_exact(n).zip(square.chunks_exact_mut(n)) {
                    for (a, pk) in row.iter().zip(p.chunks_exact(n)) {
                        axpy(*a, pk, out);
                    }
                }
            },
        );
        std::mem::swap(&mut p, &mut square);
    }
    // Row m of `h` = Ad^m Bd: the impulse response.
    let mut impulse = vec![0.0; t];
    impulse[0] = 1.0;
    let mut h = vec![0.0; t * n];
    gbt_scan(&op, &impulse, Some(&vec![0.0; n]), Coefficients::PerStep(&coef), t, 1, true, &mut h)?;
    if let Some(c0) = c0 {
        out.copy_from_slice(c0);
    }
    let blocks = steps / t;
    let isa = Isa::active();
    accelerated(
        #[inline(always)]
        || {
            let (mut c, mut next) = (vec![0.0; n], vec![0.0; n]);
            let mut kernel = StepKernel::new(&op, isa);
            for (r, state) in out.chunks_exact_mut(n).enumerate() {
                for (ci, si) in c.iter_mut().zip(state.iter()) {
                    *ci = si.widen();
                }
                for b in 0..blocks {
                    next.fill(0.0);
                    for (cj, pj) in c.iter().zip(p.chunks_exact(n)) {
                        axpy(*cj, pj, &mut next);
                    }
                    for (k, hk) in h.chunks_exact(n).rev().enumerate() {
                        axpy(f[(b * t + k) * rows + r].widen(), hk, &mut next);
                    }
                    std::mem::swap(&mut c, &mut next);
                }
                kernel.prepare(step);
                for k in blocks * t..steps {
                    kernel.forward(&mut c, f[k * rows + r].widen());
                }
                for (si, ci) in state.iter_mut().zip(&c) {
                    *si = T::cast(*ci);
                }
            }
        },
    );
    Ok(())
}

/// y <- a x + y.
#[inline(always)]
fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi = a.mul_add(*xi, *yi);
    }
}
