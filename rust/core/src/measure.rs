//! The HiPPO measures and their closed-form transition matrices: the one place where A and B are
//! defined. Every other layer (structured operators, discretisations, bindings, torch, CUDA) takes
//! its matrices from here or is tested against them.
//!
//! Convention (docs/conventions.md): the code sign, dc/dt = A c + B f with A stable. The paper
//! (Gu et al., "HiPPO", NeurIPS 2020, Theorem 1 and App. D) writes dc/dt = -A c + B f with a positive
//! A; every formula below is the paper's with A negated. For LegS the system is scale-invariant,
//! dc/dt = (1/t)(A c + B f); every other measure is time-invariant.
//!
//! To add a measure: add a variant, its name, parameters and defaults in
//! `MEASURE_PARAMS` (range checks in `Measure::from_values`), and its entries in `transition_into`. Structured O(N) operators live in `crate::structured`.

use crate::error::{square_len, try_zeros, HippoError, Result};

/// A HiPPO measure with its parameters (already validated).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// Scaled Legendre: uniform measure on [0, t]. Scale-invariant.
    LegS,
    /// Translated Legendre, orthonormal basis, uniform measure on the window [t - theta, t].
    LegT { theta: f64 },
    /// LegT in the Legendre Memory Unit's normalisation (Voelker et al. 2019), window theta.
    Lmu { theta: f64 },
    /// Translated Laguerre with tilt beta: diagonal -(1 + beta)/2, B = 1.
    /// beta = 1 is the paper's Theorem 1 LagT; beta = 0 is the older code's `lagt` (-1/2 diagonal).
    LagT { beta: f64 },
    /// Generalized Laguerre (paper App. D.3): measure (t - x)^alpha e^{-(t - x)}, tilt beta.
    GLagT { alpha: f64, beta: f64 },
    /// Translated Fourier on the window [t - theta, t], real basis [1, sqrt2 cos, sqrt2 sin, ...].
    FouT { theta: f64 },
    /// Translated Chebyshev on the window [t - theta, t] (paper App. D.5).
    ChebT { theta: f64 },
}

/// Every measure by name (in the order they are documented) with its parameters and their defaults, in the fixed order the torch ops pass them
/// (`float[] params`). The one table of names and defaults: `Measure::new` reads it, the binding
/// exports it (`hippo_rs._core.MEASURE_PARAMS`).
pub const MEASURE_PARAMS: [(&str, &[(&str, f64)]); 7] = [
    ("legs", &[]),
    ("legt", &[("theta", 1.0)]),
    ("lmu", &[("theta", 1.0)]),
    ("lagt", &[("beta", 1.0)]),
    ("glagt", &[("alpha", 0.0), ("beta", 1.0)]),
    ("fout", &[("theta", 1.0)]),
    ("chebt", &[("theta", 1.0)]),
];

/// The valid measure names, in the order they are documented.
pub fn measure_names() -> impl Iterator<Item = &'static str> {
    MEASURE_PARAMS.iter().map(|(name, _)| *name)
}

fn unknown_measure(name: &str) -> HippoError {
    let valid: Vec<&str> = measure_names().collect();
    HippoError::invalid("measure", format!("unknown measure '{name}' (valid: {})", valid.join(", ")))
}

/// The parameters `(name, default)` of measure `name`, in their fixed order.
pub fn parameters_of(name: &str) -> Result<&'static [(&'static str, f64)]> {
    MEASURE_PARAMS.iter().find(|(m, _)| *m == name).map(|(_, p)| *p).ok_or_else(|| unknown_measure(name))
}

