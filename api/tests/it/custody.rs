//! Key-protection tiers through the whole platform: parties sealing with AWS KMS (moto) or
//! an HSM (SoftHSM2), and a KMS outage answered with 503 and recovered without a restart.
//! (The production guard against local key files is in `production.rs`.)

use crate::helpers::{Pool, SIGNING_SCOPES, TestApp, settings, spawn_with, unique_dir};
use crate::support::{Moto, Proxy};
use ed25519_dalek::Verifier;
use serde_json::json;
use waas_api::settings::{AwsKmsSettings, Pkcs11Settings, SecretString};
use waas_custody::{AwsKmsConfig, AwsKmsKeyProtector};

async fn kms_keys(port: u16, count: usize) -> Vec<String> {
    let admin = AwsKmsKeyProtector::connect(&AwsKmsConfig {
        key_id: String::new(),
        previous_key_ids: Vec::new(),
        region: "eu-west-1".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        timeout: std::time::Duration::from_secs(3),
        static_credentials: Some(("test".into(), "test".into())),
    })
    .await;
    let mut keys = Vec::new();
    for party in 0..count {
        keys.push(
            admin
                .create_key(&format!("waas party {party}"))
                .await
                .unwrap(),
        );
    }
    keys
}

pub(crate) fn verify_ed25519(public_hex: &str, message: &[u8], signature_hex: &str) {
    let public: [u8; 32] = hex::decode(public_hex.trim_start_matches("0x"))
        .unwrap()
        .try_into()
        .unwrap();
    let signature = hex::decode(signature_hex.trim_start_matches("0x")).unwrap();
    ed25519_dalek::VerifyingKey::from_bytes(&public)
        .unwrap()
        .verify(
            message,
            &ed25519_dalek::Signature::from_slice(&signature).unwrap(),
        )
        .expect("Ed25519 signature verifies");
}

/// Settings for a KMS tier reached at `port`, one key per party.
fn kms_settings(port: u16, key_ids: Vec<String>, timeout_secs: u64) -> AwsKmsSettings {
    AwsKmsSettings {
        region: "eu-west-1".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        key_ids,
        previous_key_ids: Vec::new(),
        access_key_id: Some("test".into()),
        secret_access_key: Some(SecretString::from("test")),
        timeout_secs,
    }
}

/// Settings for the SoftHSM2 token `cargo xtask test` prepares; keys under a fresh prefix.
fn pkcs11_settings(prefix: &str) -> Pkcs11Settings {
    let token = std::env::var("WAAS_TEST_PKCS11_TOKEN")
        .expect("WAAS_TEST_PKCS11_TOKEN is unset: run the tests with `cargo xtask test`, which prepares SoftHSM2");
    Pkcs11Settings {
        module: std::env::var("WAAS_TEST_PKCS11_MODULE")
            .unwrap_or_else(|_| "/usr/lib/softhsm/libsofthsm2.so".into())
            .into(),
        token_label: token,
        pin: SecretString::from(
            std::env::var("WAAS_TEST_PKCS11_PIN").unwrap_or_else(|_| "1234".into()),
        ),
        key_label_prefix: format!("{prefix}-{}", uuid::Uuid::now_v7().simple()),
    }
}

/// Creates a Solana wallet; returns its signatures path and public key.
pub(crate) async fn solana_wallet(app: &TestApp, key: &str, name: &str) -> (String, String) {
    let wallet = app.create_wallet(key, "solana", name).await;
    let path = format!("/v1/wallets/{}/signatures", wallet["id"].as_str().unwrap());
    (path, wallet["public_key"].as_str().unwrap().to_string())
}

/// An app whose parties seal under KMS (reached at `kms_port`), with the given cache TTL.
async fn kms_app(label: &str, kms_port: u16, key_ids: Vec<String>, cache_secs: u64) -> TestApp {
    let data_dir = unique_dir(label);
    let mut settings = settings(&data_dir, None, Pool::Cold);
    settings.signer.key_protection = "aws-kms".into();
    settings.signer.data_key_cache_secs = cache_secs;
    settings.signer.aws_kms = Some(kms_settings(kms_port, key_ids, 2));
    spawn_with(settings, Pool::Cold).await
}

