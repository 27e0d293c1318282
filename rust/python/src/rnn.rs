//! The HiPPO-RNN layer over a sequence: `rnn_forward` and `rnn_backward` (hippo_core::rnn), with
//! the caller's preallocated output arrays. float32 or float64 (as x, every array the same); the
//! GIL is released during the work.

use std::collections::HashMap;

use hippo_core::rnn::{
    self as core_rnn, Activations, MemoryStep, RnnDims, RnnGradOutputs, RnnGrads, RnnInputs, RnnSaved, RnnWeights,
};
use hippo_core::scan::Coefficients;
use hippo_core::zoh::ZohStep;
use hippo_core::{Measure, Structured};
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::convert::{advise_huge_pages, guard, to_py};

const INPUTS: [&str; 3] = ["x", "h0", "c0"];
const WEIGHTS: [&str; 6] = ["w_f", "b_f", "w_h", "b_h", "w_g", "b_g"];

fn array<'py, T: Element>(obj: &Bound<'py, PyAny>, arg: &str, dtype: &str) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let a = obj
        .cast::<PyArrayDyn<T>>()
        .map_err(|_| PyTypeError::new_err(format!("{arg}: expected a C-contiguous {dtype} numpy array")))?;
    if !a.is_c_contiguous() {
        return Err(PyValueError::new_err(format!("{arg}: expected a C-contiguous array")));
    }
    Ok(a.clone())
}

fn readonly<'py, T: Element>(
    objs: &[Bound<'py, PyAny>],
    names: &[&str],
    dtype: &str,
) -> PyResult<Vec<PyReadonlyArrayDyn<'py, T>>> {
    if objs.len() != names.len() {
        return Err(PyValueError::new_err(format!("expected the {} arrays {names:?}", names.len())));
    }
    objs.iter()
        .zip(names)
        .map(|(o, n)| array::<T>(o, n, dtype)?.try_readonly().map_err(|e| PyValueError::new_err(format!("{n}: {e}"))))
        .collect()
}

fn readwrite<'py, T: Element>(
    objs: &[Bound<'py, PyAny>],
    names: &[&str],
    dtype: &str,
) -> PyResult<Vec<PyReadwriteArrayDyn<'py, T>>> {
    if objs.len() != names.len() {
        return Err(PyValueError::new_err(format!("expected the {} output arrays {names:?}", names.len())));
    }
    objs.iter()
        .zip(names)
        .map(|(o, n)| array::<T>(o, n, dtype)?.try_readwrite().map_err(|e| PyValueError::new_err(format!("{n}: {e}"))))
        .collect()
}

fn slices<'a, T: Element>(arrays: &'a [PyReadonlyArrayDyn<'_, T>]) -> Vec<&'a [T]> {
    arrays.iter().map(|a| a.as_slice().expect("checked C-contiguous")).collect()
}

fn slices_mut<'a, T: Element>(arrays: &'a mut [PyReadwriteArrayDyn<'_, T>]) -> Vec<&'a mut [T]> {
    arrays.iter_mut().map(|a| a.as_slice_mut().expect("checked C-contiguous")).collect()
}

/// The sizes from x (L, B, I), h0 (B, H), c0 (B, M, N) and whether W_g is given.
fn dims(x: &[usize], h0: &[usize], c0: &[usize], gate: bool) -> PyResult<RnnDims> {
    match (x, h0, c0) {
        (&[steps, batch, input], &[_, hidden], &[_, units, order]) if order > 0 => {
            Ok(RnnDims { steps, batch, input, hidden, units, order, gate })
        }
        _ => Err(PyValueError::new_err(format!(
            "x, h0, c0: expected shapes (L, B, I), (B, H), (B, M, N >= 1), got {x:?}, {h0:?}, {c0:?}"
        ))),
    }
}

struct Common<'py> {
    measure: Measure,
    coef: PyReadonlyArrayDyn<'py, f64>,
    per_row: bool,
    lengths: PyReadonlyArrayDyn<'py, i64>,
    zoh_dt: Option<f64>,
}

fn common<'py>(
    measure: &str,
    params: &HashMap<String, f64>,
    coef: &Bound<'py, PyAny>,
    lengths: &Bound<'py, PyAny>,
    zoh_dt: Option<f64>,
) -> PyResult<Common<'py>> {
    let pairs: Vec<(&str, f64)> = params.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let measure = Measure::new(measure, &pairs).map_err(to_py)?;
    let coef = array::<f64>(coef, "coef", "float64")?;
    let per_row = coef.ndim() == 3;
    let coef = coef.try_readonly().map_err(|e| PyValueError::new_err(format!("coef: {e}")))?;
    let lengths = array::<i64>(lengths, "lengths", "int64")?;
    let lengths = lengths.try_readonly().map_err(|e| PyValueError::new_err(format!("lengths: {e}")))?;
    Ok(Common { measure, coef, per_row, lengths, zoh_dt })
}

