//! Linear-time operators of the HiPPO transition matrices: y = (I + dA)x, y = (I - dA)^{-1}x and
//! both transposes, in O(N) time and without forming A (paper App. E; LSSL, Gu et al. 2021, Thm. 11).
//!
//! Every measure of `crate::measure` falls into one of three structures (code sign, s = 1/theta).
//! Each is derived from `Measure::transition` and checked against it in the tests below.
//!
//! ```text
//! 1. `Prefix`: A = -diag(l) L diag(r) + diag(h), L the lower-triangular ones *with* the diagonal.
//!    (A x)_n = -l_n P_n + h_n x_n with the running sum P_n = sum_{k<=n} r_k x_k.
//!    - LegS: l = r = sqrt(2n+1), h = n (paper: A = D(L + D0)D, D0 = -diag(n/(2n+1))).
//!    - LagT(beta): l = r = 1, h = (1 - beta)/2.  GLagT(alpha, beta): l = 1/lambda, r = lambda, same h.
//!    Solve: y_n = (x_n - d l_n Q_{n-1}) / (1 + d (l_n r_n - h_n)), Q_n = Q_{n-1} + r_n y_n.
//!    Transpose: swap l and r and run the sums from the end.
//! 2. `Semiseparable` (LegT, LMU): A = -s diag(dl) M diag(dr), M = tril(p p^T) + strict triu(q q^T):
//!    - LegT: A = -s D M D, D = diag(sqrt(2n+1)), M_nk = 1 (k <= n), (-1)^(n-k) (k > n): p = 1, q = (-1)^n.
//!    - LMU: A = -s D^2 M, M_nk = (-1)^(n-k) (k <= n), 1 (k > n): p = (-1)^n, q = 1.
//!    Mul: (M z)_n = p_n sum_{k<=n} p_k z_k + q_n sum_{k>n} q_k z_k (two running sums).
//!    Solve: M^{-1} = T3 is tridiagonal (a (1,1)-semiseparable matrix), T3 = (1/2) [corners 1 at
//!    (0,0) and (N-1,N-1), sub-diagonal -1 / +1, super-diagonal +1 / -1 for LegT / LMU], so with
//!    w = M dr y: (T3 + g diag(dr dl)) w = dr x and y = x - g dl w (g = d s), one Thomas sweep.
//!    Its pivots are p_n = g dr_n dl_n + corner_n + 1/(4 p_{n-1}) > 0 for g >= 0: no growth. (The
//!    triangular-plus-rank-one split of I - dA with Sherman-Morrison is exact in theory but its
//!    triangular factor has an exponentially growing inverse; it fails in floating point.)
//!    Transpose: swap (dl, dr), M^T = strict tril(q q^T) + triu(p p^T), T3 -> T3^T.
//!    ChebT has no rank-one part: A = -s diag(dl) T diag(dr), T_nk = 1 for k < n with n - k odd,
//!    dl = 4n, dr = (1/sqrt2, 1, 1, ...) (`OddTriangular`); (T z)_n is a running sum over the parity
//!    opposite to n; I - dA is unit lower triangular (forward substitution; transpose: backward).
//! 3. `Rotations` (FouT): A = -s v v^T + J, J block-diagonal 2x2 rotations J[i, i+1] = -w_j,
//!    J[i+1, i] = w_j for i = 2j - 1, w_j = 2 pi j / theta. K = I - dJ has 2x2 inverse blocks
//!    [[1, d w], [-d w, 1]]^{-1} = [[1, -d w], [d w, 1]] / (1 + (d w)^2); rank one by Sherman-Morrison.
//!    Transpose: J^T = -J.
//! ```
//!
//! All operators work in place, on one state vector of length N or on a transposed tile of rows.

use crate::error::{HippoError, Result};
use crate::float::{Lane, Real};
use crate::measure::{fout_v, glagt_lambda, Measure};

/// Which way the running sums go: `Forward` for A (lower triangular parts), `Backward` for A^T.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sweep {
    Forward,
    Backward,
}

