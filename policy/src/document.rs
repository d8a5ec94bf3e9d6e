//! Policy documents: the JSON tenants write (`PolicyDocument`), and its validated, compiled
//! form (`Policy`) that the engine evaluates.
//!
//! A document is an ordered list of rules and a default action. Each rule has conditions
//! (all must hold) and an action: `deny` with a reason, or `allow` with a signing quorum
//! (distinct signer nodes, `t ≤ q ≤ n`) and an approval quorum (distinct human approvers,
//! the requester excluded). The first rule whose conditions all hold decides.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use waas_core::chain::Chain;
use waas_core::error::FieldError;

fn is_zero(value: &u16) -> bool {
    *value == 0
}

fn is_zero_i16(value: &i16) -> bool {
    *value == 0
}

/// Upper bounds that keep evaluation cheap and documents readable.
pub const MAX_RULES: usize = 500;
pub const MAX_CONDITIONS: usize = 32;
pub const MAX_LIST_ENTRIES: usize = 10_000;
pub const MAX_VELOCITY_WINDOW_SECS: u64 = 90 * 24 * 3600;

/// A policy document as written (JSON).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    /// What happens when no rule matches. New tenants start with `deny`.
    pub default_action: ActionDocument,
    #[serde(default)]
    pub rules: Vec<RuleDocument>,
    /// Named address lists, referenced by `in_lists` / `not_in_lists`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lists: BTreeMap<String, Vec<String>>,
}

impl PolicyDocument {
    /// The document every new tenant starts with: deny everything.
    pub fn deny_all() -> Self {
        Self {
            default_action: ActionDocument::Deny {
                reason: "no policy rule allows this transaction".into(),
            },
            rules: Vec::new(),
            lists: BTreeMap::new(),
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDocument {
    pub name: String,
    /// All must hold for the rule to match; an empty list always matches.
    #[serde(default)]
    pub conditions: Vec<ConditionDocument>,
    pub action: ActionDocument,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionDocument {
    Allow {
        /// Distinct signer nodes that must take part (`t ≤ q ≤ n`).
        signing_quorum: u16,
        /// Distinct human approvers needed, the requester excluded.
        #[serde(default, skip_serializing_if = "is_zero")]
        approval_quorum: u16,
        /// Only members of this group count as approvers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approver_group: Option<String>,
    },
    Deny {
        reason: String,
    },
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConditionDocument {
    /// Transaction value in USD (amount × the oracle's price).
    ValueUsd {
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "10000"))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gt: Option<serde_json::Value>,
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "10000"))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gte: Option<serde_json::Value>,
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "10000"))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lt: Option<serde_json::Value>,
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "10000"))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lte: Option<serde_json::Value>,
    },
    /// Amount in the asset's own units (optionally only for one asset).
    ValueNative {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        asset: Option<String>,
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "10000"))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gt: Option<serde_json::Value>,
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "10000"))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gte: Option<serde_json::Value>,
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "10000"))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lt: Option<serde_json::Value>,
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "10000"))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lte: Option<serde_json::Value>,
    },
    /// The destination address is (not) in the given addresses or named lists.
    Destination {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        r#in: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        in_lists: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        not_in: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        not_in_lists: Vec<String>,
    },
    Network {
        r#in: Vec<String>,
    },
    Chain {
        r#in: Vec<String>,
    },
    Asset {
        r#in: Vec<String>,
    },
    /// EVM calls whose 4-byte selector is one of these (`0xa9059cbb` = ERC-20 transfer).
    EvmMethod {
        selectors: Vec<String>,
    },
    /// EVM calls to one of these contracts (or lists).
    Contract {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        r#in: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        in_lists: Vec<String>,
    },
    /// Inside a weekly window: these days, from `from` to `to` (`HH:MM`, `to` exclusive;
    /// `from > to` wraps past midnight), at a fixed UTC offset.
    TimeWindow {
        days: Vec<String>,
        from: String,
        to: String,
        #[serde(default, skip_serializing_if = "is_zero_i16")]
        utc_offset_minutes: i16,
    },
    /// Holds when this transaction would take the wallet's (or tenant's) total over the
    /// rolling window past `max_usd` or its count past `max_count`. Use it in a deny rule.
    Velocity {
        scope: String,
        window_secs: u64,
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "10000"))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_usd: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_count: Option<u32>,
    },
    /// The request was made with one of these API keys or by one of these users.
    Initiator {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        api_keys: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        users: Vec<String>,
    },
    /// A signature request of one of these kinds: `message`, `typed_data`, `hash`. Signature
    /// requests are allowed only by rules with this or a `typed_data` condition; a raw
    /// `hash` only by a rule whose `signature_kind` names it.
    SignatureKind {
        #[cfg_attr(feature = "openapi", schema(example = json!(["message", "typed_data"])))]
        r#in: Vec<String>,
    },
    /// EIP-712 typed data whose primary type and domain match (each list that is given
    /// must contain the request's value).
    TypedData {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        primary_types: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        chain_ids: Vec<u64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        verifying_contracts: Vec<String>,
        /// Domain names (`name` in the EIP-712 domain), compared exactly.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        names: Vec<String>,
    },
    /// The request grants an unlimited token allowance (ERC-20 `approve`/`increaseAllowance`,
    /// ERC-2612 `Permit`, Permit2). Such requests are allowed only by rules with this
    /// condition.
    UnlimitedAllowance {},
}