/// The values of measure `name`'s parameters in their fixed order, defaults filled in; an unknown
/// parameter name is an error naming it (ranges are checked by `Measure::from_values`).
pub fn parameter_values(name: &str, params: &[(&str, f64)]) -> Result<Vec<f64>> {
    let allowed = parameters_of(name)?;
    for (given, _) in params {
        if !allowed.iter().any(|(a, _)| a == given) {
            let valid: Vec<&str> = allowed.iter().map(|(a, _)| *a).collect();
            let mut expected = if valid.is_empty() {
                format!("measure '{name}' takes no parameters")
            } else {
                format!("not a parameter of measure '{name}' (valid: {})", valid.join(", "))
            };
            if *given == "alpha" {
                expected.push_str("; the GBT weight is gbt_alpha");
            }
            return Err(HippoError::invalid(*given, expected));
        }
    }
    Ok(allowed
        .iter()
        .map(|(a, default)| params.iter().rev().find(|(n, _)| n == a).map(|(_, v)| *v).unwrap_or(*default))
        .collect())
}

fn check(name: &str, value: f64, ok: bool, expected: &str) -> Result<()> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(HippoError::invalid(name, format!("expected {expected}, got {value}")))
    }
}

fn theta(v: &[f64]) -> Result<f64> {
    check("theta", v[0], v[0] > 0.0, "a finite window length theta > 0")?;
    Ok(v[0])
}

impl Measure {
    /// Builds a measure from its name and `(parameter, value)` pairs, validating both.
    pub fn new(name: &str, params: &[(&str, f64)]) -> Result<Self> {
        Measure::from_values(name, &parameter_values(name, params)?)
    }

    /// Builds a measure from its name and its parameter values in the order of `MEASURE_PARAMS`,
    /// validating the ranges.
    pub fn from_values(name: &str, v: &[f64]) -> Result<Self> {
        let want = parameters_of(name)?.len();
        if v.len() != want {
            return Err(HippoError::invalid(
                "params",
                format!("measure '{name}' takes {want} parameters, got {}", v.len()),
            ));
        }
        match name {
            "legs" => Ok(Measure::LegS),
            "legt" => Ok(Measure::LegT { theta: theta(v)? }),
            "lmu" => Ok(Measure::Lmu { theta: theta(v)? }),
            "fout" => Ok(Measure::FouT { theta: theta(v)? }),
            "chebt" => Ok(Measure::ChebT { theta: theta(v)? }),
            "lagt" => {
                check("beta", v[0], v[0] >= 0.0, "a finite tilt beta >= 0")?;
                Ok(Measure::LagT { beta: v[0] })
            }
            "glagt" => {
                // B carries Gamma(1 - alpha)^(-1/2): real and finite only for -1 < alpha < 1.
                check("alpha", v[0], v[0] > -1.0 && v[0] < 1.0, "-1 < alpha < 1")?;
                check("beta", v[1], v[1] > 0.0, "a finite tilt beta > 0")?;
                Ok(Measure::GLagT { alpha: v[0], beta: v[1] })
            }
            _ => Err(unknown_measure(name)),
        }
    }

    /// The parameter values in the order of `MEASURE_PARAMS`.
    pub fn values(&self) -> Vec<f64> {
        match *self {
            Measure::LegS => vec![],
            Measure::LegT { theta } | Measure::Lmu { theta } | Measure::FouT { theta } | Measure::ChebT { theta } => {
                vec![theta]
            }
            Measure::LagT { beta } => vec![beta],
            Measure::GLagT { alpha, beta } => vec![alpha, beta],
        }
    }

