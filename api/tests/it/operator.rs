//! The operator credential: generated on first start when not configured, shown once,
//! stored only as a hash, stable across restarts.

use crate::helpers::{Backend, Pool, spawn_app};
use serde_json::json;
use waas_api::Application;

#[tokio::test]
async fn generated_operator_token_is_shown_once_and_stored_hashed() {
    // Reuse a test app's data directory layout, but start without a configured token.
    let scratch = spawn_app(Backend::Sqlite, Pool::Cold).await;
    let data_dir = scratch.data_dir.join("fresh");
    let mut settings = waas_api::Settings::load(None).unwrap();
    settings.listen = "127.0.0.1:0".into();
    settings.data_dir = data_dir.clone();
    settings.operator_token = None;
    settings.database.url = None;
    settings.signer.generate_primes = false;
    settings.log.level = "warn".into();

    let first = Application::build(settings.clone()).await.unwrap();
    let token = first
        .generated_operator_token()
        .expect("a token on first start")
        .to_string();
    assert!(token.starts_with("waas_op_"));
    let port = first.port();
    tokio::spawn(first.run_until(std::future::pending()));
    let client = reqwest::Client::new();
    let created = client
        .post(format!("http://127.0.0.1:{port}/v1/tenants"))
        .bearer_auth(&token)
        .json(&json!({"name": "Acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let db = std::fs::read(data_dir.join("waas.db")).unwrap();
    assert!(
        !db.windows(token.len()).any(|w| w == token.as_bytes()),
        "operator token stored in plaintext"
    );

    let second = Application::build(settings).await.unwrap();
    assert!(
        second.generated_operator_token().is_none(),
        "token must not be shown again"
    );
}
