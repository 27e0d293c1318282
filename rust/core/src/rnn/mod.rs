//! The HiPPO-RNN layer over a whole sequence, forward and backpropagation through time, in one
//! native loop (the cell of Gu et al. 2020, Sec. 5 and App. E):
//!
//! ```text
//! f_k  = W_f [x_k, h_{k-1}] + b_f                         (M scalars, identity activation)
//! c_k  = GBT step of c_{k-1} (M rows of N) with input f_k   (crate::scan, O(N) per row)
//! h~_k = tanh(W_h [x_k, vec c_k] + b_h),   g_k = sigmoid(W_g [x_k, vec c_k] + b_g)
//! h_k  = (1 - g_k) h_{k-1} + g_k h~_k                       (h_k = h~_k without the gate)
//! ```
//!
//! Row b of the batch runs `lengths[b]` steps; after that its state is held and its outputs are 0.
//!
//! Work per step for a block of rows: one GEMM of the hidden state into the M memory inputs, the
//! memory step, one GEMM (rows x MN)·(MN x 2H) into the gates, the activations. The input
//! projections of a chunk of steps are one GEMM up front. The backward pass runs the adjoint step
//! by step (dc_{k-1}, df_k from dc_k by `gbt_scan_adjoint`; dc_k += dz_k W_c) and accumulates the
//! large weight gradient dW_c += dz^T c over a chunk of steps as one GEMM.
//!
//! Saved by the forward pass for the backward one (the caller's buffers): the outputs y (L, B, H),
//! the memory states c (L, B, M N), h~ (L, B, H) and g (L, B, H) (not without the gate).
//!
//! Blocks of batch rows run in parallel on the rayon pool (`threads` blocks at most); each block has
//! its own weight-gradient accumulators, summed at the end.

mod activation;
mod gemm;
mod packed;

use rayon::prelude::*;

use crate::error::{try_zeros, HippoError, Result};
use crate::scan::{gbt_scan, gbt_scan_adjoint, Coefficients};
use crate::structured::Structured;
use crate::zoh::ZohStep;
pub use activation::Activations;
pub use gemm::Gemm;
use gemm::{gemm, MatMut, MatRef};
use packed::PackedB;

/// Rows per GEMM of a chunk of steps (input projections, dW_c): steps x batch rows about this many.
/// Small enough that a chunk's pre-activations or their gradients (rows x width) stay in L2 beside
/// the weights between the steps that read them (2048 measured ~15 % slower at the permuted-MNIST
/// shape), large enough to be the inner dimension of an efficient dW_c product.
const CHUNK_ROWS: usize = 256;
/// Fewest batch rows a parallel block gets (smaller blocks make the per-step GEMMs inefficient).
/// (32: at the digits shape, B = 50 and H = N = 128, two blocks of 25 rows took longer than one.)
const MIN_BLOCK_ROWS: usize = 32;

/// Sizes of the layer: L steps, B rows, input I, hidden H, M memory units of order N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RnnDims {
    pub steps: usize,
    pub batch: usize,
    pub input: usize,
    pub hidden: usize,
    pub units: usize,
    pub order: usize,
    pub gate: bool,
}

impl RnnDims {
    /// M N: the memory of one batch row, flattened.
    fn memory(&self) -> usize {
        self.units * self.order
    }
    /// Width of a row of pre-activations [f (M), z_h (H), z_g (H)].
    fn width(&self) -> usize {
        self.units + self.hidden * if self.gate { 2 } else { 1 }
    }
}

/// Weights (row-major, like `torch.nn.Linear`): W_f (M, I + H), W_h and W_g (H, I + M N), biases.
/// `w_g` and `b_g` are empty without the gate.
pub struct RnnWeights<'a, T> {
    pub w_f: &'a [T],
    pub b_f: &'a [T],
    pub w_h: &'a [T],
    pub b_h: &'a [T],
    pub w_g: &'a [T],
    pub b_g: &'a [T],
}

/// The sequence: x (L, B, I), initial h0 (B, H) and c0 (B, M N), the memory step coefficients
/// (L, 3) or (L, B, 3) (shared by the M units of a row), and `lengths` (B,).
pub struct RnnInputs<'a, T> {
    pub x: &'a [T],
    pub h0: &'a [T],
    pub c0: &'a [T],
    pub coef: Coefficients<'a>,
    pub lengths: &'a [i64],
}

/// What the forward pass writes: outputs y (L, B, H), final h_n (B, H) and c_n (B, M N), and the
/// saved tensors c (L, B, M N), h~ (L, B, H), g (L, B, H) (empty without the gate). For inference,
/// c, h~ and g may all be empty: nothing is saved (the memory of one step is kept instead).
pub struct RnnForward<'a, T> {
    pub y: &'a mut [T],
    pub h_n: &'a mut [T],
    pub c_n: &'a mut [T],
    pub c: &'a mut [T],
    pub h_tilde: &'a mut [T],
    pub g: &'a mut [T],
}

