//! The committed spec matches the code. `WAAS_UPDATE_OPENAPI=1` (what `cargo xtask openapi`
//! sets) rewrites the file instead.

use crate::helpers::{Backend, Pool, spawn_app};
use reqwest::Method;
use std::path::Path;

#[tokio::test]
async fn committed_spec_matches_the_served_one() {
    let generated = waas_api::openapi::v1_json();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/v1.json");
    if std::env::var("WAAS_UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/v1.json is out of date: run `cargo xtask openapi` and commit the result"
    );

    let app = spawn_app(Backend::Sqlite, Pool::Cold).await;
    let served = app.send(Method::GET, "/openapi/v1.json", None, None).await;
    assert_eq!(served.status, 200);
    let committed: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(served.body, committed);
    for path in [
        "/v1/tenants",
        "/v1/api-keys",
        "/v1/wallets",
        "/v1/wallets/{wallet_id}/signatures",
        "/v1/events",
        "/readyz",
    ] {
        assert!(
            committed["paths"].get(path).is_some(),
            "{path} missing from the spec"
        );
    }
}