/// What a compiled policy needs to know about the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolLimits {
    /// The keys' threshold `t`.
    pub threshold: u16,
    /// Signer nodes `n`.
    pub parties: u16,
}

/// A validated, compiled policy: what the engine evaluates.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub default_action: Action,
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub name: String,
    pub conditions: Vec<Condition>,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    Allow {
        signing_quorum: u16,
        approval_quorum: u16,
        approver_group: Option<String>,
    },
    Deny {
        reason: String,
    },
}

/// Bounds on a decimal.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Range {
    pub gt: Option<Decimal>,
    pub gte: Option<Decimal>,
    pub lt: Option<Decimal>,
    pub lte: Option<Decimal>,
}

impl Range {
    /// The first bound `value` violates, described (`None` when it is inside).
    pub fn violation(&self, value: Decimal) -> Option<String> {
        if let Some(bound) = self.gt
            && value <= bound
        {
            return Some(format!("{value} is not > {bound}"));
        }
        if let Some(bound) = self.gte
            && value < bound
        {
            return Some(format!("{value} is not ≥ {bound}"));
        }
        if let Some(bound) = self.lt
            && value >= bound
        {
            return Some(format!("{value} is not < {bound}"));
        }
        if let Some(bound) = self.lte
            && value > bound
        {
            return Some(format!("{value} is not ≤ {bound}"));
        }
        None
    }
}

/// Whose spending a velocity limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VelocityScope {
    Wallet,
    Tenant,
}

impl VelocityScope {
    pub fn as_str(self) -> &'static str {
        match self {
            VelocityScope::Wallet => "wallet",
            VelocityScope::Tenant => "tenant",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    ValueUsd(Range),
    ValueNative {
        asset: Option<String>,
        range: Range,
    },
    /// Address sets are normalized (EVM hex lower-cased).
    Destination {
        allowed: Option<BTreeSet<String>>,
        denied: BTreeSet<String>,
    },
    Network(BTreeSet<String>),
    Chain(BTreeSet<Chain>),
    Asset(BTreeSet<String>),
    EvmMethod(BTreeSet<[u8; 4]>),
    Contract(BTreeSet<String>),
    TimeWindow {
        /// Days counted from Monday = 0.
        days: BTreeSet<u8>,
        from_minute: u16,
        to_minute: u16,
        utc_offset_minutes: i16,
    },
    Velocity {
        scope: VelocityScope,
        window_secs: u64,
        max_usd: Option<Decimal>,
        max_count: Option<u32>,
    },
    Initiator {
        api_keys: BTreeSet<String>,
        users: BTreeSet<String>,
    },
    SignatureKind(BTreeSet<crate::engine::SignatureKind>),
    /// Empty sets do not constrain; addresses are normalized.
    TypedData {
        primary_types: BTreeSet<String>,
        chain_ids: BTreeSet<u64>,
        verifying_contracts: BTreeSet<String>,
        names: BTreeSet<String>,
    },
    UnlimitedAllowance,
}

/// Normalizes an address for comparison: EVM hex (`0x…`) is case-insensitive; others
/// (Solana base58) are compared exactly.
pub fn normalize_address(address: &str) -> String {
    let trimmed = address.trim();
    if trimmed.starts_with("0x") || trimmed.starts_with("0X") {
        trimmed.to_ascii_lowercase()
    } else {
        trimmed.to_string()
    }
}

/// Parses a policy document from JSON, naming the exact place of a structural error.
pub fn parse(json: &[u8]) -> Result<PolicyDocument, Vec<FieldError>> {
    let deserializer = &mut serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let pointer = pointer_of(error.path());
        let mut detail = error.inner().to_string();
        // The pointer says where; drop serde's line and column.
        if let Some(at) = detail.rfind(" at line ") {
            detail.truncate(at);
        }
        vec![FieldError::new(pointer, detail)]
    })
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Unknown => {}
        }
    }
    pointer
}

