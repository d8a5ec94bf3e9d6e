//! Seeding the signer parties' prime pools from pregenerated per-party primes files
//! (`waas primes generate`), so ECDSA is ready without minutes of prime generation.
//!
//! This module only says which file is whose — `signer.primes_file` on a `waas signer`
//! node, `signer.primes_dir/party-<index+1>.json` for in-process parties (or a node) — and
//! logs the outcome. The plaintext primes never leave `waas_signer`: its
//! `import_primes_file` refuses a file that others can read, that belongs to another party
//! or that holds several parties' primes, imports the party's own primes sealed under its
//! own key, and deletes the file.

use crate::settings::Settings;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use waas_signer::{PartyNode, PartyPrimesFile, PrimesImport, import_primes_file};

/// Seeds each of `parties` that has neither primes nor aux info from its own primes file,
/// when one is configured. A configured file that is unsafe or not the party's own stops
/// the start, needed or not.
pub async fn import_primes(settings: &Settings, parties: &[Arc<PartyNode>]) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for party in parties {
        if let Some(path) = primes_file_of(settings, party.index())? {
            // Every file is checked before any party imports (and deletes) its own, so a
            // refused start changes nothing.
            PartyPrimesFile::check(&path, party.index())?;
            files.push((party, path));
        }
    }
    for (party, path) in files {
        import_party_primes(party, &path).await?;
    }
    Ok(())
}

/// The primes file configured for party `index`, if any.
fn primes_file_of(settings: &Settings, index: u16) -> anyhow::Result<Option<PathBuf>> {
    let signer = &settings.signer;
    match (&signer.primes_file, &signer.primes_dir) {
        (Some(_), Some(_)) => {
            anyhow::bail!("set signer.primes_file (one node's file) or signer.primes_dir, not both")
        }
        (Some(file), None) => {
            anyhow::ensure!(
                settings.node.is_some(),
                "signer.primes_file names one party's primes file and is for a `waas signer` \
                 node; in-process parties each import their own file: put the files from \
                 `waas primes generate --out-dir DIR` in DIR and set signer.primes_dir = DIR"
            );
            Ok(Some(file.clone()))
        }
        (None, Some(dir)) => Ok(Some(PartyPrimesFile::path_in(dir, index))),
        (None, None) => Ok(None),
    }
}

async fn import_party_primes(party: &PartyNode, path: &Path) -> anyhow::Result<()> {
    let index = party.index();
    let path_text = path.display();
    match import_primes_file(party, path).await? {
        PrimesImport::Imported { deleted: true } => tracing::info!(
            party_index = index,
            path = %path_text,
            "imported this party's primes sealed and deleted the plaintext file"
        ),
        PrimesImport::Imported { deleted: false } => tracing::warn!(
            party_index = index,
            path = %path_text,
            "imported this party's primes sealed but could not delete the plaintext file: \
             delete it"
        ),
        PrimesImport::NotNeeded => tracing::warn!(
            party_index = index,
            path = %path_text,
            "this party already has primes or aux info, so its primes file is not imported; \
             if it was imported before, it is this party's Paillier secret: delete it"
        ),
        PrimesImport::Missing => {}
    }
    Ok(())
}