/// The saved tensors, read by the backward pass (see [`RnnForward`]).
pub struct RnnSaved<'a, T> {
    pub y: &'a [T],
    pub c: &'a [T],
    pub h_tilde: &'a [T],
    pub g: &'a [T],
}

/// Incoming gradients of y (L, B, H), h_n (B, H), c_n (B, M N).
pub struct RnnGradOutputs<'a, T> {
    pub y: &'a [T],
    pub h_n: &'a [T],
    pub c_n: &'a [T],
}

/// Gradients written by the backward pass, shaped like their inputs.
pub struct RnnGrads<'a, T> {
    pub x: &'a mut [T],
    pub h0: &'a mut [T],
    pub c0: &'a mut [T],
    pub w_f: &'a mut [T],
    pub b_f: &'a mut [T],
    pub w_h: &'a mut [T],
    pub b_h: &'a mut [T],
    pub w_g: &'a mut [T],
    pub b_g: &'a mut [T],
}

fn check_len(arg: &str, got: usize, want: usize, shape: String) -> Result<()> {
    if got != want {
        return Err(HippoError::invalid(arg, format!("expected shape {shape} ({want} values), got {got} values")));
    }
    Ok(())
}

/// The memory step c_{k-1} -> c_k of every row and unit: the GBT step of a structured operator
/// (O(N); coefficient rows in `RnnInputs::coef`), or the ZOH step of a time-invariant measure at a
/// fixed step, c_k = Ad c_{k-1} + Bd f_k (a dense (rows x N) x (N x N) product per step; `coef` is
/// not read).
#[derive(Clone, Copy)]
pub enum MemoryStep<'a, T> {
    Gbt(&'a Structured<T>),
    Zoh(&'a ZohStep<T>),
}

impl<T: crate::float::Real> MemoryStep<'_, T> {
    fn order(&self) -> usize {
        match self {
            MemoryStep::Gbt(op) => op.order(),
            MemoryStep::Zoh(z) => z.bd.len(),
        }
    }
}

