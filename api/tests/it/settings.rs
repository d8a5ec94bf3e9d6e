//! Layered settings: built-in defaults, then a TOML file.

use waas_api::Settings;

#[test]
fn file_values_override_defaults_and_unknown_keys_are_refused() {
    let dir = std::env::temp_dir().join(format!("waas-settings-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("waas.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9999\"\n[signer]\nparties = 5\nthreshold = 3\n[database]\nurl = \"postgres://db/waas\"\n",
    )
    .unwrap();
    let settings = Settings::load(Some(&file)).unwrap();
    assert_eq!(settings.signer.parties, 5);
    assert_eq!(settings.signer.threshold, 3);
    assert_eq!(settings.database_url(), "postgres://db/waas");
    // Untouched values keep their defaults.
    assert_eq!(settings.signer.presignatures_per_key, 2);
    assert_eq!(settings.log.format, "json");
    if std::env::var("WAAS_LISTEN").is_err() {
        assert_eq!(settings.listen, "127.0.0.1:9999");
    }

    std::fs::write(&file, "[signer]\nparties = 3\nthresold = 2\n").unwrap();
    let error = Settings::load(Some(&file)).unwrap_err().to_string();
    assert!(error.contains("thresold"), "{error}");

    let defaults = Settings::load(None).unwrap();
    if std::env::var("WAAS_DATA_DIR").is_err() && std::env::var("WAAS_DATABASE__URL").is_err() {
        assert!(
            defaults
                .database_url()
                .starts_with("sqlite://./waas-data/waas.db")
        );
    }
}
