//! Discretisation of dc/dt = A c + B f: the methods, the coefficients of a generalized bilinear
//! transform (GBT) step, and dense reference discretised matrices (O(N^3), float64).
//!
//! Every GBT step, dense or structured, is
//!     (I - a_i A) c+ = (I + a_e A) c + b f,         (b = a_b B)
//! with `GbtStep { implicit: a_i, explicit: a_e, input: a_b }`. For a time-invariant measure with
//! step dt and weight alpha: a_i = alpha dt, a_e = (1 - alpha) dt, a_b = dt (paper App. B.3).
//! LegS (dc/dt = (1/t)(A c + B f)) at step index k >= 1 (k samples already absorbed, f the next one):
//! - `LegsConvention::Original` (the original HiPPO code, its C++ kernels and cells):
//!   a_i = alpha/k, a_e = (1 - alpha)/k, a_b = 1/k -- the same 1/k on both sides; this is the
//!   timestamped step of the paper's code with timestamps 0, 1, 2, ... (delta = (t1 - t0)/t1).
//! - `LegsConvention::Paper` (paper App. B.3, GBT of the time-varying ODE with samples at t = 1, 2, ...):
//!   a_i = alpha/(k+1), a_e = (1 - alpha)/k, a_b = alpha/(k+1) + (1 - alpha)/k.
//!
//! In both, the first sample (k = 0) initialises the state to f e_0, the exact projection of a
//! constant, and a constant input is an exact fixed point c = e_0 (because A e_0 = -B).
//! ZOH is exact: LegS over [k, k+1] in log-time, A_k = expm(A ln((k+1)/k)), B_k = A^{-1}(A_k - I) B.

use crate::dense::{expm, identity, matmul, solve};
use crate::error::{HippoError, Result};
use crate::measure::Measure;

/// A discretisation method. `Gbt(alpha)` covers the whole family; the named ones are its members.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    ForwardEuler,
    BackwardEuler,
    Bilinear,
    Gbt(f64),
    Zoh,
}

/// The canonical method names (the first spelling of each in `METHOD_SPELLINGS`, and "gbt").
pub const METHOD_NAMES: [&str; 5] = ["forward_euler", "backward_euler", "bilinear", "gbt", "zoh"];

/// Every accepted spelling of a named method; "gbt" (weight from `gbt_alpha`) is the one more name.
pub const METHOD_SPELLINGS: [(&str, Method); 8] = [
    ("forward_euler", Method::ForwardEuler),
    ("euler", Method::ForwardEuler),
    ("forward", Method::ForwardEuler),
    ("backward_euler", Method::BackwardEuler),
    ("backward", Method::BackwardEuler),
    ("bilinear", Method::Bilinear),
    ("tustin", Method::Bilinear),
    ("zoh", Method::Zoh),
];

impl Method {
    /// Parses a method name; `gbt_alpha`, the GBT weight, is required by (and only allowed with) "gbt".
    pub fn new(name: &str, gbt_alpha: Option<f64>) -> Result<Self> {
        if name == "gbt" {
            let a =
                gbt_alpha.ok_or_else(|| HippoError::invalid("gbt_alpha", "method 'gbt' needs gbt_alpha in [0, 1]"))?;
            if !(0.0..=1.0).contains(&a) {
                return Err(HippoError::invalid("gbt_alpha", format!("expected 0 <= gbt_alpha <= 1, got {a}")));
            }
            return Ok(Method::Gbt(a));
        }
        let method = METHOD_SPELLINGS.iter().find(|(n, _)| *n == name).map(|(_, m)| *m).ok_or_else(|| {
            HippoError::invalid(
                "method",
                format!(
                    "unknown method '{name}' (valid: {}; aliases euler, forward, backward, tustin)",
                    METHOD_NAMES.join(", ")
                ),
            )
        })?;
        if let Some(a) = gbt_alpha {
            return Err(HippoError::invalid(
                "gbt_alpha",
                format!("gbt_alpha is only used with method='gbt' (got gbt_alpha={a} with method='{name}')"),
            ));
        }
        Ok(method)
    }

    /// The GBT weight alpha of the implicit side, or None for ZOH.
    pub fn alpha(&self) -> Option<f64> {
        match *self {
            Method::ForwardEuler => Some(0.0),
            Method::BackwardEuler => Some(1.0),
            Method::Bilinear => Some(0.5),
            Method::Gbt(a) => Some(a),
            Method::Zoh => None,
        }
    }

