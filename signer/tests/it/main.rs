//! Signer-pool tests: FROST across several t-of-n shapes, verified by ed25519-dalek, and
//! a tampering party named as the culprit; CGGMP ECDSA quorums and blame in `ecdsa_quorum`;
//! the node transport (TLS, limits, hostile peers) in `net`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use async_trait::async_trait;
use ed25519_dalek::Verifier;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use waas_core::ports::{
    KeyGenRequest, ShareStore, ShareStoreError, SignPayload, SignRequest, SignatureOutput,
    SignerError, SignerPool, StoredRecord,
};
use waas_core::{Scheme, TenantId, Threshold, WalletId};
use waas_custody::LocalKeyProtector;
use waas_signer::{
    Coordinator, CoordinatorConfig, CoordinatorTrust, IdentityKey, LocalPartyLink, PartyConfig,
    PartyLink, PartyNode, PartySession, PartyStatus, PartyTrust, PublicIdentity, SignedStart,
};

mod ecdsa_quorum;
mod health;
mod net;
mod restore;
mod trust;

/// The keys of a test pool: the control plane's and every party's.
struct Keys {
    authority: Arc<IdentityKey>,
    parties: Vec<Arc<IdentityKey>>,
}

impl Keys {
    fn new(n: u16) -> Self {
        Self {
            authority: Arc::new(IdentityKey::generate()),
            parties: (0..n).map(|_| Arc::new(IdentityKey::generate())).collect(),
        }
    }
    fn publics(&self) -> Vec<PublicIdentity> {
        self.parties.iter().map(|k| k.public()).collect()
    }
}

/// `n` in-process parties with their keys.
fn pool_parties(n: u16) -> (Vec<Arc<PartyNode>>, Keys) {
    let dir = fresh_dir();
    let stores = (0..n).map(|_| Arc::new(MemoryStore::default())).collect();
    pool_parties_in(&dir, stores)
}

/// A new, empty directory for a test pool's key files.
fn fresh_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("waas-signer-it-{}", uuid::Uuid::now_v7().simple()))
}

/// One in-process party per store, with KEK files `dir/kek-{index}` (created if missing).
fn pool_parties_in(
    dir: &std::path::Path,
    stores: Vec<Arc<MemoryStore>>,
) -> (Vec<Arc<PartyNode>>, Keys) {
    let n = u16::try_from(stores.len()).unwrap();
    let keys = Keys::new(n);
    let nodes = stores
        .into_iter()
        .zip(0..n)
        .map(|(store, index)| party_node(dir, &keys, index, store))
        .collect();
    (nodes, keys)
}

/// Party `index` of the pool `keys` describes, on `store` and the KEK file `dir/kek-{index}`
/// (created if missing): a (re)start of that party.
fn party_node(
    dir: &std::path::Path,
    keys: &Keys,
    index: u16,
    store: Arc<MemoryStore>,
) -> Arc<PartyNode> {
    let protector = LocalKeyProtector::open_or_create(&dir.join(format!("kek-{index}"))).unwrap();
    Arc::new(PartyNode::new(
        PartyConfig {
            index,
            parties: u16::try_from(keys.parties.len()).unwrap(),
            spare_primes: 0,
            generate_primes: false,
        },
        store,
        waas_custody::ProtectorSet::single(Arc::new(protector)),
        PartyTrust {
            identity: keys.parties[usize::from(index)].clone(),
            authorities: vec![keys.authority.public()],
            peers: keys.publics(),
        },
    ))
}

/// A party store in memory (the real one is SQLite; this keeps the protocol tests fast).
#[derive(Debug, Default)]
struct MemoryStore(Mutex<BTreeMap<(String, String), StoredRecord>>);

impl MemoryStore {
    /// A copy of everything the store holds now: a backup.
    fn snapshot(&self) -> MemoryStore {
        MemoryStore(Mutex::new(self.0.lock().unwrap().clone()))
    }

    /// The kinds of the records it holds.
    fn kinds(&self) -> std::collections::BTreeSet<String> {
        self.0
            .lock()
            .unwrap()
            .keys()
            .map(|(kind, _)| kind.clone())
            .collect()
    }
}

