//! Reconstruction: evaluate the approximation of the history that HiPPO coefficients encode.
//!
//! A state c (N numbers) at time t stands for a function of the past; this module evaluates it at
//! absolute past times tau (s = t - tau is the age). Per measure (docs/conventions.md; derivations
//! below, each checked by the tests against the measure's A, B from `crate::measure`):
//!
//! | measure | reconstruction | times |
//! |---|---|---|
//! | legs | f(tau) = sum c_n sqrt(2n+1) P_n(2 tau/t - 1) | [0, t] |
//! | legt | f(t - s) = sum c_n sqrt(2n+1) P_n(1 - 2s/theta) | [t - theta, t] |
//! | lmu | f(t - s) = sum c_n P_n(2s/theta - 1) | [t - theta, t] |
//! | fout | f(t - s) = c_0 + sqrt2 sum_j (c_{2j-1} cos(2 pi j s/theta) + c_{2j} sin(2 pi j s/theta)) | [t - theta, t] |
//! | lagt(beta) | f(t - s) = e^{-(1-beta) s/2} sum c_n L_n(s) | (-inf, t] |
//! | glagt(alpha, beta) | f(t - s) = kappa s^alpha e^{-(1-beta) s/2} sum c_n L_n^(alpha)(s) / Lambda_n | (-inf, t] |
//!
//! with kappa = Gamma(1 - alpha)^(1/2) beta^(-(1-alpha)/2) and Lambda_n = sqrt(Gamma(n+alpha+1)/Gamma(n+1)).
//!
//! Laguerre derivation. In d = Lambda c the GLagT system reads dd/dt = -M d + scale L^(alpha)(0) f
//! (M = delta I + strictly-lower ones, delta = (1+beta)/2, scale = Gamma(1-alpha)^(-1/2)
//! beta^((1-alpha)/2), L_n^(alpha)(0) = binom(n+alpha, n)). Since d/ds L_n^(alpha) = -sum_{k<n} L_k^(alpha),
//! the impulse response is K_n(s) = (e^{sA} B)_n = scale L_n^(alpha)(s) e^{-delta s} / Lambda_n, so
//! c_n(t) = int_0^inf f(t - s) K_n(s) ds. The functions g_m(s) = s^alpha e^{-(1-delta) s} L_m^(alpha)(s)
//! / (scale Lambda_m) satisfy int K_n g_m ds = delta_nm (orthogonality of L^(alpha) under s^alpha e^{-s}),
//! so sum c_m g_m is the orthogonal projection of f(t - .) onto span{g_m} in L2(s^-alpha e^{-beta s} ds).
//! LagT(beta) is GLagT(0, beta) with c scaled by 1/sqrt(beta) (measure.rs), i.e. kappa = 1, alpha = 0.
//! For beta = 1 (the paper's Theorem 1 LagT) this is the Laguerre expansion under e^{-s}; for
//! beta = 0 (the older code's `lagt`) the basis is e^{-s/2} L_n(s), as in the original code's `basis`.
//!
//! LegS is exact (the coefficients of the ODE are the projection); LegT/LMU/FouT replace f(t - theta)
//! by its reconstruction, so their coefficients are approximate projections (paper App. D.2, D.4).
//! ChebT is not supported (its tilted basis is not derived here).
//!
//! Evaluation: three-term recurrences (Legendre (n+1) P_{n+1} = (2n+1) x P_n - n P_{n-1}; orthonormal
//! Laguerre sqrt((n+1)(n+alpha+1)) p_{n+1} = (2n+1+alpha-s) p_n - sqrt(n(n+alpha)) p_{n-1}; angle
//! rotations for FouT, re-seeded with a direct sin/cos every `RESEED` frequencies), forward summation,
//! all in float64 whatever the element type of c (float32 results are float64's, rounded once).
//! Laguerre recurrences are rescaled by powers of two, the scale carried with the prefactor
//! s^alpha e^{-(1-beta)s/2}, so degrees in the thousands far in the past neither overflow nor underflow.
//! Work is split into tiles of rows x points (the basis of a tile is shared by its rows), run with
//! rayon above `PARALLEL_WORK`, each compiled for AVX2 when the CPU has it (`simd::accelerated`;
//! the arithmetic is the same, only wider). `reconstruct_adjoint` is the transpose (projection / backward pass).

