//! The policy engine: pure and deterministic. Given a compiled policy, the facts of one
//! transaction and the context the caller looked up (price, spending so far), it returns a
//! decision, the rule that made it, and why every earlier rule did not match.
//!
//! It fails closed: a rule that cannot be evaluated (no USD price, no spending figures for
//! one of its velocity windows, a value too large to compute) decides `deny` at that rule.
//!
//! Some requests move value the platform cannot measure: a contract call with an unknown
//! method, a token with no price, a message or typed data that is not a recognised token
//! approval, a raw hash. For them value conditions do not hold, and an `allow` only stands
//! when the rule that matched names them explicitly (see [`explicit_allow_violation`]):
//! signatures need a `signature_kind` or `typed_data` condition (raw hashes a
//! `signature_kind` naming `hash`), unvalued calls a `contract` or `evm_method` condition,
//! unlimited allowances an `unlimited_allowance` condition. The default action never allows
//! them.

use crate::document::{Action, Condition, Policy, Rule, VelocityScope, normalize_address};
use chrono::{DateTime, Datelike, Timelike, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use waas_core::chain::Chain;

/// What a request asks the pool to sign.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Operation {
    /// A transaction built by the platform (a transfer or a contract call).
    #[default]
    Transfer,
    /// A signature over caller-supplied content.
    Signature {
        kind: SignatureKind,
        /// For EIP-712 typed data: its domain and primary type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        typed_data: Option<TypedDataFacts>,
    },
}

/// The kinds of signature requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureKind {
    /// EIP-191 `personal_sign` (EVM) or a plain message (Ed25519).
    Message,
    /// EIP-712 typed data.
    TypedData,
    /// A raw 32-byte hash: nobody but the caller knows what it signs.
    Hash,
}

impl SignatureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureKind::Message => "message",
            SignatureKind::TypedData => "typed_data",
            SignatureKind::Hash => "hash",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "message" => Some(SignatureKind::Message),
            "typed_data" => Some(SignatureKind::TypedData),
            "hash" => Some(SignatureKind::Hash),
            _ => None,
        }
    }
}

/// The EIP-712 domain and primary type of a typed-data request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypedDataFacts {
    pub primary_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
    /// Lower-case 0x-hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifying_contract: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Value a request moves besides its main `amount` of `asset`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    pub asset: String,
    pub amount: Decimal,
}

/// The facts of one request (a transaction, or a signature over caller content).
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
    /// A transaction, or a signature (and which kind).
    #[serde(default)]
    pub operation: Operation,
    /// Other value the request moves (native value sent along with a token call, further
    /// tokens of a batch approval); priced and added to the USD value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_moves: Vec<Movement>,
    /// The most the network fee can be, in the native asset's units; added to the USD value.
    #[serde(default)]
    pub fee_native: Decimal,
    /// The asset fees are paid in (`ETH`, `SOL`).
    #[serde(default)]
    pub native_asset: String,
    /// Why the platform cannot value what this request moves (`None`: it can).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unvalued: Option<String>,
    /// The request grants an allowance without limit (ERC-20 `approve`, Permit, Permit2).
    #[serde(default)]
    pub unlimited_allowance: bool,
}

impl Transaction {
    /// Every asset whose price the USD value needs (the main one, further movements, and
    /// the native asset when a fee is counted).
    pub fn priced_assets(&self) -> BTreeSet<String> {
        let mut assets = BTreeSet::from([self.asset.to_ascii_uppercase()]);
        assets.extend(self.also_moves.iter().map(|m| m.asset.to_ascii_uppercase()));
        if !self.fee_native.is_zero() && !self.native_asset.is_empty() {
            assets.insert(self.native_asset.to_ascii_uppercase());
        }
        assets
    }

    /// Takes what decoded call data or a recognised approval moves as this request's
    /// asset, amount, destination, contract and method.
    pub fn apply_moves(&mut self, moves: crate::facts::Moves) {
        self.asset = moves.asset;
        self.amount = moves.amount;
        self.to = moves.destination;
        self.contract = moves.contract;
        self.selector = moves.selector;
        self.also_moves = moves.also_moves;
        self.unvalued = moves.unvalued;
        self.unlimited_allowance = moves.unlimited_allowance;
    }

    fn signature_kind(&self) -> Option<SignatureKind> {
        match &self.operation {
            Operation::Transfer => None,
            Operation::Signature { kind, .. } => Some(*kind),
        }
    }
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
    /// USD per unit of the other assets in [`Transaction::priced_assets`] (upper-case
    /// symbols), e.g. the native asset fees are paid in.
    pub other_prices: BTreeMap<String, Decimal>,
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
    /// The price used, and the value it gave (when the asset has a price). The value
    /// includes the worst-case fee and every other movement.
    pub price_usd: Option<Decimal>,
    pub value_usd: Option<Decimal>,
    /// The worst-case network fee counted, in native units and in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_native: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_usd: Option<Decimal>,
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

/// Why a request's USD value is not available.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoValue {
    /// The platform cannot value what the request moves: value conditions do not hold,
    /// and only a rule naming the request explicitly can allow it.
    Unvalued(String),
    /// A figure is missing or out of range: a rule that needs it denies.
    Cannot(String),
}