#[tokio::test]
async fn a_kms_outage_is_a_503_with_retry_after_and_heals_by_itself() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port).await;
    let key_ids = kms_keys(moto.port, 3).await;
    // No data-key cache: every signature needs KMS (the cached case is tested below).
    let app = kms_app("kms", proxy.port, key_ids, 0).await;
    let data_dir = app.data_dir.clone();
    let (_tenant, key) = app.signing_tenant().await;

    let (path, public_key) = solana_wallet(&app, &key, "kms").await;
    let signed = app
        .post(&path, &key, json!({"kind": "message", "message": "before"}))
        .await;
    assert_eq!(signed.status, 201, "{}", signed.body);
    verify_ed25519(
        &public_key,
        b"before",
        signed.body["signature"].as_str().unwrap(),
    );

    // The shares at rest are wrapped by KMS.
    let store = std::fs::read(data_dir.join("party-1/store.db")).unwrap();
    assert!(store.windows(21).any(|w| w == b"\"protector\":\"aws-kms\""));

    proxy.cut();
    let reply = app
        .post(&path, &key, json!({"kind": "message", "message": "during"}))
        .await;
    reply.assert_problem(503, "custody_unavailable");
    assert!(reply.header("retry-after").is_some());
    let reply = app
        .post(
            "/v1/wallets",
            &key,
            json!({"chain": "solana", "name": "during"}),
        )
        .await;
    reply.assert_problem(503, "custody_unavailable");
    assert_eq!(
        app.get("/v1/wallets", &key).await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing half-written"
    );

    proxy.restore().await;
    let signed = app
        .post(&path, &key, json!({"kind": "message", "message": "after"}))
        .await;
    assert_eq!(signed.status, 201, "{}", signed.body);
    verify_ed25519(
        &public_key,
        b"after",
        signed.body["signature"].as_str().unwrap(),
    );
    let text = app
        .send(reqwest::Method::GET, "/metrics", None, None)
        .await
        .body
        .as_str()
        .unwrap()
        .to_string();
    let errors: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with("waas_custody_errors_total{") && l.contains("protector=\"aws-kms\"")
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(errors >= 1.0, "KMS errors counted: {text}");
}

