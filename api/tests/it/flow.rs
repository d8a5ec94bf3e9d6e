//! The whole slice, on SQLite and PostgreSQL: tenant → API key → wallets (CGGMP ECDSA and
//! FROST Ed25519 DKGs) → signatures verified by independent libraries → audit chain →
//! nothing secret in plaintext at rest.

use crate::helpers::{Backend, Pool, TestApp, spawn_app};
use ed25519_dalek::Verifier;
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use serde_json::{Value, json};
use sha3::{Digest, Keccak256};
use std::time::Duration;

#[tokio::test]
async fn full_flow_on_sqlite() {
    run_full_flow(spawn_app(Backend::Sqlite, Pool::Warm).await).await;
}

#[tokio::test]
async fn full_flow_on_postgres() {
    run_full_flow(spawn_app(Backend::Postgres, Pool::Warm).await).await;
}

fn hex32(text: &str) -> [u8; 32] {
    hex::decode(text.trim_start_matches("0x"))
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

/// Recovers the signer's EVM address from a 65-byte r‖s‖v signature with k256 alone.
pub(crate) fn recover_address(digest: &[u8; 32], signature_hex: &str) -> String {
    let bytes = hex::decode(signature_hex.trim_start_matches("0x")).expect("hex");
    assert_eq!(bytes.len(), 65);
    let signature = Signature::from_slice(&bytes[..64]).expect("r, s");
    assert!(signature.normalize_s().is_none(), "s must be low");
    let v = bytes[64];
    assert!(v == 27 || v == 28, "v = {v}");
    let key = VerifyingKey::recover_from_prehash(
        digest,
        &signature,
        RecoveryId::from_byte(v - 27).unwrap(),
    )
    .expect("recover");
    let point = key.to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    format!("0x{}", hex::encode(&hash[12..]))
}

/// Waits (up to 5 minutes) until the background pool holds a presignature for the key.
async fn wait_for_presignature(app: &TestApp, tenant_id: &str, wallet_id: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while app.coordinator.presignatures_ready(tenant_id, wallet_id) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no presignature in 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn sign(app: &TestApp, key: &str, wallet_id: &str, body: Value) -> Value {
    let reply = app
        .post(&format!("/v1/wallets/{wallet_id}/signatures"), key, body)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

async fn run_full_flow(app: TestApp) {
    let (tenant_id, key) = app.signing_tenant().await;

    // EVM: CGGMP DKG, checksummed address, public key consistent with the address.
    let wallet = app
        .post(
            "/v1/wallets",
            &key,
            json!({"chain": "evm", "name": "treasury"}),
        )
        .await;
    assert_eq!(wallet.status, 201, "{}", wallet.body);
    let evm = wallet.body;
    assert_eq!(evm["scheme"], "ecdsa-secp256k1");
    assert_eq!(evm["threshold"], json!({"t": 2, "n": 3}));
    let address = evm["address"].as_str().unwrap().to_string();
    assert_eq!(address.len(), 42);
    assert_ne!(address.to_lowercase(), address, "EIP-55 mixes case");
    assert_eq!(waas_wallets::eip55_checksum(&address[2..]), address);
    let public_key =
        hex::decode(evm["public_key"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    assert_eq!(public_key.len(), 33);
    let evm_id = evm["id"].as_str().unwrap().to_string();

    // A raw 32-byte hash: the recovered address is the wallet's.
    let digest: [u8; 32] = Keccak256::digest(b"transfer 1 ETH").into();
    let signed = sign(
        &app,
        &key,
        &evm_id,
        json!({"kind": "hash", "hash": format!("0x{}", hex::encode(digest))}),
    )
    .await;
    assert_eq!(signed["kind"], "hash");
    assert_eq!(signed["digest"], format!("0x{}", hex::encode(digest)));
    assert_eq!(
        recover_address(&digest, signed["signature"].as_str().unwrap()),
        address.to_lowercase()
    );
    let signature = signed["signature"].as_str().unwrap();
    assert_eq!(
        signed["r"].as_str().unwrap(),
        format!("0x{}", &signature[2..66])
    );
    assert_eq!(
        signed["s"].as_str().unwrap(),
        format!("0x{}", &signature[66..130])
    );
    assert_eq!(
        signed["v"].as_u64().unwrap(),
        u64::from(u8::from_str_radix(&signature[130..], 16).unwrap())
    );

    // EIP-191 personal_sign of a message, digest computed here independently.
    let message = "Sign in to example.com";
    let prefixed = format!("\x19Ethereum Signed Message:\n{}{message}", message.len());
    let expected: [u8; 32] = Keccak256::digest(prefixed.as_bytes()).into();
    let signed = sign(
        &app,
        &key,
        &evm_id,
        json!({"kind": "message", "message": message}),
    )
    .await;
    assert_eq!(hex32(signed["digest"].as_str().unwrap()), expected);
    assert_eq!(
        recover_address(&expected, signed["signature"].as_str().unwrap()),
        address.to_lowercase()
    );

    // EIP-712 typed data: the example of the EIP itself, whose signing hash it gives.
    let mail = json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [
                {"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
                {"name": "contents", "type": "string"}
            ]
        },
        "primaryType": "Mail",
        "domain": {
            "name": "Ether Mail", "version": "1", "chainId": 1,
            "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
        },
        "message": {
            "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
            "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
            "contents": "Hello, Bob!"
        }
    });
    let expected = hex32("0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2");
    let signed = sign(
        &app,
        &key,
        &evm_id,
        json!({"kind": "typed_data", "typed_data": mail}),
    )
    .await;
    assert_eq!(signed["kind"], "typed_data");
    assert_eq!(hex32(signed["digest"].as_str().unwrap()), expected);
    assert_eq!(
        recover_address(&expected, signed["signature"].as_str().unwrap()),
        address.to_lowercase()
    );
    let mut broken = mail.clone();
    broken["primaryType"] = json!("Letter");
    app.post(
        &format!("/v1/wallets/{evm_id}/signatures"),
        &key,
        json!({"kind": "typed_data", "typed_data": broken}),
    )
    .await
    .assert_problem(422, "validation_failed");

    // Once a presignature is ready, a raw hash still never uses it (a chosen digest signed
    // from a presignature allows forgeries): it is signed interactively.
    wait_for_presignature(&app, &tenant_id, &evm_id).await;
    let before = app.coordinator.presignatures_ready(&tenant_id, &evm_id);
    let digest: [u8; 32] = Keccak256::digest(b"raw").into();
    let signed = sign(
        &app,
        &key,
        &evm_id,
        json!({"kind": "hash", "hash": format!("0x{}", hex::encode(digest))}),
    )
    .await;
    assert_eq!(
        recover_address(&digest, signed["signature"].as_str().unwrap()),
        address.to_lowercase()
    );
    assert_eq!(
        app.coordinator.presignatures_ready(&tenant_id, &evm_id),
        before,
        "a raw hash consumed a presignature"
    );
    // A message the nodes hash themselves consumes one (one online round) and verifies.
    let signed = sign(
        &app,
        &key,
        &evm_id,
        json!({"kind": "message", "message": "presigned"}),
    )
    .await;
    assert_eq!(
        recover_address(
            &waas_wallets::personal_sign_digest(b"presigned"),
            signed["signature"].as_str().unwrap()
        ),
        address.to_lowercase()
    );
    assert!(
        app.coordinator.presignatures_ready(&tenant_id, &evm_id) < before,
        "the presignature was not consumed"
    );

    // Solana: FROST DKG, base58 address = the Ed25519 public key.
    let wallet = app
        .post(
            "/v1/wallets",
            &key,
            json!({"chain": "solana", "name": "payouts"}),
        )
        .await;
    assert_eq!(wallet.status, 201, "{}", wallet.body);
    let sol = wallet.body;
    assert_eq!(sol["scheme"], "frost-ed25519");
    let sol_id = sol["id"].as_str().unwrap().to_string();
    let sol_key = bs58::decode(sol["address"].as_str().unwrap())
        .into_vec()
        .unwrap();
    assert_eq!(
        hex::encode(&sol_key),
        sol["public_key"].as_str().unwrap().trim_start_matches("0x")
    );
    let verifying =
        ed25519_dalek::VerifyingKey::from_bytes(&sol_key.clone().try_into().unwrap()).unwrap();
    for (body, signed_bytes) in [
        (
            json!({"kind": "message", "message": "pay 5 SOL"}),
            b"pay 5 SOL".to_vec(),
        ),
        (
            json!({"kind": "hash", "hash": format!("0x{}", hex::encode([7u8; 32]))}),
            vec![7u8; 32],
        ),
    ] {
        let signed = sign(&app, &key, &sol_id, body).await;
        let bytes = hex::decode(
            signed["signature"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
        )
        .unwrap();
        assert_eq!(bytes.len(), 64);
        assert!(signed.get("v").is_none());
        let signature = ed25519_dalek::Signature::from_slice(&bytes).unwrap();
        verifying
            .verify(&signed_bytes, &signature)
            .expect("Ed25519 signature verifies");
    }

    // Typed data is for EVM wallets only.
    let refused = app
        .post(
            &format!("/v1/wallets/{sol_id}/signatures"),
            &key,
            json!({"kind": "typed_data", "typed_data": mail}),
        )
        .await;
    refused.assert_problem(422, "validation_failed");
    assert_eq!(refused.body["errors"][0]["pointer"], "/typed_data");

    // Reads and cursor pagination.
    let one = app.get(&format!("/v1/wallets/{evm_id}"), &key).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["address"], address);
    let first = app.get("/v1/wallets?limit=1", &key).await;
    assert_eq!(first.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(first.body["data"][0]["id"], evm_id);
    let cursor = first.body["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let second = app
        .get(&format!("/v1/wallets?limit=1&cursor={cursor}"), &key)
        .await;
    assert_eq!(second.body["data"][0]["id"], sol_id);
    assert!(second.body["next_cursor"].is_null());

    verify_event_chain(&app, &key).await;
    crate::flow::assert_no_plaintext_secrets(&app).await;
}

/// Every state change is an event; the chain links and every hash recomputes.
async fn verify_event_chain(app: &TestApp, key: &str) {
    let mut events = Vec::new();
    let mut path = "/v1/events?limit=3".to_string();
    loop {
        let page = app.get(&path, key).await;
        assert_eq!(page.status, 200, "{}", page.body);
        events.extend(page.body["data"].as_array().unwrap().clone());
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/events?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    // Each signature is a request decided by policy, then signed.
    let signature = [
        "signature.requested",
        "signature.approved",
        "signature.signed",
    ];
    let mut expected = vec![
        "tenant.created",
        "api_key.created",
        "policy.draft_saved",
        "policy.published",
        "wallet.created",
    ];
    // hash, personal message, typed data, raw hash with a presignature ready, presigned message
    for _ in 0..5 {
        expected.extend(signature);
    }
    expected.push("wallet.created");
    for _ in 0..2 {
        expected.extend(signature);
    }
    assert_eq!(kinds, expected);
    let mut prev = "0".repeat(64);
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event["sequence"].as_i64().unwrap(), index as i64 + 1);
        assert_eq!(event["prev_hash"].as_str().unwrap(), prev);
        // Recompute the hash from the published fields.
        let recomputed = waas_core::event::chain_hash(
            &hex32(&prev),
            &waas_core::TenantId::parse(
                event["subject_id"]
                    .as_str()
                    .filter(|_| index == 0)
                    .unwrap_or_else(|| events[0]["subject_id"].as_str().unwrap()),
            )
            .unwrap(),
            event["sequence"].as_i64().unwrap(),
            event["kind"].as_str().unwrap(),
            event["subject_id"].as_str().unwrap(),
            &event["payload"],
            chrono::DateTime::parse_from_rfc3339(event["created_at"].as_str().unwrap())
                .unwrap()
                .into(),
        );
        assert_eq!(
            hex::encode(recomputed),
            event["hash"].as_str().unwrap(),
            "event {index}"
        );
        prev = event["hash"].as_str().unwrap().to_string();
    }
}

fn collect_long_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) if text.len() >= 40 => out.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_long_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_long_strings(v, out)),
        _ => {}
    }
}

fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            files_under(&entry.path(), out);
        } else {
            out.push(entry.path());
        }
    }
}

/// Decrypts every sealed record with the parties' own key files (as only a party can), takes
/// the secret values out of them, and proves none appears in any file or database table.
pub async fn assert_no_plaintext_secrets(app: &TestApp) {
    use sea_orm::ConnectionTrait;
    use waas_core::ports::KeyContext;
    let mut needles: Vec<Vec<u8>> = Vec::new();
    for (index, kind, id, record) in crate::helpers::party_records(app).await {
        let dir = app.data_dir.join(format!("party-{}", index + 1));
        let protector =
            waas_custody::LocalKeyProtector::open_or_create(&dir.join("kek.key")).unwrap();
        let context = KeyContext {
            tenant: record.tenant.clone(),
            key: id.clone(),
            party: index,
            version: 1,
        };
        let plain = waas_custody::open(&protector, &context, &record.sealed)
            .await
            .unwrap();
        if std::env::var("WAAS_TEST_DEBUG_NEEDLES").is_ok() {
            eprintln!("party {index} {kind} {id}: needles from {}", needles.len());
        }
        if kind == "frost-key-package" {
            let package = frost_ed25519::keys::KeyPackage::deserialize(plain.expose()).unwrap();
            let share = package.signing_share().serialize();
            needles.push(hex::encode(&share).into_bytes());
            needles.push(share);
        } else {
            let json: Value = serde_json::from_slice(plain.expose()).unwrap();
            let mut strings = Vec::new();
            collect_long_strings(&json, &mut strings);
            for text in strings {
                // Skip the shared public key: it is public and stored as the wallet's key.
                if text.len() == 66 && (text.starts_with("02") || text.starts_with("03")) {
                    continue;
                }
                if let Ok(raw) = hex::decode(&text) {
                    needles.push(raw);
                }
                needles.push(text.into_bytes());
            }
        }
    }
    // Keep only high-entropy values: secrets are random; small public constants (party
    // indices encoded as scalars, say) would match unrelated zero-filled pages.
    needles.retain(|needle| {
        let window = &needle[..needle.len().min(24)];
        window
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len()
            >= 12
    });
    assert!(
        needles.len() >= 6,
        "expected secrets in the party stores, found {}",
        needles.len()
    );
    let find = |haystack: &[u8]| {
        needles.iter().position(|needle| {
            let window = &needle[..needle.len().min(24)];
            haystack.windows(window.len()).any(|w| w == window)
        })
    };
    // The probe itself must work: a haystack holding a secret is caught.
    assert_eq!(
        find(&[b"padding".as_slice(), &needles[0], b"padding"].concat()),
        Some(0)
    );
    let probe = |haystack: &[u8], source: &str| {
        if let Some(index) = find(haystack) {
            panic!(
                "secret material (needle {index} of {}) found in plaintext in {source}",
                needles.len()
            );
        }
    };
    let mut files = Vec::new();
    files_under(&app.data_dir, &mut files);
    for file in &files {
        probe(&std::fs::read(file).unwrap(), &file.display().to_string());
    }
    if app.database_url.starts_with("postgres") {
        let db = sea_orm::Database::connect(&app.database_url).await.unwrap();
        for table in [
            "tenants",
            "api_keys",
            "wallets",
            "signatures",
            "events",
            "operator_credentials",
        ] {
            let rows = db
                .query_all_raw(sea_orm::Statement::from_string(
                    sea_orm::DatabaseBackend::Postgres,
                    format!("SELECT t::text AS row FROM {table} t"),
                ))
                .await
                .unwrap();
            for row in rows {
                let text: String = row.try_get("", "row").unwrap();
                probe(text.as_bytes(), table);
            }
        }
    }
}

