//! A signer party: its own sealed store and key-encryption key, the sessions it runs, and
//! the background upkeep of its Paillier prime pool.

use crate::ecdsa::{self, AUX_ID, SessionFailure, SessionIo};
use crate::eddsa;
use crate::transport::{PartyEvent, PartyStatus, SessionKind, SessionStart, WireMessage};
use crate::vault::{POOL_TENANT, Vault, kind};
use cggmp24::PregeneratedPrimes;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use waas_core::ports::{ShareStore, SignerError};
use waas_custody::ProtectorSet;

/// How one party is set up.
#[derive(Clone, Debug)]
pub struct PartyConfig {
    /// 0-based index in the pool.
    pub index: u16,
    /// Pool size `n`.
    pub parties: u16,
    /// Prime sets to keep on hand once aux info exists (for the next aux-info run).
    pub spare_primes: u32,
    /// Whether this party generates primes in the background at all.
    pub generate_primes: bool,
}

/// What a rotation pass did at one party.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RotationReport {
    pub party_index: u16,
    /// KEK versions made current by this pass.
    pub new_keks: Vec<String>,
    pub rewrapped: u64,
    pub already_current: u64,
    pub changed_meanwhile: u64,
}

/// One signer party.
#[derive(Debug)]
pub struct PartyNode {
    config: PartyConfig,
    vault: Vault,
    generating_since: Mutex<Option<Instant>>,
}

impl PartyNode {
    pub fn new(config: PartyConfig, store: Arc<dyn ShareStore>, protectors: ProtectorSet) -> Self {
        let vault = Vault::new(config.index, store, protectors);
        Self {
            config,
            vault,
            generating_since: Mutex::new(None),
        }
    }

    pub fn index(&self) -> u16 {
        self.config.index
    }

    pub async fn status(&self) -> PartyStatus {
        let aux_ready = self
            .vault
            .list(kind::ECDSA_AUX)
            .await
            .map(|ids| ids.iter().any(|id| id == AUX_ID))
            .unwrap_or(false);
        let primes_available = self
            .vault
            .list(kind::PRIMES)
            .await
            .map(|ids| u32::try_from(ids.len()).unwrap_or(u32::MAX))
            .unwrap_or(0);
        let generating_primes_for_secs = self
            .generating_since
            .lock()
            .ok()
            .and_then(|since| since.map(|at| at.elapsed().as_secs()));
        PartyStatus {
            index: self.config.index,
            aux_ready,
            primes_available,
            generating_primes_for_secs,
        }
    }

    /// Checks that this party's key-encryption key opens what its store holds: a node with a
    /// wrong KEK refuses to start rather than failing every request later.
    pub async fn self_check(&self) -> Result<(), SignerError> {
        if let Some(id) = self.vault.list(kind::ECDSA_AUX).await?.first() {
            self.vault.get(kind::ECDSA_AUX, POOL_TENANT, id).await?;
        } else if let Some(id) = self.vault.list(kind::PRIMES).await?.first() {
            self.vault.get(kind::PRIMES, POOL_TENANT, id).await?;
        }
        Ok(())
    }

    /// Deletes every stored presignature. The coordinator that knew of them lives in the same
    /// process and has just started without them, so they would never be used; deleting them
    /// keeps the store from growing. (A durable presignature index replaces this once parties
    /// run as separate processes.)
    pub async fn discard_presignatures(&self) -> Result<usize, SignerError> {
        let ids = self.vault.list(kind::ECDSA_PRESIGNATURE).await?;
        for id in &ids {
            self.vault.delete(kind::ECDSA_PRESIGNATURE, id).await?;
        }
        Ok(ids.len())
    }

    /// Key-encryption-key rotation at this party: optionally makes a new KEK version current
    /// (where the protector can), then re-wraps every record still under an older version.
    pub async fn rotate_keys(&self, new_version: bool) -> Result<RotationReport, SignerError> {
        let mut new_keks = Vec::new();
        if new_version {
            for (protector, result) in self.vault.rotate_protectors().await {
                match result {
                    Ok(kek_id) => new_keks.push(kek_id),
                    Err(error) => {
                        tracing::info!(party_index = self.config.index, %protector, %error, "not rotated")
                    }
                }
            }
        }
        let rewrap = self.vault.rewrap_all(&kind::ALL).await?;
        tracing::info!(
            party_index = self.config.index,
            ?rewrap,
            "key rotation pass finished"
        );
        Ok(RotationReport {
            party_index: self.config.index,
            new_keks,
            rewrapped: rewrap.rewrapped,
            already_current: rewrap.already_current,
            changed_meanwhile: rewrap.changed_meanwhile,
        })
    }

    /// Adds an externally generated prime set to this party's pool.
    pub async fn import_primes(&self, primes: &PregeneratedPrimes) -> Result<(), SignerError> {
        ecdsa::store_primes(&self.vault, primes).await
    }

