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
    /// `development` or `production` (`WAAS_MODE`). Production refuses in-process parties,
    /// local key files, weak operator or metrics tokens and an open `/metrics`
    /// (`crate::production`).
    pub mode: String,
    /// The operator credential (`WAAS_OPERATOR_TOKEN`); when unset one is generated on
    /// first start and printed once. Production refuses one under 128 bits of estimated
    /// entropy (see `waas_tenants::estimated_entropy_bits`).
    pub operator_token: Option<SecretString>,
    /// Serve `/metrics` on this separate `host:port` only (`WAAS_METRICS_LISTEN`), not on
    /// `listen`. Production needs this or `metrics_token`.
    #[serde(default)]
    pub metrics_listen: Option<String>,
    /// Require `Authorization: Bearer <metrics_token>` on `/metrics`
    /// (`WAAS_METRICS_TOKEN`); at least 128 bits of estimated entropy in production.
    #[serde(default)]
    pub metrics_token: Option<SecretString>,
    #[serde(default)]
    pub database: DatabaseSettings,
    pub signer: SignerSettings,
    pub log: LogSettings,
    /// Set only for `waas signer`: which party this process is.
    #[serde(default)]
    pub node: Option<NodeSettings>,
    /// USD prices for policy decisions: `ASSET = "price"` for every network, or
    /// `"network:ASSET" = "price"` for one (`[prices]` in the TOML file). Assets without a
    /// price make USD-based rules deny.
    #[serde(default)]
    pub prices: std::collections::BTreeMap<String, String>,
    /// Seconds a transaction request may wait for its approvals before it expires
    /// (`WAAS_APPROVAL_WINDOW_SECS`).
    pub approval_window_secs: u64,
    /// Chain networks transactions can be sent on (`[[networks]]` in the TOML file; see
    /// the README). None by default.
    #[serde(default)]
    pub networks: Vec<waas_chains::NetworkConfig>,
    /// How often the executor looks for transactions to move on (sign, send, confirm), in
    /// milliseconds (`WAAS_CHAIN_POLL_MS`).
    pub chain_poll_ms: u64,
    /// Seconds a worker holds a transaction request it drives (`WAAS_CHAIN_LEASE_SECS`,
    /// default 120). After a crash the request is taken up again once this has passed; with
    /// several API processes on one database it must exceed the longest drive (a signing
    /// session plus a few RPC timeouts).
    pub chain_lease_secs: u64,
    /// Shared state of several API processes (rate limits, revocations): `[redis]`.
    #[serde(default)]
    pub redis: RedisSettings,
    /// Plans by name (`[plans.<name>]`), laid over the built-in `free`, `standard` and
    /// `enterprise` (see `waas_tenants::builtin_plans`).
    #[serde(default)]
    pub plans: std::collections::BTreeMap<String, waas_tenants::Plan>,
    /// The plan of tenants created without one (`WAAS_DEFAULT_PLAN`, default `standard`).
    #[serde(default = "default_plan")]
    pub default_plan: String,
    /// Limits that are not part of a plan: `[limits]`.
    #[serde(default)]
    pub limits: LimitSettings,
    /// OAuth2 client credentials and the JWTs they yield: `[oauth]`.
    #[serde(default)]
    pub oauth: OAuthSettings,
    /// API versions: `[versions]`.
    #[serde(default)]
    pub versions: VersionSettings,
    /// `Idempotency-Key` handling: `[idempotency]`.
    #[serde(default)]
    pub idempotency: IdempotencySettings,
}

fn default_plan() -> String {
    waas_tenants::DEFAULT_PLAN.to_string()
}

/// Redis, shared by every API process of a deployment. Unset: each process limits on its
/// own (`limits.api_nodes` divides the plan rates) and revocations reach other processes
/// only through their cache expiry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db` (`WAAS_REDIS__URL`); may carry a password, so it is secret.
    #[serde(default)]
    pub url: Option<SecretString>,
    /// Prefix of the invalidation bus's pub/sub channels (`WAAS_REDIS__CHANNEL_PREFIX`,
    /// default `waas`): `<prefix>:invalidate:<topic>`. Deployments sharing one Redis need
    /// different prefixes.
    #[serde(default)]
    pub channel_prefix: Option<String>,
}

