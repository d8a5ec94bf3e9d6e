//! One table per condition type: (condition, transaction change, expected match).

use super::*;

type Case = (Value, fn(&mut Transaction), bool);

fn run(cases: Vec<Case>) {
    for (i, (condition, change, expected)) in cases.into_iter().enumerate() {
        let policy = one_rule(json!([condition.clone()]));
        let mut tx = transfer("1");
        change(&mut tx);
        assert_eq!(
            allowed(&policy, &tx, &context(&policy)),
            expected,
            "case {i}: {condition} with {tx:?}"
        );
    }
}

fn same(_: &mut Transaction) {}

#[test]
fn value_usd() {
    run(vec![
        (json!({"type": "value_usd", "lt": "10000"}), same, true),
        (json!({"type": "value_usd", "lt": "2000"}), same, false),
        (json!({"type": "value_usd", "lte": "2000"}), same, true),
        (json!({"type": "value_usd", "gt": "2000"}), same, false),
        (json!({"type": "value_usd", "gte": "2000"}), same, true),
        (
            json!({"type": "value_usd", "gte": "1000", "lt": "5000"}),
            same,
            true,
        ),
        (
            json!({"type": "value_usd", "gte": "1000", "lt": "5000"}),
            |tx| tx.amount = dec("2.5"),
            false,
        ),
        (
            json!({"type": "value_usd", "lt": "0.01"}),
            |tx| tx.amount = dec("0.000001"),
            true,
        ),
    ]);
}

#[test]
fn value_native() {
    run(vec![
        (json!({"type": "value_native", "lt": "2"}), same, true),
        (json!({"type": "value_native", "gt": "1"}), same, false),
        (
            json!({"type": "value_native", "asset": "eth", "lte": "1"}),
            same,
            true,
        ),
        (
            json!({"type": "value_native", "asset": "SOL", "lte": "1"}),
            same,
            false,
        ),
        (
            json!({"type": "value_native", "lt": "1000000"}),
            |tx| tx.amount = dec("999999.999999999999"),
            true,
        ),
    ]);
}

#[test]
fn destination() {
    let treasury = "0xaaaa000000000000000000000000000000000001";
    let _ = treasury;
    run(vec![
        (
            json!({"type": "destination", "in": ["0x1111111111111111111111111111111111111111"]}),
            same,
            true,
        ),
        (
            json!({"type": "destination", "in": ["0x2222222222222222222222222222222222222222"]}),
            same,
            false,
        ),
        (
            json!({"type": "destination", "in_lists": ["treasury"]}),
            same,
            false,
        ),
        (
            json!({"type": "destination", "in_lists": ["treasury"]}),
            |tx| tx.to = "0xaaaa000000000000000000000000000000000001".into(),
            true,
        ),
        (
            json!({"type": "destination", "not_in_lists": ["treasury"]}),
            same,
            true,
        ),
        (
            json!({"type": "destination", "not_in": ["0x1111111111111111111111111111111111111111"]}),
            same,
            false,
        ),
        // EVM addresses compare case-insensitively; others exactly.
        (
            json!({"type": "destination", "in": ["0x1111111111111111111111111111111111111111"]}),
            |tx| tx.to = "0X1111111111111111111111111111111111111111".into(),
            true,
        ),
        (
            json!({"type": "destination", "in": ["9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"]}),
            |tx| tx.to = "9xqewvg816bux9epjhmat23yvvm2zwbrrpzb9pusvfin".into(),
            false,
        ),
    ]);
}

#[test]
fn network_chain_and_asset() {
    run(vec![
        (json!({"type": "network", "in": ["Ethereum"]}), same, true),
        (json!({"type": "network", "in": ["base"]}), same, false),
        (json!({"type": "chain", "in": ["evm"]}), same, true),
        (json!({"type": "chain", "in": ["solana"]}), same, false),
        (json!({"type": "asset", "in": ["usdc", "eth"]}), same, true),
        (json!({"type": "asset", "in": ["USDC"]}), same, false),
    ]);
}

