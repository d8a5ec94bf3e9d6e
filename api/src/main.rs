//! The `waas` binary: `waas serve` (the default) runs the platform; `waas signer` runs one
//! signer node; `waas identity` prints a key; `waas keys rotate` rotates KEKs;
//! `waas primes generate` pregenerates Paillier primes on a spare machine, one owner-only
//! file per party.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use waas_api::{Application, Settings};
use waas_signer::PartyPrimesFile;

#[derive(Parser)]
#[command(
    name = "waas",
    version,
    about = "Self-hostable threshold-wallet platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and the in-process signer pool (the default).
    Serve {
        /// A TOML settings file; `WAAS_…` environment variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run one signer node (one party of the pool) from the `[node]` settings.
    Signer {
        /// A TOML settings file with a `[node]` section; `WAAS_…` variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also stop when standard input closes (a supervising process that dies takes
        /// the node with it; used by the tests).
        #[arg(long)]
        exit_with_stdin: bool,
    },
    /// Print the public half of an identity key file, creating the key when missing
    /// (the control plane's `authority.key`, a node's `identity.key`).
    Identity {
        #[arg(long)]
        file: PathBuf,
    },
    /// Paillier prime pool operations.
    Primes {
        #[command(subcommand)]
        command: PrimesCommand,
    },
    /// Key-encryption-key operations on a running server.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Rotate KEKs at every party and re-wrap all data keys (online; re-run to resume).
    Rotate {
        /// The server, `http://host:port`.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The operator token.
        #[arg(long, env = "WAAS_OPERATOR_TOKEN", hide_env_values = true)]
        token: String,
        /// Only re-wrap records still under older KEK versions (finish an interrupted run).
        #[arg(long)]
        resume: bool,
    },
}

#[derive(Subcommand)]
enum PrimesCommand {
    /// Generate Paillier primes on a spare machine (minutes of CPU per party, in parallel):
    /// one file per party, DIR/party-<n>.json for node.index n-1, created with mode 0600.
    /// Copy each file to its own node only (`signer.primes_file`); the node imports it
    /// sealed and deletes it.
    Generate {
        /// The pool size: one file for every party index 0..parties.
        #[arg(long, default_value_t = 3)]
        parties: u16,
        /// Only the file of this party index (0-based, the node's `node.index`).
        #[arg(long)]
        index: Option<u16>,
        /// Where to write the files (created with mode 0700 when missing); existing files
        /// are never overwritten.
        #[arg(long)]
        out_dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(cli));
    // Background prime generation cannot be interrupted mid-way; do not let it hold the
    // process for minutes after a stop was asked for. Unfinished primes are simply lost.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    result
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve { config: None }) {
        Command::Serve { config } => serve(config).await,
        Command::Signer {
            config,
            exit_with_stdin,
        } => {
            let settings = Settings::load(config.as_deref()).context("loading settings")?;
            let node = waas_api::SignerNode::build(settings).await?;
            println!(
                "waas signer node listening on port {} (identity {})",
                node.port(),
                node.public_key()
            );
            if exit_with_stdin {
                node.run_until(async {
                    let stdin_closed = async {
                        use tokio::io::AsyncReadExt;
                        let mut stdin = tokio::io::stdin();
                        let mut buffer = [0u8; 64];
                        while matches!(stdin.read(&mut buffer).await, Ok(n) if n > 0) {}
                    };
                    tokio::select! {
                        () = stdin_closed => {},
                        () = waas_api::startup::shutdown_signal() => {},
                    }
                })
                .await
            } else {
                node.run_until_stopped().await
            }
        }
        Command::Identity { file } => {
            let key = waas_signer::IdentityKey::open_or_create(&file)
                .with_context(|| format!("identity key {}", file.display()))?;
            println!("{}", key.public());
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate { url, token, resume },
        } => {
            eprintln!("rotating key-encryption keys at {url} (this re-wraps every data key)");
            let body = serde_json::json!({ "new_version": !resume }).to_string();
            let (status, response) = post_json(&url, "/v1/key-rotations", &token, &body).await?;
            println!("{response}");
            anyhow::ensure!(status == 200, "rotation failed with HTTP {status}");
            Ok(())
        }
        Command::Primes {
            command:
                PrimesCommand::Generate {
                    parties,
                    index,
                    out_dir,
                },
        } => generate_primes(parties, index, &out_dir).await,
    }
}

/// `waas primes generate`: one owner-only file per party.
async fn generate_primes(parties: u16, index: Option<u16>, out_dir: &Path) -> anyhow::Result<()> {
    let indexes: Vec<u16> = match index {
        Some(index) => {
            anyhow::ensure!(
                index < parties,
                "--index {index} is outside a pool of --parties {parties}"
            );
            vec![index]
        }
        None => (0..parties).collect(),
    };
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(out_dir)
            .with_context(|| format!("creating {}", out_dir.display()))?;
    }
    // Refuse before minutes of work, not after.
    for &index in &indexes {
        let path = PartyPrimesFile::path_in(out_dir, index);
        anyhow::ensure!(
            !path.exists(),
            "{} already exists; it is never overwritten (move it away first)",
            path.display()
        );
    }
    eprintln!(
        "generating {} prime sets in parallel; this takes minutes",
        indexes.len()
    );
    let tasks: Vec<_> = indexes
        .iter()
        .map(|&index| tokio::task::spawn_blocking(move || primes_for(index)))
        .collect();
    for (&index, task) in indexes.iter().zip(tasks) {
        let file = task.await??;
        let path = PartyPrimesFile::path_in(out_dir, index);
        file.write_new(&path)?;
        eprintln!(
            "wrote {} (mode 0600) for the node with node.index = {index}; copy it to that node only",
            path.display()
        );
    }
    Ok(())
}

/// Party `index`'s primes: generated, or — in debug builds, for tests only — read from the
/// committed fixture files in `WAAS_TEST_PRIMES_FROM` (generation takes minutes).
fn primes_for(index: u16) -> anyhow::Result<PartyPrimesFile> {
    #[cfg(debug_assertions)]
    if let Some(dir) = std::env::var_os("WAAS_TEST_PRIMES_FROM") {
        let path = PartyPrimesFile::path_in(Path::new(&dir), index);
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        return Ok(PartyPrimesFile::from_json(&text, index, &path)?);
    }
    Ok(PartyPrimesFile::generate(index))
}

async fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    let settings = Settings::load(config.as_deref()).context("loading settings")?;
    let listen = settings.listen.clone();
    let data_dir = settings.data_dir.clone();
    let application = Application::build(settings).await?;
    println!(
        "waas listening on http://{listen} (data in {})",
        data_dir.display()
    );
    if let Some(port) = application.metrics_port() {
        println!("/metrics served on its own listener, port {port} (metrics_listen)");
    }
    if let Some(token) = application.generated_operator_token() {
        println!();
        println!("  Operator token (shown once; only its hash is stored):");
        println!("    {token}");
        println!("  Use it as: export WAAS_OPERATOR_TOKEN={token}");
        println!();
    }
    let status = application.pool_status();
    if !status.ecdsa_ready {
        println!(
            "Signer pool: {} — evm wallets answer 503 with Retry-After until ready; watch GET /readyz.",
            status.detail
        );
    }
    application.run_until_stopped().await
}

/// A minimal HTTP/1.1 POST (the binary carries no HTTP client): returns status and body.
async fn post_json(
    url: &str,
    path: &str,
    token: &str,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = url
        .strip_prefix("http://")
        .context("--url must be http://host:port (terminate TLS in front of waas)")?
        .trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("malformed HTTP response")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
