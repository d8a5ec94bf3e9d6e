//! Background upkeep of credentials in each API process: how API-key revocations reach this
//! process (the invalidation bus handler, the catch-up after a Redis reconnect, and the
//! periodic sweep), and the rotation of this process's JWT signing key.

use crate::invalidation::{InvalidationBus, Topic};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use waas_core::ApiKeyId;
use waas_tenants::{AccessTokens, TenantService};

/// How often the signing key's rotation and the deletion of expired public keys are checked.
const SIGNING_KEY_UPKEEP_EVERY: Duration = Duration::from_secs(60);

/// Makes `api_key_revoked` messages forget the key in `tenants`' caches, and a Redis
/// (re)subscription run a sweep (messages sent meanwhile are lost).
pub fn wire_revocations(bus: &InvalidationBus, tenants: &Arc<TenantService>) {
    let on_message = tenants.clone();
    bus.on(Topic::ApiKeyRevoked, move |payload| {
        let tenants = on_message.clone();
        async move {
            match ApiKeyId::parse(&payload) {
                Some(id) => tenants.forget_api_key(id).await,
                None => tracing::warn!("ignoring an api_key_revoked message without a key id"),
            }
        }
    });
    let on_resync = tenants.clone();
    bus.on_resync(move || {
        let tenants = on_resync.clone();
        async move { sweep_once(&tenants).await }
    });
}

/// Every `every`, forgets the keys revoked lately (the bound for a missed message).
pub fn spawn_revocation_sweep(tenants: Arc<TenantService>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            sweep_once(&tenants).await;
        }
    })
}

async fn sweep_once(tenants: &TenantService) {
    if let Err(error) = tenants.sweep_revocations().await {
        tracing::warn!(%error, "the revocation sweep failed; retried at the next tick");
    }
}

/// Rotates this process's signing key when due and deletes expired public keys.
pub fn spawn_signing_key_upkeep(tokens: Arc<AccessTokens>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(SIGNING_KEY_UPKEEP_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            interval.tick().await;
            if let Err(error) = tokens.upkeep().await {
                tracing::warn!(%error, "JWT signing key upkeep failed; retried in a minute");
            }
        }
    })
}
