//! `SigningKeyRepository` on sea-orm: the published public keys of JWT signing keys.

use crate::entities::jwt_signing_keys;
use crate::{SqlStore, corrupt, db_error};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use waas_core::ports::RepositoryError;
use waas_tenants::{PublishedSigningKey, SigningKeyRepository};

#[async_trait]
impl SigningKeyRepository for SqlStore {
    async fn publish_signing_key(&self, key: &PublishedSigningKey) -> Result<(), RepositoryError> {
        jwt_signing_keys::ActiveModel {
            kid: Set(key.kid.clone()),
            public_key: Set(key.x()),
            created_at: Set(key.created_at),
            not_after: Set(key.not_after),
        }
        .insert(&self.db)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn signing_keys(
        &self,
        valid_at: DateTime<Utc>,
    ) -> Result<Vec<PublishedSigningKey>, RepositoryError> {
        jwt_signing_keys::Entity::find()
            .filter(jwt_signing_keys::Column::NotAfter.gt(valid_at))
            .order_by_asc(jwt_signing_keys::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|row| {
                PublishedSigningKey::from_x(row.kid, &row.public_key, row.created_at, row.not_after)
                    .ok_or_else(|| corrupt("jwt signing key"))
            })
            .collect()
    }

    async fn delete_signing_keys_expired_before(
        &self,
        at: DateTime<Utc>,
    ) -> Result<u64, RepositoryError> {
        let result = jwt_signing_keys::Entity::delete_many()
            .filter(jwt_signing_keys::Column::NotAfter.lt(at))
            .exec(&self.db)
            .await
            .map_err(db_error)?;
        Ok(result.rows_affected)
    }
}
