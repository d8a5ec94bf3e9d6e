//! No file opens more than one party: `waas primes generate` writes one owner-only file per
//! party; a party imports only its own file, sealed, then deletes it; nodes and apps refuse
//! primes files that others can read, that hold several parties' primes or another party's,
//! and key files that others can read.

use crate::helpers::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use waas_api::startup::{build_party, import_primes, party_identity};
use waas_signer::{IdentityKey, PartyPrimesFile, PartyTrust};

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs `waas` with `args` (and `env`); its exit code and standard error.
fn run_waas(args: &[&str], env: &[(&str, &Path)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_waas"));
    command.args(args).stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run waas");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The combined file earlier versions wrote: every party's primes in one document.
fn combined_primes_file(dir: &Path) -> PathBuf {
    let parties: Vec<serde_json::Value> = committed_primes_files()
        .iter()
        .map(|file| {
            let party: serde_json::Value =
                serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
            party["primes"].clone()
        })
        .collect();
    let path = dir.join("primes.json");
    std::fs::write(&path, serde_json::json!({ "parties": parties }).to_string()).unwrap();
    chmod(&path, 0o600);
    path
}

#[test]
fn primes_generate_writes_one_owner_only_file_per_party() {
    let root = unique_dir("primes-generate");
    let out = root.join("out");
    // Debug builds read the committed fixture instead of minutes of prime generation; the
    // files are written by the real command.
    let fixture = crate::fixture::committed_primes_dir();
    let env = [("WAAS_TEST_PRIMES_FROM", fixture.as_path())];
    let out_arg = out.to_str().unwrap();
    let (code, stderr) = run_waas(
        &["primes", "generate", "--parties", "3", "--out-dir", out_arg],
        &env,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(mode_of(&out), 0o700);
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["party-1.json", "party-2.json", "party-3.json"]);
    for index in 0u16..3 {
        let path = out.join(format!("party-{}.json", index + 1));
        assert_eq!(mode_of(&path), 0o600, "{}", path.display());
        let document: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let keys: Vec<&String> = document.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["format", "index", "primes"],
            "one party's primes only"
        );
        assert_eq!(document["index"], index);
        // Exactly one party's prime set: this party's (the fixture stands in for generation).
        let source: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&committed_primes_files()[usize::from(index)]).unwrap(),
        )
        .unwrap();
        assert_eq!(document["primes"], source["primes"]);
        let file = PartyPrimesFile::read(&path, index).unwrap();
        assert_eq!(file.index, index);
        let other = (index + 1) % 3;
        let refused = PartyPrimesFile::read(&path, other).unwrap_err().to_string();
        assert!(refused.contains("not of this party"), "{refused}");
    }

    // An existing file is never overwritten, and nothing is generated first.
    let before = std::fs::read(out.join("party-2.json")).unwrap();
    let (code, stderr) = run_waas(
        &["primes", "generate", "--parties", "3", "--out-dir", out_arg],
        &env,
    );
    assert_ne!(code, Some(0));
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read(out.join("party-2.json")).unwrap(), before);

    // One party's file on its own (e.g. generated on that party's machine).
    let single = root.join("single");
    let (code, stderr) = run_waas(
        &[
            "primes",
            "generate",
            "--parties",
            "3",
            "--index",
            "2",
            "--out-dir",
            single.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(code, Some(0), "{stderr}");
    let names: Vec<_> = std::fs::read_dir(&single).unwrap().collect();
    assert_eq!(names.len(), 1);
    assert_eq!(mode_of(&single.join("party-3.json")), 0o600);
    assert_eq!(
        PartyPrimesFile::read(&single.join("party-3.json"), 2)
            .unwrap()
            .index,
        2
    );
}

/// Three in-process parties on `data_dir` (no coordinator, so nothing runs in the
/// background).
async fn parties(settings: &waas_api::Settings) -> Vec<Arc<waas_signer::PartyNode>> {
    let authority = IdentityKey::generate();
    let identities: Vec<_> = (0..3)
        .map(|i| party_identity(&settings.party_dir(i)).unwrap())
        .collect();
    let peers: Vec<_> = identities.iter().map(|k| k.public()).collect();
    let mut parties = Vec::new();
    for (index, identity) in (0u16..3).zip(identities) {
        let trust = PartyTrust {
            identity,
            authorities: vec![authority.public()],
            peers: peers.clone(),
        };
        let dir = settings.party_dir(index);
        parties.push(
            build_party(settings, index, &dir, None, trust, &mut Vec::new())
                .await
                .unwrap(),
        );
    }
    parties
}

#[tokio::test]
async fn each_party_imports_only_its_own_file_sealed_and_deletes_it() {
    let data_dir = unique_dir("primes-import");
    let primes_dir = fixture_primes_dir();
    let mut settings = settings(&data_dir, None, Pool::Cold);
    settings.signer.primes_dir = Some(primes_dir.clone());
    let parties = parties(&settings).await;
    import_primes(&settings, &parties).await.unwrap();
    for (index, party) in (0u16..).zip(&parties) {
        assert_eq!(party.status().await.primes_available, 1);
        let file = primes_dir.join(format!("party-{}.json", index + 1));
        assert!(!file.exists(), "{} left in plaintext", file.display());
        // Sealed: the party's store does not hold the primes' digits in the clear.
        let committed: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&committed_primes_files()[usize::from(index)]).unwrap(),
        )
        .unwrap();
        let digits = committed["primes"]["primes"][0]["value"].as_str().unwrap();
        let store = std::fs::read(settings.party_dir(index).join("store.db")).unwrap();
        assert!(!store.windows(64).any(|w| w == &digits.as_bytes()[..64]));
    }
    // A second start finds the files gone and the primes in the stores: nothing to do.
    import_primes(&settings, &parties).await.unwrap();
    for party in &parties {
        assert_eq!(party.status().await.primes_available, 1);
    }
}

