//! O(N) scans: `gbt_scan`, `gbt_scan_adjoint` and the operator test hook
//! `structured_apply`. float32 and float64 arrays keep their dtype; the GIL is released during the work.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hippo_core::rows::RowRule;
use hippo_core::scan::{self as core_scan, Coefficients};
use hippo_core::simd::Isa;
use hippo_core::{LegsConvention, Measure, Method, Real, Structured};
use numpy::npyffi::objects::_PyArray_GET_ITEM_DATA;
use numpy::npyffi::{PyArray_CheckExact, NPY_ARRAY_WRITEABLE};
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt, PyString};

use crate::convert::{guard, to_py, zeros};

pub(crate) fn measure_of(name: &str, params: &HashMap<String, f64>) -> PyResult<Measure> {
    let pairs: Vec<(&str, f64)> = params.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    Measure::new(name, &pairs).map_err(to_py)
}

/// The operators of the last (measure, N) used, per dtype: a stepping loop reuses them instead of
/// rebuilding their O(N) tables on every call.
type OpsSlot<T> = Mutex<Option<(Measure, usize, Arc<Structured<T>>)>>;

trait CachedOps: Real + Element {
    fn slot() -> &'static OpsSlot<Self>;
}

impl CachedOps for f32 {
    fn slot() -> &'static OpsSlot<f32> {
        static SLOT: OpsSlot<f32> = Mutex::new(None);
        &SLOT
    }
}

impl CachedOps for f64 {
    fn slot() -> &'static OpsSlot<f64> {
        static SLOT: OpsSlot<f64> = Mutex::new(None);
        &SLOT
    }
}

fn ops_for<T: CachedOps>(m: Measure, n: usize) -> PyResult<Arc<Structured<T>>> {
    let mut slot = T::slot().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((cm, cn, ops)) = slot.as_ref() {
        if *cm == m && *cn == n {
            return Ok(ops.clone());
        }
    }
    let ops = Arc::new(m.structured::<T>(n).map_err(to_py)?);
    *slot = Some((m, n, ops.clone()));
    Ok(ops)
}

pub(crate) fn describe(obj: &Bound<'_, PyAny>) -> String {
    match obj.cast::<PyUntypedArray>() {
        Ok(a) => format!("an array of dtype {} and shape {:?}", a.dtype(), a.shape()),
        Err(_) => obj.get_type().name().map(|n| n.to_string()).unwrap_or_default(),
    }
}

/// `obj` as a C-contiguous array of element type T with `ndims` dimensions, or a TypeError/ValueError naming `arg`.
pub(crate) fn typed<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    arg: &str,
    ndims: &[usize],
    dtype: &str,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let arr = obj
        .cast::<PyArrayDyn<T>>()
        .map_err(|_| PyTypeError::new_err(format!("{arg}: expected a {dtype} numpy array, got {}", describe(obj))))?;
    if !ndims.contains(&arr.ndim()) {
        return Err(PyValueError::new_err(format!(
            "{arg}: expected {} dimensions, got shape {:?}",
            ndims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" or "),
            arr.shape()
        )));
    }
    if !arr.is_c_contiguous() {
        return Err(PyValueError::new_err(format!("{arg}: expected a C-contiguous array")));
    }
    Ok(arr.clone())
}

pub(crate) fn shape_error(arg: &str, want: String, got: &[usize]) -> PyErr {
    PyValueError::new_err(format!("{arg}: expected shape {want}, got {got:?}"))
}

/// Validates coef against (L, R) and returns it with whether it is per row.
fn coef_array<'py>(
    coef: &Bound<'py, PyAny>,
    steps: Option<usize>,
    rows: usize,
) -> PyResult<(Bound<'py, PyArrayDyn<f64>>, bool)> {
    let c = typed::<f64>(coef, "coef", &[2, 3], "float64")?;
    let shape = c.shape().to_vec();
    let per_row = shape.len() == 3;
    let ok_l = steps.is_none_or(|l| shape[0] == l);
    let ok = ok_l && *shape.last().unwrap() == 3 && (!per_row || shape[1] == rows);
    if !ok {
        let l = steps.map_or("L".to_string(), |l| l.to_string());
        return Err(shape_error("coef", format!("({l}, 3) or ({l}, {rows}, 3)"), &shape));
    }
    Ok((c, per_row))
}

