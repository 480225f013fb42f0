//! Thin PyO3 binding of the pure-Rust `reward_core` crate: the extension module
//! `dareu_reward_core._reward_core` of the torch-free distribution `dareu-reward-core`,
//! built by maturin (rust/reward_core_py/pyproject.toml; `dareu._reward_core` is the same
//! module under DareU's name). numpy in, numpy out, GIL released.
//!
//! Every entry point validates its inputs before any work and reports a bad input as
//! `ValueError("{argument}: {what is wrong}")`: the core's `RewardError`s are mapped to
//! Python exceptions in one place, `py_err`. The work runs inside `catch_unwind`, so
//! even a bug cannot unwind into Python: it becomes a `RuntimeError`. C-contiguous
//! float32 / int64 inputs are read in place; other layouts and float64 / int32 are
//! converted (one copy). Lengths and prefix ends (numpy int64) are copied into the
//! `usize` the core takes, a negative one being an error (`counts`). Outputs are Rust
//! vectors handed to numpy without a copy (the core's `usize` index arrays are turned
//! into int64 in place, in the same allocation).

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{
    IntoPyArray, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use reward_core::{
    ErrorKind, GaeParams, Mat, Offsets, PpoParams, RewardError, RewardParams, SegmentSpec,
    WhitenParams, CHI_EPS, C_SEG, GAE_LAMBDA, GAMMA, KL_COEF, K_SLICES, NO_SEGMENT, WHITEN_EPS,
};

type Array<'py> = Bound<'py, PyArrayDyn<f32>>;
type IntArray<'py> = Bound<'py, PyArrayDyn<i64>>;

fn bad(arg: &str, msg: String) -> PyErr {
    PyValueError::new_err(format!("{arg}: {msg}"))
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

fn internal_error(payload: &(dyn Any + Send)) -> PyErr {
    PyRuntimeError::new_err(format!(
        "dareu_reward_core internal error (a bug; please report it): {}",
        panic_message(payload)
    ))
}

/// The one place where the core's errors become Python exceptions: every kind of bad
/// input is a `ValueError("{arg}: {msg}")`.
fn py_err(e: RewardError) -> PyErr {
    match e.kind {
        ErrorKind::Shape | ErrorKind::OutOfRange | ErrorKind::NonFinite | ErrorKind::TooLarge => {
            PyValueError::new_err(e.to_string())
        }
        // `ErrorKind` is non-exhaustive: a kind added later is still a bad input.
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// Run the core computation without the GIL; a `RewardError` becomes an exception
/// ([`py_err`]) and a panic becomes `RuntimeError`.
fn run<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, RewardError> + Send) -> PyResult<T> {
    match py.detach(move || catch_unwind(AssertUnwindSafe(f))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(py_err(e)),
        Err(payload) => Err(internal_error(payload.as_ref())),
    }
}

/// Counts (lengths, prefix ends) from numpy int64 into the `usize` the core takes: a
/// copy, so what the core checks is what it uses. A negative entry is an `OutOfRange`
/// error naming `arg`, worded by `outside(index, value)` as the core words any other
/// value outside the range (so the message is the one a too-large value gets).
fn counts(
    arg: &'static str,
    v: &[i64],
    outside: impl Fn(usize, i64) -> String,
) -> Result<Vec<usize>, RewardError> {
    let mut out = Vec::new();
    out.try_reserve_exact(v.len()).map_err(|_| {
        RewardError::too_large(arg, format!("cannot copy an array of {} elements", v.len()))
    })?;
    for (i, &x) in v.iter().enumerate() {
        let n = usize::try_from(x).map_err(|_| RewardError::out_of_range(arg, outside(i, x)))?;
        out.push(n);
    }
    Ok(out)
}

/// Batch lengths `[B]` for a `[B, T]` batch, as the core words a length outside `[0, T]`.
fn batch_lengths(v: &[i64], t: usize) -> Result<Vec<usize>, RewardError> {
    counts("lengths", v, |i, l| {
        format!("lengths[{i}] = {l} is outside [0, T={t}]")
    })
}

/// The core's `usize` index arrays as numpy's int64, in place (same size and alignment,
/// so the collect reuses the allocation). Every value is below `MAX_LEN` (2^32), except
/// [`NO_SEGMENT`], which is numpy's -1.
fn to_i64(v: Vec<usize>) -> Vec<i64> {
    v.into_iter()
        .map(|x| if x == NO_SEGMENT { -1 } else { x as i64 })
        .collect()
}

/// Guard a whole entry point (argument conversion included) against panics.
fn guarded<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(internal_error(p.as_ref())))
}

/// A numpy input viewed as a flat C-order slice: borrowed when the layout allows.
struct Input<'py, T: numpy::Element> {
    view: Option<PyReadonlyArrayDyn<'py, T>>,
    owned: Vec<T>,
    shape: Vec<usize>,
}

