//! The backward pass against central differences of the forward pass (float64), with and without
//! the gate, per-row lengths, several memory units and batch blocks; blocks against one block.

use super::*;
use crate::measure::Measure;
use crate::zoh::ZohStep;

fn pseudo(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.8
        })
        .collect()
}

/// Every differentiable input of the layer, flattened in one vector per tensor.
#[derive(Clone)]
struct Point {
    parts: Vec<Vec<f64>>, // x, h0, c0, w_f, b_f, w_h, b_h, w_g, b_g
}

struct Case {
    d: RnnDims,
    coef: Vec<f64>,
    per_row: bool,
    lengths: Vec<i64>,
}

impl Case {
    fn point(&self, seed: u64) -> Point {
        let d = &self.d;
        let (l, b, i, h, m, mn) = (d.steps, d.batch, d.input, d.hidden, d.units, d.memory());
        let g = if d.gate { 1 } else { 0 };
        let sizes = [l * b * i, b * h, b * mn, m * (i + h), m, h * (i + mn), h, g * h * (i + mn), g * h];
        Point { parts: sizes.iter().enumerate().map(|(j, &n)| pseudo(n, seed + j as u64)).collect() }
    }

    fn coef(&self) -> Coefficients<'_> {
        if self.per_row {
            Coefficients::PerRow(&self.coef)
        } else {
            Coefficients::PerStep(&self.coef)
        }
    }

    /// (y, h_n, c_n) and, with `save`, the saved tensors (c, h~, g; empty without).
    fn run_forward(&self, op: MemoryStep<'_, f64>, pt: &Point, threads: usize, save: bool) -> [Vec<f64>; 6] {
        let d = &self.d;
        let (l, b, h, mn) = (d.steps, d.batch, d.hidden, d.memory());
        let p = &pt.parts;
        let w = RnnWeights { w_f: &p[3], b_f: &p[4], w_h: &p[5], b_h: &p[6], w_g: &p[7], b_g: &p[8] };
        let s = RnnInputs { x: &p[0], h0: &p[1], c0: &p[2], coef: self.coef(), lengths: &self.lengths };
        let (mut y, mut h_n, mut c_n) = (vec![0.0; l * b * h], vec![0.0; b * h], vec![0.0; b * mn]);
        let lb = if save { l * b } else { 0 };
        let (mut c, mut ht, mut g) =
            (vec![0.0; lb * mn], vec![0.0; lb * h], vec![0.0; if d.gate { lb * h } else { 0 }]);
        let out = RnnForward { y: &mut y, h_n: &mut h_n, c_n: &mut c_n, c: &mut c, h_tilde: &mut ht, g: &mut g };
        rnn_forward(op, d, &w, &s, out, threads).unwrap();
        [y, h_n, c_n, c, ht, g]
    }

    fn forward(&self, op: MemoryStep<'_, f64>, pt: &Point, threads: usize) -> [Vec<f64>; 6] {
        self.run_forward(op, pt, threads, true)
    }

    fn loss(&self, op: MemoryStep<'_, f64>, pt: &Point, probe: &[Vec<f64>; 3]) -> f64 {
        let out = self.forward(op, pt, 1);
        (0..3).map(|j| out[j].iter().zip(&probe[j]).map(|(a, b)| a * b).sum::<f64>()).sum()
    }

    fn grads(&self, op: MemoryStep<'_, f64>, pt: &Point, probe: &[Vec<f64>; 3], threads: usize) -> Vec<Vec<f64>> {
        let [y, _, _, c, ht, g] = self.forward(op, pt, threads);
        let p = &pt.parts;
        let w = RnnWeights { w_f: &p[3], b_f: &p[4], w_h: &p[5], b_h: &p[6], w_g: &p[7], b_g: &p[8] };
        let s = RnnInputs { x: &p[0], h0: &p[1], c0: &p[2], coef: self.coef(), lengths: &self.lengths };
        let saved = RnnSaved { y: &y, c: &c, h_tilde: &ht, g: &g };
        let go = RnnGradOutputs { y: &probe[0], h_n: &probe[1], c_n: &probe[2] };
        let mut out: Vec<Vec<f64>> = p.iter().map(|v| vec![f64::NAN; v.len()]).collect();
        let [gx, gh0, gc0, gwf, gbf, gwh, gbh, gwg, gbg] = &mut out[..] else { unreachable!() };
        let grads = RnnGrads { x: gx, h0: gh0, c0: gc0, w_f: gwf, b_f: gbf, w_h: gwh, b_h: gbh, w_g: gwg, b_g: gbg };
        rnn_backward(op, &self.d, &w, &s, &saved, &go, grads, threads).unwrap();
        out
    }
}

