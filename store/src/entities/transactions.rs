//! The `transactions` table: transaction requests.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "transactions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub wallet_id: String,
    pub chain: String,
    pub network: String,
    pub to_address: String,
    pub asset: String,
    pub amount: String,
    pub data: Option<String>,
    pub state: String,
    pub policy_version: i32,
    pub decision: String,
    pub value_usd: Option<String>,
    pub signing_quorum: Option<i16>,
    pub approval_quorum: i16,
    pub approver_group: Option<String>,
    pub requested_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub execution: String,
    pub nonce: Option<i64>,
    pub tx_hash: Option<String>,
    pub claimed_until: Option<DateTimeUtc>,
    /// What a signature request signs (JSON); `None` for a transaction request.
    #[sea_orm(column_type = "Text", nullable)]
    pub signature: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
