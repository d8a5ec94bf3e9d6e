//! The presignature pool: a few CGGMP presignatures kept ready per ECDSA key so signing is
//! one round; refills, the index rebuilt from the parties, and taking one for a signature.

use super::{Coordinator, protocol_error, session_id};
use crate::ecdsa;
use crate::metrics::PoolMetrics;
use crate::transport::SessionKind;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// Presignature record ids per discard session: about 100 bytes each, so a chunk stays far
/// under a signer node's start limit.
const DISCARD_CHUNK: usize = 500;

#[derive(Clone, Debug)]
pub(super) struct PresignatureEntry {
    pub(super) id: String,
    pub(super) signers: Vec<u16>,
}

impl Coordinator {
    /// Tops up the presignature pool of one key that is below its target, if any.
    pub async fn refill_presignatures_once(&self) -> bool {
        let target = self.config.presignatures_per_key;
        let wanted = self
            .with_state(|state| {
                // The emptiest pool first; among equals, the key used most recently.
                state
                    .presignatures
                    .iter()
                    .filter(|(_, queue)| queue.len() < target)
                    .min_by_key(|(key, queue)| {
                        (
                            queue.len(),
                            std::cmp::Reverse(state.last_used.get(*key).copied()),
                        )
                    })
                    .map(|(key, _)| key.clone())
            })
            .flatten();
        let Some((tenant, key_id)) = wanted else {
            return false;
        };
        let Ok(signers) = self.signer_set(&[]) else {
            return false;
        };
        let presignature_id = hex::encode(session_id().get(..16).unwrap_or_default());
        let started = Instant::now();
        let kind = SessionKind::EcdsaPresign {
            tenant: tenant.clone(),
            key_id: key_id.clone(),
            presignature_id: presignature_id.clone(),
            signers_at_keygen: signers.clone(),
        };
        match self
            .relay(signers.clone(), kind, self.config.session_timeout)
            .await
        {
            Ok(outputs) => {
                let Some(first) = outputs.first().cloned() else {
                    return false;
                };
                if outputs.iter().any(|o| o != &first) {
                    tracing::error!(
                        key_id,
                        "parties disagree on presignature public data; discarded"
                    );
                    return false;
                }
                self.with_state(|state| {
                    if let Some(queue) = state.presignatures.get_mut(&(tenant, key_id)) {
                        queue.push_back(PresignatureEntry {
                            id: presignature_id,
                            signers,
                        });
                    }
                });
                PoolMetrics::add(&self.metrics.presignatures_generated, 1);
                PoolMetrics::add(
                    &self.metrics.presignature_generation_micros,
                    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                );
                true
            }
            Err(error) => {
                PoolMetrics::add(&self.metrics.presignature_failures, 1);
                tracing::warn!(%error, key_id, "presignature generation failed");
                false
            }
        }
    }

    /// Rebuilds the presignature index from what the parties hold in memory (a restarted
    /// coordinator, parties still running): a presignature is usable when every one of its
    /// signers still has it; one that some signer lost (it restarted, or consumed it just
    /// before a crash) is discarded at the others. Runs once every party answers, so "missing"
    /// really means missing. Returns whether the index is loaded.
    pub async fn load_presignatures(&self) -> bool {
        let _loading = self.load_lock.lock().await;
        if self.with_state(|s| s.presignatures_loaded).unwrap_or(true) {
            return true;
        }
        let Ok(all) = self.all_parties() else {
            return false;
        };
        let mut held: HashMap<ecdsa::ListedPresignature, Vec<u16>> = HashMap::new();
        for index in all {
            let listed = match self
                .relay(
                    vec![index],
                    SessionKind::ListPresignatures,
                    self.config.session_timeout,
                )
                .await
                .and_then(|outputs| {
                    let output = outputs.first().cloned().unwrap_or_default();
                    serde_json::from_slice::<Vec<ecdsa::ListedPresignature>>(&output)
                        .map_err(|e| protocol_error(format!("presignature list: {e}"), vec![index]))
                }) {
                Ok(listed) => listed,
                Err(error) => {
                    tracing::warn!(%error, party_index = index, "listing presignatures failed");
                    return false;
                }
            };
            for entry in listed {
                held.entry(entry).or_default().push(index);
            }
        }
        let mut usable = 0usize;
        let mut orphans: HashMap<u16, Vec<String>> = HashMap::new();
        self.with_state(|state| {
            for (entry, holders) in &held {
                if entry.signers.iter().all(|s| holders.contains(s)) {
                    let key = (entry.tenant.clone(), entry.key_id.clone());
                    state
                        .presignatures
                        .entry(key)
                        .or_default()
                        .push_back(PresignatureEntry {
                            id: entry.presignature_id.clone(),
                            signers: entry.signers.clone(),
                        });
                    usable += 1;
                } else {
                    for holder in holders {
                        orphans.entry(*holder).or_default().push(entry.record_id());
                    }
                }
            }
            state.presignatures_loaded = true;
        });
        self.discard_presignatures_at(orphans).await;
        tracing::info!(usable, "presignature index rebuilt from the parties");
        true
    }