/// The memory step: GBT through the measure's structured operator, or ZOH at `zoh_dt`.
enum Step<T> {
    Gbt(Structured<T>),
    Zoh(ZohStep<T>),
}

impl<T: Activations> Step<T> {
    fn new(c: &Common<'_>, order: usize) -> PyResult<Self> {
        match c.zoh_dt {
            None => c.measure.structured(order).map(Step::Gbt).map_err(to_py),
            Some(dt) => ZohStep::new(&c.measure, order, dt).map(Step::Zoh).map_err(to_py),
        }
    }

    fn memory(&self) -> MemoryStep<'_, T> {
        match self {
            Step::Gbt(op) => MemoryStep::Gbt(op),
            Step::Zoh(z) => MemoryStep::Zoh(z),
        }
    }
}

impl Common<'_> {
    fn coefficients(&self) -> Coefficients<'_> {
        let c = self.coef.as_slice().expect("checked C-contiguous");
        if self.per_row {
            Coefficients::PerRow(c)
        } else {
            Coefficients::PerStep(c)
        }
    }
}

/// What both directions read: x, h0, c0, the weights, the layer's sizes and its memory step.
struct Layer<'py, T: Element> {
    inputs: Vec<PyReadonlyArrayDyn<'py, T>>,
    weights: Vec<PyReadonlyArrayDyn<'py, T>>,
    dims: RnnDims,
    step: Step<T>,
}

impl<'py, T: Activations + Element> Layer<'py, T> {
    fn new(c: &Common<'_>, inputs: &[Bound<'py, PyAny>], weights: &[Bound<'py, PyAny>], dtype: &str) -> PyResult<Self> {
        let inputs = readonly::<T>(inputs, &INPUTS, dtype)?;
        let weights = readonly::<T>(weights, &WEIGHTS, dtype)?;
        let dims = dims(inputs[0].shape(), inputs[1].shape(), inputs[2].shape(), weights[4].len() > 0)?;
        let step = Step::new(c, dims.order)?;
        Ok(Layer { inputs, weights, dims, step })
    }

    fn sequence<'a>(&'a self, c: &'a Common<'_>) -> RnnInputs<'a, T> {
        let i = slices(&self.inputs);
        RnnInputs {
            x: i[0],
            h0: i[1],
            c0: i[2],
            coef: c.coefficients(),
            lengths: c.lengths.as_slice().expect("contiguous"),
        }
    }

    fn weights(&self) -> RnnWeights<'_, T> {
        let w = slices(&self.weights);
        RnnWeights { w_f: w[0], b_f: w[1], w_h: w[2], b_h: w[3], w_g: w[4], b_g: w[5] }
    }
}

