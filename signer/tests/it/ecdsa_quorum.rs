//! CGGMP ECDSA through the real coordinator: signing quorums larger than the threshold,
//! every payload kind (each signature verified independently with k256), presignatures only
//! for payloads the parties hash themselves, and no blame when every party fails alike.
//!
//! Paillier primes come from a committed fixture (`tests/fixtures/primes/party-<n>.json`,
//! test-only, never for production: the primes are public). Auxiliary info for a pool size
//! takes minutes, so it is generated once and the parties' sealed records and KEK files are
//! cached in the target directory, keyed by a fingerprint of the record formats.

use super::*;
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use sha3::{Digest as _, Keccak256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use waas_core::ports::{GeneratedKey, PoolSignature, SigningQuorum};
use waas_signer::health::BreakerState;
use waas_signer::metrics::PoolMetrics;
use waas_signer::secure::{self, EventVerifier};
use waas_signer::{FailureKind, PartyEvent, PartyPrimesFile, Preimage, SessionKind, SessionStart};

const PRIMES_FIXTURE: &str = "tests/fixtures/primes";
const AUX_KIND: &str = "cggmp-aux-info";

/// The committed primes file of party `index` (`party-<index+1>.json`).
fn fixture_path(index: u16) -> PathBuf {
    PartyPrimesFile::path_in(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(PRIMES_FIXTURE),
        index,
    )
}

/// Party `index`'s fixture primes. The committed files are public test data (a checkout
/// leaves them 0644), so they are parsed directly, with the index check only.
fn fixture_primes(index: u16) -> PartyPrimesFile {
    let path = fixture_path(index);
    PartyPrimesFile::from_json(&std::fs::read(&path).unwrap(), index, &path)
        .expect("the primes fixture (see write_seven_party_primes_fixture)")
}

/// Writes the seven-party primes fixture (test-only; never for production): one file per
/// party, generating those that are missing. Run once, in release: `cargo test -p
/// waas-signer --release --test it -- --ignored write_seven_party_primes_fixture`
/// (minutes of CPU per party). Parties 1–3 are the API tests' fixture.
#[test]
#[ignore = "generates the committed primes fixture"]
fn write_seven_party_primes_fixture() {
    let started = std::time::Instant::now();
    let missing: Vec<u16> = (0..7).filter(|&i| !fixture_path(i).exists()).collect();
    let handles: Vec<_> = missing
        .iter()
        .map(|&i| std::thread::spawn(move || PartyPrimesFile::generate(i)))
        .collect();
    for (&index, handle) in missing.iter().zip(handles) {
        let path = fixture_path(index);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        handle.join().unwrap().write_new(&path).unwrap();
    }
    eprintln!("{} prime sets took {:?}", missing.len(), started.elapsed());
}

/// A fingerprint of what shapes a stored aux-info record (sealing, record kinds and
/// contexts, the primes), so a cached pool is rebuilt when that code changes.
fn aux_fingerprint(n: u16) -> String {
    use sha2::{Digest, Sha256};
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<PathBuf> = [
        "signer/src/vault.rs",
        "core/src/ports.rs",
        "core/src/secret.rs",
    ]
    .iter()
    .map(|f| workspace.join(f))
    .collect();
    let mut custody: Vec<PathBuf> = std::fs::read_dir(workspace.join("custody/src"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    custody.sort();
    files.extend(custody);
    files.extend((0..7).map(fixture_path));
    let mut hasher = Sha256::new();
    hasher.update(n.to_be_bytes());
    for file in files {
        hasher.update(std::fs::read(&file).unwrap());
    }
    hex::encode(&hasher.finalize()[..6])
}

/// A party's cached records (sealed; ciphertext only) as `(kind, id, tenant, sealed hex)`.
type CachedRecords = Vec<(String, String, String, String)>;

/// The directory holding `n` parties' KEK files and sealed aux-info records, generated once
/// per fingerprint.
async fn aux_cache(n: u16) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("waas-signer-aux-{n}-{}", aux_fingerprint(n)));
    let ready = root.join("READY");
    if ready.exists() {
        return root;
    }
    std::fs::create_dir_all(&root).unwrap();
    // Tests run in parallel (and test binaries may too): one builds, the others wait.
    let lock_path = root.with_extension("lock");
    let lock = tokio::task::spawn_blocking(move || {
        let lock = std::fs::File::create(lock_path).unwrap();
        lock.lock().unwrap();
        lock
    })
    .await
    .unwrap();
    if !ready.exists() {
        build_aux_cache(n, &root).await;
        std::fs::write(&ready, b"ok").unwrap();
    }
    drop(lock);
    root
}

async fn build_aux_cache(n: u16, root: &Path) {
    let primes: Vec<PartyPrimesFile> = (0..n).map(fixture_primes).collect();
    {
        let dir = fresh_dir();
        let stores: Vec<Arc<MemoryStore>> =
            (0..n).map(|_| Arc::new(MemoryStore::default())).collect();
        let (nodes, keys) = pool_parties_in(&dir, stores.clone());
        for (node, file) in nodes.iter().zip(&primes) {
            node.import_primes(&file.primes).await.unwrap();
        }
        let pool = ecdsa_coordinator(Threshold::new(2, n).unwrap(), local_links(&nodes), &keys);
        let started = std::time::Instant::now();
        pool.upkeep_once().await;
        let took = started.elapsed();
        assert!(pool.status().ecdsa_ready, "{:?}", pool.status());
        eprintln!("aux info for {n} parties took {took:?}");
        std::fs::write(root.join("aux-seconds"), format!("{}", took.as_secs_f64())).unwrap();
        for (index, store) in stores.iter().enumerate() {
            let records: CachedRecords = store
                .0
                .lock()
                .unwrap()
                .values()
                .filter(|r| r.kind == AUX_KIND)
                .map(|r| {
                    (
                        r.kind.clone(),
                        r.id.clone(),
                        r.tenant.clone(),
                        hex::encode(&r.sealed),
                    )
                })
                .collect();
            assert_eq!(records.len(), 1);
            std::fs::write(
                root.join(format!("records-{index}.json")),
                serde_json::to_vec(&records).unwrap(),
            )
            .unwrap();
            std::fs::copy(
                dir.join(format!("kek-{index}")),
                root.join(format!("kek-{index}")),
            )
            .unwrap();
        }
    }
}

pub(super) fn ecdsa_coordinator(
    threshold: Threshold,
    links: Vec<Arc<dyn PartyLink>>,
    keys: &Keys,
) -> Coordinator {
    Coordinator::new(
        CoordinatorConfig {
            threshold,
            // Seven parties on two cores are slow; these bounds only catch hangs.
            session_timeout: Duration::from_secs(900),
            aux_timeout: Duration::from_secs(3600),
            presignatures_per_key: 3,
            refill_time_share: 1.0,
            nonces_per_party: 0,
        },
        links,
        CoordinatorTrust {
            authority: keys.authority.clone(),
            parties: keys.publics(),
        },
    )
}

/// An ECDSA-ready pool: parties restored from the aux-info cache.
pub(super) struct EcdsaPool {
    pub(super) nodes: Vec<Arc<PartyNode>>,
    pub(super) stores: Vec<Arc<MemoryStore>>,
    pub(super) keys: Keys,
    pub(super) pool: Coordinator,
    /// Where the parties' KEK files are (`kek-{index}`).
    pub(super) dir: PathBuf,
}

pub(super) async fn ecdsa_pool(
    threshold: Threshold,
    counters: Option<&[Arc<AtomicUsize>]>,
) -> EcdsaPool {
    let n = threshold.n();
    let cache = aux_cache(n).await;
    let dir = fresh_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let stores: Vec<Arc<MemoryStore>> = (0..n)
        .map(|index| {
            std::fs::copy(
                cache.join(format!("kek-{index}")),
                dir.join(format!("kek-{index}")),
            )
            .unwrap();
            let records: CachedRecords = serde_json::from_slice(
                &std::fs::read(cache.join(format!("records-{index}.json"))).unwrap(),
            )
            .unwrap();
            let store = MemoryStore::default();
            for (kind, id, tenant, sealed) in records {
                store.0.lock().unwrap().insert(
                    (kind.clone(), id.clone()),
                    StoredRecord {
                        kind,
                        id,
                        tenant,
                        sealed: hex::decode(sealed).unwrap(),
                    },
                );
            }
            Arc::new(store)
        })
        .collect();
    let (nodes, keys) = pool_parties_in(&dir, stores.clone());
    let links = match counters {
        Some(counters) => nodes
            .iter()
            .zip(counters)
            .map(|(node, opened)| {
                Arc::new(Counting {
                    inner: LocalPartyLink::new(node.clone()),
                    index: node.index(),
                    opened: opened.clone(),
                }) as Arc<dyn PartyLink>
            })
            .collect(),
        None => local_links(&nodes),
    };
    let pool = ecdsa_coordinator(threshold, links, &keys);
    pool.upkeep_once().await;
    assert!(pool.status().ecdsa_ready, "{:?}", pool.status());
    EcdsaPool {
        nodes,
        stores,
        keys,
        pool,
        dir,
    }
}

pub(super) struct Key {
    pub(super) tenant_id: TenantId,
    pub(super) key_id: WalletId,
    pub(super) generated: GeneratedKey,
}

pub(super) async fn ecdsa_key(pool: &Coordinator) -> Key {
    let (tenant_id, key_id) = (TenantId::new(), WalletId::new());
    let generated = pool
        .generate_key(KeyGenRequest {
            tenant_id,
            key_id,
            scheme: Scheme::EcdsaSecp256k1,
            protection: "local".into(),
        })
        .await
        .unwrap();
    assert_eq!(generated.public_key.len(), 33);
    Key {
        tenant_id,
        key_id,
        generated,
    }
}

pub(super) fn request(key: &Key, payload: SignPayload, quorum: Option<u16>) -> SignRequest {
    SignRequest {
        tenant_id: key.tenant_id,
        key_id: key.key_id,
        scheme: Scheme::EcdsaSecp256k1,
        payload,
        public_key: key.generated.public_key.clone(),
        public_data: key.generated.public_data.clone(),
        quorum: quorum.map(|signing_quorum| SigningQuorum {
            signing_quorum,
            policy_version: 1,
            reference: "tx-test".into(),
        }),
    }
}

fn keccak(bytes: &[u8]) -> [u8; 32] {
    Keccak256::digest(bytes).into()
}

/// The EIP-712 example from the EIP ("Mail" from Cow to Bob): domain separator, struct
/// hash and the digest a wallet signs.
const MAIL_DOMAIN: &str = "f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f";
const MAIL_STRUCT: &str = "c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e";
const MAIL_DIGEST: &str = "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2";

fn hex32(text: &str) -> [u8; 32] {
    hex::decode(text).unwrap().try_into().unwrap()
}

/// One payload of each ECDSA kind, with the digest computed here, independently of the
/// signer crate.
pub(super) fn payloads(tag: u8) -> Vec<(&'static str, SignPayload, [u8; 32])> {
    let raw = keccak(&[b'r', tag]);
    let message = format!("approve payout {tag}").into_bytes();
    let mut eip191 = format!("\x19Ethereum Signed Message:\n{}", message.len()).into_bytes();
    eip191.extend_from_slice(&message);
    // An EIP-1559 signing payload: type 2 ‖ rlp([chain_id 1, nonce tag, ...]) (its content
    // does not matter here, only that the digest is keccak256 of these bytes).
    let mut transaction = vec![0x02, 0xc8, 0x01, tag, 0x01, 0x02, 0x82, 0x52, 0x08, 0x80];
    transaction.extend_from_slice(&[0x94; 1]);
    transaction.extend_from_slice(&[tag; 20]);
    vec![
        ("digest", SignPayload::Digest(raw), raw),
        (
            "personal message",
            SignPayload::PersonalMessage(message.clone()),
            keccak(&eip191),
        ),
        (
            "typed data",
            SignPayload::TypedData {
                domain_separator: hex32(MAIL_DOMAIN),
                struct_hash: hex32(MAIL_STRUCT),
            },
            hex32(MAIL_DIGEST),
        ),
        (
            "EVM transaction",
            SignPayload::EvmTransaction(transaction.clone()),
            keccak(&transaction),
        ),
    ]
}

/// Checks an ECDSA signature with k256 (which also insists on low s) against the key.
fn assert_verifies(signed: &PoolSignature, digest: &[u8; 32], public_key: &[u8], what: &str) {
    let SignatureOutput::Ecdsa { r, s } = &signed.output else {
        panic!("{what}: expected ECDSA, got {:?}", signed.output)
    };
    let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).unwrap();
    let signature = k256::ecdsa::Signature::from_scalars(*r, *s).unwrap();
    key.verify_prehash(digest, &signature)
        .unwrap_or_else(|e| panic!("{what}: signature does not verify: {e}"));
    // The same signature over another digest must not verify (the check has teeth).
    let mut other = *digest;
    other[31] ^= 1;
    assert!(key.verify_prehash(&other, &signature).is_err(), "{what}");
}

