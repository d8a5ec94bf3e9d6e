//! Properties over many random policies and transactions (seeded, so a failure reproduces):
//! decisions are deterministic; the first matching rule decides, so a deny rule beats every
//! later allow; and raising a limit never turns an allow into a deny.

use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use waas_policy::{Action, Condition, Range, Rule};

const CASES: usize = 3000;

fn amount(rng: &mut StdRng) -> Decimal {
    Decimal::new(rng.gen_range(0..2_000_000), 2)
}

fn allow(rng: &mut StdRng) -> Action {
    Action::Allow {
        signing_quorum: rng.gen_range(2..=7),
        approval_quorum: rng.gen_range(0..3),
        approver_group: None,
    }
}

fn deny() -> Action {
    Action::Deny {
        reason: "random deny".into(),
    }
}

const ADDRESSES: [&str; 3] = ["0xa1", "0xb2", "0xc3"];
const ASSETS: [&str; 3] = ["ETH", "USDC", "SOL"];

/// Deny rules guard with ceilings (value above, velocity over, listed destinations); allow
/// rules admit below a bound, for some assets or networks: the shape real policies have.
fn random_policy(rng: &mut StdRng) -> Policy {
    let mut rules = Vec::new();
    for index in 0..rng.gen_range(0..10) {
        let is_deny = rng.gen_bool(0.4);
        let mut conditions = Vec::new();
        for _ in 0..rng.gen_range(0..3) {
            let condition = if is_deny {
                match rng.gen_range(0..3) {
                    0 => Condition::ValueUsd(Range {
                        gt: Some(amount(rng)),
                        ..Range::default()
                    }),
                    1 => Condition::Velocity {
                        scope: if rng.gen_bool(0.5) {
                            VelocityScope::Wallet
                        } else {
                            VelocityScope::Tenant
                        },
                        window_secs: 3600,
                        max_usd: Some(amount(rng)),
                        max_count: rng.gen_bool(0.5).then(|| rng.gen_range(1..20)),
                    },
                    _ => Condition::Destination {
                        allowed: None,
                        denied: BTreeSet::from([ADDRESSES[rng.gen_range(0..3)].to_string()]),
                    },
                }
            } else {
                match rng.gen_range(0..3) {
                    0 => Condition::ValueUsd(Range {
                        lt: Some(amount(rng)),
                        ..Range::default()
                    }),
                    1 => {
                        Condition::Asset(BTreeSet::from([ASSETS[rng.gen_range(0..3)].to_string()]))
                    }
                    _ => Condition::Network(BTreeSet::from(["ethereum".to_string()])),
                }
            };
            conditions.push(condition);
        }
        // Destination conditions on deny rules read "to is in the list": express as allowed.
        for condition in &mut conditions {
            if let Condition::Destination { allowed, denied } = condition {
                *allowed = Some(std::mem::take(denied));
            }
        }
        rules.push(Rule {
            name: format!("rule {index}"),
            conditions,
            action: if is_deny { deny() } else { allow(rng) },
        });
    }
    Policy {
        default_action: if rng.gen_bool(0.7) {
            deny()
        } else {
            allow(rng)
        },
        rules,
    }
}

fn random_case(rng: &mut StdRng, policy: &Policy) -> (Transaction, Context) {
    let mut tx = transfer("1");
    tx.amount = Decimal::new(rng.gen_range(0..1_000_000), 3);
    tx.asset = ASSETS[rng.gen_range(0..3)].into();
    tx.to = ADDRESSES[rng.gen_range(0..3)].into();
    let mut context = context(policy);
    context.price_usd = Some(Decimal::new(rng.gen_range(1..400_000), 2));
    for spent in context.spent.values_mut() {
        *spent = Spent {
            usd: amount(rng),
            count: rng.gen_range(0..25),
        };
    }
    (tx, context)
}

#[test]
fn decisions_are_deterministic() {
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..CASES {
        let policy = random_policy(&mut rng);
        let (tx, context) = random_case(&mut rng, &policy);
        let first = evaluate(&policy, &tx, &context);
        assert_eq!(
            first,
            evaluate(&policy.clone(), &tx.clone(), &context.clone())
        );
    }
}

#[test]
fn the_first_matching_rule_decides_so_deny_beats_later_allows() {
    let mut rng = StdRng::seed_from_u64(2);
    for _ in 0..CASES {
        let policy = random_policy(&mut rng);
        let (tx, context) = random_case(&mut rng, &policy);
        let decision = evaluate(&policy, &tx, &context);
        // A deny rule that matches, placed anywhere before the deciding rule, decides.
        let position = decision
            .matched_rule
            .as_ref()
            .map_or(policy.rules.len(), |m| m.index);
        let at = rng.gen_range(0..=position);
        let mut guarded = policy.clone();
        guarded.rules.insert(
            at,
            Rule {
                name: "inserted deny".into(),
                conditions: vec![Condition::Asset(BTreeSet::from([tx.asset.clone()]))],
                action: deny(),
            },
        );
        let after = evaluate(&guarded, &tx, &context);
        assert!(!after.outcome.is_allow(), "{:?}", after.explanation);
        assert_eq!(after.matched_rule.unwrap().index, at);
        // Rules added after the deciding rule never change the decision.
        let mut extended = policy.clone();
        if decision.matched_rule.is_some() {
            extended.rules.push(Rule {
                name: "appended".into(),
                conditions: Vec::new(),
                action: allow(&mut rng),
            });
            assert_eq!(evaluate(&extended, &tx, &context).outcome, decision.outcome);
        }
    }
}

/// Raises every limit: deny thresholds and velocity maxima up, allow ceilings up.
fn raise_limits(policy: &Policy, factor: Decimal) -> Policy {
    let mut raised = policy.clone();
    for rule in &mut raised.rules {
        for condition in &mut rule.conditions {
            match condition {
                Condition::ValueUsd(range) => {
                    for value in [&mut range.gt, &mut range.gte, &mut range.lt, &mut range.lte]
                        .into_iter()
                        .flatten()
                    {
                        *value *= factor;
                    }
                }
                Condition::Velocity {
                    max_usd, max_count, ..
                } => {
                    if let Some(value) = max_usd {
                        *value *= factor;
                    }
                    if let Some(count) = max_count {
                        *count = count.saturating_mul(2);
                    }
                }
                _ => {}
            }
        }
    }
    raised
}

#[test]
fn raising_a_limit_never_turns_an_allow_into_a_deny() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut allows = 0;
    for _ in 0..CASES {
        let policy = random_policy(&mut rng);
        let (tx, context) = random_case(&mut rng, &policy);
        let factor = Decimal::new(rng.gen_range(100..1000), 2);
        let before = evaluate(&policy, &tx, &context);
        let after = evaluate(&raise_limits(&policy, factor), &tx, &context);
        if before.outcome.is_allow() {
            allows += 1;
            assert!(
                after.outcome.is_allow(),
                "before: {:?}\nafter: {:?}",
                before.explanation,
                after.explanation
            );
        }
    }
    assert!(
        allows > CASES / 10,
        "too few allows ({allows}) to mean anything"
    );
}