fn legs_rows(steps: usize, t0: &[f64]) -> Vec<f64> {
    // Original LegS bilinear rows (1/2t, 1/2t, 1/t) at step index t = t0 + k; t = 0 is the reset row.
    let mut rows = Vec::new();
    for k in 0..steps {
        for &t in t0 {
            let t = t + k as f64;
            rows.extend(if t == 0.0 { [f64::INFINITY, 0.0, 0.0] } else { [0.5 / t, 0.5 / t, 1.0 / t] });
        }
    }
    rows
}

fn check(case: &Case, measure: Measure) {
    let op = measure.structured::<f64>(case.d.order).unwrap();
    check_step(case, MemoryStep::Gbt(&op), &format!("{measure:?}"));
}

fn check_step(case: &Case, op: MemoryStep<'_, f64>, measure: &str) {
    let pt = case.point(7);
    let d = &case.d;
    let probe =
        [pseudo(d.steps * d.batch * d.hidden, 101), pseudo(d.batch * d.hidden, 102), pseudo(d.batch * d.memory(), 103)];
    let grads = case.grads(op, &pt, &probe, 1);
    let dir = case.point(55);
    let eps = 1e-6;
    let shifted = |sign: f64| Point {
        parts: pt
            .parts
            .iter()
            .zip(&dir.parts)
            .map(|(a, v)| a.iter().zip(v).map(|(a, v)| a + sign * eps * v).collect())
            .collect(),
    };
    let numeric = (case.loss(op, &shifted(1.0), &probe) - case.loss(op, &shifted(-1.0), &probe)) / (2.0 * eps);
    let analytic: f64 =
        grads.iter().zip(&dir.parts).map(|(g, v)| g.iter().zip(v).map(|(a, b)| a * b).sum::<f64>()).sum();
    assert!((numeric - analytic).abs() < 1e-6 * (1.0 + numeric.abs()), "{measure}: {numeric} vs {analytic}");
    // Inference (nothing saved) gives the outputs of the training forward pass, bitwise.
    let saved = case.forward(op, &pt, 1);
    for threads in [1, 3] {
        assert_eq!(case.run_forward(op, &pt, threads, false)[..3], saved[..3]);
    }
    // Parallel batch blocks give the same gradients (up to the order of the weight sums).
    assert!(blocks(case.d.batch, 3).len() > 1, "the case must split into blocks");
    let blocked = case.grads(op, &pt, &probe, 3);
    for (a, b) in grads.iter().flatten().zip(blocked.iter().flatten()) {
        assert!((a - b).abs() < 1e-12 * (1.0 + a.abs()));
    }
}

#[test]
fn backward_matches_central_differences() {
    let d = RnnDims { steps: 6, batch: 70, input: 2, hidden: 5, units: 1, order: 4, gate: true };
    let lengths: Vec<i64> = (0..70).map(|b| (b % 8) as i64).collect();
    let t0: Vec<f64> = (0..70).map(|b| (b % 3) as f64).collect();
    check(&Case { d, coef: legs_rows(6, &t0), per_row: true, lengths: lengths.clone() }, Measure::LegS);
    let d2 = RnnDims { units: 2, gate: false, ..d };
    let lti = [0.005, 0.005, 0.01].repeat(6);
    check(&Case { d: d2, coef: lti.clone(), per_row: false, lengths: vec![6; 70] }, Measure::LegT { theta: 1.0 });
    check(&Case { d: d2, coef: legs_rows(6, &t0), per_row: true, lengths }, Measure::LegS);
    check(
        &Case { d: RnnDims { gate: true, ..d2 }, coef: lti, per_row: false, lengths: vec![6; 70] },
        Measure::FouT { theta: 1.0 },
    );
}

