//! The `events` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub sequence: i64,
    pub kind: String,
    pub subject_id: String,
    /// JSON text.
    pub payload: String,
    pub created_at: DateTimeUtc,
    /// Hex.
    pub prev_hash: String,
    /// Hex.
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
