//! Authorizations, signed events and forged traffic.

use super::*;
use waas_signer::secure::{self, EventVerifier};
use waas_signer::{FailureKind, PartyEvent, Preimage, SessionKind, SessionStart};

pub(super) fn start(kind: SessionKind, participants: Vec<u16>, expires_in: i64) -> SessionStart {
    let mut session_id = [0u8; 32];
    session_id[..16].copy_from_slice(uuid::Uuid::now_v7().as_bytes());
    SessionStart {
        session_id,
        participants,
        kind,
        expires_at: (secure::now_unix() as i64 + expires_in) as u64,
        quorum: None,
    }
}

fn frost_sign(message: &[u8]) -> SessionKind {
    SessionKind::EddsaSign {
        tenant: "t".into(),
        key_id: "k".into(),
        message: message.to_vec(),
    }
}

/// Opens `signed` at party `index` and returns its first event, verified as the
/// coordinator verifies it.
pub(super) async fn first_event(
    nodes: &[Arc<PartyNode>],
    keys: &Keys,
    index: u16,
    session_id: [u8; 32],
    signed: SignedStart,
) -> PartyEvent {
    let link = LocalPartyLink::new(nodes[usize::from(index)].clone());
    let PartySession {
        to_party,
        mut from_party,
    } = link.open(signed).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), from_party.recv())
        .await
        .unwrap()
        .unwrap();
    drop(to_party);
    EventVerifier::new(keys.publics()[usize::from(index)], session_id, index)
        .verify(&event)
        .unwrap()
}