fn assert_signers(signed: &PoolSignature, q: usize, n: u16, what: &str) {
    assert_eq!(signed.signers.len(), q, "{what}: {:?}", signed.signers);
    assert!(
        signed.signers.windows(2).all(|w| w[0] < w[1]),
        "{what}: signers sorted and distinct: {:?}",
        signed.signers
    );
    assert!(signed.signers.iter().all(|&s| s < n), "{what}");
}

fn hits(pool: &Coordinator) -> u64 {
    PoolMetrics::get(&pool.metrics().presignature_hits)
}

#[test]
fn the_typed_data_fixture_is_the_eip712_example() {
    let mut preimage = vec![0x19, 0x01];
    preimage.extend_from_slice(&hex32(MAIL_DOMAIN));
    preimage.extend_from_slice(&hex32(MAIL_STRUCT));
    assert_eq!(hex::encode(keccak(&preimage)), MAIL_DIGEST);
}

/// 2-of-3: every quorum (2 and 3) and every payload kind, through the coordinator; a raw
/// digest never takes a presignature, a payload with a preimage at quorum t does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cggmp_signs_every_payload_kind_with_every_quorum_of_a_3_party_pool() {
    let threshold = Threshold::new(2, 3).unwrap();
    let EcdsaPool { pool, .. } = ecdsa_pool(threshold, None).await;
    let key = ecdsa_key(&pool).await;
    let (tenant, key_id) = (key.tenant_id.to_string(), key.key_id.to_string());
    while pool.presignatures_ready(&tenant, &key_id) < 3 {
        assert!(pool.refill_presignatures_once().await);
    }
    for q in [2u16, 3] {
        for (what, payload, digest) in payloads(u8::try_from(q).unwrap()) {
            let what = format!("{what}, quorum {q}");
            let (ready, hits_before) = (pool.presignatures_ready(&tenant, &key_id), hits(&pool));
            let with_preimage = !matches!(payload, SignPayload::Digest(_));
            let signed = pool.sign(request(&key, payload, Some(q))).await.unwrap();
            assert_verifies(&signed, &digest, &key.generated.public_key, &what);
            assert_signers(&signed, usize::from(q), 3, &what);
            if q == 2 && with_preimage {
                assert_eq!(hits(&pool), hits_before + 1, "{what}: presigned");
                assert_eq!(
                    pool.presignatures_ready(&tenant, &key_id),
                    ready - 1,
                    "{what}"
                );
            } else {
                assert_eq!(hits(&pool), hits_before, "{what}: signed interactively");
                assert_eq!(pool.presignatures_ready(&tenant, &key_id), ready, "{what}");
            }
        }
    }
    // The three payloads with a preimage at quorum 2 used the three presignatures.
    assert_eq!(pool.presignatures_ready(&tenant, &key_id), 0);
    assert_eq!(hits(&pool), 3);
    // Without a quorum (t signers) a raw digest still signs interactively, with a
    // presignature ready.
    assert!(pool.refill_presignatures_once().await);
    let (what, payload, digest) = payloads(9).swap_remove(0);
    let signed = pool.sign(request(&key, payload, None)).await.unwrap();
    assert_verifies(&signed, &digest, &key.generated.public_key, what);
    assert_signers(&signed, 2, 3, what);
    assert_eq!(pool.presignatures_ready(&tenant, &key_id), 1);
    assert_eq!(hits(&pool), 3);
}