    /// The measure's name, as accepted by `Measure::new`.
    pub fn name(&self) -> &'static str {
        match self {
            Measure::LegS => "legs",
            Measure::LegT { .. } => "legt",
            Measure::Lmu { .. } => "lmu",
            Measure::LagT { .. } => "lagt",
            Measure::GLagT { .. } => "glagt",
            Measure::FouT { .. } => "fout",
            Measure::ChebT { .. } => "chebt",
        }
    }

    /// True for LegS, whose dynamics are (1/t)(A c + B f); false for the time-invariant measures.
    pub fn is_scale_invariant(&self) -> bool {
        matches!(self, Measure::LegS)
    }

    /// Dense (A, B) of order `n`: A row-major (n * n), B of length n, in the code sign.
    pub fn transition(&self, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        if n == 0 {
            return Err(HippoError::invalid("N", "expected a memory order N >= 1, got 0"));
        }
        let mut a = try_zeros::<f64>(square_len(n, "N")?, "the transition matrix A")?;
        let mut b = try_zeros::<f64>(n, "the input vector B")?;
        self.input_into(&mut b);
        self.transition_into(n, &mut a);
        Ok((a, b))
    }

    /// B of order `n` alone, in O(N) (what the structured operators use).
    pub fn input(&self, n: usize) -> Result<Vec<f64>> {
        let mut b = try_zeros::<f64>(n, "the input vector B")?;
        self.input_into(&mut b);
        Ok(b)
    }

    /// B, the closed forms of the paper (same sources as the A of each measure in `transition_into`).
    fn input_into(&self, b: &mut [f64]) {
        let n = b.len();
        let r = |i: usize| ((2 * i + 1) as f64).sqrt();
        let sign = |i: usize| if i.is_multiple_of(2) { 1.0 } else { -1.0 };
        match *self {
            // B_n = sqrt(2n+1) (LegS), sqrt(2n+1)/theta (LegT).
            Measure::LegS => b.iter_mut().enumerate().for_each(|(i, x)| *x = r(i)),
            Measure::LegT { theta } => b.iter_mut().enumerate().for_each(|(i, x)| *x = r(i) / theta),
            // B_n = (2n+1) (-1)^n / theta.
            Measure::Lmu { theta } => {
                b.iter_mut().enumerate().for_each(|(i, x)| *x = (2 * i + 1) as f64 * sign(i) / theta)
            }
            Measure::LagT { .. } => b.fill(1.0),
            // B = Gamma(1-alpha)^(-1/2) beta^((1-alpha)/2) L^{-1} [binom(n+alpha, n)]_n.
            Measure::GLagT { alpha, beta } => {
                let lam = glagt_lambda(n, alpha);
                let scale = (-0.5 * ln_gamma(1.0 - alpha)).exp() * beta.powf((1.0 - alpha) / 2.0);
                let mut binom = 1.0; // binom(n + alpha, n) = prod_{j=1..n} (j + alpha) / j
                for i in 0..n {
                    if i > 0 {
                        binom *= (i as f64 + alpha) / i as f64;
                    }
                    b[i] = scale * binom / lam[i];
                }
            }
            // B = v / theta, v = [1, sqrt2, 0, sqrt2, 0, ...].
            Measure::FouT { theta } => b.iter_mut().zip(fout_v(n)).for_each(|(x, v)| *x = v / theta),
            // B = (2^{3/2}/pi) [1, sqrt2, sqrt2, ...] / theta.
            Measure::ChebT { theta } => {
                let c = 2.0f64.powf(1.5) / std::f64::consts::PI;
                b.iter_mut()
                    .enumerate()
                    .for_each(|(i, x)| *x = c * if i == 0 { 1.0 } else { std::f64::consts::SQRT_2 } / theta)
            }
        }
    }

    fn transition_into(&self, n: usize, a: &mut [f64]) {
        let r = |i: usize| ((2 * i + 1) as f64).sqrt();
        let sign = |i: usize| if i.is_multiple_of(2) { 1.0 } else { -1.0 };
        match *self {
            // Paper Thm 1 / App. D.3: A_nk = sqrt(2n+1) sqrt(2k+1) (n > k), n + 1 (n = k); B_n = sqrt(2n+1).
            Measure::LegS => {
                for i in 0..n {
                    for k in 0..i {
                        a[i * n + k] = -r(i) * r(k);
                    }
                    a[i * n + i] = -((i + 1) as f64);
                }
            }
            // Paper Thm 1 / App. D.2: A_nk = (1/theta) sqrt(2n+1) sqrt(2k+1) * (1 if k <= n else (-1)^(n-k)).
            Measure::LegT { theta } => {
                for i in 0..n {
                    for k in 0..n {
                        let s = if k <= i { 1.0 } else { sign(k - i) };
                        a[i * n + k] = -r(i) * r(k) * s / theta;
                    }
                }
            }
            // Voelker et al. 2019, paper App. D.2: A_nk = (2n+1)/theta * ((-1)^(n-k+1) if n >= k else -1),
            // B_n = (2n+1) (-1)^n / theta (already in the code sign).
            Measure::Lmu { theta } => {
                for i in 0..n {
                    let q = (2 * i + 1) as f64 / theta;
                    for k in 0..n {
                        let s = if i >= k { -sign(i - k) } else { -1.0 };
                        a[i * n + k] = q * s;
                    }
                }
            }
            // Paper Thm 1 (beta = 1): A = -tril(ones); tilt beta moves the diagonal to -(1+beta)/2.
            Measure::LagT { beta } => {
                for i in 0..n {
                    for k in 0..i {
                        a[i * n + k] = -1.0;
                    }
                    a[i * n + i] = -(1.0 + beta) / 2.0;
                }
            }
            // Paper App. D.3: A = -L^{-1} M L with M = (1+beta)/2 on the diagonal, 1 below;
            // L = diag(sqrt(Gamma(n+alpha+1)/Gamma(n+1))); B = Gamma(1-alpha)^(-1/2) beta^((1-alpha)/2)
            // L^{-1} [binom(n+alpha, n)]_n.
            Measure::GLagT { alpha, beta } => {
                let lam = glagt_lambda(n, alpha);
                for i in 0..n {
                    for k in 0..i {
                        a[i * n + k] = -lam[k] / lam[i];
                    }
                    a[i * n + i] = -(1.0 + beta) / 2.0;
                }
            }
            // Real form of the paper's App. D.4 (FouT), derived in docs/conventions.md:
            // basis phi_0 = 1, phi_{2j-1} = sqrt2 cos(2 pi j (t-x)/theta), phi_{2j} = sqrt2 sin(...);
            // with v = [1, sqrt2, 0, sqrt2, 0, ...]: A = -(1/theta) v v^T + rotation blocks
            // (A[cos_j, sin_j] = -2 pi j/theta, A[sin_j, cos_j] = +2 pi j/theta); B = v/theta.
            Measure::FouT { theta } => {
                let v = fout_v(n);
                for i in 0..n {
                    for k in 0..n {
                        a[i * n + k] = -v[i] * v[k] / theta;
                    }
                }
                // Rotation block of frequency j on (cos_j, sin_j) = (2j - 1, 2j); a trailing cosine
                // without its sine (even N) keeps only the rank-one part.
                for j in 1..=(n - 1) / 2 {
                    let w = 2.0 * std::f64::consts::PI * j as f64 / theta;
                    a[(2 * j - 1) * n + 2 * j] -= w;
                    a[2 * j * n + 2 * j - 1] += w;
                }
            }
            // Paper App. D.5: paper sign
            // dc/dt = -(1/theta) A c + (1/theta) B f, A_nk = 4n (1 <= k < n, n-k odd),
            // 4n/sqrt2 (k = 0, n odd); B = (2^{3/2}/pi) [1, sqrt2, sqrt2, ...].
            Measure::ChebT { theta } => {
                for i in 0..n {
                    for k in 0..i {
                        if (i - k) % 2 == 1 {
                            let v = if k == 0 { 4.0 * i as f64 / 2f64.sqrt() } else { 4.0 * i as f64 };
                            a[i * n + k] = -v / theta;
                        }
                    }
                }
            }
        }
    }
}

