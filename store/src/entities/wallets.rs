//! The `wallets` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "wallets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub chain: String,
    pub scheme: String,
    pub address: String,
    /// Hex.
    pub public_key: String,
    pub threshold_t: i16,
    pub threshold_n: i16,
    /// Hex.
    pub public_data: String,
    pub created_at: DateTimeUtc,
    /// `local`, `aws-kms` or `pkcs11`.
    pub key_protection: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
