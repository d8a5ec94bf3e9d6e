//! waas-tenants: tenants, API keys with scopes, the operator credential, and the use cases
//! that create, list, authenticate and revoke them; OAuth2 client credentials → JWT access
//! tokens (`oauth`) signed with per-process keys (`signing_keys`).

mod credentials;
mod model;
mod oauth;
mod plan;
mod service;
mod signing_keys;

pub use credentials::{
    MIN_PRODUCTION_TOKEN_BITS, Secret, estimated_entropy_bits, hash_secret, new_api_key_secret,
    new_operator_token,
};
pub use model::{ApiKey, NewApiKey, Principal, Scope, Tenant, TenantRepository};
pub use oauth::{
    AccessTokenClaims, AccessTokens, IssuedToken, MAX_TOKEN_TTL_SECS, TokenError, TokenSettings,
    VerifiedToken,
};
pub use plan::{
    ClassRates, DEFAULT_PLAN, OperationClass, Plan, Quotas, RateLimit, builtin_plans, plan_catalog,
};
pub use service::{KEY_CACHE_TTL, REVOCATION_SWEEP_WINDOW, TenantService, TenantsError};
pub use signing_keys::{PublishedSigningKey, SigningKeyRepository, thumbprint};