/// A memory step as the loops run it: ZOH's Ad^T (forward) or Ad (backward) packed once per call.
enum PackedStep<'a, T> {
    Gbt(&'a Structured<T>),
    Zoh { a: PackedB<T>, bd: &'a [T] },
}

impl<'a, T: Gemm> PackedStep<'a, T> {
    fn new(memory: MemoryStep<'a, T>, transposed: bool) -> Self {
        match memory {
            MemoryStep::Gbt(op) => PackedStep::Gbt(op),
            MemoryStep::Zoh(z) => {
                let n = z.bd.len();
                let ad = MatRef::rows(&z.ad, n, n, n);
                PackedStep::Zoh { a: PackedB::new(if transposed { ad.t() } else { ad }), bd: &z.bd }
            }
        }
    }
}

fn check_inputs<T: crate::float::Real>(
    memory: MemoryStep<'_, T>,
    d: &RnnDims,
    w: &RnnWeights<'_, T>,
    s: &RnnInputs<'_, T>,
) -> Result<()> {
    let (l, b, i, h, m, mn) = (d.steps, d.batch, d.input, d.hidden, d.units, d.memory());
    if memory.order() != d.order {
        return Err(HippoError::invalid(
            "N",
            format!("a memory step of order {} for a memory of order {}", memory.order(), d.order),
        ));
    }
    check_len("x", s.x.len(), l * b * i, format!("({l}, {b}, {i})"))?;
    check_len("h0", s.h0.len(), b * h, format!("({b}, {h})"))?;
    check_len("c0", s.c0.len(), b * mn, format!("({b}, {m}, {})", d.order))?;
    check_len("lengths", s.lengths.len(), b, format!("({b},)"))?;
    check_len("w_f", w.w_f.len(), m * (i + h), format!("({m}, {})", i + h))?;
    check_len("b_f", w.b_f.len(), m, format!("({m},)"))?;
    check_len("w_h", w.w_h.len(), h * (i + mn), format!("({h}, {})", i + mn))?;
    check_len("b_h", w.b_h.len(), h, format!("({h},)"))?;
    let (gw, gb) = if d.gate { (h * (i + mn), h) } else { (0, 0) };
    check_len("w_g", w.w_g.len(), gw, format!("({h}, {})", i + mn))?;
    check_len("b_g", w.b_g.len(), gb, format!("({h},)"))?;
    if let MemoryStep::Zoh(_) = memory {
        return Ok(());
    }
    let (coef, want) = match s.coef {
        Coefficients::PerStep(c) => (c, 3 * l),
        Coefficients::PerRow(c) => (c, 3 * l * b),
    };
    check_len("coef", coef.len(), want, format!("({l}, 3) or ({l}, {b}, 3)"))
}

/// A raw view of a buffer whose disjoint parts are written by different rayon tasks.
#[derive(Clone, Copy)]
struct Shared<T>(*mut T, usize);
// SAFETY: tasks only create slices of disjoint index ranges (their own batch rows), see `part`.
unsafe impl<T: Send> Send for Shared<T> {}
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    fn new(buf: &mut [T]) -> Self {
        Shared(buf.as_mut_ptr(), buf.len())
    }
    /// # Safety
    /// No two live slices from `part` may overlap.
    #[allow(clippy::mut_from_ref)]
    unsafe fn part(&self, start: usize, len: usize) -> &mut [T] {
        assert!(start + len <= self.1);
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

/// The memory parts of W_h and W_g (columns I.. of each) stacked: W_c = [W_hc; W_gc] (G H, M N)
/// row-major, G = 2 with the gate, 1 without.
fn stacked_memory_weights<T: Copy>(d: &RnnDims, w: &RnnWeights<'_, T>) -> Vec<T> {
    let (i, h, mn) = (d.input, d.hidden, d.memory());
    let gh = d.width() - d.units;
    let mut out = Vec::with_capacity(gh * mn);
    let row = |j: usize| {
        if j < h {
            &w.w_h[j * (i + mn) + i..(j + 1) * (i + mn)]
        } else {
            &w.w_g[(j - h) * (i + mn) + i..(j - h + 1) * (i + mn)]
        }
    };
    for j in 0..gh {
        out.extend_from_slice(row(j));
    }
    out
}

/// Batch row blocks [b0, b1): one per thread when the batch is large enough, else one.
fn blocks(batch: usize, threads: usize) -> Vec<(usize, usize)> {
    let count = threads.max(1).min(batch / MIN_BLOCK_ROWS).max(1);
    let per = batch.div_ceil(count).max(1);
    (0..batch).step_by(per).map(|b0| (b0, (b0 + per).min(batch))).collect()
}

fn run_blocks<R: Send>(blocks: &[(usize, usize)], task: impl Fn(usize, usize) -> R + Sync + Send) -> Vec<R> {
    if blocks.len() <= 1 {
        blocks.iter().map(|&(b0, b1)| task(b0, b1)).collect()
    } else {
        blocks.par_iter().map(|&(b0, b1)| task(b0, b1)).collect()
    }
}

/// Coefficients of step k for rows b0..b1 expanded to their M units (into `scratch` when needed).
fn step_coef<'a>(
    coef: Coefficients<'a>,
    k: usize,
    d: &RnnDims,
    b0: usize,
    b1: usize,
    scratch: &'a mut Vec<f64>,
) -> Coefficients<'a> {
    match coef {
        Coefficients::PerStep(c) => Coefficients::PerStep(&c[3 * k..3 * k + 3]),
        Coefficients::PerRow(c) => {
            let rows = &c[3 * (k * d.batch + b0)..3 * (k * d.batch + b1)];
            if d.units == 1 {
                return Coefficients::PerRow(rows);
            }
            scratch.clear();
            for row in rows.chunks_exact(3) {
                for _ in 0..d.units {
                    scratch.extend_from_slice(row);
                }
            }
            Coefficients::PerRow(scratch)
        }
    }
}

/// Rows b0..b1 of steps k0..k1 of a (L, B, width) array as one (steps x rows, width) matrix: a
/// view when the block is the whole batch, else copied into `buf`.
fn chunk_rows<'a, T: Copy>(
    src: &'a [T],
    d: &RnnDims,
    (k0, k1): (usize, usize),
    (b0, b1): (usize, usize),
    width: usize,
    buf: &'a mut Vec<T>,
) -> &'a [T] {
    if b0 == 0 && b1 == d.batch {
        return &src[k0 * d.batch * width..k1 * d.batch * width];
    }
    buf.clear();
    for k in k0..k1 {
        buf.extend_from_slice(&src[(k * d.batch + b0) * width..(k * d.batch + b1) * width]);
    }
    buf
}

/// The forward pass (see the module docs). `threads`: most batch blocks run in parallel.
pub fn rnn_forward<T: Activations>(
    memory: MemoryStep<'_, T>,
    d: &RnnDims,
    w: &RnnWeights<'_, T>,
    s: &RnnInputs<'_, T>,
    out: RnnForward<'_, T>,
    threads: usize,
) -> Result<()> {
    check_inputs(memory, d, w, s)?;
    let (l, b, h, mn) = (d.steps, d.batch, d.hidden, d.memory());
    check_len("y", out.y.len(), l * b * h, format!("({l}, {b}, {h})"))?;
    let save = !(out.c.is_empty() && out.h_tilde.is_empty() && out.g.is_empty());
    let (lb, shape) =
        (if save { l * b } else { 0 }, |w: usize| if save { format!("({l}, {b}, {w})") } else { "(0,)".into() });
    check_len("c", out.c.len(), lb * mn, shape(mn))?;
    check_len("h_tilde", out.h_tilde.len(), lb * h, shape(h))?;
    check_len("g", out.g.len(), if d.gate { lb * h } else { 0 }, shape(h))?;
    check_len("h_n", out.h_n.len(), b * h, format!("({b}, {h})"))?;
    check_len("c_n", out.c_n.len(), b * mn, format!("({b}, {mn})"))?;
    let outs = [out.y, out.h_n, out.c_n, out.c, out.h_tilde, out.g].map(Shared::new);
    let w_c = stacked_memory_weights(d, w);
    let gh = d.width() - d.units;
    let w_c_t = PackedB::new(MatRef::rows(&w_c, gh, mn, mn).t());
    let step = PackedStep::new(memory, true);
    let results = run_blocks(&blocks(b, threads), |b0, b1| {
        // SAFETY: every block writes only its own rows b0..b1 of each output.
        unsafe { forward_block(&step, d, w, &w_c_t, s, &outs, save, b0, b1) }
    });
    results.into_iter().collect()
}