/// A party handed a presigned session without a preimage (a raw digest) refuses it, as a
/// refusal, and keeps its presignature: the pool then signs a personal message with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_refuses_a_presigned_raw_digest_and_keeps_its_presignature() {
    let threshold = Threshold::new(2, 3).unwrap();
    let EcdsaPool {
        pool, nodes, keys, ..
    } = ecdsa_pool(threshold, None).await;
    let key = ecdsa_key(&pool).await;
    let (tenant, key_id) = (key.tenant_id.to_string(), key.key_id.to_string());
    assert!(pool.refill_presignatures_once().await);
    let (presignature_id, signers) = pool.presignatures(&tenant, &key_id).remove(0);
    let party = signers[0];
    let held_before = nodes[usize::from(party)]
        .list_presignatures()
        .await
        .unwrap();
    assert_eq!(held_before.len(), 1);

    let mut session_id = [0u8; 32];
    session_id[..16].copy_from_slice(uuid::Uuid::now_v7().as_bytes());
    let start = SessionStart {
        session_id,
        participants: signers.clone(),
        kind: SessionKind::EcdsaSignPresigned {
            tenant: tenant.clone(),
            key_id: key_id.clone(),
            presignature_id,
            digest: [7u8; 32],
            preimage: None,
        },
        expires_at: secure::now_unix() + 60,
        quorum: None,
    };
    let signed = secure::sign_start(&start, &keys.authority).unwrap();
    let PartySession {
        to_party,
        mut from_party,
    } = LocalPartyLink::new(nodes[usize::from(party)].clone())
        .open(signed)
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(30), from_party.recv())
        .await
        .unwrap()
        .unwrap();
    drop(to_party);
    let event = EventVerifier::new(keys.publics()[usize::from(party)], session_id, party)
        .verify(&event)
        .unwrap();
    let PartyEvent::Failed { reason, kind, .. } = event else {
        panic!("expected a refusal, got {event:?}")
    };
    assert_eq!(kind, FailureKind::Refused, "{reason}");
    assert!(reason.contains("raw digest"), "{reason}");
    assert_eq!(
        nodes[usize::from(party)]
            .list_presignatures()
            .await
            .unwrap(),
        held_before,
        "the presignature is kept"
    );

    // It is still whole at every signer: the pool signs with it.
    let (what, payload, digest) = payloads(1).swap_remove(1);
    let signed = pool.sign(request(&key, payload, None)).await.unwrap();
    assert_verifies(&signed, &digest, &key.generated.public_key, what);
    assert_eq!(signed.signers, signers);
    assert_eq!(hits(&pool), 1);
    assert_eq!(pool.presignatures_ready(&tenant, &key_id), 0);
}

