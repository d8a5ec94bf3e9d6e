//! The policy engine: pure and deterministic. Given a compiled policy, the facts of one
//! transaction and the context the caller looked up (price, spending so far), it returns a
//! decision, the rule that made it, and why every earlier rule did not match.
//!
//! It fails closed: a rule that cannot be evaluated (no USD price, no spending figures for
//! one of its velocity windows, a value too large to compute) decides `deny` at that rule.

use crate::document::{Action, Condition, Policy, Rule, VelocityScope, normalize_address};
use chrono::{DateTime, Datelike, Timelike, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use waas_core::chain::Chain;

/// The facts of one transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub chain: Chain,
    /// Configured network name (`ethereum`, `base`, `solana-mainnet`...).
    pub network: String,
    /// Asset symbol (`ETH`, `USDC`, `SOL`).
    pub asset: String,
    /// Amount in the asset's units (not its smallest unit).
    pub amount: Decimal,
    /// Where the value goes (for a token transfer: the recipient, not the token contract).
    pub to: String,
    /// For EVM contract calls (token transfers included): the contract called.
    pub contract: Option<String>,
    /// For EVM contract calls: the 4-byte method selector.
    pub selector: Option<[u8; 4]>,
    /// The API key that made the request, if any.
    pub api_key: Option<String>,
    /// The user that made the request, if any.
    pub user: Option<String>,
    pub at: DateTime<Utc>,
}

/// What the tenant has already spent inside one velocity window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spent {
    pub usd: Decimal,
    pub count: u64,
}

/// What the caller looked up for the engine.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context {
    /// USD per unit of the transaction's asset, from the price oracle.
    pub price_usd: Option<Decimal>,
    /// Spending already counted, for every window in [`Policy::velocity_windows`].
    pub spent: BTreeMap<(VelocityScope, u64), Spent>,
}

/// Allowed (with quorums) or denied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Allow {
        signing_quorum: u16,
        approval_quorum: u16,
        approver_group: Option<String>,
    },
    Deny {
        reason: String,
    },
}

impl Outcome {
    pub fn is_allow(&self) -> bool {
        matches!(self, Outcome::Allow { .. })
    }
}

/// The rule that decided (absent: the default action did).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedRule {
    pub index: usize,
    pub name: String,
}

/// A decision and its reasons.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub matched_rule: Option<MatchedRule>,
    /// The price used, and the value it gave (when the asset has a price).
    pub price_usd: Option<Decimal>,
    pub value_usd: Option<Decimal>,
    /// One line per rule considered, in order: why it did not match, or that it decided.
    pub explanation: Vec<String>,
}

impl Policy {
    /// The velocity windows the caller must report spending for.
    pub fn velocity_windows(&self) -> BTreeSet<(VelocityScope, u64)> {
        self.rules
            .iter()
            .flat_map(|rule| &rule.conditions)
            .filter_map(|condition| match condition {
                Condition::Velocity {
                    scope, window_secs, ..
                } => Some((*scope, *window_secs)),
                _ => None,
            })
            .collect()
    }
}

/// Why a condition does not hold (`Ok(Some)`), that it holds (`Ok(None)`), or that it
/// cannot be evaluated (`Err`).
type Check = Result<Option<String>, String>;

fn holds(ok: bool, why_not: impl FnOnce() -> String) -> Check {
    Ok((!ok).then(why_not))
}

fn listed(set: &BTreeSet<String>) -> String {
    let shown: Vec<&str> = set.iter().take(3).map(String::as_str).collect();
    let more = set.len().saturating_sub(3);
    if more > 0 {
        format!("[{} and {more} more]", shown.join(", "))
    } else {
        format!("[{}]", shown.join(", "))
    }
}

