//! Health of a pool of members (signer parties, RPC endpoints): one circuit breaker per
//! member, latency tracking, a health score, and per-kind timeouts that follow observed
//! latency.
//!
//! A breaker is `closed` (the member is used), `open` (it is skipped until a cooldown has
//! passed) or `half-open` (the cooldown has passed; the next call is a probe). It opens after
//! `CONSECUTIVE_FAILURES` failures in a row, or when more than half of the last
//! `WINDOW` calls failed. A failed probe reopens it with a cooldown twice as long, up to
//! `MAX_COOLDOWN`; a successful call closes it. The signer coordinator polls every party's
//! status every second and an RPC pool falls back to open members when no other is left, so
//! a half-open breaker is always probed: it never stays open.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CONSECUTIVE_FAILURES: u32 = 3;
const WINDOW: usize = 20;
const MIN_CALLS_FOR_RATE: usize = 10;
const BASE_COOLDOWN: Duration = Duration::from_millis(500);
const MAX_COOLDOWN: Duration = Duration::from_secs(30);
/// Session timeout = observed latency × this factor + `TIMEOUT_SLACK`, within bounds.
const TIMEOUT_FACTOR: f64 = 4.0;
const TIMEOUT_SLACK: Duration = Duration::from_millis(750);

/// Where a breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
struct Breaker {
    state: BreakerState,
    open_until: Instant,
    cooldown: Duration,
    consecutive_failures: u32,
    recent: VecDeque<bool>,
    latency_ms: Option<f64>,
    opened_total: u64,
}

impl Breaker {
    fn new() -> Self {
        Self {
            state: BreakerState::Closed,
            open_until: Instant::now(),
            cooldown: BASE_COOLDOWN,
            consecutive_failures: 0,
            recent: VecDeque::with_capacity(WINDOW),
            latency_ms: None,
            opened_total: 0,
        }
    }

    fn remember(&mut self, ok: bool) {
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(ok);
    }

    fn error_rate(&self) -> f64 {
        if self.recent.is_empty() {
            return 0.0;
        }
        let failures = self.recent.iter().filter(|ok| !**ok).count();
        failures as f64 / self.recent.len() as f64
    }

    fn refresh(&mut self, now: Instant) {
        if self.state == BreakerState::Open && now >= self.open_until {
            self.state = BreakerState::HalfOpen;
        }
    }

    /// 0 (unusable) to 1: success rate over recent calls, lowered by slowness.
    fn score(&self) -> f64 {
        if self.state == BreakerState::Open {
            return 0.0;
        }
        let slowness = self
            .latency_ms
            .map_or(1.0, |ms| (1000.0 / (1000.0 + ms)).max(0.5));
        (1.0 - self.error_rate()) * slowness
    }

    fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open;
        self.open_until = now + self.cooldown;
        self.cooldown = (self.cooldown * 2).min(MAX_COOLDOWN);
        self.opened_total += 1;
    }
}

/// A snapshot of one member's health (for metrics and readiness).
#[derive(Clone, Debug, PartialEq)]
pub struct MemberHealth {
    pub index: u16,
    pub state: BreakerState,
    /// 0 (unusable) to 1 (healthy): success rate over recent calls, lowered by slowness.
    pub score: f64,
    pub latency_ms: Option<f64>,
    pub consecutive_failures: u32,
    pub opened_total: u64,
}

/// The breakers of every member, and the latency of each kind of call.
#[derive(Debug)]
pub struct PoolHealth {
    breakers: Vec<Mutex<Breaker>>,
    kind_latency: Mutex<HashMap<&'static str, f64>>,
}

impl PoolHealth {
    pub fn new(parties: u16) -> Self {
        Self {
            breakers: (0..parties).map(|_| Mutex::new(Breaker::new())).collect(),
            kind_latency: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, index: u16, f: impl FnOnce(&mut Breaker) -> T) -> Option<T> {
        self.breakers
            .get(usize::from(index))
            .and_then(|b| b.lock().ok())
            .map(|mut breaker| f(&mut breaker))
    }

    /// Whether the member may be used now (closed, or half-open for a probe).
    pub fn available(&self, index: u16) -> bool {
        self.with(index, |b| {
            b.refresh(Instant::now());
            b.state != BreakerState::Open
        })
        .unwrap_or(false)
    }

    pub fn record_success(&self, index: u16, latency: Duration) {
        self.with(index, |b| {
            b.remember(true);
            b.consecutive_failures = 0;
            b.state = BreakerState::Closed;
            b.cooldown = BASE_COOLDOWN;
            let ms = latency.as_secs_f64() * 1000.0;
            b.latency_ms = Some(b.latency_ms.map_or(ms, |old| old * 0.8 + ms * 0.2));
        });
    }

    pub fn record_failure(&self, index: u16) {
        self.with(index, |b| {
            let now = Instant::now();
            b.refresh(now);
            b.remember(false);
            b.consecutive_failures += 1;
            let rate_tripped = b.recent.len() >= MIN_CALLS_FOR_RATE && b.error_rate() > 0.5;
            match b.state {
                BreakerState::HalfOpen => b.open(now),
                BreakerState::Closed
                    if b.consecutive_failures >= CONSECUTIVE_FAILURES || rate_tripped =>
                {
                    b.open(now)
                }
                _ => {}
            }
        });
    }

    pub fn snapshot(&self) -> Vec<MemberHealth> {
        (0..u16::try_from(self.breakers.len()).unwrap_or(u16::MAX))
            .filter_map(|index| {
                self.with(index, |b| {
                    b.refresh(Instant::now());
                    MemberHealth {
                        index,
                        state: b.state,
                        score: b.score(),
                        latency_ms: b.latency_ms,
                        consecutive_failures: b.consecutive_failures,
                        opened_total: b.opened_total,
                    }
                })
            })
            .collect()
    }

    /// Health score of one member (0 when unknown).
    pub fn score(&self, index: u16) -> f64 {
        self.with(index, |b| {
            b.refresh(Instant::now());
            b.score()
        })
        .unwrap_or(0.0)
    }

    /// Records how long a successful session of `kind` took.
    pub fn record_session(&self, kind: &'static str, took: Duration) {
        if let Ok(mut latency) = self.kind_latency.lock() {
            let ms = took.as_secs_f64() * 1000.0;
            latency
                .entry(kind)
                .and_modify(|old| *old = *old * 0.8 + ms * 0.2)
                .or_insert(ms);
        }
    }

    /// The timeout for a session of `kind`: a multiple of its observed latency, at most
    /// `ceiling` (and `ceiling` until the kind has been observed).
    pub fn timeout(&self, kind: &'static str, ceiling: Duration) -> Duration {
        let observed = self
            .kind_latency
            .lock()
            .ok()
            .and_then(|latency| latency.get(kind).copied());
        match observed {
            Some(ms) => {
                let adaptive =
                    Duration::from_secs_f64(ms * TIMEOUT_FACTOR / 1000.0) + TIMEOUT_SLACK;
                adaptive.min(ceiling)
            }
            None => ceiling,
        }
    }
}
