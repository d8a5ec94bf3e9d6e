//! Plans: what a tenant may use. A plan names a rate per operation class, a per-API-key
//! rate, monthly quotas, the key-protection tier of its wallets and the presignature depth per
//! key. Three plans are built in (`free`, `standard`, `enterprise`); operators may redefine
//! them or add more in the configuration (`[plans.<name>]`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The plan a new tenant gets when the operator names none.
pub const DEFAULT_PLAN: &str = "standard";

/// The operation classes a plan limits separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationClass {
    /// Distributed key generation: creating wallets.
    Keygen,
    /// Signature and transaction requests (each may end in a threshold signature).
    Sign,
    /// Every other creating or changing request (policies, keys, approvals...).
    Write,
    /// Reads.
    Read,
}

impl OperationClass {
    pub const ALL: [OperationClass; 4] = [
        OperationClass::Keygen,
        OperationClass::Sign,
        OperationClass::Write,
        OperationClass::Read,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperationClass::Keygen => "keygen",
            OperationClass::Sign => "sign",
            OperationClass::Write => "write",
            OperationClass::Read => "read",
        }
    }
}

/// A rate: `requests` per `per_secs` seconds on average, with bursts of up to `burst`
/// requests (GCRA: one request every `per_secs / requests` seconds, `burst` at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests: u32,
    #[serde(default = "one")]
    pub per_secs: u32,
    /// Requests allowed at once; defaults to `requests`.
    #[serde(default)]
    pub burst: Option<u32>,
}

fn one() -> u32 {
    1
}

impl RateLimit {
    pub const fn per_second(requests: u32, burst: u32) -> Self {
        Self {
            requests,
            per_secs: 1,
            burst: Some(burst),
        }
    }

    /// Requests allowed at once.
    pub fn burst(&self) -> u32 {
        self.burst.unwrap_or(self.requests).max(1)
    }

    /// The time between two requests at the sustained rate.
    pub fn emission_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(f64::from(self.per_secs) / f64::from(self.requests))
    }

    /// This rate divided among `nodes` processes (the fallback when the shared limiter is
    /// unreachable): never below one request per period and a burst of one.
    pub fn divided(&self, nodes: u32) -> Self {
        let nodes = nodes.max(1);
        Self {
            requests: (self.requests / nodes).max(1),
            per_secs: self.per_secs,
            burst: Some((self.burst() / nodes).max(1)),
        }
    }

    /// Seconds for an empty allowance to refill to the full burst (at least 1).
    pub fn window_secs(&self) -> u64 {
        let requests = u64::from(self.requests.max(1));
        (u64::from(self.burst()) * u64::from(self.per_secs))
            .div_ceil(requests)
            .max(1)
    }

    /// The `RateLimit-Policy` item (IETF httpapi ratelimit headers draft): a quota of `q`
    /// requests (the burst) refilled over a window of `w` seconds.
    pub fn policy_header_item(&self, name: &str) -> String {
        format!("\"{name}\";q={};w={}", self.burst(), self.window_secs())
    }

    fn check(&self, pointer: &str, errors: &mut Vec<String>) {
        if self.requests == 0 {
            errors.push(format!("{pointer}.requests must be at least 1"));
        }
        if self.per_secs == 0 {
            errors.push(format!("{pointer}.per_secs must be at least 1"));
        }
        if self.burst == Some(0) {
            errors.push(format!("{pointer}.burst must be at least 1"));
        }
    }
}

/// A rate per operation class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassRates {
    pub keygen: RateLimit,
    pub sign: RateLimit,
    pub write: RateLimit,
    pub read: RateLimit,
}

impl ClassRates {
    pub fn of(&self, class: OperationClass) -> RateLimit {
        match class {
            OperationClass::Keygen => self.keygen,
            OperationClass::Sign => self.sign,
            OperationClass::Write => self.write,
            OperationClass::Read => self.read,
        }
    }
}

/// Monthly quotas (calendar month, UTC); `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Wallets created per month.
    #[serde(default)]
    pub wallets: Option<u64>,
    /// Signature requests per month.
    #[serde(default)]
    pub signatures: Option<u64>,
    /// Transaction requests per month.
    #[serde(default)]
    pub transactions: Option<u64>,
}

/// What a plan allows. Its name is the key it is configured under.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Rates per operation class, for the whole tenant.
    pub rates: ClassRates,
    /// The rate of any one API key (all classes together).
    pub api_key_rate: RateLimit,
    #[serde(default)]
    pub quotas: Quotas,
    /// The key-protection tier of the tenant's new wallets (`local`, `aws-kms`, `pkcs11`);
    /// `None`: the platform default.
    #[serde(default)]
    pub key_protection: Option<String>,
    /// ECDSA presignatures kept ready per key of the tenant.
    pub presignature_depth: u32,
}

