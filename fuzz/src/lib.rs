//! Differential fuzzing of hippo-core: the O(N) structured operators and the GBT scans against the
//! dense float64 math of the same measure (`Measure::transition`, `discretize::gbt_matrices`).
//!
//! Each check decodes a byte string into a case (measure and parameters, order N, dtype, step
//! sizes, inputs), runs the fast path and the dense path, and requires the same answer within a
//! rounding-error bound, or the same error from both. The bounds are a-priori bounds of the form
//! `K * N * u * |M| |x|` (u the unit roundoff of the dtype), so a failure means a wrong answer, not a
//! tolerance that was tuned to pass.
//!
//! `cargo fuzz run structured` / `cargo fuzz run scan` explore with libFuzzer; `cargo test` replays
//! the committed corpus and a bounded seeded random sweep (see `tests`).

use hippo_core::discretize::{gbt_matrices, GbtStep};
use hippo_core::float::Real;
use hippo_core::measure::Measure;
use hippo_core::scan::{gbt_scan, Coefficients};
use hippo_core::structured::Structured;

/// Reads a case out of fuzzer bytes; past the end every read is zero, so any input decodes.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bytes { data, at: 0 }
    }

    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn pick(&mut self, n: usize) -> usize {
        self.byte() as usize % n
    }

    /// A value in [-8, 8) on a grid of 1/4096: exact in float32, so both dtypes see the same input.
    fn value(&mut self) -> f64 {
        i16::from_le_bytes([self.byte(), self.byte()]) as f64 / 4096.0
    }

    /// A step size: 0, or 10^e for e in [-6, 3] in steps of 1/16.
    fn step(&mut self) -> f64 {
        match self.byte() {
            0 => 0.0,
            b => 10f64.powf(-6.0 + 9.0 * (b - 1) as f64 / 254.0),
        }
    }
}

/// Measure parameters drawn from valid and invalid values alike (the invalid ones must be refused
/// by the fast and the dense path alike).
const THETAS: [f64; 8] = [1.0, 0.5, 2.0, 100.0, 1e-3, 0.0, -1.0, f64::NAN];
const BETAS: [f64; 6] = [1.0, 0.0, 0.5, 3.0, -0.5, f64::INFINITY];
const GLAGT_ALPHAS: [f64; 6] = [0.0, 0.5, -0.5, 0.9, 1.0, -1.0];

fn measure(bytes: &mut Bytes<'_>) -> hippo_core::error::Result<Measure> {
    let theta = THETAS[bytes.pick(THETAS.len())];
    let beta = BETAS[bytes.pick(BETAS.len())];
    match bytes.pick(7) {
        0 => Measure::new("legs", &[]),
        1 => Measure::new("legt", &[("theta", theta)]),
        2 => Measure::new("lmu", &[("theta", theta)]),
        3 => Measure::new("lagt", &[("beta", beta)]),
        4 => Measure::new("glagt", &[("alpha", GLAGT_ALPHAS[bytes.pick(GLAGT_ALPHAS.len())]), ("beta", beta)]),
        5 => Measure::new("fout", &[("theta", theta)]),
        _ => Measure::new("chebt", &[("theta", theta)]),
    }
}

/// Dense row-major n x n matrix times vector.
fn matvec(m: &[f64], x: &[f64]) -> Vec<f64> {
    let n = x.len();
    (0..n).map(|i| (0..n).map(|k| m[i * n + k] * x[k]).sum()).collect()
}

/// |M| |x|, the scale of the rounding error of M x.
fn abs_matvec(m: &[f64], x: &[f64]) -> Vec<f64> {
    let n = x.len();
    (0..n).map(|i| (0..n).map(|k| (m[i * n + k] * x[k]).abs()).sum()).collect()
}

fn transpose(m: &[f64], n: usize) -> Vec<f64> {
    (0..n * n).map(|j| m[(j % n) * n + j / n]).collect()
}