#[test]
fn evm_method_and_contract() {
    fn erc20(tx: &mut Transaction) {
        tx.contract = Some("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48".into());
        tx.selector = Some([0xa9, 0x05, 0x9c, 0xbb]);
    }
    run(vec![
        (
            json!({"type": "evm_method", "selectors": ["0xa9059cbb"]}),
            erc20,
            true,
        ),
        (
            json!({"type": "evm_method", "selectors": ["0x095ea7b3"]}),
            erc20,
            false,
        ),
        (
            json!({"type": "evm_method", "selectors": ["0xa9059cbb"]}),
            same,
            false,
        ),
        (
            json!({"type": "contract", "in": ["0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"]}),
            erc20,
            true,
        ),
        (
            json!({"type": "contract", "in": ["0xdac17f958d2ee523a2206206994597c13d831ec7"]}),
            erc20,
            false,
        ),
        (
            json!({"type": "contract", "in": ["0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"]}),
            same,
            false,
        ),
    ]);
}

#[test]
fn time_window() {
    // The transaction is on Monday 2026-11-23 at 10:30 UTC.
    run(vec![
        (
            json!({"type": "time_window", "days": ["mon", "tue"], "from": "09:00", "to": "17:00"}),
            same,
            true,
        ),
        (
            json!({"type": "time_window", "days": ["sat", "sun"], "from": "09:00", "to": "17:00"}),
            same,
            false,
        ),
        (
            json!({"type": "time_window", "days": ["mon"], "from": "11:00", "to": "17:00"}),
            same,
            false,
        ),
        (
            json!({"type": "time_window", "days": ["mon"], "from": "10:30", "to": "10:31"}),
            same,
            true,
        ),
        // 10:30 UTC is 19:30 in UTC+9: outside office hours there.
        (
            json!({"type": "time_window", "days": ["mon"], "from": "09:00", "to": "17:00", "utc_offset_minutes": 540}),
            same,
            false,
        ),
        // A night window wrapping midnight.
        (
            json!({"type": "time_window", "days": ["mon"], "from": "22:00", "to": "11:00"}),
            same,
            true,
        ),
        // UTC-11: still Sunday 23:30 there.
        (
            json!({"type": "time_window", "days": ["sun"], "from": "23:00", "to": "23:59", "utc_offset_minutes": -660}),
            same,
            true,
        ),
    ]);
}

#[test]
fn velocity() {
    let spent = |usd: &str, count: u64| Spent {
        usd: dec(usd),
        count,
    };
    let rule = json!([{"type": "velocity", "scope": "wallet", "window_secs": 3600, "max_usd": "10000", "max_count": 5}]);
    let policy = one_rule(rule);
    for (before, expected) in [
        (spent("0", 0), false),
        (spent("8000", 4), false),   // 8000 + 2000 = 10000: not over
        (spent("8000.01", 0), true), // over in value
        (spent("0", 5), true),       // the sixth transaction is over in count
    ] {
        let mut context = context(&policy);
        context.spent.insert((VelocityScope::Wallet, 3600), before);
        assert_eq!(
            allowed(&policy, &transfer("1"), &context),
            expected,
            "{before:?}"
        );
    }
}

#[test]
fn initiator() {
    run(vec![
        (
            json!({"type": "initiator", "api_keys": ["key-1"]}),
            same,
            true,
        ),
        (
            json!({"type": "initiator", "api_keys": ["key-2"]}),
            same,
            false,
        ),
        (
            json!({"type": "initiator", "users": ["alice"]}),
            |tx| tx.user = Some("alice".into()),
            true,
        ),
        (
            json!({"type": "initiator", "users": ["alice"]}),
            same,
            false,
        ),
    ]);
}