use rayon::prelude::*;

use crate::error::{try_zeros, HippoError, Result};
use crate::float::Real;
use crate::measure::{ln_gamma, Measure};
use crate::scan::PARALLEL_WORK;
use crate::simd::accelerated;

/// Points per tile: the basis values of a tile are computed once and shared by its rows.
const BLOCK: usize = 256;
/// Rows per tile.
const ROW_CHUNK: usize = 32;
/// Below this many multiply-adds (rows * points * N) everything runs on the calling thread.
/// FouT: (cos j w, sin j w) are computed directly every RESEED frequencies and rotated in between,
/// which bounds the rotation's rounding drift to RESEED steps.
const RESEED: usize = 16;
/// Relative slack allowed on times outside the window (they are clamped onto it).
const TIME_SLACK: f64 = 1e-9;

/// Which recurrence evaluates the basis, with the measure-specific constants.
#[derive(Debug, Clone, Copy)]
enum Family {
    /// P_n(x), x in [-1, 1].
    Legendre,
    /// [1, cos w, sin w, cos 2w, sin 2w, ...], w = 2 pi s / theta.
    Fourier,
    /// kappa s^alpha e^{-decay s} L_n^(alpha)(s) / Lambda_n.
    Laguerre { alpha: f64, log_kappa: f64, decay: f64 },
}

/// Maps an absolute time to the argument of the basis, and gives the per-coefficient weights.
#[derive(Debug, Clone, Copy)]
struct Plan {
    family: Family,
    measure: Measure,
    t: f64,
}

impl Plan {
    fn new(measure: &Measure, t: f64) -> Result<Self> {
        if !t.is_finite() {
            return Err(HippoError::invalid("t", format!("expected a finite time, got {t}")));
        }
        let family = match *measure {
            Measure::LegS => {
                if t < 0.0 {
                    return Err(HippoError::invalid(
                        "t",
                        format!("expected t >= 0 for legs (the memory covers [0, t]), got {t}"),
                    ));
                }
                Family::Legendre
            }
            Measure::LegT { .. } | Measure::Lmu { .. } => Family::Legendre,
            Measure::FouT { .. } => Family::Fourier,
            Measure::LagT { beta } => Family::Laguerre { alpha: 0.0, log_kappa: 0.0, decay: (1.0 - beta) / 2.0 },
            Measure::GLagT { alpha, beta } => Family::Laguerre {
                alpha,
                log_kappa: 0.5 * ln_gamma(1.0 - alpha) - 0.5 * (1.0 - alpha) * beta.ln(),
                decay: (1.0 - beta) / 2.0,
            },
            Measure::ChebT { .. } => {
                return Err(HippoError::invalid(
                    "measure",
                    "reconstruction is not implemented for 'chebt' (valid: legs, legt, lmu, fout, lagt, glagt)",
                ))
            }
        };
        Ok(Plan { family, measure: *measure, t })
    }

    /// The interval of valid times, as (low, high); low may be -inf.
    fn window(&self) -> (f64, f64) {
        match self.measure {
            Measure::LegS => (0.0, self.t),
            Measure::LegT { theta } | Measure::Lmu { theta } | Measure::FouT { theta } | Measure::ChebT { theta } => {
                (self.t - theta, self.t)
            }
            Measure::LagT { .. } | Measure::GLagT { .. } => (f64::NEG_INFINITY, self.t),
        }
    }

