//! Party restarts: the coordinator remembers each party's start epoch (from its signed
//! status) and, when it changes, drops what that party no longer holds — the presignatures
//! it shared and the FROST nonces it precommitted (ADR 0009) — so signing does not try them
//! one failure at a time.

use super::Coordinator;
use std::time::Duration;

impl Coordinator {
    /// Records the epochs seen in party statuses (`(pool index, epoch)`; 0 = not reported)
    /// and forgets the one-time material of every party whose epoch changed.
    pub(super) async fn note_epochs(&self, seen: &[(u16, u64)]) {
        let restarted: Vec<u16> = self
            .with_state(|state| {
                seen.iter()
                    .filter(|(_, epoch)| *epoch != 0)
                    .filter_map(|&(index, epoch)| {
                        let before = state.party_epochs.insert(index, epoch);
                        before.filter(|&b| b != epoch).map(|_| index)
                    })
                    .collect()
            })
            .unwrap_or_default();
        if restarted.is_empty() {
            return;
        }
        let nonces = self.forget_nonces_of(&restarted);
        let presignatures = self.forget_presignatures_of(&restarted).await;
        tracing::info!(
            parties = ?restarted,
            presignatures,
            nonces,
            "parties restarted: dropped the presignatures and nonces they no longer hold"
        );
    }

    /// Asks `parties` for their status now (after one of them refused a presignature or a
    /// nonce): a restart is noticed at once rather than at the next upkeep pass.
    pub(super) async fn check_epochs(&self, parties: &[u16]) {
        let mut seen = Vec::new();
        for &index in parties {
            let Some(link) = self.links.get(usize::from(index)) else {
                continue;
            };
            if let Ok(Ok(status)) =
                tokio::time::timeout(Duration::from_secs(5), link.status()).await
            {
                seen.push((index, status.epoch));
            }
        }
        self.note_epochs(&seen).await;
    }
}