fn max_abs(x: &[f64]) -> f64 {
    x.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Infinity norm of a row-major n x n matrix.
fn norm_inf(m: &[f64], n: usize) -> f64 {
    (0..n).map(|i| m[i * n..(i + 1) * n].iter().map(|v| v.abs()).sum::<f64>()).fold(0.0, f64::max)
}

/// I + s A (row-major).
fn shifted(a: &[f64], n: usize, s: f64) -> Vec<f64> {
    (0..n * n).map(|j| if j % (n + 1) == 0 { 1.0 } else { 0.0 } + s * a[j]).collect()
}

/// Solves M y = x in place: by substitution when M is triangular (LegS, LagT, GLagT, ChebT and their
/// transposes; backward stable at any conditioning, where LU's forward error grows with cond(M)),
/// else by LU with partial pivoting.
fn reference_solve(m: &[f64], n: usize, x: &mut [f64]) -> hippo_core::error::Result<()> {
    let lower = (0..n).all(|i| (i + 1..n).all(|k| m[i * n + k] == 0.0));
    let upper = (0..n).all(|i| (0..i).all(|k| m[i * n + k] == 0.0));
    if !(lower || upper) {
        return hippo_core::dense::solve(m, x, n, 1, "I - dA");
    }
    let order: Vec<usize> = if lower { (0..n).collect() } else { (0..n).rev().collect() };
    for (j, &i) in order.iter().enumerate() {
        let sum: f64 = order[..j].iter().map(|&k| m[i * n + k] * x[k]).sum();
        x[i] = (x[i] - sum) / m[i * n + i];
    }
    Ok(())
}

/// The documented accuracy limit of FouT's solve (`Structured::solve`, Sherman-Morrison plus one
/// refinement step): a relative error (g |v|^2 u)^2 where g |v|^2 = -d trace(A) (A = -s v v^T + J,
/// J skew). Zero for the other measures, whose solves are backward stable.
fn rank_one_loss<T: Real>(m: &Measure, a: &[f64], n: usize, d: f64) -> f64 {
    if !matches!(m, Measure::FouT { .. }) {
        return 0.0;
    }
    let trace: f64 = (0..n).map(|i| a[i * n + i]).sum();
    let loss = -d * trace * roundoff::<T>();
    4.0 * loss * loss
}

/// Within three orders of magnitude of the dtype's largest value, a fast path may overflow first:
/// its running sums (LegS: P_n = sum r_k x_k, ChebT: the parity sums) can exceed the result it
/// computes from them by a factor 1/(d l_n).
fn overflow_edge<T: Real>() -> f64 {
    T::max_value().widen() * 1e-3
}

/// The unit roundoff of `T`.
fn roundoff<T: Real>() -> f64 {
    T::epsilon().widen() / 2.0
}

/// The absolute error floor of N operations near the dtype's subnormal range.
fn tiny<T: Real>(n: usize) -> f64 {
    4.0 * n as f64 * T::min_positive_value().widen()
}

/// One structured operator against the dense matrix. Forward operators (y = M x) are held to the
/// forward error bound `K N u |M||x|`; solves (y = M^{-1} x) to the backward error bound
/// `|M y - x| <= K N u (|M||y| + |x|)`, which holds for a backward-stable solve at any conditioning.
fn check_operator<T: Real>(m: &Measure, n: usize, bytes: &mut Bytes<'_>) {
    let fast = Structured::<T>::new(m, n);
    let dense = m.transition(n);
    let (op, (a, _)) = match (fast, dense) {
        (Ok(op), Ok(ab)) => (op, ab),
        (Err(_), Err(_)) => return,
        (fast, dense) => panic!("{m:?} N={n}: structured is_ok={} but dense is_ok={}", fast.is_ok(), dense.is_ok()),
    };
    let which = bytes.pick(4);
    let d = bytes.step();
    let x: Vec<f64> = (0..n).map(|_| bytes.value()).collect();
    let mut y: Vec<T> = x.iter().map(|&v| T::cast(v)).collect();
    let dt = T::cast(d);
    let d = dt.widen();
    let k = 16.0 * n as f64 * roundoff::<T>();
    let floor = tiny::<T>(n);
    let (mat, solve) = match which {
        0 => (shifted(&a, n, d), false),
        1 => (transpose(&shifted(&a, n, d), n), false),
        2 => (shifted(&a, n, -d), true),
        _ => (transpose(&shifted(&a, n, -d), n), true),
    };
    match which {
        0 => op.mul_explicit(dt, &mut y),
        1 => op.mul_explicit_transpose(dt, &mut y),
        2 => op.solve_implicit(dt, &mut y),
        _ => op.solve_implicit_transpose(dt, &mut y),
    }
    let y: Vec<f64> = y.iter().map(|v| v.widen()).collect();
    if solve {
        let mut exact = x.clone();
        match reference_solve(&mat, n, &mut exact) {
            // The exact answer is at the edge of the dtype's range (ChebT's unit triangular inverse
            // grows like g^N): overflow is a right result there.
            Ok(()) if max_abs(&exact) > overflow_edge::<T>() => return,
            Ok(()) => {}
            Err(_) => panic!("{m:?} N={n} d={d}: I - dA is singular for a step d >= 0"),
        }
    }
    assert!(y.iter().all(|v| v.is_finite()), "{m:?} N={n} op={which} d={d}: non-finite result {y:?}");
    let (err, bound) = if solve {
        let residual: Vec<f64> = matvec(&mat, &y).iter().zip(&x).map(|(r, x)| r - x).collect();
        let scale: Vec<f64> = abs_matvec(&mat, &y).iter().zip(&x).map(|(s, x)| s + x.abs()).collect();
        (max_abs(&residual), k * max_abs(&scale) + rank_one_loss::<T>(m, &a, n, d) * max_abs(&x))
    } else {
        // The fast paths form (I + dA)x from the parts of A (LegS: A = -diag(l) L diag(r) + diag(h)),
        // whose diagonal entries may cancel in I + dA: the scale is |x| + |d| (|A| + 2 |diag A|) |x|.
        let want = matvec(&mat, &x);
        let diff: Vec<f64> = y.iter().zip(&want).map(|(a, b)| a - b).collect();
        let parts = if which == 1 { transpose(&a, n) } else { a.clone() };
        let scale: Vec<f64> = abs_matvec(&parts, &x)
            .iter()
            .enumerate()
            .map(|(i, s)| x[i].abs() + d * (s + 2.0 * (a[i * n + i] * x[i]).abs()))
            .collect();
        (max_abs(&diff), k * max_abs(&scale))
    };
    assert!(
        err <= bound + floor,
        "{m:?} N={n} op={which} d={d} dtype={}: error {err:e} above the bound {bound:e}",
        std::any::type_name::<T>()
    );
}

/// Differential check of `Structured`'s four operators (any measure, N in 0..=64, both dtypes).
pub fn check_structured(data: &[u8]) {
    let mut bytes = Bytes::new(data);
    let f32_path = bytes.byte() & 1 == 1;
    let n = bytes.pick(65);
    let m = match measure(&mut bytes) {
        Ok(m) => m,
        Err(_) => return,
    };
    if f32_path {
        check_operator::<f32>(&m, n, &mut bytes)
    } else {
        check_operator::<f64>(&m, n, &mut bytes)
    }
}

/// The per-step coefficient rows of a scan case: time-invariant GBT steps, LegS steps from an index,
/// a LegS reset row, or rows outside the contract (which the scan must refuse).
fn coefficient_rows(bytes: &mut Bytes<'_>, steps: usize) -> (Vec<f64>, bool) {
    let alpha = [0.0, 0.5, 1.0, 0.25][bytes.pick(4)];
    let kind = bytes.pick(8);
    let dt = bytes.step().max(1e-6);
    let k0 = bytes.pick(50) as f64;
    let mut rows = Vec::with_capacity(3 * steps);
    for j in 0..steps {
        let step = match kind {
            0..=3 => GbtStep::time_invariant(dt, alpha),
            4 | 5 if k0 + j as f64 == 0.0 => GbtStep { implicit: f64::INFINITY, explicit: 0.0, input: 1.0 },
            4 | 5 => GbtStep::legs(k0 + j as f64, alpha, hippo_core::discretize::LegsConvention::Original),
            6 => GbtStep { implicit: f64::NAN, explicit: dt, input: dt },
            _ => GbtStep { implicit: f64::NEG_INFINITY, explicit: dt, input: dt },
        };
        rows.extend([step.implicit, step.explicit, step.input]);
    }
    (rows, kind < 6 || steps == 0)
}

/// One scan against the dense recurrence c_k = Ad_k c_{k-1} + Bd_k f_k (a reset row sets
/// c_k = f_k e_0), with the error bound propagated step by step:
/// e_k <= |Ad_k| e_{k-1} + K N u |(I - a_i A)^{-1}| (|I + a_e A| |c_{k-1}| + |a_b B f_k| + |I - a_i A| |c_k|).
fn check_scan_typed<T: Real>(m: &Measure, n: usize, bytes: &mut Bytes<'_>) {
    let rows = 1 + bytes.pick(10);
    let steps = bytes.pick(41);
    let (coef, valid) = coefficient_rows(bytes, steps);
    let f: Vec<f64> = (0..steps * rows).map(|_| bytes.value()).collect();
    let c0: Vec<f64> = (0..rows * n).map(|_| bytes.value()).collect();
    let op = Structured::<T>::new(m, n).expect("a valid measure and N >= 1");
    let ft: Vec<T> = f.iter().map(|&v| T::cast(v)).collect();
    let c0t: Vec<T> = c0.iter().map(|&v| T::cast(v)).collect();
    let mut out = vec![T::zero(); steps * rows * n];
    let run = gbt_scan(&op, &ft, Some(&c0t), Coefficients::PerStep(&coef), steps, rows, true, &mut out);
    if !valid {
        assert!(run.is_err(), "{m:?}: coefficient rows outside the contract were accepted: {coef:?}");
        return;
    }
    run.unwrap_or_else(|e| panic!("{m:?} N={n}: valid scan refused: {e}"));
    let (a, b) = m.transition(n).expect("dense transition of a valid measure");
    let u = roundoff::<T>();
    let k = 16.0 * n as f64 * u;
    for r in 0..rows {
        let mut c = c0[r * n..(r + 1) * n].to_vec();
        let mut bound = 0.0f64;
        for j in 0..steps {
            let step = GbtStep { implicit: coef[3 * j], explicit: coef[3 * j + 1], input: coef[3 * j + 2] };
            let fj = f[j * rows + r];
            if step.implicit == f64::INFINITY {
                c = (0..n).map(|i| if i == 0 { fj } else { 0.0 }).collect();
                bound = 0.0;
            } else {
                let (ad, bd) = gbt_matrices(&a, &b, n, step).expect("a stable GBT step is nonsingular");
                let mut lhs_inv = vec![0.0; n * n];
                for i in 0..n {
                    lhs_inv[i * n + i] = 1.0;
                }
                for col in 0..n {
                    let mut e: Vec<f64> = (0..n).map(|i| if i == col { 1.0 } else { 0.0 }).collect();
                    reference_solve(&shifted(&a, n, -step.implicit), n, &mut e)
                        .expect("a stable GBT step is nonsingular");
                    for i in 0..n {
                        lhs_inv[i * n + col] = e[i];
                    }
                }
                let next: Vec<f64> = matvec(&ad, &c).iter().zip(&bd).map(|(v, b)| v + b * fj).collect();
                // The explicit product's error, then the solve's (backward stable: |L^{-1}| |L| |c_k|).
                let explicit = norm_inf(&shifted(&a, n, step.explicit), n) * max_abs(&c) + (step.input * fj).abs();
                let solve = norm_inf(&shifted(&a, n, -step.implicit), n) * max_abs(&next);
                let rank_one = rank_one_loss::<T>(m, &a, n, step.implicit) * max_abs(&next);
                bound = norm_inf(&ad, n) * bound + k * norm_inf(&lhs_inv, n) * (explicit + solve) + rank_one;
                c = next;
            }
            if max_abs(&c).max(bound) > overflow_edge::<T>() {
                // An unstable step (forward Euler past its limit) or its rounding error overflowed
                // the dtype: the fast path may hold inf from here on.
                break;
            }
            let got = &out[(j * rows + r) * n..(j * rows + r + 1) * n];
            let err = got.iter().zip(&c).fold(0.0f64, |e, (g, w)| e.max((g.widen() - w).abs()));
            assert!(
                err <= bound + k * max_abs(&c) + tiny::<T>(n),
                "{m:?} N={n} rows={rows} step {j}/{steps} row {r} dtype={}: error {err:e} above the bound {bound:e}",
                std::any::type_name::<T>()
            );
        }
    }
}

/// Differential check of `gbt_scan` (any measure, N in 1..=16, up to 10 rows and 40 steps, both
/// dtypes; the row count reaches the SIMD tiles, the step count the time wavefront).
pub fn check_scan(data: &[u8]) {
    let mut bytes = Bytes::new(data);
    let f32_path = bytes.byte() & 1 == 1;
    let n = 1 + bytes.pick(16);
    let m = match measure(&mut bytes) {
        Ok(m) => m,
        Err(_) => return,
    };
    if f32_path {
        check_scan_typed::<f32>(&m, n, &mut bytes)
    } else {
        check_scan_typed::<f64>(&m, n, &mut bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    /// Every committed corpus entry of `target`.
    fn replay(target: &str, check: fn(&[u8])) -> usize {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).expect("the committed seed corpus") {
            let path = entry.expect("a corpus entry").path();
            check(&std::fs::read(&path).expect("a readable corpus entry"));
            count += 1;
        }
        count
    }

    /// Seeded random byte strings for `HIPPO_FUZZ_SECONDS` (default 5) seconds: a bounded fuzz run
    /// that needs no libFuzzer. xorshift64*, so a failure reproduces from the printed case number.
    fn sweep(check: fn(&[u8])) -> u64 {
        let seconds = std::env::var("HIPPO_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5.0);
        let until = Instant::now() + Duration::from_secs_f64(seconds);
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut case = 0u64;
        while Instant::now() < until {
            let len = 8 + (case % 200) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state >> 12;
                    state ^= state << 25;
                    state ^= state >> 27;
                    (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
                })
                .collect();
            let result = std::panic::catch_unwind(|| check(&data));
            assert!(result.is_ok(), "random case {case} failed: bytes {data:?}");
            case += 1;
        }
        case
    }

    #[test]
    fn structured_corpus() {
        assert!(replay("structured", super::check_structured) > 0);
    }

    #[test]
    fn scan_corpus() {
        assert!(replay("scan", super::check_scan) > 0);
    }

    #[test]
    fn structured_random() {
        assert!(sweep(super::check_structured) > 0);
    }

    #[test]
    fn scan_random() {
        assert!(sweep(super::check_scan) > 0);
    }
}
