//! One signer party's store of sealed records (`ShareStore`).

use crate::entities::party_records;
use async_trait::async_trait;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set};
use waas_core::ports::{ShareStore, ShareStoreError, StoredRecord};

/// A party's private store, on its own database.
#[derive(Clone, Debug)]
pub struct PartyStore {
    db: DatabaseConnection,
}

impl PartyStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

fn store_error(error: sea_orm::DbErr) -> ShareStoreError {
    ShareStoreError(error.to_string())
}

#[async_trait]
impl ShareStore for PartyStore {
    async fn insert(&self, record: StoredRecord) -> Result<(), ShareStoreError> {
        party_records::Entity::insert(party_records::ActiveModel {
            kind: Set(record.kind),
            id: Set(record.id),
            tenant: Set(record.tenant),
            sealed: Set(record.sealed),
            created_at: Set(chrono::Utc::now()),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn get(&self, kind: &str, id: &str) -> Result<Option<StoredRecord>, ShareStoreError> {
        let row = party_records::Entity::find_by_id((kind.to_string(), id.to_string()))
            .one(&self.db)
            .await
            .map_err(store_error)?;
        Ok(row.map(|row| StoredRecord {
            kind: row.kind,
            id: row.id,
            tenant: row.tenant,
            sealed: row.sealed,
        }))
    }

    async fn list_ids(&self, kind: &str) -> Result<Vec<String>, ShareStoreError> {
        let rows = party_records::Entity::find()
            .filter(party_records::Column::Kind.eq(kind))
            .order_by_asc(party_records::Column::CreatedAt)
            .order_by_asc(party_records::Column::Id)
            .all(&self.db)
            .await
            .map_err(store_error)?;
        Ok(rows.into_iter().map(|row| row.id).collect())
    }

    async fn replace(
        &self,
        kind: &str,
        id: &str,
        expected: &[u8],
        sealed: Vec<u8>,
    ) -> Result<bool, ShareStoreError> {
        let result = party_records::Entity::update_many()
            .col_expr(
                party_records::Column::Sealed,
                sea_orm::sea_query::Expr::value(sealed),
            )
            .filter(party_records::Column::Kind.eq(kind))
            .filter(party_records::Column::Id.eq(id))
            .filter(party_records::Column::Sealed.eq(expected.to_vec()))
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected == 1)
    }

    async fn delete(&self, kind: &str, id: &str) -> Result<bool, ShareStoreError> {
        let result = party_records::Entity::delete_by_id((kind.to_string(), id.to_string()))
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected == 1)
    }
}