#[derive(Debug, Clone)]
enum Shape<T> {
    Prefix { l: Vec<T>, r: Vec<T>, h: Vec<T>, lr_minus_h: Vec<T> },
    Semiseparable { s: T, dl: Vec<T>, dr: Vec<T>, p: Vec<T>, q: Vec<T>, sub: T },
    OddTriangular { s: T, dl: Vec<T>, dr: Vec<T> },
    Rotations { s: T, v: Vec<T>, omega: Vec<T> },
}

/// A = -diag(l) L diag(r) + diag(h) with B = b; `lr_minus_h` = l r - h (see the module docs).
/// `b_over_l`: Some(beta) when B = beta l exactly (LegS and LagT: beta = 1; GLagT with alpha = 0),
/// which lets the fused step carry the input in its running sum (`crate::scan::step`).
#[derive(Clone, Copy)]
pub(crate) struct PrefixTables<'a, T> {
    pub l: &'a [T],
    pub r: &'a [T],
    pub h: &'a [T],
    pub lr_minus_h: &'a [T],
    pub b: &'a [T],
    pub b_over_l: Option<T>,
}

/// Tables of a solve that depend only on (d, sweep): the Thomas pivots of LegT and LMU. Kept across
/// calls (rows, steps) by the scans; a solve with another (d, sweep) recomputes them.
#[derive(Debug, Clone)]
pub(crate) struct SolveCache<T> {
    key: Option<(T, Sweep)>,
    table: Vec<ThomasRow<T>>,
}

/// One row of the LegT/LMU solve (see `Structured::solve`): the Thomas sweep's factors, and how
/// y_i is recovered from w: by `y_i = x_i - g outer_i w_i` where that subtraction is accurate, else
/// (`tridiagonal`) by `y_i = (T3' w)_i / inner_i`, the same row of the system without the cancellation.
#[derive(Debug, Clone, Copy)]
struct ThomasRow<T> {
    sup: T,
    inner_over_piv: T,
    minus_lower_over_piv: T,
    tridiagonal: bool,
}

impl<T> Default for SolveCache<T> {
    fn default() -> Self {
        SolveCache { key: None, table: Vec::new() }
    }
}

/// The O(N) operators of one measure at one order N, with B, tables precomputed in `T`.
#[derive(Debug, Clone)]
pub struct Structured<T> {
    measure: Measure,
    n: usize,
    shape: Shape<T>,
    b: Vec<T>,
    /// Some(beta) when the shape is `Prefix` and b = beta l elementwise, exactly in `T`.
    b_over_l: Option<T>,
}

/// Which structure a measure has: the tables of its `Shape`, in float64 (see the module docs).
fn shape_f64(measure: &Measure, n: usize) -> Shape<f64> {
    let root = |i: usize| ((2 * i + 1) as f64).sqrt();
    let sign = |i: usize| if i.is_multiple_of(2) { 1.0 } else { -1.0 };
    let prefix = |l: Vec<f64>, r: Vec<f64>, h: Vec<f64>| {
        let lr_minus_h = (0..n).map(|i| l[i] * r[i] - h[i]).collect();
        Shape::Prefix { l, r, h, lr_minus_h }
    };
    match *measure {
        Measure::LegS => {
            let r: Vec<f64> = (0..n).map(root).collect();
            prefix(r.clone(), r, (0..n).map(|i| i as f64).collect())
        }
        Measure::LagT { beta } => prefix(vec![1.0; n], vec![1.0; n], vec![(1.0 - beta) / 2.0; n]),
        Measure::GLagT { alpha, beta } => {
            let lam = glagt_lambda(n, alpha);
            prefix(lam.iter().map(|x| 1.0 / x).collect(), lam, vec![(1.0 - beta) / 2.0; n])
        }
        Measure::LegT { theta } => Shape::Semiseparable {
            s: 1.0 / theta,
            dl: (0..n).map(root).collect(),
            dr: (0..n).map(root).collect(),
            p: vec![1.0; n],
            q: (0..n).map(sign).collect(),
            sub: -0.5,
        },
        Measure::Lmu { theta } => Shape::Semiseparable {
            s: 1.0 / theta,
            dl: (0..n).map(|i| (2 * i + 1) as f64).collect(),
            dr: vec![1.0; n],
            p: (0..n).map(sign).collect(),
            q: vec![1.0; n],
            sub: 0.5,
        },
        Measure::ChebT { theta } => Shape::OddTriangular {
            s: 1.0 / theta,
            dl: (0..n).map(|i| 4.0 * i as f64).collect(),
            dr: (0..n).map(|i| if i == 0 { std::f64::consts::FRAC_1_SQRT_2 } else { 1.0 }).collect(),
        },
        Measure::FouT { theta } => Shape::Rotations {
            s: 1.0 / theta,
            v: fout_v(n),
            omega: (1..=(n.saturating_sub(1)) / 2).map(|j| 2.0 * std::f64::consts::PI * j as f64 / theta).collect(),
        },
    }
}

