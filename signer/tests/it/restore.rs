//! One-time material across restarts and restores (ADR 0009): a party restarted on a store
//! restored from a backup holds none of the nonces or presignatures it made before, so none
//! signs twice; a coordinator notices a party's restart from its epoch and drops what that
//! party no longer holds instead of failing signings on it.

use super::ecdsa_quorum::{EcdsaPool, ecdsa_coordinator, ecdsa_key, ecdsa_pool, payloads, request};
use super::trust::{first_event, refusal, start};
use super::*;
use frost_ed25519 as frost;
use waas_signer::metrics::PoolMetrics;
use waas_signer::secure;
use waas_signer::{PartyEvent, SessionKind};

/// Record kinds that would hold one-time material, if a party ever stored it.
const ONE_TIME_KINDS: [&str; 2] = ["frost-nonces", "cggmp-presignature"];

/// A link to a party that can be restarted behind it, as a node process restarts at the
/// same address.
#[derive(Debug)]
struct Restartable(Mutex<Arc<PartyNode>>);

impl Restartable {
    fn new(node: Arc<PartyNode>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(node)))
    }
    fn node(&self) -> Arc<PartyNode> {
        self.0.lock().unwrap().clone()
    }
    fn restart(&self, node: Arc<PartyNode>) {
        *self.0.lock().unwrap() = node;
    }
}

#[async_trait]
impl PartyLink for Restartable {
    fn index(&self) -> u16 {
        self.node().index()
    }
    async fn open(&self, start: SignedStart) -> Result<PartySession, SignerError> {
        LocalPartyLink::new(self.node()).open(start).await
    }
    async fn status(&self) -> Result<PartyStatus, SignerError> {
        LocalPartyLink::new(self.node()).status().await
    }
}

fn restartable_links(nodes: &[Arc<PartyNode>]) -> (Vec<Arc<Restartable>>, Vec<Arc<dyn PartyLink>>) {
    let restartable: Vec<Arc<Restartable>> = nodes
        .iter()
        .map(|node| Restartable::new(node.clone()))
        .collect();
    let links = restartable
        .iter()
        .map(|link| link.clone() as Arc<dyn PartyLink>)
        .collect();
    (restartable, links)
}

/// Precommits one nonce pair at party `index` in a session of its own: (nonce id,
/// commitments).
async fn precommit(
    nodes: &[Arc<PartyNode>],
    keys: &Keys,
    index: u16,
    tenant: &str,
    key_id: &str,
) -> (String, Vec<u8>) {
    let start = start(
        SessionKind::EddsaPrecommit {
            tenant: tenant.into(),
            key_id: key_id.into(),
            count: 1,
        },
        vec![index],
        60,
    );
    let signed = secure::sign_start(&start, &keys.authority).unwrap();
    let PartyEvent::Output(bytes) = first_event(nodes, keys, index, start.session_id, signed).await
    else {
        panic!("precommit failed")
    };
    let list: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
    (
        list[0]["nonce_id"].as_str().unwrap().to_string(),
        serde_json::from_value(list[0]["commitments"].clone()).unwrap(),
    )
}

async fn frost_key(pool: &Coordinator) -> (TenantId, WalletId, waas_core::ports::GeneratedKey) {
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
    (tenant_id, key_id, key)
}

fn frost_request(
    tenant_id: TenantId,
    key_id: WalletId,
    key: &waas_core::ports::GeneratedKey,
    message: &[u8],
    quorum: Option<u16>,
) -> SignRequest {
    SignRequest {
        tenant_id,
        key_id,
        scheme: Scheme::FrostEd25519,
        payload: SignPayload::Message(message.to_vec()),
        public_key: key.public_key.clone(),
        public_data: key.public_data.clone(),
        quorum: quorum.map(|signing_quorum| waas_core::ports::SigningQuorum {
            signing_quorum,
            policy_version: 1,
            reference: "restore-test".into(),
        }),
    }
}

