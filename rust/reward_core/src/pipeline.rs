//! The fused call the PPO trainer makes: schedule -> chi -> rewards -> GAE -> whitening.

use rayon::prelude::*;

use crate::gae::row_sum;
use crate::reward::{check_scores, row_segments};
use crate::{
    check_batch_lengths, check_outputs, check_valid_finite, filled, GaeParams, Mat, Result,
    RewardParams, SegmentSpec, WhitenParams, ROWS_PER_TASK,
};

/// All parameters of the fused pipeline; `Default` is the paper's setting, with the
/// advantages whitened as in TRL and in the Python `ppo_advantages` (whiten=True).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PpoParams {
    /// How responses are cut into segments (the classifier's scoring points).
    pub segments: SegmentSpec,
    /// chi and the KL penalty.
    pub reward: RewardParams,
    /// Discount and lambda of the GAE.
    pub gae: GaeParams,
    /// `None` leaves the advantages unwhitened.
    pub whiten: Option<WhitenParams>,
    /// Divide each row's rewards by its length before GAE, so a long response's sequence
    /// reward is not larger just for being long (DareU's tiny default; off in the paper).
    pub length_norm: bool,
}

impl Default for PpoParams {
    fn default() -> Self {
        Self {
            segments: SegmentSpec::default(),
            reward: RewardParams::default(),
            gae: GaeParams::default(),
            whiten: Some(WhitenParams::default()),
            length_norm: false,
        }
    }
}

/// Outputs, each `[B, T]` row-major f32, 0 on padding.
#[derive(Debug, Clone, PartialEq)]
pub struct PpoOutput {
    /// Batch size B.
    pub b: usize,
    /// Padded width T (`kl`'s columns).
    pub t: usize,
    /// Per-token rewards (divided by the row's length with `PpoParams::length_norm`).
    pub rewards: Vec<f32>,
    /// Whitened if `PpoParams::whiten` is set.
    pub advantages: Vec<f32>,
    /// `advantages + values` with the advantages *before* whitening.
    pub returns: Vec<f32>,
}

/// One row's inputs and output slices.
struct Row<'a> {
    len: usize,
    scores: &'a [f32],
    kl: &'a [f32],
    values: &'a [f32],
    rewards: &'a mut [f32],
    advantages: &'a mut [f32],
    returns: &'a mut [f32],
    /// The row's f64 advantages, `len` long (a slice of one packed buffer).
    adv: &'a mut [f64],
    /// Sum of `adv`, for the whitening mean.
    sum: f64,
}

/// Run `f` on every row: on the rayon pool when it has more than one thread and there
/// are enough rows, else in a plain loop, which has no scheduling overhead.
fn for_each_row(rows: &mut [Row<'_>], f: impl Fn(&mut Row<'_>) + Sync + Send) {
    if rows.len() > ROWS_PER_TASK && rayon::current_num_threads() > 1 {
        rows.par_iter_mut().with_min_len(ROWS_PER_TASK).for_each(f);
    } else {
        rows.iter_mut().for_each(f);
    }
}

/// Sum of `f(row)` in row order (the same result whatever the thread count).
fn sum_rows(rows: &[Row<'_>], f: impl Fn(&Row<'_>) -> f64 + Sync + Send) -> f64 {
    if rows.len() > ROWS_PER_TASK && rayon::current_num_threads() > 1 {
        let partial: Vec<f64> = rows.par_iter().with_min_len(ROWS_PER_TASK).map(f).collect();
        partial.iter().sum()
    } else {
        rows.iter().map(f).sum()
    }
}