#[async_trait]
impl ShareStore for MemoryStore {
    async fn insert(&self, record: StoredRecord) -> Result<(), ShareStoreError> {
        let mut map = self.0.lock().unwrap();
        let key = (record.kind.clone(), record.id.clone());
        if map.contains_key(&key) {
            return Err(ShareStoreError("duplicate".into()));
        }
        map.insert(key, record);
        Ok(())
    }
    async fn get(&self, kind: &str, id: &str) -> Result<Option<StoredRecord>, ShareStoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(&(kind.to_string(), id.to_string()))
            .cloned())
    }
    async fn list_ids(&self, kind: &str) -> Result<Vec<String>, ShareStoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .keys()
            .filter(|(k, _)| k == kind)
            .map(|(_, id)| id.clone())
            .collect())
    }
    async fn replace(
        &self,
        kind: &str,
        id: &str,
        expected: &[u8],
        sealed: Vec<u8>,
    ) -> Result<bool, ShareStoreError> {
        let mut map = self.0.lock().unwrap();
        match map.get_mut(&(kind.to_string(), id.to_string())) {
            Some(record) if record.sealed == expected => {
                record.sealed = sealed;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn delete(&self, kind: &str, id: &str) -> Result<bool, ShareStoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .remove(&(kind.to_string(), id.to_string()))
            .is_some())
    }
}

fn coordinator(threshold: Threshold, links: Vec<Arc<dyn PartyLink>>, keys: &Keys) -> Coordinator {
    Coordinator::new(
        CoordinatorConfig {
            threshold,
            session_timeout: Duration::from_secs(30),
            aux_timeout: Duration::from_secs(30),
            presignatures_per_key: 0,
            refill_time_share: 1.0,
            nonces_per_party: 2,
        },
        links,
        CoordinatorTrust {
            authority: keys.authority.clone(),
            parties: keys.publics(),
        },
    )
}

/// Runs a FROST key generation that must fail; returns the blamed parties and the reason.
async fn failed_frost_keygen(pool: &Coordinator) -> (Vec<u16>, String) {
    let error = pool
        .generate_key(KeyGenRequest {
            tenant_id: TenantId::new(),
            key_id: WalletId::new(),
            scheme: Scheme::FrostEd25519,
            protection: "local".into(),
        })
        .await
        .unwrap_err();
    let SignerError::ProtocolFailed { culprits, reason } = error else {
        panic!("{error:?}")
    };
    (culprits, reason)
}

