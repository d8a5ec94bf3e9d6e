//! The FROST nonce pool: round-1 nonce pairs precommitted at each party per Ed25519 key, so
//! FROST signing is one round; refills and taking a signer set's nonces for a signature.

use super::{Coordinator, protocol_error};
use crate::eddsa;
use crate::transport::SessionKind;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A FROST nonce pair precommitted at a party: its id and public commitments.
#[derive(Clone, Debug)]
pub(super) struct NonceEntry {
    pub(super) id: String,
    pub(super) commitments: Vec<u8>,
    created: Instant,
}

/// How long a coordinator offers a precommitted nonce (parties accept them for an hour).
const NONCE_USE_WINDOW: Duration = Duration::from_secs(3000);

impl Coordinator {
    pub(super) fn track_frost_key(&self, tenant: &str, key_id: &str) {
        if self.config.nonces_per_party == 0 {
            return;
        }
        self.with_state(|state| {
            state
                .nonces
                .entry((tenant.to_string(), key_id.to_string()))
                .or_default();
        });
    }

    /// Tops up the precommitted nonces of one (key, party) below target. Cheap (a few
    /// milliseconds), so it runs outside the refill budget.
    pub async fn refill_nonces_once(&self) -> bool {
        let target = self.config.nonces_per_party;
        let wanted = self
            .with_state(|state| {
                for ((tenant, key_id), parties) in &mut state.nonces {
                    for party in 0..self.config.threshold.n() {
                        let queue = parties.entry(party).or_default();
                        queue.retain(|entry| entry.created.elapsed() < NONCE_USE_WINDOW);
                        if queue.len() < target && self.health.available(party) {
                            return Some((
                                tenant.clone(),
                                key_id.clone(),
                                party,
                                target - queue.len(),
                            ));
                        }
                    }
                }
                None
            })
            .flatten();
        let Some((tenant, key_id, party, missing)) = wanted else {
            return false;
        };
        let kind = SessionKind::EddsaPrecommit {
            tenant: tenant.clone(),
            key_id: key_id.clone(),
            count: u16::try_from(missing).unwrap_or(u16::MAX),
        };
        let announced = self
            .relay(vec![party], kind, self.config.session_timeout)
            .await
            .and_then(|outputs| {
                let output = outputs.first().cloned().unwrap_or_default();
                serde_json::from_slice::<Vec<eddsa::Precommitment>>(&output)
                    .map_err(|e| protocol_error(format!("precommitments: {e}"), vec![party]))
            });
        match announced {
            Ok(announced) => {
                let created = Instant::now();
                self.with_state(|state| {
                    if let Some(parties) = state.nonces.get_mut(&(tenant, key_id)) {
                        let queue = parties.entry(party).or_default();
                        queue.extend(announced.into_iter().map(|p| NonceEntry {
                            id: p.nonce_id,
                            commitments: p.commitments,
                            created,
                        }));
                    }
                });
                true
            }
            Err(error) => {
                tracing::warn!(%error, party_index = party, "precommitting nonces failed");
                false
            }
        }
    }

    /// A signer set whose members all hold a fresh precommitted nonce for the key, with one
    /// nonce taken from each (so no other request can pick the same ones).
    pub(super) fn take_nonces(
        &self,
        tenant: &str,
        key_id: &str,
        exclude: &[u16],
        t: usize,
    ) -> Option<(Vec<u16>, Vec<NonceEntry>)> {
        let key = (tenant.to_string(), key_id.to_string());
        let candidates: Vec<u16> = self
            .with_state(|state| {
                let parties = state.nonces.get_mut(&key)?;
                Some(
                    parties
                        .iter_mut()
                        .filter_map(|(party, queue)| {
                            queue.retain(|entry| entry.created.elapsed() < NONCE_USE_WINDOW);
                            (!queue.is_empty()
                                && !exclude.contains(party)
                                && self.health.available(*party))
                            .then_some(*party)
                        })
                        .collect(),
                )
            })
            .flatten()?;
        if candidates.len() < t {
            return None;
        }
        let signers = self.pick(candidates, t);
        let entries: Option<Vec<NonceEntry>> = self
            .with_state(|state| {
                let parties = state.nonces.get_mut(&key)?;
                signers
                    .iter()
                    .map(|party| parties.get_mut(party).and_then(VecDeque::pop_front))
                    .collect()
            })
            .flatten();
        entries.map(|entries| (signers, entries))
    }

    /// Drops every nonce indexed at a party in `restarted`: a restarted party holds none of
    /// the nonces it precommitted before (ADR 0009). Returns how many were dropped.
    pub(super) fn forget_nonces_of(&self, restarted: &[u16]) -> usize {
        self.with_state(|state| {
            let mut dropped = 0;
            for parties in state.nonces.values_mut() {
                for party in restarted {
                    dropped += parties.remove(party).map_or(0, |queue| queue.len());
                }
            }
            dropped
        })
        .unwrap_or(0)
    }

    /// Precommitted nonces indexed for a key, per party: (pool index, ready).
    pub fn nonces_ready(&self, tenant: &str, key_id: &str) -> Vec<(u16, usize)> {
        self.with_state(|state| {
            state
                .nonces
                .get(&(tenant.to_string(), key_id.to_string()))
                .map(|parties| {
                    parties
                        .iter()
                        .map(|(party, queue)| (*party, queue.len()))
                        .collect()
                })
                .unwrap_or_default()
        })
        .unwrap_or_default()
    }
}
