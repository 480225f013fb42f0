//! Extreme sizes and extreme finite values: every call returns a result or a
//! `RewardError`, never panics, wraps or returns a non-finite number.

use reward_core::{
    assemble_rewards, gae, ppo_advantages, segment_schedule, whiten, GaeParams, Mat, PpoParams,
    RewardParams, SegmentSpec, WhitenParams, MAX_ELEMENTS, MAX_LEN,
};

const HUGE_T: [usize; 8] = [
    MAX_LEN + 1,
    1 << 40,
    1 << 59,
    1 << 60,
    1 << 62,
    isize::MAX as usize,
    usize::MAX - 1,
    usize::MAX,
];

fn specs() -> Vec<SegmentSpec> {
    let mut v = Vec::new();
    for x in [1, 2, 15, 1 << 32, 1 << 62, usize::MAX / 2, usize::MAX] {
        v.push(SegmentSpec::Slices(x));
        v.push(SegmentSpec::TokensPerSegment(x));
    }
    v
}

#[test]
fn empty_batch_with_any_max_len_never_overflows() {
    // Issue: `[]` with max_len 2^60 and k = 15 crashed the interpreter.
    for spec in specs() {
        for t in [0, 1, 2, 17, 1 << 20, MAX_LEN] {
            let s = segment_schedule(&[], t, spec).unwrap();
            assert_eq!((s.b, s.t), (0, t));
            assert!(s.k <= t && s.k <= MAX_ELEMENTS);
            assert!(s.prefix_ends.is_empty() && s.token_segment.is_empty());
        }
        for t in HUGE_T {
            let e = segment_schedule(&[], t, spec).unwrap_err();
            assert_eq!(e.arg, "max_len", "{e}");
            assert!(e.msg.contains("too large"), "{e}");
        }
    }
}

#[test]
fn non_empty_batch_with_huge_max_len_is_an_error() {
    for spec in specs() {
        for t in HUGE_T {
            for lengths in [vec![0usize], vec![0, 1, 2], vec![usize::MAX]] {
                let e = segment_schedule(&lengths, t, spec).unwrap_err();
                assert!(e.arg == "max_len" || e.arg == "lengths", "{e}");
            }
        }
    }
}

#[test]
fn huge_k_or_kappa_with_real_rows() {
    for spec in specs() {
        let s = segment_schedule(&[5, 0, 3], 5, spec).unwrap();
        assert!(s.k <= 5);
        for (i, &len) in [5usize, 0, 3].iter().enumerate() {
            let n = s.n_segments[i];
            assert!(n <= s.k);
            if n > 0 {
                // The last scored prefix is the whole row, whatever k or kappa.
                assert_eq!(s.prefix_ends[i * s.k + n - 1], len);
            }
        }
    }
}

#[test]
fn overflowing_finite_inputs_are_errors_naming_the_output() {
    let lengths = [3usize, 1];
    // Each reward and value is finite; their sums over the row are not.
    let big = [3e38f32, 3e38, 3e38, 0.0, -3e38, 0.0, 0.0, 0.0];
    let small = [-3e38f32; 8];
    let r = Mat::new("rewards", &big, 2, 4).unwrap();
    let v = Mat::new("values", &small, 2, 4).unwrap();
    let e = gae(r, v, &lengths, &GaeParams::default()).unwrap_err();
    assert!(e.arg == "advantages" || e.arg == "returns", "{e}");
    assert!(e.msg.contains("not finite"), "{e}");

    let scores = [0.5f32; 8];
    let s = Mat::new("scores", &scores, 2, 4).unwrap();
    let kl = [3e38f32; 8];
    let k = Mat::new("kl", &kl, 2, 4).unwrap();
    let zeros = [0.0f32; 8];
    let z = Mat::new("values", &zeros, 2, 4).unwrap();
    let p = PpoParams {
        reward: RewardParams {
            kl_coef: 1e300,
            ..RewardParams::default()
        },
        ..PpoParams::default()
    };
    let e = ppo_advantages(s, k, z, &lengths, &p).unwrap_err();
    assert_eq!(e.arg, "rewards", "{e}");
    let e = assemble_rewards(s, k, &lengths, SegmentSpec::default(), &p.reward).unwrap_err();
    assert_eq!(e.arg, "rewards", "{e}");

    // Large but representable: still fine.
    let ok = [1e30f32, -1e30, 0.0, 0.0, 1e30, 0.0, 0.0, 0.0];
    let m = Mat::new("x", &ok, 2, 4).unwrap();
    let w = whiten(m, &lengths, &WhitenParams::default()).unwrap();
    assert!(w.iter().all(|x| x.is_finite()));
}

#[test]
fn huge_bounds_print_as_readable_numbers() {
    let p = RewardParams {
        kl_coef: f64::NAN,
        ..RewardParams::default()
    };
    let e = p.validate().unwrap_err();
    assert_eq!(e.arg, "kl_coef");
    assert!(e.msg.len() < 80, "{e}");
    assert!(!e.msg.contains("179769313486231570"), "{e}");
    let p = RewardParams {
        kl_coef: -1e300,
        ..RewardParams::default()
    };
    let e = p.validate().unwrap_err();
    assert!(e.msg.contains("-1.000e300"), "{e}");
}