fn local_links(nodes: &[Arc<PartyNode>]) -> Vec<Arc<dyn PartyLink>> {
    nodes
        .iter()
        .map(|node| Arc::new(LocalPartyLink::new(node.clone())) as Arc<dyn PartyLink>)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frost_keys_sign_across_thresholds() {
    for (t, n) in [(2, 3), (3, 3), (3, 5)] {
        let threshold = Threshold::new(t, n).unwrap();
        let (nodes, keys) = pool_parties(n);
        let pool = coordinator(threshold, local_links(&nodes), &keys);
        pool.upkeep_once().await;
        let tenant_id = TenantId::new();
        let key_id = WalletId::new();
        let key = pool
            .generate_key(KeyGenRequest {
                tenant_id,
                key_id,
                scheme: Scheme::FrostEd25519,
                protection: "local".into(),
            })
            .await
            .unwrap();
        assert_eq!(key.threshold, threshold);
        let verifying =
            ed25519_dalek::VerifyingKey::from_bytes(&key.public_key.clone().try_into().unwrap())
                .unwrap();
        // Several signatures, so the rotating signer sets cover different subsets; the
        // first three run both FROST rounds, the rest use precommitted nonces (one round).
        for round in 0..6u8 {
            if round == 3 {
                while pool.refill_nonces_once().await {}
            }
            let message = format!("payout {round} of {t}-of-{n}").into_bytes();
            let output = pool
                .sign(SignRequest {
                    tenant_id,
                    key_id,
                    scheme: Scheme::FrostEd25519,
                    payload: SignPayload::Message(message.clone()),
                    public_key: key.public_key.clone(),
                    public_data: key.public_data.clone(),
                    quorum: None,
                })
                .await
                .unwrap();
            let SignatureOutput::Ed25519(bytes) = output.output else {
                panic!("expected Ed25519")
            };
            verifying
                .verify(&message, &ed25519_dalek::Signature::from_bytes(&bytes))
                .unwrap();
        }
        let metrics = pool.metrics();
        let hits = waas_signer::metrics::PoolMetrics::get(&metrics.nonce_hits);
        let misses = waas_signer::metrics::PoolMetrics::get(&metrics.nonce_misses);
        // Two nonces per party cover at least two one-round signatures in every shape.
        assert_eq!(hits + misses, 6);
        assert!(
            misses >= 3,
            "{t}-of-{n}: the first three signatures had no nonces"
        );
        assert!(hits >= 2, "{t}-of-{n}: only {hits} one-round signatures");
        // Another tenant's request for the same key id finds no share anywhere.
        let error = pool
            .sign(SignRequest {
                tenant_id: TenantId::new(),
                key_id,
                scheme: Scheme::FrostEd25519,
                payload: SignPayload::Message(b"x".to_vec()),
                public_key: key.public_key.clone(),
                public_data: key.public_data.clone(),
                quorum: None,
            })
            .await
            .unwrap_err();
        assert!(
            matches!(error, SignerError::ProtocolFailed { .. }),
            "{error:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdsa_keygen_is_refused_until_aux_info_exists() {
    let (nodes, keys) = pool_parties(3);
    let pool = coordinator(Threshold::new(2, 3).unwrap(), local_links(&nodes), &keys);
    pool.upkeep_once().await;
    let error = pool
        .generate_key(KeyGenRequest {
            tenant_id: TenantId::new(),
            key_id: WalletId::new(),
            scheme: Scheme::EcdsaSecp256k1,
            protection: "local".into(),
        })
        .await
        .unwrap_err();
    let SignerError::Warming {
        retry_after_secs,
        detail,
    } = error
    else {
        panic!("{error:?}")
    };
    assert!(retry_after_secs >= 5);
    assert!(detail.contains("primes"), "{detail}");
}

/// What a [`Tampering`] link does to sealed party messages after each sender's handshake.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tamper {
    /// Flip one byte.
    Alter,
    /// Deliver every message twice.
    Replay,
}

/// A link that tampers with every message relayed *to* its party from another party: a
/// relay or network attacker acting on end-to-end sealed messages in transit.
#[derive(Debug)]
struct Tampering {
    inner: LocalPartyLink,
    index: u16,
    tamper: Tamper,
}

#[async_trait]
impl PartyLink for Tampering {
    fn index(&self) -> u16 {
        self.index
    }
    async fn open(&self, start: SignedStart) -> Result<PartySession, SignerError> {
        let PartySession {
            to_party,
            from_party,
        } = self.inner.open(start).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<waas_signer::WireMessage>(256);
        let tamper = self.tamper;
        tokio::spawn(async move {
            let mut seen_from: Vec<u16> = Vec::new();
            while let Some(mut message) = rx.recv().await {
                let mut copies = 1;
                if let Some(from) = message.from {
                    // The first message of each sender is its handshake; tamper with the
                    // sealed protocol messages after it.
                    if seen_from.contains(&from) {
                        match tamper {
                            Tamper::Alter => {
                                if let Some(byte) = message.payload.last_mut() {
                                    *byte ^= 0x01;
                                }
                            }
                            Tamper::Replay => copies = 2,
                        }
                    } else {
                        seen_from.push(from);
                    }
                }
                for _ in 0..copies {
                    if to_party.send(message.clone()).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(PartySession {
            to_party: tx,
            from_party,
        })
    }
    async fn status(&self) -> Result<PartyStatus, SignerError> {
        self.inner.status().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_replayed_in_transit_is_rejected_naming_its_sender() {
    let (nodes, keys) = pool_parties(3);
    let mut links = local_links(&nodes);
    links[2] = Arc::new(Tampering {
        inner: LocalPartyLink::new(nodes[2].clone()),
        index: 2,
        tamper: Tamper::Replay,
    });
    let pool = coordinator(Threshold::new(2, 3).unwrap(), links, &keys);
    let (culprits, reason) = failed_frost_keygen(&pool).await;
    assert_eq!(culprits.len(), 1, "{reason}");
    assert!(
        culprits[0] == 0 || culprits[0] == 1,
        "{culprits:?}: {reason}"
    );
    assert!(reason.contains("replayed"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_altered_in_transit_is_rejected_naming_its_sender() {
    let (nodes, keys) = pool_parties(3);
    let mut links = local_links(&nodes);
    links[2] = Arc::new(Tampering {
        inner: LocalPartyLink::new(nodes[2].clone()),
        index: 2,
        tamper: Tamper::Alter,
    });
    let pool = coordinator(Threshold::new(2, 3).unwrap(), links, &keys);
    let (culprits, reason) = failed_frost_keygen(&pool).await;
    // Party 2 received altered messages from parties 0 and 1; it names the sender of the
    // first one it could not open.
    assert_eq!(culprits.len(), 1, "{reason}");
    assert!(
        culprits[0] == 0 || culprits[0] == 1,
        "{culprits:?}: {reason}"
    );
    assert!(reason.contains("does not authenticate"), "{reason}");
}

/// Counts the sessions opened at its party.
#[derive(Debug)]
struct Counting {
    inner: LocalPartyLink,
    index: u16,
    opened: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait]
impl PartyLink for Counting {
    fn index(&self) -> u16 {
        self.index
    }
    async fn open(&self, start: SignedStart) -> Result<PartySession, SignerError> {
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.open(start).await
    }
    async fn status(&self) -> Result<PartyStatus, SignerError> {
        self.inner.status().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_quorum_of_five_signs_with_five_of_seven_nodes() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (nodes, keys) = pool_parties(7);
    let counters: Vec<Arc<AtomicUsize>> = (0..7).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let links: Vec<Arc<dyn PartyLink>> = nodes
        .iter()
        .zip(&counters)
        .map(|(node, opened)| {
            Arc::new(Counting {
                inner: LocalPartyLink::new(node.clone()),
                index: node.index(),
                opened: opened.clone(),
            }) as Arc<dyn PartyLink>
        })
        .collect();
    let pool = coordinator(Threshold::new(2, 7).unwrap(), links, &keys);
    let (tenant_id, key_id) = (TenantId::new(), WalletId::new());
    let key = pool
        .generate_key(KeyGenRequest {
            tenant_id,
            key_id,
            scheme: Scheme::FrostEd25519,
            protection: "local".into(),
        })
        .await
        .unwrap();
    let verifying =
        ed25519_dalek::VerifyingKey::from_bytes(&key.public_key.clone().try_into().unwrap())
            .unwrap();
    let sign = |quorum: Option<u16>| {
        let request = SignRequest {
            tenant_id,
            key_id,
            scheme: Scheme::FrostEd25519,
            payload: SignPayload::Message(b"pay 500k".to_vec()),
            public_key: key.public_key.clone(),
            public_data: key.public_data.clone(),
            quorum: quorum.map(|q| waas_core::ports::SigningQuorum {
                signing_quorum: q,
                policy_version: 1,
                reference: "tx-500k".into(),
            }),
        };
        let pool = &pool;
        async move { pool.sign(request).await }
    };
    let opened = |counters: &[Arc<AtomicUsize>]| -> usize {
        counters.iter().map(|c| c.swap(0, Ordering::SeqCst)).sum()
    };
    opened(&counters);

    for (quorum, expected) in [(Some(5), 5), (None, 2), (Some(7), 7)] {
        let signed = sign(quorum).await.unwrap();
        assert_eq!(signed.signers.len(), expected, "quorum {quorum:?}");
        assert!(signed.signers.windows(2).all(|w| w[0] < w[1]));
        let SignatureOutput::Ed25519(bytes) = signed.output else {
            panic!("expected Ed25519")
        };
        verifying
            .verify(b"pay 500k", &ed25519_dalek::Signature::from_bytes(&bytes))
            .unwrap();
        assert_eq!(opened(&counters), expected, "quorum {quorum:?}");
    }
    let error = sign(Some(8)).await.unwrap_err();
    assert!(
        matches!(error, SignerError::Unavailable { needed: 8, .. }),
        "{error:?}"
    );
}
