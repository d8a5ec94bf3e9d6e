//! `WalletRepository` on sea-orm.

use crate::entities::wallets;
use crate::{SqlStore, corrupt, db_error, events, paginate};
use async_trait::async_trait;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use waas_core::event::NewEvent;
use waas_core::ports::{Page, PageRequest, RepositoryError};
use waas_core::{Chain, Scheme, TenantId, Threshold, WalletId};
use waas_wallets::{Wallet, WalletRepository};

fn wallet_to_domain(row: wallets::Model) -> Result<Wallet, RepositoryError> {
    let t = u16::try_from(row.threshold_t).map_err(|_| corrupt("threshold"))?;
    let n = u16::try_from(row.threshold_n).map_err(|_| corrupt("threshold"))?;
    Ok(Wallet {
        id: WalletId::parse(&row.id).ok_or_else(|| corrupt("wallet id"))?,
        tenant_id: TenantId::parse(&row.tenant_id).ok_or_else(|| corrupt("wallet tenant"))?,
        name: row.name,
        chain: Chain::parse(&row.chain).ok_or_else(|| corrupt("wallet chain"))?,
        scheme: Scheme::parse(&row.scheme).ok_or_else(|| corrupt("wallet scheme"))?,
        address: row.address,
        public_key: hex::decode(&row.public_key).map_err(|_| corrupt("public key"))?,
        threshold: Threshold::new(t, n).map_err(|_| corrupt("threshold"))?,
        public_data: hex::decode(&row.public_data).map_err(|_| corrupt("public data"))?,
        key_protection: row.key_protection,
        created_at: row.created_at,
    })
}

#[async_trait]
impl WalletRepository for SqlStore {
    async fn insert_wallet(&self, wallet: &Wallet, event: NewEvent) -> Result<(), RepositoryError> {
        let txn = self.db.begin().await.map_err(db_error)?;
        wallets::ActiveModel {
            id: Set(wallet.id.to_string()),
            tenant_id: Set(wallet.tenant_id.to_string()),
            name: Set(wallet.name.clone()),
            chain: Set(wallet.chain.as_str().to_string()),
            scheme: Set(wallet.scheme.as_str().to_string()),
            address: Set(wallet.address.clone()),
            public_key: Set(hex::encode(&wallet.public_key)),
            threshold_t: Set(i16::try_from(wallet.threshold.t()).map_err(|_| corrupt("threshold"))?),
            threshold_n: Set(i16::try_from(wallet.threshold.n()).map_err(|_| corrupt("threshold"))?),
            public_data: Set(hex::encode(&wallet.public_data)),
            key_protection: Set(wallet.key_protection.clone()),
            created_at: Set(wallet.created_at),
        }
        .insert(&txn)
        .await
        .map_err(db_error)?;
        events::append(&txn, event, wallet.created_at)
            .await
            .map_err(db_error)?;
        txn.commit().await.map_err(db_error)
    }

    async fn get_wallet(
        &self,
        tenant: TenantId,
        id: WalletId,
    ) -> Result<Option<Wallet>, RepositoryError> {
        wallets::Entity::find_by_id(id.to_string())
            .filter(wallets::Column::TenantId.eq(tenant.to_string()))
            .one(&self.db)
            .await
            .map_err(db_error)?
            .map(wallet_to_domain)
            .transpose()
    }

    async fn list_wallets(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> Result<Page<Wallet>, RepositoryError> {
        let mut query =
            wallets::Entity::find().filter(wallets::Column::TenantId.eq(tenant.to_string()));
        if let Some(after) = &page.after {
            query = query.filter(wallets::Column::Id.gt(after.clone()));
        }
        let rows = query
            .order_by_asc(wallets::Column::Id)
            .limit(page.limit + 1)
            .all(&self.db)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(wallet_to_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paginate(rows, page.limit, |wallet| wallet.id.to_string()))
    }
}
