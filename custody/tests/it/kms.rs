//! `aws-kms` against moto.

use crate::support::{Moto, Proxy, context};
use std::time::Duration;
use waas_core::ports::CustodyError;
use waas_core::secret::SecretBytes;
use waas_custody::{AwsKmsConfig, AwsKmsKeyProtector, open, seal};

async fn protector(port: u16, key_id: Option<String>) -> AwsKmsKeyProtector {
    let mut config = AwsKmsConfig {
        key_id: key_id.unwrap_or_default(),
        previous_key_ids: Vec::new(),
        region: "eu-west-1".into(),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        timeout: Duration::from_secs(3),
        static_credentials: Some(("test".into(), "test".into())),
    };
    if config.key_id.is_empty() {
        let bootstrap = AwsKmsKeyProtector::connect(&config).await;
        config.key_id = bootstrap.create_key("waas test party 0").await.unwrap();
    }
    AwsKmsKeyProtector::connect(&config).await
}

#[tokio::test]
async fn sealed_records_open_only_under_their_encryption_context() {
    let moto = Moto::start();
    let kms = protector(moto.port, None).await;
    let secret = SecretBytes::new(b"a key share that must stay secret".to_vec());
    let sealed = seal(&kms, &context("tenant-a"), &secret).await.unwrap();
    let text = String::from_utf8_lossy(&sealed);
    assert!(text.contains("\"protector\":\"aws-kms\""), "{text}");
    assert!(!sealed.windows(11).any(|w| w == b"a key share"));
    assert_eq!(
        open(&kms, &context("tenant-a"), &sealed).await.unwrap(),
        secret
    );

    // KMS itself refuses the data key under another context.
    let error = open(&kms, &context("tenant-b"), &sealed).await.unwrap_err();
    assert!(matches!(error, CustodyError::Integrity(_)), "{error:?}");

    // Another KMS key cannot open it either.
    let other = protector(moto.port, None).await;
    let error = open(&other, &context("tenant-a"), &sealed)
        .await
        .unwrap_err();
    assert!(matches!(error, CustodyError::Integrity(_)), "{error:?}");
}

#[tokio::test]
async fn an_outage_fails_fast_and_recovery_needs_no_restart() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.port).await;
    let key_id = {
        let direct = protector(moto.port, None).await;
        direct.create_key("outage test").await.unwrap()
    };
    let kms = protector(proxy.port, Some(key_id)).await;
    let secret = SecretBytes::new(vec![42u8; 96]);
    let sealed = seal(&kms, &context("tenant-a"), &secret).await.unwrap();

    proxy.cut();
    let error = open(&kms, &context("tenant-a"), &sealed).await.unwrap_err();
    assert!(matches!(error, CustodyError::Unavailable(_)), "{error:?}");
    let error = seal(&kms, &context("tenant-a"), &secret).await.unwrap_err();
    assert!(matches!(error, CustodyError::Unavailable(_)), "{error:?}");

    proxy.restore().await;
    // The same client recovers: the record is intact and opens.
    assert_eq!(
        open(&kms, &context("tenant-a"), &sealed).await.unwrap(),
        secret
    );
}

#[tokio::test]
async fn moving_to_a_new_kms_key_keeps_old_records_readable_until_rewrapped() {
    let moto = Moto::start();
    let old_kms = protector(moto.port, None).await;
    let old_key = old_kms.create_key("party 0, old").await.unwrap();
    let new_key = old_kms.create_key("party 0, new").await.unwrap();
    let config = |key_id: &str, previous: Vec<String>| AwsKmsConfig {
        key_id: key_id.to_string(),
        previous_key_ids: previous,
        region: "eu-west-1".into(),
        endpoint: Some(format!("http://127.0.0.1:{}", moto.port)),
        timeout: Duration::from_secs(3),
        static_credentials: Some(("test".into(), "test".into())),
    };
    let before = AwsKmsKeyProtector::connect(&config(&old_key, vec![])).await;
    let secret = SecretBytes::new(b"sealed under the old key".to_vec());
    let sealed = seal(&before, &context("tenant-a"), &secret).await.unwrap();

    // The party now uses the new key and still reads the old one.
    let during = std::sync::Arc::new(
        AwsKmsKeyProtector::connect(&config(&new_key, vec![old_key.clone()])).await,
    );
    assert_eq!(
        open(during.as_ref(), &context("tenant-a"), &sealed)
            .await
            .unwrap(),
        secret
    );
    let set = waas_custody::ProtectorSet::single(during.clone());
    let rewrapped = waas_custody::rewrap(&set, &context("tenant-a"), &sealed)
        .await
        .unwrap()
        .expect("re-wrapped");
    assert_eq!(
        waas_custody::rewrap(&set, &context("tenant-a"), &rewrapped)
            .await
            .unwrap(),
        None
    );

    // Once the old key is retired, re-wrapped records open and old ones do not.
    let after = AwsKmsKeyProtector::connect(&config(&new_key, vec![])).await;
    assert_eq!(
        open(&after, &context("tenant-a"), &rewrapped)
            .await
            .unwrap(),
        secret
    );
    let error = open(&after, &context("tenant-a"), &sealed)
        .await
        .unwrap_err();
    assert!(matches!(error, CustodyError::Integrity(_)), "{error:?}");
}
