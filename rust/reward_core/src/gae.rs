//! Masked GAE with returns, and masked whitening of advantages.

use rayon::prelude::*;

use crate::{
    check_batch_lengths, check_outputs, check_param, check_valid_finite, filled, num, Mat, Result,
    ROWS_PER_TASK,
};

/// GAE parameters, both in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaeParams {
    /// Discount gamma (default [`GAMMA`](crate::GAMMA) = 1: no discount within a response).
    pub gamma: f64,
    /// GAE lambda (default [`GAE_LAMBDA`](crate::GAE_LAMBDA)).
    pub lam: f64,
}

impl Default for GaeParams {
    fn default() -> Self {
        Self {
            gamma: crate::GAMMA,
            lam: crate::GAE_LAMBDA,
        }
    }
}

impl GaeParams {
    /// Check both parameters are finite and in `[0, 1]`: `Err`
    /// ([`ErrorKind::OutOfRange`](crate::ErrorKind)) naming `gamma` or `lam` otherwise.
    pub fn validate(&self) -> Result<()> {
        check_param("gamma", self.gamma, 0.0, 1.0)?;
        check_param("lam", self.lam, 0.0, 1.0)
    }
}

/// Whitening parameters (TRL's `masked_whiten`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WhitenParams {
    /// If false, the batch mean is added back after scaling (only the scale changes).
    pub shift_mean: bool,
    /// Added to the variance before the square root, > 0.
    pub eps: f64,
}

impl Default for WhitenParams {
    fn default() -> Self {
        Self {
            shift_mean: true,
            eps: crate::WHITEN_EPS,
        }
    }
}

impl WhitenParams {
    /// Check `eps` is finite and > 0: `Err` ([`ErrorKind::OutOfRange`](crate::ErrorKind))
    /// naming `whiten_eps` otherwise.
    pub fn validate(&self) -> Result<()> {
        if self.eps.is_finite() && self.eps > 0.0 {
            Ok(())
        } else {
            Err(crate::RewardError::out_of_range(
                "whiten_eps",
                format!("must be a finite number > 0, got {}", num(self.eps)),
            ))
        }
    }
}

/// State of the reverse GAE scan over one row, fed tokens from last to first.
/// Starts with a 0 value after the last valid token (the episode ends there).
pub(crate) struct GaeScan {
    gamma: f64,
    gamma_lam: f64,
    last: f64,
    next_value: f64,
}

impl GaeScan {
    pub fn new(p: &GaeParams) -> Self {
        Self {
            gamma: p.gamma,
            gamma_lam: p.gamma * p.lam,
            last: 0.0,
            next_value: 0.0,
        }
    }

    /// One step back: `delta = r + gamma * V_{t+1} - V_t`, `A_t = delta + gamma * lam * A_{t+1}`.
    #[inline(always)]
    pub fn step(&mut self, reward: f64, value: f64) -> f64 {
        let delta = reward + self.gamma * self.next_value - value;
        self.last = delta + self.gamma_lam * self.last;
        self.next_value = value;
        self.last
    }
}

/// Reverse GAE over one row: advantages (f64, for an exact whitening afterwards) and
/// returns into `adv[..len]`, `ret[..len]`; the padding is zeroed.
#[inline]
pub(crate) fn row_gae(
    len: usize,
    rewards: &[f32],
    values: &[f32],
    p: &GaeParams,
    adv: &mut [f64],
    ret: &mut [f32],
) {
    let mut scan = GaeScan::new(p);
    for tok in (0..len).rev() {
        let v = values[tok] as f64;
        let a = scan.step(rewards[tok] as f64, v);
        adv[tok] = a;
        ret[tok] = (a + v) as f32;
    }
    adv[len..].fill(0.0);
    ret[len..].fill(0.0);
}

/// Masked GAE: advantages and returns (`advantages + values`), both `[B, T]`, 0 on
/// padding. The batch is `rewards`' shape; `values` must match it.
pub fn gae(
    rewards: Mat<'_, f32>,
    values: Mat<'_, f32>,
    lengths: &[usize],
    params: &GaeParams,
) -> Result<(Vec<f32>, Vec<f32>)> {
    params.validate()?;
    rewards.check("rewards")?;
    let t = rewards.cols;
    let lens = check_batch_lengths(lengths, rewards.rows, "rewards", t)?;
    let check_inputs = || {
        check_valid_finite("rewards", &rewards, lens, t)?;
        check_valid_finite("values", &values, lens, t)
    };
    check_inputs()?;
    let mut adv = filled("rewards", lens.len(), t, 0.0f32)?;
    let mut ret = filled("rewards", lens.len(), t, 0.0f32)?;
    if t == 0 {
        return Ok((adv, ret));
    }
    adv.par_chunks_mut(t)
        .zip(ret.par_chunks_mut(t))
        .with_min_len(ROWS_PER_TASK)
        .enumerate()
        .for_each_init(
            || vec![0.0f64; t],
            |scratch, (i, (a, r))| {
                row_gae(lens[i], rewards.row(i), values.row(i), params, scratch, r);
                for (o, &x) in a.iter_mut().zip(scratch.iter()) {
                    *o = x as f32;
                }
            },
        );
    check_outputs(&[("advantages", &adv), ("returns", &ret)], t, check_inputs)?;
    Ok((adv, ret))
}