fn cast_vec<T: Real>(v: Vec<f64>) -> Vec<T> {
    v.into_iter().map(T::cast).collect()
}

impl Shape<f64> {
    fn cast<T: Real>(self) -> Shape<T> {
        match self {
            Shape::Prefix { l, r, h, lr_minus_h } => {
                Shape::Prefix { l: cast_vec(l), r: cast_vec(r), h: cast_vec(h), lr_minus_h: cast_vec(lr_minus_h) }
            }
            Shape::Semiseparable { s, dl, dr, p, q, sub } => Shape::Semiseparable {
                s: T::cast(s),
                dl: cast_vec(dl),
                dr: cast_vec(dr),
                p: cast_vec(p),
                q: cast_vec(q),
                sub: T::cast(sub),
            },
            Shape::OddTriangular { s, dl, dr } => {
                Shape::OddTriangular { s: T::cast(s), dl: cast_vec(dl), dr: cast_vec(dr) }
            }
            Shape::Rotations { s, v, omega } => {
                Shape::Rotations { s: T::cast(s), v: cast_vec(v), omega: cast_vec(omega) }
            }
        }
    }
}

impl Measure {
    /// The O(N) operators of this measure at order `n` (tables in `T`).
    pub fn structured<T: Real>(&self, n: usize) -> Result<Structured<T>> {
        Structured::new(self, n)
    }
}

/// Index `step` of a sweep over 0..n.
#[inline(always)]
fn at(sweep: Sweep, n: usize, step: usize) -> usize {
    match sweep {
        Sweep::Forward => step,
        Sweep::Backward => n - 1 - step,
    }
}

impl<T: Real> Structured<T> {
    /// Builds the operators of `measure` at order `n >= 1`.
    pub fn new(measure: &Measure, n: usize) -> Result<Self> {
        if n == 0 {
            return Err(HippoError::invalid("N", "expected a memory order N >= 1, got 0"));
        }
        let shape: Shape<T> = shape_f64(measure, n).cast();
        let b: Vec<T> = cast_vec(measure.input(n)?);
        let b_over_l = match &shape {
            Shape::Prefix { l, .. } if l[0] != T::zero() => {
                let beta = b[0] / l[0];
                l.iter().zip(&b).all(|(l, b)| beta * *l == *b).then_some(beta)
            }
            _ => None,
        };
        Ok(Structured { measure: *measure, n, shape, b, b_over_l })
    }

    /// The measure whose operators these are.
    pub fn measure(&self) -> &Measure {
        &self.measure
    }

    /// The memory order N.
    pub fn order(&self) -> usize {
        self.n
    }

    /// The input vector B.
    pub fn input(&self) -> &[T] {
        &self.b
    }