/// Collects validation errors while compiling.
struct Check {
    errors: Vec<FieldError>,
}

impl Check {
    fn error(&mut self, pointer: impl Into<String>, detail: impl Into<String>) {
        self.errors.push(FieldError::new(pointer, detail));
    }

    fn decimal(&mut self, pointer: &str, value: &Option<serde_json::Value>) -> Option<Decimal> {
        let value = value.as_ref()?;
        let Some(text) = value.as_str() else {
            self.error(
                pointer,
                "must be a decimal string such as \"10000\" (amounts are never JSON numbers)",
            );
            return None;
        };
        match Decimal::from_str_exact(text.trim()) {
            Ok(value) if value.is_sign_negative() => {
                self.error(pointer, "must not be negative");
                None
            }
            Ok(value) => Some(value),
            Err(_) => {
                self.error(
                    pointer,
                    "must be a decimal string such as \"10000\" or \"0.5\"",
                );
                None
            }
        }
    }

    fn range(
        &mut self,
        at: &str,
        gt: &Option<serde_json::Value>,
        gte: &Option<serde_json::Value>,
        lt: &Option<serde_json::Value>,
        lte: &Option<serde_json::Value>,
    ) -> Range {
        let range = Range {
            gt: self.decimal(&format!("{at}/gt"), gt),
            gte: self.decimal(&format!("{at}/gte"), gte),
            lt: self.decimal(&format!("{at}/lt"), lt),
            lte: self.decimal(&format!("{at}/lte"), lte),
        };
        if [gt, gte, lt, lte].iter().all(|b| b.is_none()) {
            self.error(at, "needs at least one of gt, gte, lt, lte");
        }
        if gt.is_some() && gte.is_some() {
            self.error(at, "use gt or gte, not both");
        }
        if lt.is_some() && lte.is_some() {
            self.error(at, "use lt or lte, not both");
        }
        range
    }

    fn non_empty<T>(&mut self, pointer: &str, items: &[T]) {
        if items.is_empty() {
            self.error(pointer, "must not be empty");
        }
    }

    /// Addresses plus the members of named lists, normalized.
    fn addresses(
        &mut self,
        at: &str,
        field: &str,
        addresses: &[String],
        list_field: &str,
        lists: &[String],
        known: &BTreeMap<String, Vec<String>>,
    ) -> BTreeSet<String> {
        let mut set: BTreeSet<String> = addresses.iter().map(|a| normalize_address(a)).collect();
        for (i, address) in addresses.iter().enumerate() {
            if address.trim().is_empty() {
                self.error(format!("{at}/{field}/{i}"), "must not be empty");
            }
        }
        for (i, name) in lists.iter().enumerate() {
            match known.get(name) {
                Some(members) => set.extend(members.iter().map(|a| normalize_address(a))),
                None => self.error(
                    format!("{at}/{list_field}/{i}"),
                    format!("no list named {name:?} in /lists"),
                ),
            }
        }
        set
    }
}

