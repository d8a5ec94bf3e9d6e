//! waas-tenants: tenants, API keys with scopes, the operator credential, and the use cases
//! that create, list, authenticate and revoke them.

mod credentials;
mod model;
mod service;

pub use credentials::{
    MIN_PRODUCTION_TOKEN_BITS, Secret, estimated_entropy_bits, hash_secret, new_api_key_secret,
    new_operator_token,
};
pub use model::{ApiKey, NewApiKey, Principal, Scope, Tenant, TenantRepository};
pub use service::{TenantService, TenantsError};