    /// The tables of a `Prefix`-structured A (LegS, LagT, GLagT), for the fused steps of `crate::scan`.
    pub(crate) fn prefix_tables(&self) -> Option<PrefixTables<'_, T>> {
        match &self.shape {
            Shape::Prefix { l, r, h, lr_minus_h } => {
                Some(PrefixTables { l, r, h, lr_minus_h, b: &self.b, b_over_l: self.b_over_l })
            }
            _ => None,
        }
    }

    /// Whether A has the `Prefix` structure (the fused one-sweep step of `crate::scan`).
    pub(crate) fn has_prefix(&self) -> bool {
        matches!(self.shape, Shape::Prefix { .. })
    }

    /// x <- (I + d A) x.
    pub fn mul_explicit(&self, d: T, x: &mut [T]) {
        self.mul(d, x, Sweep::Forward, &mut Vec::new())
    }

    /// x <- (I + d A)^T x.
    pub fn mul_explicit_transpose(&self, d: T, x: &mut [T]) {
        self.mul(d, x, Sweep::Backward, &mut Vec::new())
    }

    /// x <- (I - d A)^{-1} x.
    pub fn solve_implicit(&self, d: T, x: &mut [T]) {
        self.solve(d, x, Sweep::Forward, &mut Vec::new(), &mut SolveCache::default())
    }

    /// x <- (I - d A)^{-T} x.
    pub fn solve_implicit_transpose(&self, d: T, x: &mut [T]) {
        self.solve(d, x, Sweep::Backward, &mut Vec::new(), &mut SolveCache::default())
    }

    /// x <- (I + d A) x (`Forward`) or (I + d A)^T x (`Backward`), on one row (`V = T`) or a
    /// transposed tile of rows (`V = [T; W]`); `scratch` is grown as needed.
    #[inline(always)]
    pub(crate) fn mul<V: Lane<T>>(&self, d: T, x: &mut [V], sweep: Sweep, scratch: &mut Vec<V>) {
        debug_assert_eq!(x.len(), self.n);
        let n = self.n;
        let zero = V::splat(T::zero());
        match &self.shape {
            Shape::Prefix { l, r, h, .. } => {
                let (l, r) = if sweep == Sweep::Forward { (l, r) } else { (r, l) };
                let mut p = zero;
                for step in 0..n {
                    let i = at(sweep, n, step);
                    p = x[i].scale_add(r[i], p);
                    x[i] = x[i].scale(d.mul_add(h[i], T::one())).sub(p.scale(d * l[i]));
                }
            }
            Shape::Semiseparable { s, dl, dr, p, q, .. } => {
                // y = x - g outer * M' (inner * x); M' = M (Forward) or M^T (Backward): inclusive p-sums
                // along the sweep, exclusive q-sums against it.
                let g = d * *s;
                let (outer, inner) = if sweep == Sweep::Forward { (dl, dr) } else { (dr, dl) };
                let against = if sweep == Sweep::Forward { Sweep::Backward } else { Sweep::Forward };
                scratch.resize(n, zero);
                let mut acc = zero;
                for step in 0..n {
                    let i = at(against, n, step);
                    scratch[i] = acc;
                    acc = x[i].scale_add(q[i] * inner[i], acc);
                }
                let mut acc = zero;
                for step in 0..n {
                    let i = at(sweep, n, step);
                    acc = x[i].scale_add(p[i] * inner[i], acc);
                    x[i] = x[i].sub(acc.scale_add(p[i], scratch[i].scale(q[i])).scale(g * outer[i]));
                }
            }
            Shape::OddTriangular { s, dl, dr } => {
                let g = d * *s;
                let (outer, inner) = if sweep == Sweep::Forward { (dl, dr) } else { (dr, dl) };
                let mut sums = [zero; 2];
                for step in 0..n {
                    let i = at(sweep, n, step);
                    let odd = sums[(i + 1) & 1];
                    sums[i & 1] = x[i].scale_add(inner[i], sums[i & 1]);
                    x[i] = x[i].sub(odd.scale(g * outer[i]));
                }
            }
            Shape::Rotations { s, v, omega } => {
                // (I + dA)x = x + d (+-J) x - g v (v.x); J^T = -J.
                let g = d * *s;
                let sigma = x.iter().zip(v).fold(zero, |acc, (xi, vi)| xi.scale_add(*vi, acc));
                let turn = if sweep == Sweep::Forward { d } else { -d };
                for (j, w) in omega.iter().enumerate() {
                    let (i, k) = (2 * j + 1, 2 * j + 2);
                    let (xi, xk) = (x[i], x[k]);
                    x[i] = xi.sub(xk.scale(turn * *w));
                    x[k] = xk.add(xi.scale(turn * *w));
                }
                for (xi, vi) in x.iter_mut().zip(v) {
                    *xi = xi.sub(sigma.scale(g * *vi));
                }
            }
        }
    }

    /// x <- (I - d A)^{-1} x (`Forward`) or (I - d A)^{-T} x (`Backward`), on one row or a tile of
    /// rows; `scratch` is grown as needed; `cache` keeps the tables that depend on (d, sweep) only.
    #[inline(always)]
    pub(crate) fn solve<V: Lane<T>>(
        &self,
        d: T,
        x: &mut [V],
        sweep: Sweep,
        scratch: &mut Vec<V>,
        cache: &mut SolveCache<T>,
    ) {
        debug_assert_eq!(x.len(), self.n);
        let n = self.n;
        let zero = V::splat(T::zero());
        match &self.shape {
            Shape::Prefix { l, r, lr_minus_h, .. } => {
                let (l, r) = if sweep == Sweep::Forward { (l, r) } else { (r, l) };
                let mut q = zero;
                for step in 0..n {
                    let i = at(sweep, n, step);
                    let y = x[i].sub(q.scale(d * l[i])).div(d.mul_add(lr_minus_h[i], T::one()));
                    x[i] = y;
                    q = y.scale_add(r[i], q);
                }
            }
            Shape::Semiseparable { s, dl, dr, sub, .. } => {
                // (T3' + g diag(outer inner)) w = inner x, y = x - g outer w (module docs), by the
                // Thomas algorithm. Its pivots depend on d only: with piv_i = g outer_i inner_i +
                // corner_i - lower sup_{i-1} and sup_i = upper / piv_i, the sweeps are
                // rhs_i = (inner_i / piv_i) x_i - (lower / piv_i) rhs_{i-1}, w_i = rhs_i - sup_i w_{i+1}.
                // Recovering y: row i of the system reads inner_i (x_i - g outer_i w_i) =
                // lower w_{i-1} + corner_i w_i + upper w_{i+1}. Where g outer_i inner_i > 1, g outer_i w_i
                // is close to x_i and the subtraction cancels (a relative error ~ g u); the right-hand
                // side has no such cancellation, so those rows use it (one index behind the sweep, as
                // it needs w_{i-1}). Elsewhere the subtraction is the more accurate of the two.
                let g = d * *s;
                let (outer, inner) = if sweep == Sweep::Forward { (dl, dr) } else { (dr, dl) };
                let (lower, upper) = if sweep == Sweep::Forward { (*sub, -*sub) } else { (-*sub, *sub) };
                let half = T::cast(0.5);
                let corner =
                    |i: usize| if i == 0 { half } else { T::zero() } + if i + 1 == n { half } else { T::zero() };
                if cache.key != Some((d, sweep)) {
                    cache.table.clear();
                    let mut sup = T::zero();
                    for i in 0..n {
                        let diagonal = g * outer[i] * inner[i];
                        let piv = (g * outer[i]).mul_add(inner[i], corner(i)) - lower * sup;
                        sup = upper / piv;
                        cache.table.push(ThomasRow {
                            sup,
                            inner_over_piv: inner[i] / piv,
                            minus_lower_over_piv: -lower / piv,
                            tridiagonal: diagonal > T::one(),
                        });
                    }
                    cache.key = Some((d, sweep));
                }
                scratch.resize(n, zero);
                let mut rhs = zero;
                for (i, t) in cache.table.iter().enumerate() {
                    rhs = rhs.scale_add(t.minus_lower_over_piv, x[i].scale(t.inner_over_piv));
                    scratch[i] = rhs;
                }
                // y_i from (w_{i-1}, w_i, w_{i+1}).
                let recover = |i: usize, x: V, prev: V, w: V, next: V| -> V {
                    if cache.table[i].tridiagonal {
                        prev.scale(lower).add(w.scale(corner(i))).add(next.scale(upper)).div(inner[i])
                    } else {
                        x.sub(w.scale(g * outer[i]))
                    }
                };
                let (mut w_next, mut w_next2) = (zero, zero);
                for i in (0..n).rev() {
                    let w = w_next.scale_add(-cache.table[i].sup, scratch[i]);
                    if i + 1 < n {
                        x[i + 1] = recover(i + 1, x[i + 1], w, w_next, w_next2);
                    }
                    (w_next, w_next2) = (w, w_next);
                }
                x[0] = recover(0, x[0], zero, w_next, w_next2);
            }
            Shape::OddTriangular { s, dl, dr } => {
                // Forward substitution: y_i = x_i - g outer_i (sum of inner_k y_k over the other parity).
                let g = d * *s;
                let (outer, inner) = if sweep == Sweep::Forward { (dl, dr) } else { (dr, dl) };
                let mut sums = [zero; 2];
                for step in 0..n {
                    let i = at(sweep, n, step);
                    let y = x[i].sub(sums[(i + 1) & 1].scale(g * outer[i]));
                    sums[i & 1] = y.scale_add(inner[i], sums[i & 1]);
                    x[i] = y;
                }
            }
            Shape::Rotations { s, v, omega } => {
                // Sherman-Morrison is not backward stable once the rank-one term dominates
                // (g |v|^2 > 1: y is the small difference of two large terms, residual ~ g u |x|);
                // one step of iterative refinement, y += (I - dA)^{-1}(x - (I - dA) y), restores it.
                let g = d * *s;
                let vv = v.iter().fold(T::zero(), |acc, vi| vi.mul_add(*vi, acc));
                if g * vv > T::one() {
                    let x0 = x.to_vec();
                    rotations_solve(d, *s, v, omega, x, sweep);
                    let mut r = x.to_vec();
                    self.mul(-d, &mut r, sweep, scratch);
                    for (ri, x0i) in r.iter_mut().zip(&x0) {
                        *ri = x0i.sub(*ri);
                    }
                    rotations_solve(d, *s, v, omega, &mut r, sweep);
                    for (xi, ri) in x.iter_mut().zip(&r) {
                        *xi = xi.add(*ri);
                    }
                } else {
                    rotations_solve(d, *s, v, omega, x, sweep);
                }
            }
        }
    }
}

