//! The in-process limiter: GCRA (`gcra.rs`) over a sharded map from key to TAT.
//!
//! Why not `governor`'s keyed limiter: it holds one quota per limiter, while here every key
//! has its own rate (each tenant's plan, per class; each API key), a plan change must apply
//! at once, and a request counts against two keys all-or-nothing (a refused request uses up
//! neither). Those need the TAT itself. Keeping the very arithmetic of the Redis script also
//! makes the fallback behave exactly like the shared limiter, headers included.
//!
//! Keys are spread over shards, each a mutex around a `HashMap`; a request locks the shards
//! of its keys in ascending order (no deadlock), decides, and writes only when every key
//! allows. Expired TATs (at or before now: the same as absent) are swept from a shard at
//! most once a minute, so memory is bounded by the keys active in the last minute or so.

use super::gcra::{Check, Decision, Evaluation, decide, evaluate};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

const SHARDS: usize = 32;
const SWEEP_EVERY_MICROS: u64 = 60_000_000;

#[derive(Debug, Default)]
struct Shard {
    tats: HashMap<String, u64>,
    last_sweep: u64,
}

/// Rate limits in this process's memory.
#[derive(Debug)]
pub struct LocalLimiter {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    epoch: Instant,
}

impl Default for LocalLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalLimiter {
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            epoch: Instant::now(),
        }
    }

    /// Decides a request against every check; counts it only when all allow it.
    pub fn check(&self, checks: &[Check]) -> Decision {
        let now = self.now_micros();
        let shard_of: Vec<usize> = checks
            .iter()
            .map(|c| (self.hasher.hash_one(&c.key) % SHARDS as u64) as usize)
            .collect();
        let mut order = shard_of.clone();
        order.sort_unstable();
        order.dedup();
        let mut guards: Vec<(usize, MutexGuard<'_, Shard>)> = order
            .iter()
            .filter_map(|&index| {
                let shard = self.shards.get(index)?;
                Some((index, shard.lock().unwrap_or_else(PoisonError::into_inner)))
            })
            .collect();
        let mut evaluations: Vec<Evaluation> = Vec::with_capacity(checks.len());
        for (check, shard) in checks.iter().zip(&shard_of) {
            let tat = guards
                .iter()
                .find(|(index, _)| index == shard)
                .and_then(|(_, guard)| guard.tats.get(&check.key).copied());
            evaluations.push(evaluate(tat, now, &check.rate));
        }
        let decision = decide(&evaluations, checks);
        if decision.allowed() {
            for ((check, shard), evaluation) in checks.iter().zip(&shard_of).zip(&evaluations) {
                if let Some((_, guard)) = guards.iter_mut().find(|(index, _)| index == shard) {
                    guard.tats.insert(check.key.clone(), evaluation.new_tat);
                }
            }
        }
        for (_, guard) in &mut guards {
            if now.saturating_sub(guard.last_sweep) >= SWEEP_EVERY_MICROS {
                guard.tats.retain(|_, tat| *tat > now);
                guard.last_sweep = now;
            }
        }
        decision
    }

    /// Keys currently held (for tests and benches).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).tats.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn now_micros(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}