/// The request's value in USD: the main amount, every other movement and the worst-case
/// fee, each at its price, with checked arithmetic. Adding a movement or a fee never lowers
/// it.
pub fn value_usd(tx: &Transaction, context: &Context) -> Result<Decimal, NoValue> {
    if let Some(reason) = &tx.unvalued {
        return Err(NoValue::Unvalued(reason.clone()));
    }
    let main = tx.asset.to_ascii_uppercase();
    let native = tx.native_asset.to_ascii_uppercase();
    let price_of = |asset: &str| {
        if asset == main {
            context.price_usd
        } else {
            context.other_prices.get(asset).copied()
        }
    };
    let mut total = Decimal::ZERO;
    let mut add = |asset: &str, amount: Decimal, what: &str| -> Result<(), NoValue> {
        if amount.is_zero() {
            return Ok(());
        }
        let asset = asset.to_ascii_uppercase();
        let Some(price) = price_of(&asset) else {
            // A token nobody priced cannot be valued; the native asset must be.
            return Err(if asset != native && !native.is_empty() {
                NoValue::Unvalued(format!("no USD price for {asset}"))
            } else {
                NoValue::Cannot(format!("no USD price for {asset}{what}"))
            });
        };
        total = amount
            .checked_mul(price)
            .and_then(|value| total.checked_add(value))
            .ok_or_else(|| NoValue::Cannot("the USD value is out of range".into()))?;
        Ok(())
    };
    add(&tx.asset, tx.amount, "")?;
    for movement in &tx.also_moves {
        add(&movement.asset, movement.amount, "")?;
    }
    if !tx.native_asset.is_empty() {
        add(&tx.native_asset, tx.fee_native, " (network fees)")?;
    }
    Ok(total)
}

/// The worst-case fee in USD, when there is one and it has a price.
fn fee_usd(tx: &Transaction, context: &Context) -> Option<Decimal> {
    if tx.fee_native.is_zero() {
        return None;
    }
    let native = tx.native_asset.to_ascii_uppercase();
    let price = if native == tx.asset.to_ascii_uppercase() {
        context.price_usd
    } else {
        context.other_prices.get(&native).copied()
    }?;
    tx.fee_native.checked_mul(price)
}

