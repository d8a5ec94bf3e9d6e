//! What `mode = "production"` refuses at start-up, before anything is opened or created:
//! in-process signer parties, weak operator or metrics tokens, and a `/metrics` that anyone
//! who reaches the API port can read; `node_transport` refuses cleartext h2c between the
//! API and the signer nodes (for both). (Local key files are refused where the tiers are
//! chosen, `startup::key_protection_tiers`.) Development keeps every default.

use crate::settings::Settings;
use secrecy::ExposeSecret;
use waas_signer::net::TransportSecurity;
use waas_tenants::{MIN_PRODUCTION_TOKEN_BITS, estimated_entropy_bits};

/// Whether `settings.mode` is production; any value other than `development` and
/// `production` is refused, so a typo cannot fall back to development.
pub fn is_production(settings: &Settings) -> anyhow::Result<bool> {
    match settings.mode.as_str() {
        "production" => Ok(true),
        "development" => Ok(false),
        other => anyhow::bail!("mode = {other:?} is neither \"development\" nor \"production\""),
    }
}

/// Refuses a production configuration that is unsafe; passes any development one.
pub fn refuse_unsafe_production(settings: &Settings) -> anyhow::Result<()> {
    if !is_production(settings)? {
        return Ok(());
    }
    anyhow::ensure!(
        !settings.signer.nodes.is_empty(),
        "mode = production refuses in-process signer parties: this one host would hold every \
         party's share and every party's key access. Run each party as a `waas signer` node on \
         its own host and list them in [[signer.nodes]] (see README, \"Separate signer nodes\")"
    );
    if let Some(token) = &settings.operator_token {
        refuse_weak_token(
            "operator_token (WAAS_OPERATOR_TOKEN)",
            token.expose_secret(),
            "or leave it unset: waas then generates one on first start and prints it once",
        )?;
    }
    if let Some(token) = &settings.metrics_token {
        refuse_weak_token(
            "metrics_token (WAAS_METRICS_TOKEN)",
            token.expose_secret(),
            "",
        )?;
    }
    anyhow::ensure!(
        settings.metrics_listen.is_some() || settings.metrics_token.is_some(),
        "mode = production does not serve /metrics to anyone who reaches the API port: set \
         metrics_listen = \"host:port\" (a separate listener, e.g. on an internal interface) \
         or metrics_token (scrapers send Authorization: Bearer <token>), or both"
    );
    Ok(())
}

fn refuse_weak_token(name: &str, token: &str, alternative: &str) -> anyhow::Result<()> {
    let bits = estimated_entropy_bits(token);
    anyhow::ensure!(
        bits >= MIN_PRODUCTION_TOKEN_BITS,
        "mode = production refuses {name}: about {bits:.0} bits of entropy (length × log2 of \
         the character classes used), {MIN_PRODUCTION_TOKEN_BITS:.0} needed. Use a random \
         one, e.g. `openssl rand -hex 32`{sep}{alternative}",
        sep = if alternative.is_empty() { "" } else { ", " }
    );
    Ok(())
}

/// The node transport from `signer.transport`; `h2c` is refused in production mode.
pub fn node_transport(settings: &Settings) -> anyhow::Result<TransportSecurity> {
    let transport: TransportSecurity = settings
        .signer
        .transport
        .parse()
        .map_err(|reason: String| anyhow::anyhow!(reason))?;
    anyhow::ensure!(
        transport == TransportSecurity::Tls || settings.mode != "production",
        "mode = production refuses signer.transport = \"h2c\" (cleartext between the API and \
         the signer nodes); use \"tls\""
    );
    Ok(transport)
}