#[test]
fn all_conditions_of_a_rule_must_hold() {
    let policy = one_rule(json!([
        {"type": "asset", "in": ["ETH"]},
        {"type": "value_usd", "lt": "1000"}
    ]));
    let decision = evaluate(&policy, &transfer("1"), &context(&policy));
    assert!(!decision.outcome.is_allow());
    assert_eq!(
        decision.explanation[0],
        "rule 1 \"the rule\" did not match: USD value 2000 is not < 1000"
    );
    assert_eq!(
        decision.explanation[1],
        "no rule matched; default action: deny: default"
    );
}

fn as_signature(tx: &mut Transaction, kind: waas_policy::SignatureKind) {
    tx.operation = waas_policy::Operation::Signature {
        kind,
        typed_data: None,
    };
    tx.amount = Decimal::ZERO;
    tx.unvalued = Some("a signature".into());
}

fn permit(tx: &mut Transaction) {
    tx.operation = waas_policy::Operation::Signature {
        kind: waas_policy::SignatureKind::TypedData,
        typed_data: Some(waas_policy::TypedDataFacts {
            primary_type: "Permit".into(),
            chain_id: Some(1),
            verifying_contract: Some("0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48".into()),
            name: Some("USD Coin".into()),
        }),
    };
}

#[test]
fn signature_kind() {
    use waas_policy::SignatureKind::*;
    run(vec![
        (
            json!({"type": "signature_kind", "in": ["message"]}),
            |tx| as_signature(tx, Message),
            true,
        ),
        (
            json!({"type": "signature_kind", "in": ["typed_data"]}),
            |tx| as_signature(tx, Message),
            false,
        ),
        (
            json!({"type": "signature_kind", "in": ["message"]}),
            same,
            false,
        ),
        (
            json!({"type": "signature_kind", "in": ["hash"]}),
            |tx| as_signature(tx, Hash),
            true,
        ),
        (
            json!({"type": "signature_kind", "in": ["message", "typed_data"]}),
            |tx| as_signature(tx, Hash),
            false,
        ),
        // Signatures need a signature rule: a rule with other conditions never allows them.
        (
            json!({"type": "network", "in": ["ethereum"]}),
            |tx| as_signature(tx, Message),
            false,
        ),
        (json!({"type": "value_usd", "lt": "1000000"}), permit, false),
    ]);
}

#[test]
fn typed_data() {
    run(vec![
        (
            json!({"type": "typed_data", "primary_types": ["Permit"]}),
            permit,
            true,
        ),
        (
            json!({"type": "typed_data", "primary_types": ["Order"]}),
            permit,
            false,
        ),
        (
            json!({"type": "typed_data", "chain_ids": [1, 10]}),
            permit,
            true,
        ),
        (
            json!({"type": "typed_data", "chain_ids": [8453]}),
            permit,
            false,
        ),
        (
            json!({"type": "typed_data", "verifying_contracts": ["0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"]}),
            permit,
            true,
        ),
        (
            json!({"type": "typed_data", "verifying_contracts": ["0x1111111111111111111111111111111111111111"]}),
            permit,
            false,
        ),
        (
            json!({"type": "typed_data", "names": ["USD Coin"]}),
            permit,
            true,
        ),
        (
            json!({"type": "typed_data", "names": ["usd coin"]}),
            permit,
            false,
        ),
        (
            json!({"type": "typed_data", "primary_types": ["Permit"]}),
            same,
            false,
        ),
    ]);
}

#[test]
fn unlimited_allowances_need_a_rule_that_names_them() {
    fn unlimited(tx: &mut Transaction) {
        tx.contract = Some("0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48".into());
        tx.selector = Some(waas_policy::facts::APPROVE);
        tx.unlimited_allowance = true;
        tx.unvalued = Some("an unlimited allowance".into());
    }
    run(vec![
        (json!({"type": "unlimited_allowance"}), unlimited, true),
        (json!({"type": "unlimited_allowance"}), same, false),
        (
            json!({"type": "evm_method", "selectors": ["0x095ea7b3"]}),
            unlimited,
            false,
        ),
        (
            json!({"type": "network", "in": ["ethereum"]}),
            unlimited,
            false,
        ),
    ]);
}