fn check(
    condition: &Condition,
    tx: &Transaction,
    context: &Context,
    value_usd: Result<Decimal, NoValue>,
) -> Check {
    match condition {
        Condition::ValueUsd(range) => match value_usd {
            Ok(value) => Ok(range.violation(value).map(|v| format!("USD value {v}"))),
            Err(NoValue::Unvalued(why)) => Ok(Some(format!(
                "the request cannot be valued ({why}); value conditions do not hold"
            ))),
            Err(NoValue::Cannot(why)) => Err(why),
        },
        Condition::SignatureKind(kinds) => match tx.signature_kind() {
            Some(kind) => holds(kinds.contains(&kind), || {
                format!(
                    "a {} signature is not one of the rule's kinds",
                    kind.as_str()
                )
            }),
            None => Ok(Some("not a signature request".into())),
        },
        Condition::TypedData {
            primary_types,
            chain_ids,
            verifying_contracts,
            names,
        } => {
            let Operation::Signature {
                typed_data: Some(facts),
                ..
            } = &tx.operation
            else {
                return Ok(Some("not an EIP-712 typed-data request".into()));
            };
            if !primary_types.is_empty() && !primary_types.contains(&facts.primary_type) {
                return Ok(Some(format!(
                    "primary type {} is not in {}",
                    facts.primary_type,
                    listed(primary_types)
                )));
            }
            if !chain_ids.is_empty() && !facts.chain_id.is_some_and(|id| chain_ids.contains(&id)) {
                return Ok(Some(format!(
                    "domain chainId {} is not one of the rule's",
                    facts
                        .chain_id
                        .map_or_else(|| "(none)".to_string(), |id| id.to_string())
                )));
            }
            if !verifying_contracts.is_empty()
                && !facts
                    .verifying_contract
                    .as_ref()
                    .is_some_and(|c| verifying_contracts.contains(&normalize_address(c)))
            {
                return Ok(Some(format!(
                    "domain verifyingContract {} is not in {}",
                    facts.verifying_contract.as_deref().unwrap_or("(none)"),
                    listed(verifying_contracts)
                )));
            }
            holds(
                names.is_empty() || facts.name.as_ref().is_some_and(|n| names.contains(n)),
                || {
                    format!(
                        "domain name {} is not in {}",
                        facts.name.as_deref().unwrap_or("(none)"),
                        listed(names)
                    )
                },
            )
        }
        Condition::UnlimitedAllowance => holds(tx.unlimited_allowance, || {
            "the request grants no unlimited allowance".into()
        }),
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
                // What cannot be valued adds nothing here; it needs an explicit rule anyway.
                let value = match value_usd {
                    Ok(value) => value,
                    Err(NoValue::Unvalued(_)) => Decimal::ZERO,
                    Err(NoValue::Cannot(why)) => return Err(why),
                };
                let total = spent
                    .usd
                    .checked_add(value)
                    .ok_or_else(|| "spending total out of range".to_string())?;
                if total > *max {
                    return Ok(None);
                }
            }
            if let Some(max) = max_count
                && spent.count.saturating_add(1) > u64::from(*max)
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
    let value_usd = value_usd(tx, context);
    let fee_native = (!tx.fee_native.is_zero()).then_some(tx.fee_native);
    let fee_usd = fee_usd(tx, context);
    let mut explanation = Vec::new();
    for (index, rule) in policy.rules.iter().enumerate() {
        match rule_matches(rule, tx, context, value_usd.clone()) {
            Ok(None) => {
                let outcome = outcome_of(&rule.action);
                if outcome.is_allow()
                    && let Some(why_not) = explicit_allow_violation(Some(rule), tx, &value_usd)
                {
                    explanation.push(format!(
                        "rule {} \"{}\" did not match: {why_not}",
                        index + 1,
                        rule.name
                    ));
                    continue;
                }
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
                    fee_native,
                    fee_usd,
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
                    fee_native,
                    fee_usd,
                    explanation,
                };
            }
        }
    }
    let mut outcome = outcome_of(&policy.default_action);
    if outcome.is_allow()
        && let Some(why_not) = explicit_allow_violation(None, tx, &value_usd)
    {
        outcome = Outcome::Deny { reason: why_not };
    }
    explanation.push(format!(
        "no rule matched; default action: {}",
        describe(&outcome)
    ));
    Decision {
        outcome,
        matched_rule: None,
        price_usd: context.price_usd,
        value_usd: value_usd.ok(),
        fee_native,
        fee_usd,
        explanation,
    }
}

/// Why `rule` (the default action when `None`) may not allow `tx` although its conditions
/// hold: signatures, unvalued calls and unlimited allowances are allowed only by rules that
/// name them. `None` when it may.
pub fn explicit_allow_violation(
    rule: Option<&Rule>,
    tx: &Transaction,
    value_usd: &Result<Decimal, NoValue>,
) -> Option<String> {
    let has = |wanted: &dyn Fn(&Condition) -> bool| {
        rule.is_some_and(|rule| rule.conditions.iter().any(wanted))
    };
    match tx.signature_kind() {
        Some(SignatureKind::Hash) => {
            if !has(
                &|c| matches!(c, Condition::SignatureKind(kinds) if kinds.contains(&SignatureKind::Hash)),
            ) {
                return Some(
                    "a raw hash is signed only under a rule whose signature_kind condition names hash"
                        .into(),
                );
            }
        }
        Some(kind) => {
            if !has(&|c| matches!(c, Condition::SignatureKind(_) | Condition::TypedData { .. })) {
                return Some(format!(
                    "a {} signature is allowed only by a rule with a signature_kind or typed_data condition",
                    kind.as_str()
                ));
            }
        }
        None => {
            if let Err(NoValue::Unvalued(why)) = value_usd
                && !has(&|c| {
                    matches!(c, Condition::Contract(_) | Condition::EvmMethod(_))
                        || (tx.unlimited_allowance && matches!(c, Condition::UnlimitedAllowance))
                })
            {
                return Some(format!(
                    "the request cannot be valued ({why}); only a rule naming its contract or method can allow it"
                ));
            }
        }
    }
    if tx.unlimited_allowance && !has(&|c| matches!(c, Condition::UnlimitedAllowance)) {
        return Some(
            "an unlimited allowance is allowed only by a rule with an unlimited_allowance condition"
                .into(),
        );
    }
    None
}

/// `Ok(None)`: every condition holds. `Ok(Some)`: the first that does not, explained.
fn rule_matches(
    rule: &Rule,
    tx: &Transaction,
    context: &Context,
    value_usd: Result<Decimal, NoValue>,
) -> Check {
    for condition in &rule.conditions {
        if let Some(why_not) = check(condition, tx, context, value_usd.clone())? {
            return Ok(Some(why_not));
        }
    }
    Ok(None)
}