fn check(
    condition: &Condition,
    tx: &Transaction,
    context: &Context,
    value_usd: Result<Decimal, String>,
) -> Check {
    match condition {
        Condition::ValueUsd(range) => {
            let value = value_usd?;
            Ok(range.violation(value).map(|v| format!("USD value {v}")))
        }
        Condition::ValueNative { asset, range } => {
            if let Some(asset) = asset
                && *asset != tx.asset.to_ascii_uppercase()
            {
                return Ok(Some(format!("asset {} is not {asset}", tx.asset)));
            }
            Ok(range
                .violation(tx.amount)
                .map(|v| format!("amount {v} {}", tx.asset)))
        }
        Condition::Destination { allowed, denied } => {
            let to = normalize_address(&tx.to);
            if let Some(allowed) = allowed
                && !allowed.contains(&to)
            {
                return Ok(Some(format!(
                    "destination {} is not in {}",
                    tx.to,
                    listed(allowed)
                )));
            }
            holds(!denied.contains(&to), || {
                format!("destination {} is in the excluded addresses", tx.to)
            })
        }
        Condition::Network(networks) => {
            let network = tx.network.to_ascii_lowercase();
            holds(networks.contains(&network), || {
                format!("network {} is not in {}", tx.network, listed(networks))
            })
        }
        Condition::Chain(chains) => holds(chains.contains(&tx.chain), || {
            format!(
                "chain {} is not one of the rule's chains",
                tx.chain.as_str()
            )
        }),
        Condition::Asset(assets) => {
            let asset = tx.asset.to_ascii_uppercase();
            holds(assets.contains(&asset), || {
                format!("asset {} is not in {}", tx.asset, listed(assets))
            })
        }
        Condition::EvmMethod(selectors) => match tx.selector {
            Some(selector) => holds(selectors.contains(&selector), || {
                format!("method 0x{} is not one of the rule's", hex4(selector))
            }),
            None => Ok(Some("not a contract call".into())),
        },
        Condition::Contract(contracts) => match &tx.contract {
            Some(contract) => holds(contracts.contains(&normalize_address(contract)), || {
                format!("contract {contract} is not in {}", listed(contracts))
            }),
            None => Ok(Some("not a contract call".into())),
        },
        Condition::TimeWindow {
            days,
            from_minute,
            to_minute,
            utc_offset_minutes,
        } => {
            let local = tx.at + chrono::Duration::minutes(i64::from(*utc_offset_minutes));
            let minute = u16::try_from(local.hour() * 60 + local.minute()).unwrap_or(0);
            let in_hours = if from_minute < to_minute {
                (*from_minute..*to_minute).contains(&minute)
            } else {
                minute >= *from_minute || minute < *to_minute
            };
            if !days.contains(&u8::try_from(local.weekday().num_days_from_monday()).unwrap_or(7)) {
                return Ok(Some(format!(
                    "{} is not one of the rule's days",
                    local.weekday()
                )));
            }
            holds(in_hours, || {
                format!(
                    "{:02}:{:02} is outside {:02}:{:02}–{:02}:{:02}",
                    minute / 60,
                    minute % 60,
                    from_minute / 60,
                    from_minute % 60,
                    to_minute / 60,
                    to_minute % 60
                )
            })
        }
        Condition::Velocity {
            scope,
            window_secs,
            max_usd,
            max_count,
        } => {
            let spent = context.spent.get(&(*scope, *window_secs)).ok_or_else(|| {
                format!(
                    "no spending figures for the {} window of {window_secs} s",
                    scope.as_str()
                )
            })?;
            if let Some(max) = max_usd {
                let value = value_usd?;
                let total = spent
                    .usd
                    .checked_add(value)
                    .ok_or_else(|| "spending total out of range".to_string())?;
                if total > *max {
                    return Ok(None);
                }
            }
            if let Some(max) = max_count
                && spent.count + 1 > u64::from(*max)
            {
                return Ok(None);
            }
            Ok(Some(format!(
                "{} spending in the last {window_secs} s ({} USD, {} transactions) stays within the limit with this one",
                scope.as_str(),
                spent.usd,
                spent.count
            )))
        }
        Condition::Initiator { api_keys, users } => {
            let by_key = tx.api_key.as_ref().is_some_and(|k| api_keys.contains(k));
            let by_user = tx.user.as_ref().is_some_and(|u| users.contains(u));
            holds(by_key || by_user, || {
                "the request was not made by one of the rule's keys or users".into()
            })
        }
    }
}

fn hex4(bytes: [u8; 4]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn outcome_of(action: &Action) -> Outcome {
    match action {
        Action::Allow {
            signing_quorum,
            approval_quorum,
            approver_group,
        } => Outcome::Allow {
            signing_quorum: *signing_quorum,
            approval_quorum: *approval_quorum,
            approver_group: approver_group.clone(),
        },
        Action::Deny { reason } => Outcome::Deny {
            reason: reason.clone(),
        },
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Allow {
            signing_quorum,
            approval_quorum,
            ..
        } => format!("allow with {signing_quorum} signer nodes and {approval_quorum} approvals"),
        Outcome::Deny { reason } => format!("deny: {reason}"),
    }
}

/// Evaluates `policy` for `tx`: the first rule whose conditions all hold decides; otherwise
/// the default action does.
pub fn evaluate(policy: &Policy, tx: &Transaction, context: &Context) -> Decision {
    let value_usd = match context.price_usd {
        Some(price) => tx
            .amount
            .checked_mul(price)
            .ok_or_else(|| "the USD value is out of range".to_string()),
        None => Err(format!("no USD price for {}", tx.asset)),
    };
    let mut explanation = Vec::new();
    for (index, rule) in policy.rules.iter().enumerate() {
        match rule_matches(rule, tx, context, value_usd.clone()) {
            Ok(None) => {
                let outcome = outcome_of(&rule.action);
                explanation.push(format!(
                    "rule {} \"{}\" matched: {}",
                    index + 1,
                    rule.name,
                    describe(&outcome)
                ));
                return Decision {
                    outcome,
                    matched_rule: Some(MatchedRule {
                        index,
                        name: rule.name.clone(),
                    }),
                    price_usd: context.price_usd,
                    value_usd: value_usd.ok(),
                    explanation,
                };
            }
            Ok(Some(why_not)) => explanation.push(format!(
                "rule {} \"{}\" did not match: {why_not}",
                index + 1,
                rule.name
            )),
            Err(cannot) => {
                let reason = format!("rule \"{}\" cannot be evaluated: {cannot}", rule.name);
                explanation.push(format!("rule {} {reason}; denied", index + 1));
                return Decision {
                    outcome: Outcome::Deny { reason },
                    matched_rule: Some(MatchedRule {
                        index,
                        name: rule.name.clone(),
                    }),
                    price_usd: context.price_usd,
                    value_usd: value_usd.ok(),
                    explanation,
                };
            }
        }
    }
    let outcome = outcome_of(&policy.default_action);
    explanation.push(format!(
        "no rule matched; default action: {}",
        describe(&outcome)
    ));
    Decision {
        outcome,
        matched_rule: None,
        price_usd: context.price_usd,
        value_usd: value_usd.ok(),
        explanation,
    }
}

/// `Ok(None)`: every condition holds. `Ok(Some)`: the first that does not, explained.
fn rule_matches(
    rule: &Rule,
    tx: &Transaction,
    context: &Context,
    value_usd: Result<Decimal, String>,
) -> Check {
    for condition in &rule.conditions {
        if let Some(why_not) = check(condition, tx, context, value_usd.clone())? {
            return Ok(Some(why_not));
        }
    }
    Ok(None)
}