#[allow(clippy::too_many_arguments)]
fn scan_typed<'py, T: CachedOps>(
    py: Python<'py>,
    m: Measure,
    f: Bound<'py, PyArrayDyn<T>>,
    c0: Option<&Bound<'py, PyAny>>,
    coef: &Bound<'py, PyAny>,
    return_all: bool,
    out: Option<&Bound<'py, PyAny>>,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let (steps, rows) = (f.shape()[0], f.shape()[1]);
    let c0 = match c0 {
        Some(c) => Some(typed::<T>(c, "c0", &[2], dtype).map_err(|e| {
            if e.is_instance_of::<PyTypeError>(py) {
                PyTypeError::new_err(format!("c0: expected dtype {dtype} to match f, got {}", describe(c)))
            } else {
                e
            }
        })?),
        None => None,
    };
    let out = match out {
        Some(o) => Some(typed::<T>(o, "out", &[if return_all { 3 } else { 2 }], dtype)?),
        None => None,
    };
    let n = match (&c0, &out) {
        (Some(c), _) => {
            if c.shape()[0] != rows {
                return Err(shape_error("c0", format!("({rows}, N) to match f of shape ({steps}, {rows})"), c.shape()));
            }
            c.shape()[1]
        }
        (None, Some(o)) if !return_all => o.shape()[1],
        _ => return Err(PyValueError::new_err("c0: required unless out holds the initial state (return_all=False)")),
    };
    if n == 0 {
        return Err(PyValueError::new_err("c0: expected a memory order N >= 1, got shape (R, 0)"));
    }
    let (coef, per_row) = coef_array(coef, Some(steps), rows)?;
    let want: Vec<usize> = if return_all { vec![steps, rows, n] } else { vec![rows, n] };
    let out = match out {
        Some(o) if o.shape() != want.as_slice() => return Err(shape_error("out", format!("{want:?}"), o.shape())),
        Some(o) => o,
        None => {
            zeros::<T>(py, want.as_slice(), if return_all { "return_all=True: the states" } else { "the final state" })?
        }
    };
    let op = ops_for::<T>(m, n)?;
    {
        let f_ro = f.try_readonly().map_err(|e| PyValueError::new_err(format!("f: {e}")))?;
        let c0_ro = match &c0 {
            Some(c) => Some(c.try_readonly().map_err(|e| PyValueError::new_err(format!("c0: {e}")))?),
            None => None,
        };
        let coef_ro = coef.try_readonly().map_err(|e| PyValueError::new_err(format!("coef: {e}")))?;
        let mut out_rw = out.try_readwrite().map_err(|e| PyValueError::new_err(format!("out: {e}")))?;
        let (fs, ks) = (as_slice(&f_ro, "f")?, as_slice(&coef_ro, "coef")?);
        let cs = match &c0_ro {
            Some(c) => Some(as_slice(c, "c0")?),
            None => None,
        };
        let os = out_rw.as_slice_mut().map_err(|e| PyValueError::new_err(format!("out: {e}")))?;
        let coef = if per_row { Coefficients::PerRow(ks) } else { Coefficients::PerStep(ks) };
        py.detach(|| core_scan::gbt_scan(&op, fs, cs, coef, steps, rows, return_all, os)).map_err(to_py)?;
    }
    Ok(out.into_any())
}

pub(crate) fn as_slice<'a, T: Element>(a: &'a numpy::PyReadonlyArrayDyn<'_, T>, arg: &str) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|e| PyValueError::new_err(format!("{arg}: {e}")))
}

/// gbt_scan(measure, params, f (L, R), c0 (R, N), coef (L, 3) | (L, R, 3), return_all, out=None)
/// -> states (L, R, N) if return_all else the final state (R, N); float32 or float64 as f.
/// c0 = None: `out` (R, N) holds the initial state and is updated in place.
#[pyfunction]
#[pyo3(signature = (measure, params, f, c0, coef, return_all, out=None))]
#[allow(clippy::too_many_arguments)]
fn gbt_scan<'py>(
    py: Python<'py>,
    measure: &str,
    params: HashMap<String, f64>,
    f: &Bound<'py, PyAny>,
    c0: Option<&Bound<'py, PyAny>>,
    coef: &Bound<'py, PyAny>,
    return_all: bool,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    guard("gbt_scan", || {
        let m = measure_of(measure, &params)?;
        if let Ok(f32s) = typed::<f32>(f, "f", &[2], "float32") {
            return scan_typed(py, m, f32s, c0, coef, return_all, out, "float32");
        }
        let f64s = typed::<f64>(f, "f", &[2], "float64").map_err(|e| {
            if e.is_instance_of::<PyTypeError>(py) {
                PyTypeError::new_err(format!(
                    "f: expected a float32 or float64 array of shape (L, R), got {}",
                    describe(f)
                ))
            } else {
                e
            }
        })?;
        scan_typed(py, m, f64s, c0, coef, return_all, out, "float64")
    })
}

