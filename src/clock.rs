//! Time for the live session: a monotonic clock for scheduling and durations, the wall clock
//! only for timestamps (stored and shown). Injected into the session, so tests can drive gaps,
//! suspends and clock steps with [`FakeClock`] instead of sleeping.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Messages that end a session's wait early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A signal the sentinel received (SIGINT, SIGTERM, SIGHUP).
    Signal(i32),
}

/// The session's view of time.
pub trait Clock {
    /// Monotonic time since the clock's origin: never jumps, used for every interval.
    fn mono(&self) -> Duration;
    /// Wall-clock now, Unix seconds: timestamps only.
    fn wall(&self) -> f64;
    /// Waits until `d` has passed on this clock or a message arrives on `wake`.
    fn wait(&self, wake: &Receiver<Wake>, d: Duration) -> Option<Wake>;
}

/// Wall-clock now, Unix seconds, from the system clock.
pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The real clocks: `Instant` (CLOCK_MONOTONIC) and `SystemTime`.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose monotonic origin is now.
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn mono(&self) -> Duration {
        self.origin.elapsed()
    }

    fn wall(&self) -> f64 {
        now_unix()
    }

    fn wait(&self, wake: &Receiver<Wake>, d: Duration) -> Option<Wake> {
        match wake.recv_timeout(d) {
            Ok(w) => Some(w),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }
}

/// A clock for tests: time moves only when the session waits (by exactly what it waits) or when
/// the test moves it. The wall clock can be stepped apart from the monotonic one.
#[derive(Debug, Clone)]
pub struct FakeClock {
    inner: Arc<Mutex<FakeTime>>,
}

#[derive(Debug)]
struct FakeTime {
    mono: Duration,
    wall: f64,
}

impl FakeClock {
    /// A fake clock at monotonic zero and wall time `wall` (Unix seconds).
    pub fn new(wall: f64) -> FakeClock {
        FakeClock {
            inner: Arc::new(Mutex::new(FakeTime {
                mono: Duration::ZERO,
                wall,
            })),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut FakeTime) -> T) -> T {
        // A poisoned lock only means a test thread panicked; the time itself is still valid.
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// Moves both clocks forward by `d` (time passing while nobody looks).
    pub fn advance(&self, d: Duration) {
        self.with(|t| {
            t.mono += d;
            t.wall += d.as_secs_f64();
        });
    }

    /// Steps the wall clock by `secs` (negative: backwards) without moving the monotonic one.
    pub fn step_wall(&self, secs: f64) {
        self.with(|t| t.wall += secs);
    }
}

impl Clock for FakeClock {
    fn mono(&self) -> Duration {
        self.with(|t| t.mono)
    }

    fn wall(&self) -> f64 {
        self.with(|t| t.wall)
    }

    fn wait(&self, wake: &Receiver<Wake>, d: Duration) -> Option<Wake> {
        if let Ok(w) = wake.try_recv() {
            return Some(w);
        }
        self.advance(d);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_only_when_waited_or_advanced() {
        let c = FakeClock::new(1000.0);
        let (tx, rx) = std::sync::mpsc::channel();
        assert_eq!(c.mono(), Duration::ZERO);
        assert_eq!(c.wait(&rx, Duration::from_secs(5)), None);
        assert_eq!(c.mono(), Duration::from_secs(5));
        assert_eq!(c.wall(), 1005.0);
        c.step_wall(-100.0);
        assert_eq!(c.wall(), 905.0);
        assert_eq!(c.mono(), Duration::from_secs(5));
        tx.send(Wake::Signal(15)).expect("send");
        assert_eq!(c.wait(&rx, Duration::from_secs(5)), Some(Wake::Signal(15)));
        assert_eq!(c.mono(), Duration::from_secs(5));
    }

    #[test]
    fn system_clock_is_monotonic() {
        let c = SystemClock::new();
        let a = c.mono();
        let b = c.mono();
        assert!(b >= a);
        assert!(c.wall() > 1.5e9);
    }
}