pub(super) fn refusal(event: PartyEvent) -> String {
    match event {
        PartyEvent::Failed {
            reason,
            kind: FailureKind::Refused,
            ..
        } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_authorization_is_refused() {
    let (nodes, keys) = pool_parties(3);
    let start = start(frost_sign(b"pay"), vec![0, 1], 60);
    let signed = secure::sign_start(&start, &keys.authority).unwrap();
    // The first use is accepted: the party goes on to the protocol (and, having no share for
    // this key, refuses for that reason, not for the authorization).
    let first = refusal(first_event(&nodes, &keys, 0, start.session_id, signed.clone()).await);
    assert!(first.contains("no share"), "{first}");
    let second = refusal(first_event(&nodes, &keys, 0, start.session_id, signed).await);
    assert!(second.contains("already used"), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_expired_foreign_and_misaddressed_authorizations_are_refused() {
    let (nodes, keys) = pool_parties(3);

    let good = start(frost_sign(b"pay 10"), vec![0, 1], 60);
    let mut tampered = secure::sign_start(&good, &keys.authority).unwrap();
    // Change the message inside the signed body: the signature no longer covers it.
    let position = tampered
        .body
        .windows(6)
        .position(|w| w == b"pay 10")
        .unwrap();
    tampered.body[position + 4] = b'9';
    let reason = refusal(first_event(&nodes, &keys, 0, good.session_id, tampered).await);
    assert!(
        reason.contains("not signed by a trusted control plane"),
        "{reason}"
    );

    let expired = start(frost_sign(b"pay"), vec![0, 1], -1);
    let signed = secure::sign_start(&expired, &keys.authority).unwrap();
    let reason = refusal(first_event(&nodes, &keys, 0, expired.session_id, signed).await);
    assert!(reason.contains("expired"), "{reason}");

    let foreign_key = IdentityKey::generate();
    let foreign = start(frost_sign(b"pay"), vec![0, 1], 60);
    let signed = secure::sign_start(&foreign, &foreign_key).unwrap();
    let reason = refusal(first_event(&nodes, &keys, 0, foreign.session_id, signed).await);
    assert!(
        reason.contains("not signed by a trusted control plane"),
        "{reason}"
    );

    let elsewhere = start(frost_sign(b"pay"), vec![1, 2], 60);
    let signed = secure::sign_start(&elsewhere, &keys.authority).unwrap();
    let reason = refusal(first_event(&nodes, &keys, 0, elsewhere.session_id, signed).await);
    assert!(reason.contains("not a participant"), "{reason}");

    let forever = start(frost_sign(b"pay"), vec![0, 1], 3600);
    let signed = secure::sign_start(&forever, &keys.authority).unwrap();
    let reason = refusal(first_event(&nodes, &keys, 0, forever.session_id, signed).await);
    assert!(reason.contains("longer than a party accepts"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_that_does_not_match_its_payload_is_refused() {
    let (nodes, keys) = pool_parties(3);
    let preimages = [
        Preimage::PersonalMessage(b"transfer 5 USDC".to_vec()),
        Preimage::TypedData {
            domain_separator: [1; 32],
            struct_hash: [2; 32],
        },
        Preimage::EvmTransaction(vec![0x02, 0xc0]),
    ];
    for preimage in preimages {
        let mut digest = preimage.digest();
        digest[0] ^= 0xff;
        let kinds = [
            SessionKind::EcdsaSign {
                tenant: "t".into(),
                key_id: "k".into(),
                digest,
                preimage: Some(preimage.clone()),
                signers_at_keygen: vec![0, 1],
            },
            SessionKind::EcdsaSignPresigned {
                tenant: "t".into(),
                key_id: "k".into(),
                presignature_id: "p".into(),
                digest,
                preimage: Some(preimage.clone()),
            },
        ];
        for kind in kinds {
            let start = start(kind, vec![0, 1], 60);
            let signed = secure::sign_start(&start, &keys.authority).unwrap();
            let reason = refusal(first_event(&nodes, &keys, 1, start.session_id, signed).await);
            assert!(
                reason.contains("digest does not match the payload"),
                "{preimage:?}: {reason}"
            );
        }
    }
}

/// A link that rewrites its party's events: a forged or altered report.
#[derive(Debug)]
struct Forging {
    inner: LocalPartyLink,
    index: u16,
}

#[async_trait]
impl PartyLink for Forging {
    fn index(&self) -> u16 {
        self.index
    }
    async fn open(&self, start: SignedStart) -> Result<PartySession, SignerError> {
        let PartySession {
            to_party,
            mut from_party,
        } = self.inner.open(start).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            while let Some(mut event) = from_party.recv().await {
                if let Some(byte) = event.body.last_mut() {
                    *byte ^= 0x01;
                }
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        });
        Ok(PartySession {
            to_party,
            from_party: rx,
        })
    }
    async fn status(&self) -> Result<PartyStatus, SignerError> {
        self.inner.status().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_party_event_is_rejected_naming_the_party() {
    let (nodes, keys) = pool_parties(3);
    let mut links = local_links(&nodes);
    links[2] = Arc::new(Forging {
        inner: LocalPartyLink::new(nodes[2].clone()),
        index: 2,
    });
    let pool = coordinator(Threshold::new(2, 3).unwrap(), links, &keys);
    let (culprits, reason) = failed_frost_keygen(&pool).await;
    assert_eq!(culprits, vec![2], "{reason}");
    assert!(reason.contains("event rejected"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_precommitted_frost_nonce_signs_once_and_is_then_refused() {
    use frost_ed25519 as frost;
    let (nodes, keys) = pool_parties(3);
    let pool = coordinator(Threshold::new(2, 3).unwrap(), local_links(&nodes), &keys);
    let (tenant_id, key_id) = (TenantId::new(), WalletId::new());
    pool.generate_key(KeyGenRequest {
        tenant_id,
        key_id,
        scheme: Scheme::FrostEd25519,
        protection: "local".into(),
    })
    .await
    .unwrap();
    let (tenant, key) = (tenant_id.to_string(), key_id.to_string());

    // Parties 0 and 1 each precommit one nonce pair.
    let mut announced = Vec::new();
    for index in [0u16, 1] {
        let start = start(
            SessionKind::EddsaPrecommit {
                tenant: tenant.clone(),
                key_id: key.clone(),
                count: 1,
            },
            vec![index],
            60,
        );
        let signed = secure::sign_start(&start, &keys.authority).unwrap();
        let PartyEvent::Output(bytes) =
            first_event(&nodes, &keys, index, start.session_id, signed).await
        else {
            panic!("precommit failed")
        };
        let mut list: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
        announced.push(list.remove(0));
    }
    let mut commitments = BTreeMap::new();
    for (index, entry) in [1u16, 2].into_iter().zip(&announced) {
        let bytes: Vec<u8> = serde_json::from_value(entry["commitments"].clone()).unwrap();
        commitments.insert(
            frost::Identifier::try_from(index).unwrap(),
            frost::round1::SigningCommitments::deserialize(&bytes).unwrap(),
        );
    }
    let message = b"pay 3 SOL".to_vec();
    let package = frost::SigningPackage::new(commitments, &message)
        .serialize()
        .unwrap();
    let nonce_ids: Vec<String> = announced
        .iter()
        .map(|entry| entry["nonce_id"].as_str().unwrap().to_string())
        .collect();
    let sign_at_party_0 = || {
        let start = start(
            SessionKind::EddsaSignPrecommitted {
                tenant: tenant.clone(),
                key_id: key.clone(),
                message: message.clone(),
                package: package.clone(),
                nonce_ids: nonce_ids.clone(),
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
    // The same nonce under a fresh, valid authorization: refused, never signed twice.
    let (session_id, signed) = sign_at_party_0();
    let reason = refusal(first_event(&nodes, &keys, 0, session_id, signed).await);
    assert!(reason.contains("already used"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_refuses_to_sign_with_fewer_nodes_than_the_policy_quorum() {
    let (nodes, keys) = pool_parties(3);
    let quorum = waas_core::ports::SigningQuorum {
        signing_quorum: 3,
        policy_version: 4,
        reference: "tx-1".into(),
    };
    let mut short = start(frost_sign(b"pay 500k"), vec![0, 1], 60);
    short.quorum = Some(quorum.clone());
    let signed = secure::sign_start(&short, &keys.authority).unwrap();
    let reason = refusal(first_event(&nodes, &keys, 0, short.session_id, signed).await);
    assert!(
        reason.contains("2 signers named where policy version 4 requires 3 for tx-1"),
        "{reason}"
    );
    let mut not_signing = start(SessionKind::RotateKeys { new_version: false }, vec![0], 60);
    not_signing.quorum = Some(quorum);
    let signed = secure::sign_start(&not_signing, &keys.authority).unwrap();
    let reason = refusal(first_event(&nodes, &keys, 0, not_signing.session_id, signed).await);
    assert!(reason.contains("does not sign"), "{reason}");
}
