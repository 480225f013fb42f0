//! Token alignment between the policy's tokenizer and the attribution model's.
//!
//! A policy prefix of `e` tokens covers the characters `[0, c)` with
//! `c = policy_end[e - 1]` (and `c = 0` for `e = 0`). Its aligned attribution prefix is
//! the number of attribution tokens whose character end is `<= c`: the longest
//! attribution prefix that covers no text beyond the policy prefix. An attribution
//! token that straddles `c` (start < c < end) is left out, so the classifier may see a
//! few characters less than the policy wrote, never more.

use std::borrow::Cow;

use rayon::prelude::*;

use crate::{filled, Mat, Result, RewardError, ROWS_PER_TASK};

/// Character offsets `[rows, tokens, 2]` (start, end) of tokenized texts, row-major.
///
/// Offsets stay `i64` (a tokenizer's or numpy's type): a negative one in a valid
/// position is reported as a bad offset, and padding may hold anything.
#[derive(Debug, Clone, Copy)]
pub struct Offsets<'a> {
    /// `(start, end)` pairs, token after token, row after row:
    /// `data[2 * (i * tokens + j)..][..2]` is row `i`'s token `j`.
    pub data: &'a [i64],
    /// Number of rows (texts), B.
    pub rows: usize,
    /// Padded number of tokens per row, T.
    pub tokens: usize,
}

impl<'a> Offsets<'a> {
    /// Wrap `data` as `[rows, tokens, 2]`; fails with an [`ErrorKind::Shape`](crate::ErrorKind)
    /// error naming `arg` (any string) if the sizes disagree.
    pub fn new(
        arg: impl Into<Cow<'static, str>>,
        data: &'a [i64],
        rows: usize,
        tokens: usize,
    ) -> Result<Self> {
        let o = Self { data, rows, tokens };
        o.check_shape(arg)?;
        Ok(o)
    }

    fn check_shape(&self, arg: impl Into<Cow<'static, str>>) -> Result<()> {
        match self
            .rows
            .checked_mul(self.tokens)
            .and_then(|n| n.checked_mul(2))
        {
            Some(n) if n == self.data.len() => Ok(()),
            _ => Err(RewardError::shape(
                arg,
                format!(
                    "has {} elements but its shape is [{}, {}, 2]",
                    self.data.len(),
                    self.rows,
                    self.tokens
                ),
            )),
        }
    }

    fn row(&self, i: usize) -> &'a [i64] {
        &self.data[i * self.tokens * 2..(i + 1) * self.tokens * 2]
    }
}

/// Check one sequence's valid offsets (`pairs` is `[n, 2]` flat) and return the ends.
fn checked_ends(arg: &'static str, row: usize, pairs: &[i64]) -> Result<Vec<i64>> {
    let mut ends = Vec::with_capacity(pairs.len() / 2);
    let mut prev = 0i64;
    for (j, p) in pairs.chunks_exact(2).enumerate() {
        let (s, e) = (p[0], p[1]);
        if s < 0 || s > e {
            return Err(RewardError::out_of_range(
                arg,
                format!("row {row}, token {j} has offsets ({s}, {e}); need 0 <= start <= end"),
            ));
        }
        if e < prev {
            return Err(RewardError::out_of_range(
                arg,
                format!(
                    "row {row}, token {j} ends at {e} before the previous token's end {prev}; \
                     character ends must not decrease (drop special tokens first)"
                ),
            ));
        }
        prev = e;
        ends.push(e);
    }
    Ok(ends)
}

/// Align one row. Each prefix end is read once and range-checked as it is used, so
/// that even a buffer changed since the up-front check (another thread writing to a
/// shared buffer) can never index out of bounds.
fn align_row(
    row: usize,
    policy_ends: &[i64],
    attr_ends: &[i64],
    prefix_ends: &[usize],
    out: &mut [usize],
) -> Result<()> {
    for (j, (o, &e)) in out.iter_mut().zip(prefix_ends).enumerate() {
        *o = match e {
            0 => 0,
            n if n <= policy_ends.len() => {
                let c = policy_ends[n - 1];
                attr_ends.partition_point(|&end| end <= c)
            }
            _ => return Err(prefix_end_error(row, j, e, policy_ends.len())),
        };
    }
    Ok(())
}