#[test]
fn zoh_backward_matches_central_differences() {
    // LegT and LMU at a fixed step: coefficient rows are not read (empty).
    let d = RnnDims { steps: 6, batch: 70, input: 2, hidden: 5, units: 2, order: 4, gate: true };
    let lengths: Vec<i64> = (0..70).map(|b| (b % 8) as i64).collect();
    for (measure, dt) in [(Measure::LegT { theta: 1.0 }, 0.01), (Measure::Lmu { theta: 10.0 }, 1.0)] {
        let z = ZohStep::<f64>::new(&measure, d.order, dt).unwrap();
        for gate in [true, false] {
            let case = Case { d: RnnDims { gate, ..d }, coef: Vec::new(), per_row: false, lengths: lengths.clone() };
            check_step(&case, MemoryStep::Zoh(&z), &format!("ZOH {measure:?}"));
        }
    }
}

#[test]
fn backward_matches_central_differences_across_chunks() {
    // Enough steps that the chunked products (CHUNK_ROWS rows each) span several chunks, for one
    // block (views of the saved arrays) and for two (copies).
    let (steps, batch) = (320usize, 70usize);
    assert!(steps * batch.div_ceil(2) > 2 * CHUNK_ROWS && batch >= 2 * MIN_BLOCK_ROWS);
    let d = RnnDims { steps, batch, input: 2, hidden: 5, units: 1, order: 4, gate: true };
    let lengths: Vec<i64> = (0..batch).map(|b| (b * 7 % (steps + 1)) as i64).collect();
    let t0: Vec<f64> = (0..batch).map(|b| (b % 3) as f64).collect();
    check(&Case { d, coef: legs_rows(steps, &t0), per_row: true, lengths }, Measure::LegS);
}

#[test]
fn bad_shapes_are_errors() {
    let d = RnnDims { steps: 2, batch: 3, input: 1, hidden: 2, units: 1, order: 2, gate: false };
    let case = Case { d, coef: vec![0.1; 5], per_row: false, lengths: vec![2; 3] };
    let op = Measure::LegS.structured::<f64>(2).unwrap();
    let pt = case.point(1);
    let p = &pt.parts;
    let w = RnnWeights { w_f: &p[3], b_f: &p[4], w_h: &p[5], b_h: &p[6], w_g: &p[7], b_g: &p[8] };
    let s = RnnInputs { x: &p[0], h0: &p[1], c0: &p[2], coef: case.coef(), lengths: &case.lengths };
    let (mut y, mut hn, mut cn, mut c, mut ht) =
        (vec![0.0; 12], vec![0.0; 6], vec![0.0; 6], vec![0.0; 12], vec![0.0; 12]);
    let out = RnnForward { y: &mut y, h_n: &mut hn, c_n: &mut cn, c: &mut c, h_tilde: &mut ht, g: &mut [] };
    let err = rnn_forward(MemoryStep::Gbt(&op), &d, &w, &s, out, 1).unwrap_err();
    assert!(err.to_string().starts_with("coef:"), "{err}");
}

