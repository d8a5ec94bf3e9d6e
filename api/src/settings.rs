//! Layered configuration: built-in defaults → optional TOML file → `WAAS_…` environment
//! variables (`__` separates sections: `WAAS_DATABASE__URL`, `WAAS_SIGNER__PARTIES`).

pub use secrecy::SecretString;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Everything the server needs. No hidden defaults: [`Settings::load`] states them.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// `host:port` to listen on (`WAAS_LISTEN`).
    pub listen: String,
    /// Where embedded data lives: SQLite database, party stores and key files (`WAAS_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The operator credential (`WAAS_OPERATOR_TOKEN`); when unset one is generated on
    /// first start and printed once.
    pub operator_token: Option<SecretString>,
    #[serde(default)]
    pub database: DatabaseSettings,
    pub signer: SignerSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…` or `sqlite:…`; when unset, SQLite at `<data_dir>/waas.db`.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerSettings {
    /// Number of in-process signer parties `n`.
    pub parties: u16,
    /// Signing threshold `t`.
    pub threshold: u16,
    /// Paillier prime sets each party keeps in reserve after aux info exists.
    pub spare_primes: u32,
    /// Whether parties generate primes in the background.
    pub generate_primes: bool,
    /// A file from `waas primes generate` to seed the parties' prime pools.
    pub primes_file: Option<PathBuf>,
    /// ECDSA presignatures kept ready per key (0 disables).
    pub presignatures_per_key: usize,
    /// Seconds one signing or keygen session may take.
    pub session_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `json` or `pretty`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `waas_api=debug,info`.
    pub level: String,
}

impl Settings {
    /// Defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, config::ConfigError> {
        let mut builder = config::Config::builder()
            .set_default("listen", "127.0.0.1:8080")?
            .set_default("data_dir", "./waas-data")?
            .set_default("signer.parties", 3)?
            .set_default("signer.threshold", 2)?
            .set_default("signer.spare_primes", 1)?
            .set_default("signer.generate_primes", true)?
            .set_default("signer.presignatures_per_key", 2)?
            .set_default("signer.session_timeout_secs", 60)?
            .set_default("log.format", "json")?
            .set_default("log.level", "info")?;
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml));
        }
        builder
            .add_source(
                config::Environment::with_prefix("WAAS")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()
    }

    /// The control-plane database URL, defaulting to SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("waas.db").display()
            ),
        }
    }

    /// Directory of party `index`'s store and key file.
    pub fn party_dir(&self, index: u16) -> PathBuf {
        self.data_dir.join(format!("party-{}", index + 1))
    }
}