fn adjoint_typed<'py, T: CachedOps>(
    py: Python<'py>,
    m: Measure,
    grad: Bound<'py, PyArrayDyn<T>>,
    coef: &Bound<'py, PyAny>,
    return_all: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let shape = grad.shape().to_vec();
    let (steps, rows, n) = if return_all {
        if shape.len() != 3 {
            return Err(shape_error("grad", "(L, R, N) when return_all".into(), &shape));
        }
        (Some(shape[0]), shape[1], shape[2])
    } else {
        if shape.len() != 2 {
            return Err(shape_error("grad", "(R, N) when not return_all".into(), &shape));
        }
        (None, shape[0], shape[1])
    };
    if n == 0 {
        return Err(PyValueError::new_err("grad: expected a memory order N >= 1, got N = 0"));
    }
    let (coef, per_row) = coef_array(coef, steps, rows)?;
    let steps = coef.shape()[0];
    let grad_f = zeros::<T>(py, [steps, rows].as_slice(), "the gradient of f")?;
    let grad_c0 = zeros::<T>(py, [rows, n].as_slice(), "the gradient of c0")?;
    let op = ops_for::<T>(m, n)?;
    {
        let g_ro = grad.try_readonly().map_err(|e| PyValueError::new_err(format!("grad: {e}")))?;
        let coef_ro = coef.try_readonly().map_err(|e| PyValueError::new_err(format!("coef: {e}")))?;
        let mut gf_rw = grad_f.readwrite();
        let mut gc_rw = grad_c0.readwrite();
        let (gs, ks) = (as_slice(&g_ro, "grad")?, as_slice(&coef_ro, "coef")?);
        let gf = gf_rw.as_slice_mut().map_err(|e| PyValueError::new_err(e.to_string()))?;
        let gc = gc_rw.as_slice_mut().map_err(|e| PyValueError::new_err(e.to_string()))?;
        let coef = if per_row { Coefficients::PerRow(ks) } else { Coefficients::PerStep(ks) };
        py.detach(|| core_scan::gbt_scan_adjoint(&op, gs, coef, steps, rows, return_all, gf, gc)).map_err(to_py)?;
    }
    Ok((grad_f, grad_c0).into_pyobject(py)?.into_any())
}

/// gbt_scan_adjoint(measure, params, grad, coef, return_all) -> (grad_f (L, R), grad_c0 (R, N)).
#[pyfunction]
fn gbt_scan_adjoint<'py>(
    py: Python<'py>,
    measure: &str,
    params: HashMap<String, f64>,
    grad: &Bound<'py, PyAny>,
    coef: &Bound<'py, PyAny>,
    return_all: bool,
) -> PyResult<Bound<'py, PyAny>> {
    guard("gbt_scan_adjoint", || {
        let m = measure_of(measure, &params)?;
        let dims = [2, 3];
        if let Ok(g) = typed::<f32>(grad, "grad", &dims, "float32") {
            return adjoint_typed(py, m, g, coef, return_all);
        }
        let g = typed::<f64>(grad, "grad", &dims, "float64").map_err(|e| {
            if e.is_instance_of::<PyTypeError>(py) {
                PyTypeError::new_err(format!("grad: expected a float32 or float64 array, got {}", describe(grad)))
            } else {
                e
            }
        })?;
        adjoint_typed(py, m, g, coef, return_all)
    })
}

