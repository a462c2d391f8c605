//! What a remote-write endpoint has still to receive, as pure state: a bounded queue of points
//! (series id, time, value), the batch in flight, and when to try it again. No I/O and no clock:
//! the sender thread passes "now" (a monotonic `Duration`) in, so the tests drive outages,
//! backoff and drops without sleeping.
//!
//! The contract: a point pushed is either delivered, or counted in [`Counts::dropped_full`]
//! (the queue was full: the oldest queued point makes room, because a receiver accepts a
//! series' samples only in time order and the newest ones — the run's outcome last of all —
//! matter most), or in [`Counts::rejected`] (the receiver refused the batch for good, a 4xx
//! other than 429). A retryable failure (no connection, a timeout, 5xx, 429) keeps the batch
//! and tries it again after a backoff, forever: a long outage costs the oldest points, never
//! the sampling loop.

use std::collections::VecDeque;
use std::time::Duration;

/// One value of one series at one time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Index of the series' label set (see `Series` in the sender).
    pub series: u32,
    /// Unix time, milliseconds.
    pub t_ms: i64,
    /// The value.
    pub v: f64,
}

/// Limits and pacing of one endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Points held at most, queued and in flight together.
    pub capacity: usize,
    /// Points sent in one request at most.
    pub max_batch: usize,
    /// First retry delay; doubled at each failure in a row.
    pub backoff_min: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// After a delivery, a batch that is not full waits this long for more points: a run
    /// sampled every 50 ms sends a request a second, not twenty.
    pub linger: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        // 100,000 points (24 bytes each: 2.4 MB) hold about 80 minutes of a run sampled every
        // second with every detail metric (~20 points a sample), 7 hours at 5 s. A batch of 2,000
        // is Prometheus' own default `max_samples_per_send`.
        Limits {
            capacity: 100_000,
            max_batch: 2_000,
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(15),
            linger: Duration::from_secs(1),
        }
    }
}

/// The delay before retry `failures` (1 for the first failure): `min · 2^(failures−1)`, at most
/// `max`.
pub fn backoff(l: &Limits, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    l.backoff_min.saturating_mul(1u32 << exp).min(l.backoff_max)
}

/// Counts of one endpoint since the run (this session) started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Points the receiver accepted.
    pub sent: u64,
    /// Points dropped because the queue was full.
    pub dropped_full: u64,
    /// Points in batches the receiver refused for good.
    pub rejected: u64,
    /// Requests that failed and were retried.
    pub retries: u64,
}

impl Counts {
    /// Points lost, for whatever reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_full + self.rejected
    }
}

/// How a request went.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    /// Accepted (2xx).
    Ok,
    /// Failed in a way that may pass later (connection, timeout, 5xx, 429).
    Retry(String),
    /// Refused for good (another 4xx): the batch is dropped.
    Rejected(String),
}

/// What the sender should do now.
#[derive(Debug, PartialEq)]
pub enum Next<'a> {
    /// Send these points (the batch in flight), oldest first.
    Send(&'a [Point]),
    /// Nothing may be sent before this much time has passed (a backoff).
    Wait(Duration),
    /// Nothing to send.
    Idle,
}

/// The queue of one endpoint.
#[derive(Debug)]
pub struct Outbox {
    limits: Limits,
    queue: VecDeque<Point>,
    inflight: Vec<Point>,
    /// Failures in a row of the batch in flight.
    failures: u32,
    /// When the batch in flight may be tried again.
    retry_at: Option<Duration>,
    /// Counts so far.
    pub counts: Counts,
    /// The last failure, as said by the receiver or the connection.
    pub last_error: Option<String>,
    /// Latest time (Unix ms) of a point the receiver accepted.
    pub delivered_until_ms: Option<i64>,
    /// When the last batch was accepted.
    last_ok: Option<Duration>,
    /// Send what is queued without lingering (the run is ending).
    pub flushing: bool,
}

