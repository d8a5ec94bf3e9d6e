//! Counters and latency histograms of the signer pool, read by the API's `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the signing-latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A latency histogram (Prometheus-style cumulative buckets when read).
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        // Whole microseconds are precise enough for a latency sum.
        let micros = (seconds * 1e6).max(0.0) as u64;
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// (cumulative count per bucket bound, total count, sum in seconds).
    pub fn read(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let buckets = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(bound, count)| (*bound, count.load(Ordering::Relaxed)))
            .collect();
        (
            buckets,
            self.count.load(Ordering::Relaxed),
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }
}

/// What the pool counts.
#[derive(Debug, Default)]
pub struct PoolMetrics {
    /// ECDSA signatures made from a presignature (one round).
    pub presignature_hits: AtomicU64,
    /// ECDSA signatures made interactively (no usable presignature).
    pub presignature_misses: AtomicU64,
    pub presignatures_generated: AtomicU64,
    pub presignature_failures: AtomicU64,
    /// Total time spent generating presignatures, in microseconds.
    pub presignature_generation_micros: AtomicU64,
    /// Presignatures discarded at a signer because another signer no longer holds its half
    /// (it restarted: one-time material does not outlive a party process).
    pub presignatures_discarded: AtomicU64,
    /// FROST signatures made in one round from precommitted nonces.
    pub nonce_hits: AtomicU64,
    /// FROST signatures that needed both rounds.
    pub nonce_misses: AtomicU64,
    pub ecdsa_sign_seconds: Histogram,
    pub eddsa_sign_seconds: Histogram,
    pub sign_failures: AtomicU64,
}

impl PoolMetrics {
    pub fn add(counter: &AtomicU64, value: u64) {
        counter.fetch_add(value, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
