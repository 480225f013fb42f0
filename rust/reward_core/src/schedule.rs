//! Segment scheduling: where in each response the attribution classifier is scored.

use crate::{check_lengths, filled, Result, RewardError, MAX_LEN};

/// How responses are cut into segments.
///
/// * `Slices(k)`: `kappa_i = ceil(L_i / k)` tokens per segment (the paper's default,
///   k = 15), so a row has `ceil(L_i / kappa_i) <= k` segments: fewer than k when k
///   does not divide evenly (e.g. L = 16, k = 15 gives kappa = 2 and 8 segments).
/// * `TokensPerSegment(kappa)`: the same kappa for every row, `ceil(L_i / kappa)`
///   segments.
///
/// Segment `j` covers tokens `[j * kappa_i, min((j + 1) * kappa_i, L_i))`. A row of
/// length 0 has no segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentSpec {
    /// `k` slices per response, `ceil(L / k)` tokens each (the paper's split, k = 15).
    Slices(usize),
    /// A fixed `kappa` tokens per segment.
    TokensPerSegment(usize),
}

/// [`Schedule::token_segment`] on padding: no segment (the Python API's `-1`).
pub const NO_SEGMENT: usize = usize::MAX;

impl Default for SegmentSpec {
    fn default() -> Self {
        Self::Slices(crate::K_SLICES)
    }
}

impl SegmentSpec {
    /// Check the split: `Err` ([`ErrorKind::OutOfRange`](crate::ErrorKind), naming `k`
    /// or `kappa`) for k = 0 or kappa = 0. Every function taking a `SegmentSpec` calls it.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::Slices(0) => Err(RewardError::out_of_range(
                "k",
                "must be a positive integer, got 0",
            )),
            Self::TokensPerSegment(0) => Err(RewardError::out_of_range(
                "kappa",
                "must be a positive integer, got 0",
            )),
            _ => Ok(()),
        }
    }

    /// Tokens per segment for a row of `len` tokens (0 for an empty row).
    #[inline]
    pub fn kappa_for(&self, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        match *self {
            Self::Slices(k) => len.div_ceil(k),
            Self::TokensPerSegment(kappa) => kappa,
        }
    }

    /// Number of segments of a row of `len` tokens.
    #[inline]
    pub fn n_segments(&self, len: usize) -> usize {
        match self.kappa_for(len) {
            0 => 0,
            kappa => len.div_ceil(kappa),
        }
    }

    /// Width K of the schedule for padded width `t`: the most segments any row of at
    /// most `t` tokens can have (`min(k, t)` or `ceil(t / kappa)`).
    pub fn max_segments(&self, t: usize) -> usize {
        match *self {
            Self::Slices(k) => k.min(t),
            Self::TokensPerSegment(kappa) => t.div_ceil(kappa.max(1)),
        }
    }
}

/// The schedule of a batch; all arrays row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Batch size B.
    pub b: usize,
    /// Padded width T.
    pub t: usize,
    /// Schedule width K = `spec.max_segments(t)`.
    pub k: usize,
    /// `[B, K]`: exclusive end (token count) of each scored prefix, increasing, the last
    /// valid one equal to the row's length; padded with 0 after `n_segments[i]` entries.
    pub prefix_ends: Vec<usize>,
    /// `[B]`: number of segments of each row.
    pub n_segments: Vec<usize>,
    /// `[B, T]`: segment index of each token, [`NO_SEGMENT`] on padding.
    pub token_segment: Vec<usize>,
}

