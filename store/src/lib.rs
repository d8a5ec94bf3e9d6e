//! waas-store: persistence on sea-orm (PostgreSQL or SQLite).
//!
//! - [`SqlStore`]: the control plane (tenants, API keys, wallets, policies, transaction and
//!   signature requests, the public keys of JWT signing keys) and the per-tenant
//!   hash-chained event log. Every write appends its event in the same transaction. It also keeps idempotency keys (`IdempotencyStore`).
//! - [`PartyStore`]: one signer party's private store of sealed records.

mod connect;
mod entities;
mod events;
mod idempotency;
mod party;
mod policies;
mod signing_keys;
mod tenants;
mod transactions;
mod wallets;

pub use connect::{DatabaseKind, connect_control_plane, connect_party_store};
pub use party::PartyStore;

use sea_orm::DatabaseConnection;
use waas_core::ports::RepositoryError;

/// The control-plane store.
#[derive(Clone, Debug)]
pub struct SqlStore {
    db: DatabaseConnection,
}

impl SqlStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        self.db.ping().await.is_ok()
    }
}

pub(crate) fn db_error(error: sea_orm::DbErr) -> RepositoryError {
    RepositoryError(error.to_string())
}

pub(crate) fn corrupt(what: &str) -> RepositoryError {
    RepositoryError(format!("stored row is invalid: {what}"))
}

/// Splits `limit + 1` rows into a page and the next cursor.
pub(crate) fn paginate<T>(
    mut rows: Vec<T>,
    limit: u64,
    cursor_of: impl Fn(&T) -> String,
) -> waas_core::ports::Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(cursor_of)
    } else {
        None
    };
    waas_core::ports::Page {
        items: rows,
        next_cursor,
    }
}
