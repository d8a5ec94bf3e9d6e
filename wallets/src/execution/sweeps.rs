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

/// The drives an executor is running: request → network (when the polling loop started
/// it). Shared by the loop and by drives started elsewhere (a request driven on creation),
/// so one process never drives a request twice at once, even past a short lease.
#[derive(Debug, Default)]
pub(super) struct Running(Mutex<HashMap<TransactionId, Option<String>>>);

/// A request entered in `Running`; leaves it when dropped (also when its task is aborted).
pub(super) struct Entered<'a> {
    running: &'a Running,
    id: TransactionId,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.running.map().remove(&self.id);
    }
}

impl Running {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<TransactionId, Option<String>>> {
        // A drive that panicked is contained before it could poison this; stay usable.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Enters `id` unless it is being driven already.
    pub(super) fn enter(&self, id: TransactionId, network: Option<&str>) -> Option<Entered<'_>> {
        self.try_insert(id, network)
            .then_some(Entered { running: self, id })
    }

    fn try_insert(&self, id: TransactionId, network: Option<&str>) -> bool {
        let mut map = self.map();
        if map.contains_key(&id) {
            return false;
        }
        if let Some(network) = network {
            let on_network = map
                .values()
                .filter(|n| n.as_deref() == Some(network))
                .count();
            if on_network >= DRIVES_PER_NETWORK {
                return false;
            }
        }
        map.insert(id, network.map(str::to_string));
        true
    }
}

impl Executor {
    /// Polls every `every` forever, starting drives (see the module header). Dropping the
    /// future stops the loop and every drive it started.
    pub async fn run_sweeps(self: Arc<Self>, every: Duration) {
        let mut drives = tokio::task::JoinSet::new();
        loop {
            while drives.try_join_next().is_some() {}
            if let Err(error) = self.start_drives(&mut drives).await {
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
    ) -> Result<usize, crate::service::WalletsError> {
        let picked = self.repository.moving(self.clock.now(), CANDIDATES).await?;
        let mut started = 0;
        for request in picked {
            // Entered here, so the per-network count holds before the task runs; the task
            // takes the entry over and leaves it when done.
            if !self.running.try_insert(request.id, Some(&request.network)) {
                continue;
            }
            let executor = self.clone();
            drives.spawn(async move {
                let id = request.id;
                let _entered = Entered {
                    running: &executor.running,
                    id,
                };
                if let Err(error) = executor.drive_entered(request.tenant_id, id).await {
                    tracing::warn!(%id, %error, "driving a transaction request failed; it is retried");
                }
            });
            started += 1;
        }
        Ok(started)
    }
}
