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

use rayon::prelude::*;

use crate::discretize::GbtStep;
use crate::error::{HippoError, Result};
use crate::float::{accelerated, Lane, Real};
use crate::simd::{WaveTables, TILE_STEPS};
use crate::structured::{PrefixTables, SolveCache, Structured, Sweep};

/// Below this many state-element updates (L * R * N, ~0.4 ms of work) a scan stays on the calling
/// thread: waking the rayon pool costs tens of microseconds.
pub const PARALLEL_WORK: usize = 1 << 20;

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
    fn get(&self, k: usize, r: usize, rows: usize) -> GbtStep {
        let c = match *self {
            Coefficients::PerStep(c) => &c[3 * k..3 * k + 3],
            Coefficients::PerRow(c) => &c[3 * (k * rows + r)..3 * (k * rows + r) + 3],
        };
        GbtStep { implicit: c[0], explicit: c[1], input: c[2] }
    }

    fn check(&self, steps: usize, rows: usize) -> Result<()> {
        let (c, want) = match *self {
            Coefficients::PerStep(c) => (c, format!("({steps}, 3)")),
            Coefficients::PerRow(c) => (c, format!("({steps}, {rows}, 3)")),
        };
        let expected_len = match self {
            Coefficients::PerStep(_) => steps * 3,
            Coefficients::PerRow(_) => steps * rows * 3,
        };
        if c.len() != expected_len {
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
fn is_reset(step: &GbtStep) -> bool {
    step.implicit == f64::INFINITY
}

/// One GBT step of one operator, with per-step tables for the fused `Prefix` (LegS, LagT, GLagT)
/// loop: preparing costs O(N) once per step and is shared by every row with the same coefficients.
struct StepKernel<'a, T: Real> {
    op: &'a Structured<T>,
    prefix: Option<PrefixTables<'a, T>>,
    step: GbtStep,
    /// Prefix tables of the prepared step, interleaved per element:
    /// (inv, e, -(ae*l), -(ai*l*inv), 1 - r*ai*l*inv, r*inv) (negated where they are subtracted).
    table: Vec<[T; 6]>,
    /// a_b f per row of the current tile (scratch of `forward_rows`).
    abf: Vec<T>,
    /// Scratch of the operators on one row, the cached tables of their solves, and a transposed
    /// tile of rows with its scratch.
    scratch: Vec<T>,
    cache: SolveCache<T>,
    tile: Vec<[T; TILE]>,
    tile_scratch: Vec<[T; TILE]>,
    /// The last rows of a batch padded to one SIMD tile.
    tile_rows: Vec<T>,
    /// Tables and a_b f per row of the steps of `forward_rows_steps`.
    multi_tables: Vec<Vec<[T; 6]>>,
    multi_abf: Vec<Vec<T>>,
}

/// The fused `Prefix` table of one step (see `StepKernel::prepare`):
///   u_i = (1 + a_e h_i) x_i - a_e l_i P_i + a_b f b_i,
///   y_i = (u_i - a_i l_i Q_{i-1}) inv_i,  inv_i = 1 / (1 + a_i (l_i r_i - h_i)),
///   Q_i = Q_{i-1} + r_i y_i = (1 - r_i a_i l_i inv_i) Q_{i-1} + r_i inv_i u_i  (one FMA on the chain),
/// stored per element as (inv, e, -(a_e l), -(a_i l inv), 1 - r a_i l inv, r inv).
#[inline(always)]
fn fill_prefix_table<T: Real>(p: &PrefixTables<'_, T>, step: &GbtStep, table: &mut [[T; 6]]) {
    let (ai, ae) = (T::cast(step.implicit), T::cast(step.explicit));
    for (i, t) in table.iter_mut().enumerate() {
        let inv = T::one() / ai.mul_add(p.lr_minus_h[i], T::one());
        let k = ai * p.l[i] * inv;
        *t = [inv, ae.mul_add(p.h[i], T::one()), -(ae * p.l[i]), -k, T::one() - p.r[i] * k, p.r[i] * inv];
    }
}

/// Rows per transposed tile of the generic (non-`Prefix`) operators.
const TILE: usize = 8;

/// `tile[i][j] = rows[j * n + i]` for the TILE rows of `rows` (SIMD transposes when available).
#[inline(always)]
fn rows_to_tile<T: Real>(rows: &[T], n: usize, tile: &mut [[T; TILE]]) {
    if !T::rows_to_tile(rows, n, tile) {
        for (j, row) in rows.chunks_exact(n).enumerate() {
            for (t, x) in tile.iter_mut().zip(row) {
                t[j] = *x;
            }
        }
    }
}

/// The inverse of `rows_to_tile`.
#[inline(always)]
fn tile_to_rows<T: Real>(tile: &[[T; TILE]], n: usize, rows: &mut [T]) {
    if !T::tile_to_rows(tile, n, rows) {
        for (j, row) in rows.chunks_exact_mut(n).enumerate() {
            for (x, t) in row.iter_mut().zip(tile) {
                *x = t[j];
            }
        }
    }
}

impl<'a, T: Real> StepKernel<'a, T> {
    fn new(op: &'a Structured<T>) -> Self {
        let prefix = op.prefix_tables();
        let table = if prefix.is_some() { vec![[T::zero(); 6]; op.order()] } else { Vec::new() };
        StepKernel {
            op,
            prefix,
            step: GbtStep { implicit: f64::NAN, explicit: f64::NAN, input: f64::NAN },
            table,
            abf: Vec::new(),
            scratch: Vec::new(),
            cache: SolveCache::default(),
            tile: Vec::new(),
            tile_scratch: Vec::new(),
            tile_rows: Vec::new(),
            multi_tables: Vec::new(),
            multi_abf: Vec::new(),
        }
    }

    /// Makes `step` the current step (no work if it already is).
    #[inline(always)]
    fn prepare(&mut self, step: GbtStep) {
        if step == self.step {
            return;
        }
        self.step = step;
        if is_reset(&step) {
            return;
        }
        if let Some(p) = &self.prefix {
            // Forward step at element i with P_i = sum_{k<=i} r_k x_k and Q_{i-1} = sum_{k<i} r_k y_k.
            fill_prefix_table(p, &step, &mut self.table);
        }
    }

    /// `TILE_STEPS` GBT steps (`steps`, none a reset) of a `Prefix` measure on the rows of `src`, every
    /// state kept: step s writes `dst[s]` with inputs `f[s]` (one per row). Whole tiles of rows run
    /// in the multi-step SIMD kernel, the rest step by step. False (nothing done) without tiles.
    #[inline(always)]
    fn forward_rows_steps(&mut self, steps: &[GbtStep], src: &[T], dst: &mut [&mut [T]], f: &[&[T]]) -> bool {
        let Some(p) = &self.prefix else { return false };
        let n = self.op.order();
        self.multi_tables.resize(TILE_STEPS, Vec::new());
        self.multi_abf.resize(TILE_STEPS, Vec::new());
        for s in 0..TILE_STEPS {
            self.multi_tables[s].resize(n, [T::zero(); 6]);
            fill_prefix_table(p, &steps[s], &mut self.multi_tables[s]);
            let ab = T::cast(steps[s].input);
            self.multi_abf[s].clear();
            self.multi_abf[s].extend(f[s].iter().map(|x| ab * *x));
        }
        let tables: Vec<&[[T; 6]]> = self.multi_tables.iter().map(|t| t.as_slice()).collect();
        let abf: Vec<&[T]> = self.multi_abf.iter().map(|a| a.as_slice()).collect();
        let done = T::prefix_forward_tiles_steps(&tables, p.r, p.b, &abf, src, dst, n);
        if done == 0 {
            return false;
        }
        for s in 0..TILE_STEPS {
            let (before, rest) = dst.split_at_mut(s);
            let from: &[T] = if s == 0 { src } else { &before[s - 1][..] };
            let to = &mut rest[0][done * n..];
            to.copy_from_slice(&from[done * n..]);
            self.prepare(steps[s]);
            for (c, x) in to.chunks_exact_mut(n).zip(&f[s][done..]) {
                self.forward(c, *x);
            }
        }
        true
    }

    /// c <- the prepared step applied to c with input f.
    #[inline(always)]
    fn forward(&mut self, c: &mut [T], f: T) {
        let step = &self.step;
        if is_reset(step) {
            c.fill(T::zero());
            c[0] = f;
            return;
        }
        let abf = T::cast(step.input) * f;
        match &self.prefix {
            Some(p) => {
                let (mut sum_x, mut sum_y) = (T::zero(), T::zero());
                for (((x, t), r), b) in c.iter_mut().zip(&self.table).zip(p.r).zip(p.b) {
                    let [inv, e, nael, nk, decay, rinv] = *t;
                    sum_x = r.mul_add(*x, sum_x);
                    let u = abf.mul_add(*b, e.mul_add(*x, nael * sum_x));
                    *x = u.mul_add(inv, nk * sum_y);
                    sum_y = decay.mul_add(sum_y, rinv * u);
                }
            }
            None => {
                let step = *step;
                Self::generic_forward(self.op, &step, c, abf, &mut self.scratch, &mut self.cache);
            }
        }
    }

    /// Steps `steps` of one row `c` with inputs `f(k)` and coefficients `coef(k)`, the final state
    /// only: runs of `T::WAVE_STEPS` GBT steps of a `Prefix` measure go through the time wavefront
    /// (`crate::simd`), everything else step by step.
    #[inline(always)]
    fn forward_row(&mut self, c: &mut [T], steps: usize, f: impl Fn(usize) -> T, coef: impl Fn(usize) -> GbtStep) {
        let wave = T::WAVE_STEPS;
        let mut k = 0;
        if let Some(p) = &self.prefix {
            if steps >= wave {
                let tables = WaveTables::new(wave, p.r, p.l, p.h, p.lr_minus_h, p.b);
                let (mut ai, mut ae, mut abf) = (vec![T::zero(); wave], vec![T::zero(); wave], vec![T::zero(); wave]);
                while k + wave <= steps {
                    let run_ok = (k..k + wave).all(|q| !is_reset(&coef(q)));
                    if run_ok {
                        for q in 0..wave {
                            let s = coef(k + q);
                            ai[q] = T::cast(s.implicit);
                            ae[q] = T::cast(s.explicit);
                            abf[q] = T::cast(s.input) * f(k + q);
                        }
                        if T::prefix_wavefront(&tables, &ai, &ae, &abf, c) {
                            k += wave;
                            continue;
                        }
                    }
                    self.prepare(coef(k));
                    self.forward(c, f(k));
                    k += 1;
                }
            }
        }
        for k in k..steps {
            self.prepare(coef(k));
            self.forward(c, f(k));
        }
    }

    /// The prepared step on consecutive rows `state` (rows x N) with inputs `f` (one per row), from
    /// `src` (the previous states, same shape) or in place: whole tiles of rows (SIMD for the
    /// `Prefix` structure, transposed lane arrays for the others), the rest row by row.
    #[inline(always)]
    fn forward_rows(&mut self, src: Option<&[T]>, state: &mut [T], f: &[T]) {
        let n = self.op.order();
        let mut done = 0;
        if let (Some(p), false) = (&self.prefix, is_reset(&self.step)) {
            let ab = T::cast(self.step.input);
            self.abf.clear();
            self.abf.extend(f.iter().map(|x| ab * *x));
            done = T::prefix_forward_tiles(&self.table, p.r, p.b, &self.abf, src, state, n);
            let (rest, lanes) = (f.len() - done, T::TILE_ROWS);
            if rest > 0 && rest < lanes {
                // The last rows (fewer than a tile) in one zero-padded tile: the padding lanes compute
                // on zeros and are dropped; the real lanes get the same operations as in a full tile.
                self.tile_rows.clear();
                self.tile_rows.extend_from_slice(&src.unwrap_or(state)[done * n..]);
                self.tile_rows.resize(lanes * n, T::zero());
                self.abf.drain(..done);
                self.abf.resize(lanes, T::zero());
                if T::prefix_forward_tiles(&self.table, p.r, p.b, &self.abf, None, &mut self.tile_rows, n) == lanes {
                    state[done * n..].copy_from_slice(&self.tile_rows[..rest * n]);
                    done += rest;
                }
            }
        }
        if self.prefix.is_none() && !is_reset(&self.step) {
            // Transposed tiles of TILE rows: element i of every row of the tile side by side.
            let ab = T::cast(self.step.input);
            let step = self.step;
            self.tile.resize(n, [T::zero(); TILE]);
            while done + TILE <= f.len() {
                let span = done * n..(done + TILE) * n;
                let from = src.map_or(&state[span.clone()], |s| &s[span.clone()]);
                rows_to_tile(from, n, &mut self.tile);
                let abf: [T; TILE] = std::array::from_fn(|j| ab * f[done + j]);
                Self::generic_forward(self.op, &step, &mut self.tile, abf, &mut self.tile_scratch, &mut self.cache);
                tile_to_rows(&self.tile, n, &mut state[span]);
                done += TILE;
            }
        }
        if let Some(s) = src {
            state[done * n..].copy_from_slice(&s[done * n..]);
        }
        for (c, x) in state[done * n..].chunks_exact_mut(n).zip(&f[done..]) {
            self.forward(c, *x);
        }
    }

    /// (I - a_i A)^{-1} ((I + a_e A) x + B abf) by the operators, on a row or a tile of rows.
    #[inline(always)]
    fn generic_forward<V: Lane<T>>(
        op: &Structured<T>,
        step: &GbtStep,
        x: &mut [V],
        abf: V,
        scratch: &mut Vec<V>,
        cache: &mut SolveCache<T>,
    ) {
        if step.explicit != 0.0 {
            op.mul(T::cast(step.explicit), x, Sweep::Forward, scratch);
        }
        for (xi, b) in x.iter_mut().zip(op.input()) {
            *xi = abf.scale_add(*b, *xi);
        }
        if step.implicit != 0.0 {
            op.solve(T::cast(step.implicit), x, Sweep::Forward, scratch, cache);
        }
    }

    #[inline(always)]
    fn adjoint(&mut self, lam: &mut [T]) -> T {
        Self::adjoint_with(self.op, &self.prefix, &self.table, self.step, lam, &mut self.scratch, &mut self.cache)
    }

    /// lambda <- (I + a_e A)^T (I - a_i A)^{-T} lambda on a row (`V = T`) or a transposed tile of
    /// rows; returns grad_f = a_b <B, (I - a_i A)^{-T} lambda> (per lane).
    #[inline(always)]
    fn adjoint_with<V: Lane<T>>(
        op: &Structured<T>,
        prefix: &Option<PrefixTables<'_, T>>,
        table: &[[T; 6]],
        step: GbtStep,
        lam: &mut [V],
        scratch: &mut Vec<V>,
        cache: &mut SolveCache<T>,
    ) -> V {
        let zero = V::splat(T::zero());
        if is_reset(&step) {
            let g = lam[0];
            lam.fill(zero);
            return g;
        }
        let ab = T::cast(step.input);
        match prefix {
            Some(p) => {
                // Backward sweep with S = sum_{k>=i} l_k w_k: w_i = (lambda_i - a_i r_i S_{i+1}) inv_i,
                // lambda_i <- (1 + a_e h_i) w_i - a_e r_i S_i, grad_f = a_b sum_i b_i w_i.
                let (ai, ae) = (T::cast(step.implicit), T::cast(step.explicit));
                let (mut sum, mut g) = (zero, zero);
                for i in (0..lam.len()).rev() {
                    let [inv, e, ..] = table[i];
                    let w = sum.scale_add(-ai * p.r[i], lam[i]).scale(inv);
                    sum = w.scale_add(p.l[i], sum);
                    lam[i] = w.scale_add(e, sum.scale(-ae * p.r[i]));
                    g = w.scale_add(p.b[i], g);
                }
                g.scale(ab)
            }
            None => {
                if step.implicit != 0.0 {
                    op.solve(T::cast(step.implicit), lam, Sweep::Backward, scratch, cache);
                }
                let g = lam.iter().zip(op.input()).fold(zero, |acc, (w, b)| w.scale_add(*b, acc));
                if step.explicit != 0.0 {
                    op.mul(T::cast(step.explicit), lam, Sweep::Backward, scratch);
                }
                g.scale(ab)
            }
        }
    }
}

/// A raw view of an output buffer whose disjoint parts are written by different rayon tasks.
#[derive(Clone, Copy)]
struct SharedOut<T>(*mut T, usize);
// SAFETY: tasks only create slices of disjoint index ranges (one block of rows each), see `part`.
unsafe impl<T: Send> Send for SharedOut<T> {}
unsafe impl<T: Send> Sync for SharedOut<T> {}

impl<T> SharedOut<T> {
    fn new(buf: &mut [T]) -> Self {
        SharedOut(buf.as_mut_ptr(), buf.len())
    }
    /// # Safety
    /// No two live slices from `part` may overlap.
    #[allow(clippy::mut_from_ref)]
    unsafe fn part(&self, start: usize, len: usize) -> &mut [T] {
        assert!(start + len <= self.1);
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

/// Splits rows 0..rows into blocks; one block when the work is small (single-threaded).
fn row_blocks(steps: usize, rows: usize, n: usize) -> Vec<(usize, usize)> {
    let work = steps.saturating_mul(rows).saturating_mul(n);
    let threads = rayon::current_num_threads().max(1);
    // Blocks of whole SIMD tiles (8 rows); one per thread for short scans (fewer hand-offs),
    // four per thread for long ones (load balance).
    let split = if work < 16 * PARALLEL_WORK { threads } else { 4 * threads };
    let per_block =
        if work < PARALLEL_WORK || rows < 2 || threads == 1 { rows } else { rows.div_ceil(split).next_multiple_of(8) };
    (0..rows).step_by(per_block.max(1)).map(|r0| (r0, (r0 + per_block).min(rows))).collect()
}

fn run_blocks(blocks: &[(usize, usize)], task: impl Fn(usize, usize) + Sync + Send) {
    if blocks.len() <= 1 {
        blocks.iter().for_each(|&(r0, r1)| task(r0, r1));
    } else {
        blocks.par_iter().for_each(|&(r0, r1)| task(r0, r1));
    }
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
    match c0 {
        Some(c0) if c0.len() != rows * n => {
            return Err(HippoError::invalid("c0", format!("expected shape ({rows}, {n}), got {} values", c0.len())));
        }
        None if return_all => {
            return Err(HippoError::invalid("c0", "an in-place scan (c0 = None) returns the final state only"))
        }
        _ => {}
    }
    if f.len() != steps * rows {
        return Err(HippoError::invalid("f", format!("expected shape ({steps}, {rows}), got {} values", f.len())));
    }
    coef.check(steps, rows)?;
    let want = if return_all { steps * rows * n } else { rows * n };
    if out.len() != want {
        return Err(HippoError::invalid("out", format!("expected {want} values, got {}", out.len())));
    }
    if rows == 0 || (steps == 0 && !return_all) {
        if let Some(c0) = c0 {
            out.copy_from_slice(c0);
        }
        return Ok(());
    }
    let shared = SharedOut::new(out);
    run_blocks(&row_blocks(steps, rows, n), |r0, r1| {
        accelerated(
            #[inline(always)]
            || {
                let mut kernel = StepKernel::new(op);
                let width = (r1 - r0) * n;
                if !return_all && r1 - r0 < 8 && steps >= T::WAVE_STEPS {
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
                        && r1 - r0 >= 8
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
    let shared_f = SharedOut::new(grad_f);
    let shared_c0 = SharedOut::new(grad_c0);
    run_blocks(&row_blocks(steps, rows, n), |r0, r1| {
        accelerated(
            #[inline(always)]
            || {
                let mut kernel = StepKernel::new(op);
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
                    rows_to_tile(rows_of_tile, n, t);
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
                            rows_to_tile(&grad[base..base + TILE * n], n, &mut grad_tile);
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
                    tile_to_rows(t, n, rows_of_tile);
                }
            },
        )
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discretize::{apply_dense, gbt_matrices, LegsConvention};
    use crate::measure::Measure;

    fn pseudo(len: usize, seed: u64) -> Vec<f64> {
        let mut s = seed ^ 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    /// Dense float64 reference of the same recurrence.
    fn dense_scan(m: &Measure, n: usize, f: &[f64], c0: &[f64], coef: &[f64], rows: usize) -> Vec<f64> {
        let (a, b) = m.transition(n).unwrap();
        let steps = f.len() / rows;
        let mut out = vec![0.0; steps * rows * n];
        for r in 0..rows {
            let mut c = c0[r * n..(r + 1) * n].to_vec();
            for k in 0..steps {
                let s = &coef[3 * k..3 * k + 3];
                if s[0] == f64::INFINITY {
                    c.fill(0.0);
                    c[0] = f[k * rows + r];
                } else {
                    let (ad, bd) =
                        gbt_matrices(&a, &b, n, GbtStep { implicit: s[0], explicit: s[1], input: s[2] }).unwrap();
                    c = apply_dense(&ad, &bd, &c, f[k * rows + r]);
                }
                out[(k * rows + r) * n..(k * rows + r + 1) * n].copy_from_slice(&c);
            }
        }
        out
    }

    fn legs_coef(steps: usize) -> Vec<f64> {
        let mut coef = vec![f64::INFINITY, 0.0, 0.0];
        for t in 1..steps {
            let s = GbtStep::legs(t as f64, 0.5, LegsConvention::Original);
            coef.extend([s.implicit, s.explicit, s.input]);
        }
        coef
    }

    #[test]
    fn scans_match_dense_recurrence() {
        let ms = [
            Measure::LegS,
            Measure::LegT { theta: 1.5 },
            Measure::Lmu { theta: 1.0 },
            Measure::LagT { beta: 0.0 },
            Measure::GLagT { alpha: 0.2, beta: 0.7 },
            Measure::FouT { theta: 1.0 },
            Measure::ChebT { theta: 2.0 },
        ];
        for m in ms {
            for n in [1usize, 2, 7, 16] {
                let (steps, rows) = (9, 3);
                let f = pseudo(steps * rows, n as u64);
                let c0 = pseudo(rows * n, 99);
                let coef: Vec<f64> = if m.is_scale_invariant() {
                    legs_coef(steps)
                } else {
                    // ChebT's I - dA is unit triangular with entries up to 4N dt/theta: its inverse grows
                    // like (4N dt/theta)^N, so both the dense LU and the substitution lose digits with dt.
                    let dt = if matches!(m, Measure::ChebT { .. }) { 0.002 } else { 0.05 };
                    (0..steps)
                        .flat_map(|k| [0.3 * dt * (k + 1) as f64, 0.7 * dt * (k + 1) as f64, dt * (k + 1) as f64])
                        .collect()
                };
                let want = dense_scan(&m, n, &f, &c0, &coef, rows);
                let op = m.structured::<f64>(n).unwrap();
                let mut all = vec![0.0; steps * rows * n];
                gbt_scan(&op, &f, Some(&c0), Coefficients::PerStep(&coef), steps, rows, true, &mut all).unwrap();
                let tol = 1e-10;
                for (i, (g, w)) in all.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() < tol * (1.0 + w.abs()), "{m:?} n={n} [{i}]: {g} vs {w}");
                }
                let mut last = vec![0.0; rows * n];
                gbt_scan(&op, &f, Some(&c0), Coefficients::PerStep(&coef), steps, rows, false, &mut last).unwrap();
                assert_eq!(&last[..], &all[(steps - 1) * rows * n..]);
            }
        }
    }

    #[test]
    fn adjoint_is_the_transpose() {
        for m in [
            Measure::LegS,
            Measure::LegT { theta: 1.0 },
            Measure::FouT { theta: 2.0 },
            Measure::GLagT { alpha: 0.1, beta: 1.0 },
        ] {
            let (n, steps, rows) = (11, 6, 4);
            let coef: Vec<f64> = if m.is_scale_invariant() {
                legs_coef(steps)
            } else {
                (0..steps).flat_map(|_| [0.05, 0.05, 0.1]).collect()
            };
            let op = m.structured::<f64>(n).unwrap();
            for return_all in [false, true] {
                let f = pseudo(steps * rows, 1);
                let c0 = pseudo(rows * n, 2);
                let len = if return_all { steps * rows * n } else { rows * n };
                let grad = pseudo(len, 3);
                let mut y = vec![0.0; len];
                gbt_scan(&op, &f, Some(&c0), Coefficients::PerStep(&coef), steps, rows, return_all, &mut y).unwrap();
                let (mut gf, mut gc0) = (vec![0.0; steps * rows], vec![0.0; rows * n]);
                gbt_scan_adjoint(&op, &grad, Coefficients::PerStep(&coef), steps, rows, return_all, &mut gf, &mut gc0)
                    .unwrap();
                let lhs: f64 = y.iter().zip(&grad).map(|(a, b)| a * b).sum();
                let rhs: f64 = f.iter().zip(&gf).map(|(a, b)| a * b).sum::<f64>()
                    + c0.iter().zip(&gc0).map(|(a, b)| a * b).sum::<f64>();
                assert!((lhs - rhs).abs() < 1e-10 * (1.0 + lhs.abs()), "{m:?} all={return_all}: {lhs} vs {rhs}");
            }
        }
    }

    #[test]
    fn parallel_blocks_and_tiles_equal_one_row_at_a_time() {
        // L * R * N above PARALLEL_WORK: several blocks of rows on the rayon pool.
        let (n, steps, rows) = (257, 111, 37);
        assert!(n * steps * rows > PARALLEL_WORK);
        for m in [
            Measure::LegS,
            Measure::LegT { theta: 1.0 },
            Measure::Lmu { theta: 2.0 },
            Measure::FouT { theta: 1.0 },
            Measure::ChebT { theta: 50.0 },
        ] {
            let op = m.structured::<f32>(n).unwrap();
            let f: Vec<f32> = pseudo(steps * rows, 5).iter().map(|x| *x as f32).collect();
            let c0: Vec<f32> = pseudo(rows * n, 6).iter().map(|x| *x as f32).collect();
            let coef = if m.is_scale_invariant() {
                legs_coef(steps)
            } else {
                (0..steps).flat_map(|_| [0.01, 0.01, 0.02]).collect()
            };
            let mut all = vec![0.0f32; steps * rows * n];
            gbt_scan(&op, &f, Some(&c0), Coefficients::PerStep(&coef), steps, rows, true, &mut all).unwrap();
            for r in [0, 17, 36] {
                let fr: Vec<f32> = (0..steps).map(|k| f[k * rows + r]).collect();
                let mut one = vec![0.0f32; steps * n];
                gbt_scan(
                    &op,
                    &fr,
                    Some(&c0[r * n..(r + 1) * n]),
                    Coefficients::PerStep(&coef),
                    steps,
                    1,
                    true,
                    &mut one,
                )
                .unwrap();
                for k in 0..steps {
                    assert_eq!(
                        &one[k * n..(k + 1) * n],
                        &all[(k * rows + r) * n..(k * rows + r + 1) * n],
                        "{m:?} r={r} k={k}"
                    );
                }
            }
        }
    }

    #[test]
    fn adjoint_tiles_equal_one_row_at_a_time() {
        let (n, steps, rows) = (21, 9, 19);
        for m in [Measure::LegS, Measure::LegT { theta: 1.0 }, Measure::FouT { theta: 1.0 }] {
            let op = m.structured::<f64>(n).unwrap();
            let coef = if m.is_scale_invariant() {
                legs_coef(steps)
            } else {
                (0..steps).flat_map(|_| [0.01, 0.01, 0.02]).collect()
            };
            for return_all in [false, true] {
                let len = if return_all { steps * rows * n } else { rows * n };
                let grad = pseudo(len, 8);
                let (mut gf, mut gc0) = (vec![0.0; steps * rows], vec![0.0; rows * n]);
                gbt_scan_adjoint(&op, &grad, Coefficients::PerStep(&coef), steps, rows, return_all, &mut gf, &mut gc0)
                    .unwrap();
                for r in [0, 9, 18] {
                    let g1: Vec<f64> = if return_all {
                        (0..steps).flat_map(|k| grad[(k * rows + r) * n..(k * rows + r + 1) * n].to_vec()).collect()
                    } else {
                        grad[r * n..(r + 1) * n].to_vec()
                    };
                    let (mut gf1, mut gc1) = (vec![0.0; steps], vec![0.0; n]);
                    gbt_scan_adjoint(&op, &g1, Coefficients::PerStep(&coef), steps, 1, return_all, &mut gf1, &mut gc1)
                        .unwrap();
                    assert_eq!(&gc1[..], &gc0[r * n..(r + 1) * n], "{m:?} r={r}");
                    for k in 0..steps {
                        assert_eq!(gf1[k], gf[k * rows + r], "{m:?} r={r} k={k}");
                    }
                }
            }
        }
    }

    /// `cargo test -p hippo-core --release -- --ignored --nocapture`: kernel timings without Python.
    #[test]
    #[ignore]
    fn timing_of_legs_scans() {
        fn run<T: Real>(m: Measure, steps: usize, rows: usize, n: usize) {
            let op = m.structured::<T>(n).unwrap();
            let f: Vec<T> = pseudo(steps * rows, 1).iter().map(|x| T::cast(*x)).collect();
            // LegS from step index 100 (not the reset row of t = 0)
            let coef: Vec<f64> = if m.is_scale_invariant() {
                (0..steps)
                    .flat_map(|k| {
                        let s = GbtStep::legs((100 + k) as f64, 0.5, LegsConvention::Original);
                        [s.implicit, s.explicit, s.input]
                    })
                    .collect()
            } else {
                (0..steps).flat_map(|_| [0.005, 0.005, 0.01]).collect()
            };
            let c0: Vec<T> = pseudo(rows * n, 2).iter().map(|x| T::cast(*x)).collect();
            let mut out = vec![T::zero(); rows * n];
            let mut best = f64::INFINITY;
            for _ in 0..(if steps == 1 { 2000 } else { 15 }) {
                let t = std::time::Instant::now();
                gbt_scan(&op, &f, Some(&c0), Coefficients::PerStep(&coef), steps, rows, false, &mut out).unwrap();
                best = best.min(t.elapsed().as_secs_f64());
            }
            let name = std::any::type_name::<T>();
            println!(
                "{} {name} L={steps} R={rows} N={n}: {best:.4} s, {:.1} ns/step/row, {:.0} M elem/s",
                m.name(),
                best / (steps * rows) as f64 * 1e9,
                (steps * rows * n) as f64 / best / 1e6
            );
        }
        for (steps, rows, n) in [
            (20_000usize, 1usize, 256usize),
            (20_000, 1, 255),
            (200, 100, 256),
            (20, 4096, 64),
            (1, 100, 256),
            (1, 100, 4096),
        ] {
            for m in [Measure::LegS, Measure::LegT { theta: 1.0 }] {
                run::<f32>(m, steps, rows, n);
                run::<f64>(m, steps, rows, n);
            }
        }
    }

    #[test]
    fn wavefront_equals_step_by_step() {
        for n in [1usize, 2, 5, 8, 31, 64] {
            for m in [Measure::LegS, Measure::LagT { beta: 0.3 }, Measure::GLagT { alpha: 0.2, beta: 0.5 }] {
                let steps = 77;
                let coef: Vec<f64> = if m.is_scale_invariant() {
                    legs_coef(steps)
                } else {
                    (0..steps).flat_map(|k| [0.02 * (k % 3) as f64, 0.01, 0.03]).collect()
                };
                let f32s: Vec<f32> = pseudo(steps, n as u64).iter().map(|x| *x as f32).collect();
                let f64s = pseudo(steps, n as u64);
                let op32 = m.structured::<f32>(n).unwrap();
                let op64 = m.structured::<f64>(n).unwrap();
                let (mut last32, mut all32) = (vec![0.0f32; n], vec![0.0f32; steps * n]);
                gbt_scan(&op32, &f32s, Some(&vec![0.0; n]), Coefficients::PerStep(&coef), steps, 1, false, &mut last32)
                    .unwrap();
                gbt_scan(&op32, &f32s, Some(&vec![0.0; n]), Coefficients::PerStep(&coef), steps, 1, true, &mut all32)
                    .unwrap();
                assert_eq!(&last32[..], &all32[(steps - 1) * n..], "{m:?} n={n} f32");
                let (mut last64, mut all64) = (vec![0.0f64; n], vec![0.0f64; steps * n]);
                gbt_scan(&op64, &f64s, Some(&vec![0.0; n]), Coefficients::PerStep(&coef), steps, 1, false, &mut last64)
                    .unwrap();
                gbt_scan(&op64, &f64s, Some(&vec![0.0; n]), Coefficients::PerStep(&coef), steps, 1, true, &mut all64)
                    .unwrap();
                assert_eq!(&last64[..], &all64[(steps - 1) * n..], "{m:?} n={n} f64");
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let op = Measure::LegS.structured::<f64>(4).unwrap();
        let mut out = vec![0.0; 8];
        let bad = [f64::NAN, 0.0, 1.0];
        let e = gbt_scan(&op, &[1.0, 2.0], Some(&[0.0; 8]), Coefficients::PerStep(&bad), 1, 2, false, &mut out)
            .unwrap_err();
        assert!(e.to_string().starts_with("coef:"));
        let e =
            gbt_scan(&op, &[1.0, 2.0], Some(&[0.0; 7]), Coefficients::PerStep(&[0.1, 0.1, 0.1]), 1, 2, false, &mut out)
                .unwrap_err();
        assert!(e.to_string().starts_with("c0:"));
    }
}