/// The backup holds the party's store as it was while its nonce waited for a signature; the
/// nonce signs once; the party restarts on the restored store and refuses the same nonce
/// under a fresh, valid authorization. No store ever holds one-time material.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_restarted_on_a_restored_store_never_signs_with_a_nonce_twice() {
    let dir = fresh_dir();
    let stores: Vec<Arc<MemoryStore>> = (0..3).map(|_| Arc::new(MemoryStore::default())).collect();
    let (nodes, keys) = pool_parties_in(&dir, stores.clone());
    let pool = coordinator(Threshold::new(2, 3).unwrap(), local_links(&nodes), &keys);
    let (tenant_id, key_id, key) = frost_key(&pool).await;
    let (tenant, key_name) = (tenant_id.to_string(), key_id.to_string());
    let (nonce_0, commitments_0) = precommit(&nodes, &keys, 0, &tenant, &key_name).await;
    let (nonce_1, commitments_1) = precommit(&nodes, &keys, 1, &tenant, &key_name).await;
    let backup = stores[0].snapshot();

    let mut commitments = BTreeMap::new();
    for (identifier, bytes) in [(1u16, &commitments_0), (2, &commitments_1)] {
        commitments.insert(
            frost::Identifier::try_from(identifier).unwrap(),
            frost::round1::SigningCommitments::deserialize(bytes).unwrap(),
        );
    }
    let message = b"pay 7 SOL".to_vec();
    let package = frost::SigningPackage::new(commitments, &message)
        .serialize()
        .unwrap();
    let sign_at_party_0 = || {
        let start = start(
            SessionKind::EddsaSignPrecommitted {
                tenant: tenant.clone(),
                key_id: key_name.clone(),
                message: message.clone(),
                package: package.clone(),
                nonce_ids: vec![nonce_0.clone(), nonce_1.clone()],
            },
            vec![0, 1],
            60,
        );
        let signed = secure::sign_start(&start, &keys.authority).unwrap();
        (start.session_id, signed)
    };
    let (session_id, signed) = sign_at_party_0();
    let first = first_event(&nodes, &keys, 0, session_id, signed).await;
    assert!(matches!(first, PartyEvent::Output(_)), "{first:?}");

    // Party 0 restarts on its store as backed up (a restore of the data directory).
    let restored = Arc::new(backup);
    let mut restarted = nodes.clone();
    restarted[0] = party_node(&dir, &keys, 0, restored.clone());
    assert_ne!(restarted[0].epoch(), nodes[0].epoch());
    let (session_id, signed) = sign_at_party_0();
    let reason = refusal(first_event(&restarted, &keys, 0, session_id, signed).await);
    assert!(reason.contains("unknown or already used"), "{reason}");
    for store in stores.iter().chain([&restored]) {
        let kinds = store.kinds();
        assert!(
            ONE_TIME_KINDS.iter().all(|kind| !kinds.contains(*kind)),
            "a store holds one-time material: {kinds:?}"
        );
    }

    // The restarted pool signs on: first in two rounds (its coordinator learns of the key
    // from that signature), then from nonces the restarted party made afresh.
    let pool = coordinator(
        Threshold::new(2, 3).unwrap(),
        local_links(&restarted),
        &keys,
    );
    let verifying =
        ed25519_dalek::VerifyingKey::from_bytes(&key.public_key.clone().try_into().unwrap())
            .unwrap();
    for message in [&b"after the restore"[..], b"from fresh nonces"] {
        let signed = pool
            .sign(frost_request(tenant_id, key_id, &key, message, None))
            .await
            .unwrap();
        let SignatureOutput::Ed25519(bytes) = signed.output else {
            panic!("expected Ed25519")
        };
        verifying
            .verify(message, &ed25519_dalek::Signature::from_bytes(&bytes))
            .unwrap();
        while pool.refill_nonces_once().await {}
    }
    assert_eq!(PoolMetrics::get(&pool.metrics().nonce_hits), 1);
}

