//! `pkcs11` against SoftHSM2. `cargo xtask test` creates a token in a temporary directory
//! and passes `SOFTHSM2_CONF`, `WAAS_TEST_PKCS11_TOKEN` and `WAAS_TEST_PKCS11_PIN`.

use crate::support::context;
use waas_core::ports::CustodyError;
use waas_core::secret::SecretBytes;
use waas_custody::{Pkcs11Config, Pkcs11KeyProtector, open, seal};

fn config(key_label: &str) -> Pkcs11Config {
    let token = std::env::var("WAAS_TEST_PKCS11_TOKEN")
        .expect("WAAS_TEST_PKCS11_TOKEN is unset: run the tests with `cargo xtask test`, which prepares SoftHSM2");
    Pkcs11Config {
        module: std::env::var("WAAS_TEST_PKCS11_MODULE")
            .unwrap_or_else(|_| "/usr/lib/softhsm/libsofthsm2.so".into())
            .into(),
        token_label: token,
        pin: std::env::var("WAAS_TEST_PKCS11_PIN").unwrap_or_else(|_| "1234".into()),
        key_label: key_label.into(),
    }
}

#[tokio::test]
async fn hsm_wrapped_records_round_trip_and_bind_their_context() {
    let label = format!("party-0-{}", uuid::Uuid::now_v7().simple());
    let hsm = Pkcs11KeyProtector::connect(&config(&label)).unwrap();
    let secret = SecretBytes::new(b"another share, sealed by the HSM".to_vec());
    let sealed = seal(&hsm, &context("tenant-a"), &secret).await.unwrap();
    assert!(String::from_utf8_lossy(&sealed).contains("\"protector\":\"pkcs11\""));
    assert_eq!(
        open(&hsm, &context("tenant-a"), &sealed).await.unwrap(),
        secret
    );

    let error = open(&hsm, &context("tenant-b"), &sealed).await.unwrap_err();
    assert!(matches!(error, CustodyError::Integrity(_)), "{error:?}");

    // Connecting again finds the same (persistent, non-extractable) key.
    let again = Pkcs11KeyProtector::connect(&config(&label)).unwrap();
    assert_eq!(
        open(&again, &context("tenant-a"), &sealed).await.unwrap(),
        secret
    );

    // Another party's key (another label) cannot open it.
    let other = Pkcs11KeyProtector::connect(&config(&format!("{label}-other"))).unwrap();
    let error = open(&other, &context("tenant-a"), &sealed)
        .await
        .unwrap_err();
    assert!(matches!(error, CustodyError::Integrity(_)), "{error:?}");

    // Concurrent use draws more sessions from the pool.
    let calls = (0..8).map(|i| {
        let hsm = hsm.clone();
        async move {
            let secret = SecretBytes::new(vec![i; 40]);
            let sealed = seal(&hsm, &context("tenant-a"), &secret).await.unwrap();
            assert_eq!(
                open(&hsm, &context("tenant-a"), &sealed).await.unwrap(),
                secret
            );
        }
    });
    futures_join_all(calls).await;
}

async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    for handle in handles {
        handle.await.unwrap();
    }
}

#[tokio::test]
async fn hsm_key_rotation_keeps_old_records_readable_and_rewraps_them() {
    use waas_core::ports::KeyProtector;
    let label = format!("rotate-{}", uuid::Uuid::now_v7().simple());
    let hsm = std::sync::Arc::new(Pkcs11KeyProtector::connect(&config(&label)).unwrap());
    let first_kek = hsm.current_kek_id();
    let secret = SecretBytes::new(b"sealed before the rotation".to_vec());
    let old = seal(hsm.as_ref(), &context("tenant-a"), &secret)
        .await
        .unwrap();

    let second_kek = hsm.rotate().await.unwrap();
    assert_ne!(first_kek, second_kek);
    assert_eq!(hsm.current_kek_id(), second_kek);
    assert_eq!(
        open(hsm.as_ref(), &context("tenant-a"), &old)
            .await
            .unwrap(),
        secret
    );

    let set = waas_custody::ProtectorSet::single(hsm.clone());
    let rewrapped = waas_custody::rewrap(&set, &context("tenant-a"), &old)
        .await
        .unwrap()
        .expect("re-wrapped");
    assert!(String::from_utf8_lossy(&rewrapped).contains(&second_kek));
    assert_eq!(
        waas_custody::rewrap(&set, &context("tenant-a"), &rewrapped)
            .await
            .unwrap(),
        None
    );

    // A fresh connection finds both versions and uses the newest.
    let again = Pkcs11KeyProtector::connect(&config(&label)).unwrap();
    assert_eq!(again.current_kek_id(), second_kek);
    assert_eq!(
        open(&again, &context("tenant-a"), &old).await.unwrap(),
        secret
    );
    assert_eq!(
        open(&again, &context("tenant-a"), &rewrapped)
            .await
            .unwrap(),
        secret
    );
}