fn prefix_end_error(row: usize, j: usize, e: usize, n_policy: usize) -> RewardError {
    RewardError::out_of_range(
        "prefix_ends",
        format!("row {row}, entry {j} = {e} is outside [0, {n_policy}] (the policy token count)"),
    )
}

/// Check every prefix end up front, so that the first bad one (in row order) is the one
/// reported; `align_row` checks again as it reads.
fn check_prefix_ends(row: usize, prefix_ends: &[usize], n_policy: usize) -> Result<()> {
    if let Some((j, &e)) = prefix_ends.iter().enumerate().find(|(_, &e)| e > n_policy) {
        return Err(prefix_end_error(row, j, e, n_policy));
    }
    Ok(())
}

/// Align one sequence: `policy_offsets` and `attribution_offsets` are flat `[n, 2]`
/// (start, end) pairs over the same text, `prefix_ends` are policy token counts.
/// Returns the attribution token count of each prefix (0 for a prefix end of 0).
/// `Err` for offsets with `start > end`, a negative start or decreasing ends, or a
/// prefix end beyond the policy's token count.
pub fn align_prefix_ends(
    policy_offsets: &[i64],
    attribution_offsets: &[i64],
    prefix_ends: &[usize],
) -> Result<Vec<usize>> {
    let p = Offsets::new(
        "policy_offsets",
        policy_offsets,
        1,
        policy_offsets.len() / 2,
    );
    let a = Offsets::new(
        "attribution_offsets",
        attribution_offsets,
        1,
        attribution_offsets.len() / 2,
    );
    let (p, a) = (p?, a?);
    let pe = checked_ends("policy_offsets", 0, p.data)?;
    let ae = checked_ends("attribution_offsets", 0, a.data)?;
    check_prefix_ends(0, prefix_ends, pe.len())?;
    let mut out = filled("prefix_ends", prefix_ends.len(), 1, 0usize)?;
    align_row(0, &pe, &ae, prefix_ends, &mut out)?;
    Ok(out)
}

/// Check per-row token counts against the padded width.
fn check_row_lengths<'a>(
    arg: &'static str,
    lengths: &'a [usize],
    rows: usize,
    width: usize,
) -> Result<&'a [usize]> {
    if lengths.len() != rows {
        return Err(RewardError::shape(
            arg,
            format!(
                "has {} entries but the batch has {rows} rows",
                lengths.len()
            ),
        ));
    }
    match lengths.iter().position(|&l| l > width) {
        Some(i) => Err(RewardError::out_of_range(
            arg,
            format!("{arg}[{i}] = {} is outside [0, {width}]", lengths[i]),
        )),
        None => Ok(lengths),
    }
}

