//! `mode = "production"` means production: it refuses in-process parties, local key files
//! (unless knowingly allowed), operator and metrics tokens under 128 bits of estimated
//! entropy, and a `/metrics` open to anyone who reaches the API port; `/metrics` is then
//! served on a separate listener or behind a bearer token. Development keeps the defaults.

use crate::helpers::*;
use waas_api::Settings;
use waas_api::settings::{NodeAddress, SecretString};
use waas_signer::IdentityKey;

const STRONG_TOKEN: &str = "waas_op_Zk3-q9VbT1xQe7LmN2pR8sWd4yHc6uJf0aGo5iKt";
const METRICS_TOKEN: &str = "metrics-0f3c9a7e5b1d4f8a2c6e0b9d7f1a3c5e";

/// Three separate signer nodes, none of them running (the discard port refuses at once):
/// enough to start the API, whose pool is then simply not ready.
fn unreachable_nodes() -> Vec<NodeAddress> {
    (0..3)
        .map(|_| NodeAddress {
            url: "https://127.0.0.1:9".into(),
            public_key: IdentityKey::generate().public().to_string(),
        })
        .collect()
}

/// A production configuration that passes every check.
fn production_settings(label: &str) -> Settings {
    let mut settings = settings(&unique_dir(label), None, Pool::Cold);
    settings.mode = "production".into();
    settings.signer.nodes = unreachable_nodes();
    settings.signer.allow_local_key_protection_in_production = true;
    settings.operator_token = Some(SecretString::from(STRONG_TOKEN));
    settings.metrics_token = Some(SecretString::from(METRICS_TOKEN));
    settings
}

async fn refusal(settings: Settings) -> String {
    format!(
        "{:#}",
        waas_api::Application::build(settings).await.unwrap_err()
    )
}

#[tokio::test]
async fn production_refuses_in_process_parties_weak_tokens_and_open_metrics() {
    assert!(
        waas_api::Application::build(production_settings("prod-ok"))
            .await
            .is_ok()
    );

    let mut settings = production_settings("prod-in-process");
    settings.signer.nodes.clear();
    let error = refusal(settings).await;
    assert!(
        error.contains("refuses in-process signer parties"),
        "{error}"
    );
    assert!(error.contains("signer.nodes"), "{error}");

    for weak in [
        "waas_op_changeme",
        "0123456789abcdef0123",
        "waas_op_aaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let mut settings = production_settings("prod-weak-operator");
        settings.operator_token = Some(SecretString::from(weak));
        let error = refusal(settings).await;
        assert!(error.contains("refuses operator_token"), "{weak}: {error}");
        assert!(error.contains("128 needed"), "{error}");
        assert!(
            !error.contains(weak),
            "the token itself is never printed: {error}"
        );
    }

    let mut settings = production_settings("prod-weak-metrics");
    settings.metrics_token = Some(SecretString::from("metrics"));
    let error = refusal(settings).await;
    assert!(error.contains("refuses metrics_token"), "{error}");

    let mut settings = production_settings("prod-open-metrics");
    settings.metrics_token = None;
    let error = refusal(settings).await;
    assert!(
        error.contains("metrics_listen") && error.contains("metrics_token"),
        "{error}"
    );

    let mut settings = production_settings("prod-local-keys");
    settings.signer.allow_local_key_protection_in_production = false;
    let error = refusal(settings).await;
    assert!(error.contains("refuses local key files"), "{error}");

    let mut settings = production_settings("prod-typo");
    settings.mode = "prod".into();
    let error = refusal(settings).await;
    assert!(error.contains("neither"), "{error}");

    // Without a configured operator token, the generated one is strong enough.
    let mut settings = production_settings("prod-generated");
    settings.operator_token = None;
    let app = waas_api::Application::build(settings).await.unwrap();
    let generated = app
        .generated_operator_token()
        .expect("generated on first start");
    assert!(waas_tenants::estimated_entropy_bits(generated) >= 128.0);

    // Development accepts what production refuses.
    let mut settings = production_settings("dev-defaults");
    settings.mode = "development".into();
    settings.signer.nodes.clear();
    settings.signer.allow_local_key_protection_in_production = false;
    settings.operator_token = Some(SecretString::from("waas_op_changeme"));
    settings.metrics_token = None;
    assert!(waas_api::Application::build(settings).await.is_ok());
}

#[tokio::test]
async fn metrics_token_is_required_on_metrics_and_only_there() {
    let app = spawn_with(production_settings("metrics-token"), Pool::Cold).await;
    let without = app.send(reqwest::Method::GET, "/metrics", None, None).await;
    without.assert_problem(401, "unauthenticated");
    assert!(
        !without.body.to_string().contains("waas_signer"),
        "{}",
        without.body
    );
    for wrong in [STRONG_TOKEN, "metrics-0f3c9a7e5b1d4f8a2c6e0b9d7f1a3c5", ""] {
        let reply = app.get("/metrics", wrong).await;
        reply.assert_problem(401, "unauthenticated");
    }
    let reply = app.get("/metrics", METRICS_TOKEN).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply
            .body
            .as_str()
            .unwrap()
            .contains("waas_signer_parties_ready 0"),
        "{}",
        reply.body
    );
    // The rest of the API is unchanged: health without a token, the operator with hers.
    let health = app.send(reqwest::Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, 200, "{}", health.body);
    let tenant = app
        .post(
            "/v1/tenants",
            STRONG_TOKEN,
            serde_json::json!({"name": "Acme"}),
        )
        .await;
    assert_eq!(tenant.status, 201, "{}", tenant.body);
}

#[tokio::test]
async fn metrics_listen_serves_metrics_on_a_separate_listener_only() {
    let mut settings = production_settings("metrics-listen");
    settings.metrics_token = None;
    settings.metrics_listen = Some("127.0.0.1:0".into());
    let app = waas_api::Application::build(settings).await.unwrap();
    let api = format!("http://127.0.0.1:{}", app.port());
    let metrics = format!(
        "http://127.0.0.1:{}",
        app.metrics_port().expect("a metrics listener")
    );
    tokio::spawn(app.run_until(std::future::pending()));
    let client = reqwest::Client::new();

    let on_api = client.get(format!("{api}/metrics")).send().await.unwrap();
    assert_eq!(on_api.status(), 404);
    let scraped = client
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(
        scraped
            .text()
            .await
            .unwrap()
            .contains("waas_signer_ecdsa_ready 0")
    );
    // Nothing but /metrics on the metrics listener.
    for path in ["/healthz", "/v1/tenants", "/openapi/v1.json"] {
        let reply = client
            .get(format!("{metrics}{path}"))
            .bearer_auth(STRONG_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 404, "{path}");
    }
    let health = client.get(format!("{api}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn metrics_listen_and_token_together_and_both_stop_with_the_app() {
    let mut settings = production_settings("metrics-both");
    settings.metrics_listen = Some("127.0.0.1:0".into());
    let app = waas_api::Application::build(settings).await.unwrap();
    let metrics = format!("http://127.0.0.1:{}", app.metrics_port().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let without = client
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), 401);
    let with = client
        .get(format!("{metrics}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), 200);
    drop(client);

    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the app stops")
        .unwrap()
        .unwrap();
    let after = reqwest::Client::new()
        .get(format!("{metrics}/metrics"))
        .send()
        .await;
    assert!(after.is_err(), "the metrics listener is closed");
}