    /// The basis argument at absolute time `tau` (checked against the window, clamped onto it).
    fn argument(&self, tau: f64) -> Result<f64> {
        let (lo, hi) = self.window();
        let span = if lo.is_finite() { hi - lo } else { 0.0 };
        let slack = TIME_SLACK * span.max(hi.abs()).max(1.0);
        if !tau.is_finite() || tau > hi + slack || tau < lo - slack {
            let range = if lo.is_finite() { format!("[{lo}, {hi}]") } else { format!("(-inf, {hi}]") };
            return Err(HippoError::invalid(
                "times",
                format!(
                    "expected times in the remembered window {range} of measure '{}' at t = {}, got {tau}",
                    self.measure.name(),
                    self.t
                ),
            ));
        }
        let tau = tau.clamp(lo, hi);
        let s = self.t - tau;
        Ok(match self.measure {
            Measure::LegS if self.t == 0.0 => 1.0,
            Measure::LegS => (2.0 * tau / self.t - 1.0).clamp(-1.0, 1.0),
            Measure::LegT { theta } => (1.0 - 2.0 * s / theta).clamp(-1.0, 1.0),
            Measure::Lmu { theta } => (2.0 * s / theta - 1.0).clamp(-1.0, 1.0),
            Measure::FouT { theta } | Measure::ChebT { theta } => 2.0 * std::f64::consts::PI * s / theta,
            Measure::LagT { .. } | Measure::GLagT { .. } => s.max(0.0),
        })
    }

    /// The factor folded into c_n: sqrt(2n+1) (legs, legt), 1 (lmu, Laguerre), [1, sqrt2, ...] (fout).
    fn weight(&self, k: usize) -> f64 {
        match self.measure {
            Measure::LegS | Measure::LegT { .. } => ((2 * k + 1) as f64).sqrt(),
            Measure::FouT { .. } if k > 0 => std::f64::consts::SQRT_2,
            _ => 1.0,
        }
    }
}

/// Calls `visit(k, v)` for k = 0..n with v[p] = the k-th basis function (without the weight of
/// `Plan::weight`) at argument `args[p]`, in float64. Inlined into `accelerated` frames.
#[inline(always)]
fn basis(family: Family, args: &[f64], n: usize, mut visit: impl FnMut(usize, &[f64])) {
    let bl = args.len();
    match family {
        Family::Legendre => {
            let mut prev = vec![0.0; bl];
            let mut cur = vec![1.0; bl];
            for k in 0..n {
                visit(k, &cur);
                if k + 1 < n {
                    // (k+1) P_{k+1} = (2k+1) x P_k - k P_{k-1}
                    let a = (2 * k + 1) as f64 / (k + 1) as f64;
                    let b = k as f64 / (k + 1) as f64;
                    for ((p, c), &x) in prev.iter_mut().zip(cur.iter_mut()).zip(args) {
                        let next = a * x * *c - b * *p;
                        *p = *c;
                        *c = next;
                    }
                }
            }
        }
        Family::Fourier => {
            visit(0, &vec![1.0; bl]);
            let step: Vec<(f64, f64)> = args.iter().map(|w| w.sin_cos()).collect();
            let mut cos = vec![1.0; bl];
            let mut sin = vec![0.0; bl];
            for j in 1..=n / 2 {
                if (j - 1) % RESEED == 0 {
                    for ((c, s), &w) in cos.iter_mut().zip(sin.iter_mut()).zip(args) {
                        (*s, *c) = (j as f64 * w).sin_cos();
                    }
                } else {
                    // (cos jw, sin jw) = (cos (j-1)w, sin (j-1)w) rotated by w
                    for ((c, s), &(sw, cw)) in cos.iter_mut().zip(sin.iter_mut()).zip(&step) {
                        (*c, *s) = (*c * cw - *s * sw, *s * cw + *c * sw);
                    }
                }
                visit(2 * j - 1, &cos);
                if 2 * j < n {
                    visit(2 * j, &sin);
                }
            }
        }
        Family::Laguerre { alpha, log_kappa, decay } => {
            // The recurrence runs on p_k 2^(-e) with |p_k 2^(-e)| < 2^RESCALE; the prefactor
            // kappa s^alpha e^{-decay s} / Lambda_0 and the 2^e are carried in `factor` = e^{log_factor}.
            const RESCALE: i32 = 300;
            let mut log_factor: Vec<f64> = args
                .iter()
                .map(|&s| {
                    let power = if alpha == 0.0 { 0.0 } else { alpha * s.ln() };
                    log_kappa + power - decay * s - 0.5 * ln_gamma(alpha + 1.0)
                })
                .collect();
            let mut factor: Vec<f64> = log_factor.iter().map(|l| l.exp()).collect();
            let mut prev = vec![0.0; bl];
            let mut cur = vec![1.0; bl];
            let mut v = vec![0.0; bl];
            for k in 0..n {
                for ((o, &c), &f) in v.iter_mut().zip(&cur).zip(&factor) {
                    *o = c * f;
                }
                visit(k, &v);
                if k + 1 < n {
                    // sqrt((k+1)(k+alpha+1)) p_{k+1} = (2k+1+alpha-s) p_k - sqrt(k(k+alpha)) p_{k-1}
                    let kf = k as f64;
                    let d = ((kf + 1.0) * (kf + alpha + 1.0)).sqrt();
                    let (c1, c2, c3) = ((2.0 * kf + 1.0 + alpha) / d, 1.0 / d, (kf * (kf + alpha)).sqrt() / d);
                    for p in 0..bl {
                        let next = (c1 - c2 * args[p]) * cur[p] - c3 * prev[p];
                        prev[p] = cur[p];
                        cur[p] = next;
                        if next.abs() > 2f64.powi(RESCALE) {
                            prev[p] *= 2f64.powi(-RESCALE);
                            cur[p] *= 2f64.powi(-RESCALE);
                            log_factor[p] += RESCALE as f64 * std::f64::consts::LN_2;
                            factor[p] = log_factor[p].exp();
                        }
                    }
                }
            }
        }
    }
}