/// 3-of-7 with policy quorums 3 (= t) and 5 (> t): every named party takes part (a session
/// is opened at each, and each one's share is needed), and the signatures verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cggmp_signs_with_quorums_above_the_threshold_in_a_7_party_pool() {
    let threshold = Threshold::new(3, 7).unwrap();
    let counters: Vec<Arc<AtomicUsize>> = (0..7).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let EcdsaPool { pool, .. } = ecdsa_pool(threshold, Some(&counters)).await;
    let key = ecdsa_key(&pool).await;
    let opened = |counters: &[Arc<AtomicUsize>]| -> Vec<usize> {
        counters
            .iter()
            .map(|c| c.swap(0, Ordering::SeqCst))
            .collect()
    };
    opened(&counters);
    let cases = [
        (3u16, payloads(3).swap_remove(1)),
        (5, payloads(5).swap_remove(0)),
        (5, payloads(6).swap_remove(2)),
    ];
    for (q, (what, payload, digest)) in cases {
        let what = format!("{what}, quorum {q} of 7 (t = 3)");
        let started = std::time::Instant::now();
        let signed = pool.sign(request(&key, payload, Some(q))).await.unwrap();
        eprintln!("{what}: {:?}", started.elapsed());
        assert_verifies(&signed, &digest, &key.generated.public_key, &what);
        assert_signers(&signed, usize::from(q), 7, &what);
        let sessions = opened(&counters);
        for (index, count) in sessions.iter().enumerate() {
            let expected = usize::from(signed.signers.contains(&u16::try_from(index).unwrap()));
            assert_eq!(*count, expected, "{what}: sessions per party {sessions:?}");
        }
    }
    let health = pool.party_health();
    assert!(
        health.iter().all(|h| h.consecutive_failures == 0),
        "{health:?}"
    );
}

