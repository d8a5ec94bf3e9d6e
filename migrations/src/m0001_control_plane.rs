//! Control plane: operator credential, tenants, API keys, wallets, signatures and the
//! hash-chained event log. Ids are canonical UUID text so the schema is identical on
//! PostgreSQL and SQLite.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OperatorCredentials {
    Table,
    Id,
    TokenHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    TenantId,
    Name,
    Prefix,
    SecretHash,
    Scopes,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Wallets {
    Table,
    Id,
    TenantId,
    Name,
    Chain,
    Scheme,
    Address,
    PublicKey,
    ThresholdT,
    ThresholdN,
    PublicData,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Signatures {
    Table,
    Id,
    TenantId,
    WalletId,
    Kind,
    Digest,
    Signature,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    TenantId,
    Sequence,
    Kind,
    SubjectId,
    Payload,
    CreatedAt,
    PrevHash,
    Hash,
}

fn id_col<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).string_len(36).not_null().to_owned()
}

fn time_col<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OperatorCredentials::Table)
                    .col(id_col(OperatorCredentials::Id).primary_key())
                    .col(
                        ColumnDef::new(OperatorCredentials::TokenHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(time_col(OperatorCredentials::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(id_col(Tenants::Id).primary_key())
                    .col(ColumnDef::new(Tenants::Name).string_len(200).not_null())
                    .col(time_col(Tenants::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(id_col(ApiKeys::Id).primary_key())
                    .col(id_col(ApiKeys::TenantId))
                    .col(ColumnDef::new(ApiKeys::Name).string_len(200).not_null())
                    .col(ColumnDef::new(ApiKeys::Prefix).string_len(32).not_null())
                    .col(
                        ColumnDef::new(ApiKeys::SecretHash)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(ApiKeys::Scopes).text().not_null())
                    .col(time_col(ApiKeys::CreatedAt))
                    .col(
                        ColumnDef::new(ApiKeys::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ApiKeys::Table, ApiKeys::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("api_keys_tenant")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::TenantId)
                    .col(ApiKeys::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Wallets::Table)
                    .col(id_col(Wallets::Id).primary_key())
                    .col(id_col(Wallets::TenantId))
                    .col(ColumnDef::new(Wallets::Name).string_len(200).not_null())
                    .col(ColumnDef::new(Wallets::Chain).string_len(16).not_null())
                    .col(ColumnDef::new(Wallets::Scheme).string_len(32).not_null())
                    .col(ColumnDef::new(Wallets::Address).string_len(64).not_null())
                    .col(
                        ColumnDef::new(Wallets::PublicKey)
                            .string_len(130)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Wallets::ThresholdT)
                            .small_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Wallets::ThresholdN)
                            .small_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Wallets::PublicData).text().not_null())
                    .col(time_col(Wallets::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Wallets::Table, Wallets::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("wallets_tenant")
                    .table(Wallets::Table)
                    .col(Wallets::TenantId)
                    .col(Wallets::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Signatures::Table)
                    .col(id_col(Signatures::Id).primary_key())
                    .col(id_col(Signatures::TenantId))
                    .col(id_col(Signatures::WalletId))
                    .col(ColumnDef::new(Signatures::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(Signatures::Digest).string_len(66).not_null())
                    .col(
                        ColumnDef::new(Signatures::Signature)
                            .string_len(160)
                            .not_null(),
                    )
                    .col(time_col(Signatures::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Signatures::Table, Signatures::WalletId)
                            .to(Wallets::Table, Wallets::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(id_col(Events::Id).primary_key())
                    .col(id_col(Events::TenantId))
                    .col(ColumnDef::new(Events::Sequence).big_integer().not_null())
                    .col(ColumnDef::new(Events::Kind).string_len(64).not_null())
                    .col(ColumnDef::new(Events::SubjectId).string_len(64).not_null())
                    .col(ColumnDef::new(Events::Payload).text().not_null())
                    .col(time_col(Events::CreatedAt))
                    .col(ColumnDef::new(Events::PrevHash).string_len(64).not_null())
                    .col(ColumnDef::new(Events::Hash).string_len(64).not_null())
                    .to_owned(),
            )
            .await?;
        // One event per position in a tenant's chain: two writers can never both append
        // sequence N, so the chain cannot fork.
        manager
            .create_index(
                Index::create()
                    .name("events_tenant_sequence")
                    .table(Events::Table)
                    .col(Events::TenantId)
                    .col(Events::Sequence)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Events::Table.into_iden(),
            Signatures::Table.into_iden(),
            Wallets::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            Tenants::Table.into_iden(),
            OperatorCredentials::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
