//! Tenant policies: one editable draft per tenant, and immutable published versions (the
//! highest is active).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PolicyDrafts {
    Table,
    TenantId,
    Document,
    UpdatedAt,
    UpdatedBy,
}

#[derive(DeriveIden)]
enum PolicyVersions {
    Table,
    TenantId,
    Version,
    Document,
    PublishedAt,
    PublishedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PolicyDrafts::Table)
                    .col(
                        ColumnDef::new(PolicyDrafts::TenantId)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(PolicyDrafts::Document).text().not_null())
                    .col(
                        ColumnDef::new(PolicyDrafts::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PolicyDrafts::UpdatedBy)
                            .string_len(64)
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PolicyVersions::Table)
                    .col(
                        ColumnDef::new(PolicyVersions::TenantId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(ColumnDef::new(PolicyVersions::Version).integer().not_null())
                    .col(ColumnDef::new(PolicyVersions::Document).text().not_null())
                    .col(
                        ColumnDef::new(PolicyVersions::PublishedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PolicyVersions::PublishedBy)
                            .string_len(64)
                            .not_null(),
                    )
                    // Two publishers can never both create version N.
                    .primary_key(
                        Index::create()
                            .col(PolicyVersions::TenantId)
                            .col(PolicyVersions::Version),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PolicyVersions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(PolicyDrafts::Table).to_owned())
            .await
    }
}