/// Request limits that are not part of a plan.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// How many API processes share the load (`WAAS_LIMITS__API_NODES`, default 1). Without
    /// a reachable Redis each process allows the plan rate divided by this number.
    pub api_nodes: u32,
    /// Per client address: requests without a credential or with a bad one.
    pub unauthenticated: waas_tenants::RateLimit,
    /// Seconds any request may take before it is answered `503 request_timeout`
    /// (`WAAS_LIMITS__REQUEST_TIMEOUT_SECS`, default 30). Long work (signing on chain,
    /// confirmations) continues asynchronously; a changing request that runs out of time is
    /// still carried to its end in the background (see `crate::timeout`).
    pub request_timeout_secs: u64,
    /// Prefix of every rate-limit key in Redis (`WAAS_LIMITS__REDIS_KEY_PREFIX`, default
    /// `waas:`), so several deployments can share one Redis.
    pub redis_key_prefix: String,
    /// Upper bound of one Redis rate-limit call in milliseconds
    /// (`WAAS_LIMITS__REDIS_TIMEOUT_MS`, default 100). A slower or failed call is decided
    /// by the local limiter instead.
    pub redis_timeout_ms: u64,
    /// After a failed Redis call, milliseconds before Redis is tried again
    /// (`WAAS_LIMITS__REDIS_RETRY_MS`, default 2000); meanwhile every request is decided
    /// locally at once, so a dead Redis adds no latency.
    pub redis_retry_ms: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            api_nodes: 1,
            unauthenticated: waas_tenants::RateLimit::per_second(10, 50),
            request_timeout_secs: 30,
            redis_key_prefix: "waas:".into(),
            redis_timeout_ms: 100,
            redis_retry_ms: 2_000,
        }
    }
}

/// OAuth2 client credentials (`POST /oauth/token`), the JWT access tokens, and how fast
/// API-key revocations reach every API process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthSettings {
    /// Lifetime of an access token in seconds, 1 to 900 (`WAAS_OAUTH__TOKEN_TTL_SECS`,
    /// default 900).
    pub token_ttl_secs: u64,
    /// The `iss` claim of access tokens, checked on each (`WAAS_OAUTH__ISSUER`, default
    /// `urn:waas`). Every API process of a deployment must use the same.
    pub issuer: String,
    /// Clock skew tolerated on a token's `exp` and `nbf`, in seconds, 0 to 60
    /// (`WAAS_OAUTH__CLOCK_LEEWAY_SECS`, default 5).
    pub clock_leeway_secs: u64,
    /// How long one JWT signing key of a process signs before the process makes a new one,
    /// in seconds, at least 60 (`WAAS_OAUTH__SIGNING_KEY_ROTATION_SECS`, default 6 hours).
    pub signing_key_rotation_secs: u64,
    /// How often each API process reloads the API keys revoked lately, in seconds, 1 to 300
    /// (`WAAS_OAUTH__REVOCATION_SWEEP_SECS`, default 5): the bound on how long a revoked key
    /// or its tokens may still work on a process that missed the revocation message.
    pub revocation_sweep_secs: u64,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        Self {
            token_ttl_secs: 900,
            issuer: "urn:waas".into(),
            clock_leeway_secs: 5,
            signing_key_rotation_secs: 6 * 3600,
            revocation_sweep_secs: 5,
        }
    }
}

impl OAuthSettings {
    /// Refuses values outside the documented ranges.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=waas_tenants::MAX_TOKEN_TTL_SECS).contains(&self.token_ttl_secs) {
            return Err(format!(
                "oauth.token_ttl_secs = {} must be 1 to {}",
                self.token_ttl_secs,
                waas_tenants::MAX_TOKEN_TTL_SECS
            ));
        }
        if self.issuer.trim().is_empty() {
            return Err("oauth.issuer must not be empty".into());
        }
        if self.clock_leeway_secs > 60 {
            return Err("oauth.clock_leeway_secs must be at most 60".into());
        }
        if self.signing_key_rotation_secs < 60 {
            return Err("oauth.signing_key_rotation_secs must be at least 60".into());
        }
        if !(1..=300).contains(&self.revocation_sweep_secs) {
            return Err("oauth.revocation_sweep_secs must be 1 to 300".into());
        }
        Ok(())
    }
}

/// API versions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VersionSettings {
    /// The date `/v1` is retired, sent in its `Sunset` header (RFC 8594), `YYYY-MM-DD`.
    pub v1_sunset: String,
}

impl Default for VersionSettings {
    fn default() -> Self {
        Self {
            v1_sunset: "2027-12-31".into(),
        }
    }
}

/// How long idempotency keys are kept (see `crate::idempotency`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencySettings {
    /// Seconds a key is remembered after its first request (`WAAS_IDEMPOTENCY__TTL_SECS`,
    /// default 86 400 = 24 h); afterwards it may be used again.
    pub ttl_secs: u64,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        Self { ttl_secs: 86_400 }
    }
}

/// One signer node (`waas signer`): one party per process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// 0-based pool index of this party.
    pub index: u16,
    /// `host:port` for coordinators to reach this node.
    pub listen: String,
    /// This party's store, key file and identity key; defaults to `<data_dir>/party-<index+1>`.
    pub dir: Option<PathBuf>,
    /// The party's store (`sqlite:…` or `postgres:…`); defaults to SQLite in `dir`.
    pub store_url: Option<String>,
    /// Control-plane public keys allowed to authorize sessions (hex; `waas identity`).
    pub authority_public_keys: Vec<String>,
    /// Identity public key of every party in the pool, in pool order (hex).
    pub peer_public_keys: Vec<String>,
}