impl Outbox {
    /// An empty outbox.
    pub fn new(limits: Limits) -> Outbox {
        Outbox {
            limits: Limits {
                capacity: limits.capacity.max(1),
                max_batch: limits.max_batch.max(1),
                ..limits
            },
            queue: VecDeque::new(),
            inflight: Vec::new(),
            failures: 0,
            retry_at: None,
            counts: Counts::default(),
            last_error: None,
            delivered_until_ms: None,
            last_ok: None,
            flushing: false,
        }
    }

    /// Points held (queued and in flight).
    pub fn held(&self) -> usize {
        self.queue.len() + self.inflight.len()
    }

    /// Adds a point; when full, the oldest queued point is dropped (counted) to make room — or
    /// this one, when every held point is in flight.
    pub fn push(&mut self, p: Point) {
        if self.held() >= self.limits.capacity {
            self.counts.dropped_full += 1;
            if self.queue.pop_front().is_none() {
                return;
            }
        }
        self.queue.push_back(p);
    }

    /// What to do at `now`: resend the batch in flight when its backoff is over, else take the
    /// next batch from the queue.
    pub fn next(&mut self, now: Duration) -> Next<'_> {
        if !self.inflight.is_empty() {
            return match self.retry_at {
                Some(at) if at > now => Next::Wait(at - now),
                _ => Next::Send(&self.inflight),
            };
        }
        if self.queue.is_empty() {
            return Next::Idle;
        }
        if !self.flushing && self.queue.len() < self.limits.max_batch {
            if let Some(ok) = self.last_ok {
                let due = ok + self.limits.linger;
                if due > now {
                    return Next::Wait(due - now);
                }
            }
        }
        let n = self.queue.len().min(self.limits.max_batch);
        self.inflight.extend(self.queue.drain(..n));
        Next::Send(&self.inflight)
    }

    /// Records how the batch in flight went at `now`.
    pub fn sent(&mut self, now: Duration, how: Sent) {
        let n = self.inflight.len() as u64;
        match how {
            Sent::Ok => {
                self.counts.sent += n;
                let last = self.inflight.iter().map(|p| p.t_ms).max();
                self.delivered_until_ms = self.delivered_until_ms.max(last);
                self.inflight.clear();
                self.failures = 0;
                self.retry_at = None;
                self.last_ok = Some(now);
            }
            Sent::Retry(why) => {
                self.counts.retries += 1;
                self.failures = self.failures.saturating_add(1);
                self.retry_at = Some(now + backoff(&self.limits, self.failures));
                self.last_error = Some(why);
            }
            Sent::Rejected(why) => {
                self.counts.rejected += n;
                self.inflight.clear();
                self.failures = 0;
                self.retry_at = None;
                self.last_error = Some(why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(series: u32, t_ms: i64) -> Point {
        Point {
            series,
            t_ms,
            v: t_ms as f64,
        }
    }

    fn limits(capacity: usize, max_batch: usize) -> Limits {
        Limits {
            capacity,
            max_batch,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            linger: Duration::ZERO,
        }
    }

    fn take(o: &mut Outbox, now: Duration) -> Vec<i64> {
        match o.next(now) {
            Next::Send(b) => b.iter().map(|p| p.t_ms).collect(),
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_limit() {
        let l = limits(10, 10);
        let ms = |n| backoff(&l, n).as_millis();
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(5), ms(6), ms(60)],
            [100, 200, 400, 1600, 2000, 2000]
        );
    }

    #[test]
    fn batches_are_bounded_and_in_order() {
        let mut o = Outbox::new(limits(100, 3));
        assert_eq!(o.next(Duration::ZERO), Next::Idle);
        for t in 0..7 {
            o.push(p(0, t));
        }
        let t0 = Duration::ZERO;
        assert_eq!(take(&mut o, t0), [0, 1, 2]);
        // Until it is answered, the same batch is what is in flight.
        assert_eq!(take(&mut o, t0), [0, 1, 2]);
        o.sent(t0, Sent::Ok);
        assert_eq!(take(&mut o, t0), [3, 4, 5]);
        o.sent(t0, Sent::Ok);
        assert_eq!(take(&mut o, t0), [6]);
        o.sent(t0, Sent::Ok);
        assert_eq!(o.next(t0), Next::Idle);
        assert_eq!(o.counts.sent, 7);
        assert_eq!(o.delivered_until_ms, Some(6));
        assert_eq!(o.counts.dropped(), 0);
    }

    #[test]
    fn an_outage_keeps_what_fits_and_counts_the_oldest_it_drops() {
        let mut o = Outbox::new(limits(5, 2));
        let s = Duration::from_secs;
        o.push(p(0, 0));
        o.push(p(0, 1));
        assert_eq!(take(&mut o, s(0)), [0, 1]);
        o.sent(s(0), Sent::Retry("connection refused".into()));
        // Backing off: 100 ms, then 200 ms, …
        assert_eq!(o.next(s(0)), Next::Wait(Duration::from_millis(100)));
        for t in 2..9 {
            o.push(p(0, t));
        }
        // Capacity 5: two in flight, three queued; 2, 3, 4 and 5 made room for 5…8.
        assert_eq!(o.held(), 5);
        assert_eq!(o.counts.dropped_full, 4);
        assert_eq!(take(&mut o, Duration::from_millis(100)), [0, 1]);
        o.sent(Duration::from_millis(100), Sent::Retry("503".into()));
        assert_eq!(
            o.next(Duration::from_millis(150)),
            Next::Wait(Duration::from_millis(150))
        );
        assert_eq!(o.last_error.as_deref(), Some("503"));
        // The engine is back: everything held arrives, in order.
        let now = s(10);
        let mut got = Vec::new();
        while let Next::Send(b) = o.next(now) {
            got.extend(b.iter().map(|p| p.t_ms));
            o.sent(now, Sent::Ok);
        }
        assert_eq!(got, [0, 1, 6, 7, 8]);
        assert_eq!(
            o.counts.sent + o.counts.dropped(),
            9,
            "every point is accounted for"
        );
        assert_eq!(o.counts.retries, 2);
    }

    #[test]
    fn after_a_delivery_a_small_batch_lingers_unless_full_or_flushing() {
        let mut o = Outbox::new(Limits {
            linger: Duration::from_secs(1),
            ..limits(100, 3)
        });
        let ms = Duration::from_millis;
        o.push(p(0, 0));
        assert_eq!(take(&mut o, ms(0)), [0], "the first batch goes at once");
        o.sent(ms(0), Sent::Ok);
        o.push(p(0, 1));
        assert_eq!(o.next(ms(300)), Next::Wait(ms(700)));
        assert_eq!(take(&mut o, ms(1000)), [1]);
        o.sent(ms(1000), Sent::Ok);
        for t in 2..5 {
            o.push(p(0, t));
        }
        assert_eq!(
            take(&mut o, ms(1001)),
            [2, 3, 4],
            "a full batch does not wait"
        );
        o.sent(ms(1001), Sent::Ok);
        o.push(p(0, 5));
        o.flushing = true;
        assert_eq!(
            take(&mut o, ms(1002)),
            [5],
            "the end of a run does not wait"
        );
    }

    #[test]
    fn a_full_queue_of_points_in_flight_drops_the_new_one() {
        let mut o = Outbox::new(limits(2, 2));
        o.push(p(0, 0));
        o.push(p(0, 1));
        assert_eq!(take(&mut o, Duration::ZERO), [0, 1]);
        o.push(p(0, 2));
        assert_eq!(o.held(), 2);
        assert_eq!(o.counts.dropped_full, 1);
    }

    #[test]
    fn a_rejected_batch_is_dropped_and_counted_and_the_next_goes_on() {
        let mut o = Outbox::new(limits(10, 2));
        for t in 0..3 {
            o.push(p(0, t));
        }
        assert_eq!(take(&mut o, Duration::ZERO), [0, 1]);
        o.sent(
            Duration::ZERO,
            Sent::Rejected("400 out of order sample".into()),
        );
        assert_eq!(o.counts.rejected, 2);
        assert_eq!(take(&mut o, Duration::ZERO), [2]);
        o.sent(Duration::ZERO, Sent::Ok);
        assert_eq!(o.counts.dropped(), 2);
        assert_eq!(o.delivered_until_ms, Some(2));
    }
}
