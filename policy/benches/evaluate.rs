//! Evaluation time of a 50-rule policy (the rule that decides is the last one, so every rule
//! is tried). Prints min / median / p99 over many runs.
//!
//! Run: `cargo bench -p waas-policy --bench evaluate` (release).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::json;
use std::time::{Duration, Instant};
use waas_core::chain::Chain;
use waas_policy::{Context, Decimal, PoolLimits, Spent, Transaction, evaluate, parse};

fn main() {
    let mut rules = Vec::new();
    let list: Vec<String> = (0..1000).map(|i| format!("0x{i:040x}")).collect();
    for i in 0..49 {
        let condition = match i % 5 {
            0 => json!({"type": "destination", "in_lists": ["blocked"]}),
            1 => {
                json!({"type": "velocity", "scope": "wallet", "window_secs": 3600 * (i + 1), "max_usd": "1000000000"})
            }
            2 => json!({"type": "asset", "in": ["USDC", "SOL"]}),
            3 => {
                json!({"type": "time_window", "days": ["sat", "sun"], "from": "00:00", "to": "23:59"})
            }
            _ => json!({"type": "value_usd", "gt": "50000000"}),
        };
        rules.push(json!({"name": format!("rule {i}"), "conditions": [condition, {"type": "network", "in": ["ethereum"]}],
                          "action": {"type": "deny", "reason": "no"}}));
    }
    rules.push(
        json!({"name": "last", "conditions": [{"type": "value_usd", "lt": "100000"}],
                      "action": {"type": "allow", "signing_quorum": 2}}),
    );
    let document = json!({"default_action": {"type": "deny", "reason": "default"},
                          "rules": rules, "lists": {"blocked": list}});
    let policy = parse(document.to_string().as_bytes())
        .unwrap()
        .compile(PoolLimits {
            threshold: 2,
            parties: 3,
        })
        .unwrap();
    let tx = Transaction {
        chain: Chain::Evm,
        network: "ethereum".into(),
        asset: "ETH".into(),
        amount: Decimal::new(15, 1),
        to: "0x1111111111111111111111111111111111111111".into(),
        contract: None,
        selector: None,
        api_key: Some("k".into()),
        user: None,
        at: chrono::DateTime::parse_from_rfc3339("2026-11-23T10:30:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc),
        operation: Default::default(),
        also_moves: Vec::new(),
        fee_native: Decimal::ZERO,
        native_asset: "ETH".into(),
        unvalued: None,
        unlimited_allowance: false,
    };
    let context = Context {
        price_usd: Some(Decimal::new(2000, 0)),
        other_prices: Default::default(),
        spent: policy
            .velocity_windows()
            .into_iter()
            .map(|w| (w, Spent::default()))
            .collect(),
    };
    let decision = evaluate(&policy, &tx, &context);
    assert_eq!(decision.matched_rule.as_ref().unwrap().name, "last");
    for _ in 0..1000 {
        std::hint::black_box(evaluate(&policy, &tx, &context));
    }
    let mut samples: Vec<Duration> = (0..20_000)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(evaluate(
                std::hint::black_box(&policy),
                std::hint::black_box(&tx),
                &context,
            ));
            started.elapsed()
        })
        .collect();
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "evaluate, 50 rules (last one decides), n={}: min {:.1} µs  median {:.1} µs  p99 {:.1} µs",
        samples.len(),
        us(samples[0]),
        us(samples[samples.len() / 2]),
        us(samples[samples.len() * 99 / 100])
    );
    println!("explanation of the denial of a 30,000 ETH (60 M USD) transfer:");
    let mut large = tx.clone();
    large.amount = Decimal::new(30_000, 0);
    for line in evaluate(&policy, &large, &context).explanation {
        println!("  {line}");
    }
}
