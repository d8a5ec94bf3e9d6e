//! What TLS costs the node transport: FROST Ed25519 signing (two rounds, all three nodes,
//! quorum 3) through `RemotePartyLink`s to three nodes served on loopback, over TLS and
//! over h2c, in alternating batches so both see the same machine load; and the time to
//! open a fresh connection (TLS handshake included) for a status request. The parties keep
//! their records in memory, so the figures are the transport and the protocol, not a
//! database. Prints min / p50 / p95 / p99 / max.
//!
//! Run: `cargo bench -p waas-signer --bench transport`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use waas_core::ports::{
    KeyGenRequest, ShareStore, ShareStoreError, SignPayload, SignRequest, SignerPool,
    SigningQuorum, StoredRecord,
};
use waas_core::{Scheme, TenantId, Threshold, WalletId};
use waas_signer::net::{NodeLimits, RemotePartyLink, ServeOptions, TransportSecurity};
use waas_signer::{
    Coordinator, CoordinatorConfig, CoordinatorTrust, IdentityKey, PartyConfig, PartyLink,
    PartyNode, PartyTrust,
};

const BATCHES: usize = 10;
const PER_BATCH: usize = 20;

#[derive(Debug, Default)]
struct MemoryStore(Mutex<BTreeMap<(String, String), StoredRecord>>);

#[async_trait]
impl ShareStore for MemoryStore {
    async fn insert(&self, record: StoredRecord) -> Result<(), ShareStoreError> {
        let key = (record.kind.clone(), record.id.clone());
        let mut map = self.0.lock().unwrap();
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
            .get(&(kind.into(), id.into()))
            .cloned())
    }
    async fn list_ids(&self, kind: &str) -> Result<Vec<String>, ShareStoreError> {
        let map = self.0.lock().unwrap();
        Ok(map
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
        match map.get_mut(&(kind.into(), id.into())) {
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
            .remove(&(kind.into(), id.into()))
            .is_some())
    }
}

/// Three nodes, each served over both transports (two listeners per node).
struct Pool {
    authority: Arc<IdentityKey>,
    parties: Vec<Arc<IdentityKey>>,
    ports: BTreeMap<&'static str, Vec<u16>>,
}

async fn pool(dir: &std::path::Path) -> Pool {
    let authority = Arc::new(IdentityKey::generate());
    let parties: Vec<Arc<IdentityKey>> =
        (0..3).map(|_| Arc::new(IdentityKey::generate())).collect();
    let publics: Vec<_> = parties.iter().map(|k| k.public()).collect();
    let mut ports: BTreeMap<&'static str, Vec<u16>> = BTreeMap::new();
    for index in 0..3u16 {
        let protector =
            waas_custody::LocalKeyProtector::open_or_create(&dir.join(format!("kek-{index}")))
                .unwrap();
        let node = Arc::new(PartyNode::new(
            PartyConfig {
                index,
                parties: 3,
                spare_primes: 0,
                generate_primes: false,
            },
            Arc::new(MemoryStore::default()),
            waas_custody::ProtectorSet::single(Arc::new(protector)),
            PartyTrust {
                identity: parties[usize::from(index)].clone(),
                authorities: vec![authority.public()],
                peers: publics.clone(),
            },
        ));
        for security in [TransportSecurity::Tls, TransportSecurity::Cleartext] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            ports
                .entry(name(security))
                .or_default()
                .push(listener.local_addr().unwrap().port());
            let options = ServeOptions {
                security,
                limits: NodeLimits::standard(),
                counters: Arc::default(),
            };
            tokio::spawn(waas_signer::net::serve_node(
                node.clone(),
                listener,
                options,
                std::future::pending(),
            ));
        }
    }
    Pool {
        authority,
        parties,
        ports,
    }
}

fn name(security: TransportSecurity) -> &'static str {
    match security {
        TransportSecurity::Tls => "tls",
        TransportSecurity::Cleartext => "h2c",
    }
}

impl Pool {
    fn links(&self, security: TransportSecurity) -> Vec<RemotePartyLink> {
        (0u16..3)
            .map(|i| {
                let port = self.ports[name(security)][usize::from(i)];
                RemotePartyLink::new(
                    i,
                    &format!("{}://127.0.0.1:{port}", security.scheme()),
                    self.parties[usize::from(i)].public(),
                    security,
                    self.authority.clone(),
                )
                .unwrap()
            })
            .collect()
    }