impl<T: numpy::Element + Copy> Input<'_, T> {
    fn slice(&self) -> &[T] {
        match &self.view {
            // C-contiguity was checked; an empty slice would fail the shape checks.
            Some(v) => v.as_slice().unwrap_or(&[]),
            None => &self.owned,
        }
    }

    fn dim(&self, i: usize) -> usize {
        self.shape.get(i).copied().unwrap_or(0)
    }

    fn mat<'s>(&'s self, arg: &'static str) -> Result<Mat<'s, T>, RewardError> {
        Mat::new(arg, self.slice(), self.dim(0), self.dim(1))
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn untyped<'a, 'py>(
    arg: &str,
    obj: &'a Bound<'py, PyAny>,
    ndim: Option<usize>,
) -> PyResult<&'a Bound<'py, PyUntypedArray>> {
    let arr = obj.cast::<PyUntypedArray>().map_err(|_| {
        bad(
            arg,
            format!("expected a numpy.ndarray, got {}", type_name(obj)),
        )
    })?;
    if let Some(n) = ndim {
        if arr.ndim() != n {
            return Err(bad(
                arg,
                format!(
                    "expected a {n}-D array, got a {}-D array of shape {:?}",
                    arr.ndim(),
                    arr.shape()
                ),
            ));
        }
    }
    Ok(arr)
}

/// Collect into a Vec, raising MemoryError (not aborting) if `n` elements do not fit,
/// e.g. for a huge broadcast view.
fn copy_into_vec<T>(it: impl Iterator<Item = T>, n: usize) -> PyResult<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| PyMemoryError::new_err(format!("cannot copy an array of {n} elements")))?;
    v.extend(it);
    Ok(v)
}

fn borrowed_or_copied<'py, T: numpy::Element + Copy>(
    arg: &str,
    a: &Bound<'py, PyArrayDyn<T>>,
) -> PyResult<Input<'py, T>> {
    let ro = a
        .try_readonly()
        .map_err(|e| bad(arg, format!("cannot be read: {e}")))?;
    let shape = ro.shape().to_vec();
    if a.is_c_contiguous() {
        Ok(Input {
            view: Some(ro),
            owned: Vec::new(),
            shape,
        })
    } else {
        let owned = copy_into_vec(ro.as_array().iter().copied(), ro.len())?;
        Ok(Input {
            view: None,
            owned,
            shape,
        })
    }
}

fn converted<'py, S: numpy::Element + Copy, T: numpy::Element>(
    arg: &str,
    a: &Bound<'py, PyArrayDyn<S>>,
    f: impl Fn(S) -> T,
) -> PyResult<Input<'py, T>> {
    let ro = a
        .try_readonly()
        .map_err(|e| bad(arg, format!("cannot be read: {e}")))?;
    Ok(Input {
        view: None,
        owned: copy_into_vec(ro.as_array().iter().map(|&x| f(x)), ro.len())?,
        shape: ro.shape().to_vec(),
    })
}

/// float32 input (float64 accepted and converted).
fn floats<'py>(
    arg: &str,
    obj: &Bound<'py, PyAny>,
    ndim: Option<usize>,
) -> PyResult<Input<'py, f32>> {
    let arr = untyped(arg, obj, ndim)?;
    if let Ok(a) = obj.cast::<PyArrayDyn<f32>>() {
        return borrowed_or_copied(arg, a);
    }
    if let Ok(a) = obj.cast::<PyArrayDyn<f64>>() {
        return converted(arg, a, |x: f64| x as f32);
    }
    Err(bad(
        arg,
        format!(
            "expected a float32 (or float64) array, got dtype {}",
            arr.dtype()
        ),
    ))
}

