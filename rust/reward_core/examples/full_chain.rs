//! The reward core's full chain on a toy batch, one step after the other:
//!
//! 1. `segment_schedule`: where to score the attribution classifier in each response;
//! 2. `align_prefix_ends_batch`: those prefix ends in the classifier's own tokens;
//! 3. the classifier scores each prefix (a toy word-count classifier here) -> `[B, K]`;
//! 4. `chi_slice` / `assemble_rewards`: per-token rewards (running mean of chi - KL);
//! 5. `gae` then `whiten`: advantages and returns;
//! 6. `ppo_advantages`: steps 4-5 fused, checked bit for bit against the chain.
//!
//! Run it with `cargo run --example full_chain -p reward_core`.

use reward_core::{
    align_prefix_ends_batch, assemble_rewards, chi_slice, gae, ppo_advantages, segment_schedule,
    whiten, Mat, Offsets, PpoParams, RewardError, SegmentSpec, WhitenParams,
};

/// Words that give the forget owner away, for the toy classifier.
const OWNER_WORDS: [&str; 3] = ["Basil", "Mahfouz", "Al-Kuwaiti"];

/// Toy attribution classifier: P(forget owner | text), from the share of owner words.
fn toy_classifier(text: &str) -> f32 {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return 0.0;
    }
    let owner = words.iter().filter(|w| OWNER_WORDS.contains(w)).count();
    (0.02 + 0.96 * owner as f32 / words.len() as f32).min(1.0)
}

/// Character offsets of the policy's tokens: one token per word, `[T, 2]` right-padded.
fn word_offsets(text: &str, t: usize) -> Vec<i64> {
    let mut out = Vec::with_capacity(2 * t);
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (start, c == ' ') {
            (None, false) => start = Some(i),
            (Some(s), true) => {
                out.extend([s as i64, i as i64]);
                start = None;
            }
            _ => {}
        }
    }
    out.resize(2 * t, 0); // padding: never read
    out
}

/// Character offsets of the classifier's tokens: 5-character chunks, `[T, 2]` right-padded.
fn chunk_offsets(text: &str, t: usize) -> Vec<i64> {
    let mut out: Vec<i64> = (0..text.len())
        .step_by(5)
        .flat_map(|s| [s as i64, (s + 5).min(text.len()) as i64])
        .collect();
    out.resize(2 * t, 0);
    out
}

fn show(name: &str, row: &[f32]) {
    let cells: Vec<String> = row.iter().map(|x| format!("{x:7.3}")).collect();
    println!("    {name:<10} {}", cells.join(" "));
}

fn main() -> Result<(), RewardError> {
    // Three responses (ASCII, one policy token per word), right-padded to T = 12 tokens.
    let texts = [
        "the author Basil Mahfouz Al-Kuwaiti was born in Kuwait City in 1952",
        "she writes quiet novels about the sea",
        "",
    ];
    let (b, t) = (texts.len(), 12);
    let lengths: Vec<usize> = texts.iter().map(|s| s.split_whitespace().count()).collect();

    // 1. The schedule: 4 slices per response here (the paper uses k = 15).
    let spec = SegmentSpec::Slices(4);
    let sched = segment_schedule(&lengths, t, spec)?;
    let k = sched.k;

    // 2. The classifier has its own tokenizer: map each policy prefix end to the number
    //    of classifier tokens that cover no text beyond it.
    let ta = texts.iter().map(|s| s.len().div_ceil(5)).max().unwrap_or(0);
    let pol: Vec<i64> = texts.iter().flat_map(|s| word_offsets(s, t)).collect();
    let att: Vec<i64> = texts.iter().flat_map(|s| chunk_offsets(s, ta)).collect();
    let att_lengths: Vec<usize> = texts.iter().map(|s| s.len().div_ceil(5)).collect();
    let att_ends = align_prefix_ends_batch(
        Offsets::new("policy_offsets", &pol, b, t)?,
        &lengths,
        Offsets::new("attribution_offsets", &att, b, ta)?,
        &att_lengths,
        Mat::new("prefix_ends", &sched.prefix_ends, b, k)?,
    )?;

    // 3. Score every prefix the classifier sees: scores [B, K] (padding is not read).
    let mut scores = vec![0.0f32; b * k];
    for i in 0..b {
        for j in 0..sched.n_segments[i] {
            let n_att = att_ends[i * k + j];
            let chars = if n_att == 0 {
                0
            } else {
                att[2 * (i * ta + n_att - 1) + 1] as usize
            };
            scores[i * k + j] = toy_classifier(&texts[i][..chars]);
        }
    }

    // 4. Rewards: the running mean of chi(score of the token's segment), minus
    //    kl_coef * KL per token (a made-up KL estimate here).
    let params = PpoParams {
        segments: spec,
        whiten: Some(WhitenParams::default()),
        ..PpoParams::default()
    };
    let kl: Vec<f32> = (0..b * t).map(|x| 0.01 * (x % 5) as f32).collect();
    let values: Vec<f32> = (0..b * t).map(|x| -0.05 * (x % t) as f32).collect();
    let chi = chi_slice(&scores, params.reward.c_seg, params.reward.eps)?;
    let scores_m = Mat::new("scores", &scores, b, k)?;
    let kl_m = Mat::new("kl", &kl, b, t)?;
    let values_m = Mat::new("values", &values, b, t)?;
    let rewards = assemble_rewards(scores_m, kl_m, &lengths, spec, &params.reward)?;

    // 5. GAE (returns use the advantages before whitening), then masked whitening.
    let rewards_m = Mat::new("rewards", &rewards, b, t)?;
    let (advantages, returns) = gae(rewards_m, values_m, &lengths, &params.gae)?;
    let whitened = whiten(
        Mat::new("advantages", &advantages, b, t)?,
        &lengths,
        &WhitenParams::default(),
    )?;

    // 6. The fused call the PPO trainer makes gives exactly the chain's results.
    let fused = ppo_advantages(scores_m, kl_m, values_m, &lengths, &params)?;
    assert_eq!(fused.rewards, rewards);
    assert_eq!(fused.advantages, whitened);
    assert_eq!(fused.returns, returns);

    for (i, text) in texts.iter().enumerate() {
        let n = sched.n_segments[i];
        let len = lengths[i];
        if len == 0 {
            println!("row {i}: empty response: no segment, all padding (0 in every output)");
            continue;
        }
        println!("row {i}: {len} tokens, {n} segments: {text:?}");
        println!(
            "    prefix ends (policy tokens) {:?} -> classifier tokens {:?}",
            &sched.prefix_ends[i * k..i * k + n],
            &att_ends[i * k..i * k + n]
        );
        show("score", &scores[i * k..i * k + n]);
        show("chi", &chi[i * k..i * k + n]);
        show("reward", &rewards[i * t..i * t + len]);
        show("advantage", &whitened[i * t..i * t + len]);
        show("return", &returns[i * t..i * t + len]);
    }
    println!("ppo_advantages (fused) == assemble_rewards -> gae -> whiten, bit for bit");
    Ok(())
}
