//! The per-step coefficient rows (a_i, a_e, a_b) of the GBT recurrence
//!     (I - a_i A) c_k = (I + a_e A) c_{k-1} + a_b B f_k
//! for whole scans and single steps: step indices, step sizes and timestamps in, rows out. This is
//! the one definition every front end uses (numpy scans and updates, `Memory`, the torch ops; the
//! torch device-side copy in `hippo_rs.torch._coef` is tied to it by a test).
//!
//! - time-invariant measure, step dt, weight alpha: (alpha dt, (1 - alpha) dt, dt) (paper App. B.3);
//!   timestamped from t0 to t1: dt -> dt (t1 - t0);
//! - LegS at step index k (k samples already absorbed): `GbtStep::legs` (both conventions);
//!   timestamped from t0 to t1: `GbtStep::legs_timestamped`;
//! - the LegS first sample (k = 0; timestamped: nothing absorbed yet, t0 = NaN, or the
//!   convention's initialisation) is the reset row `RESET` = (+inf, 0, 0): c_k = f_k e_0.

use crate::discretize::{check_dt, GbtStep, LegsConvention, Method};
use crate::error::{try_zeros, HippoError, Result};
use crate::measure::Measure;

/// The reset row: a_i = +inf makes the kernels set c_k = f_k e_0 (the LegS initialisation).
pub const RESET: [f64; 3] = [f64::INFINITY, 0.0, 0.0];

fn row(step: GbtStep) -> [f64; 3] {
    [step.implicit, step.explicit, step.input]
}

/// The step size of a scan or step: a time-invariant measure needs `dt` unless `timestamped` (then
/// dt scales the time differences, default 1); LegS accepts but ignores a valid `dt` (scale invariance).
pub fn step_size(measure: &Measure, dt: Option<f64>, timestamped: bool) -> Result<f64> {
    if let Some(h) = dt {
        check_dt(h)?;
    }
    match dt {
        Some(h) => Ok(h),
        None if measure.is_scale_invariant() || timestamped => Ok(1.0),
        None => Err(HippoError::invalid(
            "dt",
            format!("measure '{}' is time-invariant and needs a step dt > 0", measure.name()),
        )),
    }
}

/// The time of the state before each timestamp (steps x width, row-major): `t_prev` (width
/// values; None: nothing absorbed yet) for the first step, then the previous timestamp. NaN marks
/// "nothing absorbed yet" for LegS (`scale_invariant`); a time-invariant measure starts at time 0.
/// Checks: finite times, LegS times >= 0, strictly increasing along the steps, after t_prev.
pub fn previous_times(
    scale_invariant: bool,
    timestamps: &[f64],
    width: usize,
    t_prev: Option<&[f64]>,
) -> Result<Vec<f64>> {
    if width == 0 || !timestamps.len().is_multiple_of(width) {
        return Err(HippoError::invalid(
            "timestamps",
            format!("expected (L, {width}) values, got {}", timestamps.len()),
        ));
    }
    if let Some(p) = t_prev {
        if p.len() != width {
            return Err(HippoError::invalid("t_prev", format!("expected {width} times, got {}", p.len())));
        }
        if p.iter().any(|x| x.is_infinite()) {
            return Err(HippoError::invalid("t_prev", "expected finite times (or NaN: nothing absorbed), got inf"));
        }
        if scale_invariant && p.iter().any(|&x| x < 0.0) {
            return Err(HippoError::invalid("t_prev", "LegS times must be >= 0"));
        }
    }
    if timestamps.iter().any(|x| !x.is_finite()) {
        return Err(HippoError::invalid("timestamps", "expected finite values, got NaN or inf"));
    }
    if scale_invariant && timestamps.iter().any(|&x| x < 0.0) {
        return Err(HippoError::invalid("timestamps", "LegS times must be >= 0 (time 0 is the start of the memory)"));
    }
    let fresh = if scale_invariant { f64::NAN } else { 0.0 };
    let mut prev = try_zeros::<f64>(timestamps.len(), "the previous times")?;
    for (j, (&t1, t0)) in timestamps.iter().zip(prev.iter_mut()).enumerate() {
        let k = j / width;
        *t0 = if k > 0 {
            timestamps[j - width]
        } else {
            match t_prev.map(|p| p[j % width]) {
                Some(p) if !p.is_nan() => p,
                _ => fresh,
            }
        };
        if t1 <= *t0 {
            let what = if k > 0 { "the previous timestamp" } else { "t_prev (default: 0, the time of c0)" };
            return Err(HippoError::invalid(
                "timestamps",
                format!("expected strictly increasing times, each after {what}; got {t1} after {t0} (step {k})"),
            ));
        }
    }
    Ok(prev)
}

/// How the rows of one measure, method, step size and LegS convention are made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowRule {
    /// LegS (dc/dt = (A c + B f)/t): rows from step indices or times; otherwise a step size.
    pub scale_invariant: bool,
    /// The GBT weight of the implicit side.
    pub alpha: f64,
    /// The step size of a time-invariant measure (the scale of timestamp differences).
    pub dt: f64,
    pub convention: LegsConvention,
}

impl RowRule {
    /// Validates the arguments of a GBT scan or step (no matrices are built; `dt` as in
    /// `step_size`). ZOH has no rows: an error naming `method`.
    pub fn new(
        measure: &Measure,
        method: Method,
        dt: Option<f64>,
        convention: LegsConvention,
        timestamped: bool,
    ) -> Result<Self> {
        let alpha = method.gbt_alpha()?;
        let dt = step_size(measure, dt, timestamped)?;
        Ok(RowRule { scale_invariant: measure.is_scale_invariant(), alpha, dt, convention })
    }