    /// Presignatures ready per key: (tenant, key id, ready).
    pub fn presignature_depths(&self) -> Vec<(String, String, usize)> {
        self.with_state(|state| {
            state
                .presignatures
                .iter()
                .map(|((tenant, key), queue)| (tenant.clone(), key.clone(), queue.len()))
                .collect()
        })
        .unwrap_or_default()
    }

    /// The presignatures ready for a key: (id, signer set), in the order they will be used.
    pub fn presignatures(&self, tenant: &str, key_id: &str) -> Vec<(String, Vec<u16>)> {
        self.with_state(|state| {
            state
                .presignatures
                .get(&(tenant.to_string(), key_id.to_string()))
                .map(|queue| {
                    queue
                        .iter()
                        .map(|entry| (entry.id.clone(), entry.signers.clone()))
                        .collect()
                })
                .unwrap_or_default()
        })
        .unwrap_or_default()
    }

    pub(super) fn track_key(&self, tenant: &str, key_id: &str) {
        if self.config.presignatures_per_key == 0 {
            return;
        }
        self.with_state(|state| {
            let key = (tenant.to_string(), key_id.to_string());
            state
                .last_used
                .insert(key.clone(), std::time::Instant::now());
            state.presignatures.entry(key).or_default();
        });
    }

    /// Presignatures ready for a key (for metrics and tests).
    pub fn presignatures_ready(&self, tenant: &str, key_id: &str) -> usize {
        self.with_state(|state| {
            state
                .presignatures
                .get(&(tenant.to_string(), key_id.to_string()))
                .map_or(0, VecDeque::len)
        })
        .unwrap_or(0)
    }

    /// Takes the first presignature of a key whose signers are all available now.
    pub(super) fn take_presignature(
        &self,
        tenant: &str,
        key_id: &str,
    ) -> Option<PresignatureEntry> {
        self.with_state(|state| {
            let queue = state
                .presignatures
                .get_mut(&(tenant.to_string(), key_id.to_string()))?;
            let position = queue
                .iter()
                .position(|entry| entry.signers.iter().all(|&i| self.health.available(i)))?;
            queue.remove(position)
        })
        .flatten()
    }

    /// Drops from the index every presignature a party in `restarted` took part in — that
    /// party no longer holds its half, since one-time material does not outlive a party
    /// process (ADR 0009) — and asks the other signers to discard theirs.
    pub(super) async fn forget_presignatures_of(&self, restarted: &[u16]) -> usize {
        let mut orphans: HashMap<u16, Vec<String>> = HashMap::new();
        let dropped = self
            .with_state(|state| {
                let mut dropped = 0;
                for ((_, key_id), queue) in &mut state.presignatures {
                    queue.retain(|entry| {
                        if !entry.signers.iter().any(|s| restarted.contains(s)) {
                            return true;
                        }
                        let record_id =
                            ecdsa::presignature_record_id(key_id, &entry.id, &entry.signers);
                        for signer in entry.signers.iter().filter(|s| !restarted.contains(s)) {
                            orphans.entry(*signer).or_default().push(record_id.clone());
                        }
                        dropped += 1;
                        false
                    });
                }
                dropped
            })
            .unwrap_or(0);
        self.discard_presignatures_at(orphans).await;
        dropped
    }

    /// Asks each party to discard the presignatures listed for it (their other signers no
    /// longer hold theirs).
    /// Sent in chunks of [`DISCARD_CHUNK`] ids: a signer node refuses a start larger than its
    /// start limit (256 KiB), and a restart of a node with many keys can orphan thousands.
    async fn discard_presignatures_at(&self, orphans: HashMap<u16, Vec<String>>) {
        let chunks = orphans.into_iter().flat_map(|(index, record_ids)| {
            record_ids
                .chunks(DISCARD_CHUNK)
                .map(|chunk| (index, chunk.to_vec()))
                .collect::<Vec<_>>()
        });
        for (index, record_ids) in chunks {
            let count = u64::try_from(record_ids.len()).unwrap_or(u64::MAX);
            match self
                .relay(
                    vec![index],
                    SessionKind::DiscardPresignatures { record_ids },
                    self.config.session_timeout,
                )
                .await
            {
                Ok(_) => PoolMetrics::add(&self.metrics.presignatures_discarded, count),
                Err(error) => {
                    tracing::warn!(%error, party_index = index, "discarding orphaned presignatures failed")
                }
            }
        }
    }
}