/// sum_i a_i b_i with eight running sums (vectorisable; the order of the additions is fixed).
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut s = [0.0; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            s[i] += x[i] * y[i];
        }
    }
    ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + tail
}

/// The plan, the basis arguments of `times` and the weights, after checking the arguments.
fn prepare(measure: &Measure, n: usize, times: &[f64], t: f64) -> Result<(Plan, Vec<f64>, Vec<f64>)> {
    if n == 0 {
        return Err(HippoError::invalid("N", "expected a memory order N >= 1, got 0"));
    }
    let plan = Plan::new(measure, t)?;
    let args = times.iter().map(|&tau| plan.argument(tau)).collect::<Result<Vec<f64>>>()?;
    let weights = (0..n).map(|k| plan.weight(k)).collect();
    Ok((plan, args, weights))
}

fn rows_of(len: usize, n: usize, arg: &str, what: &str) -> Result<usize> {
    if !len.is_multiple_of(n) {
        return Err(HippoError::invalid(arg, format!("expected rows of {what}, got {len} values")));
    }
    Ok(len / n)
}

fn product(rows: usize, cols: usize, what: &str, size: usize) -> Result<usize> {
    rows.checked_mul(cols).ok_or_else(|| HippoError::Allocation {
        what: what.to_string(),
        bytes: (rows as u128) * (cols as u128) * size as u128,
    })
}

/// Tiles (first row, first point) covering rows x points, and whether to run them in parallel.
fn tiles(rows: usize, points: usize, n: usize) -> (Vec<(usize, usize)>, bool) {
    let tiles: Vec<(usize, usize)> =
        (0..rows).step_by(ROW_CHUNK).flat_map(|r0| (0..points).step_by(BLOCK).map(move |p0| (r0, p0))).collect();
    let parallel = rows.saturating_mul(points).saturating_mul(n) >= PARALLEL_WORK && tiles.len() > 1;
    (tiles, parallel)
}