/// # Safety
/// `outs` are the buffers of `RnnForward` (checked lengths; c, h~, g empty unless `save`); only rows
/// b0..b1 are touched. `w_c_t`: W_c^T (M N, G H), packed.
#[allow(clippy::too_many_arguments)]
unsafe fn forward_block<T: Activations>(
    step: &PackedStep<'_, T>,
    d: &RnnDims,
    w: &RnnWeights<'_, T>,
    w_c_t: &PackedB<T>,
    s: &RnnInputs<'_, T>,
    outs: &[Shared<T>; 6],
    save: bool,
    b0: usize,
    b1: usize,
) -> Result<()> {
    let (l, bt, i, h, m, mn) = (d.steps, d.batch, d.input, d.hidden, d.units, d.memory());
    let (rows, p) = (b1 - b0, d.width());
    let chunk = (CHUNK_ROWS / rows).clamp(1, l.max(1));
    let [y, h_n, c_n, c_all, h_tilde, g_all] = outs;
    // Without saving: the memory of the last two steps and the activations of one step.
    let (mut c_ring, mut act) = if save {
        (Vec::new(), Vec::new())
    } else {
        (try_zeros::<T>(2 * rows * mn, "the memory state")?, vec![T::zero(); 2 * rows * h])
    };
    let c_ring = Shared::new(&mut c_ring);
    let mut pre = try_zeros::<T>(chunk * rows * p, "the pre-activations of a chunk of steps")?;
    let mut x_buf = Vec::new();
    let mut h_prev = s.h0[b0 * h..b1 * h].to_vec();
    let mut f = vec![T::zero(); rows * m];
    let (mut coef_buf, mut a_buf, mut z_buf) = (Vec::new(), Vec::new(), Vec::new());
    let w_fh = MatRef::rows(&w.w_f[i..], m, h, i + h);
    let w_x_t = input_weights_transposed(d, w);
    let gh = p - m;
    for k0 in (0..l).step_by(chunk) {
        let k1 = (k0 + chunk).min(l);
        let n_rows = (k1 - k0) * rows;
        // Input projections of the chunk: pre = [b_f, b_h, b_g] + x W_x^T.
        for row in pre.chunks_exact_mut(p).take(n_rows) {
            row[..m].copy_from_slice(w.b_f);
            row[m..m + h].copy_from_slice(w.b_h);
            if d.gate {
                row[m + h..].copy_from_slice(w.b_g);
            }
        }
        let xs = MatRef::rows(chunk_rows(s.x, d, (k0, k1), (b0, b1), i, &mut x_buf), n_rows, i, i);
        gemm(MatMut::rows(&mut pre, n_rows, p, p), T::one(), xs, MatRef::rows(&w_x_t, i, p, p));
        for k in k0..k1 {
            let pk = &mut pre[(k - k0) * rows * p..(k - k0 + 1) * rows * p];
            // f = pre_f + h_{k-1} W_fh^T, then the memory step c_{k-1} -> c_k.
            gemm(MatMut::rows(pk, rows, m, p), T::one(), MatRef::rows(&h_prev, rows, h, h), w_fh.t());
            for (fr, pr) in f.chunks_exact_mut(m).zip(pk.chunks_exact(p)) {
                fr.copy_from_slice(&pr[..m]);
            }
            // SAFETY (both): disjoint parts, step k's and step k-1's.
            let state = |k: usize| {
                if save {
                    c_all.part((k * bt + b0) * mn, rows * mn)
                } else {
                    c_ring.part((k % 2) * rows * mn, rows * mn)
                }
            };
            let c_k = state(k);
            let c_prev: &[T] = if k == 0 { &s.c0[b0 * mn..b1 * mn] } else { state(k - 1) };
            match step {
                PackedStep::Gbt(op) => {
                    let coef = step_coef(s.coef, k, d, b0, b1, &mut coef_buf);
                    gbt_scan(op, &f, Some(c_prev), coef, 1, rows * m, false, c_k)?;
                }
                PackedStep::Zoh { a: ad_t, bd } => {
                    // c_k = c_{k-1} Ad^T + f Bd^T, one row per (batch row, unit).
                    let (um, n) = (rows * m, d.order);
                    ad_t.gemm(MatMut::rows(c_k, um, n, n), false, MatRef::rows(c_prev, um, n, n), &mut z_buf);
                    for (row, &fr) in c_k.chunks_exact_mut(n).zip(&f) {
                        for (v, &b) in row.iter_mut().zip(bd.iter()) {
                            *v = *v + fr * b;
                        }
                    }
                }
            }
            for r in 0..rows {
                if (k as i64) >= s.lengths[b0 + r] {
                    c_k[r * mn..(r + 1) * mn].copy_from_slice(&c_prev[r * mn..(r + 1) * mn]);
                }
            }
            // [z_h, z_g] = pre_z + c_k [W_hc; W_gc]^T, then the activations and the gated update of h.
            w_c_t.gemm(MatMut::rows(&mut pk[m..], rows, gh, p), true, MatRef::rows(&*c_k, rows, mn, mn), &mut a_buf);
            let y_k = y.part((k * bt + b0) * h, rows * h);
            let (ht_k, g_k) = if !save {
                act.split_at_mut(rows * h)
            } else if d.gate {
                (h_tilde.part((k * bt + b0) * h, rows * h), g_all.part((k * bt + b0) * h, rows * h))
            } else {
                (h_tilde.part((k * bt + b0) * h, rows * h), &mut [][..])
            };
            for r in 0..rows {
                let (ht, yr, hp) =
                    (&mut ht_k[r * h..(r + 1) * h], &mut y_k[r * h..(r + 1) * h], &mut h_prev[r * h..(r + 1) * h]);
                let pr = &pk[r * p..(r + 1) * p];
                T::tanh_row(&pr[m..m + h], ht);
                let active = (k as i64) < s.lengths[b0 + r];
                if d.gate {
                    let gr = &mut g_k[r * h..(r + 1) * h];
                    T::sigmoid_row(&pr[m + h..], gr);
                    if active {
                        for ((hp, ht), g) in hp.iter_mut().zip(ht.iter()).zip(gr.iter()) {
                            *hp = (T::one() - *g) * *hp + *g * *ht;
                        }
                    }
                } else if active {
                    hp.copy_from_slice(ht);
                }
                if active {
                    yr.copy_from_slice(hp);
                } else {
                    yr.fill(T::zero());
                }
            }
        }
    }
    h_n.part(b0 * h, rows * h).copy_from_slice(&h_prev);
    let c_last: &[T] = match (l, save) {
        (0, _) => &s.c0[b0 * mn..b1 * mn],
        (_, true) => c_all.part(((l - 1) * bt + b0) * mn, rows * mn),
        (_, false) => c_ring.part(((l - 1) % 2) * rows * mn, rows * mn),
    };
    c_n.part(b0 * mn, rows * mn).copy_from_slice(c_last);
    Ok(())
}

