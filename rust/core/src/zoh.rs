//! Zero-order-hold (ZOH) scans and their adjoint: c_k = Ad c_{k-1} + Bd f_k with the exact
//! discretisation over a (log-)time span tau, Ad = e^{tau A}, Bd = A^{-1}(e^{tau A} - I) B
//! (`discretize::zoh_matrices`; the original HiPPO code's discretisation of its LTI cells).
//!
//! Cost. A time-invariant measure at a fixed step dt has one dense (Ad, Bd), computed once (O(N^3)),
//! then O(N^2) per step and row: `apply_block` runs blocks of rows against the matrix so that each
//! of its rows is read once per block. LegS has a new matrix at every step index, tau = ln((k+1)/k),
//! and irregular timestamps one per distinct gap: a matrix exponential per distinct step, O(N^3)
//! each (steps shared by the rows of a batch are computed once). GBT methods are O(N) per step
//! (`scan`); ZOH is the exact but dense alternative.

use std::collections::HashMap;

use crate::discretize::zoh_matrices;
use crate::error::{try_zeros, HippoError, Result};
use crate::float::Real;
use crate::measure::Measure;
use crate::rows::previous_times;

/// Rows per block of `apply_block`: the matrix is streamed once per block.
const BLOCK_ROWS: usize = 8;

/// How the steps of a ZOH scan are given.
#[derive(Debug, Clone, Copy)]
pub enum ZohSteps<'a> {
    /// A fixed step `dt` (time-invariant measures) or LegS step indices: one start index shared by
    /// the batch (`start.len() == 1`) or one per row; step k of row r is at start[r] + k.
    Indexed { dt: f64, start: &'a [u64] },
    /// Absolute times (steps x width, width 1 or R) and the times of the initial states (width
    /// values, NaN: nothing absorbed; None: nothing absorbed for every row); time-invariant
    /// measures step by dt * (t1 - t0).
    Timestamped { dt: f64, timestamps: &'a [f64], width: usize, t_prev: Option<&'a [f64]> },
}

/// The dense step matrices of one span tau, in the state's type, with Ad's transpose for the adjoint.
struct StepMatrices<T> {
    ad: Vec<T>,
    ad_t: Vec<T>,
    bd: Vec<T>,
}

fn step_matrices<T: Real>(a: &[f64], b: &[f64], n: usize, tau: f64) -> Result<StepMatrices<T>> {
    let (ad, bd) = zoh_matrices(a, b, n, tau)?;
    let mut ad_t = vec![T::zero(); n * n];
    for i in 0..n {
        for j in 0..n {
            ad_t[j * n + i] = T::cast(ad[i * n + j]);
        }
    }
    Ok(StepMatrices {
        ad: ad.iter().map(|&x| T::cast(x)).collect(),
        ad_t,
        bd: bd.iter().map(|&x| T::cast(x)).collect(),
    })
}

/// out_r = M c_r + bias * g_r for a block of rows (c, out: rows x n; g: rows; bias: n), with M given by its
/// transpose `m_t` (row j of m_t = column j of M): each output row accumulates axpys over the
/// contiguous rows of m_t, which vectorise, and each row of m_t is read once for the whole block.
fn apply_block<T: Real>(m_t: &[T], bias: &[T], n: usize, c: &[T], g: &[T], out: &mut [T]) {
    debug_assert!(bias.len() == n && c.len() == out.len() && out.len() == g.len() * n);
    for (o, &gr) in out.chunks_exact_mut(n).zip(g) {
        for (x, &b) in o.iter_mut().zip(bias) {
            *x = b * gr;
        }
    }
    for (j, col) in m_t.chunks_exact(n).enumerate() {
        for (o, cr) in out.chunks_exact_mut(n).zip(c.chunks_exact(n)) {
            let x = cr[j];
            if x != T::zero() {
                for (y, &m) in o.iter_mut().zip(col) {
                    *y = *y + m * x;
                }
            }
        }
    }
}

