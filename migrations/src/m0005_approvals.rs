//! Approvals and rejections of transaction requests: one per approver and request.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TransactionApprovals {
    Table,
    TransactionId,
    Approver,
    Approved,
    At,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TransactionApprovals::Table)
                    .col(
                        ColumnDef::new(TransactionApprovals::TransactionId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(TransactionApprovals::Approver)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(TransactionApprovals::Approved)
                            .boolean()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(TransactionApprovals::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    // Nobody decides twice on one request.
                    .primary_key(
                        Index::create()
                            .col(TransactionApprovals::TransactionId)
                            .col(TransactionApprovals::Approver),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TransactionApprovals::Table).to_owned())
            .await
    }
}
