//! One party's pregenerated Paillier primes in a file: what `waas primes generate` writes on
//! a spare machine (prime generation takes minutes) and what that party — and only that
//! party — imports once into its sealed store.
//!
//! A file holds exactly one party's primes and names that party's pool index; it is created
//! owner-only (0600), and a party refuses a file that others can read, that belongs to
//! another party, or that holds several parties' primes (the combined file of earlier
//! versions): whoever holds a party's primes and sees its presigning traffic learns its
//! nonces, so no file may open more than one party.

use crate::party::PartyNode;
use cggmp24::PregeneratedPrimes;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use waas_custody::private_file::{create_owner_only, ensure_owner_only};
use zeroize::Zeroizing;

/// The `format` tag of a per-party primes file.
pub const PRIMES_FILE_FORMAT: &str = "waas-party-primes/1";

/// One party's primes, as stored in its file. `Debug` is redacted.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyPrimesFile {
    /// Always [`PRIMES_FILE_FORMAT`].
    pub format: String,
    /// The 0-based pool index of the party these primes are for (its `node.index`).
    pub index: u16,
    pub primes: PregeneratedPrimes,
}

impl std::fmt::Debug for PartyPrimesFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PartyPrimesFile(index {}, <redacted>)", self.index)
    }
}

/// Only to recognise the combined file of earlier versions (`{"parties": [...]}`).
#[derive(Deserialize)]
struct CombinedProbe {
    #[serde(default)]
    parties: Option<Vec<serde::de::IgnoredAny>>,
}

/// A primes file that cannot be used; the message names the file and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PrimesFileError(pub String);

impl PartyPrimesFile {
    /// Generates primes for party `index` (minutes of CPU; run it on a blocking thread).
    pub fn generate(index: u16) -> Self {
        Self::new(index, PregeneratedPrimes::generate(&mut OsRng))
    }

    pub fn new(index: u16, primes: PregeneratedPrimes) -> Self {
        Self {
            format: PRIMES_FILE_FORMAT.into(),
            index,
            primes,
        }
    }

    /// The file name of party `index`'s primes: `party-<index + 1>.json`, numbered like the
    /// party directories (`party-1` is `node.index = 0`).
    pub fn file_name(index: u16) -> String {
        format!("party-{}.json", u32::from(index) + 1)
    }

    /// `dir`/[`file_name`](Self::file_name).
    pub fn path_in(dir: &Path, index: u16) -> PathBuf {
        dir.join(Self::file_name(index))
    }

    /// Writes a new file at `path`, created with mode 0600; never overwrites one.
    pub fn write_new(&self, path: &Path) -> Result<(), PrimesFileError> {
        let text = Zeroizing::new(
            serde_json::to_vec(self).map_err(|e| PrimesFileError(format!("encoding: {e}")))?,
        );
        create_owner_only(path, &text).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AlreadyExists {
                " (it already exists; it is never overwritten — move it away first)"
            } else {
                ""
            };
            PrimesFileError(format!("writing {}: {e}{hint}", path.display()))
        })
    }

    /// Reads party `expected_index`'s primes file at `path`: refused when the group or others
    /// can read it, when it is not one party's primes file, or when it is another party's.
    pub fn read(path: &Path, expected_index: u16) -> Result<Self, PrimesFileError> {
        ensure_owner_only(path, "primes file").map_err(|e| PrimesFileError(e.0))?;
        let text = Zeroizing::new(
            std::fs::read(path).map_err(|e| PrimesFileError(format!("{}: {e}", path.display())))?,
        );
        Self::from_json(&text, expected_index, path)
    }

    /// Checks party `expected_index`'s primes file at `path` as [`read`](Self::read) does,
    /// when it exists, keeping nothing: so a start refuses every bad file before any party
    /// imports (and deletes) its own.
    pub fn check(path: &Path, expected_index: u16) -> Result<(), PrimesFileError> {
        let exists = path
            .try_exists()
            .map_err(|e| PrimesFileError(format!("primes file {}: {e}", path.display())))?;
        if exists {
            Self::read(path, expected_index)?;
        }
        Ok(())
    }

    /// Parses and checks the contents of a primes file (`origin` names it in messages).
    pub fn from_json(
        text: &[u8],
        expected_index: u16,
        origin: &Path,
    ) -> Result<Self, PrimesFileError> {
        let origin = origin.display();
        let probe: CombinedProbe = serde_json::from_slice(text)
            .map_err(|e| PrimesFileError(format!("primes file {origin} is not JSON: {e}")))?;
        if let Some(parties) = probe.parties {
            return Err(PrimesFileError(format!(
                "primes file {origin} holds {} parties' primes; a party accepts only a file \
                 with its own primes (no file may open more than one party): generate one file \
                 per party with `waas primes generate --out-dir DIR`, give each node only its \
                 own DIR/party-<n>.json, and delete the combined file",
                parties.len()
            )));
        }
        let file: Self = serde_json::from_slice(text).map_err(|e| {
            PrimesFileError(format!(
                "primes file {origin} is not a party primes file from `waas primes generate`: {e}"
            ))
        })?;
        if file.format != PRIMES_FILE_FORMAT {
            return Err(PrimesFileError(format!(
                "primes file {origin} has format {:?}; expected {PRIMES_FILE_FORMAT:?}",
                file.format
            )));
        }
        if file.index != expected_index {
            return Err(PrimesFileError(format!(
                "primes file {origin} holds the primes of party index {} ({}), not of this \
                 party (index {expected_index}, {}): each node imports only its own file",
                file.index,
                Self::file_name(file.index),
                Self::file_name(expected_index)
            )));
        }
        Ok(file)
    }
}

/// What [`import_primes_file`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrimesImport {
    /// The primes are now sealed in the party's store and the file is deleted.
    Imported {
        /// `false` when the file could not be deleted (the operator must delete it).
        deleted: bool,
    },
    /// The party already has primes or aux info; the (valid) file was left alone.
    NotNeeded,
    /// There is no file at the path, and the party has primes or aux info already.
    Missing,
}

/// Seeds `party`'s prime pool from its own primes file at `path` when it has neither primes
/// nor aux info, then deletes the file: from then on the primes exist only sealed at that
/// party. The file is checked ([`PartyPrimesFile::read`]) whenever it exists, needed or not;
/// a missing file is an error only when the party still needs primes.
pub async fn import_primes_file(
    party: &PartyNode,
    path: &Path,
) -> Result<PrimesImport, PrimesFileError> {
    let index = party.index();
    let status = party.status().await;
    let needed = !status.aux_ready && status.primes_available == 0;
    let exists = path
        .try_exists()
        .map_err(|e| PrimesFileError(format!("primes file {}: {e}", path.display())))?;
    if !exists {
        if needed {
            return Err(PrimesFileError(format!(
                "party index {index} has no primes yet and its primes file {} does not exist; \
                 put this party's file from `waas primes generate` there (mode 0600), or unset \
                 the primes setting to let the party generate its own",
                path.display()
            )));
        }
        return Ok(PrimesImport::Missing);
    }
    let file = PartyPrimesFile::read(path, index)?;
    if !needed {
        return Ok(PrimesImport::NotNeeded);
    }
    party.import_primes(&file.primes).await.map_err(|e| {
        PrimesFileError(format!(
            "importing the primes of party index {index} from {}: {e}",
            path.display()
        ))
    })?;
    drop(file);
    Ok(PrimesImport::Imported {
        deleted: std::fs::remove_file(path).is_ok(),
    })
}