#[test]
fn unvalued_calls_pass_only_rules_naming_their_contract_or_method() {
    fn unknown_method(tx: &mut Transaction) {
        tx.amount = Decimal::ZERO;
        tx.contract = Some("0x2222222222222222222222222222222222222222".into());
        tx.selector = Some([0xde, 0xad, 0xbe, 0xef]);
        tx.unvalued = Some("unknown method".into());
    }
    run(vec![
        (
            json!({"type": "value_usd", "lt": "10000"}),
            unknown_method,
            false,
        ),
        (
            json!({"type": "network", "in": ["ethereum"]}),
            unknown_method,
            false,
        ),
        (
            json!({"type": "evm_method", "selectors": ["0xdeadbeef"]}),
            unknown_method,
            true,
        ),
        (
            json!({"type": "contract", "in": ["0x2222222222222222222222222222222222222222"]}),
            unknown_method,
            true,
        ),
    ]);
    // A value rule that would allow a $0 call lets the request go on to the explicit rule.
    let policy = compile(json!({
        "default_action": {"type": "allow", "signing_quorum": 2},
        "rules": [
            {"name": "small", "conditions": [{"type": "value_usd", "lt": "10000"}],
             "action": {"type": "allow", "signing_quorum": 2}},
            {"name": "the dex", "conditions": [{"type": "evm_method", "selectors": ["0xdeadbeef"]}],
             "action": {"type": "allow", "signing_quorum": 3, "approval_quorum": 1}}
        ]
    }));
    let mut tx = transfer("0");
    unknown_method(&mut tx);
    let decision = evaluate(&policy, &tx, &context(&policy));
    assert_eq!(decision.matched_rule.unwrap().name, "the dex");
    // Without it, even an allowing default action denies.
    let mut other = tx.clone();
    other.selector = Some([1, 2, 3, 4]);
    assert!(
        !evaluate(&policy, &other, &context(&policy))
            .outcome
            .is_allow()
    );
}

#[test]
fn fees_count_in_the_usd_value_and_show_in_the_decision() {
    let policy = one_rule(json!([{"type": "value_usd", "lt": "10000"}]));
    let mut tx = transfer("4.9"); // $9,800 at $2,000
    assert!(allowed(&policy, &tx, &context(&policy)));
    tx.fee_native = dec("0.2"); // + $400
    let decision = evaluate(&policy, &tx, &context(&policy));
    assert!(!decision.outcome.is_allow());
    assert_eq!(decision.value_usd, Some(dec("10200")));
    assert_eq!(decision.fee_native, Some(dec("0.2")));
    assert_eq!(decision.fee_usd, Some(dec("400")));
}

#[test]
fn sums_too_large_deny_at_the_rule_instead_of_panicking() {
    let policy = one_rule(
        json!([{"type": "velocity", "scope": "wallet", "window_secs": 60, "max_count": 5}]),
    );
    let mut context = context(&policy);
    for spent in context.spent.values_mut() {
        spent.count = u64::MAX;
        spent.usd = Decimal::MAX;
    }
    // Velocity rules are deny-style (they hold when the limit is passed): u64::MAX + 1 passes it.
    assert!(allowed(&policy, &transfer("1"), &context));
    let usd = one_rule(
        json!([{"type": "velocity", "scope": "wallet", "window_secs": 60, "max_usd": "5"}]),
    );
    let mut context = super::context(&usd);
    for spent in context.spent.values_mut() {
        spent.usd = Decimal::MAX;
    }
    let decision = evaluate(&usd, &transfer("1"), &context);
    assert!(!decision.outcome.is_allow());
    assert!(decision.explanation.join(" ").contains("out of range"));
    let mut huge = transfer("1");
    huge.amount = Decimal::MAX;
    let decision = evaluate(&policy, &huge, &super::context(&policy));
    assert!(!decision.outcome.is_allow());
}
