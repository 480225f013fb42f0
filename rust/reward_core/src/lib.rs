//! DareU reward core.
//!
//! Turns attribution probabilities of response prefixes into per-token PPO rewards,
//! advantages and returns. Everything works on ragged token batches stored
//! **right-padded**: a `[B, T]` row-major array plus per-row response lengths `[B]`;
//! row `i` holds valid tokens at positions `0..lengths[i]`, the rest is padding that is
//! never read and is written as 0 (or -1 for index arrays).
//!
//! The pipeline (see `docs/reward_core.md` in the [DareU repository] for the formulas):
//! 1. [`segment_schedule`]: split each response into segments and give the prefix
//!    end positions at which the attribution classifier is scored.
//! 2. [`chi`]: map an attribution probability to a reward in `[-1, 0]`.
//! 3. [`assemble_rewards`]: running mean of chi over tokens, minus `kl_coef * KL_t`.
//! 4. [`gae`] and [`whiten`]: masked GAE with returns, then masked whitening.
//! 5. [`ppo_advantages`]: all of the above fused in one pass over the batch.
//!
//! [`align_prefix_ends`] maps policy prefix ends onto another tokenizer's tokens.
//!
//! Lengths, prefix ends and segment indices are `usize`; every 2-D input is a borrowed
//! row-major [`Mat`]. Bad input is an `Err(`[`RewardError`]`)` naming the argument, with
//! an [`ErrorKind`] to match on; the functions never panic on bad input.
//!
//! This crate has no Python dependency. DareU's Python extension
//! (`dareu._reward_core`) is a thin PyO3 layer over it, in the separate, unpublished
//! `reward_core_py` crate of the [DareU repository].
//!
//! ```
//! use reward_core::{ppo_advantages, segment_schedule, Mat, PpoParams, SegmentSpec};
//!
//! // Two responses of 3 and 1 tokens, right-padded to T = 4.
//! let lengths = [3usize, 1];
//! // Where to score the attribution classifier (k = 15 slices: one token each here).
//! let sched = segment_schedule(&lengths, 4, SegmentSpec::Slices(15)).unwrap();
//! assert_eq!(sched.k, 4);
//! assert_eq!(&sched.prefix_ends[..4], &[1, 2, 3, 0]);
//! // P(forget owner | prefix) for each scored prefix, [B, K]; padding is not read.
//! let scores = [0.9f32, 0.2, 0.1, 0.0, 0.5, 0.0, 0.0, 0.0];
//! let kl = [0.0f32; 8];
//! let values = [0.0f32; 8];
//! let out = ppo_advantages(
//!     Mat::new("scores", &scores, 2, 4).unwrap(),
//!     Mat::new("kl", &kl, 2, 4).unwrap(),
//!     Mat::new("values", &values, 2, 4).unwrap(),
//!     &lengths,
//!     &PpoParams::default(),
//! )
//! .unwrap();
//! assert_eq!(out.rewards[0], -1.0); // chi(0.9) is clipped to -1
//! assert_eq!(out.rewards[3], 0.0); // padding
//! ```
//!
//! `examples/full_chain.rs` runs every step in turn (`cargo run --example full_chain`).
//!
//! [DareU repository]: https://github.com/dareu-project/dareu

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod align;
mod error;
mod gae;
mod pipeline;
mod reward;
mod schedule;

use std::borrow::Cow;

pub use align::{align_prefix_ends, align_prefix_ends_batch, Offsets};
pub use error::{ErrorKind, Result, RewardError};
pub use gae::{gae, whiten, GaeParams, WhitenParams};
pub use pipeline::{ppo_advantages, PpoOutput, PpoParams};
pub use reward::{assemble_rewards, chi, chi_slice, RewardParams};
pub use schedule::{segment_schedule, Schedule, SegmentSpec, NO_SEGMENT};

/// Default normaliser of chi: `chi(b) = clip(ln(1 - b) / C_SEG, -1, 0)`.
pub const C_SEG: f64 = 1.05;
/// Default number of slices per response (the paper's k).
pub const K_SLICES: usize = 15;
/// Default clip of attribution probabilities into `[eps, 1 - eps]` before the log.
pub const CHI_EPS: f64 = 1e-6;
/// Default weight of the per-token KL penalty.
pub const KL_COEF: f64 = 0.1;
/// Default GAE discount.
pub const GAMMA: f64 = 1.0;
/// Default GAE lambda.
pub const GAE_LAMBDA: f64 = 0.95;
/// Default variance epsilon of the whitening.
pub const WHITEN_EPS: f64 = 1e-8;
/// Largest padded width T (`max_len`) accepted: far beyond any model's context, and
/// small enough that `T * 8` bytes and every per-row index fit comfortably.
pub const MAX_LEN: usize = u32::MAX as usize;
/// Largest element count of any one array the crate allocates or returns. numpy needs
/// the byte size of an array's non-zero axes to fit an `isize`, even when another axis
/// is 0 (so `[0, 2^60]` int64 is refused), and 8 bytes is the widest element here.
pub const MAX_ELEMENTS: usize = isize::MAX as usize / 8;

