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

/// Random call data: ERC-20 calls on a configured or unknown token, or an unknown method.
fn random_call(rng: &mut StdRng) -> (String, Vec<u8>) {
    use waas_policy::facts::{APPROVE, TRANSFER};
    let contract = if rng.gen_bool(0.7) {
        USDC_ADDRESS.to_string()
    } else {
        "0x2222222222222222222222222222222222222222".to_string()
    };
    let selector = match rng.gen_range(0..3) {
        0 => TRANSFER,
        1 => APPROVE,
        _ => [0xde, 0xad, 0xbe, 0xef],
    };
    let mut data = selector.to_vec();
    let mut word = [0u8; 32];
    word[31] = 0x42;
    data.extend_from_slice(&word);
    let mut value = [0u8; 32];
    let amount: u128 = rng.gen_range(0..10_000_000_000_000);
    value[16..].copy_from_slice(&amount.to_be_bytes());
    data.extend_from_slice(&value);
    (contract, data)
}

const USDC_ADDRESS: &str = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";

/// The facts of a native transfer of `amount` with `data` sent to `to`, as the wallets
/// layer builds them.
fn with_call(tx: &Transaction, contract: &str, data: &[u8]) -> Transaction {
    let tokens = [waas_policy::facts::KnownToken {
        symbol: "USDC".into(),
        address: USDC_ADDRESS.into(),
        decimals: 6,
    }];
    let moves =
        waas_policy::facts::evm_call(contract, data, tx.amount, &tx.native_asset, &tokens).unwrap();
    let mut called = tx.clone();
    called.asset = moves.asset;
    called.amount = moves.amount;
    called.to = moves.destination;
    called.contract = moves.contract;
    called.selector = moves.selector;
    called.also_moves = moves.also_moves;
    called.unvalued = moves.unvalued;
    called.unlimited_allowance = moves.unlimited_allowance;
    called
}

#[test]
fn adding_call_data_or_fees_never_lowers_the_usd_value_counted() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut compared = 0;
    for _ in 0..CASES {
        let policy = random_policy(&mut rng);
        let (mut tx, mut context) = random_case(&mut rng, &policy);
        tx.asset = "ETH".into();
        context
            .other_prices
            .insert("USDC".into(), Decimal::new(rng.gen_range(90..110), 2));
        let plain = waas_policy::value_usd(&tx, &context).unwrap();
        // A fee only adds.
        let mut with_fee = tx.clone();
        with_fee.fee_native = Decimal::new(rng.gen_range(0..1_000_000), 6);
        assert!(waas_policy::value_usd(&with_fee, &context).unwrap() >= plain);
        // Call data either adds what it moves, or makes the request unvalued (then value
        // conditions never hold and only an explicit rule can allow it).
        let (contract, data) = random_call(&mut rng);
        let called = with_call(&with_fee, &contract, &data);
        let mut called_context = context.clone();
        if called.asset != tx.asset {
            // The main asset changed to the token: ETH's price moves to the other prices.
            called_context.price_usd = context.other_prices.get(&called.asset).copied();
            if let Some(price) = context.price_usd {
                called_context.other_prices.insert("ETH".into(), price);
            }
        }
        match waas_policy::value_usd(&called, &called_context) {
            Ok(value) => {
                compared += 1;
                assert!(value >= plain, "{value} < {plain} for {called:?}");
            }
            Err(waas_policy::NoValue::Unvalued(_)) => {
                let decision = evaluate(&policy, &called, &called_context);
                if let Some(matched) = &decision.matched_rule
                    && decision.outcome.is_allow()
                {
                    let rule = &policy.rules[matched.index];
                    assert!(
                        rule.conditions
                            .iter()
                            .any(|c| matches!(c, Condition::Contract(_) | Condition::EvmMethod(_))),
                        "an unvalued call was allowed by {:?}",
                        rule.name
                    );
                }
                assert!(
                    decision.matched_rule.is_some() || !decision.outcome.is_allow(),
                    "the default action allowed an unvalued call"
                );
            }
            Err(waas_policy::NoValue::Cannot(why)) => panic!("{why}"),
        }
    }
    assert!(compared > CASES / 4, "too few valued calls ({compared})");
}

#[test]
fn no_policy_without_an_explicit_hash_rule_allows_a_raw_signature() {
    use waas_policy::{Operation, SignatureKind};
    let mut rng = StdRng::seed_from_u64(5);
    let kinds = [
        SignatureKind::Message,
        SignatureKind::TypedData,
        SignatureKind::Hash,
    ];
    for _ in 0..CASES {
        let mut policy = random_policy(&mut rng);
        // Sprinkle signature rules that never name `hash`, and allow-everything rules.
        for rule in &mut policy.rules {
            if rng.gen_bool(0.3) {
                let mut set = BTreeSet::new();
                set.insert(kinds[rng.gen_range(0..2)]);
                rule.conditions.push(Condition::SignatureKind(set));
            }
            if rng.gen_bool(0.2) {
                rule.conditions.clear();
            }
        }
        let (mut tx, context) = random_case(&mut rng, &policy);
        tx.operation = Operation::Signature {
            kind: SignatureKind::Hash,
            typed_data: None,
        };
        tx.amount = Decimal::ZERO;
        tx.unvalued = Some("a raw hash".into());
        let decision = evaluate(&policy, &tx, &context);
        assert!(
            !decision.outcome.is_allow(),
            "a raw hash was allowed: {:?}",
            decision.explanation
        );
        // Naming `hash` explicitly in an allow rule is what allows it.
        let mut explicit = policy.clone();
        explicit.rules.insert(
            0,
            Rule {
                name: "raw hashes".into(),
                conditions: vec![Condition::SignatureKind(BTreeSet::from([
                    SignatureKind::Hash,
                ]))],
                action: allow(&mut rng),
            },
        );
        assert!(evaluate(&explicit, &tx, &context).outcome.is_allow());
    }
}
