//! The public API as another Rust crate sees it: no Python, default features.

use reward_core::{
    align_prefix_ends, assemble_rewards, chi, gae, ppo_advantages, segment_schedule, whiten,
    GaeParams, Mat, PpoParams, RewardParams, SegmentSpec, WhitenParams,
};

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32) / (1u64 << 24) as f32
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// Straightforward per-token loops, independent of the crate's kernels.
fn naive(
    scores: &[f32],
    k: usize,
    kl: &[f32],
    values: &[f32],
    lengths: &[i64],
    t: usize,
    p: &PpoParams,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let b = lengths.len();
    let (mut r, mut a, mut ret) = (vec![0.0; b * t], vec![0.0; b * t], vec![0.0; b * t]);
    for i in 0..b {
        let len = lengths[i] as usize;
        let kappa = p.segments.kappa_for(len);
        let mut cum = 0.0;
        for tok in 0..len {
            let s = scores[i * k + tok / kappa] as f64;
            cum += chi(s, p.reward.c_seg, p.reward.eps);
            r[i * t + tok] = cum / (tok + 1) as f64 - p.reward.kl_coef * kl[i * t + tok] as f64;
        }
        let mut last = 0.0;
        for tok in (0..len).rev() {
            let next = if tok + 1 < len {
                values[i * t + tok + 1] as f64
            } else {
                0.0
            };
            let v = values[i * t + tok] as f64;
            last = r[i * t + tok] + p.gae.gamma * next - v + p.gae.gamma * p.gae.lam * last;
            a[i * t + tok] = last;
            ret[i * t + tok] = last + v;
        }
    }
    (r, a, ret)
}

fn close(got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((*g as f64 - w).abs() <= 1e-6 + 1e-6 * w.abs(), "{g} vs {w}");
    }
}

#[test]
fn fused_matches_naive_loops_for_both_segment_specs() {
    let mut rng = Lcg(42);
    let (b, t) = (11usize, 53usize);
    let lengths: Vec<i64> = (0..b)
        .map(|i| [0, 1, 53, 52, 15, 16, 30, 2, 7, 45, 31][i])
        .collect();
    for spec in [
        SegmentSpec::Slices(15),
        SegmentSpec::Slices(4),
        SegmentSpec::TokensPerSegment(1),
        SegmentSpec::TokensPerSegment(10),
        SegmentSpec::TokensPerSegment(100),
    ] {
        let k = spec.max_segments(t);
        let scores = rng.vec(b * k);
        let kl = rng.vec(b * t);
        let values = rng.vec(b * t);
        let p = PpoParams {
            segments: spec,
            reward: RewardParams::default(),
            gae: GaeParams {
                gamma: 0.99,
                lam: 0.9,
            },
            whiten: None,
            length_norm: false,
        };
        let out = ppo_advantages(
            Mat::new("scores", &scores, b, k).unwrap(),
            Mat::new("kl", &kl, b, t).unwrap(),
            Mat::new("values", &values, b, t).unwrap(),
            &lengths,
            &p,
        )
        .unwrap();
        let (r, a, ret) = naive(&scores, k, &kl, &values, &lengths, t, &p);
        close(&out.rewards, &r);
        close(&out.advantages, &a);
        close(&out.returns, &ret);
        let rs = assemble_rewards(
            Mat::new("scores", &scores, b, k).unwrap(),
            Mat::new("kl", &kl, b, t).unwrap(),
            &lengths,
            spec,
            &p.reward,
        )
        .unwrap();
        close(&rs, &r);
        let (a2, _) = gae(
            Mat::new("rewards", &out.rewards, b, t).unwrap(),
            Mat::new("values", &values, b, t).unwrap(),
            &lengths,
            &p.gae,
        )
        .unwrap();
        close(&a2, &a);
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let mut rng = Lcg(7);
    let (b, t, k) = (64usize, 97usize, 15usize);
    let lengths: Vec<i64> = (0..b).map(|_| (rng.next() * 98.0) as i64).collect();
    let (scores, kl, values) = (rng.vec(b * k), rng.vec(b * t), rng.vec(b * t));
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            ppo_advantages(
                Mat::new("scores", &scores, b, k).unwrap(),
                Mat::new("kl", &kl, b, t).unwrap(),
                Mat::new("values", &values, b, t).unwrap(),
                &lengths,
                &PpoParams {
                    whiten: Some(WhitenParams::default()),
                    ..Default::default()
                },
            )
            .unwrap()
        })
    };
    assert_eq!(run(1), run(4));
}

#[test]
fn errors_name_the_argument() {
    let z = [0.0f32; 4];
    let m = Mat::new("kl", &z, 1, 4).unwrap();
    let e = whiten(m, &[5], &WhitenParams::default()).unwrap_err();
    assert_eq!(e.arg, "lengths");
    assert!(e.to_string().starts_with("lengths: "));
    assert_eq!(Mat::new("kl", &z, 2, 4).unwrap_err().arg, "kl");
    assert_eq!(
        segment_schedule(&[1], 4, SegmentSpec::Slices(0))
            .unwrap_err()
            .arg,
        "k"
    );
    assert_eq!(
        align_prefix_ends(&[0, 1], &[0, 1], &[2]).unwrap_err().arg,
        "prefix_ends"
    );
}