/// Compute the segment schedule of a right-padded batch of width `t` (`max_len`), with
/// `lengths[i] <= t` tokens in row `i`. `Err` if `spec` is invalid, `t` exceeds
/// [`MAX_LEN`] or a length exceeds `t`.
pub fn segment_schedule(lengths: &[usize], t: usize, spec: SegmentSpec) -> Result<Schedule> {
    spec.validate()?;
    // `t` is the one size here that does not come from an array already in memory:
    // bound it before any arithmetic. Without this, `[0, 2^60]` int64 reached numpy,
    // which refuses it (2^63 bytes) and returns NULL, and the binding then crashed.
    if t > MAX_LEN {
        return Err(RewardError::too_large(
            "max_len",
            format!("is too large: at most {MAX_LEN} (2^32 - 1), got {t}"),
        ));
    }
    let lens = check_lengths(lengths, t)?;
    let b = lens.len();
    let k = spec.max_segments(t);
    let mut prefix_ends = filled("max_len", b, k, 0usize)?;
    let mut n_segments = filled("lengths", b, 1, 0usize)?;
    let mut token_segment = filled("max_len", b, t, NO_SEGMENT)?;
    // Rows are `k` and `t` wide: chunking avoids any `i * k` index arithmetic.
    let rows = prefix_ends
        .chunks_mut(k.max(1))
        .zip(token_segment.chunks_mut(t.max(1)));
    for ((&len, n_seg), (ends, segs)) in lens.iter().zip(n_segments.iter_mut()).zip(rows) {
        let kappa = spec.kappa_for(len);
        let n = spec.n_segments(len);
        *n_seg = n;
        for (j, end) in ends[..n].iter_mut().enumerate() {
            // (j + 1) * kappa < len + kappa; saturate rather than wrap for a huge kappa.
            *end = (j + 1).saturating_mul(kappa).min(len);
        }
        for (pos, seg) in segs[..len].iter_mut().enumerate() {
            *seg = pos / kappa;
        }
    }
    Ok(Schedule {
        b,
        t,
        k,
        prefix_ends,
        n_segments,
        token_segment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_default_splits_into_at_most_k() {
        let s = segment_schedule(&[30, 16, 1, 0], 32, SegmentSpec::Slices(15)).unwrap();
        assert_eq!(s.k, 15);
        assert_eq!(s.n_segments, vec![15, 8, 1, 0]);
        assert_eq!(&s.prefix_ends[0..3], &[2, 4, 6]);
        assert_eq!(s.prefix_ends[14], 30);
        assert_eq!(&s.prefix_ends[15..24], &[2, 4, 6, 8, 10, 12, 14, 16, 0]);
        assert_eq!(&s.prefix_ends[30..32], &[1, 0]);
        assert!(s.prefix_ends[45..].iter().all(|&e| e == 0));
        assert_eq!(&s.token_segment[32..36], &[0, 0, 1, 1]);
        assert_eq!(s.token_segment[32 + 15], 7);
        assert_eq!(s.token_segment[32 + 16], NO_SEGMENT);
        assert!(s.token_segment[96..].iter().all(|&x| x == NO_SEGMENT));
    }

    #[test]
    fn kappa_larger_than_length_gives_one_segment() {
        let s = segment_schedule(&[3, 7], 8, SegmentSpec::TokensPerSegment(5)).unwrap();
        assert_eq!(s.k, 2);
        assert_eq!(s.prefix_ends, vec![3, 0, 5, 7]);
        assert_eq!(s.n_segments, vec![1, 2]);
        assert_eq!(&s.token_segment[8..], &[0, 0, 0, 0, 0, 1, 1, NO_SEGMENT]);
    }

    #[test]
    fn width_is_min_k_t() {
        let s = segment_schedule(&[4], 4, SegmentSpec::Slices(15)).unwrap();
        assert_eq!(s.k, 4);
        assert_eq!(s.prefix_ends, vec![1, 2, 3, 4]);
        let empty = segment_schedule(&[], 0, SegmentSpec::Slices(15)).unwrap();
        assert_eq!((empty.b, empty.k), (0, 0));
        let huge = segment_schedule(&[0, 0], usize::MAX / 2, SegmentSpec::Slices(15));
        assert_eq!(huge.unwrap_err().arg, "max_len");
        for t in [MAX_LEN + 1, 1 << 60, usize::MAX] {
            let e = segment_schedule(&[], t, SegmentSpec::Slices(15)).unwrap_err();
            assert_eq!(e.arg, "max_len");
        }
    }

    #[test]
    fn rejects_bad_input() {
        let e = segment_schedule(&[5], 4, SegmentSpec::Slices(3)).unwrap_err();
        assert_eq!(e.arg, "lengths");
        assert_eq!(
            segment_schedule(&[1], 4, SegmentSpec::Slices(0))
                .unwrap_err()
                .arg,
            "k"
        );
        assert_eq!(
            segment_schedule(&[1], 4, SegmentSpec::TokensPerSegment(0))
                .unwrap_err()
                .arg,
            "kappa"
        );
    }
}
