//! Connecting and migrating. SQLite gets one connection (writers serialize anyway, and a
//! single connection rules out lock-upgrade deadlocks); PostgreSQL gets a pool.

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use std::time::Duration;
use waas_migrations::{Migrator, MigratorTrait, PartyStoreMigrator};

/// Which engine a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseKind {
    Postgres,
    Sqlite,
}

impl DatabaseKind {
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(DatabaseKind::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(DatabaseKind::Sqlite)
        } else {
            None
        }
    }
}

async fn open(url: &str) -> Result<DatabaseConnection, DbErr> {
    let kind = DatabaseKind::of_url(url).ok_or_else(|| {
        DbErr::Custom("database URL must start with postgres:// or sqlite:".into())
    })?;
    let mut options = ConnectOptions::new(url.to_string());
    options
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    match kind {
        DatabaseKind::Sqlite => options.max_connections(1).min_connections(1),
        DatabaseKind::Postgres => options.max_connections(20).min_connections(1),
    };
    Database::connect(options).await
}

/// Connects to the control-plane database and applies pending migrations.
pub async fn connect_control_plane(url: &str) -> Result<DatabaseConnection, DbErr> {
    let db = open(url).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
}

/// Connects to a party's own store and applies its migrations.
pub async fn connect_party_store(url: &str) -> Result<DatabaseConnection, DbErr> {
    let db = open(url).await?;
    PartyStoreMigrator::up(&db, None).await?;
    Ok(db)
}
