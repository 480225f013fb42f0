//! De-attribution reward: chi transform and per-token reward assembly.

use rayon::prelude::*;

use crate::{
    check_batch_lengths, check_outputs, check_param, check_valid_finite, filled, num, Mat, Result,
    RewardError, SegmentSpec, ROWS_PER_TASK,
};

/// Parameters of chi and of the KL penalty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RewardParams {
    /// Normaliser of chi (C_seg), > 0.
    pub c_seg: f64,
    /// Probabilities are clipped into `[eps, 1 - eps]` before the log; `0 < eps < 0.5`.
    pub eps: f64,
    /// Weight of the per-token KL penalty (the paper's lambda), >= 0.
    pub kl_coef: f64,
}

impl Default for RewardParams {
    fn default() -> Self {
        Self {
            c_seg: crate::C_SEG,
            eps: crate::CHI_EPS,
            kl_coef: crate::KL_COEF,
        }
    }
}

impl RewardParams {
    /// Check the parameters' ranges (`c_seg` finite and > 0, `0 < eps < 0.5`, `kl_coef`
    /// finite and >= 0): `Err` ([`ErrorKind::OutOfRange`](crate::ErrorKind)) naming the
    /// first one outside its range.
    pub fn validate(&self) -> Result<()> {
        if !(self.c_seg.is_finite() && self.c_seg > 0.0) {
            return Err(RewardError::out_of_range(
                "c_seg",
                format!("must be a finite number > 0, got {}", num(self.c_seg)),
            ));
        }
        if !(self.eps > 0.0 && self.eps < 0.5) {
            return Err(RewardError::out_of_range(
                "eps",
                format!("must be in (0, 0.5), got {}", num(self.eps)),
            ));
        }
        check_param("kl_coef", self.kl_coef, 0.0, f64::MAX)
    }
}

/// `chi(b) = clip(ln(1 - clip(b, eps, 1 - eps)) / c_seg, -1, 0)`, unchecked.
///
/// 0 when the classifier does not attribute the text to the forget owner, down to -1
/// when it does (b >= 1 - e^-c_seg, about 0.65 for the default c_seg).
#[inline]
pub fn chi(b: f64, c_seg: f64, eps: f64) -> f64 {
    let b = b.clamp(eps, 1.0 - eps);
    ((-b).ln_1p() / c_seg).clamp(-1.0, 0.0)
}

fn check_prob(arg: &'static str, i: usize, j: usize, x: f32) -> Result<()> {
    if (0.0..=1.0).contains(&x) {
        Ok(())
    } else {
        Err(RewardError::out_of_range(
            arg,
            format!(
                "{arg}[{i}, {j}] = {} is not a probability in [0, 1]",
                num(x.into())
            ),
        ))
    }
}

/// chi of every element (any shape), checked: every score must be in `[0, 1]`.
pub fn chi_slice(scores: &[f32], c_seg: f64, eps: f64) -> Result<Vec<f32>> {
    RewardParams {
        c_seg,
        eps,
        kl_coef: 0.0,
    }
    .validate()?;
    let mut out = filled("scores", scores.len(), 1, 0.0f32)?;
    // Each score is read once, checked and transformed in the same step, so a score
    // changed by another thread meanwhile cannot skip the check.
    for (j, (o, &x)) in out.iter_mut().zip(scores).enumerate() {
        if !(0.0..=1.0).contains(&x) {
            return Err(RewardError::out_of_range(
                "scores",
                format!(
                    "element {j} = {} is not a probability in [0, 1]",
                    num(x.into())
                ),
            ));
        }
        *o = chi(x as f64, c_seg, eps) as f32;
    }
    Ok(out)
}

/// Check scores `[B, K']` against the per-row segment counts; only the first
/// `n_segments` entries of each row are read, so only they must be in `[0, 1]`.
pub(crate) fn check_scores(scores: &Mat<'_, f32>, lens: &[usize], spec: SegmentSpec) -> Result<()> {
    scores.check("scores")?;
    if scores.rows != lens.len() {
        return Err(RewardError::shape(
            "scores",
            format!("has {} rows but the batch has {}", scores.rows, lens.len()),
        ));
    }
    for (i, &len) in lens.iter().enumerate() {
        let n = spec.n_segments(len);
        if n > scores.cols {
            return Err(RewardError::shape(
                "scores",
                format!(
                    "has K={} columns but row {i} (length {len}) has {n} segments",
                    scores.cols
                ),
            ));
        }
        for (j, &x) in scores.row(i)[..n].iter().enumerate() {
            check_prob("scores", i, j, x)?;
        }
    }
    Ok(())
}

/// One segment of a row: tokens `start..end`, its chi, and the sum of chi over all
/// tokens before it, so that any token's reward is a closed form (no serial scan).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    pub start: usize,
    pub end: usize,
    pub chi: f64,
    pub before: f64,
}

