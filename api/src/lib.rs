//! waas-api: the only crate that knows HTTP. Axum routers, authentication, idempotency keys,
//! problem+json errors, OpenAPI, and the composition root that wires adapters into use cases.

pub mod auth;
pub mod credentials_upkeep;
pub mod extract;
pub mod idempotency;
pub mod invalidation;
pub mod node;
pub mod openapi;
pub mod primes;
pub mod problem;
pub mod production;
pub mod ratelimit;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod timeout;
pub mod wire;

pub use node::SignerNode;
pub use settings::Settings;
pub use startup::Application;