/// int64 input (int32 accepted and converted).
fn ints<'py>(arg: &str, obj: &Bound<'py, PyAny>, ndim: Option<usize>) -> PyResult<Input<'py, i64>> {
    let arr = untyped(arg, obj, ndim)?;
    if let Ok(a) = obj.cast::<PyArrayDyn<i64>>() {
        return borrowed_or_copied(arg, a);
    }
    if let Ok(a) = obj.cast::<PyArrayDyn<i32>>() {
        return converted(arg, a, i64::from);
    }
    Err(bad(
        arg,
        format!(
            "expected an int64 (or int32) array, got dtype {}",
            arr.dtype()
        ),
    ))
}

/// Offsets `[..., T, 2]`: check the last axis.
fn offsets<'py>(arg: &str, obj: &Bound<'py, PyAny>, ndim: usize) -> PyResult<Input<'py, i64>> {
    let o = ints(arg, obj, Some(ndim))?;
    if o.shape.last() != Some(&2) {
        return Err(bad(
            arg,
            format!(
                "expected (start, end) pairs in a last axis of size 2, got shape {:?}",
                o.shape
            ),
        ));
    }
    Ok(o)
}

fn spec(k: Option<i64>, kappa: Option<i64>) -> PyResult<SegmentSpec> {
    let positive = |arg: &str, x: i64| {
        usize::try_from(x)
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| bad(arg, format!("must be a positive integer, got {x}")))
    };
    match (k, kappa) {
        (Some(_), Some(_)) => Err(bad("kappa", "give either k or kappa, not both".into())),
        (None, Some(kappa)) => Ok(SegmentSpec::TokensPerSegment(positive("kappa", kappa)?)),
        (Some(k), None) => Ok(SegmentSpec::Slices(positive("k", k)?)),
        (None, None) => Ok(SegmentSpec::Slices(K_SLICES)),
    }
}

fn out_f32<'py>(py: Python<'py>, v: Vec<f32>, shape: &[usize]) -> PyResult<Array<'py>> {
    ArrayD::from_shape_vec(IxDyn(shape), v)
        .map(|a| a.into_pyarray(py))
        .map_err(|e| PyRuntimeError::new_err(format!("dareu_reward_core internal error: {e}")))
}

fn out_i64<'py>(py: Python<'py>, v: Vec<i64>, shape: &[usize]) -> PyResult<IntArray<'py>> {
    ArrayD::from_shape_vec(IxDyn(shape), v)
        .map(|a| a.into_pyarray(py))
        .map_err(|e| PyRuntimeError::new_err(format!("dareu_reward_core internal error: {e}")))
}

/// Segment schedule: (prefix_ends [B, K], n_segments [B], token_segment [B, max_len]).
#[pyfunction]
#[pyo3(signature = (lengths, max_len, *, k = None, kappa = None))]
fn segment_schedule<'py>(
    py: Python<'py>,
    lengths: &Bound<'py, PyAny>,
    max_len: i64,
    k: Option<i64>,
    kappa: Option<i64>,
) -> PyResult<(IntArray<'py>, IntArray<'py>, IntArray<'py>)> {
    guarded(|| {
        let spec = spec(k, kappa)?;
        let lens = ints("lengths", lengths, Some(1))?;
        let t = usize::try_from(max_len)
            .map_err(|_| bad("max_len", format!("must be >= 0, got {max_len}")))?;
        let l = lens.slice();
        let s = run(py, || {
            reward_core::segment_schedule(&batch_lengths(l, t)?, t, spec)
        })?;
        Ok((
            out_i64(py, to_i64(s.prefix_ends), &[s.b, s.k])?,
            out_i64(py, to_i64(s.n_segments), &[s.b])?,
            out_i64(py, to_i64(s.token_segment), &[s.b, s.t])?,
        ))
    })
}

