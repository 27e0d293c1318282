//! One GBT step of one operator: on a row, on tiles of rows, and over time (the wavefront).
//!
//! `Prefix` measures (LegS, LagT, GLagT) run a fused loop from a per-step table (`fill_prefix_table`),
//! with SIMD tiles of rows and the time wavefront of `crate::simd`; the other structures run the
//! operators of `crate::structured` on a row or on a transposed tile of `TILE` rows.

use crate::discretize::GbtStep;
use crate::float::{Lane, Real};
use crate::simd::{prefix_row_step, Isa, PrefixTable, WaveTables, TILE_STEPS};
use crate::structured::{PrefixTables, SolveCache, Structured, Sweep};

use super::is_reset;

/// One GBT step of one operator, with per-step tables for the fused `Prefix` (LegS, LagT, GLagT)
/// loop: preparing costs O(N) once per step and is shared by every row with the same coefficients.
pub(crate) struct StepKernel<'a, T: Real> {
    /// The instruction set of the SIMD kernels.
    isa: Isa,
    /// Whether the tables serve the adjoint sweep (`adjoint`) too.
    adjoint: bool,
    pub(crate) op: &'a Structured<T>,
    pub(crate) prefix: Option<PrefixTables<'a, T>>,
    pub(crate) step: GbtStep,
    /// The `PrefixTable` of every element for the prepared step (filled by `prepare`).
    pub(crate) table: PrefixTable<T>,
    /// a_b f per row of the current tile (scratch of `forward_rows`).
    abf: Vec<T>,
    /// Scratch of the operators on one row, the cached tables of their solves, and a transposed
    /// tile of rows with its scratch.
    scratch: Vec<T>,
    pub(crate) cache: SolveCache<T>,
    tile: Vec<[T; TILE]>,
    tile_scratch: Vec<[T; TILE]>,
    /// The last rows of a batch padded to one SIMD tile.
    tile_rows: Vec<T>,
    /// Tables and a_b f per row of the steps of `forward_rows_steps`.
    multi_tables: Vec<PrefixTable<T>>,
    multi_abf: Vec<Vec<T>>,
}

/// The `PrefixTable` of one step (see `StepKernel::prepare`), with the adjoint's columns if `adjoint`.
#[inline(always)]
fn fill_prefix_table<T: Real>(p: &PrefixTables<'_, T>, step: &GbtStep, adjoint: bool, table: &mut PrefixTable<T>) {
    let (ai, ae) = (T::cast(step.implicit), T::cast(step.explicit));
    table.fill(ai, ae, p.l, p.r, p.h, p.lr_minus_h, p.b, p.b_over_l.is_none(), adjoint);
}

/// Waves per call of the continuous time wavefront (`forward_row`): its skew of S - 1 ticks is paid
/// once per run.
const WAVES_PER_RUN: usize = 64;

/// The fewest steps for which the final state of a few rows takes the single-row form of the step
/// (`forward_row`), on CPUs with a time wavefront: at least the longest wave (S = 64 float32 steps
/// with AVX-512), so that every instruction set takes the same form for the same call. Shorter scans,
/// CPUs without AVX2, and every other scan step by the per-step table (`PrefixTable`).
pub const ROW_FORM_STEPS: usize = 64;

/// Rows per transposed tile of the generic (non-`Prefix`) operators.
pub(crate) const TILE: usize = 8;

/// `tile[i][j] = rows[j * n + i]` for the TILE rows of `rows` (SIMD transposes when available).
#[inline(always)]
pub(crate) fn rows_to_tile<T: Real>(isa: Isa, rows: &[T], n: usize, tile: &mut [[T; TILE]]) {
    if !T::rows_to_tile(isa, rows, n, tile) {
        for (j, row) in rows.chunks_exact(n).enumerate() {
            for (t, x) in tile.iter_mut().zip(row) {
                t[j] = *x;
            }
        }
    }
}

/// The inverse of `rows_to_tile`.
#[inline(always)]
pub(crate) fn tile_to_rows<T: Real>(isa: Isa, tile: &[[T; TILE]], n: usize, rows: &mut [T]) {
    if !T::tile_to_rows(isa, tile, n, rows) {
        for (j, row) in rows.chunks_exact_mut(n).enumerate() {
            for (x, t) in row.iter_mut().zip(tile) {
                *x = t[j];
            }
        }
    }
}