/// The element count of an array of shape `dims`, with the product of its non-zero axes
/// at most [`MAX_ELEMENTS`] (checked, never wrapping); `arg` names the size's source.
pub(crate) fn checked_size(arg: &'static str, dims: &[usize]) -> Result<usize> {
    let nonzero = dims
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS);
    match nonzero {
        Some(n) => Ok(if dims.contains(&0) { 0 } else { n }),
        None => Err(RewardError::too_large(
            arg,
            format!("is too large: an array of shape {dims:?} exceeds {MAX_ELEMENTS} elements"),
        )),
    }
}

/// A `Vec` of `rows * cols` copies of `fill` for an output `[rows, cols]`: the size is
/// checked ([`checked_size`]) and the allocation is fallible, so a huge request is an
/// error naming `arg`, never an abort.
pub(crate) fn filled<T: Clone>(
    arg: &'static str,
    rows: usize,
    cols: usize,
    fill: T,
) -> Result<Vec<T>> {
    let n = checked_size(arg, &[rows, cols])?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        RewardError::too_large(
            arg,
            format!("is too large: an array of shape [{rows}, {cols}] does not fit in memory"),
        )
    })?;
    v.resize(n, fill);
    Ok(v)
}

/// A number for an error message: plain when short, else scientific with 4 significant
/// digits, so that e.g. `f64::MAX` does not print as a 309-digit integer.
pub(crate) fn num(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() || a == 0.0 || (1e-4..1e6).contains(&a) {
        format!("{x}")
    } else {
        format!("{x:.3e}")
    }
}

/// A borrowed row-major `[rows, cols]` matrix: how every 2-D input is passed.
///
/// The functions check `data.len() == rows * cols` again (naming their own argument),
/// so a `Mat` built from its public fields is safe to pass, just reported less precisely.
#[derive(Debug, Clone, Copy)]
pub struct Mat<'a, T> {
    /// The elements, row after row: element `(i, j)` is `data[i * cols + j]`.
    pub data: &'a [T],
    /// Number of rows (the batch size B).
    pub rows: usize,
    /// Number of columns (the padded width T, or K for scores and prefix ends).
    pub cols: usize,
}

impl<'a, T> Mat<'a, T> {
    /// Wrap `data` as `[rows, cols]`; fails with an [`ErrorKind::Shape`] error naming
    /// `arg` (any string: a `&'static str`, a `String` or a `Cow`) if the sizes disagree.
    pub fn new(
        arg: impl Into<Cow<'static, str>>,
        data: &'a [T],
        rows: usize,
        cols: usize,
    ) -> Result<Self> {
        let m = Self { data, rows, cols };
        m.check(arg)?;
        Ok(m)
    }

    fn check(&self, arg: impl Into<Cow<'static, str>>) -> Result<()> {
        match self.rows.checked_mul(self.cols) {
            Some(n) if n == self.data.len() => Ok(()),
            _ => Err(RewardError::shape(
                arg,
                format!(
                    "has {} elements but its shape is [{}, {}]",
                    self.data.len(),
                    self.rows,
                    self.cols
                ),
            )),
        }
    }

    #[inline]
    fn row(&self, i: usize) -> &'a [T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// Check every length against the padded width `t`.
fn check_lengths(lengths: &[usize], t: usize) -> Result<&[usize]> {
    match lengths.iter().position(|&l| l > t) {
        Some(i) => Err(RewardError::out_of_range(
            "lengths",
            format!("lengths[{i}] = {} is outside [0, T={t}]", lengths[i]),
        )),
        None => Ok(lengths),
    }
}

/// Check that `lengths` has one entry per row of the `[B, T]` array `of`, each in range.
fn check_batch_lengths<'a>(
    lengths: &'a [usize],
    rows: usize,
    of: &'static str,
    t: usize,
) -> Result<&'a [usize]> {
    if lengths.len() != rows {
        return Err(RewardError::shape(
            "lengths",
            format!("has {} entries but {of} has {rows} rows", lengths.len()),
        ));
    }
    check_lengths(lengths, t)
}

/// Check that a `[B, T]` float input matches the batch and is finite where valid.
fn check_valid_finite(arg: &'static str, m: &Mat<'_, f32>, lens: &[usize], t: usize) -> Result<()> {
    m.check(arg)?;
    if m.rows != lens.len() || m.cols != t {
        return Err(RewardError::shape(
            arg,
            format!(
                "has shape [{}, {}] but the batch is [B={}, T={}]",
                m.rows,
                m.cols,
                lens.len(),
                t
            ),
        ));
    }
    for (i, &len) in lens.iter().enumerate() {
        let valid = &m.row(i)[..len];
        // A branch-free scan (vectorised) first; look for the culprit only on failure.
        if valid.iter().fold(true, |ok, x| ok & x.is_finite()) {
            continue;
        }
        if let Some(j) = valid.iter().position(|x| !x.is_finite()) {
            return Err(RewardError::non_finite(
                arg,
                format!("{arg}[{i}, {j}] = {} is not finite", m.row(i)[j]),
            ));
        }
    }
    Ok(())
}

