//! Carrying transaction requests out on chain: each request's execution record (nonce,
//! signed attempts, inclusion), a lease so one worker drives a request at a time, and the
//! nonce book of every (network, address).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Transactions {
    Table,
    Execution,
    Nonce,
    TxHash,
    ClaimedUntil,
    WalletId,
    Network,
    State,
}

#[derive(DeriveIden)]
enum AccountNonces {
    Table,
    Network,
    Address,
    NextNonce,
    Released,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        let columns = [
            ColumnDef::new(Transactions::Execution)
                .text()
                .not_null()
                .default("{}")
                .to_owned(),
            ColumnDef::new(Transactions::Nonce)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Transactions::TxHash)
                .string_len(128)
                .null()
                .to_owned(),
            ColumnDef::new(Transactions::ClaimedUntil)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Transactions::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // No two requests of a wallet ever hold the same nonce on one network.
        manager
            .create_index(
                Index::create()
                    .name("transactions_wallet_network_nonce")
                    .table(Transactions::Table)
                    .col(Transactions::WalletId)
                    .col(Transactions::Network)
                    .col(Transactions::Nonce)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The executor looks for requests still moving.
        manager
            .create_index(
                Index::create()
                    .name("transactions_state")
                    .table(Transactions::Table)
                    .col(Transactions::State)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AccountNonces::Table)
                    .col(
                        ColumnDef::new(AccountNonces::Network)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AccountNonces::Address)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AccountNonces::NextNonce)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AccountNonces::Released)
                            .text()
                            .not_null()
                            .default("[]"),
                    )
                    .col(
                        ColumnDef::new(AccountNonces::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(AccountNonces::Network)
                            .col(AccountNonces::Address),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AccountNonces::Table).to_owned())
            .await
    }
}
