//! waas-migrations: schema migrations. `Migrator` is the control-plane database (PostgreSQL or
//! SQLite); `PartyStoreMigrator` is the private store each signer party keeps for itself.

pub use sea_orm_migration::prelude::*;

mod m0001_control_plane;
mod m0001_party_store;
mod m0002_key_protection;
mod m0003_policies;
mod m0004_transactions;
mod m0005_approvals;
mod m0006_approver_groups;
mod m0007_chain_execution;
mod m0008_signature_requests;
mod m0009_jwt_signing_keys;
mod m0010_idempotency_keys;

/// The control-plane schema: tenants, API keys, wallets, events, policies, transaction and
/// signature requests, the public keys of JWT signing keys, idempotency keys.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_control_plane::Migration),
            Box::new(m0002_key_protection::Migration),
            Box::new(m0003_policies::Migration),
            Box::new(m0004_transactions::Migration),
            Box::new(m0005_approvals::Migration),
            Box::new(m0006_approver_groups::Migration),
            Box::new(m0007_chain_execution::Migration),
            Box::new(m0008_signature_requests::Migration),
            Box::new(m0009_jwt_signing_keys::Migration),
            Box::new(m0010_idempotency_keys::Migration),
        ]
    }
}

/// The schema of one signer party's own store (sealed shares, primes, aux info).
#[derive(Debug)]
pub struct PartyStoreMigrator;

#[async_trait::async_trait]
impl MigratorTrait for PartyStoreMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m0001_party_store::Migration)]
    }

    fn migration_table_name() -> DynIden {
        "party_store_migrations".into_iden()
    }
}