/// Check a scalar parameter is finite and inside `[lo, hi]` (`hi = f64::MAX`: no upper
/// bound, and the message says `>= lo` rather than printing `f64::MAX`).
fn check_param(arg: &'static str, x: f64, lo: f64, hi: f64) -> Result<()> {
    if x.is_finite() && x >= lo && x <= hi {
        Ok(())
    } else {
        let range = if hi == f64::MAX {
            format!(">= {}", num(lo))
        } else {
            format!("in [{}, {}]", num(lo), num(hi))
        };
        Err(RewardError::out_of_range(
            arg,
            format!("must be a finite number {range}, got {}", num(x)),
        ))
    }
}

/// Check that every element of the outputs `[B, T]` is finite. Inputs are checked up
/// front, but finite inputs can still overflow (e.g. `kl_coef * kl` past `f32::MAX`),
/// and the Python binding reads numpy buffers in place without the GIL, so another
/// thread may write a NaN between the input check and the computation. Checking the
/// outputs covers both: a non-finite value never leaves the crate. On failure
/// `recheck` runs the input checks again, to name an input that changed meanwhile.
fn check_outputs(
    outs: &[(&'static str, &[f32])],
    t: usize,
    recheck: impl FnOnce() -> Result<()>,
) -> Result<()> {
    for &(arg, out) in outs {
        // Branch-free scan first (vectorised); locate the culprit only on failure.
        if out.iter().fold(true, |ok, x| ok & x.is_finite()) {
            continue;
        }
        recheck()?;
        let j = out.iter().position(|x| !x.is_finite()).unwrap_or(0);
        let (row, col) = (j / t.max(1), j % t.max(1));
        return Err(RewardError::non_finite(
            arg,
            format!(
                "{arg}[{row}, {col}] = {} is not finite, though every input was finite when \
                 checked: the result overflows float32 (scale down the inputs, or kl_coef), \
                 or another thread wrote to an input array during the call",
                out[j]
            ),
        ));
    }
    Ok(())
}

/// Rows per rayon task: a row is a few microseconds of work, so batch a handful.
const ROWS_PER_TASK: usize = 4;

/// The README's example runs as a doctest, so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_size_bounds_non_zero_axes() {
        assert_eq!(checked_size("x", &[3, 4]).unwrap(), 12);
        assert_eq!(checked_size("x", &[0, MAX_ELEMENTS]).unwrap(), 0);
        // numpy refuses [0, 2^60] int64 (2^63 bytes in the non-zero axes): so do we.
        assert_eq!(checked_size("x", &[0, 1 << 60]).unwrap_err().arg, "x");
        assert!(checked_size("x", &[usize::MAX, 2]).is_err());
        assert!(checked_size("x", &[1 << 32, 1 << 32]).is_err());
    }

    #[test]
    fn errors_carry_a_kind_a_caller_can_match() {
        let e = checked_size("x", &[1 << 62, 1 << 62]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooLarge);
        let lens = check_lengths(&[5], 3).unwrap_err();
        assert_eq!(lens.kind, ErrorKind::OutOfRange);
        assert_eq!(lens.arg, "lengths");
        assert_eq!(lens.msg, "lengths[0] = 5 is outside [0, T=3]");
    }

    #[test]
    fn output_check_names_a_changed_input_first() {
        let out = [0.0f32, f32::NAN];
        let changed = || {
            Err(RewardError::non_finite(
                "values",
                "values[0, 1] = NaN is not finite",
            ))
        };
        assert_eq!(
            check_outputs(&[("returns", &out)], 2, changed)
                .unwrap_err()
                .arg,
            "values"
        );
        let e = check_outputs(&[("returns", &out)], 2, || Ok(())).unwrap_err();
        assert_eq!(e.arg, "returns");
        assert!(e.msg.starts_with("returns[0, 1] = NaN"), "{e}");
        assert!(check_outputs(&[("returns", &[1.0, 2.0])], 2, || Ok(())).is_ok());
    }

    #[test]
    fn numbers_in_messages_are_short() {
        assert_eq!(num(0.1), "0.1");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(f64::MAX), "1.798e308");
        assert_eq!(num(1e-300), "1.000e-300");
        assert_eq!(num(f64::NAN), "NaN");
        let e = check_param("kl_coef", f64::NAN, 0.0, f64::MAX).unwrap_err();
        assert_eq!(e.msg, "must be a finite number >= 0, got NaN");
        let e = check_param("gamma", 2.0, 0.0, 1.0).unwrap_err();
        assert_eq!(e.msg, "must be a finite number in [0, 1], got 2");
    }
}
