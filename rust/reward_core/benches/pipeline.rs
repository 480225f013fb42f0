//! `cargo bench -p reward_core`: the fused pipeline at the PPO trainer's batch shape.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use reward_core::{ppo_advantages, Mat, PpoParams, WhitenParams};

/// Deterministic uniform [0, 1) numbers without a rand dependency.
fn uniform(n: usize, seed: &mut u64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((*seed >> 40) as f32) / (1u64 << 24) as f32
        })
        .collect()
}

fn bench_pipeline(c: &mut Criterion) {
    let (b, t, k) = (256usize, 512usize, 15usize);
    let mut seed = 0u64;
    let lengths: Vec<usize> = uniform(b, &mut seed)
        .iter()
        .map(|u| (u * (t + 1) as f32) as usize)
        .map(|l| l.min(t))
        .collect();
    let scores = uniform(b * k, &mut seed);
    let kl = uniform(b * t, &mut seed);
    let values = uniform(b * t, &mut seed);
    let params = PpoParams {
        whiten: Some(WhitenParams::default()),
        ..Default::default()
    };
    c.bench_function("ppo_advantages B=256 T=512 k=15", |bench| {
        bench.iter(|| {
            let out = ppo_advantages(
                Mat::new("scores", black_box(&scores), b, k).unwrap(),
                Mat::new("kl", black_box(&kl), b, t).unwrap(),
                Mat::new("values", black_box(&values), b, t).unwrap(),
                black_box(&lengths),
                &params,
            )
            .unwrap();
            black_box(out)
        })
    });
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);
