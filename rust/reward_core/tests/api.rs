//! The public API as another Rust crate sees it: no Python, default features.

use std::borrow::Cow;

use reward_core::{
    align_prefix_ends, align_prefix_ends_batch, assemble_rewards, chi, gae, ppo_advantages,
    segment_schedule, whiten, ErrorKind, GaeParams, Mat, Offsets, PpoParams, RewardParams,
    SegmentSpec, WhitenParams, NO_SEGMENT,
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
    lengths: &[usize],
    t: usize,
    p: &PpoParams,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let b = lengths.len();
    let (mut r, mut a, mut ret) = (vec![0.0; b * t], vec![0.0; b * t], vec![0.0; b * t]);
    for i in 0..b {
        let len = lengths[i];
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
    let lengths: Vec<usize> = (0..b)
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
    let lengths: Vec<usize> = (0..b).map(|_| (rng.next() * 98.0) as usize).collect();
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

#[test]
fn names_can_be_any_string_with_the_same_messages() {
    let z = [0.0f32; 4];
    let e = Mat::new("kl", &z, 2, 4).unwrap_err();
    assert_eq!(e.to_string(), "kl: has 4 elements but its shape is [2, 4]");
    for name in [
        String::from("kl"),
        format!("k{}", "l"),
        Cow::<str>::Borrowed("kl").into_owned(),
    ] {
        let owned = Mat::new(name, &z, 2, 4).unwrap_err();
        assert_eq!(owned, e);
    }
    let name: Cow<'static, str> = Cow::Owned(format!("layer_{}_kl", 3));
    let e = Mat::new(name, &z, 2, 4).unwrap_err();
    assert_eq!(e.arg, "layer_3_kl");
    assert_eq!(e.kind, ErrorKind::Shape);
    let e = Offsets::new(String::from("my_offsets"), &[0, 1, 1], 1, 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "my_offsets: has 3 elements but its shape is [1, 1, 2]"
    );
}

#[test]
fn lengths_and_schedule_are_usize() {
    let lengths: &[usize] = &[3, 0];
    let s = segment_schedule(lengths, 4, SegmentSpec::Slices(2)).unwrap();
    let (prefix_ends, n_segments): (&[usize], &[usize]) = (&s.prefix_ends, &s.n_segments);
    assert_eq!(prefix_ends, &[2, 3, 0, 0]);
    assert_eq!(n_segments, &[2, 0]);
    assert_eq!(
        s.token_segment,
        vec![0, 0, 1, NO_SEGMENT, NO_SEGMENT, NO_SEGMENT, NO_SEGMENT, NO_SEGMENT]
    );
    let e = segment_schedule(&[5], 4, SegmentSpec::Slices(2)).unwrap_err();
    assert_eq!(e.to_string(), "lengths: lengths[0] = 5 is outside [0, T=4]");
    // The schedule's prefix ends feed the alignment directly.
    let pol = [0, 2, 3, 5, 6, 9, 0, 0, 0, 0, 0, 0];
    let att = [0, 5, 5, 9, 0, 0, 0, 0];
    let out = align_prefix_ends_batch(
        Offsets::new("policy_offsets", &pol, 2, 3).unwrap(),
        lengths,
        Offsets::new("attribution_offsets", &att, 2, 2).unwrap(),
        &[2, 0],
        Mat::new("prefix_ends", prefix_ends, 2, s.k).unwrap(),
    )
    .unwrap();
    let out: Vec<usize> = out;
    assert_eq!(out, vec![1, 2, 0, 0]);
}
