//! One error type for every bad input, naming the offending argument, with a kind a
//! caller can match on.

use std::borrow::Cow;
use std::fmt;

/// What is wrong with a rejected input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Shapes or row counts that do not fit together.
    Shape,
    /// A value outside its domain: a length beyond T, k = 0, a score outside [0, 1], ...
    OutOfRange,
    /// NaN or infinity in an input, or an output that overflowed float32.
    NonFinite,
    /// An array beyond the sizes the core accepts or can allocate.
    TooLarge,
}

/// A rejected input: `arg` is the argument's name as the caller spells it
/// (`"scores"`, `"lengths"`, `"k"`, ...), `msg` says what is wrong with it.
///
/// Its `Display` is `"{arg}: {msg}"`; the Python binding raises every kind as
/// `ValueError("{arg}: {msg}")`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewardError {
    /// What kind of problem this is.
    pub kind: ErrorKind,
    /// The offending argument: the crate's own names are `&'static str`, and a
    /// [`Mat`](crate::Mat) or [`Offsets`](crate::Offsets) built under a caller's name
    /// (any string) reports that name.
    pub arg: Cow<'static, str>,
    /// What is wrong with it, without the argument's name.
    pub msg: String,
}

impl RewardError {
    /// An error of `kind` about argument `arg` (a `&'static str` or a `String`).
    pub fn new(kind: ErrorKind, arg: impl Into<Cow<'static, str>>, msg: impl Into<String>) -> Self {
        Self {
            kind,
            arg: arg.into(),
            msg: msg.into(),
        }
    }

    /// Shapes or row counts that do not fit together.
    pub fn shape(arg: impl Into<Cow<'static, str>>, msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Shape, arg, msg)
    }

    /// A value outside its domain.
    pub fn out_of_range(arg: impl Into<Cow<'static, str>>, msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::OutOfRange, arg, msg)
    }

    /// NaN or infinity in an input, or an overflowing output.
    pub fn non_finite(arg: impl Into<Cow<'static, str>>, msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::NonFinite, arg, msg)
    }

    /// An array too large for the core.
    pub fn too_large(arg: impl Into<Cow<'static, str>>, msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, arg, msg)
    }
}

impl fmt::Display for RewardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.arg, self.msg)
    }
}

impl std::error::Error for RewardError {}

/// The crate's result type: every fallible function returns `Err(RewardError)` on bad input.
pub type Result<T> = std::result::Result<T, RewardError>;
