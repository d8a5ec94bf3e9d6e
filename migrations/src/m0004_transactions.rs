//! Transaction requests: the intent, the policy decision that admitted or rejected it, and
//! its state.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Transactions {
    Table,
    Id,
    TenantId,
    WalletId,
    Chain,
    Network,
    ToAddress,
    Asset,
    Amount,
    Data,
    State,
    PolicyVersion,
    Decision,
    ValueUsd,
    SigningQuorum,
    ApprovalQuorum,
    ApproverGroup,
    RequestedBy,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let text = |name: Transactions, len: u32| {
            ColumnDef::new(name).string_len(len).not_null().to_owned()
        };
        manager
            .create_table(
                Table::create()
                    .table(Transactions::Table)
                    .col(text(Transactions::Id, 36).primary_key())
                    .col(text(Transactions::TenantId, 36))
                    .col(text(Transactions::WalletId, 36))
                    .col(text(Transactions::Chain, 16))
                    .col(text(Transactions::Network, 128))
                    .col(text(Transactions::ToAddress, 128))
                    .col(text(Transactions::Asset, 128))
                    .col(text(Transactions::Amount, 80))
                    .col(ColumnDef::new(Transactions::Data).text().null())
                    .col(text(Transactions::State, 32))
                    .col(
                        ColumnDef::new(Transactions::PolicyVersion)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Transactions::Decision).text().not_null())
                    .col(ColumnDef::new(Transactions::ValueUsd).string_len(80).null())
                    .col(
                        ColumnDef::new(Transactions::SigningQuorum)
                            .small_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Transactions::ApprovalQuorum)
                            .small_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Transactions::ApproverGroup)
                            .string_len(128)
                            .null(),
                    )
                    .col(text(Transactions::RequestedBy, 64))
                    .col(
                        ColumnDef::new(Transactions::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Transactions::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Velocity windows read a tenant's recent requests.
        manager
            .create_index(
                Index::create()
                    .name("transactions_tenant_created")
                    .table(Transactions::Table)
                    .col(Transactions::TenantId)
                    .col(Transactions::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Transactions::Table).to_owned())
            .await
    }
}