/// Whether `obj` is exactly a `numpy.ndarray` (not a subclass, which may carry meaning the raw data
/// lacks, such as a mask).
fn is_plain_ndarray(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: a type check of a live object (numpy's API table is initialised on use).
    unsafe { PyArray_CheckExact(obj.py(), obj.as_ptr()) != 0 }
}

/// Whether an array's data may be written (numpy's WRITEABLE flag).
fn is_writeable<T: Element>(a: &Bound<'_, PyArrayDyn<T>>) -> bool {
    // SAFETY: reads the flags of a live array.
    unsafe { (*_PyArray_GET_ITEM_DATA(a.as_array_ptr())).flags & NPY_ARRAY_WRITEABLE != 0 }
}

/// The bytes an array's data occupies.
fn data_span<T: Element>(a: &Bound<'_, PyArrayDyn<T>>) -> std::ops::Range<usize> {
    let start = a.data() as usize;
    start..start + a.len() * std::mem::size_of::<T>()
}

/// State elements of one step from which `legs_step` releases the GIL (~20 µs of work).
const DETACH_WORK: usize = 1 << 16;

/// Inputs `f` given as one Python number up to this many rows are spread on the stack.
const STACK_ROWS: usize = 64;

/// The input of one LegS step: a plain array of the batch's shape, or one Python number for every row.
enum StepInput<'py, T: Element> {
    Array(Bound<'py, PyArrayDyn<T>>),
    Number(T),
}

/// Whether two arrays' data overlap (by bytes).
fn overlap<T: Element>(a: &Bound<'_, PyArrayDyn<T>>, b: &Bound<'_, PyArrayDyn<T>>) -> bool {
    let (x, y) = (data_span(a), data_span(b));
    x.start < y.end && y.start < x.end
}

/// The elements of an aligned C-contiguous array, without rust-numpy's borrow tracking.
///
/// # Safety
/// `a` is aligned and C-contiguous, and for as long as the slice lives: the GIL stays held, no
/// Python code runs (so none can reach the array), and no mutable slice of overlapping memory is
/// live (see `legs_step_typed`).
unsafe fn untracked<'a, T: Element>(a: &'a Bound<'_, PyArrayDyn<T>>) -> &'a [T] {
    match a.len() {
        0 => &[],
        len => std::slice::from_raw_parts(a.data(), len),
    }
}

/// `untracked` for writing.
///
/// # Safety
/// As `untracked`, `a` writeable, and no other slice of overlapping memory live.
#[allow(clippy::mut_from_ref)]
unsafe fn untracked_mut<'a, T: Element>(a: &'a Bound<'_, PyArrayDyn<T>>) -> &'a mut [T] {
    match a.len() {
        0 => &mut [],
        len => std::slice::from_raw_parts_mut(a.data(), len),
    }
}

/// The rule of `legs_step`'s (method, convention) strings. The rule of the last pair is kept with
/// the two string objects themselves (held, so no other object can appear at their addresses), and
/// Python interns the literal names a stepping loop passes, so the loop parses them once. None when
/// the names are not strings or not a valid GBT method and LegS convention.
fn legs_rule(method: &Bound<'_, PyAny>, convention: &Bound<'_, PyAny>) -> PyResult<Option<RowRule>> {
    type Slot = Mutex<Option<(Py<PyString>, Py<PyString>, RowRule)>>;
    static LAST: Slot = Mutex::new(None);
    let lock = || LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((m, c, rule)) = lock().as_ref() {
        if m.is(method) && c.is(convention) {
            return Ok(Some(*rule));
        }
    }
    let (Ok(m), Ok(c)) = (method.cast::<PyString>(), convention.cast::<PyString>()) else {
        return Ok(None);
    };
    let (method_name, convention_name) = (m.to_cow()?, c.to_cow()?);
    let rule = Method::new(&method_name, None)
        .and_then(|k| RowRule::new(&Measure::LegS, k, None, LegsConvention::new(&convention_name)?, false));
    let Ok(rule) = rule else { return Ok(None) };
    // The replaced strings are released after the lock.
    let _old = lock().replace((m.clone().unbind(), c.clone().unbind(), rule));
    Ok(Some(rule))
}

fn legs_step_typed<'py, T: CachedOps>(
    py: Python<'py>,
    c: &Bound<'py, PyArrayDyn<T>>,
    f: &Bound<'py, PyAny>,
    row: [f64; 3],
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let shape = c.shape();
    let Some(&n) = shape.last() else { return Ok(None) };
    if n == 0 || !c.is_c_contiguous() || !c.is_aligned() {
        return Ok(None);
    }
    let rows = c.len() / n;
    let batch = &shape[..shape.len() - 1];
    let input = if f.is_exact_instance_of::<PyFloat>() || f.is_exact_instance_of::<PyInt>() {
        match f.extract::<f64>() {
            Ok(x) => StepInput::Number(T::cast(x)),
            Err(_) => return Ok(None),
        }
    } else {
        match f.cast::<PyArrayDyn<T>>() {
            Ok(a) if is_plain_ndarray(f) && a.shape() == batch && a.is_c_contiguous() && a.is_aligned() => {
                StepInput::Array(a.clone())
            }
            _ => return Ok(None),
        }
    };
    // out: None (a new array), c itself (in place) or a writeable array of c's kind not overlapping c.
    let in_place = out.is_some_and(|o| o.is(c));
    let target = match out {
        None => zeros::<T>(py, shape, "the new state")?,
        Some(_) if in_place => c.clone(),
        Some(o) => match o.cast::<PyArrayDyn<T>>() {
            Ok(a) if is_plain_ndarray(o) && a.shape() == shape && a.is_c_contiguous() && a.is_aligned() => {
                if overlap(a, c) {
                    return Ok(None);
                }
                a.clone()
            }
            _ => return Ok(None),
        },
    };
    if !is_writeable(&target) {
        return Ok(None);
    }
    if let StepInput::Array(a) = &input {
        if overlap(a, &target) {
            return Ok(None);
        }
    }
    let op = ops_for::<T>(Measure::LegS, n)?;
    let coef = Coefficients::PerStep(&row);
    let mut stack = [T::cast(0.0); STACK_ROWS];
    let heap;
    let numbers: &[T] = match input {
        StepInput::Number(x) if rows <= STACK_ROWS => {
            stack[..rows].fill(x);
            &stack[..rows]
        }
        StepInput::Number(x) => {
            heap = vec![x; rows];
            &heap
        }
        StepInput::Array(_) => &[],
    };
    if rows * n >= DETACH_WORK {
        // A large step releases the GIL (other threads gain more than releasing and taking it back
        // costs): the arrays are borrowed through rust-numpy's tracking, which sees other threads'
        // borrows; a conflict takes the general path.
        let f_ro = match &input {
            StepInput::Array(a) => match a.try_readonly() {
                Ok(r) => Some(r),
                Err(_) => return Ok(None),
            },
            StepInput::Number(_) => None,
        };
        let fs: &[T] = match &f_ro {
            Some(r) => as_slice(r, "f")?,
            None => numbers,
        };
        let c_ro = match in_place {
            true => None,
            false => match c.try_readonly() {
                Ok(r) => Some(r),
                Err(_) => return Ok(None),
            },
        };
        let cs = match &c_ro {
            Some(r) => Some(as_slice(r, "c")?),
            None => None,
        };
        let Ok(mut out_rw) = target.try_readwrite() else { return Ok(None) };
        let os = out_rw.as_slice_mut().map_err(|e| PyValueError::new_err(format!("out: {e}")))?;
        py.detach(|| core_scan::gbt_scan(&op, fs, cs, coef, 1, rows, false, os)).map_err(to_py)?;
    } else {
        // A small step keeps the GIL and runs no Python code: the arrays are read and written
        // directly. SAFETY: every array is aligned and C-contiguous (checked above). The GIL is held
        // from here to the end of the step (this abi3 module loads only on interpreters with a GIL)
        // and nothing below runs Python code, so no Python code, in this thread or another, can
        // resize, free or write the arrays meanwhile. `target` is writeable and overlaps neither `f`
        // (checked above) nor `c` unless it is `c` itself (in place: `c` is then not read
        // separately), so the one mutable slice aliases no other. Not seen here, unlike with
        // rust-numpy's tracking: a borrow that native code in another thread holds while it has
        // released the GIL (as with any numpy call on the same arrays meanwhile).
        let fs: &[T] = match &input {
            StepInput::Array(a) => unsafe { untracked(a) },
            StepInput::Number(_) => numbers,
        };
        let cs = if in_place { None } else { Some(unsafe { untracked(c) }) };
        let os = unsafe { untracked_mut(&target) };
        core_scan::gbt_scan(&op, fs, cs, coef, 1, rows, false, os).map_err(to_py)?;
    }
    Ok(Some(target.into_any()))
}

