//! The executor's loop: every poll it picks moving requests fairly — round-robin across
//! (tenant, network), oldest first within each (`TransactionRepository::moving`) — and
//! starts a drive for each one it is not driving already, without waiting for the drives
//! it started before. A network whose RPC hangs holds at most `DRIVES_PER_NETWORK` drives
//! and never the loop; one tenant's stuck requests take one turn each round like anyone
//! else's.

use super::Executor;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use waas_core::TransactionId;

/// Drives one executor runs at once on one network.
const DRIVES_PER_NETWORK: usize = 8;
/// Requests one poll reads (drives already running are leased, so they are not among them).
const CANDIDATES: u64 = 64;

/// The drives this executor is running: request → network.
type Running = Arc<Mutex<HashMap<TransactionId, String>>>;

fn running(map: &Running) -> std::sync::MutexGuard<'_, HashMap<TransactionId, String>> {
    // A drive that panicked is contained before it could poison this; stay usable anyway.
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Executor {
    /// Polls every `every` forever, starting drives (see the module header). Dropping the
    /// future stops the loop and every drive it started.
    pub async fn run_sweeps(self: Arc<Self>, every: Duration) {
        let mut drives = tokio::task::JoinSet::new();
        let busy: Running = Arc::default();
        loop {
            while drives.try_join_next().is_some() {}
            if let Err(error) = self.start_drives(&mut drives, &busy).await {
                tracing::warn!(%error, "transaction executor sweep failed");
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Starts a drive for each request picked now that this executor is not driving yet,
    /// within the per-network bound; returns how many started.
    async fn start_drives(
        self: &Arc<Self>,
        drives: &mut tokio::task::JoinSet<()>,
        busy: &Running,
    ) -> Result<usize, crate::service::WalletsError> {
        let picked = self.repository.moving(self.clock.now(), CANDIDATES).await?;
        let mut started = 0;
        for request in picked {
            {
                let mut busy = running(busy);
                if busy.contains_key(&request.id) {
                    continue;
                }
                let on_network = busy.values().filter(|n| **n == request.network).count();
                if on_network >= DRIVES_PER_NETWORK {
                    continue;
                }
                busy.insert(request.id, request.network.clone());
            }
            let executor = self.clone();
            let busy = busy.clone();
            drives.spawn(async move {
                let id = request.id;
                if let Err(error) = executor.drive(request.tenant_id, id).await {
                    tracing::warn!(%id, %error, "driving a transaction request failed; it is retried");
                }
                running(&busy).remove(&id);
            });
            started += 1;
        }
        Ok(started)
    }
}
