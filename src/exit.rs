//! Exit codes of SPEC.md, decided in exactly one place.
//!
//! An error's code is decided by its type, never by its text: an error that is (or wraps) a
//! [`UsageError`] is something the user typed or wrote (a flag value, a config, schedule or PID
//! file, the CSV given to `analyze`, a cron expression, a URL, a run name that does not exist,
//! a file named for output that cannot be used) and exits 2, which tells CI "fix your command
//! line". Every other error is an internal or environment failure (the state directory or its
//! store cannot be created, read or written, a corrupted store, an I/O error, a bug) and exits
//! 70, like `EX_SOFTWARE` of sysexits(3): retrying the same command line elsewhere may work.

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
    /// 70: internal or environment failure (the store, the state directory, I/O, a bug).
    Internal = 70,
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

    /// The exit code of a command that failed: [`Exit::Usage`] when the error is or wraps a
    /// [`UsageError`] (through `context` or as a `source`), else [`Exit::Internal`].
    pub fn of_error(e: &anyhow::Error) -> Exit {
        if e.chain().any(|c| c.is::<UsageError>()) {
            Exit::Usage
        } else {
            Exit::Internal
        }
    }
}

/// An error the user can fix (bad flag, config, input): printed on one line, exit 2. Anything
/// else that fails a command is an internal or environment failure (exit 70).
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

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn usage_errors_exit_2_wherever_they_sit_in_the_chain() {
        assert_eq!(Exit::of_error(&usage("--duration: 'x'")), Exit::Usage);
        let wrapped = Err::<(), _>(usage("bad cron"))
            .context("schedule 'n'")
            .expect_err("an error");
        assert_eq!(Exit::of_error(&wrapped), Exit::Usage);
    }

    #[test]
    fn everything_else_exits_70() {
        let io = anyhow::Error::from(std::io::Error::other("disk on fire"));
        assert_eq!(Exit::of_error(&io), Exit::Internal);
        let ctx = Err::<(), _>(io)
            .context("opening the store")
            .expect_err("an error");
        assert_eq!(Exit::of_error(&ctx), Exit::Internal);
        assert_eq!(Exit::of_error(&anyhow::anyhow!("a bug")).code(), 70);
    }
}