/// legs_step(c, f, t, method, convention, out) -> the new state, or None.
///
/// The common call of a LegS stepping loop, without the general argument handling: `c` a plain
/// aligned C-contiguous float32/float64 array (..., N), `f` a Python number or a plain aligned
/// C-contiguous array of shape `c.shape[:-1]` and c's dtype, `t` an int step index, `out` None, `c`
/// itself or a plain writeable aligned C-contiguous array of c's shape and dtype that does not
/// overlap it (nor `f` overlap `out`). The coefficient row is the core's (`RowRule`). The GIL is
/// released for steps of at least `DETACH_WORK` state elements. None when the call is not of that
/// kind: the caller takes the general path, which validates every argument and reports mistakes.
#[pyfunction]
#[pyo3(signature = (c, f, t, method, convention, out=None))]
fn legs_step<'py>(
    py: Python<'py>,
    c: &Bound<'py, PyAny>,
    f: &Bound<'py, PyAny>,
    t: &Bound<'py, PyAny>,
    method: &Bound<'py, PyAny>,
    convention: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    guard("legs_step", || {
        if !t.is_exact_instance_of::<PyInt>() || !is_plain_ndarray(c) {
            return Ok(None);
        }
        let Ok(k) = t.extract::<u64>() else { return Ok(None) };
        let Some(rule) = legs_rule(method, convention)? else { return Ok(None) };
        if k >= i64::MAX as u64 {
            return Ok(None);
        }
        let row = rule.indexed(k);
        if let Ok(c32) = c.cast::<PyArrayDyn<f32>>() {
            return legs_step_typed(py, c32, f, row, out);
        }
        match c.cast::<PyArrayDyn<f64>>() {
            Ok(c64) => legs_step_typed(py, c64, f, row, out),
            Err(_) => Ok(None),
        }
    })
}