impl Plan {
    /// Problems with this plan's numbers, each naming the field.
    pub fn problems(&self, name: &str) -> Vec<String> {
        let mut errors = Vec::new();
        for class in OperationClass::ALL {
            self.rates.of(class).check(
                &format!("plans.{name}.rates.{}", class.as_str()),
                &mut errors,
            );
        }
        self.api_key_rate
            .check(&format!("plans.{name}.api_key_rate"), &mut errors);
        if self.presignature_depth > 64 {
            errors.push(format!(
                "plans.{name}.presignature_depth must be at most 64"
            ));
        }
        errors
    }
}

/// The built-in plans. Operators may redefine any of them by name.
pub fn builtin_plans() -> BTreeMap<String, Plan> {
    let mut plans = BTreeMap::new();
    plans.insert(
        "free".to_string(),
        Plan {
            rates: ClassRates {
                keygen: RateLimit {
                    requests: 1,
                    per_secs: 10,
                    burst: Some(2),
                },
                sign: RateLimit::per_second(2, 5),
                write: RateLimit::per_second(5, 10),
                read: RateLimit::per_second(20, 40),
            },
            api_key_rate: RateLimit::per_second(20, 40),
            quotas: Quotas {
                wallets: Some(25),
                signatures: Some(1_000),
                transactions: Some(500),
            },
            key_protection: None,
            presignature_depth: 1,
        },
    );
    plans.insert(
        "standard".to_string(),
        Plan {
            rates: ClassRates {
                keygen: RateLimit::per_second(5, 20),
                sign: RateLimit::per_second(50, 100),
                write: RateLimit::per_second(100, 200),
                read: RateLimit::per_second(500, 1_000),
            },
            api_key_rate: RateLimit::per_second(500, 1_000),
            quotas: Quotas {
                wallets: Some(10_000),
                signatures: Some(1_000_000),
                transactions: Some(1_000_000),
            },
            key_protection: None,
            presignature_depth: 2,
        },
    );
    plans.insert(
        "enterprise".to_string(),
        Plan {
            rates: ClassRates {
                keygen: RateLimit::per_second(20, 50),
                sign: RateLimit::per_second(200, 400),
                write: RateLimit::per_second(500, 1_000),
                read: RateLimit::per_second(2_000, 4_000),
            },
            api_key_rate: RateLimit::per_second(2_000, 4_000),
            quotas: Quotas::default(),
            key_protection: None,
            presignature_depth: 4,
        },
    );
    plans
}

/// The built-in plans with the configured ones laid over them (a configured plan replaces a
/// built-in one of the same name). Names are 1 to 64 of `a-z 0-9 - _`.
pub fn plan_catalog(configured: &BTreeMap<String, Plan>) -> Result<BTreeMap<String, Plan>, String> {
    let mut plans = builtin_plans();
    let mut errors = Vec::new();
    for (name, plan) in configured {
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid_name {
            errors.push(format!(
                "plan name {name:?}: 1 to 64 characters of a-z, 0-9, - and _"
            ));
        }
        errors.extend(plan.problems(name));
        plans.insert(name.clone(), plan.clone());
    }
    if errors.is_empty() {
        Ok(plans)
    } else {
        Err(errors.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_plans_are_valid_and_ordered_by_generosity() {
        let plans = plan_catalog(&BTreeMap::new()).unwrap_or_default();
        assert_eq!(plans.len(), 3);
        let rate = |name: &str| plans[name].rates.sign.requests;
        assert!(rate("free") < rate("standard") && rate("standard") < rate("enterprise"));
        assert!(plans.contains_key(DEFAULT_PLAN));
    }

    #[test]
    fn configured_plans_replace_and_are_checked() {
        let mut configured = builtin_plans();
        if let Some(free) = configured.get_mut("free") {
            free.rates.sign.requests = 0;
        }
        let error = plan_catalog(&configured).err().unwrap_or_default();
        assert!(error.contains("plans.free.rates.sign.requests"), "{error}");
        let mut bad_name = BTreeMap::new();
        bad_name.insert("Gold Plan".to_string(), builtin_plans()["free"].clone());
        assert!(plan_catalog(&bad_name).is_err());
    }

    #[test]
    fn divided_rates_never_reach_zero() {
        let rate = RateLimit::per_second(5, 10);
        assert_eq!(rate.divided(2).requests, 2);
        assert_eq!(rate.divided(2).burst(), 5);
        assert_eq!(rate.divided(100).requests, 1);
        assert_eq!(rate.divided(100).burst(), 1);
        assert_eq!(rate.divided(0), rate.divided(1));
    }

    #[test]
    fn emission_interval_and_header() {
        let rate = RateLimit {
            requests: 1,
            per_secs: 10,
            burst: Some(2),
        };
        assert_eq!(rate.emission_interval(), std::time::Duration::from_secs(10));
        assert_eq!(rate.policy_header_item("keygen"), "\"keygen\";q=2;w=20");
        assert_eq!(RateLimit::per_second(50, 100).window_secs(), 2);
    }
}