fn map_tiles<R: Send>(
    tiles: &[(usize, usize)],
    parallel: bool,
    run: impl Fn(&(usize, usize)) -> R + Sync + Send,
) -> Vec<R> {
    if parallel {
        tiles.par_iter().map(run).collect()
    } else {
        tiles.iter().map(run).collect()
    }
}

/// Evaluates the approximation encoded by `c` (rows x n, row-major; rows = c.len() / n) at the
/// absolute times `times`, for a state at time `t`: out[r][p] = sum_k c[r][k] phi_k(times[p]).
/// Returns rows x times.len(), row-major, in the element type of c; the basis and the sums are
/// computed in float64 (float32 output is float64's rounded).
///
/// Errors name the argument: `N` (n = 0), `c` (length not a multiple of n), `t` (not finite;
/// t < 0 for legs), `times` (not finite, or outside the remembered window of the module table),
/// `measure` (chebt).
pub fn reconstruct<T: Real>(measure: &Measure, c: &[T], n: usize, times: &[f64], t: f64) -> Result<Vec<T>> {
    let (plan, args, weights) = prepare(measure, n, times, t)?;
    let rows = rows_of(c.len(), n, "c", &format!("N = {n} coefficients"))?;
    let points = args.len();
    let total = product(rows, points, "the reconstruction", std::mem::size_of::<T>())?;
    let mut out = try_zeros::<T>(total, "the reconstruction")?;
    if total == 0 {
        return Ok(out);
    }
    let mut cw = try_zeros::<f64>(c.len(), "the weighted coefficients")?;
    for (row_w, row_c) in cw.chunks_exact_mut(n).zip(c.chunks_exact(n)) {
        for ((w, &x), &g) in row_w.iter_mut().zip(row_c).zip(&weights) {
            *w = x.widen() * g;
        }
    }
    let (tiles, parallel) = tiles(rows, points, n);
    let results = map_tiles(&tiles, parallel, |&(r0, p0)| {
        let (r1, p1) = ((r0 + ROW_CHUNK).min(rows), (p0 + BLOCK).min(points));
        let bl = p1 - p0;
        let mut acc = vec![0.0; (r1 - r0) * bl];
        accelerated(|| {
            basis(plan.family, &args[p0..p1], n, |k, v| {
                for (acc_r, r) in acc.chunks_exact_mut(bl).zip(r0..r1) {
                    let w = cw[r * n + k];
                    for (a, &x) in acc_r.iter_mut().zip(v) {
                        *a += w * x;
                    }
                }
            })
        });
        acc
    });
    for (&(r0, p0), acc) in tiles.iter().zip(&results) {
        let p1 = (p0 + BLOCK).min(points);
        for (src, r) in acc.chunks_exact(p1 - p0).zip(r0..) {
            for (o, &x) in out[r * points + p0..r * points + p1].iter_mut().zip(src) {
                *o = T::cast(x);
            }
        }
    }
    Ok(out)
}