/// x <- (I - d A)^{-1} x (`Forward`) or its transpose (`Backward`) for FouT, A = -s v v^T + J:
/// (I - dA) = K + g v v^T with K = I - dJ (2x2 blocks), by Sherman-Morrison.
#[inline(always)]
fn rotations_solve<T: Real, V: Lane<T>>(d: T, s: T, v: &[T], omega: &[T], x: &mut [V], sweep: Sweep) {
    let n = x.len();
    let zero = V::splat(T::zero());
    let g = d * s;
    let turn = if sweep == Sweep::Forward { d } else { -d };
    // x <- K^{-1} x block by block; w = K^{-1} v on the fly; y = K^{-1}x - g tau w.
    for (j, w) in omega.iter().enumerate() {
        let (i, k) = (2 * j + 1, 2 * j + 2);
        let a = turn * *w;
        let den = a.mul_add(a, T::one());
        let (xi, xk) = (x[i], x[k]);
        x[i] = xi.sub(xk.scale(a)).div(den);
        x[k] = xk.add(xi.scale(a)).div(den);
    }
    // w = K^{-1} v, one entry at a time (index 0 and an unpaired last index keep v).
    let kinv_v = |i: usize| -> T {
        if i == 0 || (i % 2 == 1 && i + 1 >= n) {
            return v[i];
        }
        let (j, partner, sign) =
            if i % 2 == 1 { ((i - 1) / 2, i + 1, -T::one()) } else { ((i - 2) / 2, i - 1, T::one()) };
        let a = turn * omega[j];
        (sign * a).mul_add(v[partner], v[i]) / a.mul_add(a, T::one())
    };
    let vx = x.iter().zip(v).fold(zero, |acc, (xi, vi)| xi.scale_add(*vi, acc));
    let vw = (0..n).fold(T::zero(), |acc, i| v[i].mul_add(kinv_v(i), acc));
    let g_tau = vx.scale(g).div(g.mul_add(vw, T::one()));
    for (i, xi) in x.iter_mut().enumerate() {
        *xi = xi.sub(g_tau.scale(kinv_v(i)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b_over_l_is_found_exactly_where_b_is_a_multiple_of_l() {
        let cases = [
            (Measure::LegS, true),
            (Measure::LagT { beta: 0.3 }, true),
            (Measure::GLagT { alpha: 0.0, beta: 0.5 }, true),
            (Measure::GLagT { alpha: 0.3, beta: 0.5 }, false),
            (Measure::LegT { theta: 1.0 }, false),
        ];
        for (m, multiple) in cases {
            for n in [7usize, 64] {
                let op = m.structured::<f32>(n).unwrap();
                let found = op.prefix_tables().and_then(|p| p.b_over_l);
                assert_eq!(found.is_some(), multiple, "{m:?} N={n}");
                if let (Some(beta), Some(p)) = (found, op.prefix_tables()) {
                    assert!(p.l.iter().zip(p.b).all(|(l, b)| beta * l == *b), "{m:?} N={n}");
                }
            }
        }
    }

    fn measures() -> Vec<Measure> {
        vec![
            Measure::LegS,
            Measure::LegT { theta: 1.0 },
            Measure::LegT { theta: 2.5 },
            Measure::Lmu { theta: 0.7 },
            Measure::LagT { beta: 1.0 },
            Measure::LagT { beta: 0.0 },
            Measure::GLagT { alpha: 0.3, beta: 0.5 },
            Measure::GLagT { alpha: -0.4, beta: 2.0 },
            Measure::FouT { theta: 1.3 },
            Measure::ChebT { theta: 0.9 },
        ]
    }

    fn test_vector(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    /// Dense (I + sign d A) (transposed if asked) applied to x.
    fn dense_apply(a: &[f64], n: usize, sign: f64, d: f64, transpose: bool, x: &[f64]) -> Vec<f64> {
        (0..n)
            .map(|i| {
                x[i] + sign
                    * d
                    * (0..n).map(|k| if transpose { a[k * n + i] } else { a[i * n + k] } * x[k]).sum::<f64>()
            })
            .collect()
    }

    fn close(got: &[f64], want: &[f64], tol: f64, what: &str) {
        let scale = want.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol * scale, "{what} [{i}]: got {g}, want {w}");
        }
    }

    /// Steps far beyond the window (d s |A| >> 1) in float32: LegT/LMU recover y from the tridiagonal
    /// row and FouT refines once, so the solve keeps a float32-sized relative error where
    /// y = x - g outer w (and plain Sherman-Morrison) lose a factor ~ d s |A|.
    #[test]
    fn large_steps_keep_float32_accuracy() {
        for (m, d) in [
            (Measure::LegT { theta: 1e-3 }, 8.0),
            (Measure::Lmu { theta: 0.5 }, 480.0),
            (Measure::FouT { theta: 1e-3 }, 0.05),
        ] {
            for n in [1usize, 8, 25] {
                let (a, _) = m.transition(n).unwrap();
                let op = m.structured::<f32>(n).unwrap();
                let x = test_vector(n, 11);
                for transpose in [false, true] {
                    let mut y: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                    if transpose {
                        op.solve_implicit_transpose(d as f32, &mut y);
                    } else {
                        op.solve_implicit(d as f32, &mut y);
                    }
                    let y: Vec<f64> = y.iter().map(|&v| v as f64).collect();
                    let back = dense_apply(&a, n, -1.0, d, transpose, &y);
                    // Backward error: |(I - dA) y - x| <= 32 N u (|I - dA| |y| + |x|), u = 2^-24.
                    let scale = (0..n)
                        .map(|i| {
                            x[i].abs()
                                + y[i].abs()
                                + d * (0..n)
                                    .map(|k| (if transpose { a[k * n + i] } else { a[i * n + k] } * y[k]).abs())
                                    .sum::<f64>()
                        })
                        .fold(0.0f64, f64::max);
                    let err = back.iter().zip(&x).fold(0.0f64, |e, (b, x)| e.max((b - x).abs()));
                    assert!(
                        err <= 32.0 * n as f64 * 2f64.powi(-24) * scale,
                        "{m:?} n={n} T={transpose}: residual {err:e}, scale {scale:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn operators_match_dense_matrices() {
        for m in measures() {
            for n in [1usize, 2, 3, 4, 5, 8, 17, 32, 63] {
                let (a, b) = m.transition(n).unwrap();
                let op = m.structured::<f64>(n).unwrap();
                close(op.input(), &b, 1e-14, &format!("{m:?} B n={n}"));
                for d in [0.0, 0.01, 0.37, 2.0] {
                    let x = test_vector(n, n as u64 * 7 + 3);
                    let what = format!("{m:?} n={n} d={d}");
                    let tol = 1e-11 * (n as f64);
                    for transpose in [false, true] {
                        let mut y = x.clone();
                        if transpose {
                            op.mul_explicit_transpose(d, &mut y);
                        } else {
                            op.mul_explicit(d, &mut y);
                        }
                        close(
                            &y,
                            &dense_apply(&a, n, 1.0, d, transpose, &x),
                            tol,
                            &format!("mul T={transpose} {what}"),
                        );
                        // solve: (I - dA) y = x  <=>  dense (I - dA) applied to y gives x back.
                        let mut y = x.clone();
                        if transpose {
                            op.solve_implicit_transpose(d, &mut y);
                        } else {
                            op.solve_implicit(d, &mut y);
                        }
                        let back = dense_apply(&a, n, -1.0, d, transpose, &y);
                        let scale =
                            y.iter().fold(1.0f64, |m, v| m.max(v.abs())) * (1.0 + d * crate::dense::norm1(&a, n));
                        for i in 0..n {
                            assert!((back[i] - x[i]).abs() <= tol * scale, "solve T={transpose} {what} [{i}]");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn transposes_are_adjoint_in_f32() {
        for m in measures() {
            let n = 33;
            let op = m.structured::<f32>(n).unwrap();
            let x: Vec<f32> = test_vector(n, 1).iter().map(|v| *v as f32).collect();
            let y: Vec<f32> = test_vector(n, 2).iter().map(|v| *v as f32).collect();
            let d = 0.05f32;
            let dot64 = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| *p as f64 * *q as f64).sum::<f64>();
            let (mut mx, mut mty) = (x.clone(), y.clone());
            op.mul_explicit(d, &mut mx);
            op.mul_explicit_transpose(d, &mut mty);
            let (l, r) = (dot64(&y, &mx), dot64(&mty, &x));
            assert!((l - r).abs() < 1e-4 * (1.0 + l.abs()), "{m:?} mul: {l} vs {r}");
            let (mut sx, mut sty) = (x.clone(), y.clone());
            op.solve_implicit(d, &mut sx);
            op.solve_implicit_transpose(d, &mut sty);
            let (l, r) = (dot64(&y, &sx), dot64(&sty, &x));
            assert!((l - r).abs() < 1e-4 * (1.0 + l.abs()), "{m:?} solve: {l} vs {r}");
        }
    }

    #[test]
    fn zero_order_is_refused() {
        assert!(Measure::LegS.structured::<f64>(0).is_err());
    }
}