#[tokio::test]
async fn an_app_refuses_shared_readable_and_foreign_primes_files() {
    let build = |primes_dir: PathBuf, label: &str| {
        let data_dir = unique_dir(label);
        let mut settings = settings(&data_dir, None, Pool::Cold);
        settings.signer.primes_dir = Some(primes_dir);
        waas_api::Application::build(settings)
    };

    // World-readable.
    let dir = fixture_primes_dir();
    let readable = dir.join("party-2.json");
    chmod(&readable, 0o644);
    let error = format!(
        "{:#}",
        build(dir.clone(), "primes-readable").await.unwrap_err()
    );
    assert!(
        error.contains(&format!("primes file {}", readable.display())),
        "{error}"
    );
    assert!(
        error.contains(&format!("chmod 600 {}", readable.display())),
        "{error}"
    );
    // Refused before any party imported (and deleted) its file: nothing changed.
    assert!(dir.join("party-1.json").exists());

    // Another party's primes (party 1's file where party 2's belongs).
    let dir = fixture_primes_dir();
    std::fs::remove_file(dir.join("party-2.json")).unwrap();
    std::fs::copy(dir.join("party-1.json"), dir.join("party-2.json")).unwrap();
    let error = format!("{:#}", build(dir, "primes-foreign").await.unwrap_err());
    assert!(
        error.contains("holds the primes of party index 0") && error.contains("party-2.json"),
        "{error}"
    );

    // Every party's primes in one file: refused for each party, even as its own file.
    let dir = unique_dir("primes-combined");
    let combined = combined_primes_file(&dir);
    std::fs::rename(&combined, dir.join("party-1.json")).unwrap();
    let error = format!("{:#}", build(dir, "primes-combined-app").await.unwrap_err());
    assert!(error.contains("holds 3 parties' primes"), "{error}");
    assert!(error.contains("waas primes generate --out-dir"), "{error}");

    // `signer.primes_file` is one node's file; in-process parties use `primes_dir`.
    let data_dir = unique_dir("primes-file-embedded");
    let mut settings = settings(&data_dir, None, Pool::Cold);
    settings.signer.primes_file = Some(fixture_primes_dir().join("party-1.json"));
    let error = format!(
        "{:#}",
        waas_api::Application::build(settings).await.unwrap_err()
    );
    assert!(error.contains("signer.primes_dir"), "{error}");
}

/// A `waas signer` configuration for party index 0 of 3 with `primes_file`.
fn node_config(root: &Path, primes_file: &Path) -> PathBuf {
    let dir = root.join("party-1");
    let own = IdentityKey::open_or_create(&dir.join("identity.key"))
        .unwrap()
        .public();
    let others: Vec<String> = (0..2)
        .map(|_| IdentityKey::generate().public().to_string())
        .collect();
    let config = root.join("node.toml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = "{root}"
[signer]
parties = 3
threshold = 2
generate_primes = false
primes_file = "{primes}"
[node]
index = 0
listen = "127.0.0.1:0"
dir = "{dir}"
authority_public_keys = ["{authority}"]
peer_public_keys = ["{own}", "{a}", "{b}"]
[log]
level = "error"
"#,
            root = root.display(),
            primes = primes_file.display(),
            dir = dir.display(),
            authority = IdentityKey::generate().public(),
            a = others[0],
            b = others[1],
        ),
    )
    .unwrap();
    config
}

#[test]
fn a_signer_node_refuses_a_shared_or_readable_primes_file() {
    // Every party's primes in one file.
    let root = unique_dir("node-primes-combined");
    let combined = combined_primes_file(&root);
    let config = node_config(&root, &combined);
    let (code, stderr) = run_waas(
        &[
            "signer",
            "--exit-with-stdin",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "primes file {} holds 3 parties' primes",
            combined.display()
        )),
        "{stderr}"
    );

    // The node's own file, but readable by everyone.
    let root = unique_dir("node-primes-readable");
    let own = fixture_primes_dir().join("party-1.json");
    chmod(&own, 0o644);
    let config = node_config(&root, &own);
    let (code, stderr) = run_waas(
        &[
            "signer",
            "--exit-with-stdin",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("chmod 600 {}", own.display())),
        "{stderr}"
    );

    // Another party's file.
    let root = unique_dir("node-primes-foreign");
    let foreign = fixture_primes_dir().join("party-3.json");
    let config = node_config(&root, &foreign);
    let (code, stderr) = run_waas(
        &[
            "signer",
            "--exit-with-stdin",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("holds the primes of party index 2"),
        "{stderr}"
    );
    assert!(foreign.exists(), "a refused file is left alone");
}

#[tokio::test]
async fn key_files_readable_by_others_are_refused() {
    let data_dir = unique_dir("key-modes");
    let settings = settings(&data_dir, None, Pool::Cold);
    drop(
        waas_api::Application::build(settings.clone())
            .await
            .unwrap(),
    );
    for file in [
        data_dir.join("authority.key"),
        data_dir.join("party-2/identity.key"),
        data_dir.join("party-3/kek.key"),
    ] {
        assert_eq!(
            mode_of(&file),
            0o600,
            "{} created owner-only",
            file.display()
        );
        for mode in [0o644, 0o640, 0o604] {
            chmod(&file, mode);
            let error = format!(
                "{:#}",
                waas_api::Application::build(settings.clone())
                    .await
                    .unwrap_err()
            );
            assert!(
                error.contains(&format!("chmod 600 {}", file.display())),
                "{mode:o}: {error}"
            );
        }
        chmod(&file, 0o600);
    }
    assert!(waas_api::Application::build(settings).await.is_ok());
}