/// The transpose of `reconstruct` as a linear map of c: g[r][k] = sum_p y[r][p] phi_k(times[p]),
/// for y (rows x times.len(), row-major). Returns rows x n in y's element type (float64 sums).
/// With y = quadrature weights times samples of f it computes projection coefficients, e.g. for
/// legs c_k = (1/t) int_0^t f phi_k; and it is the backward pass of `reconstruct`.
pub fn reconstruct_adjoint<T: Real>(measure: &Measure, y: &[T], n: usize, times: &[f64], t: f64) -> Result<Vec<T>> {
    let (plan, args, weights) = prepare(measure, n, times, t)?;
    let points = args.len();
    let rows = if points == 0 {
        if !y.is_empty() {
            return Err(HippoError::invalid("y", format!("expected 0 values for 0 times, got {}", y.len())));
        }
        0
    } else {
        rows_of(y.len(), points, "y", &format!("{points} values (one per time)"))?
    };
    let total = product(rows, n, "the adjoint coefficients", std::mem::size_of::<T>())?;
    let mut g = try_zeros::<f64>(total, "the adjoint coefficients")?;
    let (tiles, parallel) = tiles(rows, points, n);
    let results = map_tiles(&tiles, parallel, |&(r0, p0)| {
        let (r1, p1) = ((r0 + ROW_CHUNK).min(rows), (p0 + BLOCK).min(points));
        let ys: Vec<Vec<f64>> =
            (r0..r1).map(|r| y[r * points + p0..r * points + p1].iter().map(|x| x.widen()).collect()).collect();
        let mut acc = vec![0.0; (r1 - r0) * n];
        accelerated(|| {
            basis(plan.family, &args[p0..p1], n, |k, v| {
                for (yr, acc_r) in ys.iter().zip(acc.chunks_exact_mut(n)) {
                    acc_r[k] = dot(yr, v);
                }
            })
        });
        acc
    });
    for (&(r0, _), acc) in tiles.iter().zip(&results) {
        for (a, o) in acc.iter().zip(&mut g[r0 * n..]) {
            *o += a;
        }
    }
    Ok(g.chunks_exact(n).flat_map(|row| row.iter().zip(&weights).map(|(x, w)| T::cast(x * w))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    #[test]
    fn legs_reproduces_the_paper_oracles() {
        // f(x) = x over [0, t]: c = t [1/2, sqrt3/6, 0, ...]; f(x) = x^2: t^2 [1/3, sqrt3/6, sqrt5/30, 0, ...].
        let t = 3.0;
        let lin = [t / 2.0, t * 3f64.sqrt() / 6.0, 0.0, 0.0];
        let sq = [t * t / 3.0, t * t * 3f64.sqrt() / 6.0, t * t * 5f64.sqrt() / 30.0, 0.0];
        let times: Vec<f64> = (0..=30).map(|i| t * i as f64 / 30.0).collect();
        let c: Vec<f64> = lin.iter().chain(&sq).copied().collect();
        let out = reconstruct(&Measure::LegS, &c, 4, &times, t).unwrap();
        for (p, &x) in times.iter().enumerate() {
            assert!(close(out[p], x, 1e-13), "linear at {x}: {}", out[p]);
            assert!(close(out[times.len() + p], x * x, 1e-13), "square at {x}: {}", out[times.len() + p]);
        }
    }

    #[test]
    fn lmu_is_legt_in_the_scaled_basis() {
        // c_lmu = diag((-1)^n sqrt(2n+1)) c_legt gives the same function.
        let n = 40;
        let theta = 2.5;
        let legt: Vec<f64> = (0..n).map(|k| ((k * 7 % 11) as f64 - 5.0) / (1.0 + k as f64)).collect();
        let lmu: Vec<f64> = legt
            .iter()
            .enumerate()
            .map(|(k, x)| x * ((2 * k + 1) as f64).sqrt() * if k % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let t = 10.0;
        let times: Vec<f64> = (0..=50).map(|i| t - theta * i as f64 / 50.0).collect();
        let a = reconstruct(&Measure::LegT { theta }, &legt, n, &times, t).unwrap();
        let b = reconstruct(&Measure::Lmu { theta }, &lmu, n, &times, t).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!(close(*x, *y, 1e-12), "{x} vs {y}");
        }
    }

    #[test]
    fn fout_basis_signs_follow_measure_rs() {
        // c = e_1 -> sqrt2 cos(2 pi s/theta); c = e_2 -> sqrt2 sin(2 pi s/theta), s = t - tau.
        let (theta, t) = (2.0, 5.0);
        let times = [5.0, 4.75, 4.5, 3.6];
        let c = [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        let out = reconstruct(&Measure::FouT { theta }, &c, 4, &times, t).unwrap();
        for (p, &tau) in times.iter().enumerate() {
            let w = 2.0 * std::f64::consts::PI * (t - tau) / theta;
            assert!(close(out[p], 2f64.sqrt() * w.cos(), 1e-14));
            assert!(close(out[4 + p], 2f64.sqrt() * w.sin(), 1e-14));
        }
    }

    #[test]
    fn fout_high_frequencies_stay_accurate() {
        // Rotation with re-seeding against direct evaluation, N = 2001 (frequencies up to 1000).
        let n = 2001;
        let theta = 1.0;
        let mut c = vec![0.0; n];
        c[n - 2] = 1.0; // cos(2 pi 1000 s)
        let times: Vec<f64> = (0..97).map(|i| 1.0 - i as f64 / 97.0).collect();
        let out = reconstruct(&Measure::FouT { theta }, &c, n, &times, 1.0).unwrap();
        for (p, &tau) in times.iter().enumerate() {
            let want = 2f64.sqrt() * (2.0 * std::f64::consts::PI * 1000.0 * (1.0 - tau)).cos();
            assert!((out[p] - want).abs() < 1e-10, "{} vs {want}", out[p]);
        }
    }

    #[test]
    fn laguerre_matches_closed_forms_and_does_not_overflow() {
        // lagt(beta = 1): L_0 = 1, L_1 = 1 - s, L_2 = 1 - 2s + s^2/2.
        let c = [0.3, -0.2, 0.5];
        let t = 1.0;
        let times = [1.0, 0.5, -1.0, -4.0];
        let out = reconstruct(&Measure::LagT { beta: 1.0 }, &c, 3, &times, t).unwrap();
        for (p, &tau) in times.iter().enumerate() {
            let s: f64 = t - tau;
            let want = 0.3 - 0.2 * (1.0 - s) + 0.5 * (1.0 - 2.0 * s + s * s / 2.0);
            assert!(close(out[p], want, 1e-14));
        }
        // Degree 3000 at s = 2000 with e^{-s/2} (beta = 0): huge polynomial times a tiny exponential.
        let n = 3000;
        let mut c = vec![0.0f64; n];
        c[n - 1] = 1.0;
        let v = reconstruct(&Measure::LagT { beta: 0.0 }, &c, n, &[-2000.0, -3.0], 0.0).unwrap();
        assert!(v.iter().all(|x| x.is_finite() && x.abs() <= 1.0), "{v:?}");
        let v32 = reconstruct(
            &Measure::LagT { beta: 0.0 },
            &c.iter().map(|&x| x as f32).collect::<Vec<_>>(),
            n,
            &[-2000.0, -3.0],
            0.0,
        )
        .unwrap();
        assert!(v32.iter().all(|x| x.is_finite() && x.abs() <= 1.0), "{v32:?}");
    }

    #[test]
    fn glagt_alpha_zero_is_lagt_with_c_scaled() {
        let beta = 0.4;
        let n = 30;
        let c: Vec<f64> = (0..n).map(|k| ((k * 5 % 7) as f64 - 3.0) / (1.0 + k as f64)).collect();
        let times: Vec<f64> = (0..40).map(|i| -(i as f64) * 0.7).collect();
        let a = reconstruct(&Measure::LagT { beta }, &c, n, &times, 0.0).unwrap();
        let scaled: Vec<f64> = c.iter().map(|x| x * beta.sqrt()).collect();
        let b = reconstruct(&Measure::GLagT { alpha: 0.0, beta }, &scaled, n, &times, 0.0).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!(close(*x, *y, 1e-11), "{x} vs {y}");
        }
    }

    #[test]
    fn float32_follows_float64_at_large_order() {
        let n = 1024;
        let c64: Vec<f64> = (0..n).map(|k| ((k * 37 % 101) as f64 / 50.0 - 1.0) / (1.0 + k as f64).sqrt()).collect();
        let c32: Vec<f32> = c64.iter().map(|&x| x as f32).collect();
        let c64r: Vec<f64> = c32.iter().map(|&x| x as f64).collect();
        let times: Vec<f64> = (0..5000).map(|i| i as f64 / 4999.0).collect();
        let a = reconstruct(&Measure::LegS, &c64r, n, &times, 1.0).unwrap();
        let b = reconstruct(&Measure::LegS, &c32, n, &times, 1.0).unwrap();
        let num: f64 = a.iter().zip(&b).map(|(x, &y)| (x - y as f64).powi(2)).sum();
        let den: f64 = a.iter().map(|x| x * x).sum();
        assert!((num / den).sqrt() < 1e-4, "relative error {}", (num / den).sqrt());
    }

    #[test]
    fn arguments_are_checked_and_named() {
        let c = [1.0, 0.0];
        let err = |m: Measure, times: &[f64], t: f64| reconstruct(&m, &c, 2, times, t).unwrap_err().to_string();
        assert!(err(Measure::LegS, &[1.5], 1.0).starts_with("times:"));
        assert!(err(Measure::LegS, &[0.5], -1.0).starts_with("t:"));
        assert!(err(Measure::LegT { theta: 1.0 }, &[3.5], 5.0).starts_with("times:"));
        assert!(err(Measure::LagT { beta: 1.0 }, &[f64::NAN], 5.0).starts_with("times:"));
        assert!(err(Measure::ChebT { theta: 1.0 }, &[5.0], 5.0).starts_with("measure:"));
        assert!(reconstruct(&Measure::LegS, &[1.0, 2.0, 3.0], 2, &[0.5], 1.0)
            .unwrap_err()
            .to_string()
            .starts_with("c:"));
        assert!(reconstruct::<f64>(&Measure::LegS, &[], 0, &[0.5], 1.0).is_err());
        // t = 0 (one sample absorbed): the window is the single point 0, the value is c_0.
        assert_eq!(reconstruct(&Measure::LegS, &[2.0, 0.0], 2, &[0.0], 0.0).unwrap(), vec![2.0]);
    }

    #[test]
    fn adjoint_is_the_transpose() {
        // <reconstruct(c), y> = <c, reconstruct_adjoint(y)> for every family, several tiles.
        let n = 9;
        let rows = 35;
        let points = 300;
        let c: Vec<f64> = (0..rows * n).map(|i| ((i * 13 % 17) as f64 - 8.0) / 8.0).collect();
        let y: Vec<f64> = (0..rows * points).map(|i| ((i * 7 % 23) as f64 - 11.0) / 11.0).collect();
        let t = 2.0;
        let times: Vec<f64> = (0..points).map(|i| t - 1.5 * i as f64 / points as f64).collect();
        let measures = [
            Measure::LegS,
            Measure::LegT { theta: 1.5 },
            Measure::Lmu { theta: 1.5 },
            Measure::FouT { theta: 1.5 },
            Measure::LagT { beta: 0.5 },
            Measure::GLagT { alpha: 0.3, beta: 0.7 },
        ];
        for m in measures {
            let fc = reconstruct(&m, &c, n, &times, t).unwrap();
            let g = reconstruct_adjoint(&m, &y, n, &times, t).unwrap();
            let lhs: f64 = fc.iter().zip(&y).map(|(a, b)| a * b).sum();
            let rhs: f64 = c.iter().zip(&g).map(|(a, b)| a * b).sum();
            assert!(close(lhs, rhs, 1e-11), "{m:?}: {lhs} vs {rhs}");
        }
    }

    #[test]
    fn parallel_tiles_match_the_serial_path() {
        let n = 64;
        let rows = 70;
        let c: Vec<f64> = (0..rows * n).map(|i| ((i * 13 % 17) as f64 - 8.0) / 8.0).collect();
        let times: Vec<f64> = (0..1000).map(|i| i as f64 / 999.0).collect();
        let all = reconstruct(&Measure::LegS, &c, n, &times, 1.0).unwrap();
        for r in [0, 33, 69] {
            let one = reconstruct(&Measure::LegS, &c[r * n..(r + 1) * n], n, &times, 1.0).unwrap();
            assert_eq!(&all[r * 1000..(r + 1) * 1000], &one[..]);
        }
    }
}