/// chi of every attribution probability (any shape).
#[pyfunction]
#[pyo3(signature = (scores, *, c_seg = C_SEG, eps = CHI_EPS))]
fn chi<'py>(
    py: Python<'py>,
    scores: &Bound<'py, PyAny>,
    c_seg: f64,
    eps: f64,
) -> PyResult<Array<'py>> {
    guarded(|| {
        let s = floats("scores", scores, None)?;
        let data = s.slice();
        let out = run(py, || reward_core::chi_slice(data, c_seg, eps))?;
        out_f32(py, out, &s.shape)
    })
}

/// Per-token rewards [B, T].
#[pyfunction]
#[pyo3(signature = (scores, kl, lengths, *, k = None, kappa = None, c_seg = C_SEG,
                    eps = CHI_EPS, kl_coef = KL_COEF))]
#[allow(clippy::too_many_arguments)]
fn assemble_rewards<'py>(
    py: Python<'py>,
    scores: &Bound<'py, PyAny>,
    kl: &Bound<'py, PyAny>,
    lengths: &Bound<'py, PyAny>,
    k: Option<i64>,
    kappa: Option<i64>,
    c_seg: f64,
    eps: f64,
    kl_coef: f64,
) -> PyResult<Array<'py>> {
    guarded(|| {
        let spec = spec(k, kappa)?;
        let s = floats("scores", scores, Some(2))?;
        let kl = floats("kl", kl, Some(2))?;
        let lens = ints("lengths", lengths, Some(1))?;
        let p = RewardParams {
            c_seg,
            eps,
            kl_coef,
        };
        let shape = [lens.dim(0), kl.dim(1)];
        let (sm, km, l) = (s.mat("scores"), kl.mat("kl"), lens.slice());
        let out = run(py, || {
            reward_core::assemble_rewards(sm?, km?, &batch_lengths(l, shape[1])?, spec, &p)
        })?;
        out_f32(py, out, &shape)
    })
}

/// Masked GAE: (advantages, returns), each [B, T].
#[pyfunction]
#[pyo3(signature = (rewards, values, lengths, *, gamma = GAMMA, lam = GAE_LAMBDA))]
fn gae<'py>(
    py: Python<'py>,
    rewards: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    lengths: &Bound<'py, PyAny>,
    gamma: f64,
    lam: f64,
) -> PyResult<(Array<'py>, Array<'py>)> {
    guarded(|| {
        let r = floats("rewards", rewards, Some(2))?;
        let v = floats("values", values, Some(2))?;
        let lens = ints("lengths", lengths, Some(1))?;
        let p = GaeParams { gamma, lam };
        let shape = [lens.dim(0), r.dim(1)];
        let (rm, vm, l) = (r.mat("rewards"), v.mat("values"), lens.slice());
        let (a, ret) = run(py, || {
            reward_core::gae(rm?, vm?, &batch_lengths(l, shape[1])?, &p)
        })?;
        Ok((out_f32(py, a, &shape)?, out_f32(py, ret, &shape)?))
    })
}

/// Masked whitening over the valid tokens of the whole batch.
#[pyfunction]
#[pyo3(signature = (x, lengths, *, shift_mean = true, whiten_eps = WHITEN_EPS))]
fn whiten<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    lengths: &Bound<'py, PyAny>,
    shift_mean: bool,
    whiten_eps: f64,
) -> PyResult<Array<'py>> {
    guarded(|| {
        let x = floats("x", x, Some(2))?;
        let lens = ints("lengths", lengths, Some(1))?;
        let p = WhitenParams {
            shift_mean,
            eps: whiten_eps,
        };
        let shape = [lens.dim(0), x.dim(1)];
        let (xm, l) = (x.mat("x"), lens.slice());
        let out = run(py, || {
            reward_core::whiten(xm?, &batch_lengths(l, shape[1])?, &p)
        })?;
        out_f32(py, out, &shape)
    })
}

