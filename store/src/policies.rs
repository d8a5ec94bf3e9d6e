//! `PolicyRepository` on sea-orm.

use crate::entities::{policy_drafts, policy_versions};
use crate::{SqlStore, corrupt, db_error, events, paginate};
use async_trait::async_trait;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use waas_core::TenantId;
use waas_core::event::NewEvent;
use waas_core::ports::{Page, PageRequest, RepositoryError};
use waas_policy::PolicyDocument;
use waas_wallets::{PolicyDraft, PolicyRepository, PolicyVersion};

fn document_of(text: &str) -> Result<PolicyDocument, RepositoryError> {
    serde_json::from_str(text).map_err(|_| corrupt("policy document"))
}

fn text_of(document: &PolicyDocument) -> Result<String, RepositoryError> {
    serde_json::to_string(document).map_err(|_| corrupt("policy document"))
}

fn version_to_domain(row: policy_versions::Model) -> Result<PolicyVersion, RepositoryError> {
    Ok(PolicyVersion {
        version: u32::try_from(row.version).map_err(|_| corrupt("policy version"))?,
        document: document_of(&row.document)?,
        published_at: row.published_at,
        published_by: row.published_by,
    })
}

#[async_trait]
impl PolicyRepository for SqlStore {
    async fn save_draft(
        &self,
        tenant: TenantId,
        draft: &PolicyDraft,
        event: NewEvent,
    ) -> Result<(), RepositoryError> {
        let txn = self.db.begin().await.map_err(db_error)?;
        events::append(&txn, event, draft.updated_at)
            .await
            .map_err(db_error)?;
        policy_drafts::Entity::insert(policy_drafts::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            document: Set(text_of(&draft.document)?),
            updated_at: Set(draft.updated_at),
            updated_by: Set(draft.updated_by.clone()),
        })
        .on_conflict(
            OnConflict::column(policy_drafts::Column::TenantId)
                .update_columns([
                    policy_drafts::Column::Document,
                    policy_drafts::Column::UpdatedAt,
                    policy_drafts::Column::UpdatedBy,
                ])
                .to_owned(),
        )
        .exec(&txn)
        .await
        .map_err(db_error)?;
        txn.commit().await.map_err(db_error)
    }

    async fn get_draft(&self, tenant: TenantId) -> Result<Option<PolicyDraft>, RepositoryError> {
        let Some(row) = policy_drafts::Entity::find_by_id(tenant.to_string())
            .one(&self.db)
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        Ok(Some(PolicyDraft {
            document: document_of(&row.document)?,
            updated_at: row.updated_at,
            updated_by: row.updated_by,
        }))
    }

    async fn insert_version(
        &self,
        tenant: TenantId,
        version: &PolicyVersion,
        event: NewEvent,
    ) -> Result<bool, RepositoryError> {
        let txn = self.db.begin().await.map_err(db_error)?;
        // The event append locks the tenant's chain, so concurrent publishes serialize here;
        // the primary key refuses a second version with the same number.
        events::append(&txn, event, version.published_at)
            .await
            .map_err(db_error)?;
        let document = text_of(&version.document)?;
        let inserted = policy_versions::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            version: Set(i32::try_from(version.version).map_err(|_| corrupt("policy version"))?),
            document: Set(document.clone()),
            published_at: Set(version.published_at),
            published_by: Set(version.published_by.clone()),
        }
        .insert(&txn)
        .await;
        match inserted {
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                return Ok(false);
            }
            Err(error) => return Err(db_error(error)),
        }
        // The draft must still hold what is being published (else someone published or
        // edited it meanwhile: nothing is written). An edit saved later stays a draft.
        let deleted = policy_drafts::Entity::delete_many()
            .filter(policy_drafts::Column::TenantId.eq(tenant.to_string()))
            .filter(policy_drafts::Column::Document.eq(document))
            .exec(&txn)
            .await
            .map_err(db_error)?;
        if deleted.rows_affected != 1 {
            return Ok(false);
        }
        txn.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn latest_version(
        &self,
        tenant: TenantId,
    ) -> Result<Option<PolicyVersion>, RepositoryError> {
        policy_versions::Entity::find()
            .filter(policy_versions::Column::TenantId.eq(tenant.to_string()))
            .order_by_desc(policy_versions::Column::Version)
            .one(&self.db)
            .await
            .map_err(db_error)?
            .map(version_to_domain)
            .transpose()
    }

    async fn get_version(
        &self,
        tenant: TenantId,
        version: u32,
    ) -> Result<Option<PolicyVersion>, RepositoryError> {
        let Ok(version) = i32::try_from(version) else {
            return Ok(None);
        };
        policy_versions::Entity::find_by_id((tenant.to_string(), version))
            .one(&self.db)
            .await
            .map_err(db_error)?
            .map(version_to_domain)
            .transpose()
    }

    async fn list_versions(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> Result<Page<PolicyVersion>, RepositoryError> {
        let mut query = policy_versions::Entity::find()
            .filter(policy_versions::Column::TenantId.eq(tenant.to_string()));
        // Newest first: `after` is the last version seen, so the next page is older ones.
        if let Some(cursor) = &page.after {
            let before: i32 = cursor.parse().map_err(|_| corrupt("cursor"))?;
            query = query.filter(policy_versions::Column::Version.lt(before));
        }
        let rows = query
            .order_by_desc(policy_versions::Column::Version)
            .limit(page.limit + 1)
            .all(&self.db)
            .await
            .map_err(db_error)?;
        let rows: Vec<PolicyVersion> = rows
            .into_iter()
            .map(version_to_domain)
            .collect::<Result<_, _>>()?;
        Ok(paginate(rows, page.limit, |v| v.version.to_string()))
    }
}