/// A coordinator drops the nonces of a party whose epoch changed: at its next status poll,
/// and — when a signing reaches the restarted party first — right after that party's
/// refusal, so only that one signing runs both rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_drops_the_nonces_of_a_restarted_party() {
    let dir = fresh_dir();
    let stores: Vec<Arc<MemoryStore>> = (0..3).map(|_| Arc::new(MemoryStore::default())).collect();
    let (nodes, keys) = pool_parties_in(&dir, stores.clone());
    let (links, dyn_links) = restartable_links(&nodes);
    let pool = coordinator(Threshold::new(2, 3).unwrap(), dyn_links, &keys);
    pool.upkeep_once().await;
    let (tenant_id, key_id, key) = frost_key(&pool).await;
    let (tenant, key_name) = (tenant_id.to_string(), key_id.to_string());
    while pool.refill_nonces_once().await {}
    let ready = |pool: &Coordinator, party: u16| {
        pool.nonces_ready(&tenant, &key_name)
            .into_iter()
            .find(|(p, _)| *p == party)
            .map_or(0, |(_, n)| n)
    };
    assert_eq!(ready(&pool, 1), 2);

    // Party 1 restarts; the next upkeep pass sees its new epoch and drops its nonces.
    links[1].restart(party_node(&dir, &keys, 1, stores[1].clone()));
    pool.upkeep_once().await;
    assert_eq!(ready(&pool, 1), 0);
    assert_eq!(ready(&pool, 0), 2);
    let signed = pool
        .sign(frost_request(tenant_id, key_id, &key, b"one", None))
        .await
        .unwrap();
    assert!(!signed.signers.contains(&1), "{:?}", signed.signers);
    assert_eq!(PoolMetrics::get(&pool.metrics().nonce_hits), 1);

    // Party 0 restarts with no upkeep pass in between; a signing that needs every party
    // reaches it first, is refused, runs both rounds, and the coordinator then drops party
    // 0's other nonces at once.
    while pool.refill_nonces_once().await {}
    assert_eq!(ready(&pool, 0), 2);
    links[0].restart(party_node(&dir, &keys, 0, stores[0].clone()));
    let signed = pool
        .sign(frost_request(tenant_id, key_id, &key, b"two", Some(3)))
        .await
        .unwrap();
    assert_eq!(signed.signers, vec![0, 1, 2]);
    assert_eq!(PoolMetrics::get(&pool.metrics().nonce_misses), 1);
    assert_eq!(PoolMetrics::get(&pool.metrics().sign_failures), 0);
    assert_eq!(ready(&pool, 0), 0, "party 0's remaining nonce is dropped");
}

/// A coordinator drops the presignatures a restarted party shared and has the other signer
/// discard its halves; signing goes on from presignatures made after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_drops_the_presignatures_of_a_restarted_party() {
    let threshold = Threshold::new(2, 3).unwrap();
    let EcdsaPool {
        nodes,
        stores,
        keys,
        dir,
        ..
    } = ecdsa_pool(threshold, None).await;
    let (links, dyn_links) = restartable_links(&nodes);
    let pool = ecdsa_coordinator(threshold, dyn_links, &keys);
    pool.upkeep_once().await;
    let key = ecdsa_key(&pool).await;
    let (tenant, key_id) = (key.tenant_id.to_string(), key.key_id.to_string());
    assert!(pool.refill_presignatures_once().await);
    let (_, signers) = pool.presignatures(&tenant, &key_id).remove(0);
    let (restarting, keeping) = (signers[0], signers[1]);
    assert_eq!(
        nodes[usize::from(keeping)]
            .list_presignatures()
            .await
            .unwrap()
            .len(),
        1
    );

    let store = stores[usize::from(restarting)].clone();
    links[usize::from(restarting)].restart(party_node(&dir, &keys, restarting, store));
    pool.upkeep_once().await;
    assert_eq!(pool.presignatures_ready(&tenant, &key_id), 0);
    assert!(
        nodes[usize::from(keeping)]
            .list_presignatures()
            .await
            .unwrap()
            .is_empty(),
        "the other signer discarded its half"
    );
    assert_eq!(PoolMetrics::get(&pool.metrics().presignatures_discarded), 1);

    // A fresh presignature (made by the restarted party's new process) signs, once.
    assert!(pool.refill_presignatures_once().await);
    let (fresh_id, fresh_signers) = pool.presignatures(&tenant, &key_id).remove(0);
    let (_, payload, digest) = payloads(5).swap_remove(1);
    let SignPayload::PersonalMessage(message) = payload.clone() else {
        panic!("payload 1 is a personal message")
    };
    let signed = pool.sign(request(&key, payload, None)).await.unwrap();
    assert_eq!(signed.signers, fresh_signers);
    assert_eq!(PoolMetrics::get(&pool.metrics().presignature_hits), 1);
    // Asked again under a fresh, valid authorization, each signer refuses it.
    let current: Vec<Arc<PartyNode>> = links.iter().map(|link| link.node()).collect();
    for &signer in &fresh_signers {
        let again = start(
            SessionKind::EcdsaSignPresigned {
                tenant: tenant.clone(),
                key_id: key_id.clone(),
                presignature_id: fresh_id.clone(),
                digest,
                preimage: Some(waas_signer::Preimage::PersonalMessage(message.clone())),
            },
            fresh_signers.clone(),
            60,
        );
        let signed = secure::sign_start(&again, &keys.authority).unwrap();
        let reason = refusal(first_event(&current, &keys, signer, again.session_id, signed).await);
        assert!(reason.contains("unknown or already used"), "{reason}");
    }
}