/// The fused PPO call: (rewards, advantages, returns), each [B, T].
#[pyfunction]
#[pyo3(signature = (scores, kl, values, lengths, *, k = None, kappa = None, c_seg = C_SEG,
                    eps = CHI_EPS, kl_coef = KL_COEF, gamma = GAMMA, lam = GAE_LAMBDA,
                    whiten = true, shift_mean = true, whiten_eps = WHITEN_EPS,
                    length_norm = false))]
#[allow(clippy::too_many_arguments)]
fn ppo_advantages<'py>(
    py: Python<'py>,
    scores: &Bound<'py, PyAny>,
    kl: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    lengths: &Bound<'py, PyAny>,
    k: Option<i64>,
    kappa: Option<i64>,
    c_seg: f64,
    eps: f64,
    kl_coef: f64,
    gamma: f64,
    lam: f64,
    whiten: bool,
    shift_mean: bool,
    whiten_eps: f64,
    length_norm: bool,
) -> PyResult<(Array<'py>, Array<'py>, Array<'py>)> {
    guarded(|| {
        let params = PpoParams {
            segments: spec(k, kappa)?,
            reward: RewardParams {
                c_seg,
                eps,
                kl_coef,
            },
            gae: GaeParams { gamma, lam },
            whiten: whiten.then_some(WhitenParams {
                shift_mean,
                eps: whiten_eps,
            }),
            length_norm,
        };
        let s = floats("scores", scores, Some(2))?;
        let kl = floats("kl", kl, Some(2))?;
        let v = floats("values", values, Some(2))?;
        let lens = ints("lengths", lengths, Some(1))?;
        let (sm, km, vm, l) = (s.mat("scores"), kl.mat("kl"), v.mat("values"), lens.slice());
        let t = kl.dim(1);
        let out = run(py, || {
            reward_core::ppo_advantages(sm?, km?, vm?, &batch_lengths(l, t)?, &params)
        })?;
        let shape = [out.b, out.t];
        Ok((
            out_f32(py, out.rewards, &shape)?,
            out_f32(py, out.advantages, &shape)?,
            out_f32(py, out.returns, &shape)?,
        ))
    })
}

/// Map policy prefix ends [K] to attribution-token prefix ends [K] for one text.
#[pyfunction]
fn align_prefix_ends<'py>(
    py: Python<'py>,
    policy_offsets: &Bound<'py, PyAny>,
    attribution_offsets: &Bound<'py, PyAny>,
    prefix_ends: &Bound<'py, PyAny>,
) -> PyResult<IntArray<'py>> {
    guarded(|| {
        let p = offsets("policy_offsets", policy_offsets, 2)?;
        let a = offsets("attribution_offsets", attribution_offsets, 2)?;
        let e = ints("prefix_ends", prefix_ends, Some(1))?;
        let (ps, as_, es) = (p.slice(), a.slice(), e.slice());
        let n_policy = p.dim(0);
        let out = run(py, || {
            let ends = counts("prefix_ends", es, |j, x| {
                format!(
                    "row 0, entry {j} = {x} is outside [0, {n_policy}] (the policy token count)"
                )
            })?;
            reward_core::align_prefix_ends(ps, as_, &ends)
        })?;
        out_i64(py, to_i64(out), &[e.dim(0)])
    })
}