    fn coordinator(&self, security: TransportSecurity) -> Coordinator {
        Coordinator::new(
            CoordinatorConfig {
                threshold: Threshold::new(2, 3).unwrap(),
                session_timeout: Duration::from_secs(30),
                aux_timeout: Duration::from_secs(30),
                presignatures_per_key: 0,
                refill_time_share: 1.0,
                nonces_per_party: 0,
            },
            self.links(security)
                .into_iter()
                .map(|l| Arc::new(l) as Arc<dyn PartyLink>)
                .collect(),
            CoordinatorTrust {
                authority: self.authority.clone(),
                parties: self.parties.iter().map(|k| k.public()).collect(),
            },
        )
    }
}

struct FrostKey {
    tenant_id: TenantId,
    key_id: WalletId,
    public_key: Vec<u8>,
    public_data: Vec<u8>,
}

impl FrostKey {
    /// Signs one message with all three nodes; how long it took.
    async fn sign(&self, pool: &Coordinator, i: usize) -> Duration {
        let request = SignRequest {
            tenant_id: self.tenant_id,
            key_id: self.key_id,
            scheme: Scheme::FrostEd25519,
            payload: SignPayload::Message(format!("bench {i}").into_bytes()),
            public_key: self.public_key.clone(),
            public_data: self.public_data.clone(),
            quorum: Some(SigningQuorum {
                signing_quorum: 3,
                policy_version: 1,
                reference: "bench".into(),
            }),
        };
        let began = Instant::now();
        pool.sign(request).await.unwrap();
        began.elapsed()
    }
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!(
        "| {what} | {} | {} | {} | {} | {} | {} |",
        times.len(),
        ms(times[0]),
        ms(at(0.5)),
        ms(at(0.95)),
        ms(at(0.99)),
        ms(*times.last().unwrap())
    );
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("waas-bench-transport-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pool = pool(&dir).await;
    // One key, made over TLS; both coordinators sign with it (the parties are the same).
    let tls = pool.coordinator(TransportSecurity::Tls);
    let h2c = pool.coordinator(TransportSecurity::Cleartext);
    let (tenant_id, key_id) = (TenantId::new(), WalletId::new());
    let key = tls
        .generate_key(KeyGenRequest {
            tenant_id,
            key_id,
            scheme: Scheme::FrostEd25519,
            protection: "local".into(),
        })
        .await
        .unwrap();
    let key = FrostKey {
        tenant_id,
        key_id,
        public_key: key.public_key,
        public_data: key.public_data,
    };
    let sign = |pool, i| key.sign(pool, i);
    // Warm both (connections open, code paths hot).
    for i in 0..5 {
        sign(&tls, i).await;
        sign(&h2c, i).await;
    }
    let (mut over_tls, mut over_h2c) = (Vec::new(), Vec::new());
    for batch in 0..BATCHES {
        for i in 0..PER_BATCH {
            let n = batch * PER_BATCH + i;
            if batch % 2 == 0 {
                over_tls.push(sign(&tls, n).await);
                over_h2c.push(sign(&h2c, n).await);
            } else {
                over_h2c.push(sign(&h2c, n).await);
                over_tls.push(sign(&tls, n).await);
            }
        }
    }
    println!("| operation | n | min | p50 | p95 | p99 | max |\n|---|---|---|---|---|---|---|");
    report("FROST sign, 3 of 3 nodes, two rounds, TLS", over_tls);
    report("FROST sign, 3 of 3 nodes, two rounds, h2c", over_h2c);
    // A fresh connection per status request: connect (+ TLS handshake) + one request.
    for security in [TransportSecurity::Tls, TransportSecurity::Cleartext] {
        let mut times = Vec::new();
        for _ in 0..50 {
            let link = pool.links(security).swap_remove(0);
            let began = Instant::now();
            link.status().await.unwrap();
            times.push(began.elapsed());
        }
        report(
            &format!("status on a new connection, {}", name(security)),
            times,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
