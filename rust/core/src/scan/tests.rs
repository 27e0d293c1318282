//! Scans against the dense float64 recurrence, and the paths (tiles, wavefront, blocks, ISAs) against each other.

use super::*;
use crate::discretize::{apply_dense, gbt_matrices, LegsConvention};
use crate::measure::Measure;
use crate::simd::{prefix_row_step, TileKernel};

fn pseudo(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed ^ 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// Whether two arrays hold bitwise the same values (float32 widens to float64 exactly).
fn same_bits<T: Real>(a: &[T], b: &[T]) -> bool {
    let bits = |x: &T| x.to_f64().unwrap().to_bits();
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| bits(x) == bits(y))
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
            gbt_scan(&op, &fr, Some(&c0[r * n..(r + 1) * n]), Coefficients::PerStep(&coef), steps, 1, true, &mut one)
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
    for isa in [Isa::Avx2, Isa::Avx512].into_iter().filter(|i| *i <= Isa::detected()) {
        Isa::force(Some(isa)).unwrap();
        println!("{isa:?}");
        for (steps, rows, n) in [(20_000usize, 1usize, 256usize), (200, 100, 256), (1, 100, 256), (1, 100, 4096)] {
            for m in [Measure::LegS, Measure::LegT { theta: 1.0 }] {
                run::<f32>(m, steps, rows, n);
                run::<f64>(m, steps, rows, n);
            }
        }
    }
    Isa::force(None).unwrap();
}

/// The final state of one row over `ROW_FORM_STEPS` or more steps: the time wavefront with its
/// scalar tails gives bitwise `prefix_row_step` applied step by step, on every SIMD instruction set;
/// the per-step table form (the scalar instruction set, all states kept) agrees to rounding.
#[test]
fn wavefront_equals_the_single_row_form() {
    fn reference<T: Real>(op: &Structured<T>, f: &[T], coef: &[f64]) -> Vec<T> {
        let p = op.prefix_tables().unwrap();
        let mut c = vec![T::zero(); op.order()];
        for (k, f) in f.iter().enumerate() {
            let s = GbtStep { implicit: coef[3 * k], explicit: coef[3 * k + 1], input: coef[3 * k + 2] };
            if is_reset(&s) {
                c.fill(T::zero());
                c[0] = *f;
            } else {
                prefix_row_step(&p, T::cast(s.implicit), T::cast(s.explicit), T::cast(s.input) * *f, &mut c);
            }
        }
        c
    }
    fn check<T: Real>(m: Measure, n: usize, steps: usize, coef: &[f64], tol: f64) {
        let op = m.structured::<T>(n).unwrap();
        let f: Vec<T> = pseudo(steps, n as u64).iter().map(|x| T::cast(*x)).collect();
        let want = reference(&op, &f, coef);
        let zeros = vec![T::zero(); n];
        let mut all = vec![T::zero(); steps * n];
        gbt_scan(&op, &f, Some(&zeros), Coefficients::PerStep(coef), steps, 1, true, &mut all).unwrap();
        let table_form = &all[(steps - 1) * n..];
        let scale = want.iter().fold(1.0f64, |a, x| a.max(x.to_f64().unwrap().abs()));
        for isa in Isa::ALL.into_iter().filter(|i| *i <= Isa::detected()) {
            Isa::force(Some(isa)).unwrap();
            let mut last = vec![T::zero(); n];
            gbt_scan(&op, &f, Some(&zeros), Coefficients::PerStep(coef), steps, 1, false, &mut last).unwrap();
            Isa::force(None).unwrap();
            let name = std::any::type_name::<T>();
            if isa == Isa::Scalar {
                assert!(same_bits(&last, table_form), "{m:?} n={n} {name}");
            } else {
                assert!(same_bits(&last, &want), "{m:?} n={n} {isa:?} {name}");
            }
            for (a, b) in last.iter().zip(table_form) {
                let d = (a.to_f64().unwrap() - b.to_f64().unwrap()).abs();
                assert!(d <= tol * scale, "{m:?} n={n} {isa:?} {name}: {d:e} > {tol:e} * {scale}");
            }
        }
    }
    assert!(Isa::ALL.into_iter().all(|i| f32::wave_steps(i) <= ROW_FORM_STEPS && f64::wave_steps(i) <= ROW_FORM_STEPS));
    for n in [1usize, 2, 5, 8, 31, 64, 100] {
        for m in [Measure::LegS, Measure::LagT { beta: 0.3 }, Measure::GLagT { alpha: 0.2, beta: 0.5 }] {
            // Several continuous waves (S is 32 to 64 steps), broken by a reset at step 100, and tails.
            let steps = 299;
            let mut coef: Vec<f64> = if m.is_scale_invariant() {
                legs_coef(steps)
            } else {
                (0..steps).flat_map(|k| [0.02 * (k % 3) as f64, 0.01, 0.03]).collect()
            };
            coef[300..303].copy_from_slice(&[f64::INFINITY, 0.0, 0.0]);
            // Each step rounds every element a few times: the two forms drift apart by a few units
            // of rounding per step and element.
            let tol = |eps: f64| 4.0 * (steps * n) as f64 * eps;
            check::<f32>(m, n, steps, &coef, tol(f32::EPSILON as f64));
            check::<f64>(m, n, steps, &coef, tol(f64::EPSILON));
        }
    }
}

