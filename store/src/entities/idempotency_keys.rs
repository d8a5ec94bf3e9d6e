//! The `idempotency_keys` table: one claim per (scope, key), with the response to replay.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    /// `tenant:<uuid>` or `operator`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub scope: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub idempotency_key: String,
    /// The holder's token (UUID).
    pub claim_id: String,
    /// Hex SHA-256 of method, path and body.
    pub fingerprint: String,
    /// `in_flight`, `unknown` or `completed`.
    pub state: String,
    pub lease_until: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
    pub response_status: Option<i32>,
    /// JSON array of `[name, value]` pairs.
    pub response_headers: Option<String>,
    pub response_body: Option<Vec<u8>>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