/// Kernel timings without Python (`cargo test -p hippo-core --release timing -- --ignored --nocapture`):
/// the layer's forward and backward at the permuted-MNIST shape, float32, one thread, and the rate of
/// their products (2 B N (G H) multiply-adds per step forward, twice that backward).
#[test]
#[ignore]
fn timing_of_the_layer() {
    let d = RnnDims { steps: 784, batch: 100, input: 1, hidden: 512, units: 1, order: 512, gate: true };
    let (l, b, i, h, m, mn) = (d.steps, d.batch, d.input, d.hidden, d.units, d.memory());
    let f32s =
        |n: usize, seed: u64, scale: f64| -> Vec<f32> { pseudo(n, seed).iter().map(|v| (v * scale) as f32).collect() };
    let (x, h0, c0) = (f32s(l * b * i, 1, 1.0), vec![0.0f32; b * h], vec![0.0f32; b * mn]);
    let (w_f, b_f) = (f32s(m * (i + h), 2, 0.1), f32s(m, 3, 0.1));
    let (w_h, b_h, w_g, b_g) =
        (f32s(h * (i + mn), 4, 0.1), f32s(h, 5, 0.1), f32s(h * (i + mn), 6, 0.1), f32s(h, 7, 0.1));
    let w = RnnWeights { w_f: &w_f, b_f: &b_f, w_h: &w_h, b_h: &b_h, w_g: &w_g, b_g: &b_g };
    let coef = legs_rows(l, &[1.0]);
    let s = RnnInputs { x: &x, h0: &h0, c0: &c0, coef: Coefficients::PerStep(&coef), lengths: &vec![l as i64; b] };
    let op = Measure::LegS.structured::<f32>(mn).unwrap();
    let (mut y, mut h_n, mut c_n) = (vec![0.0f32; l * b * h], vec![0.0f32; b * h], vec![0.0f32; b * mn]);
    let (mut c, mut ht, mut g) = (vec![0.0f32; l * b * mn], vec![0.0f32; l * b * h], vec![0.0f32; l * b * h]);
    let gy = f32s(l * b * h, 8, 1e-3);
    let (gh_n, gc_n) = (vec![0.0f32; b * h], vec![0.0f32; b * mn]);
    let mut grads: Vec<Vec<f32>> =
        [x.len(), h0.len(), c0.len(), w_f.len(), b_f.len(), w_h.len(), b_h.len(), w_g.len(), b_g.len()]
            .map(|n| vec![0.0; n])
            .into();
    let gflop = 2.0 * (l * b * mn * (2 * h)) as f64 / 1e9;
    for isa in [crate::simd::Isa::Avx512, crate::simd::Isa::Avx2] {
        if crate::simd::Isa::force(Some(isa)).is_err() {
            continue;
        }
        let (mut fwd, mut bwd, mut inf) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let out = RnnForward { y: &mut y, h_n: &mut h_n, c_n: &mut c_n, c: &mut c, h_tilde: &mut ht, g: &mut g };
            rnn_forward(MemoryStep::Gbt(&op), &d, &w, &s, out, 1).unwrap();
            fwd = fwd.min(t.elapsed().as_secs_f64());
            let t = std::time::Instant::now();
            let out = RnnForward { y: &mut y, h_n: &mut h_n, c_n: &mut c_n, c: &mut [], h_tilde: &mut [], g: &mut [] };
            rnn_forward(MemoryStep::Gbt(&op), &d, &w, &s, out, 1).unwrap();
            inf = inf.min(t.elapsed().as_secs_f64());
            let saved = RnnSaved { y: &y, c: &c, h_tilde: &ht, g: &g };
            let go = RnnGradOutputs { y: &gy, h_n: &gh_n, c_n: &gc_n };
            let [gx, gh0, gc0, gwf, gbf, gwh, gbh, gwg, gbg] = &mut grads[..] else { unreachable!() };
            let gr = RnnGrads { x: gx, h0: gh0, c0: gc0, w_f: gwf, b_f: gbf, w_h: gwh, b_h: gbh, w_g: gwg, b_g: gbg };
            let t = std::time::Instant::now();
            rnn_backward(MemoryStep::Gbt(&op), &d, &w, &s, &saved, &go, gr, 1).unwrap();
            bwd = bwd.min(t.elapsed().as_secs_f64());
        }
        println!(
        "{}: L={l} B={b} H=N={h} float32, 1 thread: forward {fwd:.3} s ({:.0} GFLOP/s), inference {inf:.3} s, backward {bwd:.3} s ({:.0} GFLOP/s)",
        isa.name(),
        gflop / fwd,
        2.0 * gflop / bwd
    );
    }
    crate::simd::Isa::force(None).unwrap();
}
