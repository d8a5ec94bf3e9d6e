//! Per-peer and per-connection bookkeeping of the node server: slots a peer (a client IP
//! address) holds for handshakes, connections and sessions, given back when dropped; and
//! the open requests of one connection, to close it once idle.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which kind of per-peer slot.
#[derive(Clone, Copy, Debug)]
pub(super) enum Slot {
    Handshake,
    Connection,
    Session,
}

/// Per-peer counts of handshakes, connections and sessions in progress.
#[derive(Debug, Default)]
pub(super) struct PeerTable {
    peers: Mutex<HashMap<IpAddr, [usize; 3]>>,
}

impl PeerTable {
    /// Takes a `slot` for `peer` unless it already holds `cap` of them.
    pub(super) fn admit(
        self: &Arc<Self>,
        peer: IpAddr,
        slot: Slot,
        cap: usize,
    ) -> Option<PeerSlot> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let counts = peers.entry(peer).or_default();
        let count = counts.get_mut(slot as usize)?;
        if *count >= cap {
            if counts.iter().all(|&c| c == 0) {
                peers.remove(&peer);
            }
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            table: self.clone(),
            peer,
            slot,
        })
    }
}

/// A held per-peer slot, given back when dropped.
#[derive(Debug)]
pub(super) struct PeerSlot {
    table: Arc<PeerTable>,
    peer: IpAddr,
    slot: Slot,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut peers = self.table.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(counts) = peers.get_mut(&self.peer) {
            if let Some(count) = counts.get_mut(self.slot as usize) {
                *count = count.saturating_sub(1);
            }
            if counts.iter().all(|&c| c == 0) {
                peers.remove(&self.peer);
            }
        }
    }
}

/// Open requests of one connection and when that number last changed.
#[derive(Debug)]
pub(super) struct Activity {
    open: AtomicUsize,
    changed: Mutex<Instant>,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            open: AtomicUsize::new(0),
            changed: Mutex::new(Instant::now()),
        }
    }

    fn touch(&self) {
        *self.changed.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Completes once no request has been open for `timeout`.
    pub(super) async fn idle_for(&self, timeout: Duration) {
        loop {
            let since = *self.changed.lock().unwrap_or_else(|e| e.into_inner());
            let wait = if self.open.load(Ordering::SeqCst) == 0 {
                match timeout.checked_sub(since.elapsed()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return,
                }
            } else {
                timeout
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// One open request of a connection.
#[derive(Debug)]
pub(super) struct ActiveRequest(Arc<Activity>);

impl ActiveRequest {
    pub(super) fn new(activity: Arc<Activity>) -> Self {
        activity.open.fetch_add(1, Ordering::SeqCst);
        activity.touch();
        Self(activity)
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}