#[test]
fn bad_inputs_are_errors() {
    let op = Measure::LegS.structured::<f64>(4).unwrap();
    let mut out = vec![0.0; 8];
    let bad = [f64::NAN, 0.0, 1.0];
    let e =
        gbt_scan(&op, &[1.0, 2.0], Some(&[0.0; 8]), Coefficients::PerStep(&bad), 1, 2, false, &mut out).unwrap_err();
    assert!(e.to_string().starts_with("coef:"));
    let e = gbt_scan(&op, &[1.0, 2.0], Some(&[0.0; 7]), Coefficients::PerStep(&[0.1, 0.1, 0.1]), 1, 2, false, &mut out)
        .unwrap_err();
    assert!(e.to_string().starts_with("c0:"));
}

/// Every instruction set of this CPU gives bitwise the scalar results: row tiles (with a padded last
/// tile and an element tail), multi-step tiles (all states kept), the generic operators' tiles, and
/// the adjoint. The final state of a few rows of a `Prefix` measure over many steps takes the
/// single-row form on SIMD CPUs: bitwise the same on each of them, and within rounding of the scalar
/// (table) form.
#[test]
fn every_isa_gives_the_scalar_bits() {
    /// The outputs, each with the element-steps (steps x N) of its scan when that scan takes the
    /// single-row form (its outputs, or the adjoint seeded by them), else None.
    type Outputs<T> = Vec<(Option<usize>, Vec<T>)>;
    fn run<T: Real>(isa: Isa) -> Outputs<T> {
        Isa::force(Some(isa)).unwrap();
        let mut outs = Vec::new();
        for m in [Measure::LegS, Measure::GLagT { alpha: 0.2, beta: 0.5 }, Measure::LegT { theta: 1.0 }] {
            for (steps, rows, n) in [(9usize, 37usize, 37usize), (200, 1, 45), (150, 3, 64), (13, 16, 256)] {
                let op = m.structured::<T>(n).unwrap();
                let coef = if m.is_scale_invariant() {
                    legs_coef(steps)
                } else {
                    (0..steps).flat_map(|k| [0.01 * (1 + k % 3) as f64, 0.01, 0.02]).collect()
                };
                let f: Vec<T> = pseudo(steps * rows, 11).iter().map(|x| T::cast(*x)).collect();
                let c0: Vec<T> = pseudo(rows * n, 12).iter().map(|x| T::cast(*x)).collect();
                for return_all in [false, true] {
                    let mut out = vec![T::zero(); if return_all { steps * rows * n } else { rows * n }];
                    gbt_scan(&op, &f, Some(&c0), Coefficients::PerStep(&coef), steps, rows, return_all, &mut out)
                        .unwrap();
                    let (mut gf, mut gc0) = (vec![T::zero(); steps * rows], vec![T::zero(); rows * n]);
                    gbt_scan_adjoint(
                        &op,
                        &out,
                        Coefficients::PerStep(&coef),
                        steps,
                        rows,
                        return_all,
                        &mut gf,
                        &mut gc0,
                    )
                    .unwrap();
                    let row_form = !return_all && rows < 8 && steps >= ROW_FORM_STEPS && op.prefix_tables().is_some();
                    outs.extend([out, gf, gc0].map(|o| (row_form.then_some(steps * n), o)));
                }
            }
        }
        outs
    }
    fn compare<T: Real>(isa: Isa, got: &Outputs<T>, scalar: &Outputs<T>, simd: &Outputs<T>) {
        let name = std::any::type_name::<T>();
        for (k, ((row_form, g), (_, w))) in got.iter().zip(scalar).enumerate() {
            let Some(element_steps) = row_form else {
                assert!(same_bits(g, w), "{name} {isa:?} case {k}");
                continue;
            };
            assert!(same_bits(g, &simd[k].1), "{name} {isa:?} case {k}");
            // The two forms drift apart by a few units of rounding per step and element, as in
            // `wavefront_equals_the_single_row_form`.
            let scale = w.iter().fold(1.0f64, |a, x| a.max(x.to_f64().unwrap().abs()));
            let tol = 4.0 * *element_steps as f64 * T::epsilon().to_f64().unwrap() * scale;
            assert!(
                g.iter().zip(w).all(|(a, b)| (a.to_f64().unwrap() - b.to_f64().unwrap()).abs() <= tol),
                "{name} {isa:?} case {k} vs scalar"
            );
        }
    }
    let simd: Vec<Isa> = [Isa::Avx2, Isa::Avx512].into_iter().filter(|i| *i <= Isa::detected()).collect();
    let (want32, want64) = (run::<f32>(Isa::Scalar), run::<f64>(Isa::Scalar));
    let mut first: Option<(Outputs<f32>, Outputs<f64>)> = None;
    for isa in simd {
        let (got32, got64) = (run::<f32>(isa), run::<f64>(isa));
        Isa::force(None).unwrap();
        let (simd32, simd64) = first.get_or_insert_with(|| (got32.clone(), got64.clone()));
        compare(isa, &got32, &want32, simd32);
        compare(isa, &got64, &want64, simd64);
    }
    Isa::force(None).unwrap();
}