#[allow(clippy::too_many_arguments)]
fn forward_typed<T: Activations + Element>(
    py: Python<'_>,
    c: &Common<'_>,
    inputs: &[Bound<'_, PyAny>],
    weights_in: &[Bound<'_, PyAny>],
    outs: &[Bound<'_, PyAny>],
    threads: usize,
    dtype: &str,
) -> PyResult<()> {
    let layer = Layer::<T>::new(c, inputs, weights_in, dtype)?;
    let mut out = readwrite::<T>(outs, &["y", "h_n", "c_n", "c", "h_tilde", "g"], dtype)?;
    let (d, s, w) = (layer.dims, layer.sequence(c), layer.weights());
    let mut o = slices_mut(&mut out).into_iter();
    let mut next = || {
        let buf = o.next().expect("six outputs");
        advise_huge_pages(buf);
        buf
    };
    let fw = core_rnn::RnnForward { y: next(), h_n: next(), c_n: next(), c: next(), h_tilde: next(), g: next() };
    py.detach(|| core_rnn::rnn_forward(layer.step.memory(), &d, &w, &s, fw, threads)).map_err(to_py)
}

/// rnn_forward(measure, params, [x, h0, c0], coef, lengths, [w_f, b_f, w_h, b_h, w_g, b_g],
/// [y, h_n, c_n, c, h_tilde, g], threads, zoh_dt=None): the layer over the sequence, written into the
/// outputs. W_g and b_g empty (and g empty): no gate. c, h_tilde, g all empty: nothing saved.
/// zoh_dt: the ZOH memory step at this fixed step (coef is not read) instead of the GBT one.
#[pyfunction]
#[pyo3(signature = (measure, params, inputs, coef, lengths, weights, outs, threads, zoh_dt=None))]
#[allow(clippy::too_many_arguments)]
fn rnn_forward(
    py: Python<'_>,
    measure: &str,
    params: HashMap<String, f64>,
    inputs: Vec<Bound<'_, PyAny>>,
    coef: &Bound<'_, PyAny>,
    lengths: &Bound<'_, PyAny>,
    weights: Vec<Bound<'_, PyAny>>,
    outs: Vec<Bound<'_, PyAny>>,
    threads: usize,
    zoh_dt: Option<f64>,
) -> PyResult<()> {
    guard("rnn_forward", || {
        let c = common(measure, &params, coef, lengths, zoh_dt)?;
        match inputs.first().map(|x| x.cast::<PyArrayDyn<f32>>().is_ok()) {
            Some(true) => forward_typed::<f32>(py, &c, &inputs, &weights, &outs, threads, "float32"),
            _ => forward_typed::<f64>(py, &c, &inputs, &weights, &outs, threads, "float64"),
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn backward_typed<T: Activations + Element>(
    py: Python<'_>,
    c: &Common<'_>,
    inputs: &[Bound<'_, PyAny>],
    weights_in: &[Bound<'_, PyAny>],
    saved: &[Bound<'_, PyAny>],
    grad_outs: &[Bound<'_, PyAny>],
    grads: &[Bound<'_, PyAny>],
    threads: usize,
    dtype: &str,
) -> PyResult<()> {
    let layer = Layer::<T>::new(c, inputs, weights_in, dtype)?;
    let sv = readonly::<T>(saved, &["y", "c", "h_tilde", "g"], dtype)?;
    let go = readonly::<T>(grad_outs, &["grad_y", "grad_h_n", "grad_c_n"], dtype)?;
    let names =
        ["grad_x", "grad_h0", "grad_c0", "grad_w_f", "grad_b_f", "grad_w_h", "grad_b_h", "grad_w_g", "grad_b_g"];
    let mut gr = readwrite::<T>(grads, &names, dtype)?;
    let (d, s, w) = (layer.dims, layer.sequence(c), layer.weights());
    let (sv, go) = (slices(&sv), slices(&go));
    let saved = RnnSaved { y: sv[0], c: sv[1], h_tilde: sv[2], g: sv[3] };
    let grad_out = RnnGradOutputs { y: go[0], h_n: go[1], c_n: go[2] };
    let mut o = slices_mut(&mut gr).into_iter();
    let mut next = || o.next().expect("nine gradients");
    let g = RnnGrads {
        x: next(),
        h0: next(),
        c0: next(),
        w_f: next(),
        b_f: next(),
        w_h: next(),
        b_h: next(),
        w_g: next(),
        b_g: next(),
    };
    py.detach(|| core_rnn::rnn_backward(layer.step.memory(), &d, &w, &s, &saved, &grad_out, g, threads)).map_err(to_py)
}

/// rnn_backward(measure, params, [x, h0, c0], coef, lengths, weights, [y, c, h_tilde, g],
/// [grad_y, grad_h_n, grad_c_n], [grad_x, grad_h0, grad_c0, grad_w_f, ..., grad_b_g], threads):
/// backpropagation through time, written into the gradient arrays (zoh_dt as for rnn_forward).
#[pyfunction]
#[pyo3(signature = (measure, params, inputs, coef, lengths, weights, saved, grad_outs, grads, threads, zoh_dt=None))]
#[allow(clippy::too_many_arguments)]
fn rnn_backward(
    py: Python<'_>,
    measure: &str,
    params: HashMap<String, f64>,
    inputs: Vec<Bound<'_, PyAny>>,
    coef: &Bound<'_, PyAny>,
    lengths: &Bound<'_, PyAny>,
    weights: Vec<Bound<'_, PyAny>>,
    saved: Vec<Bound<'_, PyAny>>,
    grad_outs: Vec<Bound<'_, PyAny>>,
    grads: Vec<Bound<'_, PyAny>>,
    threads: usize,
    zoh_dt: Option<f64>,
) -> PyResult<()> {
    guard("rnn_backward", || {
        let c = common(measure, &params, coef, lengths, zoh_dt)?;
        match inputs.first().map(|x| x.cast::<PyArrayDyn<f32>>().is_ok()) {
            Some(true) => {
                backward_typed::<f32>(py, &c, &inputs, &weights, &saved, &grad_outs, &grads, threads, "float32")
            }
            _ => backward_typed::<f64>(py, &c, &inputs, &weights, &saved, &grad_outs, &grads, threads, "float64"),
        }
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(rnn_forward, m)?)?;
    m.add_function(wrap_pyfunction!(rnn_backward, m)?)?;
    Ok(())
}
