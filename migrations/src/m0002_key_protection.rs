//! Key-protection tier per tenant (chosen by the operator) and per wallet (the tier its
//! shares were sealed under).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    KeyProtection,
}

#[derive(DeriveIden)]
enum Wallets {
    Table,
    KeyProtection,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .add_column(
                        ColumnDef::new(Tenants::KeyProtection)
                            .string_len(16)
                            .not_null()
                            .default("local"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Wallets::Table)
                    .add_column(
                        ColumnDef::new(Wallets::KeyProtection)
                            .string_len(16)
                            .not_null()
                            .default("local"),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Wallets::Table)
                    .drop_column(Wallets::KeyProtection)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .drop_column(Tenants::KeyProtection)
                    .to_owned(),
            )
            .await
    }
}