/// Weight gradients of one block (summed over the blocks at the end).
struct WeightGrads<T> {
    w_f: Vec<T>,
    b_f: Vec<T>,
    w_h: Vec<T>,
    b_h: Vec<T>,
    w_g: Vec<T>,
    b_g: Vec<T>,
}

/// Backpropagation through time (see the module docs): writes every gradient of `grads`.
#[allow(clippy::too_many_arguments)]
pub fn rnn_backward<T: Activations>(
    memory: MemoryStep<'_, T>,
    d: &RnnDims,
    w: &RnnWeights<'_, T>,
    s: &RnnInputs<'_, T>,
    saved: &RnnSaved<'_, T>,
    grad_out: &RnnGradOutputs<'_, T>,
    grads: RnnGrads<'_, T>,
    threads: usize,
) -> Result<()> {
    check_inputs(memory, d, w, s)?;
    let (l, b, h, mn) = (d.steps, d.batch, d.hidden, d.memory());
    check_len("y", saved.y.len(), l * b * h, format!("({l}, {b}, {h})"))?;
    check_len("c", saved.c.len(), l * b * mn, format!("({l}, {b}, {mn})"))?;
    check_len("h_tilde", saved.h_tilde.len(), l * b * h, format!("({l}, {b}, {h})"))?;
    check_len("g", saved.g.len(), if d.gate { l * b * h } else { 0 }, format!("({l}, {b}, {h})"))?;
    check_len("grad_y", grad_out.y.len(), l * b * h, format!("({l}, {b}, {h})"))?;
    check_len("grad_h_n", grad_out.h_n.len(), b * h, format!("({b}, {h})"))?;
    check_len("grad_c_n", grad_out.c_n.len(), b * mn, format!("({b}, {mn})"))?;
    check_len("grad_x", grads.x.len(), s.x.len(), "of x".into())?;
    check_len("grad_h0", grads.h0.len(), s.h0.len(), "of h0".into())?;
    check_len("grad_c0", grads.c0.len(), s.c0.len(), "of c0".into())?;
    for (arg, got, want) in [
        ("grad_w_f", grads.w_f.len(), w.w_f.len()),
        ("grad_b_f", grads.b_f.len(), w.b_f.len()),
        ("grad_w_h", grads.w_h.len(), w.w_h.len()),
        ("grad_b_h", grads.b_h.len(), w.b_h.len()),
        ("grad_w_g", grads.w_g.len(), w.w_g.len()),
        ("grad_b_g", grads.b_g.len(), w.b_g.len()),
    ] {
        check_len(arg, got, want, "of its weight".into())?;
    }
    let outs = [grads.x, grads.h0, grads.c0].map(Shared::new);
    let gh = d.width() - d.units;
    let w_c = PackedB::new(MatRef::rows(&stacked_memory_weights(d, w), gh, mn, mn));
    let w_x_t = input_weights_transposed(d, w);
    let step = PackedStep::new(memory, false);
    let results = run_blocks(&blocks(b, threads), |b0, b1| {
        // SAFETY: every block writes only its own rows b0..b1 of grad x, h0, c0.
        unsafe { backward_block(&step, d, w, &w_c, &w_x_t, s, saved, grad_out, &outs, b0, b1) }
    });
    let mut sums = [grads.w_f, grads.b_f, grads.w_h, grads.b_h, grads.w_g, grads.b_g];
    sums.iter_mut().for_each(|g| g.fill(T::zero()));
    for block in results {
        let block = block?;
        for (sum, part) in sums.iter_mut().zip([block.w_f, block.b_f, block.w_h, block.b_h, block.w_g, block.b_g]) {
            for (a, b) in sum.iter_mut().zip(part) {
                *a = *a + b;
            }
        }
    }
    Ok(())
}