    /// Keeps the prime pool filled: one set while aux info is missing, `spare_primes` after.
    pub fn spawn_prime_upkeep(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let node = self.clone();
        tokio::spawn(async move {
            if !node.config.generate_primes {
                return;
            }
            let mut backoff = Duration::from_secs(2);
            loop {
                let status = node.status().await;
                let wanted = if status.aux_ready {
                    node.config.spare_primes
                } else {
                    1
                };
                if status.primes_available < wanted {
                    if let Ok(mut since) = node.generating_since.lock() {
                        *since = Some(Instant::now());
                    }
                    tracing::info!(
                        party_index = node.config.index,
                        "generating Paillier primes"
                    );
                    let result = ecdsa::generate_and_store_primes(&node.vault).await;
                    if let Ok(mut since) = node.generating_since.lock() {
                        *since = None;
                    }
                    match result {
                        Ok(()) => {
                            tracing::info!(
                                party_index = node.config.index,
                                "Paillier primes ready"
                            );
                            backoff = Duration::from_secs(2);
                        }
                        Err(error) => {
                            tracing::error!(party_index = node.config.index, %error, "prime generation failed");
                            backoff = (backoff * 2).min(Duration::from_secs(300));
                        }
                    }
                }
                tokio::time::sleep(backoff).await;
            }
        })
    }

    /// Runs one session to its end and reports the output or the failure.
    pub async fn run_session(
        self: Arc<Self>,
        start: SessionStart,
        inbox: mpsc::Receiver<WireMessage>,
        outbox: mpsc::Sender<PartyEvent>,
    ) {
        let report = outbox.clone();
        let result = self.dispatch(start, inbox, outbox).await;
        let event = match result {
            Ok(output) => PartyEvent::Output(output),
            Err(SessionFailure {
                reason,
                culprits,
                kind,
            }) => {
                tracing::warn!(party_index = self.config.index, %reason, ?culprits, ?kind, "session failed");
                PartyEvent::Failed {
                    reason,
                    culprits,
                    kind,
                }
            }
        };
        let _ = report.send(event).await;
    }

    async fn dispatch(
        &self,
        start: SessionStart,
        inbox: mpsc::Receiver<WireMessage>,
        outbox: mpsc::Sender<PartyEvent>,
    ) -> Result<Vec<u8>, SessionFailure> {
        let me = start
            .participants
            .iter()
            .position(|&p| p == self.config.index)
            .and_then(|seat| u16::try_from(seat).ok())
            .ok_or_else(|| SessionFailure::new("this party is not a participant of the session"))?;
        let size = u16::try_from(start.participants.len()).unwrap_or(u16::MAX);
        let io = SessionIo {
            session_id: start.session_id,
            me,
            size,
            inbox,
            outbox,
        };
        let vault = &self.vault;
        let all_parties = size == self.config.parties;
        let require_all = |what: &str| {
            if all_parties {
                Ok(())
            } else {
                Err(SessionFailure::new(format!(
                    "{what} needs every party of the pool"
                )))
            }
        };
        match start.kind {
            SessionKind::EcdsaAuxInfo => {
                require_all("aux info")?;
                ecdsa::run_aux_info(vault, io).await
            }
            SessionKind::EcdsaKeygen {
                tenant,
                key_id,
                threshold,
                protection,
            } => {
                require_all("key generation")?;
                ecdsa::run_keygen(vault, io, &tenant, &key_id, threshold, &protection).await
            }
            SessionKind::EcdsaSign {
                tenant,
                key_id,
                digest,
                signers_at_keygen,
            } => {
                ecdsa::run_sign(
                    vault,
                    io,
                    self.config.index,
                    &tenant,
                    &key_id,
                    digest,
                    &signers_at_keygen,
                )
                .await
            }
            SessionKind::EcdsaPresign {
                tenant,
                key_id,
                presignature_id,
                signers_at_keygen,
            } => {
                ecdsa::run_presign(
                    vault,
                    io,
                    self.config.index,
                    &tenant,
                    &key_id,
                    &presignature_id,
                    &signers_at_keygen,
                )
                .await
            }
            SessionKind::EcdsaSignPresigned {
                tenant,
                key_id,
                presignature_id,
                digest,
            } => ecdsa::run_presigned_sign(vault, &tenant, &key_id, &presignature_id, digest).await,
            SessionKind::EddsaKeygen {
                tenant,
                key_id,
                threshold,
                protection,
            } => {
                require_all("key generation")?;
                eddsa::run_keygen(vault, io, &tenant, &key_id, threshold, &protection).await
            }
            SessionKind::EddsaSign {
                tenant,
                key_id,
                message,
            } => eddsa::run_sign(vault, io, &tenant, &key_id, &message).await,
        }
    }
}