/// Whiten `src` into `out` over the valid tokens of the whole batch:
/// `(x - mean) / sqrt(var + eps)` with the unbiased (n - 1) variance, as TRL does;
/// with `shift_mean = false` the mean is added back. Padding is set to 0.
/// With no valid token the output is all 0; with one, the variance is taken as 0.
/// Per-row partial sums are combined in row order, so results do not depend on the
/// number of threads.
pub(crate) fn whiten_into<T: Copy + Into<f64> + Sync>(
    src: &[T],
    lens: &[usize],
    t: usize,
    p: &WhitenParams,
    out: &mut [f32],
) {
    if t == 0 {
        return;
    }
    let n: usize = lens.iter().sum();
    let mean = if n == 0 {
        0.0
    } else {
        batch_sum(src, lens, t, |v| v) / n as f64
    };
    let var = if n > 1 {
        batch_sum(src, lens, t, |v| (v - mean) * (v - mean)) / (n - 1) as f64
    } else {
        0.0
    };
    let scale = 1.0 / (var + p.eps).sqrt();
    let add = if p.shift_mean { 0.0 } else { mean };
    out.par_chunks_mut(t)
        .zip(src.par_chunks(t))
        .with_min_len(ROWS_PER_TASK)
        .enumerate()
        .for_each(|(i, (o, x))| {
            let (valid, pad) = o.split_at_mut(lens[i]);
            for (w, &v) in valid.iter_mut().zip(x) {
                *w = ((v.into() - mean) * scale + add) as f32;
            }
            pad.fill(0.0);
        });
}

/// Sum of `f(x)` over the valid entries, in a fixed order whatever the thread count:
/// per-row partials ([`row_sum`]) combined in row order.
fn batch_sum<T: Copy + Into<f64> + Sync>(
    src: &[T],
    lens: &[usize],
    t: usize,
    f: impl Fn(f64) -> f64 + Sync,
) -> f64 {
    let partial: Vec<f64> = src
        .par_chunks(t)
        .with_min_len(ROWS_PER_TASK)
        .enumerate()
        .map(|(i, row)| row_sum(&row[..lens[i]], &f))
        .collect();
    partial.iter().sum()
}

/// Sum of `f(x)` over one row with four interleaved accumulators (so the adds
/// pipeline); every whitening sum goes through here, so all paths agree bit for bit.
#[inline]
pub(crate) fn row_sum<T: Copy + Into<f64>>(valid: &[T], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut quads = valid.chunks_exact(4);
    for q in &mut quads {
        for (a, &v) in acc.iter_mut().zip(q) {
            *a += f(v.into());
        }
    }
    let tail: f64 = quads.remainder().iter().map(|&v| f(v.into())).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Masked whitening of `x` `[B, T]` (see [`WhitenParams`]); returns a new array.
pub fn whiten(x: Mat<'_, f32>, lengths: &[usize], params: &WhitenParams) -> Result<Vec<f32>> {
    params.validate()?;
    x.check("x")?;
    let t = x.cols;
    let lens = check_batch_lengths(lengths, x.rows, "x", t)?;
    check_valid_finite("x", &x, lens, t)?;
    let mut out = filled("x", x.rows, t, 0.0f32)?;
    whiten_into(x.data, lens, t, params, &mut out);
    check_outputs(&[("whitened", &out)], t, || {
        check_valid_finite("x", &x, lens, t)
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gae_gamma_one_lam_one_is_reward_to_go_minus_value() {
        let r = [1.0f32, 2.0, 3.0, 7.0];
        let v = [0.5f32, 0.25, 0.0, 9.0];
        let p = GaeParams {
            gamma: 1.0,
            lam: 1.0,
        };
        let (a, ret) = gae(
            Mat::new("rewards", &r, 1, 4).unwrap(),
            Mat::new("values", &v, 1, 4).unwrap(),
            &[3],
            &p,
        )
        .unwrap();
        assert_eq!(a, vec![5.5, 4.75, 3.0, 0.0]);
        assert_eq!(ret, vec![6.0, 5.0, 3.0, 0.0]);
    }

    #[test]
    fn gae_lam_zero_is_td_error() {
        let r = [1.0f32, 2.0];
        let v = [0.5f32, 0.25];
        let p = GaeParams {
            gamma: 0.5,
            lam: 0.0,
        };
        let (a, _) = gae(
            Mat::new("rewards", &r, 1, 2).unwrap(),
            Mat::new("values", &v, 1, 2).unwrap(),
            &[2],
            &p,
        )
        .unwrap();
        assert_eq!(a, vec![1.0 + 0.5 * 0.25 - 0.5, 2.0 - 0.25]);
    }

    #[test]
    fn whiten_matches_definition() {
        let x = [1.0f32, 2.0, 99.0, 3.0, 4.0, 99.0];
        let w = whiten(
            Mat::new("x", &x, 2, 3).unwrap(),
            &[2, 2],
            &WhitenParams::default(),
        )
        .unwrap();
        let var = (2.25 + 0.25 + 0.25 + 2.25) / 3.0f64;
        let s = 1.0 / (var + 1e-8).sqrt();
        let want = [-1.5 * s, -0.5 * s, 0.0, 0.5 * s, 1.5 * s, 0.0];
        for (a, b) in w.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6);
        }
        let keep = WhitenParams {
            shift_mean: false,
            eps: 1e-8,
        };
        let w2 = whiten(Mat::new("x", &x, 2, 3).unwrap(), &[2, 2], &keep).unwrap();
        assert!((w2[0] as f64 - (-1.5 * s + 2.5)).abs() < 1e-6);
    }

    #[test]
    fn whiten_degenerate_batches() {
        let x = [5.0f32, 7.0];
        let one = whiten(
            Mat::new("x", &x, 1, 2).unwrap(),
            &[1],
            &WhitenParams::default(),
        )
        .unwrap();
        assert_eq!(one, vec![0.0, 0.0]);
        let none = whiten(
            Mat::new("x", &x, 1, 2).unwrap(),
            &[0],
            &WhitenParams::default(),
        )
        .unwrap();
        assert_eq!(none, vec![0.0, 0.0]);
    }
}