/// Per step and row: the span tau of the step, or None for the LegS initialisation c = f e_0.
fn spans(m: &Measure, steps: usize, rows: usize, how: ZohSteps<'_>) -> Result<Vec<Option<f64>>> {
    let legs = m.is_scale_invariant();
    let mut out = Vec::new();
    out.try_reserve_exact(steps * rows)
        .map_err(|_| HippoError::Allocation { what: "the ZOH steps".into(), bytes: (steps * rows * 16) as u128 })?;
    match how {
        ZohSteps::Indexed { dt, start } => {
            if start.len() != 1 && start.len() != rows {
                return Err(HippoError::invalid(
                    "t",
                    format!("expected 1 or {rows} step indices, got {}", start.len()),
                ));
            }
            for k in 0..steps {
                for r in 0..rows {
                    let index = start[if start.len() == 1 { 0 } else { r }] + k as u64;
                    out.push(match (legs, index) {
                        (false, _) => Some(dt),
                        (true, 0) => None,
                        (true, i) => Some(((i as f64 + 1.0) / i as f64).ln()),
                    });
                }
            }
        }
        ZohSteps::Timestamped { dt, timestamps, width, t_prev } => {
            if width != 1 && width != rows {
                return Err(HippoError::invalid("timestamps", format!("expected 1 or {rows} columns, got {width}")));
            }
            if timestamps.len() != steps * width {
                return Err(HippoError::invalid("timestamps", format!("expected ({steps}, {width}) values")));
            }
            let prev = previous_times(legs, timestamps, width, t_prev)?;
            for k in 0..steps {
                for r in 0..rows {
                    let j = k * width + if width == 1 { 0 } else { r };
                    let (t0, t1) = (prev[j], timestamps[j]);
                    out.push(if !legs {
                        Some(dt * (t1 - t0))
                    } else if t0.is_nan() || t0 == 0.0 {
                        None
                    } else {
                        Some((t1 / t0).ln())
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The ZOH step of a time-invariant measure at a fixed step dt, in the state's type:
/// c_k = Ad c_{k-1} + Bd f_k (the memory step of the fused HiPPO-RNN layer's ZOH cells).
pub struct ZohStep<T> {
    /// Ad (n x n), row-major.
    pub ad: Vec<T>,
    /// Bd (n).
    pub bd: Vec<T>,
}

impl<T: Real> ZohStep<T> {
    pub fn new(m: &Measure, n: usize, dt: f64) -> Result<Self> {
        if m.is_scale_invariant() {
            return Err(HippoError::invalid("measure", "a fixed-step ZOH needs a time-invariant measure (not LegS)"));
        }
        if !(dt.is_finite() && dt > 0.0) {
            return Err(HippoError::invalid("dt", format!("expected a finite step > 0, got {dt}")));
        }
        let (a, b) = m.transition(n)?;
        let mats = step_matrices::<T>(&a, &b, n, dt)?;
        Ok(ZohStep { ad: mats.ad, bd: mats.bd })
    }
}

/// The matrices of each distinct span, computed once per scan (bounded: LegS has a new one per step).
struct Cache<'a, T> {
    a: &'a [f64],
    b: &'a [f64],
    n: usize,
    entries: HashMap<u64, StepMatrices<T>>,
}

impl<'a, T: Real> Cache<'a, T> {
    fn get(&mut self, tau: f64) -> Result<&StepMatrices<T>> {
        let key = tau.to_bits();
        if !self.entries.contains_key(&key) {
            if self.entries.len() >= 64 {
                self.entries.clear();
            }
            self.entries.insert(key, step_matrices(self.a, self.b, self.n, tau)?);
        }
        Ok(&self.entries[&key])
    }
}

/// ZOH over f (steps x rows) from c0 (rows x n) into out ((steps x) rows x n), in the state's type.
#[allow(clippy::too_many_arguments)]
pub fn zoh_scan<T: Real>(
    m: &Measure,
    n: usize,
    f: &[T],
    c0: &[T],
    how: ZohSteps<'_>,
    steps: usize,
    rows: usize,
    return_all: bool,
    out: &mut [T],
) -> Result<()> {
    crate::scan::check_shapes(f.len(), c0.len(), out.len(), steps, rows, n, return_all)?;
    let tau = spans(m, steps, rows, how)?;
    let (a, b) = m.transition(n)?;
    let mut cache = Cache { a: &a, b: &b, n, entries: HashMap::new() };
    let mut c = c0.to_vec();
    let mut next = try_zeros::<T>(rows * n, "the ZOH state")?;
    for k in 0..steps {
        let fk = &f[k * rows..(k + 1) * rows];
        let tk = &tau[k * rows..(k + 1) * rows];
        let mut r = 0;
        while r < rows {
            // A block of consecutive rows with the same span (one shared matrix).
            let end =
                (r + 1..rows).take_while(|&s| tk[s] == tk[r] && s - r < BLOCK_ROWS).last().map_or(r + 1, |s| s + 1);
            let (cs, outs) = (&c[r * n..end * n], &mut next[r * n..end * n]);
            match tk[r] {
                Some(t) => {
                    let mats = cache.get(t)?;
                    apply_block(&mats.ad_t, &mats.bd, n, cs, &fk[r..end], outs);
                }
                None => {
                    outs.fill(T::zero());
                    for (o, &fr) in outs.chunks_exact_mut(n).zip(&fk[r..end]) {
                        o[0] = fr;
                    }
                }
            }
            r = end;
        }
        std::mem::swap(&mut c, &mut next);
        if return_all {
            out[k * rows * n..(k + 1) * rows * n].copy_from_slice(&c);
        }
    }
    if !return_all {
        out.copy_from_slice(&c);
    }
    Ok(())
}

/// The adjoint of `zoh_scan` at a fixed step dt of a time-invariant measure, as a linear map of
/// (f, c0): lambda = grad_L; for k = L..1: grad_f_k = <Bd, lambda_r>, lambda <- Ad^T lambda
/// (+ grad_{k-1} when return_all); grad_c0 = lambda.
#[allow(clippy::too_many_arguments)]
pub fn zoh_scan_adjoint<T: Real>(
    m: &Measure,
    n: usize,
    dt: f64,
    grad: &[T],
    steps: usize,
    rows: usize,
    return_all: bool,
    grad_f: &mut [T],
    grad_c0: &mut [T],
) -> Result<()> {
    if m.is_scale_invariant() {
        return Err(HippoError::invalid(
            "measure",
            "the ZOH adjoint is for time-invariant measures at a fixed step dt",
        ));
    }
    crate::scan::check_shapes(grad_f.len(), grad_c0.len(), grad.len(), steps, rows, n, return_all)?;
    let (a, b) = m.transition(n)?;
    let mats = step_matrices::<T>(&a, &b, n, dt)?;
    let mut lam =
        if return_all && steps > 0 { grad[(steps - 1) * rows * n..].to_vec() } else { grad[..rows * n].to_vec() };
    if return_all && steps == 0 {
        lam.fill(T::zero());
    }
    let mut next = try_zeros::<T>(rows * n, "the ZOH adjoint state")?;
    let (no_bias, no_input) = (vec![T::zero(); n], vec![T::zero(); BLOCK_ROWS]);
    for k in (0..steps).rev() {
        for (r, l) in lam.chunks_exact(n).enumerate() {
            grad_f[k * rows + r] = l.iter().zip(&mats.bd).fold(T::zero(), |s, (&x, &y)| s + x * y);
        }
        for (lb, nb) in lam.chunks(BLOCK_ROWS * n).zip(next.chunks_mut(BLOCK_ROWS * n)) {
            apply_block(&mats.ad, &no_bias, n, lb, &no_input[..lb.len() / n], nb);
        }
        if return_all && k > 0 {
            for (x, &g) in next.iter_mut().zip(&grad[(k - 1) * rows * n..k * rows * n]) {
                *x = *x + g;
            }
        }
        std::mem::swap(&mut lam, &mut next);
    }
    grad_c0.copy_from_slice(&lam);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discretize::{apply_dense, discretize, legs_step_matrices, LegsConvention, Method};

    #[test]
    fn fixed_step_equals_the_dense_recurrence() {
        let m = Measure::LegT { theta: 1.0 };
        let (n, steps, rows, dt) = (5, 7, 11, 0.05);
        let f: Vec<f64> = (0..steps * rows).map(|i| ((i * 37 % 11) as f64 - 5.0) / 3.0).collect();
        let c0: Vec<f64> = (0..rows * n).map(|i| (i % 7) as f64 / 7.0).collect();
        let mut out = vec![0.0; steps * rows * n];
        zoh_scan(&m, n, &f, &c0, ZohSteps::Indexed { dt, start: &[0] }, steps, rows, true, &mut out).unwrap();
        let (a, b) = m.transition(n).unwrap();
        let (ad, bd) = discretize(&a, &b, n, dt, Method::Zoh).unwrap();
        for r in 0..rows {
            let mut c = c0[r * n..(r + 1) * n].to_vec();
            for k in 0..steps {
                c = apply_dense(&ad, &bd, &c, f[k * rows + r]);
                for i in 0..n {
                    assert!((out[(k * rows + r) * n + i] - c[i]).abs() < 1e-13);
                }
            }
        }
    }

    #[test]
    fn legs_steps_equal_the_dense_step_matrices() {
        let n = 6;
        let f = [1.0, -2.0, 0.5, 3.0];
        let mut out = vec![0.0; n];
        zoh_scan(
            &Measure::LegS,
            n,
            &f,
            &vec![0.0; n],
            ZohSteps::Indexed { dt: 1.0, start: &[0] },
            4,
            1,
            false,
            &mut out,
        )
        .unwrap();
        let mut c = vec![0.0; n];
        c[0] = f[0];
        for (k, &fk) in f.iter().enumerate().skip(1) {
            let (ad, bd) = legs_step_matrices(n, k as u64, Method::Zoh, LegsConvention::Original).unwrap();
            c = apply_dense(&ad, &bd, &c, fk);
        }
        for i in 0..n {
            assert!((out[i] - c[i]).abs() < 1e-13);
        }
    }

    #[test]
    fn adjoint_is_the_transpose() {
        // <scan(f, c0), g> = <(f, c0), adjoint(g)> for random f, c0, g.
        let m = Measure::Lmu { theta: 2.0 };
        let (n, steps, rows, dt) = (4, 5, 3, 0.3);
        let f: Vec<f64> = (0..steps * rows).map(|i| (i as f64 * 0.7).sin()).collect();
        let c0: Vec<f64> = (0..rows * n).map(|i| (i as f64 * 1.3).cos()).collect();
        let g: Vec<f64> = (0..steps * rows * n).map(|i| (i as f64 * 0.1).sin()).collect();
        let mut out = vec![0.0; g.len()];
        zoh_scan(&m, n, &f, &c0, ZohSteps::Indexed { dt, start: &[0] }, steps, rows, true, &mut out).unwrap();
        let (mut gf, mut gc) = (vec![0.0; f.len()], vec![0.0; c0.len()]);
        zoh_scan_adjoint(&m, n, dt, &g, steps, rows, true, &mut gf, &mut gc).unwrap();
        let lhs: f64 = out.iter().zip(&g).map(|(a, b)| a * b).sum();
        let rhs: f64 = f.iter().zip(&gf).chain(c0.iter().zip(&gc)).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-12 * lhs.abs().max(1.0), "{lhs} {rhs}");
    }
}