    /// The GBT weight, or an error naming `method` for ZOH (which has no structured O(N) step).
    pub fn gbt_alpha(&self) -> Result<f64> {
        self.alpha().ok_or_else(|| {
            HippoError::invalid(
                "method",
                "'zoh' has no O(N) structured step; use a GBT method or the dense discretised matrices",
            )
        })
    }
}

/// Which LegS step-index convention (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegsConvention {
    #[default]
    Original,
    Paper,
}

impl LegsConvention {
    pub fn new(name: &str) -> Result<Self> {
        match name {
            "original" => Ok(LegsConvention::Original),
            "paper" => Ok(LegsConvention::Paper),
            _ => Err(HippoError::invalid(
                "convention",
                format!("unknown LegS convention '{name}' (valid: original, paper)"),
            )),
        }
    }
}

/// Coefficients of one GBT step (I - implicit A) c+ = (I + explicit A) c + input B f.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GbtStep {
    pub implicit: f64,
    pub explicit: f64,
    pub input: f64,
}

impl GbtStep {
    /// A time-invariant step of size dt with weight alpha.
    pub fn time_invariant(dt: f64, alpha: f64) -> Self {
        GbtStep { implicit: alpha * dt, explicit: (1.0 - alpha) * dt, input: dt }
    }

    /// LegS at step index k >= 1 (k samples already absorbed).
    pub fn legs(k: f64, alpha: f64, convention: LegsConvention) -> Self {
        match convention {
            LegsConvention::Original => GbtStep { implicit: alpha / k, explicit: (1.0 - alpha) / k, input: 1.0 / k },
            LegsConvention::Paper => GbtStep {
                implicit: alpha / (k + 1.0),
                explicit: (1.0 - alpha) / k,
                input: alpha / (k + 1.0) + (1.0 - alpha) / k,
            },
        }
    }

    /// Timestamped LegS from time t0 >= 0 to t1 > t0 (the paper's irregular-sampling step).
    /// Original: delta = (t1 - t0)/t1 on both sides. Paper: (t1 - t0)/t1 implicit, (t1 - t0)/t0 explicit.
    /// Returns None when the step is the initialisation (t1 = 0 for Original, t0 = 0 for Paper).
    pub fn legs_timestamped(t0: f64, t1: f64, alpha: f64, convention: LegsConvention) -> Option<Self> {
        let dt = t1 - t0;
        match convention {
            LegsConvention::Original if t1 == 0.0 => None,
            LegsConvention::Original => {
                let d = dt / t1;
                Some(GbtStep { implicit: alpha * d, explicit: (1.0 - alpha) * d, input: d })
            }
            LegsConvention::Paper if t0 == 0.0 => None,
            LegsConvention::Paper => Some(GbtStep {
                implicit: alpha * dt / t1,
                explicit: (1.0 - alpha) * dt / t0,
                input: alpha * dt / t1 + (1.0 - alpha) * dt / t0,
            }),
        }
    }
}

/// The LegS convention names.
pub const CONVENTION_NAMES: [&str; 2] = ["original", "paper"];

/// Validates a step size: finite and > 0.
pub fn check_dt(dt: f64) -> Result<()> {
    if dt.is_finite() && dt > 0.0 {
        Ok(())
    } else {
        Err(HippoError::invalid("dt", format!("expected a finite step dt > 0, got {dt}")))
    }
}

/// Dense GBT step matrices: Ad = (I - a_i A)^{-1}(I + a_e A), Bd = a_b (I - a_i A)^{-1} B.
pub fn gbt_matrices(a: &[f64], b: &[f64], n: usize, step: GbtStep) -> Result<(Vec<f64>, Vec<f64>)> {
    let id = identity(n)?;
    let lhs: Vec<f64> = id.iter().zip(a).map(|(i, a)| i - step.implicit * a).collect();
    // Solve for [Ad | Bd] at once: the right-hand side is n x (n + 1).
    let mut rhs = vec![0.0; n * (n + 1)];
    for i in 0..n {
        for k in 0..n {
            rhs[i * (n + 1) + k] = id[i * n + k] + step.explicit * a[i * n + k];
        }
        rhs[i * (n + 1) + n] = step.input * b[i];
    }
    solve(&lhs, &mut rhs, n, n + 1, "I - alpha dt A")?;
    Ok(split_augmented(&rhs, n))
}