impl Segment {
    /// `r_t = (sum of chi over tokens 0..=t) / (t + 1) - kl_coef * kl_t` for `t` in this
    /// segment: the running mean of chi, minus the KL penalty.
    #[inline(always)]
    pub fn reward(&self, tok: usize, kl: f32, kl_coef: f64) -> f64 {
        let cum = self.before + self.chi * (tok + 1 - self.start) as f64;
        cum / (tok + 1) as f64 - kl_coef * kl as f64
    }
}

/// The segments of a row of `len` tokens (`kappa` tokens each, the last one shorter),
/// produced lazily so that a row needs no allocation.
pub(crate) fn row_segments<'a>(
    scores: &'a [f32],
    len: usize,
    kappa: usize,
    p: &'a RewardParams,
) -> impl Iterator<Item = Segment> + 'a {
    let (mut before, mut start) = (0.0f64, 0usize);
    scores.iter().map_while(move |&s| {
        if start >= len {
            return None;
        }
        let c = chi(s as f64, p.c_seg, p.eps);
        let end = start.saturating_add(kappa).min(len);
        let seg = Segment {
            start,
            end,
            chi: c,
            before,
        };
        before += c * (end - start) as f64;
        start = end;
        Some(seg)
    })
}

/// Per-token rewards `[B, T]` (0 on padding) from segment scores `[B, K']` and the
/// per-token KL `[B, T]`. `K'` may exceed the number of segments; extra columns are
/// ignored. T is taken from `kl`.
pub fn assemble_rewards(
    scores: Mat<'_, f32>,
    kl: Mat<'_, f32>,
    lengths: &[usize],
    spec: SegmentSpec,
    params: &RewardParams,
) -> Result<Vec<f32>> {
    spec.validate()?;
    params.validate()?;
    kl.check("kl")?;
    let t = kl.cols;
    let lens = check_batch_lengths(lengths, kl.rows, "kl", t)?;
    check_scores(&scores, lens, spec)?;
    check_valid_finite("kl", &kl, lens, t)?;
    let mut out = filled("kl", lens.len(), t, 0.0f32)?;
    if t == 0 {
        return Ok(out);
    }
    out.par_chunks_mut(t)
        .with_min_len(ROWS_PER_TASK)
        .enumerate()
        .for_each(|(i, row)| {
            let len = lens[i];
            let kl = kl.row(i);
            for seg in row_segments(scores.row(i), len, spec.kappa_for(len), params) {
                for tok in seg.start..seg.end {
                    row[tok] = seg.reward(tok, kl[tok], params.kl_coef) as f32;
                }
            }
        });
    check_outputs(&[("rewards", &out)], t, || {
        check_scores(&scores, lens, spec)?;
        check_valid_finite("kl", &kl, lens, t)
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chi_endpoints() {
        assert_eq!(chi(0.0, 1.05, 1e-6), (-1e-6f64).ln_1p() / 1.05);
        assert_eq!(chi(1.0, 1.05, 1e-6), -1.0);
        let b = 0.5f64;
        assert!((chi(b, 1.05, 1e-6) - (0.5f64).ln() / 1.05).abs() < 1e-12);
        assert!(chi_slice(&[1.5], 1.05, 1e-6).is_err());
        assert!(chi_slice(&[f32::NAN], 1.05, 1e-6).is_err());
        assert_eq!(chi_slice(&[0.5], 0.0, 1e-6).unwrap_err().arg, "c_seg");
        assert_eq!(chi_slice(&[0.5], 1.0, 0.5).unwrap_err().arg, "eps");
    }

    #[test]
    fn running_mean_over_segments() {
        // one row, 4 tokens, kappa = 2: chi = [c0, c0, c1, c1]
        let scores = [0.5f32, 0.0];
        let kl = [0.0f32, 1.0, 0.0, 0.0, 9.0];
        let p = RewardParams::default();
        let r = assemble_rewards(
            Mat::new("scores", &scores, 1, 2).unwrap(),
            Mat::new("kl", &kl, 1, 5).unwrap(),
            &[4],
            SegmentSpec::TokensPerSegment(2),
            &p,
        )
        .unwrap();
        let c0 = chi(0.5, 1.05, 1e-6);
        let c1 = chi(0.0, 1.05, 1e-6);
        let want = [
            c0,
            c0 - 0.1,
            (2.0 * c0 + c1) / 3.0,
            (2.0 * c0 + 2.0 * c1) / 4.0,
            0.0,
        ];
        for (a, b) in r.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{r:?}");
        }
    }

    #[test]
    fn nan_in_padding_is_ignored_but_not_in_valid_part() {
        let p = RewardParams::default();
        let scores = [0.5f32, f32::NAN];
        let kl = [0.0f32, f32::NAN];
        let ok = assemble_rewards(
            Mat::new("scores", &scores, 1, 2).unwrap(),
            Mat::new("kl", &kl, 1, 2).unwrap(),
            &[1],
            SegmentSpec::Slices(15),
            &p,
        );
        assert!(ok.is_ok());
        let bad = assemble_rewards(
            Mat::new("scores", &scores, 1, 2).unwrap(),
            Mat::new("kl", &kl, 1, 2).unwrap(),
            &[2],
            SegmentSpec::Slices(15),
            &p,
        );
        assert_eq!(bad.unwrap_err().arg, "scores");
    }
}