/// A remote signer node as the API's coordinator sees it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAddress {
    /// `https://host:port` (`http://` with `signer.transport = "h2c"`).
    pub url: String,
    /// The node's pinned identity public key (hex).
    pub public_key: String,
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
    /// `waas signer` only: this node's own primes file from `waas primes generate`
    /// (`party-<index+1>.json`, mode 0600) to seed its prime pool. Imported sealed once,
    /// then deleted. Refused when others can read it or it holds another party's primes.
    pub primes_file: Option<PathBuf>,
    /// A directory of per-party primes files (`party-<n>.json` for party index `n - 1`),
    /// for in-process parties: each party imports only its own file, sealed, then deletes it.
    pub primes_dir: Option<PathBuf>,
    /// ECDSA presignatures kept ready per key (0 disables).
    pub presignatures_per_key: usize,
    /// Share of wall time presignature refills may use (0.05–1); they also pause while
    /// live requests run.
    pub refill_time_share: f64,
    /// FROST nonce pairs each party keeps precommitted per Ed25519 key, so signing takes
    /// one round (0 disables).
    pub frost_nonces_per_party: usize,
    /// Seconds one signing or keygen session may take.
    pub session_timeout_secs: u64,
    /// How every party protects its records: `local` (a key file per party), `aws-kms`
    /// (one KMS key per party) or `pkcs11` (one HSM key per party).
    pub key_protection: String,
    /// Seconds an unwrapped data key stays cached in memory (0 disables the cache).
    pub data_key_cache_secs: u64,
    /// Allow `local` key protection when `mode = "production"` (refused otherwise).
    pub allow_local_key_protection_in_production: bool,
    #[serde(default)]
    pub aws_kms: Option<AwsKmsSettings>,
    #[serde(default)]
    pub pkcs11: Option<Pkcs11Settings>,
    /// Separate signer nodes (`waas signer`), in pool order. Empty: the parties run in this
    /// process (the embedded default).
    #[serde(default)]
    pub nodes: Vec<NodeAddress>,
    /// The control-plane identity key that signs session authorizations; defaults to
    /// `<data_dir>/authority.key` (created on first start).
    pub authority_key_file: Option<PathBuf>,
    /// How the API and `waas signer` nodes talk: `tls` (TLS 1.3, both ends authenticated by
    /// their pinned identity keys; nodes at `https://`) or `h2c` (cleartext, development
    /// only; refused when `mode = "production"`).
    pub transport: String,
}

/// AWS KMS for the parties: one key per party, so no single key opens a threshold of shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsKmsSettings {
    pub region: String,
    /// An endpoint override (VPC endpoint, emulator).
    pub endpoint: Option<String>,
    /// Key id or ARN per party, in party order (`WAAS_SIGNER__AWS_KMS__KEY_IDS=a,b,c`).
    pub key_ids: Vec<String>,
    /// After moving parties to new keys: their previous keys, in party order, readable until
    /// `waas keys rotate --resume` has re-wrapped every record.
    #[serde(default)]
    pub previous_key_ids: Vec<String>,
    /// Fixed credentials; unset uses the standard AWS chain (environment, profile, role).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
    /// Upper bound for one KMS call, retries included.
    #[serde(default = "default_kms_timeout")]
    pub timeout_secs: u64,
}

fn default_kms_timeout() -> u64 {
    5
}

/// A PKCS#11 HSM for the parties: party `i` uses the key labelled `<key_label_prefix>-<i>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Settings {
    pub module: PathBuf,
    pub token_label: String,
    pub pin: SecretString,
    #[serde(default = "default_key_label_prefix")]
    pub key_label_prefix: String,
}

fn default_key_label_prefix() -> String {
    "waas-party".into()
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
            .set_default("mode", "development")?
            .set_default("signer.key_protection", "local")?
            .set_default("signer.data_key_cache_secs", 300)?
            .set_default("signer.allow_local_key_protection_in_production", false)?
            .set_default("signer.parties", 3)?
            .set_default("signer.threshold", 2)?
            .set_default("signer.spare_primes", 1)?
            .set_default("signer.generate_primes", true)?
            .set_default("signer.presignatures_per_key", 2)?
            .set_default("signer.refill_time_share", 0.5)?
            .set_default("signer.frost_nonces_per_party", 4)?
            .set_default("signer.session_timeout_secs", 60)?
            .set_default("signer.transport", "tls")?
            .set_default("approval_window_secs", 86_400)?
            .set_default("chain_poll_ms", 1_000)?
            .set_default("chain_lease_secs", 120)?
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
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("signer.aws_kms.key_ids")
                    .with_list_parse_key("signer.aws_kms.previous_key_ids"),
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

    /// The control-plane identity key file.
    pub fn authority_key_file(&self) -> PathBuf {
        self.signer
            .authority_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("authority.key"))
    }

    /// Directory of party `index`'s store and key file.
    pub fn party_dir(&self, index: u16) -> PathBuf {
        self.data_dir.join(format!("party-{}", index + 1))
    }
}
