//! Whole-sequence scans of the generic GBT recurrence and their exact adjoint.
//!
//! For per-step scalars (a_i, a_e, a_b) (`GbtStep { implicit, explicit, input }`, one per step or
//! one per step and row), every row r of a batch runs
//!     (I - a_i A) c_k = (I + a_e A) c_{k-1} + a_b B f_k,        k = 1 .. L,
//! except that a row with a_i = +inf is the LegS initialisation c_k = f_k e_0 (drops c_{k-1}).
//! The adjoint (the transpose of (f, c0) -> outputs as a linear map) runs, from lambda_L = grad_L:
//!     w = (I - a_i A)^{-T} lambda_k;  grad_f_k = a_b <B, w>;  lambda_{k-1} = (I + a_e A)^T w
//! (+ grad_{k-1} when every state is an output), and for a reset row grad_f_k = lambda_k[0],
//! lambda_{k-1} = 0. grad_c0 = lambda_0.
//!
//! Layout (row-major): f (L, R), c0 (R, N), coef (L, 3) or (L, R, 3), states (L, R, N) or (R, N).
//! Rows are independent: blocks of rows run on the rayon pool when the work L*R*N is large enough.

//!
//! - `step`: one GBT step on a row, on tiles of rows (SIMD, `crate::simd`) and over time (wavefront);
//! - `lti`: long scans of a few rows with a time-invariant step, in blocks of T steps;
//! - `parallel`: blocks of rows on the rayon pool, above the one `PARALLEL_WORK` threshold;
//! - this module: argument checks and the drivers that walk the steps.

mod lti;
mod parallel;
mod step;
#[cfg(test)]
mod tests;

use crate::discretize::GbtStep;
use crate::error::{HippoError, Result};
use crate::float::{Lane, Real};
use crate::simd::{accelerated, Isa, TILE_STEPS};
use crate::structured::Structured;

pub use parallel::PARALLEL_WORK;
use parallel::{run_blocks, SharedOut};
pub use step::ROW_FORM_STEPS;
use step::{rows_to_tile, tile_to_rows, StepKernel, TILE};