    /// The row of the step that absorbs sample k (k samples already absorbed): LegS's
    /// `GbtStep::legs(k)` (k = 0: `RESET`), or the constant row of a time-invariant measure.
    pub fn indexed(&self, k: u64) -> [f64; 3] {
        if !self.scale_invariant {
            return row(GbtStep::time_invariant(self.dt, self.alpha));
        }
        if k == 0 {
            return RESET;
        }
        row(GbtStep::legs(k as f64, self.alpha, self.convention))
    }

    /// The row of the step from time t0 (the state's; NaN: nothing absorbed yet) to t1 > t0.
    pub fn timestamped(&self, t0: f64, t1: f64) -> [f64; 3] {
        if !self.scale_invariant {
            return row(GbtStep::time_invariant(self.dt * (t1 - t0), self.alpha));
        }
        if t0.is_nan() {
            return RESET;
        }
        GbtStep::legs_timestamped(t0, t1, self.alpha, self.convention).map_or(RESET, row)
    }

    /// Rows of `steps` samples from step indices: `t` holds one start index shared by the batch
    /// (rows (steps, 3)) or one per batch row (rows (steps, R, 3)); step k of row r is at t[r] + k.
    pub fn index_rows(&self, steps: usize, t: &[u64], per_row: bool) -> Result<Vec<f64>> {
        let width = if per_row { t.len() } else { 1 };
        if !per_row && t.len() != 1 {
            return Err(HippoError::invalid("t", format!("expected one step index, got {}", t.len())));
        }
        for &start in t {
            if start.checked_add(steps as u64).is_none_or(|end| end > i64::MAX as u64) {
                return Err(HippoError::invalid(
                    "t",
                    format!("expected step indices below 2**63, got {start} + {steps}"),
                ));
            }
        }
        let mut out = try_zeros::<f64>(steps * width * 3, "the coefficient rows")?;
        for (j, slot) in out.chunks_exact_mut(3).enumerate() {
            let (k, r) = (j / width, j % width);
            slot.copy_from_slice(&self.indexed(t[r] + k as u64));
        }
        Ok(out)
    }

    /// Rows from absolute times `timestamps` (steps x width, row-major) and the times of the states
    /// before them (see `previous_times`, which also checks them).
    pub fn timestamp_rows(&self, timestamps: &[f64], width: usize, t_prev: Option<&[f64]>) -> Result<Vec<f64>> {
        let prev = previous_times(self.scale_invariant, timestamps, width, t_prev)?;
        let mut out = try_zeros::<f64>(timestamps.len() * 3, "the coefficient rows")?;
        for ((&t1, &t0), slot) in timestamps.iter().zip(&prev).zip(out.chunks_exact_mut(3)) {
            slot.copy_from_slice(&self.timestamped(t0, t1));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(measure: Measure, dt: Option<f64>, conv: LegsConvention) -> RowRule {
        RowRule::new(&measure, Method::Gbt(0.3), dt, conv, false).unwrap()
    }

    #[test]
    fn legs_indices_match_the_step_formulas() {
        for conv in [LegsConvention::Original, LegsConvention::Paper] {
            let r = rule(Measure::LegS, None, conv);
            let rows = r.index_rows(4, &[0], false).unwrap();
            assert_eq!(&rows[..3], &RESET);
            for k in 1..4 {
                assert_eq!(&rows[3 * k..3 * k + 3], &row(GbtStep::legs(k as f64, 0.3, conv)));
            }
        }
    }

    #[test]
    fn regular_timestamps_equal_step_indices_in_the_original_convention() {
        let r = rule(Measure::LegS, None, LegsConvention::Original);
        let times: Vec<f64> = (0..6).map(|k| k as f64 + 1.0).collect();
        let stamped = r.timestamp_rows(&times, 1, Some(&[0.0])).unwrap();
        let indexed = r.index_rows(6, &[1], false).unwrap();
        for (a, b) in stamped.iter().zip(&indexed) {
            assert!((a - b).abs() < 1e-15);
        }
    }

    #[test]
    fn time_invariant_rows_scale_with_time_differences() {
        let r = RowRule::new(&Measure::LegT { theta: 1.0 }, Method::Bilinear, None, LegsConvention::Original, true)
            .unwrap();
        let rows = r.timestamp_rows(&[0.5, 2.0], 1, None).unwrap();
        assert_eq!(rows, vec![0.25, 0.25, 0.5, 0.75, 0.75, 1.5]);
    }

    #[test]
    fn bad_arguments_are_named() {
        let legt = Measure::LegT { theta: 1.0 };
        let conv = LegsConvention::Original;
        assert!(RowRule::new(&legt, Method::Bilinear, None, conv, false).unwrap_err().to_string().starts_with("dt:"));
        assert!(RowRule::new(&legt, Method::Zoh, Some(0.1), conv, false)
            .unwrap_err()
            .to_string()
            .starts_with("method:"));
        let r = rule(Measure::LegS, None, conv);
        assert!(r.timestamp_rows(&[1.0, 1.0], 1, None).is_err());
        assert!(r.timestamp_rows(&[f64::NAN], 1, None).is_err());
        assert!(r.timestamp_rows(&[-1.0], 1, None).is_err());
        assert!(r.timestamp_rows(&[1.0], 1, Some(&[2.0])).is_err());
        assert!(r.index_rows(2, &[u64::MAX], false).is_err());
    }
}