/// The input columns of [W_f; W_h; W_g] stacked and transposed: W_x^T (I, P), P = M + G H; column
/// j holds the input weights of pre-activation j (the order of a row of `pre` and `dp`).
fn input_weights_transposed<T: Copy + num_traits::Zero>(d: &RnnDims, w: &RnnWeights<'_, T>) -> Vec<T> {
    let (i, h, m, mn, p) = (d.input, d.hidden, d.units, d.memory(), d.width());
    let mut out = vec![T::zero(); i * p];
    for j in 0..p {
        let row = match j {
            j if j < m => &w.w_f[j * (i + h)..j * (i + h) + i],
            j if j < m + h => &w.w_h[(j - m) * (i + mn)..(j - m) * (i + mn) + i],
            j => &w.w_g[(j - m - h) * (i + mn)..(j - m - h) * (i + mn) + i],
        };
        for (q, v) in row.iter().enumerate() {
            out[q * p + j] = *v;
        }
    }
    out
}

/// Rows b0..b1 of h_{k-1} for the steps k0..k1 (h0 before step 0, else the saved outputs y) as one
/// (steps x rows, H) matrix: a view of y when possible, else copied into `buf`.
fn hidden_before<'a, T: Copy>(
    d: &RnnDims,
    h0: &'a [T],
    y: &'a [T],
    (k0, k1): (usize, usize),
    (b0, b1): (usize, usize),
    buf: &'a mut Vec<T>,
) -> &'a [T] {
    let h = d.hidden;
    if k0 > 0 {
        return chunk_rows(y, d, (k0 - 1, k1 - 1), (b0, b1), h, buf);
    }
    buf.clear();
    buf.extend_from_slice(&h0[b0 * h..b1 * h]);
    for k in 1..k1 {
        buf.extend_from_slice(&y[((k - 1) * d.batch + b0) * h..((k - 1) * d.batch + b1) * h]);
    }
    buf
}

/// Gradients of the gated update of one row at one step (`dh` already holds dL/dh_k):
/// dz_h = dh g (1 - h~^2), dz_g = dh (h~ - h_{k-1}) g (1 - g), dh_{k-1} = dh (1 - g); without the
/// gate (h_k = h~_k) dz_h = dh (1 - h~^2) and dh_{k-1} = 0.
#[inline]
fn gate_adjoint<T: Activations>(dh: &[T], ht: &[T], g: Option<(&[T], &[T])>, dz: &mut [T], dh_prev: &mut [T]) {
    let h = dh.len();
    let one = T::one();
    let (dzh, dzg) = dz.split_at_mut(h);
    let (ht, dh_prev) = (&ht[..h], &mut dh_prev[..h]);
    match g {
        Some((g, hb)) => {
            let (g, hb, dzg) = (&g[..h], &hb[..h], &mut dzg[..h]);
            for j in 0..h {
                let (d, t, gj) = (dh[j], ht[j], g[j]);
                dzh[j] = d * gj * (one - t * t);
                dzg[j] = d * (t - hb[j]) * gj * (one - gj);
                dh_prev[j] = d * (one - gj);
            }
        }
        None => {
            for j in 0..h {
                dzh[j] = dh[j] * (one - ht[j] * ht[j]);
            }
            dh_prev.fill(T::zero());
        }
    }
}

