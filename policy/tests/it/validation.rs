//! Documents are validated with a JSON pointer and a reason for every problem.

use super::*;
use waas_policy::PolicyDocument;

fn errors(document: Value) -> Vec<(String, String)> {
    let parsed = match parse(document.to_string().as_bytes()) {
        Ok(parsed) => parsed,
        Err(errors) => {
            return errors.into_iter().map(|e| (e.pointer, e.detail)).collect();
        }
    };
    parsed
        .compile(LIMITS)
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.pointer, e.detail))
        .collect()
}

fn pointers(document: Value) -> Vec<String> {
    errors(document).into_iter().map(|(p, _)| p).collect()
}

#[test]
fn structural_errors_name_their_place() {
    let found = errors(json!({
        "default_action": {"type": "deny", "reason": "x"},
        "rules": [{"name": "a", "action": {"type": "allow", "signing_quorum": 2}},
                  {"name": "b", "conditions": [{"type": "value_usd", "lt": 5}], "action": {"type": "deny", "reason": "x"}}]
    }));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "/rules/1/conditions/0/lt");

    let found = errors(json!({"default_action": {"type": "maybe"}}));
    assert_eq!(found[0].0, "/default_action/type", "{found:?}");
    assert!(!found[0].1.contains("line 1"), "{found:?}");
    assert!(found[0].1.contains("maybe"), "{found:?}");

    let found = errors(json!({"default_action": {"type": "deny", "reason": "x"}, "rulez": []}));
    assert!(found[0].1.contains("rulez"), "{found:?}");
}

#[test]
fn semantic_errors_are_all_reported_with_pointers() {
    let found = pointers(json!({
        "default_action": {"type": "allow", "signing_quorum": 9},
        "lists": {"ok": ["0x01"]},
        "rules": [
            {"name": "dup", "conditions": [{"type": "value_usd", "lt": "-1"}], "action": {"type": "allow", "signing_quorum": 1}},
            {"name": "dup", "conditions": [
                {"type": "value_usd"},
                {"type": "value_usd", "lt": "ten"},
                {"type": "destination", "in_lists": ["ok", "missing"]},
                {"type": "chain", "in": ["bitcoin"]},
                {"type": "evm_method", "selectors": ["a9059cbb"]},
                {"type": "time_window", "days": ["someday"], "from": "25:00", "to": "9:00"},
                {"type": "velocity", "scope": "planet", "window_secs": 0},
                {"type": "initiator"}
             ], "action": {"type": "deny", "reason": ""}}
        ]
    }));
    for expected in [
        "/default_action/signing_quorum",
        "/rules/0/conditions/0/lt",
        "/rules/0/action/signing_quorum",
        "/rules/1/name",
        "/rules/1/conditions/0",
        "/rules/1/conditions/1/lt",
        "/rules/1/conditions/2/in_lists/1",
        "/rules/1/conditions/3/in/0",
        "/rules/1/conditions/4/selectors/0",
        "/rules/1/conditions/5/days/0",
        "/rules/1/conditions/5/from",
        "/rules/1/conditions/5/to",
        "/rules/1/conditions/6/scope",
        "/rules/1/conditions/6/window_secs",
        "/rules/1/conditions/6",
        "/rules/1/conditions/7",
        "/rules/1/action/reason",
    ] {
        assert!(
            found.iter().any(|p| p == expected),
            "{expected} missing from {found:?}"
        );
    }
}

#[test]
fn a_new_tenant_denies_everything() {
    let policy = PolicyDocument::deny_all().compile(LIMITS).unwrap();
    let decision = evaluate(&policy, &transfer("0.01"), &Context::default());
    assert!(!decision.outcome.is_allow());
    assert!(decision.matched_rule.is_none());
}

#[test]
fn documents_round_trip_through_json() {
    let document = parse(
        json!({
            "default_action": {"type": "deny", "reason": "no"},
            "rules": [{"name": "r", "conditions": [{"type": "value_usd", "gte": "1", "lt": "2"}],
                       "action": {"type": "allow", "signing_quorum": 2, "approval_quorum": 1, "approver_group": "finance"}}]
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let again = parse(&serde_json::to_vec(&document).unwrap()).unwrap();
    assert_eq!(document, again);
}