/// Rewards, f64 advantages and returns of one row. Three row-local passes that stay
/// in L1: rewards and TD errors (no serial dependency), the reverse GAE scan (the
/// only serial part, kept minimal), then the returns. The same arithmetic, in the same
/// order and with the same float32 roundings, as `assemble_rewards`, (with
/// `length_norm`) a division by the length, `gae` and `whiten` chained: the results are
/// bit for bit those of the chain.
fn row_pass(row: &mut Row<'_>, kappa: usize, p: &PpoParams) {
    let len = row.len;
    if len == 0 {
        return;
    }
    let (values, adv) = (&row.values[..len], &mut *row.adv);
    for seg in row_segments(row.scores, len, kappa, &p.reward) {
        let span = seg.start..seg.end;
        let outs = adv[span.clone()]
            .iter_mut()
            .zip(&mut row.rewards[span.clone()]);
        for (tok, ((a, rw), &kl)) in span.clone().zip(outs.zip(&row.kl[span])) {
            let mut r = seg.reward(tok, kl, p.reward.kl_coef) as f32;
            if p.length_norm {
                r = (r as f64 / len as f64) as f32;
            }
            *rw = r;
            *a = r as f64;
        }
    }
    // delta_t = r_t + gamma * V_{t+1} - V_t, with V = 0 after the last token.
    let gamma = p.gae.gamma;
    for (d, v) in adv.iter_mut().zip(values.windows(2)) {
        *d = *d + gamma * v[1] as f64 - v[0] as f64;
    }
    adv[len - 1] = adv[len - 1] + gamma * 0.0 - values[len - 1] as f64;
    // A_t = delta_t + gamma * lam * A_{t+1}.
    let gamma_lam = p.gae.gamma * p.gae.lam;
    let mut last = 0.0f64;
    for a in adv.iter_mut().rev() {
        last = *a + gamma_lam * last;
        *a = last;
    }
    for ((r, &a), &v) in row.returns.iter_mut().zip(adv.iter()).zip(values) {
        *r = (a + v as f64) as f32;
    }
    // The chain hands float32 advantages to the whitening: round them the same way.
    for a in adv.iter_mut() {
        *a = *a as f32 as f64;
    }
    if p.whiten.is_some() {
        row.sum = row_sum(adv, |v| v);
    } else {
        for (o, &a) in row.advantages.iter_mut().zip(adv.iter()) {
            *o = a as f32;
        }
    }
}

