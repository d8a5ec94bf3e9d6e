//! Files that hold secrets on disk — key files (`kek*.key`, `identity.key`, `authority.key`)
//! and a party's Paillier primes file: created owner-only (mode 0600) in the same call that
//! creates them, and refused when the group or others may read them.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Why a secret file was not accepted. The message names the file and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateFileError(pub String);

impl fmt::Display for PrivateFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PrivateFileError {}

/// Creates `path` (which must not exist) with mode 0600 and writes `bytes` to it, synced.
/// The mode is set at creation, so the secret is never readable by others, not even for a
/// moment; an existing file is never overwritten.
pub fn create_owner_only(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Refuses `path` when its mode lets the group or others read, write or run it. `what`
/// names the file in the message ("key file", "primes file").
pub fn ensure_owner_only(path: &Path, what: &str) -> Result<(), PrivateFileError> {
    let metadata = std::fs::metadata(path)
        .map_err(|e| PrivateFileError(format!("{what} {}: {e}", path.display())))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PrivateFileError(format!(
            "{what} {path} is readable by group or others (mode {mode:04o}); it holds secrets \
             and must be readable by its owner only: chmod 600 {path}",
            path = path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_owner_only_never_overwritten_and_shared_files_refused() {
        let dir = std::env::temp_dir().join(format!("waas-private-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret.key");
        create_owner_only(&path, b"one").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(ensure_owner_only(&path, "key file").is_ok());
        assert!(create_owner_only(&path, b"two").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"one");

        for shared in [0o640, 0o604, 0o644, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(shared)).unwrap();
            let error = ensure_owner_only(&path, "key file").unwrap_err().0;
            assert!(
                error.contains(&format!("chmod 600 {}", path.display())),
                "{error}"
            );
            assert!(error.contains(&format!("mode {shared:04o}")), "{error}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
