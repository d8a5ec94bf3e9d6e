//! Policy documents and the engine: validation with precise paths, one table per condition
//! type, the example tenant policy, and properties checked over many random policies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod conditions;
mod facts;
mod properties;
mod validation;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::str::FromStr;
use waas_core::chain::Chain;
use waas_policy::{
    Context, Decimal, Outcome, Policy, PoolLimits, Spent, Transaction, VelocityScope, evaluate,
    parse,
};

pub const LIMITS: PoolLimits = PoolLimits {
    threshold: 2,
    parties: 7,
};

pub fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

pub fn compile(document: Value) -> Policy {
    parse(document.to_string().as_bytes())
        .unwrap()
        .compile(LIMITS)
        .unwrap_or_else(|errors| panic!("{errors:?}"))
}

/// A policy with one rule (`conditions`, allow with 3 nodes) and deny by default.
pub fn one_rule(conditions: Value) -> Policy {
    compile(json!({
        "default_action": {"type": "deny", "reason": "default"},
        "rules": [{
            "name": "the rule",
            "conditions": conditions,
            "action": {"type": "allow", "signing_quorum": 3}
        }],
        "lists": {"treasury": ["0xAAaa000000000000000000000000000000000001"]}
    }))
}

pub fn transfer(amount: &str) -> Transaction {
    Transaction {
        chain: Chain::Evm,
        network: "ethereum".into(),
        asset: "ETH".into(),
        amount: dec(amount),
        to: "0x1111111111111111111111111111111111111111".into(),
        contract: None,
        selector: None,
        api_key: Some("key-1".into()),
        user: None,
        at: DateTime::parse_from_rfc3339("2026-11-23T10:30:00Z")
            .unwrap()
            .with_timezone(&Utc),
        operation: Default::default(),
        also_moves: Vec::new(),
        fee_native: Decimal::ZERO,
        native_asset: "ETH".into(),
        unvalued: None,
        unlimited_allowance: false,
    }
}

/// ETH at 2,000 USD; no spending so far in any window of `policy`.
pub fn context(policy: &Policy) -> Context {
    Context {
        price_usd: Some(dec("2000")),
        other_prices: Default::default(),
        spent: policy
            .velocity_windows()
            .into_iter()
            .map(|window| (window, Spent::default()))
            .collect::<BTreeMap<_, _>>(),
    }
}

pub fn allowed(policy: &Policy, tx: &Transaction, context: &Context) -> bool {
    evaluate(policy, tx, context).outcome.is_allow()
}

/// The example: under $10k two nodes; under $100k three nodes and one approval;
/// above, five nodes and two approvals; never to the denylist; at most $1M a day per wallet.
pub fn example_policy() -> Policy {
    compile(json!({
        "default_action": {"type": "deny", "reason": "no rule allows this"},
        "lists": {"blocked": ["0xBAD0000000000000000000000000000000000bad"]},
        "rules": [
            {"name": "denylist", "conditions": [{"type": "destination", "in_lists": ["blocked"]}],
             "action": {"type": "deny", "reason": "destination is on the denylist"}},
            {"name": "daily wallet limit",
             "conditions": [{"type": "velocity", "scope": "wallet", "window_secs": 86400, "max_usd": "1000000"}],
             "action": {"type": "deny", "reason": "over the daily limit of this wallet"}},
            {"name": "small", "conditions": [{"type": "value_usd", "lt": "10000"}],
             "action": {"type": "allow", "signing_quorum": 2}},
            {"name": "medium", "conditions": [{"type": "value_usd", "lt": "100000"}],
             "action": {"type": "allow", "signing_quorum": 3, "approval_quorum": 1}},
            {"name": "large", "conditions": [],
             "action": {"type": "allow", "signing_quorum": 5, "approval_quorum": 2}}
        ]
    }))
}

#[test]
fn the_example_policy_picks_quorums_by_value_and_explains_a_denial() {
    let policy = example_policy();
    let context = context(&policy);
    let quorum = |amount: &str| match evaluate(&policy, &transfer(amount), &context).outcome {
        Outcome::Allow {
            signing_quorum,
            approval_quorum,
            ..
        } => (signing_quorum, approval_quorum),
        other => panic!("{other:?}"),
    };
    assert_eq!(quorum("2.5"), (2, 0)); // $5k
    assert_eq!(quorum("25"), (3, 1)); // $50k
    assert_eq!(quorum("250"), (5, 2)); // $500k

    let mut blocked = transfer("1");
    blocked.to = "0xbad0000000000000000000000000000000000BAD".into();
    let decision = evaluate(&policy, &blocked, &context);
    assert_eq!(
        decision.outcome,
        Outcome::Deny {
            reason: "destination is on the denylist".into()
        }
    );
    assert_eq!(decision.matched_rule.unwrap().name, "denylist");
    assert_eq!(decision.value_usd, Some(dec("2000")));
    assert_eq!(decision.price_usd, Some(dec("2000")));

    // Over the daily limit: $990k spent today, $20k more does not fit.
    let mut spent = context.clone();
    spent.spent.insert(
        (VelocityScope::Wallet, 86400),
        Spent {
            usd: dec("990000"),
            count: 12,
        },
    );
    let decision = evaluate(&policy, &transfer("10"), &spent);
    assert_eq!(decision.matched_rule.unwrap().name, "daily wallet limit");
    assert_eq!(
        decision.explanation,
        vec![
            "rule 1 \"denylist\" did not match: destination 0x1111111111111111111111111111111111111111 is not in [0xbad0000000000000000000000000000000000bad]".to_string(),
            "rule 2 \"daily wallet limit\" matched: deny: over the daily limit of this wallet".to_string(),
        ]
    );
}

#[test]
fn it_fails_closed_without_a_price_or_spending_figures() {
    let policy = example_policy();
    let mut no_price = context(&policy);
    no_price.price_usd = None;
    let decision = evaluate(&policy, &transfer("1"), &no_price);
    let Outcome::Deny { reason } = decision.outcome else {
        panic!()
    };
    assert!(reason.contains("no USD price for ETH"), "{reason}");

    let mut no_spending = context(&policy);
    no_spending.spent.clear();
    let decision = evaluate(&policy, &transfer("1"), &no_spending);
    let Outcome::Deny { reason } = decision.outcome else {
        panic!()
    };
    assert!(reason.contains("no spending figures"), "{reason}");
}
