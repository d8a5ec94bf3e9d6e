//! OAuth2 access tokens: the public keys of the API processes' JWT signing keys (the private
//! halves never leave the memory of the process that made them), and an index on
//! `api_keys.revoked_at` for the periodic revocation sweep of every API process.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum JwtSigningKeys {
    Table,
    /// The key id (`kid`): the RFC 7638 thumbprint of the public key.
    Kid,
    /// The Ed25519 public key, base64url without padding (the JWK `x`).
    PublicKey,
    CreatedAt,
    /// No token signed by this key is valid after this moment; the row may then go.
    NotAfter,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(JwtSigningKeys::Table)
                    .col(
                        ColumnDef::new(JwtSigningKeys::Kid)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(JwtSigningKeys::PublicKey)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(JwtSigningKeys::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(JwtSigningKeys::NotAfter)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("jwt_signing_keys_not_after")
                    .table(JwtSigningKeys::Table)
                    .col(JwtSigningKeys::NotAfter)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("api_keys_revoked_at")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::RevokedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("api_keys_revoked_at")
                    .table(ApiKeys::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(JwtSigningKeys::Table).to_owned())
            .await
    }
}