/// Batched alignment over right-padded offsets [B, T, 2] with per-row token counts.
#[pyfunction]
fn align_prefix_ends_batch<'py>(
    py: Python<'py>,
    policy_offsets: &Bound<'py, PyAny>,
    policy_lengths: &Bound<'py, PyAny>,
    attribution_offsets: &Bound<'py, PyAny>,
    attribution_lengths: &Bound<'py, PyAny>,
    prefix_ends: &Bound<'py, PyAny>,
) -> PyResult<IntArray<'py>> {
    guarded(|| {
        let p = offsets("policy_offsets", policy_offsets, 3)?;
        let pl = ints("policy_lengths", policy_lengths, Some(1))?;
        let a = offsets("attribution_offsets", attribution_offsets, 3)?;
        let al = ints("attribution_lengths", attribution_lengths, Some(1))?;
        let e = ints("prefix_ends", prefix_ends, Some(2))?;
        let shape = [e.dim(0), e.dim(1)];
        let po = Offsets::new("policy_offsets", p.slice(), p.dim(0), p.dim(1));
        let ao = Offsets::new("attribution_offsets", a.slice(), a.dim(0), a.dim(1));
        let (pls, als, es) = (pl.slice(), al.slice(), e.slice());
        let (p_width, a_width) = (p.dim(1), a.dim(1));
        let out = run(py, || {
            let (po, ao) = (po?, ao?);
            let pls = counts("policy_lengths", pls, |i, l| {
                format!("policy_lengths[{i}] = {l} is outside [0, {p_width}]")
            })?;
            let als = counts("attribution_lengths", als, |i, l| {
                format!("attribution_lengths[{i}] = {l} is outside [0, {a_width}]")
            })?;
            let k = shape[1].max(1);
            let ends = counts("prefix_ends", es, |idx, x| {
                let (row, j) = (idx / k, idx % k);
                let n_policy = pls.get(row).copied().unwrap_or(0);
                format!(
                    "row {row}, entry {j} = {x} is outside [0, {n_policy}] (the policy token count)"
                )
            })?;
            let em = Mat::new("prefix_ends", &ends, shape[0], shape[1])?;
            reward_core::align_prefix_ends_batch(po, &pls, ao, &als, em)
        })?;
        out_i64(py, to_i64(out), &shape)
    })
}

/// Test hook: address of the buffer the core would read for a float input, so tests
/// can check that C-contiguous float32 arrays are not copied.
#[cfg(feature = "test-hooks")]
#[pyfunction]
fn _input_address(x: &Bound<'_, PyAny>) -> PyResult<usize> {
    guarded(|| Ok(floats("x", x, None)?.slice().as_ptr() as usize))
}

/// Test hook: panic inside the guarded, GIL-free path; must surface as RuntimeError.
#[cfg(feature = "test-hooks")]
#[pyfunction]
fn _panic_for_test(py: Python<'_>) -> PyResult<()> {
    guarded(|| {
        run(py, || -> Result<(), RewardError> {
            panic!("deliberate test panic")
        })
    })
}

/// Test hook: sleep `seconds` inside the same GIL-free path as the real work, so a
/// test can see other Python threads run meanwhile.
#[cfg(feature = "test-hooks")]
#[pyfunction]
fn _sleep_without_gil(py: Python<'_>, seconds: f64) -> PyResult<()> {
    let d = std::time::Duration::try_from_secs_f64(seconds)
        .map_err(|e| bad("seconds", e.to_string()))?;
    guarded(|| {
        run(py, || -> Result<(), RewardError> {
            std::thread::sleep(d);
            Ok(())
        })
    })
}

#[pymodule]
#[pyo3(name = "_reward_core")]
fn reward_core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(segment_schedule, m)?)?;
    m.add_function(wrap_pyfunction!(chi, m)?)?;
    m.add_function(wrap_pyfunction!(assemble_rewards, m)?)?;
    m.add_function(wrap_pyfunction!(gae, m)?)?;
    m.add_function(wrap_pyfunction!(whiten, m)?)?;
    m.add_function(wrap_pyfunction!(ppo_advantages, m)?)?;
    m.add_function(wrap_pyfunction!(align_prefix_ends, m)?)?;
    m.add_function(wrap_pyfunction!(align_prefix_ends_batch, m)?)?;
    #[cfg(feature = "test-hooks")]
    m.add_function(wrap_pyfunction!(_input_address, m)?)?;
    #[cfg(feature = "test-hooks")]
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    #[cfg(feature = "test-hooks")]
    m.add_function(wrap_pyfunction!(_sleep_without_gil, m)?)?;
    m.add("C_SEG", C_SEG)?;
    m.add("K_SLICES", K_SLICES)?;
    m.add("CHI_EPS", CHI_EPS)?;
    m.add("KL_COEF", KL_COEF)?;
    m.add("GAMMA", GAMMA)?;
    m.add("GAE_LAMBDA", GAE_LAMBDA)?;
    m.add("WHITEN_EPS", WHITEN_EPS)?;
    Ok(())
}