impl<'a, T: Real> StepKernel<'a, T> {
    pub(crate) fn new(op: &'a Structured<T>, isa: Isa) -> Self {
        let prefix = op.prefix_tables();
        StepKernel {
            isa,
            adjoint: false,
            op,
            prefix,
            step: GbtStep { implicit: f64::NAN, explicit: f64::NAN, input: f64::NAN },
            table: PrefixTable::default(),
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

    /// A kernel for the adjoint sweeps (`adjoint`, `adjoint_with`), whose tables it fills.
    pub(crate) fn for_adjoint(op: &'a Structured<T>, isa: Isa) -> Self {
        StepKernel { adjoint: true, ..Self::new(op, isa) }
    }

    /// Makes `step` the current step (no work if it already is).
    #[inline(always)]
    pub(crate) fn prepare(&mut self, step: GbtStep) {
        if step == self.step {
            return;
        }
        self.step = step;
        if is_reset(&step) {
            return;
        }
        if let Some(p) = &self.prefix {
            fill_prefix_table(p, &step, self.adjoint, &mut self.table);
        }
    }

    /// `TILE_STEPS` GBT steps (`steps`, none a reset) of a `Prefix` measure on the rows of `src`, every
    /// state kept: step s writes `dst[s]` with inputs `f[s]` (one per row). Whole tiles of rows run
    /// in the multi-step SIMD kernel, the rest step by step. False (nothing done) without tiles.
    #[inline(always)]
    pub(crate) fn forward_rows_steps(
        &mut self,
        steps: &[GbtStep],
        src: &[T],
        dst: &mut [&mut [T]],
        f: &[&[T]],
    ) -> bool {
        let Some(p) = &self.prefix else { return false };
        let n = self.op.order();
        self.multi_tables.resize(TILE_STEPS, PrefixTable::default());
        self.multi_abf.resize(TILE_STEPS, Vec::new());
        for s in 0..TILE_STEPS {
            fill_prefix_table(p, &steps[s], false, &mut self.multi_tables[s]);
            let ab = T::cast(steps[s].input);
            self.multi_abf[s].clear();
            self.multi_abf[s].extend(f[s].iter().map(|x| ab * *x));
        }
        let tables: Vec<&PrefixTable<T>> = self.multi_tables.iter().collect();
        let abf: Vec<&[T]> = self.multi_abf.iter().map(|a| a.as_slice()).collect();
        let done = T::prefix_forward_tiles_steps(self.isa, &tables, p.b_over_l, &abf, src, dst, n);
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
    pub(crate) fn forward(&mut self, c: &mut [T], f: T) {
        let step = &self.step;
        if is_reset(step) {
            c.fill(T::zero());
            c[0] = f;
            return;
        }
        let abf = T::cast(step.input) * f;
        match &self.prefix {
            Some(p) => {
                let (mut s, mut q) = (PrefixTable::start(p.b_over_l, abf), T::zero());
                if p.b_over_l.is_some() {
                    for (i, x) in c.iter_mut().enumerate() {
                        *x = self.table.apply::<false>(i, abf, *x, &mut s, &mut q);
                    }
                } else {
                    for (i, x) in c.iter_mut().enumerate() {
                        *x = self.table.apply::<true>(i, abf, *x, &mut s, &mut q);
                    }
                }
            }
            None => {
                let step = *step;
                Self::generic_forward(self.op, &step, c, abf, &mut self.scratch, &mut self.cache);
            }
        }
    }

    /// Steps `steps` (at least `ROW_FORM_STEPS`) of one row `c` with inputs `f(k)` and coefficients
    /// `coef(k)`, the final state only. The GBT steps of a `Prefix` measure take the single-row form
    /// (`crate::simd::prefix_row_step`): runs of whole waves through the time wavefront, the rest one
    /// by one; resets and the other operators step by step as in `forward`.
    #[inline(always)]
    pub(crate) fn forward_row(
        &mut self,
        c: &mut [T],
        steps: usize,
        f: impl Fn(usize) -> T,
        coef: impl Fn(usize) -> GbtStep,
    ) {
        let wave = T::wave_steps(self.isa);
        let p = match self.prefix {
            Some(p) if wave > 0 => p,
            _ => {
                for k in 0..steps {
                    self.prepare(coef(k));
                    self.forward(c, f(k));
                }
                return;
            }
        };
        let tables = WaveTables::new(wave, p.r, p.l, p.lr_minus_h, p.b);
        // The state padded with zeros to the wave's length (a copy only when N < S).
        let mut padded = Vec::new();
        let (mut ai, mut ae, mut abf) = (Vec::new(), Vec::new(), Vec::new());
        let mut k = 0;
        while k < steps {
            let step = coef(k);
            if is_reset(&step) {
                self.prepare(step);
                self.forward(c, f(k));
                k += 1;
                continue;
            }
            // The steps from k up to a reset, at most WAVES_PER_RUN waves: whole waves through the
            // wavefront, the rest one by one.
            ai.clear();
            ae.clear();
            abf.clear();
            for q in k..steps.min(k + WAVES_PER_RUN * wave) {
                let s = coef(q);
                if is_reset(&s) {
                    break;
                }
                ai.push(T::cast(s.implicit));
                ae.push(T::cast(s.explicit));
                abf.push(T::cast(s.input) * f(q));
            }
            let run = ai.len() / wave * wave;
            let done = run > 0 && {
                let (ai, ae, abf) = (&ai[..run], &ae[..run], &abf[..run]);
                if tables.len() == c.len() {
                    T::prefix_wavefront(self.isa, &tables, p.b_over_l, ai, ae, abf, c)
                } else {
                    padded.clear();
                    padded.extend_from_slice(c);
                    padded.resize(tables.len(), T::zero());
                    let done = T::prefix_wavefront(self.isa, &tables, p.b_over_l, ai, ae, abf, &mut padded);
                    c.copy_from_slice(&padded[..c.len()]);
                    done
                }
            };
            for j in if done { run } else { 0 }..ai.len() {
                prefix_row_step(&p, ai[j], ae[j], abf[j], c);
            }
            k += ai.len();
        }
    }

    /// The prepared step on consecutive rows `state` (rows x N) with inputs `f` (one per row), from
    /// `src` (the previous states, same shape) or in place: whole tiles of rows (SIMD for the
    /// `Prefix` structure, transposed lane arrays for the others), the rest row by row.
    #[inline(always)]
    pub(crate) fn forward_rows(&mut self, src: Option<&[T]>, state: &mut [T], f: &[T]) {
        let n = self.op.order();
        let mut done = 0;
        if let (Some(p), false) = (&self.prefix, is_reset(&self.step)) {
            let ab = T::cast(self.step.input);
            self.abf.clear();
            self.abf.extend(f.iter().map(|x| ab * *x));
            let (rows, lanes) = (f.len(), T::tile_rows(self.isa));
            // More rows than a tile but not whole tiles: the last `lanes` rows run as one more tile,
            // overlapping the whole ones. The rows they share get the same operations on the same
            // inputs, so the same values; in place, that tile reads a copy of its rows taken first.
            let overlap = lanes > 1 && rows > lanes && rows % lanes != 0;
            let last = rows.saturating_sub(lanes);
            if overlap && src.is_none() {
                self.tile_rows.clear();
                self.tile_rows.extend_from_slice(&state[last * n..]);
            }
            done = T::prefix_forward_tiles(self.isa, &self.table, p.b_over_l, &self.abf, src, state, n);
            if overlap && done == rows / lanes * lanes {
                let from = src.map_or(&self.tile_rows[..], |s| &s[last * n..]);
                let tail = &mut state[last * n..];
                if T::prefix_forward_tiles(self.isa, &self.table, p.b_over_l, &self.abf[last..], Some(from), tail, n)
                    == lanes
                {
                    done = rows;
                }
            }
            let rest = rows - done;
            if rest > 0 && rest < lanes && lanes > 1 && rows < lanes {
                // Fewer rows than a tile: one zero-padded tile; the padding lanes compute on zeros
                // and are dropped, the real lanes get the same operations as in a full tile.
                self.tile_rows.clear();
                self.tile_rows.extend_from_slice(&src.unwrap_or(state)[done * n..]);
                self.tile_rows.resize(lanes * n, T::zero());
                self.abf.drain(..done);
                self.abf.resize(lanes, T::zero());
                if T::prefix_forward_tiles(self.isa, &self.table, p.b_over_l, &self.abf, None, &mut self.tile_rows, n)
                    == lanes
                {
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
                rows_to_tile(self.isa, from, n, &mut self.tile);
                let abf: [T; TILE] = std::array::from_fn(|j| ab * f[done + j]);
                Self::generic_forward(self.op, &step, &mut self.tile, abf, &mut self.tile_scratch, &mut self.cache);
                tile_to_rows(self.isa, &self.tile, n, &mut state[span]);
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
    pub(crate) fn adjoint(&mut self, lam: &mut [T]) -> T {
        Self::adjoint_with(self.op, &self.prefix, &self.table, self.step, lam, &mut self.scratch, &mut self.cache)
    }

    /// lambda <- (I + a_e A)^T (I - a_i A)^{-T} lambda on a row (`V = T`) or a transposed tile of
    /// rows; returns grad_f = a_b <B, (I - a_i A)^{-T} lambda> (per lane).
    #[inline(always)]
    pub(crate) fn adjoint_with<V: Lane<T>>(
        op: &Structured<T>,
        prefix: &Option<PrefixTables<'_, T>>,
        table: &PrefixTable<T>,
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
                    let (inv, e) = (table.inv[i], table.e[i]);
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