/// Rewards, advantages and returns from segment scores `[B, K']`, per-token KL `[B, T]`,
/// values `[B, T]` and lengths `[B]`: one pass per row (rows in parallel), then two
/// passes over the valid advantages for the whitening. The batch shape is `kl`'s.
pub fn ppo_advantages(
    scores: Mat<'_, f32>,
    kl: Mat<'_, f32>,
    values: Mat<'_, f32>,
    lengths: &[usize],
    params: &PpoParams,
) -> Result<PpoOutput> {
    params.segments.validate()?;
    params.reward.validate()?;
    params.gae.validate()?;
    if let Some(w) = &params.whiten {
        w.validate()?;
    }
    kl.check("kl")?;
    let t = kl.cols;
    let lens = check_batch_lengths(lengths, kl.rows, "kl", t)?;
    let check_inputs = || {
        check_scores(&scores, lens, params.segments)?;
        check_valid_finite("kl", &kl, lens, t)?;
        check_valid_finite("values", &values, lens, t)
    };
    check_inputs()?;

    let b = lens.len();
    let mut rewards = filled("kl", b, t, 0.0f32)?;
    let mut advantages = filled("kl", b, t, 0.0f32)?;
    let mut returns = filled("kl", b, t, 0.0f32)?;
    if t == 0 {
        return Ok(PpoOutput {
            b,
            t,
            rewards,
            advantages,
            returns,
        });
    }
    // Advantages stay f64 until whitened, so the whitening sees exact values; only
    // the valid tokens are kept, packed row after row.
    let n: usize = lens.iter().sum();
    let mut adv64 = filled("kl", n, 1, 0.0f64)?;
    let mut rows = Vec::with_capacity(b);
    let mut rest = adv64.as_mut_slice();
    let outs = rewards
        .chunks_mut(t)
        .zip(advantages.chunks_mut(t))
        .zip(returns.chunks_mut(t));
    for (i, ((rw, adv), ret)) in outs.enumerate() {
        let (row_adv, tail) = std::mem::take(&mut rest).split_at_mut(lens[i]);
        rest = tail;
        rows.push(Row {
            len: lens[i],
            scores: scores.row(i),
            kl: kl.row(i),
            values: values.row(i),
            rewards: rw,
            advantages: adv,
            returns: ret,
            adv: row_adv,
            sum: 0.0,
        });
    }
    for_each_row(&mut rows, |row| {
        row_pass(row, params.segments.kappa_for(row.len), params)
    });
    if let Some(w) = &params.whiten {
        // TRL's masked_whiten over the valid tokens (see `gae::whiten_into`).
        let mean = if n == 0 {
            0.0
        } else {
            rows.iter().map(|r| r.sum).sum::<f64>() / n as f64
        };
        let var = if n > 1 {
            sum_rows(&rows, |r| row_sum(r.adv, |v| (v - mean) * (v - mean))) / (n - 1) as f64
        } else {
            0.0
        };
        let scale = 1.0 / (var + w.eps).sqrt();
        let add = if w.shift_mean { 0.0 } else { mean };
        for_each_row(&mut rows, |row| {
            for (o, &a) in row.advantages.iter_mut().zip(row.adv.iter()) {
                *o = ((a - mean) * scale + add) as f32;
            }
        });
    }
    drop(rows);
    check_outputs(
        &[
            ("rewards", &rewards),
            ("advantages", &advantages),
            ("returns", &returns),
        ],
        t,
        check_inputs,
    )?;
    Ok(PpoOutput {
        b,
        t,
        rewards,
        advantages,
        returns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{assemble_rewards, gae, whiten};

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32) / (1u64 << 24) as f32
    }

    #[test]
    fn fused_equals_composition_bit_for_bit() {
        let (b, t, kcols) = (9usize, 37usize, 15usize);
        let mut seed = 7u64;
        let lengths: Vec<usize> = (0..b)
            .map(|i| [0, 1, 37, 5, 15, 16, 30, 2, 36][i])
            .collect();
        let scores: Vec<f32> = (0..b * kcols).map(|_| lcg(&mut seed)).collect();
        let kl: Vec<f32> = (0..b * t).map(|_| lcg(&mut seed) - 0.3).collect();
        let values: Vec<f32> = (0..b * t).map(|_| 2.0 * lcg(&mut seed) - 1.0).collect();
        let s = Mat::new("scores", &scores, b, kcols).unwrap();
        let k = Mat::new("kl", &kl, b, t).unwrap();
        let v = Mat::new("values", &values, b, t).unwrap();
        for (length_norm, whitened) in [(false, true), (true, true), (true, false), (false, false)]
        {
            let p = PpoParams {
                whiten: whitened.then(WhitenParams::default),
                length_norm,
                ..Default::default()
            };
            let out = ppo_advantages(s, k, v, &lengths, &p).unwrap();
            // The chain: rewards, (divided by the length in f64, then f32), GAE, whitening.
            let mut r = assemble_rewards(s, k, &lengths, p.segments, &p.reward).unwrap();
            if length_norm {
                for (row, &len) in r.chunks_mut(t).zip(&lengths) {
                    for x in row.iter_mut() {
                        *x = (*x as f64 / len.max(1) as f64) as f32;
                    }
                }
            }
            assert_eq!(out.rewards, r);
            let (a, ret) =
                gae(Mat::new("rewards", &r, b, t).unwrap(), v, &lengths, &p.gae).unwrap();
            assert_eq!(out.returns, ret);
            let want = if whitened {
                whiten(
                    Mat::new("x", &a, b, t).unwrap(),
                    &lengths,
                    &WhitenParams::default(),
                )
                .unwrap()
            } else {
                a
            };
            assert_eq!(
                out.advantages, want,
                "length_norm {length_norm}, whiten {whitened}"
            );
        }
    }

    #[test]
    fn default_params_whiten_like_the_python_api() {
        assert_eq!(PpoParams::default().whiten, Some(WhitenParams::default()));
    }

    #[test]
    fn empty_batches() {
        let p = PpoParams::default();
        let e = Mat::new("x", &[], 0, 0).unwrap();
        let out = ppo_advantages(e, e, e, &[], &p).unwrap();
        assert_eq!((out.b, out.t, out.rewards.len()), (0, 0, 0));
        let z = [0.0f32; 6];
        let m = Mat::new("x", &z, 2, 3).unwrap();
        let out = ppo_advantages(Mat::new("s", &[], 2, 0).unwrap(), m, m, &[0, 0], &p).unwrap();
        assert_eq!(out.advantages, vec![0.0; 6]);
    }
}
