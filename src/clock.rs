//! Time for the live session: a monotonic clock for scheduling and durations, the wall clock
//! only for timestamps (stored and shown). Injected into the session, so tests can drive gaps,
//! suspends and clock steps with [`FakeClock`] instead of sleeping. Timestamps are shown in
//! the host's time zone ([`rfc3339`]), which is read from the system too.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Unix seconds → RFC 3339 in local time with offset (`2025-05-24T20:25:00+08:00`). The local
/// zone comes from the system (`TZ`, `/etc/localtime`): that is why this lives at the edge.
pub fn rfc3339(t: f64) -> String {
    use chrono::TimeZone;
    let secs = t.floor() as i64;
    let nanos = ((t - t.floor()) * 1e9) as u32;
    chrono::Local
        .timestamp_opt(secs, nanos)
        .single()
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
        .unwrap_or_default()
}

/// Messages that end a session's wait early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A signal the sentinel received (SIGINT, SIGTERM, SIGHUP).
    Signal(i32),
}

/// The session's view of time.
///
/// What a suspend means: the machine's time went on (timestamps, the timeout and the schedule
/// follow `CLOCK_BOOTTIME`, which counts it), but nobody watched the target, so the stretch is a
/// gap that never counts as clean ([`crate::observed`]); `awake` (`CLOCK_MONOTONIC`, which stops
/// during a suspend) tells a suspend from a stalled sentinel.
pub trait Clock {
    /// Monotonic time since the clock's origin, suspend included (`CLOCK_BOOTTIME`): never
    /// jumps with the wall clock; every interval and sample time is measured on it.
    fn mono(&self) -> Duration;
    /// Monotonic time since the clock's origin while the machine was awake (`CLOCK_MONOTONIC`).
    fn awake(&self) -> Duration;
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

/// `CLOCK_BOOTTIME` now (it cannot fail on Linux ≥ 2.6.39; zero if it ever did).
fn boottime() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(Duration::from)
        .unwrap_or_default()
}

/// The real clocks: `CLOCK_BOOTTIME`, `Instant` (CLOCK_MONOTONIC) and `SystemTime`.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Duration,
    awake_origin: Instant,
}

impl SystemClock {
    /// A clock whose monotonic origin is now.
    pub fn new() -> SystemClock {
        SystemClock {
            origin: boottime(),
            awake_origin: Instant::now(),
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
        boottime().saturating_sub(self.origin)
    }

    fn awake(&self) -> Duration {
        self.awake_origin.elapsed()
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
    awake: Duration,
    wall: f64,
    /// Things that happen at a monotonic time, in order: see [`FakeClock::at`].
    plan: Vec<(Duration, FakeEvent)>,
}

/// Something a test makes happen at a given monotonic time of a [`FakeClock`].
#[derive(Clone)]
pub enum FakeEvent {
    /// A message arrives (a signal).
    Wake(Wake),
    /// The wall clock steps by this many seconds (negative: backwards).
    StepWall(f64),
    /// The machine sleeps this long.
    Suspend(Duration),
    /// Runs a test's action (stop a process, say).
    Call(Arc<dyn Fn() + Send + Sync>),
}

impl std::fmt::Debug for FakeEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FakeEvent::Wake(w) => write!(f, "Wake({w:?})"),
            FakeEvent::StepWall(s) => write!(f, "StepWall({s})"),
            FakeEvent::Suspend(d) => write!(f, "Suspend({d:?})"),
            FakeEvent::Call(_) => write!(f, "Call(…)"),
        }
    }
}

impl FakeClock {
    /// A fake clock at monotonic zero and wall time `wall` (Unix seconds).
    pub fn new(wall: f64) -> FakeClock {
        FakeClock {
            inner: Arc::new(Mutex::new(FakeTime {
                mono: Duration::ZERO,
                awake: Duration::ZERO,
                wall,
                plan: Vec::new(),
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
            t.awake += d;
            t.wall += d.as_secs_f64();
        });
    }

    /// A suspend of `d`: boot time and the wall clock move, awake time does not.
    pub fn suspend(&self, d: Duration) {
        self.with(|t| {
            t.mono += d;
            t.wall += d.as_secs_f64();
        });
    }

    /// Plans `e` for when the monotonic clock reaches `at`; a wait that spans it stops there.
    pub fn at(&self, at: Duration, e: FakeEvent) {
        self.with(|t| {
            t.plan.push((at, e));
            t.plan.sort_by_key(|p| p.0);
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

    fn awake(&self) -> Duration {
        self.with(|t| t.awake)
    }

    fn wall(&self) -> f64 {
        self.with(|t| t.wall)
    }

    fn wait(&self, wake: &Receiver<Wake>, d: Duration) -> Option<Wake> {
        if let Ok(w) = wake.try_recv() {
            return Some(w);
        }
        let until = self.mono() + d;
        loop {
            let next = self
                .with(|t| (t.plan.first().is_some_and(|p| p.0 <= until)).then(|| t.plan.remove(0)));
            let Some((at, e)) = next else { break };
            let now = self.mono();
            self.advance(at.saturating_sub(now));
            match e {
                FakeEvent::Wake(w) => return Some(w),
                FakeEvent::StepWall(s) => self.step_wall(s),
                FakeEvent::Suspend(len) => {
                    self.suspend(len);
                    return None; // the machine woke up late: the caller looks at the time
                }
                FakeEvent::Call(f) => f(),
            }
        }
        let now = self.mono();
        self.advance(until.saturating_sub(now));
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
        c.suspend(Duration::from_secs(60));
        assert_eq!(c.mono(), Duration::from_secs(65));
        assert_eq!(c.awake(), Duration::from_secs(5));
    }

    #[test]
    fn system_clock_is_monotonic() {
        let c = SystemClock::new();
        let a = c.mono();
        let b = c.mono();
        assert!(b >= a);
        assert!(c.awake() <= c.mono() + Duration::from_millis(50));
        assert!(c.wall() > 1.5e9);
    }
}
