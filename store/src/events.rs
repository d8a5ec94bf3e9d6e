//! The event log: appending inside a caller's transaction, and reading a tenant's chain.

use crate::entities::events;
use crate::{SqlStore, corrupt, db_error};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement,
};
use waas_core::event::{EventLog, GENESIS_HASH, NewEvent, StoredEvent, chain_hash};
use waas_core::ports::RepositoryError;
use waas_core::{EventId, TenantId};

/// Appends `event` to its tenant's chain on `txn`. On PostgreSQL the tenant row is locked
/// first so concurrent appends for one tenant queue up instead of failing on the unique
/// (tenant, sequence) index; SQLite serializes writers by itself.
/// Locks the tenant's row until the transaction ends (PostgreSQL), so writes of one tenant
/// that read-then-write (event chain, velocity limits) never interleave. SQLite has a single
/// writer connection, which serializes them already.
pub(crate) async fn lock_tenant<C: ConnectionTrait>(
    txn: &C,
    tenant: TenantId,
) -> Result<(), DbErr> {
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT id FROM tenants WHERE id = $1 FOR UPDATE",
            [tenant.to_string().into()],
        ))
        .await?;
    }
    Ok(())
}

pub(crate) async fn append<C: ConnectionTrait>(
    txn: &C,
    event: NewEvent,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let tenant = event.tenant_id.to_string();
    lock_tenant(txn, event.tenant_id).await?;
    let last = events::Entity::find()
        .filter(events::Column::TenantId.eq(tenant.clone()))
        .order_by_desc(events::Column::Sequence)
        .limit(1)
        .one(txn)
        .await?;
    let (sequence, prev_hash) = match last {
        Some(row) => {
            let prev = hex::decode(&row.hash)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| DbErr::Custom("stored event hash is not 32 bytes".into()))?;
            (row.sequence + 1, prev)
        }
        None => (1, GENESIS_HASH),
    };
    let hash = chain_hash(
        &prev_hash,
        &event.tenant_id,
        sequence,
        event.kind,
        &event.subject_id,
        &event.payload,
        at,
    );
    events::ActiveModel {
        id: Set(EventId::new().to_string()),
        tenant_id: Set(tenant),
        sequence: Set(sequence),
        kind: Set(event.kind.to_string()),
        subject_id: Set(event.subject_id),
        payload: Set(event.payload.to_string()),
        created_at: Set(at),
        prev_hash: Set(hex::encode(prev_hash)),
        hash: Set(hex::encode(hash)),
    }
    .insert(txn)
    .await?;
    Ok(())
}

fn to_domain(row: events::Model) -> Result<StoredEvent, RepositoryError> {
    let hash32 = |text: &str| {
        hex::decode(text)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| corrupt("event hash"))
    };
    Ok(StoredEvent {
        id: EventId::parse(&row.id).ok_or_else(|| corrupt("event id"))?,
        tenant_id: TenantId::parse(&row.tenant_id).ok_or_else(|| corrupt("event tenant"))?,
        sequence: row.sequence,
        kind: row.kind,
        subject_id: row.subject_id,
        payload: serde_json::from_str(&row.payload).map_err(|_| corrupt("event payload"))?,
        created_at: row.created_at,
        prev_hash: hash32(&row.prev_hash)?,
        hash: hash32(&row.hash)?,
    })
}

#[async_trait]
impl EventLog for SqlStore {
    async fn list_events(
        &self,
        tenant: TenantId,
        after: i64,
        limit: u64,
    ) -> Result<Vec<StoredEvent>, RepositoryError> {
        events::Entity::find()
            .filter(events::Column::TenantId.eq(tenant.to_string()))
            .filter(events::Column::Sequence.gt(after))
            .order_by_asc(events::Column::Sequence)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(to_domain)
            .collect()
    }
}
