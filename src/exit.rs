//! Exit codes of SPEC.md, decided in exactly one place.

use crate::detect::Verdict;

/// How a command ended, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: passed / clean.
    Passed = 0,
    /// 1: leak detected.
    Leak = 1,
    /// 2: usage, configuration or input error.
    Usage = 2,
    /// 3: ended inconclusive.
    Inconclusive = 3,
    /// 4: the target exited or crashed.
    TargetExited = 4,
    /// 5: interrupted or timed out.
    Interrupted = 5,
}

impl Exit {
    /// The exit code of a verdict (`analyze`, `scan`).
    pub fn of_verdict(v: Verdict) -> Exit {
        match v {
            Verdict::Clean => Exit::Passed,
            Verdict::Leak => Exit::Leak,
            Verdict::Inconclusive => Exit::Inconclusive,
        }
    }

    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// An error the user can fix (bad flag, config, input): printed on one line, exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Shorthand for a [`UsageError`] inside `anyhow`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// An error chain on one line (`outer: inner: root`).
pub fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}