/// Batched [`align_prefix_ends`]: offsets `[B, T, 2]` right-padded with per-row token
/// counts, `prefix_ends` `[B, K]` (0 = padding). Returns `[B, K]`. Offsets beyond a
/// row's token count are not read.
pub fn align_prefix_ends_batch(
    policy_offsets: Offsets<'_>,
    policy_lengths: &[usize],
    attribution_offsets: Offsets<'_>,
    attribution_lengths: &[usize],
    prefix_ends: Mat<'_, usize>,
) -> Result<Vec<usize>> {
    policy_offsets.check_shape("policy_offsets")?;
    attribution_offsets.check_shape("attribution_offsets")?;
    prefix_ends.check("prefix_ends")?;
    let b = policy_offsets.rows;
    if attribution_offsets.rows != b || prefix_ends.rows != b {
        return Err(RewardError::shape(
            if attribution_offsets.rows != b {
                "attribution_offsets"
            } else {
                "prefix_ends"
            },
            format!(
                "batch sizes disagree: policy_offsets has {b} rows, attribution_offsets {}, \
                 prefix_ends {}",
                attribution_offsets.rows, prefix_ends.rows
            ),
        ));
    }
    let pls = check_row_lengths("policy_lengths", policy_lengths, b, policy_offsets.tokens)?;
    let als = check_row_lengths(
        "attribution_lengths",
        attribution_lengths,
        b,
        attribution_offsets.tokens,
    )?;
    let mut ends = Vec::with_capacity(b);
    for (i, (&pl, &al)) in pls.iter().zip(als).enumerate() {
        let pe = checked_ends("policy_offsets", i, &policy_offsets.row(i)[..2 * pl])?;
        let ae = checked_ends(
            "attribution_offsets",
            i,
            &attribution_offsets.row(i)[..2 * al],
        )?;
        check_prefix_ends(i, prefix_ends.row(i), pl)?;
        ends.push((pe, ae));
    }
    let k = prefix_ends.cols;
    let mut out = filled("prefix_ends", b, k, 0usize)?;
    if k == 0 {
        return Ok(out);
    }
    out.par_chunks_mut(k)
        .with_min_len(ROWS_PER_TASK)
        .enumerate()
        .try_for_each(|(i, o)| align_row(i, &ends[i].0, &ends[i].1, prefix_ends.row(i), o))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn straddling_token_is_excluded() {
        // text "hello world": policy ["hello", " world"], attribution ["hel", "lo w", "orld"]
        let pol = [0, 5, 5, 11];
        let att = [0, 3, 3, 8, 8, 11];
        let out = align_prefix_ends(&pol, &att, &[0, 1, 2]).unwrap();
        assert_eq!(out, vec![0, 1, 3]);
    }

    #[test]
    fn identical_tokenizers_map_to_identity_but_zero_width_tokens_join() {
        let off = [0, 2, 2, 4, 5, 9];
        let out = align_prefix_ends(&off, &off, &[1, 2, 3]).unwrap();
        assert_eq!(out, vec![1, 2, 3]);
        // A zero-width token at the boundary (end 4 <= 4) adds no text, so it is included.
        let off = [0, 2, 2, 4, 4, 4, 4, 9];
        let out = align_prefix_ends(&off, &off, &[1, 2, 3, 4]).unwrap();
        assert_eq!(out, vec![1, 3, 3, 4]);
    }

    #[test]
    fn rejects_bad_offsets() {
        assert_eq!(
            align_prefix_ends(&[0, 5, 5, 3], &[0, 1], &[1])
                .unwrap_err()
                .arg,
            "policy_offsets"
        );
        assert_eq!(
            align_prefix_ends(&[0, 5], &[0, 4, 0, 2], &[1])
                .unwrap_err()
                .arg,
            "attribution_offsets"
        );
        assert_eq!(
            align_prefix_ends(&[0, 5], &[0, 5], &[2]).unwrap_err().arg,
            "prefix_ends"
        );
        assert_eq!(
            align_prefix_ends(&[0, 5, 1], &[0, 5], &[1])
                .unwrap_err()
                .arg,
            "policy_offsets"
        );
    }

    #[test]
    fn batch_ignores_padding() {
        let pol = [0, 5, 5, 11, 0, 3, -7, -7];
        let att = [0, 3, 3, 8, 8, 11, 0, 3, -1, -1, -1, -1];
        let pe = [1, 2, 1, 0];
        let out = align_prefix_ends_batch(
            Offsets::new("policy_offsets", &pol, 2, 2).unwrap(),
            &[2, 1],
            Offsets::new("attribution_offsets", &att, 2, 3).unwrap(),
            &[3, 1],
            Mat::new("prefix_ends", &pe, 2, 2).unwrap(),
        )
        .unwrap();
        assert_eq!(out, vec![1, 3, 1, 0]);
    }
}
