//! `TenantRepository` on sea-orm.

use crate::entities::{api_keys, operator_credentials, tenants};
use crate::{SqlStore, corrupt, db_error, events, paginate};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use waas_core::event::NewEvent;
use waas_core::ports::{Page, PageRequest, RepositoryError};
use waas_core::{ApiKeyId, TenantId};
use waas_tenants::{ApiKey, Scope, Tenant, TenantRepository};

const OPERATOR_ROW: &str = "operator";

fn key_to_domain(row: api_keys::Model) -> Result<ApiKey, RepositoryError> {
    let names: Vec<String> =
        serde_json::from_str(&row.scopes).map_err(|_| corrupt("api key scopes"))?;
    let scopes = names
        .iter()
        .map(|name| Scope::parse(name).ok_or_else(|| corrupt("api key scope")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ApiKey {
        id: ApiKeyId::parse(&row.id).ok_or_else(|| corrupt("api key id"))?,
        tenant_id: TenantId::parse(&row.tenant_id).ok_or_else(|| corrupt("api key tenant"))?,
        name: row.name,
        prefix: row.prefix,
        secret_hash: row.secret_hash,
        scopes,
        approver_groups: serde_json::from_str(&row.approver_groups)
            .map_err(|_| corrupt("api key approver groups"))?,
        created_at: row.created_at,
        revoked_at: row.revoked_at,
    })
}

#[async_trait]
impl TenantRepository for SqlStore {
    async fn operator_token_hash(&self) -> Result<Option<String>, RepositoryError> {
        Ok(
            operator_credentials::Entity::find_by_id(OPERATOR_ROW.to_string())
                .one(&self.db)
                .await
                .map_err(db_error)?
                .map(|row| row.token_hash),
        )
    }

    async fn set_operator_token_hash(
        &self,
        hash: &str,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let txn = self.db.begin().await.map_err(db_error)?;
        operator_credentials::Entity::delete_by_id(OPERATOR_ROW.to_string())
            .exec(&txn)
            .await
            .map_err(db_error)?;
        operator_credentials::ActiveModel {
            id: Set(OPERATOR_ROW.to_string()),
            token_hash: Set(hash.to_string()),
            created_at: Set(at),
        }
        .insert(&txn)
        .await
        .map_err(db_error)?;
        txn.commit().await.map_err(db_error)
    }

    async fn insert_tenant(&self, tenant: &Tenant, event: NewEvent) -> Result<(), RepositoryError> {
        let txn = self.db.begin().await.map_err(db_error)?;
        tenants::ActiveModel {
            id: Set(tenant.id.to_string()),
            name: Set(tenant.name.clone()),
            key_protection: Set(tenant.key_protection.clone()),
            created_at: Set(tenant.created_at),
        }
        .insert(&txn)
        .await
        .map_err(db_error)?;
        events::append(&txn, event, tenant.created_at)
            .await
            .map_err(db_error)?;
        txn.commit().await.map_err(db_error)
    }

    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, RepositoryError> {
        let Some(row) = tenants::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        Ok(Some(Tenant {
            id: TenantId::parse(&row.id).ok_or_else(|| corrupt("tenant id"))?,
            name: row.name,
            key_protection: row.key_protection,
            created_at: row.created_at,
        }))
    }

    async fn insert_api_key(&self, key: &ApiKey, event: NewEvent) -> Result<(), RepositoryError> {
        let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
        let txn = self.db.begin().await.map_err(db_error)?;
        api_keys::ActiveModel {
            id: Set(key.id.to_string()),
            tenant_id: Set(key.tenant_id.to_string()),
            name: Set(key.name.clone()),
            prefix: Set(key.prefix.clone()),
            secret_hash: Set(key.secret_hash.clone()),
            scopes: Set(serde_json::to_string(&scopes).map_err(|e| RepositoryError(e.to_string()))?),
            approver_groups: Set(serde_json::to_string(&key.approver_groups)
                .map_err(|e| RepositoryError(e.to_string()))?),
            created_at: Set(key.created_at),
            revoked_at: Set(None),
        }
        .insert(&txn)
        .await
        .map_err(db_error)?;
        events::append(&txn, event, key.created_at)
            .await
            .map_err(db_error)?;
        txn.commit().await.map_err(db_error)
    }

    async fn list_api_keys(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> Result<Page<ApiKey>, RepositoryError> {
        let mut query =
            api_keys::Entity::find().filter(api_keys::Column::TenantId.eq(tenant.to_string()));
        if let Some(after) = &page.after {
            query = query.filter(api_keys::Column::Id.gt(after.clone()));
        }
        let rows = query
            .order_by_asc(api_keys::Column::Id)
            .limit(page.limit + 1)
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(key_to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paginate(rows, page.limit, |key| key.id.to_string()))
    }

    async fn find_api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, RepositoryError> {
        api_keys::Entity::find()
            .filter(api_keys::Column::SecretHash.eq(hash))
            .one(&self.db)
            .await
            .map_err(db_error)?
            .map(key_to_domain)
            .transpose()
    }

    async fn find_api_key(&self, id: ApiKeyId) -> Result<Option<ApiKey>, RepositoryError> {
        api_keys::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await
            .map_err(db_error)?
            .map(key_to_domain)
            .transpose()
    }

    async fn api_keys_revoked_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<ApiKeyId>, RepositoryError> {
        api_keys::Entity::find()
            .filter(api_keys::Column::RevokedAt.gte(since))
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|row| ApiKeyId::parse(&row.id).ok_or_else(|| corrupt("api key id")))
            .collect()
    }

    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
        at: DateTime<Utc>,
        event: NewEvent,
    ) -> Result<Option<ApiKey>, RepositoryError> {
        let txn = self.db.begin().await.map_err(db_error)?;
        let Some(row) = api_keys::Entity::find_by_id(id.to_string())
            .filter(api_keys::Column::TenantId.eq(tenant.to_string()))
            .filter(api_keys::Column::RevokedAt.is_null())
            .one(&txn)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let key = key_to_domain(row.clone())?;
        let mut active: api_keys::ActiveModel = row.into();
        active.revoked_at = Set(Some(at));
        active.update(&txn).await.map_err(db_error)?;
        events::append(&txn, event, at).await.map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        Ok(Some(key))
    }
}
