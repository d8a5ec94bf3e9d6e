//! The generic cell rate algorithm (GCRA) both limiters run: one stored number per key, the
//! theoretical arrival time (TAT) of the next request at the sustained rate. A request is
//! allowed when it would not push the TAT more than the burst tolerance beyond now. The
//! Redis script (`redis_script.lua`) is this file in Lua; the two must stay the same.
//!
//! All times are integer microseconds. A request checks several keys at once (tenant and
//! class, API key) and is allowed only when every key allows it; a refused request changes
//! no key, so refused requests do not use up anyone's allowance.

use std::time::Duration;
use waas_tenants::RateLimit;

/// One key a request counts against, with the rate that applies to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// The full key (`<prefix>ratelimit:<tenant>:<class>`, …).
    pub key: String,
    pub rate: RateLimit,
    /// The policy name in the `RateLimit-Policy` / `RateLimit` headers (`sign`, `api_key`).
    pub policy: &'static str,
}

/// What one key looks like after the decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyState {
    /// Requests still allowed at once.
    pub remaining: u64,
    /// Time until the key's allowance is full again.
    pub reset: Duration,
}

/// The decision on a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The index of the check that refused the request (the one that frees up last), or
    /// `None` when it is allowed.
    pub refused_by: Option<usize>,
    /// When refused: how long until a retry can succeed.
    pub retry_after: Duration,
    /// One state per check, in order.
    pub states: Vec<KeyState>,
    /// The rates that decided, one per check, in order (divided among the API nodes when
    /// the local limiter stood in for Redis).
    pub rates: Vec<RateLimit>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.refused_by.is_none()
    }
}

/// The time between two requests at the sustained rate, in microseconds (at least 1).
pub fn interval_micros(rate: &RateLimit) -> u64 {
    let requests = u64::from(rate.requests.max(1));
    (u64::from(rate.per_secs) * 1_000_000 / requests).max(1)
}

/// How far the TAT may run ahead of now: `burst` intervals.
pub fn tolerance_micros(rate: &RateLimit) -> u64 {
    interval_micros(rate) * u64::from(rate.burst())
}

/// The outcome for one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evaluation {
    pub allowed: bool,
    /// The TAT to store when the whole request is allowed.
    pub new_tat: u64,
    /// When refused: microseconds until this key allows a request.
    pub wait: u64,
    pub state: KeyState,
}

/// GCRA for one key: `tat` is the stored TAT (`None`: never seen or expired), `now` the
/// current time, both in microseconds.
pub fn evaluate(tat: Option<u64>, now: u64, rate: &RateLimit) -> Evaluation {
    let interval = interval_micros(rate);
    let tolerance = tolerance_micros(rate);
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat + interval;
    let allow_at = new_tat.saturating_sub(tolerance);
    if allow_at > now {
        Evaluation {
            allowed: false,
            new_tat,
            wait: allow_at - now,
            state: KeyState {
                remaining: 0,
                reset: Duration::from_micros(tat - now),
            },
        }
    } else {
        Evaluation {
            allowed: true,
            new_tat,
            wait: 0,
            state: KeyState {
                remaining: (now + tolerance - new_tat) / interval,
                reset: Duration::from_micros(new_tat - now),
            },
        }
    }
}

/// Combines per-key evaluations into the request's decision: refused by the key that frees
/// up last (the first of them on a tie, as in the Redis script).
pub fn decide(evaluations: &[Evaluation], checks: &[Check]) -> Decision {
    let refused = evaluations
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.allowed)
        .min_by_key(|(_, e)| std::cmp::Reverse(e.wait));
    Decision {
        refused_by: refused.map(|(index, _)| index),
        retry_after: Duration::from_micros(refused.map_or(0, |(_, e)| e.wait)),
        states: evaluations.iter().map(|e| e.state).collect(),
        rates: checks.iter().map(|c| c.rate).collect(),
    }
}
