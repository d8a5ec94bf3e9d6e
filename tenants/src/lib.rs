//! waas-tenants: tenants, API keys with scopes, the operator credential, and the use cases
//! that create, list, authenticate and revoke them.

mod credentials;
mod model;
mod plan;
mod service;

pub use credentials::{
    MIN_PRODUCTION_TOKEN_BITS, Secret, estimated_entropy_bits, hash_secret, new_api_key_secret,
    new_operator_token,
};
pub use model::{ApiKey, NewApiKey, Principal, Scope, Tenant, TenantRepository};
pub use plan::{
    ClassRates, DEFAULT_PLAN, OperationClass, Plan, Quotas, RateLimit, builtin_plans, plan_catalog,
};
pub use service::{TenantService, TenantsError};