fn parse_minute(text: &str) -> Option<u16> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (u16, u16) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
}

fn parse_day(text: &str) -> Option<chrono::Weekday> {
    use chrono::Weekday::*;
    Some(match text.to_ascii_lowercase().as_str() {
        "mon" => Mon,
        "tue" => Tue,
        "wed" => Wed,
        "thu" => Thu,
        "fri" => Fri,
        "sat" => Sat,
        "sun" => Sun,
        _ => return None,
    })
}

fn parse_selector(text: &str) -> Option<[u8; 4]> {
    let hex = text.strip_prefix("0x")?;
    if hex.len() != 8 {
        return None;
    }
    let mut out = [0u8; 4];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

impl PolicyDocument {
    /// Validates the document against the pool and compiles it; every problem is reported
    /// with its JSON pointer.
    pub fn compile(&self, limits: PoolLimits) -> Result<Policy, Vec<FieldError>> {
        let mut check = Check { errors: Vec::new() };
        if self.rules.len() > MAX_RULES {
            check.error("/rules", format!("at most {MAX_RULES} rules"));
        }
        for (name, members) in &self.lists {
            let at = format!("/lists/{name}");
            if name.trim().is_empty() || name.len() > 64 {
                check.error(&at, "list names are 1 to 64 characters");
            }
            if members.len() > MAX_LIST_ENTRIES {
                check.error(&at, format!("at most {MAX_LIST_ENTRIES} entries"));
            }
            for (i, member) in members.iter().enumerate() {
                if member.trim().is_empty() {
                    check.error(format!("{at}/{i}"), "must not be empty");
                }
            }
        }
        let default_action =
            compile_action(&mut check, "/default_action", &self.default_action, limits);
        let mut names = BTreeSet::new();
        let mut rules = Vec::with_capacity(self.rules.len());
        for (index, rule) in self.rules.iter().enumerate() {
            let at = format!("/rules/{index}");
            let name = rule.name.trim();
            if name.is_empty() || name.len() > 100 {
                check.error(format!("{at}/name"), "rule names are 1 to 100 characters");
            } else if !names.insert(name.to_string()) {
                check.error(
                    format!("{at}/name"),
                    format!("another rule is named {name:?}"),
                );
            }
            if rule.conditions.len() > MAX_CONDITIONS {
                check.error(
                    format!("{at}/conditions"),
                    format!("at most {MAX_CONDITIONS} conditions"),
                );
            }
            let conditions = rule
                .conditions
                .iter()
                .enumerate()
                .filter_map(|(i, condition)| {
                    compile_condition(
                        &mut check,
                        &format!("{at}/conditions/{i}"),
                        condition,
                        &self.lists,
                    )
                })
                .collect();
            let action = compile_action(&mut check, &format!("{at}/action"), &rule.action, limits);
            rules.push(Rule {
                name: name.to_string(),
                conditions,
                action,
            });
        }
        if check.errors.is_empty() {
            Ok(Policy {
                default_action,
                rules,
            })
        } else {
            Err(check.errors)
        }
    }
}

fn compile_action(
    check: &mut Check,
    at: &str,
    action: &ActionDocument,
    limits: PoolLimits,
) -> Action {
    match action {
        ActionDocument::Allow {
            signing_quorum,
            approval_quorum,
            approver_group,
        } => {
            if *signing_quorum < limits.threshold || *signing_quorum > limits.parties {
                check.error(
                    format!("{at}/signing_quorum"),
                    format!(
                        "must be between the keys' threshold {} and the pool's {} nodes",
                        limits.threshold, limits.parties
                    ),
                );
            }
            if *approval_quorum > 20 {
                check.error(format!("{at}/approval_quorum"), "at most 20 approvers");
            }
            if let Some(group) = approver_group
                && group.trim().is_empty()
            {
                check.error(format!("{at}/approver_group"), "must not be empty");
            }
            Action::Allow {
                signing_quorum: *signing_quorum,
                approval_quorum: *approval_quorum,
                approver_group: approver_group.clone(),
            }
        }
        ActionDocument::Deny { reason } => {
            if reason.trim().is_empty() || reason.len() > 500 {
                check.error(format!("{at}/reason"), "reasons are 1 to 500 characters");
            }
            Action::Deny {
                reason: reason.clone(),
            }
        }
    }
}

fn compile_condition(
    check: &mut Check,
    at: &str,
    condition: &ConditionDocument,
    lists: &BTreeMap<String, Vec<String>>,
) -> Option<Condition> {
    Some(match condition {
        ConditionDocument::ValueUsd { gt, gte, lt, lte } => {
            Condition::ValueUsd(check.range(at, gt, gte, lt, lte))
        }
        ConditionDocument::ValueNative {
            asset,
            gt,
            gte,
            lt,
            lte,
        } => Condition::ValueNative {
            asset: asset.as_ref().map(|a| a.trim().to_ascii_uppercase()),
            range: check.range(at, gt, gte, lt, lte),
        },
        ConditionDocument::Destination {
            r#in,
            in_lists,
            not_in,
            not_in_lists,
        } => {
            if r#in.is_empty()
                && in_lists.is_empty()
                && not_in.is_empty()
                && not_in_lists.is_empty()
            {
                check.error(at, "needs in, in_lists, not_in or not_in_lists");
            }
            let allowed = (!r#in.is_empty() || !in_lists.is_empty())
                .then(|| check.addresses(at, "in", r#in, "in_lists", in_lists, lists));
            let denied = check.addresses(at, "not_in", not_in, "not_in_lists", not_in_lists, lists);
            Condition::Destination { allowed, denied }
        }
        ConditionDocument::Network { r#in } => {
            check.non_empty(&format!("{at}/in"), r#in);
            Condition::Network(r#in.iter().map(|n| n.trim().to_ascii_lowercase()).collect())
        }
        ConditionDocument::Chain { r#in } => {
            check.non_empty(&format!("{at}/in"), r#in);
            let mut chains = BTreeSet::new();
            for (i, name) in r#in.iter().enumerate() {
                match Chain::parse(name.trim()) {
                    Some(chain) => {
                        chains.insert(chain);
                    }
                    None => check.error(format!("{at}/in/{i}"), "unknown chain (evm, solana)"),
                }
            }
            Condition::Chain(chains)
        }
        ConditionDocument::Asset { r#in } => {
            check.non_empty(&format!("{at}/in"), r#in);
            Condition::Asset(r#in.iter().map(|a| a.trim().to_ascii_uppercase()).collect())
        }
        ConditionDocument::EvmMethod { selectors } => {
            check.non_empty(&format!("{at}/selectors"), selectors);
            let mut set = BTreeSet::new();
            for (i, selector) in selectors.iter().enumerate() {
                match parse_selector(&selector.to_ascii_lowercase()) {
                    Some(bytes) => {
                        set.insert(bytes);
                    }
                    None => check.error(
                        format!("{at}/selectors/{i}"),
                        "must be 0x and 8 hex digits, e.g. 0xa9059cbb",
                    ),
                }
            }
            Condition::EvmMethod(set)
        }
        ConditionDocument::Contract { r#in, in_lists } => {
            if r#in.is_empty() && in_lists.is_empty() {
                check.error(at, "needs in or in_lists");
            }
            Condition::Contract(check.addresses(at, "in", r#in, "in_lists", in_lists, lists))
        }
        ConditionDocument::TimeWindow {
            days,
            from,
            to,
            utc_offset_minutes,
        } => {
            check.non_empty(&format!("{at}/days"), days);
            let mut set = BTreeSet::new();
            for (i, day) in days.iter().enumerate() {
                match parse_day(day) {
                    Some(day) => {
                        set.insert(u8::try_from(day.num_days_from_monday()).unwrap_or(0));
                    }
                    None => check.error(
                        format!("{at}/days/{i}"),
                        "one of mon, tue, wed, thu, fri, sat, sun",
                    ),
                }
            }
            let from_minute = parse_minute(from);
            let to_minute = parse_minute(to);
            if from_minute.is_none() {
                check.error(format!("{at}/from"), "must be HH:MM (00:00 to 23:59)");
            }
            if to_minute.is_none() {
                check.error(format!("{at}/to"), "must be HH:MM (00:00 to 23:59)");
            }
            if !(-14 * 60..=14 * 60).contains(utc_offset_minutes) {
                check.error(format!("{at}/utc_offset_minutes"), "must be within ±840");
            }
            if from_minute.is_some() && from_minute == to_minute {
                check.error(format!("{at}/to"), "must differ from from");
            }
            Condition::TimeWindow {
                days: set,
                from_minute: from_minute.unwrap_or(0),
                to_minute: to_minute.unwrap_or(0),
                utc_offset_minutes: *utc_offset_minutes,
            }
        }
        ConditionDocument::Velocity {
            scope,
            window_secs,
            max_usd,
            max_count,
        } => {
            let scope = match scope.as_str() {
                "wallet" => VelocityScope::Wallet,
                "tenant" => VelocityScope::Tenant,
                _ => {
                    check.error(format!("{at}/scope"), "wallet or tenant");
                    VelocityScope::Wallet
                }
            };
            if *window_secs == 0 || *window_secs > MAX_VELOCITY_WINDOW_SECS {
                check.error(
                    format!("{at}/window_secs"),
                    format!("between 1 and {MAX_VELOCITY_WINDOW_SECS} (90 days)"),
                );
            }
            if max_usd.is_none() && max_count.is_none() {
                check.error(at, "needs max_usd or max_count");
            }
            Condition::Velocity {
                scope,
                window_secs: *window_secs,
                max_usd: check.decimal(&format!("{at}/max_usd"), max_usd),
                max_count: *max_count,
            }
        }
        ConditionDocument::SignatureKind { r#in } => {
            check.non_empty(&format!("{at}/in"), r#in);
            let mut kinds = BTreeSet::new();
            for (i, kind) in r#in.iter().enumerate() {
                match crate::engine::SignatureKind::parse(kind.trim()) {
                    Some(kind) => {
                        kinds.insert(kind);
                    }
                    None => check.error(format!("{at}/in/{i}"), "one of message, typed_data, hash"),
                }
            }
            Condition::SignatureKind(kinds)
        }
        ConditionDocument::TypedData {
            primary_types,
            chain_ids,
            verifying_contracts,
            names,
        } => {
            if primary_types.is_empty()
                && chain_ids.is_empty()
                && verifying_contracts.is_empty()
                && names.is_empty()
            {
                check.error(
                    at,
                    "needs primary_types, chain_ids, verifying_contracts or names",
                );
            }
            for (field, values) in [("primary_types", primary_types), ("names", names)] {
                for (i, value) in values.iter().enumerate() {
                    if value.trim().is_empty() || value.len() > 256 {
                        check.error(format!("{at}/{field}/{i}"), "1 to 256 characters");
                    }
                }
            }
            for (i, contract) in verifying_contracts.iter().enumerate() {
                let hex = contract.trim().strip_prefix("0x").unwrap_or("");
                if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    check.error(
                        format!("{at}/verifying_contracts/{i}"),
                        "must be a 0x-prefixed 20-byte hex address",
                    );
                }
            }
            Condition::TypedData {
                primary_types: primary_types.iter().map(|t| t.trim().to_string()).collect(),
                chain_ids: chain_ids.iter().copied().collect(),
                verifying_contracts: verifying_contracts
                    .iter()
                    .map(|c| normalize_address(c))
                    .collect(),
                names: names.iter().cloned().collect(),
            }
        }
        ConditionDocument::UnlimitedAllowance {} => Condition::UnlimitedAllowance,
        ConditionDocument::Initiator { api_keys, users } => {
            if api_keys.is_empty() && users.is_empty() {
                check.error(at, "needs api_keys or users");
            }
            Condition::Initiator {
                api_keys: api_keys.iter().cloned().collect(),
                users: users.iter().cloned().collect(),
            }
        }
    })
}