#[tokio::test]
async fn cached_data_keys_keep_signing_through_a_short_kms_outage() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port).await;
    let key_ids = kms_keys(moto.port, 3).await;
    let app = kms_app("kms-cached", proxy.port, key_ids, 300).await;
    let (_tenant, key) = app.signing_tenant().await;
    let (path, public_key) = solana_wallet(&app, &key, "cached").await;
    for message in ["warm", "hit"] {
        let signed = app
            .post(&path, &key, json!({"kind": "message", "message": message}))
            .await;
        assert_eq!(signed.status, 201, "{}", signed.body);
    }

    proxy.cut();
    // Signing uses data keys already unwrapped; creating a wallet needs KMS and fails fast.
    let signed = app
        .post(&path, &key, json!({"kind": "message", "message": "during"}))
        .await;
    assert_eq!(signed.status, 201, "{}", signed.body);
    verify_ed25519(
        &public_key,
        b"during",
        signed.body["signature"].as_str().unwrap(),
    );
    app.post("/v1/wallets", &key, json!({"chain": "solana", "name": "x"}))
        .await
        .assert_problem(503, "custody_unavailable");

    let text = app
        .send(reqwest::Method::GET, "/metrics", None, None)
        .await
        .body
        .as_str()
        .unwrap()
        .to_string();
    let hits: f64 = text
        .lines()
        .filter(|l| l.starts_with("waas_custody_cache_hits_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(hits >= 2.0, "cache hits counted: {text}");
}

#[tokio::test]
async fn hsm_parties_create_and_sign() {
    let data_dir = unique_dir("hsm");
    let mut settings = settings(&data_dir, None, Pool::Cold);
    settings.signer.key_protection = "pkcs11".into();
    settings.signer.pkcs11 = Some(pkcs11_settings("api-test"));
    let app = spawn_with(settings, Pool::Cold).await;
    let (_tenant, key) = app.signing_tenant().await;
    let (path, public_key) = solana_wallet(&app, &key, "hsm").await;
    let signed = app
        .post(&path, &key, json!({"kind": "message", "message": "hsm"}))
        .await;
    assert_eq!(signed.status, 201, "{}", signed.body);
    verify_ed25519(
        &public_key,
        b"hsm",
        signed.body["signature"].as_str().unwrap(),
    );
    let store = std::fs::read(data_dir.join("party-2/store.db")).unwrap();
    assert!(store.windows(20).any(|w| w == b"\"protector\":\"pkcs11\""));
}

/// One pool, three tiers: each tenant's shares are sealed under its own tier, and a share
/// presented to another tier's protector does not open.
#[tokio::test]
async fn tenants_choose_their_tier_and_shares_open_only_through_it() {
    use waas_core::ports::{ShareStore, StoredRecord};
    let moto = Moto::start();
    let key_ids = kms_keys(moto.port, 3).await;
    let data_dir = unique_dir("tiers");
    crate::helpers::copy_warm_parties(&data_dir).await;
    let mut settings = settings(&data_dir, None, Pool::Warm);
    settings.signer.aws_kms = Some(kms_settings(moto.port, key_ids, 3));
    settings.signer.pkcs11 = Some(pkcs11_settings("tiers"));
    let app = spawn_with(settings, Pool::Warm).await;

    let mut wallets = Vec::new();
    let mut evm_shares = Vec::new();
    for tier in [Some("aws-kms"), Some("pkcs11"), None] {
        let mut body = json!({"name": format!("tenant {tier:?}")});
        if let Some(tier) = tier {
            body["key_protection"] = json!(tier);
        }
        let tenant = app
            .post("/v1/tenants", crate::helpers::OPERATOR_TOKEN, body)
            .await;
        assert_eq!(tenant.status, 201, "{}", tenant.body);
        let expected = tier.unwrap_or("local");
        assert_eq!(tenant.body["key_protection"], expected);
        let id = tenant.body["id"].as_str().unwrap();
        let key = app
            .post(
                &format!("/v1/tenants/{id}/api-keys"),
                crate::helpers::OPERATOR_TOKEN,
                json!({"name": "k", "scopes": SIGNING_SCOPES}),
            )
            .await
            .body["secret"]
            .as_str()
            .unwrap()
            .to_string();
        crate::helpers::publish_policy(&app, &key, crate::helpers::allow_signatures_document())
            .await;
        let wallet = app
            .post("/v1/wallets", &key, json!({"chain": "solana", "name": "w"}))
            .await;
        assert_eq!(wallet.status, 201, "{}", wallet.body);
        assert_eq!(wallet.body["key_protection"], expected);
        let path = format!(
            "/v1/wallets/{}/signatures",
            wallet.body["id"].as_str().unwrap()
        );
        let signed = app
            .post(&path, &key, json!({"kind": "message", "message": "tiered"}))
            .await;
        assert_eq!(signed.status, 201, "{}", signed.body);
        verify_ed25519(
            wallet.body["public_key"].as_str().unwrap(),
            b"tiered",
            signed.body["signature"].as_str().unwrap(),
        );
        // An ECDSA (CGGMP) wallet on the same tier; an outside library recovers its address.
        let evm = app
            .post("/v1/wallets", &key, json!({"chain": "evm", "name": "e"}))
            .await;
        assert_eq!(evm.status, 201, "{}", evm.body);
        assert_eq!(evm.body["key_protection"], expected);
        let digest = [0x42u8; 32];
        let evm_path = format!(
            "/v1/wallets/{}/signatures",
            evm.body["id"].as_str().unwrap()
        );
        let signed = app
            .post(
                &evm_path,
                &key,
                json!({"kind": "hash", "hash": format!("0x{}", hex::encode(digest))}),
            )
            .await;
        assert_eq!(signed.status, 201, "{}", signed.body);
        assert_eq!(
            crate::flow::recover_address(&digest, signed.body["signature"].as_str().unwrap()),
            evm.body["address"].as_str().unwrap().to_lowercase()
        );
        evm_shares.push((expected, evm.body["id"].as_str().unwrap().to_string()));
        wallets.push((
            expected,
            wallet.body["id"].as_str().unwrap().to_string(),
            key,
            path,
        ));
    }

    // An unconfigured tier is refused with the offered ones named.
    let reply = app
        .post(
            "/v1/tenants",
            crate::helpers::OPERATOR_TOKEN,
            json!({"name": "x", "key_protection": "vault"}),
        )
        .await;
    reply.assert_problem(422, "validation_failed");
    assert!(
        reply.body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("local, aws-kms, pkcs11")
    );

    // Each share at every party is sealed under its tenant's tier.
    for index in 1..=3 {
        let url = format!(
            "sqlite://{}?mode=rwc",
            data_dir.join(format!("party-{index}/store.db")).display()
        );
        let store =
            waas_store::PartyStore::new(waas_store::connect_party_store(&url).await.unwrap());
        for (tier, wallet_id, _, _) in &wallets {
            let record = store
                .get("frost-key-package", wallet_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&waas_custody::protector_of(&record.sealed).unwrap(), tier);
        }
        for (tier, wallet_id) in &evm_shares {
            let record = store
                .get("cggmp-incomplete-key-share", wallet_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&waas_custody::protector_of(&record.sealed).unwrap(), tier);
        }
    }

    // Swap the tier of the KMS tenant's share at two parties: the HSM cannot open it, so
    // no signer set can sign, and nothing falls back to another tier.
    let (_, kms_wallet, kms_key, kms_path) = &wallets[0];
    for index in 1..=2 {
        let url = format!(
            "sqlite://{}?mode=rwc",
            data_dir.join(format!("party-{index}/store.db")).display()
        );
        let store =
            waas_store::PartyStore::new(waas_store::connect_party_store(&url).await.unwrap());
        let record = store
            .get("frost-key-package", kms_wallet)
            .await
            .unwrap()
            .unwrap();
        let mut envelope: serde_json::Value = serde_json::from_slice(&record.sealed).unwrap();
        envelope["data_key"]["protector"] = json!("pkcs11");
        assert!(store.delete("frost-key-package", kms_wallet).await.unwrap());
        store
            .insert(StoredRecord {
                sealed: serde_json::to_vec(&envelope).unwrap(),
                ..record
            })
            .await
            .unwrap();
    }
    let reply = app
        .post(
            kms_path,
            kms_key,
            json!({"kind": "message", "message": "swapped"}),
        )
        .await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert_eq!(reply.body["code"], "signing_failed");
}