/// When every party fails the same way (here: the pool's aux info is missing at every
/// party), nobody is blamed: no breaker moves, no retry leaves anyone out, and key
/// generation and signing work again once the fault is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_common_to_every_party_blames_nobody() {
    let threshold = Threshold::new(2, 3).unwrap();
    let EcdsaPool { pool, stores, .. } = ecdsa_pool(threshold, None).await;
    let key = ecdsa_key(&pool).await;
    let removed: Vec<StoredRecord> = stores
        .iter()
        .map(|store| {
            let mut map = store.0.lock().unwrap();
            let id = map
                .keys()
                .find(|(kind, _)| kind == AUX_KIND)
                .cloned()
                .unwrap();
            map.remove(&id).unwrap()
        })
        .collect();
    for attempt in 0..4u8 {
        let (_, payload, _) = payloads(attempt).swap_remove(0);
        let quorum = if attempt % 2 == 0 { None } else { Some(3) };
        let error = pool.sign(request(&key, payload, quorum)).await.unwrap_err();
        let SignerError::ProtocolFailed { reason, culprits } = error else {
            panic!("{error:?}")
        };
        assert!(culprits.is_empty(), "{culprits:?}: {reason}");
        assert!(reason.contains("every participant failed"), "{reason}");
        assert!(reason.contains("auxiliary info missing"), "{reason}");
    }
    let health = pool.party_health();
    assert_eq!(health.len(), 3);
    for party in &health {
        assert_eq!(party.state, BreakerState::Closed, "{health:?}");
        assert_eq!(party.consecutive_failures, 0, "{health:?}");
        assert_eq!(party.opened_total, 0, "{health:?}");
    }
    pool.upkeep_once().await;
    assert_eq!(pool.status().parties_ready, 3);

    for (store, record) in stores.iter().zip(removed) {
        store.insert(record).await.unwrap();
    }
    pool.upkeep_once().await;
    assert!(pool.status().ecdsa_ready, "{:?}", pool.status());
    let (what, payload, digest) = payloads(4).swap_remove(0);
    let signed = pool.sign(request(&key, payload, Some(3))).await.unwrap();
    assert_verifies(&signed, &digest, &key.generated.public_key, what);
    let another = ecdsa_key(&pool).await;
    assert_ne!(another.generated.public_key, key.generated.public_key);
}