/// GLagT's Lambda = diag(sqrt(Gamma(n + alpha + 1) / Gamma(n + 1))) (paper App. D.3).
pub fn glagt_lambda(n: usize, alpha: f64) -> Vec<f64> {
    (0..n).map(|i| (0.5 * (ln_gamma(i as f64 + alpha + 1.0) - ln_gamma(i as f64 + 1.0))).exp()).collect()
}

/// FouT's v = phi(t, t) = phi(t, t - theta): 1 for the constant, sqrt2 for cosines, 0 for sines.
pub fn fout_v(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| match i {
            0 => 1.0,
            _ if i % 2 == 1 => std::f64::consts::SQRT_2,
            _ => 0.0,
        })
        .collect()
}

/// ln Gamma(x) for x > 0 (Lanczos, g = 7, n = 9; relative error ~1e-15), used by GLagT only.
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Gamma(x) Gamma(1-x) = pi / sin(pi x).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut acc = COEF[0];
    for (i, c) in COEF.iter().enumerate().skip(1) {
        acc += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + acc.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legs_is_lower_triangular_with_diagonal_minus_n_plus_one() {
        let (a, b) = Measure::LegS.transition(5).unwrap();
        for i in 0..5 {
            assert_eq!(a[i * 5 + i], -((i + 1) as f64));
            for k in i + 1..5 {
                assert_eq!(a[i * 5 + k], 0.0);
            }
            assert!((b[i] - ((2 * i + 1) as f64).sqrt()).abs() < 1e-15);
        }
    }

    #[test]
    fn column_zero_is_minus_b_for_legendre_measures() {
        for m in [Measure::LegS, Measure::LegT { theta: 2.5 }, Measure::Lmu { theta: 0.7 }] {
            let n = 9;
            let (a, b) = m.transition(n).unwrap();
            for i in 0..n {
                assert!((a[i * n] + b[i]).abs() < 1e-12 * b[i].abs().max(1.0), "{m:?} row {i}");
            }
        }
    }

    #[test]
    fn glagt_alpha_zero_equals_lagt_up_to_sqrt_beta_on_b() {
        let beta = 0.3;
        let (a1, b1) = Measure::GLagT { alpha: 0.0, beta }.transition(6).unwrap();
        let (a2, b2) = Measure::LagT { beta }.transition(6).unwrap();
        for (x, y) in a1.iter().zip(&a2) {
            assert!((x - y).abs() < 1e-14);
        }
        for (x, y) in b1.iter().zip(&b2) {
            assert!((x - beta.sqrt() * y).abs() < 1e-14);
        }
    }

    #[test]
    fn fout_has_rank_one_part_and_rotation_blocks() {
        let (n, theta) = (6, 2.0);
        let (a, b) = Measure::FouT { theta }.transition(n).unwrap();
        let v = fout_v(n);
        for i in 0..n {
            assert_eq!(b[i], v[i] / theta);
            for k in 0..n {
                let w = |j: usize| 2.0 * std::f64::consts::PI * j as f64 / theta;
                let rotation = match (i, k) {
                    (1, 2) => -w(1),
                    (2, 1) => w(1),
                    (3, 4) => -w(2),
                    (4, 3) => w(2),
                    _ => 0.0,
                };
                assert!((a[i * n + k] - (rotation - v[i] * v[k] / theta)).abs() < 1e-14, "({i}, {k})");
            }
        }
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut f = 1.0f64;
        for n in 1..30 {
            assert!((ln_gamma(n as f64) - f.ln()).abs() < 1e-12 * f.ln().abs().max(1.0));
            f *= n as f64;
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-14);
    }

    #[test]
    fn bad_parameters_are_named() {
        let e = Measure::new("legt", &[("theta", -1.0)]).unwrap_err();
        assert!(e.to_string().starts_with("theta:"));
        let e = Measure::new("legs", &[("theta", 1.0)]).unwrap_err();
        assert!(e.to_string().starts_with("theta:"));
        let e = Measure::new("nope", &[]).unwrap_err();
        assert!(e.to_string().contains("legs, legt"));
        assert!(Measure::LegS.transition(0).is_err());
        assert!(Measure::LegS.transition(usize::MAX / 2).is_err());
    }
}