/// # Safety
/// `outs` are grad x, h0, c0 (checked lengths); only rows b0..b1 are touched.
/// `w_c`: W_c (G H, M N), packed; `w_x_t`: the stacked input weights, transposed (I, P).
#[allow(clippy::too_many_arguments)]
unsafe fn backward_block<T: Activations>(
    step: &PackedStep<'_, T>,
    d: &RnnDims,
    w: &RnnWeights<'_, T>,
    w_c: &PackedB<T>,
    w_x_t: &[T],
    s: &RnnInputs<'_, T>,
    saved: &RnnSaved<'_, T>,
    grad_out: &RnnGradOutputs<'_, T>,
    outs: &[Shared<T>; 3],
    b0: usize,
    b1: usize,
) -> Result<WeightGrads<T>> {
    let (l, bt, i, h, m, mn) = (d.steps, d.batch, d.input, d.hidden, d.units, d.memory());
    let (rows, p) = (b1 - b0, d.width());
    let chunk = (CHUNK_ROWS / rows).clamp(1, l.max(1));
    let [gx, gh0, gc0] = outs;
    // dp rows of a chunk: [df (M), dz_h (H), dz_g (H)] per (step, row); the step loop fills them
    // (the sequential part: gates, dc_k += dz W_c, the memory adjoint, dh_{k-1} += df W_fh) and
    // every product that is not on that path runs once per chunk on all its rows.
    let mut dp = try_zeros::<T>(chunk * rows * p, "the pre-activation gradients of a chunk of steps")?;
    let mut dx = try_zeros::<T>(chunk * rows * i, "the input gradients of a chunk of steps")?;
    // Gradients of the stacked weights: W_c (G H, M N), W_x^T (I, P), W_fh (M, H), biases (P).
    let gh = p - m;
    let mut dw_c = try_zeros::<T>(gh * mn, "the memory weight gradients")?;
    let (mut dw_x_t, mut dw_fh, mut db) = (vec![T::zero(); i * p], vec![T::zero(); m * h], vec![T::zero(); p]);
    let (mut c_buf, mut x_buf, mut h_buf) = (Vec::new(), Vec::new(), Vec::new());
    // The chunk's memory states c (steps x rows, M N), packed as the right operand of dW_c.
    let mut c_chunk = PackedB::new(MatRef::rows(&[], 0, mn, mn));
    let mut dh = grad_out.h_n[b0 * h..b1 * h].to_vec();
    let mut dh_prev = vec![T::zero(); rows * h];
    let mut dc = grad_out.c_n[b0 * mn..b1 * mn].to_vec();
    let mut dc_prev = vec![T::zero(); rows * mn];
    let mut df = vec![T::zero(); rows * m];
    let (mut coef_buf, mut a_buf, mut z_buf) = (Vec::new(), Vec::new(), Vec::new());
    let w_fh = MatRef::rows(&w.w_f[i..], m, h, i + h);
    let chunks: Vec<usize> = (0..l).step_by(chunk).collect();
    for &k0 in chunks.iter().rev() {
        let k1 = (k0 + chunk).min(l);
        for k in (k0..k1).rev() {
            let dpk = &mut dp[(k - k0) * rows * p..(k - k0 + 1) * rows * p];
            let at = (k * bt + b0) * h;
            let (gy, ht_k) = (&grad_out.y[at..at + rows * h], &saved.h_tilde[at..at + rows * h]);
            let h_before: &[T] =
                if k == 0 { &s.h0[b0 * h..b1 * h] } else { &saved.y[at - bt * h..at - bt * h + rows * h] };
            for r in 0..rows {
                let span = r * h..(r + 1) * h;
                let (dhr, dhp, dpr) = (&mut dh[span.clone()], &mut dh_prev[span.clone()], &mut dpk[r * p..(r + 1) * p]);
                if (k as i64) >= s.lengths[b0 + r] {
                    dhp.copy_from_slice(dhr);
                    dpr.fill(T::zero());
                    continue;
                }
                for (a, g) in dhr.iter_mut().zip(&gy[span.clone()]) {
                    *a = *a + *g;
                }
                let gate = d.gate.then(|| (&saved.g[at + r * h..at + (r + 1) * h], &h_before[span.clone()]));
                gate_adjoint(dhr, &ht_k[span.clone()], gate, &mut dpr[m..], dhp);
            }
            // dc_k += [dz_h, dz_g] [W_hc; W_gc].
            w_c.gemm(MatMut::rows(&mut dc, rows, mn, mn), true, MatRef::rows(&dpk[m..], rows, gh, p), &mut a_buf);
            // Memory adjoint: dc_{k-1}, df_k from dc_k; held rows pass dc through.
            match step {
                PackedStep::Gbt(op) => {
                    let coef = step_coef(s.coef, k, d, b0, b1, &mut coef_buf);
                    gbt_scan_adjoint(op, &dc, coef, 1, rows * m, false, &mut df, &mut dc_prev)?;
                }
                PackedStep::Zoh { a: ad, bd } => {
                    // dc_{k-1} = dc_k Ad, df_k = dc_k . Bd, one row per (batch row, unit).
                    let (um, n) = (rows * m, d.order);
                    ad.gemm(MatMut::rows(&mut dc_prev, um, n, n), false, MatRef::rows(&dc, um, n, n), &mut z_buf);
                    let bd = MatRef::rows(bd, n, 1, 1);
                    gemm(MatMut::rows(&mut df, um, 1, 1), T::zero(), MatRef::rows(&dc, um, n, n), bd);
                }
            }
            for r in 0..rows {
                if (k as i64) >= s.lengths[b0 + r] {
                    dc_prev[r * mn..(r + 1) * mn].copy_from_slice(&dc[r * mn..(r + 1) * mn]);
                    df[r * m..(r + 1) * m].fill(T::zero());
                }
                dpk[r * p..r * p + m].copy_from_slice(&df[r * m..(r + 1) * m]);
            }
            std::mem::swap(&mut dc, &mut dc_prev);
            // dh_{k-1} += df W_fh.
            gemm(MatMut::rows(&mut dh_prev, rows, h, h), T::one(), MatRef::rows(&df, rows, m, m), w_fh);
            std::mem::swap(&mut dh, &mut dh_prev);
        }
        // The chunk's products, each one GEMM over its (steps x rows) rows:
        // dW_c += dz^T c,  dW_fh += df^T h_{k-1},  dW_x^T += x^T dp,  dx = dp W_x,  db += sum of dp.
        let n_rows = (k1 - k0) * rows;
        let dpc = MatRef::rows(&dp, n_rows, p, p);
        c_chunk.repack(MatRef::rows(chunk_rows(saved.c, d, (k0, k1), (b0, b1), mn, &mut c_buf), n_rows, mn, mn));
        let dz_t = MatRef::rows(&dp[m..], n_rows, gh, p).t();
        c_chunk.gemm(MatMut::rows(&mut dw_c, gh, mn, mn), true, dz_t, &mut a_buf);
        let hb = MatRef::rows(hidden_before(d, s.h0, saved.y, (k0, k1), (b0, b1), &mut h_buf), n_rows, h, h);
        gemm(MatMut::rows(&mut dw_fh, m, h, h), T::one(), MatRef::rows(&dp, n_rows, m, p).t(), hb);
        let xs = MatRef::rows(chunk_rows(s.x, d, (k0, k1), (b0, b1), i, &mut x_buf), n_rows, i, i);
        gemm(MatMut::rows(&mut dw_x_t, i, p, p), T::one(), xs.t(), dpc);
        gemm(MatMut::rows(&mut dx, n_rows, i, i), T::zero(), dpc, MatRef::rows(w_x_t, i, p, p).t());
        for k in k0..k1 {
            let src = &dx[(k - k0) * rows * i..(k - k0 + 1) * rows * i];
            gx.part((k * bt + b0) * i, rows * i).copy_from_slice(src);
        }
        for row in dp[..n_rows * p].chunks_exact(p) {
            for (acc, v) in db.iter_mut().zip(row) {
                *acc = *acc + *v;
            }
        }
    }
    gh0.part(b0 * h, rows * h).copy_from_slice(&dh);
    gc0.part(b0 * mn, rows * mn).copy_from_slice(&dc);
    Ok(WeightGrads::scatter(d, &dw_c, &dw_x_t, &dw_fh, &db))
}

