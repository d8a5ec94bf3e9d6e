//! waas-policy: policy documents (parse, validate, compile) and their pure evaluation.
//!
//! No I/O, no clock, no randomness: the same policy, transaction and context always give the
//! same decision. Callers look up prices and spending and pass them in.
#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing)]

pub mod document;
pub mod engine;
pub mod facts;

pub use document::{
    Action, ActionDocument, Condition, ConditionDocument, Policy, PolicyDocument, PoolLimits,
    Range, Rule, RuleDocument, VelocityScope, parse,
};
pub use engine::{
    Context, Decision, MatchedRule, Movement, NoValue, Operation, Outcome, SignatureKind, Spent,
    Transaction, TypedDataFacts, evaluate, explicit_allow_violation, value_usd,
};
pub use rust_decimal::Decimal;