/// A presignature lives only in the memory of the party processes that made it (ADR 0009):
/// no party store holds one, and a second process on a party's store (as after a restore)
/// cannot use it, even with the id and a fresh, valid authorization; the pool then signs
/// from it exactly once.
#[tokio::test]
async fn a_presignature_is_used_at_most_once() {
    use waas_signer::secure::{self, EventVerifier};
    use waas_signer::{
        IdentityKey, LocalPartyLink, PartyConfig, PartyEvent, PartyLink, PartyNode, PartyTrust,
        SessionKind, SessionStart,
    };
    let app = spawn_app(Backend::Sqlite, Pool::Warm).await;
    let (tenant_id, key) = app.signing_tenant().await;
    let wallet = app
        .post("/v1/wallets", &key, json!({"chain": "evm", "name": "w"}))
        .await;
    let wallet_id = wallet.body["id"].as_str().unwrap().to_string();
    let address = wallet.body["address"].as_str().unwrap().to_lowercase();
    wait_for_presignature(&app, &tenant_id, &wallet_id).await;
    let (presignature_id, signers) = app
        .coordinator
        .presignatures(&tenant_id, &wallet_id)
        .remove(0);
    for (_, kind, id, _) in crate::helpers::party_records(&app).await {
        assert_ne!(kind, "cggmp-presignature", "a stored presignature: {id}");
    }

    // Open a signer's store as a second process would (same store, key file and identity).
    let index = signers[0];
    let authority = IdentityKey::open(&app.data_dir.join("authority.key")).unwrap();
    let dir = app.data_dir.join(format!("party-{}", index + 1));
    let url = format!("sqlite://{}?mode=rwc", dir.join("store.db").display());
    let store = std::sync::Arc::new(waas_store::PartyStore::new(
        waas_store::connect_party_store(&url).await.unwrap(),
    ));
    let protector = waas_custody::LocalKeyProtector::open_or_create(&dir.join("kek.key")).unwrap();
    let peers = (1..=3)
        .map(|p| {
            IdentityKey::open(&app.data_dir.join(format!("party-{p}/identity.key")))
                .unwrap()
                .public()
        })
        .collect();
    let node = std::sync::Arc::new(PartyNode::new(
        PartyConfig {
            index,
            parties: 3,
            spare_primes: 0,
            generate_primes: false,
        },
        store,
        waas_custody::ProtectorSet::single(std::sync::Arc::new(protector)),
        PartyTrust {
            identity: std::sync::Arc::new(IdentityKey::open(&dir.join("identity.key")).unwrap()),
            authorities: vec![authority.public()],
            peers,
        },
    ));
    let node_key = node.identity();
    let link = LocalPartyLink::new(node);
    // A fresh authorization each time: a refusal must come from the presignature, not from
    // a replayed authorization.
    for session in [9u8, 10] {
        let start = SessionStart {
            session_id: [session; 32],
            participants: signers.clone(),
            kind: SessionKind::EcdsaSignPresigned {
                tenant: tenant_id.clone(),
                key_id: wallet_id.clone(),
                presignature_id: presignature_id.clone(),
                digest: waas_wallets::personal_sign_digest(b"reuse"),
                preimage: Some(waas_signer::Preimage::PersonalMessage(b"reuse".to_vec())),
            },
            expires_at: secure::now_unix() + 60,
            quorum: None,
        };
        let signed = secure::sign_start(&start, &authority).unwrap();
        let mut session = link.open(signed).await.unwrap();
        let event = session.from_party.recv().await.unwrap();
        match EventVerifier::new(node_key, start.session_id, index)
            .verify(&event)
            .unwrap()
        {
            PartyEvent::Failed { reason, .. } => assert!(
                reason.contains("presignature") && reason.contains("unknown or already used"),
                "{reason}"
            ),
            other => panic!("a second process must not use the presignature: {other:?}"),
        }
    }

    // The pool signs from it, once: it leaves the index, and the signature verifies.
    let hits =
        || waas_signer::metrics::PoolMetrics::get(&app.coordinator.metrics().presignature_hits);
    let hits_before = hits();
    let digest = waas_wallets::personal_sign_digest(b"from the presignature");
    let signed = sign(
        &app,
        &key,
        &wallet_id,
        json!({"kind": "message", "message": "from the presignature"}),
    )
    .await;
    assert_eq!(
        recover_address(&digest, signed["signature"].as_str().unwrap()),
        address
    );
    assert_eq!(hits(), hits_before + 1);
    assert!(
        !app.coordinator
            .presignatures(&tenant_id, &wallet_id)
            .iter()
            .any(|(id, _)| *id == presignature_id)
    );
}