impl<T: Copy + num_traits::Zero> WeightGrads<T> {
    /// The gradients of W_f, b_f, W_h, b_h, W_g, b_g from those of the stacked weights (W_c, W_x^T,
    /// W_fh and the biases of the P pre-activations).
    fn scatter(d: &RnnDims, dw_c: &[T], dw_x_t: &[T], dw_fh: &[T], db: &[T]) -> Self {
        let (i, h, m, mn, p) = (d.input, d.hidden, d.units, d.memory(), d.width());
        let g = if d.gate { 1 } else { 0 };
        let input_row = |j: usize| (0..i).map(move |q| dw_x_t[q * p + j]);
        let mut w_f = Vec::with_capacity(m * (i + h));
        for j in 0..m {
            w_f.extend(input_row(j));
            w_f.extend_from_slice(&dw_fh[j * h..(j + 1) * h]);
        }
        let memory_weight = |rows: std::ops::Range<usize>| {
            let mut out = Vec::with_capacity(rows.len() * (i + mn));
            for j in rows {
                out.extend(input_row(m + j));
                out.extend_from_slice(&dw_c[j * mn..(j + 1) * mn]);
            }
            out
        };
        WeightGrads {
            w_f,
            b_f: db[..m].to_vec(),
            w_h: memory_weight(0..h),
            b_h: db[m..m + h].to_vec(),
            w_g: memory_weight(h..h + g * h),
            b_g: db[m + h..].to_vec(),
        }
    }
}

#[cfg(test)]
mod tests;
