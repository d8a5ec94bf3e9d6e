//! Party store: one table of sealed records keyed by (kind, id).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PartyRecords {
    Table,
    Kind,
    Id,
    Tenant,
    Sealed,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PartyRecords::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(PartyRecords::Kind).string_len(64).not_null())
                    .col(ColumnDef::new(PartyRecords::Id).string_len(128).not_null())
                    .col(
                        ColumnDef::new(PartyRecords::Tenant)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(PartyRecords::Sealed).binary().not_null())
                    .col(
                        ColumnDef::new(PartyRecords::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(PartyRecords::Kind)
                            .col(PartyRecords::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PartyRecords::Table).to_owned())
            .await
    }
}