/// structured_apply(measure, params, x (R, N) float64, d, op) -> (R, N): the O(N) operator `op`
/// ("mul": (I + dA)x, "solve": (I - dA)^{-1}x, "mul_t", "solve_t": their transposes) on each row.
/// A test hook for the operators' adjoint identities; not part of the public API.
#[pyfunction]
fn structured_apply<'py>(
    py: Python<'py>,
    measure: &str,
    params: HashMap<String, f64>,
    x: &Bound<'py, PyAny>,
    d: f64,
    op: &str,
) -> PyResult<Bound<'py, PyAny>> {
    guard("structured_apply", || {
        let m = measure_of(measure, &params)?;
        let x = typed::<f64>(x, "x", &[2], "float64")?;
        let n = x.shape()[1];
        if n == 0 {
            return Err(PyValueError::new_err("x: expected a memory order N >= 1, got shape (R, 0)"));
        }
        let s: Structured<f64> = m.structured(n).map_err(to_py)?;
        let apply: fn(&Structured<f64>, f64, &mut [f64]) = match op {
            "mul" => Structured::mul_explicit,
            "solve" => Structured::solve_implicit,
            "mul_t" => Structured::mul_explicit_transpose,
            "solve_t" => Structured::solve_implicit_transpose,
            _ => return Err(PyValueError::new_err(format!("op: expected mul, solve, mul_t or solve_t, got '{op}'"))),
        };
        let y = x.to_owned_array();
        let mut y = y.as_standard_layout().into_owned();
        for row in y.as_slice_mut().expect("standard layout").chunks_exact_mut(n) {
            apply(&s, d, row);
        }
        Ok(numpy::PyArray::from_owned_array(py, y).into_any())
    })
}

/// _set_isa(name | None) -> the instruction set now used by the SIMD kernels ("scalar", "avx2",
/// "avx512"): forces `name` for this process (None: the detected one). A test hook for every code path
/// (they give bitwise the same results); ValueError if the CPU lacks `name`.
#[pyfunction]
#[pyo3(signature = (name=None))]
fn _set_isa(name: Option<&str>) -> PyResult<&'static str> {
    guard("_set_isa", || {
        let isa = name.map(Isa::parse).transpose().map_err(to_py)?;
        Isa::force(isa).map_err(to_py)?;
        Ok(Isa::active().name())
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(gbt_scan, m)?)?;
    m.add_function(wrap_pyfunction!(gbt_scan_adjoint, m)?)?;
    m.add_function(wrap_pyfunction!(legs_step, m)?)?;
    m.add_function(wrap_pyfunction!(structured_apply, m)?)?;
    m.add_function(wrap_pyfunction!(_set_isa, m)?)?;
    // The fewest steps for which the final state of a few rows takes the single-row form of the
    // `Prefix` step on SIMD CPUs (tests use it).
    m.add("_ROW_FORM_STEPS", core_scan::ROW_FORM_STEPS)?;
    Ok(())
}
