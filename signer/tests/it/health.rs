//! Circuit breakers and adaptive timeouts.

use std::time::Duration;
use waas_signer::health::{BreakerState, PoolHealth};

/// The breaker's first cooldown (`health::BASE_COOLDOWN`) plus a margin.
const COOLDOWN: Duration = Duration::from_millis(550);

#[test]
fn opens_after_consecutive_failures_and_closes_on_success() {
    let health = PoolHealth::new(1);
    health.record_failure(0);
    health.record_failure(0);
    assert!(health.available(0));
    health.record_failure(0);
    assert!(
        !health.available(0),
        "three failures in a row open the breaker"
    );
    assert_eq!(health.snapshot()[0].score, 0.0);
    std::thread::sleep(COOLDOWN);
    assert!(health.available(0), "half-open after the cooldown");
    assert_eq!(health.snapshot()[0].state, BreakerState::HalfOpen);
    health.record_success(0, Duration::from_millis(3));
    assert_eq!(health.snapshot()[0].state, BreakerState::Closed);
}

#[test]
fn a_failed_probe_doubles_the_cooldown_and_never_stays_open() {
    let health = PoolHealth::new(1);
    for _ in 0..3 {
        health.record_failure(0);
    }
    std::thread::sleep(COOLDOWN);
    assert!(health.available(0));
    health.record_failure(0);
    assert!(!health.available(0), "a failed probe reopens");
    std::thread::sleep(COOLDOWN);
    assert!(
        !health.available(0),
        "the second cooldown is twice the first"
    );
    std::thread::sleep(COOLDOWN);
    assert!(
        health.available(0),
        "half-open again after the longer cooldown"
    );
    health.record_success(0, Duration::from_millis(1));
    assert!(health.available(0));
    assert_eq!(health.snapshot()[0].opened_total, 2);
}

#[test]
fn a_high_error_rate_opens_the_breaker_without_a_streak() {
    let health = PoolHealth::new(1);
    // Alternate failure and success: never two failures in a row, but half fail.
    for _ in 0..6 {
        health.record_failure(0);
        health.record_success(0, Duration::from_millis(1));
    }
    assert!(health.available(0), "50% is not above the limit");
    health.record_failure(0);
    health.record_failure(0);
    assert!(!health.available(0), "8 of 14 failed");
}

#[test]
fn timeouts_follow_observed_latency_within_the_ceiling() {
    let health = PoolHealth::new(1);
    let ceiling = Duration::from_secs(60);
    assert_eq!(health.timeout("k", ceiling), ceiling);
    health.record_session("k", Duration::from_millis(20));
    let timeout = health.timeout("k", ceiling);
    assert!(timeout < Duration::from_secs(1), "{timeout:?}");
    assert!(timeout > Duration::from_millis(80), "{timeout:?}");
    health.record_session("slow", Duration::from_secs(40));
    assert_eq!(health.timeout("slow", ceiling), ceiling);
}