/// Dense ZOH over a (log-)time span tau: Ad = e^{tau A}, Bd = A^{-1}(e^{tau A} - I) B, computed as
/// the exponential of the augmented matrix [[tau A, tau B], [0, 0]] so a singular A is fine.
pub fn zoh_matrices(a: &[f64], b: &[f64], n: usize, tau: f64) -> Result<(Vec<f64>, Vec<f64>)> {
    let m = n + 1;
    let mut aug = vec![0.0; m * m];
    for i in 0..n {
        for k in 0..n {
            aug[i * m + k] = tau * a[i * n + k];
        }
        aug[i * m + n] = tau * b[i];
    }
    let e = expm(&aug, m)?;
    let mut ad = vec![0.0; n * n];
    let mut bd = vec![0.0; n];
    for i in 0..n {
        ad[i * n..(i + 1) * n].copy_from_slice(&e[i * m..i * m + n]);
        bd[i] = e[i * m + n];
    }
    Ok((ad, bd))
}

fn split_augmented(x: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut ad = vec![0.0; n * n];
    let mut bd = vec![0.0; n];
    for i in 0..n {
        ad[i * n..(i + 1) * n].copy_from_slice(&x[i * (n + 1)..i * (n + 1) + n]);
        bd[i] = x[i * (n + 1) + n];
    }
    (ad, bd)
}

/// Dense discretisation of a time-invariant system with step dt (any method).
pub fn discretize(a: &[f64], b: &[f64], n: usize, dt: f64, method: Method) -> Result<(Vec<f64>, Vec<f64>)> {
    check_dt(dt)?;
    match method.alpha() {
        Some(alpha) => gbt_matrices(a, b, n, GbtStep::time_invariant(dt, alpha)),
        None => zoh_matrices(a, b, n, dt),
    }
}

/// Dense LegS transition at step index k >= 1 (see the module docs for the conventions).
pub fn legs_step_matrices(
    n: usize,
    k: u64,
    method: Method,
    convention: LegsConvention,
) -> Result<(Vec<f64>, Vec<f64>)> {
    if k < 1 {
        return Err(HippoError::invalid("t", "expected a LegS step index t >= 1 (t = 0 is the initialisation)"));
    }
    let (a, b) = Measure::LegS.transition(n)?;
    let k = k as f64;
    match method.alpha() {
        Some(alpha) => gbt_matrices(&a, &b, n, GbtStep::legs(k, alpha, convention)),
        None => zoh_matrices(&a, &b, n, ((k + 1.0) / k).ln()),
    }
}

/// Applies dense (Ad, Bd) to one state: c+ = Ad c + Bd f. Reference use only.
pub fn apply_dense(ad: &[f64], bd: &[f64], c: &[f64], f: f64) -> Vec<f64> {
    let n = bd.len();
    let mut out = matmul(ad, c, n, 1);
    for (o, b) in out.iter_mut().zip(bd) {
        *o += b * f;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_input_is_a_fixed_point_of_every_legs_step() {
        let n = 12;
        let mut e0 = vec![0.0; n];
        e0[0] = 1.0;
        for method in [Method::ForwardEuler, Method::BackwardEuler, Method::Bilinear, Method::Gbt(0.3), Method::Zoh] {
            for conv in [LegsConvention::Original, LegsConvention::Paper] {
                for k in [1u64, 2, 7, 1000] {
                    let (ad, bd) = legs_step_matrices(n, k, method, conv).unwrap();
                    let c = apply_dense(&ad, &bd, &e0, 1.0);
                    for (i, x) in c.iter().enumerate() {
                        let want = if i == 0 { 1.0 } else { 0.0 };
                        assert!((x - want).abs() < 1e-12, "{method:?} {conv:?} k={k} i={i}: {x}");
                    }
                }
            }
        }
    }

    #[test]
    fn zoh_of_scalar_decay() {
        let (ad, bd) = discretize(&[-2.0], &[3.0], 1, 0.1, Method::Zoh).unwrap();
        assert!((ad[0] - (-0.2f64).exp()).abs() < 1e-15);
        assert!((bd[0] - 3.0 * (1.0 - (-0.2f64).exp()) / 2.0).abs() < 1e-15);
    }

    #[test]
    fn bad_methods_and_steps() {
        assert!(Method::new("gbt", None).is_err());
        assert!(Method::new("gbt", Some(1.5)).is_err());
        assert!(Method::new("bilinear", Some(0.5)).is_err());
        assert!(Method::new("rk4", None).is_err());
        assert!(check_dt(f64::NAN).is_err() && check_dt(-1.0).is_err() && check_dt(0.0).is_err());
    }
}