/// Payloads that do not fit the key's scheme are refused with an error, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecdsa_payload_for_an_ed25519_key_is_refused() {
    let (nodes, keys) = pool_parties(3);
    let pool = coordinator(Threshold::new(2, 3).unwrap(), local_links(&nodes), &keys);
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
    for (what, payload, _) in payloads(0) {
        let error = pool
            .sign(SignRequest {
                tenant_id,
                key_id,
                scheme: Scheme::FrostEd25519,
                payload,
                public_key: key.public_key.clone(),
                public_data: key.public_data.clone(),
                quorum: None,
            })
            .await
            .unwrap_err();
        let SignerError::Bug(reason) = error else {
            panic!("{what}: {error:?}")
        };
        assert!(reason.contains("Ed25519"), "{what}: {reason}");
        assert!(reason.contains(what), "{what}: {reason}");
    }
    let health = pool.party_health();
    assert!(health.iter().all(|h| h.consecutive_failures == 0));
}

/// The preimage each party hashes is the one the payload defines.
#[test]
fn each_preimage_hashes_to_its_payload_digest() {
    for (what, payload, digest) in payloads(1) {
        let preimage = Preimage::from_payload(&payload);
        match payload {
            SignPayload::Digest(_) => assert!(preimage.is_none()),
            _ => {
                let preimage = preimage.unwrap();
                assert_eq!(preimage.digest(), digest, "{what}");
                assert_eq!(preimage.to_payload(), payload, "{what}");
            }
        }
    }
}
