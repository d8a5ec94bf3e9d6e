//! The threshold protocol steps one by one, at the coordinator (no HTTP, no control-plane
//! database): three in-process parties (t = 2) with their real SQLite stores, local key
//! files and the full trust path (signed authorizations, signed events, end-to-end sealed
//! messages). Prints min / p50 / p95 / p99 / max per step.
//!
//! Run: `cargo bench -p waas-api --bench protocols` (release). Seeds the parties with the
//! test prime fixture; aux info is the first (and longest) step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::report;
use std::sync::Arc;
use std::time::{Duration, Instant};
use waas_api::startup::{build_party, import_primes, party_identity};
use waas_core::ports::{KeyGenRequest, SignPayload, SignRequest, SignerPool};
use waas_core::{Scheme, TenantId, Threshold, WalletId};
use waas_signer::{
    Coordinator, CoordinatorConfig, CoordinatorTrust, IdentityKey, LocalPartyLink, PartyLink,
    PartyTrust,
};

async fn timed<T, F: Future<Output = T>>(samples: &mut Vec<Duration>, future: F) -> T {
    let started = Instant::now();
    let out = future.await;
    samples.push(started.elapsed());
    out
}

#[tokio::main]
async fn main() {
    let root = std::env::temp_dir().join(format!("waas-bench-protocols-{}", std::process::id()));
    let settings = common::settings(&root, 10);
    let authority = Arc::new(IdentityKey::generate());
    let identities: Vec<_> = (0..3)
        .map(|i| {
            let dir = settings.party_dir(i);
            std::fs::create_dir_all(&dir).unwrap();
            party_identity(&dir).unwrap()
        })
        .collect();
    let peers: Vec<_> = identities.iter().map(|k| k.public()).collect();
    let mut parties = Vec::new();
    let mut stats = Vec::new();
    for (index, identity) in (0u16..3).zip(&identities) {
        let trust = PartyTrust {
            identity: identity.clone(),
            authorities: vec![authority.public()],
            peers: peers.clone(),
        };
        parties.push(
            build_party(
                &settings,
                index,
                &settings.party_dir(index),
                None,
                trust,
                &mut stats,
            )
            .await
            .unwrap(),
        );
    }
    import_primes(&settings, &parties).await.unwrap();
    let links: Vec<Arc<dyn PartyLink>> = parties
        .iter()
        .map(|p| Arc::new(LocalPartyLink::new(p.clone())) as Arc<dyn PartyLink>)
        .collect();
    let pool = Coordinator::new(
        CoordinatorConfig {
            threshold: Threshold::new(2, 3).unwrap(),
            session_timeout: Duration::from_secs(120),
            aux_timeout: Duration::from_secs(1800),
            presignatures_per_key: 10,
            refill_time_share: 1.0,
            nonces_per_party: 10,
        },
        links,
        CoordinatorTrust {
            authority,
            parties: peers,
        },
    );

    let mut aux = Vec::new();
    timed(&mut aux, pool.upkeep_once()).await;
    assert!(pool.status().ecdsa_ready, "aux info failed");
    assert!(pool.load_presignatures().await);
    report("CGGMP aux info (3 parties)", aux);

    let tenant_id = TenantId::new();
    let keygen = |scheme| KeyGenRequest {
        tenant_id,
        key_id: WalletId::new(),
        scheme,
        protection: "local".into(),
    };
    let mut ecdsa_keygen = Vec::new();
    let mut ecdsa_keys = Vec::new();
    for _ in 0..10 {
        let request = keygen(Scheme::EcdsaSecp256k1);
        let key_id = request.key_id;
        let key = timed(&mut ecdsa_keygen, pool.generate_key(request))
            .await
            .unwrap();
        ecdsa_keys.push((key_id, key));
    }
    report("CGGMP DKG (3 parties)", ecdsa_keygen);

    let mut presign = Vec::new();
    for _ in 0..10 {
        assert!(timed(&mut presign, pool.refill_presignatures_once()).await);
    }
    report("CGGMP presignature (2 signers)", presign);

    let sign = |key_id: WalletId, public_key: Vec<u8>, i: u32| SignRequest {
        tenant_id,
        key_id,
        scheme: Scheme::EcdsaSecp256k1,
        payload: SignPayload::Digest([i as u8; 32]),
        public_key,
        public_data: Vec::new(),
        quorum: None,
    };
    let mut presigned = Vec::new();
    for i in 0..10u32 {
        let (key_id, key) = &ecdsa_keys[i as usize];
        let request = sign(*key_id, key.public_key.clone(), i + 1);
        timed(&mut presigned, pool.sign(request)).await.unwrap();
    }
    report("CGGMP sign from a presignature", presigned);
    let mut interactive = Vec::new();
    for i in 0..5u32 {
        let (key_id, key) = &ecdsa_keys[i as usize];
        let request = sign(*key_id, key.public_key.clone(), i + 50);
        timed(&mut interactive, pool.sign(request)).await.unwrap();
    }
    report("CGGMP sign interactive", interactive);

    let mut frost_keygen = Vec::new();
    let mut frost_keys = Vec::new();
    for _ in 0..20 {
        let request = keygen(Scheme::FrostEd25519);
        let key_id = request.key_id;
        let key = timed(&mut frost_keygen, pool.generate_key(request))
            .await
            .unwrap();
        frost_keys.push((key_id, key));
    }
    report("FROST DKG (3 parties)", frost_keygen);
    let frost_sign = |i: usize| {
        let (key_id, key) = &frost_keys[i % frost_keys.len()];
        SignRequest {
            tenant_id,
            key_id: *key_id,
            scheme: Scheme::FrostEd25519,
            payload: SignPayload::Message(format!("m{i}").into_bytes()),
            public_key: key.public_key.clone(),
            public_data: key.public_data.clone(),
            quorum: None,
        }
    };
    let mut two_rounds = Vec::new();
    for i in 0..50 {
        timed(&mut two_rounds, pool.sign(frost_sign(i)))
            .await
            .unwrap();
    }
    report("FROST sign, two rounds", two_rounds);
    let mut precommit = Vec::new();
    loop {
        let started = Instant::now();
        if !pool.refill_nonces_once().await {
            break;
        }
        precommit.push(started.elapsed());
    }
    report("FROST precommit 10 nonces at one party", precommit);
    let mut one_round = Vec::new();
    for i in 0..50 {
        timed(&mut one_round, pool.sign(frost_sign(i)))
            .await
            .unwrap();
    }
    report("FROST sign, one round", one_round);
    let _ = std::fs::remove_dir_all(&root);
}