/// The per-step coefficients (a_i, a_e, a_b) of a scan, row-major float64.
#[derive(Debug, Clone, Copy)]
pub enum Coefficients<'a> {
    /// (L, 3): one row per step, shared by every row of the batch.
    PerStep(&'a [f64]),
    /// (L, R, 3): one row per step and batch row.
    PerRow(&'a [f64]),
}

impl Coefficients<'_> {
    #[inline(always)]
    pub(crate) fn get(&self, k: usize, r: usize, rows: usize) -> GbtStep {
        let c = match *self {
            Coefficients::PerStep(c) => &c[3 * k..3 * k + 3],
            Coefficients::PerRow(c) => &c[3 * (k * rows + r)..3 * (k * rows + r) + 3],
        };
        GbtStep { implicit: c[0], explicit: c[1], input: c[2] }
    }

    fn check(&self, steps: usize, rows: usize) -> Result<()> {
        let (c, expected_len) = match *self {
            Coefficients::PerStep(c) => (c, steps * 3),
            Coefficients::PerRow(c) => (c, steps * rows * 3),
        };
        if c.len() != expected_len {
            let want = match self {
                Coefficients::PerStep(_) => format!("({steps}, 3)"),
                Coefficients::PerRow(_) => format!("({steps}, {rows}, 3)"),
            };
            return Err(HippoError::invalid("coef", format!("expected shape {want}, got {} values", c.len())));
        }
        for (j, row) in c.chunks_exact(3).enumerate() {
            let ok = (row[0].is_finite() || row[0] == f64::INFINITY) && row[1].is_finite() && row[2].is_finite();
            if !ok {
                return Err(HippoError::invalid(
                    "coef",
                    format!(
                        "expected finite (a_i, a_e, a_b) or a reset row with a_i = +inf, got ({}, {}, {}) at row {j}",
                        row[0], row[1], row[2]
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[inline(always)]
pub(crate) fn is_reset(step: &GbtStep) -> bool {
    step.implicit == f64::INFINITY
}

/// The shapes of a scan's buffers, row-major: f (L, R), c0 (R, N), out (L, R, N) or (R, N).
pub(crate) fn check_shapes(
    f_len: usize,
    c_len: usize,
    out_len: usize,
    steps: usize,
    rows: usize,
    n: usize,
    return_all: bool,
) -> Result<()> {
    if f_len != steps * rows {
        return Err(HippoError::invalid("f", format!("expected shape ({steps}, {rows}), got {f_len} values")));
    }
    if c_len != rows * n {
        return Err(HippoError::invalid("c0", format!("expected shape ({rows}, {n}), got {c_len} values")));
    }
    let want = if return_all { steps * rows * n } else { rows * n };
    if out_len != want {
        return Err(HippoError::invalid("out", format!("expected {want} values, got {out_len}")));
    }
    Ok(())
}

/// Runs the recurrence over `f` (L, R) from `c0` (R, N). `out` is (L, R, N) when `return_all`,
/// else (R, N) (the final state; c0 itself when L = 0). `c0 = None` means `out` already holds c0
/// (an in-place update; only without `return_all`).
#[allow(clippy::too_many_arguments)]
pub fn gbt_scan<T: Real>(
    op: &Structured<T>,
    f: &[T],
    c0: Option<&[T]>,
    coef: Coefficients<'_>,
    steps: usize,
    rows: usize,
    return_all: bool,
    out: &mut [T],
) -> Result<()> {
    let n = op.order();
    if c0.is_none() && return_all {
        return Err(HippoError::invalid("c0", "an in-place scan (c0 = None) returns the final state only"));
    }
    // An in-place scan (c0 = None) reads c0 from `out`, whose length is checked.
    check_shapes(f.len(), c0.map_or(rows * n, <[T]>::len), out.len(), steps, rows, n, return_all)?;
    coef.check(steps, rows)?;
    if rows == 0 || (steps == 0 && !return_all) {
        if let Some(c0) = c0 {
            out.copy_from_slice(c0);
        }
        return Ok(());
    }
    if let Some(step) = lti::blocked_step(op, &coef, steps, rows, return_all) {
        return lti::scan_blocked(op, f, c0, step, steps, rows, out);
    }
    let isa = Isa::active();
    let shared = SharedOut::new(out);
    run_blocks(steps, rows, n, |r0, r1| {
        accelerated(
            #[inline(always)]
            || {
                let mut kernel = StepKernel::new(op, isa);
                let width = (r1 - r0) * n;
                let wave = T::wave_steps(isa);
                if !return_all && r1 - r0 < T::tile_rows(isa).max(8) && wave > 0 && steps >= ROW_FORM_STEPS {
                    // Too few rows for SIMD tiles but many steps: each row on its own, through the time wavefront.
                    // SAFETY: block (r0, r1) owns rows r0..r1 of the final state.
                    let state = unsafe { shared.part(r0 * n, width) };
                    if let Some(c0) = c0 {
                        state.copy_from_slice(&c0[r0 * n..r1 * n]);
                    }
                    for (j, c) in state.chunks_exact_mut(n).enumerate() {
                        let r = r0 + j;
                        kernel.forward_row(c, steps, |k| f[k * rows + r], |k| coef.get(k, r, rows));
                    }
                    return;
                }
                let mut k = 0;
                while k < steps {
                    // Every state kept, shared coefficients: TILE_STEPS steps at once on whole tiles of rows.
                    let multi = return_all
                        && matches!(coef, Coefficients::PerStep(_))
                        && r1 - r0 >= T::tile_rows(isa).max(8)
                        && k + TILE_STEPS <= steps
                        && (k > 0 || c0.is_some())
                        && (k..k + TILE_STEPS).all(|q| !is_reset(&coef.get(q, 0, rows)));
                    if multi {
                        // SAFETY: the time slices k - 1 .. k + TILE_STEPS of rows r0..r1: pairwise disjoint.
                        let src: &[T] = match (k, c0) {
                            (0, Some(c)) => &c[r0 * n..r1 * n],
                            _ => unsafe { shared.part(((k - 1) * rows + r0) * n, width) },
                        };
                        let mut dst: Vec<&mut [T]> =
                            (0..TILE_STEPS).map(|s| unsafe { shared.part(((k + s) * rows + r0) * n, width) }).collect();
                        let fs: Vec<&[T]> =
                            (0..TILE_STEPS).map(|s| &f[(k + s) * rows + r0..(k + s) * rows + r1]).collect();
                        let steps_k: Vec<GbtStep> = (0..TILE_STEPS).map(|s| coef.get(k + s, 0, rows)).collect();
                        if kernel.forward_rows_steps(&steps_k, src, &mut dst, &fs) {
                            k += TILE_STEPS;
                            continue;
                        }
                    }
                    // SAFETY: block (r0, r1) touches only rows r0..r1 of each output time slice.
                    let state = unsafe { shared.part(if return_all { (k * rows + r0) * n } else { r0 * n }, width) };
                    // The state before step k: c0 (k = 0), the previous time slice (all states kept), or in place.
                    let src: Option<&[T]> = if k == 0 {
                        c0.map(|c| &c[r0 * n..r1 * n])
                    } else if return_all {
                        // SAFETY: the previous time slice of the same rows, disjoint from `state`.
                        Some(unsafe { shared.part(((k - 1) * rows + r0) * n, width) })
                    } else {
                        None
                    };
                    let fk = &f[k * rows + r0..k * rows + r1];
                    match coef {
                        Coefficients::PerStep(_) => {
                            kernel.prepare(coef.get(k, 0, rows));
                            kernel.forward_rows(src, state, fk);
                        }
                        Coefficients::PerRow(_) => {
                            if let Some(s) = src {
                                state.copy_from_slice(s);
                            }
                            for (j, c) in state.chunks_exact_mut(n).enumerate() {
                                kernel.prepare(coef.get(k, r0 + j, rows));
                                kernel.forward(c, fk[j]);
                            }
                        }
                    }
                    k += 1;
                }
            },
        )
    });
    Ok(())
}

/// The adjoint of `gbt_scan` (see the module docs): from `grad` ((L, R, N) when `return_all`, else
/// (R, N)) writes `grad_f` (L, R) and `grad_c0` (R, N).
#[allow(clippy::too_many_arguments)]
pub fn gbt_scan_adjoint<T: Real>(
    op: &Structured<T>,
    grad: &[T],
    coef: Coefficients<'_>,
    steps: usize,
    rows: usize,
    return_all: bool,
    grad_f: &mut [T],
    grad_c0: &mut [T],
) -> Result<()> {
    let n = op.order();
    let want = if return_all { steps * rows * n } else { rows * n };
    if grad.len() != want {
        let shape = if return_all { format!("({steps}, {rows}, {n})") } else { format!("({rows}, {n})") };
        return Err(HippoError::invalid("grad", format!("expected shape {shape}, got {} values", grad.len())));
    }
    coef.check(steps, rows)?;
    if grad_f.len() != steps * rows || grad_c0.len() != rows * n {
        return Err(HippoError::invalid("grad_f, grad_c0", "output buffers of shapes (L, R) and (R, N) expected"));
    }
    if rows == 0 {
        return Ok(());
    }
    if steps == 0 {
        if return_all {
            grad_c0.fill(T::zero());
        } else {
            grad_c0.copy_from_slice(grad);
        }
        return Ok(());
    }
    let isa = Isa::active();
    let shared_f = SharedOut::new(grad_f);
    let shared_c0 = SharedOut::new(grad_c0);
    run_blocks(steps, rows, n, |r0, r1| {
        accelerated(
            #[inline(always)]
            || {
                let mut kernel = StepKernel::for_adjoint(op, isa);
                // SAFETY: each block owns rows r0..r1 of grad_c0 and of every time slice of grad_f.
                let lam = unsafe { shared_c0.part(r0 * n, (r1 - r0) * n) };
                let last = if return_all { (steps - 1) * rows * n } else { 0 };
                lam.copy_from_slice(&grad[last + r0 * n..last + r1 * n]);
                // Shared coefficients: whole tiles of TILE rows stay transposed (element i of every row of
                // the tile side by side) for all steps; per-row coefficients and the rest go row by row.
                let tiled = if matches!(coef, Coefficients::PerStep(_)) { (r1 - r0) / TILE * TILE } else { 0 };
                let mut tiles: Vec<[T; TILE]> = vec![[T::zero(); TILE]; tiled * n / TILE];
                let mut tile_scratch: Vec<[T; TILE]> = Vec::new();
                let mut grad_tile: Vec<[T; TILE]> = vec![[T::zero(); TILE]; if return_all { n } else { 0 }];
                for (t, rows_of_tile) in tiles.chunks_exact_mut(n).zip(lam[..tiled * n].chunks_exact(TILE * n)) {
                    rows_to_tile(isa, rows_of_tile, n, t);
                }
                for k in (0..steps).rev() {
                    let gf = unsafe { shared_f.part(k * rows + r0, r1 - r0) };
                    if tiled > 0 {
                        kernel.prepare(coef.get(k, 0, rows));
                    }
                    for (m, t) in tiles.chunks_exact_mut(n).enumerate() {
                        let g = StepKernel::adjoint_with(
                            op,
                            &kernel.prefix,
                            &kernel.table,
                            kernel.step,
                            t,
                            &mut tile_scratch,
                            &mut kernel.cache,
                        );
                        gf[m * TILE..(m + 1) * TILE].copy_from_slice(&g);
                        if return_all && k >= 1 {
                            let base = ((k - 1) * rows + r0 + m * TILE) * n;
                            rows_to_tile(isa, &grad[base..base + TILE * n], n, &mut grad_tile);
                            for (ti, gi) in t.iter_mut().zip(&grad_tile) {
                                *ti = ti.add(*gi);
                            }
                        }
                    }
                    for (j, l) in lam[tiled * n..].chunks_exact_mut(n).enumerate() {
                        kernel.prepare(coef.get(k, r0 + tiled + j, rows));
                        gf[tiled + j] = kernel.adjoint(l);
                    }
                    if return_all && k >= 1 {
                        let g = &grad[((k - 1) * rows + r0 + tiled) * n..((k - 1) * rows + r1) * n];
                        for (l, gi) in lam[tiled * n..].iter_mut().zip(g) {
                            *l = *l + *gi;
                        }
                    }
                }
                for (t, rows_of_tile) in tiles.chunks_exact(n).zip(lam[..tiled * n].chunks_exact_mut(TILE * n)) {
                    tile_to_rows(isa, t, n, rows_of_tile);
                }
            },
        )
    });
    Ok(())
}