#[test]
fn forcing_a_missing_isa_is_an_error() {
    assert_eq!(Isa::parse("avx2").unwrap(), Isa::Avx2);
    assert!(Isa::parse("sse").unwrap_err().to_string().starts_with("isa:"));
    if Isa::detected() < Isa::Avx512 {
        assert!(Isa::force(Some(Isa::Avx512)).is_err());
    }
}

/// Long single-row scans of LTI measures run in blocks (`lti`): they match the dense float64
/// recurrence, and in float32 they are no less accurate than the step-by-step scan.
#[test]
fn blocked_lti_scans_match_dense_recurrence() {
    for m in [Measure::LegT { theta: 1.0 }, Measure::Lmu { theta: 0.5 }, Measure::FouT { theta: 2.0 }] {
        for n in [1usize, 5, 16, 33] {
            let rows = if n == 5 { 3 } else { 1 };
            let steps = lti::MIN_STEPS + 17;
            let dt = 2e-3;
            let coef: Vec<f64> = (0..steps).flat_map(|_| [0.5 * dt, 0.5 * dt, dt]).collect();
            let f = pseudo(steps * rows, 21);
            let c0 = pseudo(rows * n, 22);
            // The dense float64 recurrence with the one step's matrices.
            let (a, b) = m.transition(n).unwrap();
            let (ad, bd) =
                gbt_matrices(&a, &b, n, GbtStep { implicit: 0.5 * dt, explicit: 0.5 * dt, input: dt }).unwrap();
            let mut want = c0.clone();
            for k in 0..steps {
                for r in 0..rows {
                    let next = apply_dense(&ad, &bd, &want[r * n..(r + 1) * n], f[k * rows + r]);
                    want[r * n..(r + 1) * n].copy_from_slice(&next);
                }
            }
            let want = &want[..];
            let scale = want.iter().fold(1e-3f64, |a, x| a.max(x.abs()));
            let op = m.structured::<f64>(n).unwrap();
            assert!(lti::blocked_step(&op, &Coefficients::PerStep(&coef), steps, rows, false).is_some());
            let mut got = vec![0.0; rows * n];
            gbt_scan(&op, &f, Some(&c0), Coefficients::PerStep(&coef), steps, rows, false, &mut got).unwrap();
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!((g - w).abs() < 1e-10 * scale, "{m:?} n={n} f64 [{i}]: {g} vs {w}");
            }
            // float32: the blocked error against the float64 truth is within a small factor of the
            // step-by-step float32 scan's own error (the return_all path is never blocked).
            let op32 = m.structured::<f32>(n).unwrap();
            let (f32s, c32): (Vec<f32>, Vec<f32>) =
                (f.iter().map(|x| *x as f32).collect(), c0.iter().map(|x| *x as f32).collect());
            let mut got32 = vec![0.0f32; rows * n];
            gbt_scan(&op32, &f32s, Some(&c32), Coefficients::PerStep(&coef), steps, rows, false, &mut got32).unwrap();
            let mut every = vec![0.0f32; steps * rows * n];
            gbt_scan(&op32, &f32s, Some(&c32), Coefficients::PerStep(&coef), steps, rows, true, &mut every).unwrap();
            let err = |v: &[f32]| v.iter().zip(want).fold(0.0f64, |a, (g, w)| a.max((*g as f64 - w).abs()));
            let (blocked, stepwise) = (err(&got32), err(&every[(steps - 1) * rows * n..]));
            // (plus a few float32 roundings of the state's scale, when the step-by-step error happens to vanish)
            assert!(
                blocked <= 4.0 * stepwise + 16.0 * f32::EPSILON as f64 * scale,
                "{m:?} n={n}: blocked {blocked} vs stepwise {stepwise}"
            );
        }
    }
}
