//! The `waas` binary: `waas serve` (the default) runs the platform; `waas primes generate`
//! pregenerates Paillier primes for the signer parties on a spare machine.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use waas_api::{Application, Settings};

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
    /// Paillier prime pool operations.
    Primes {
        #[command(subcommand)]
        command: PrimesCommand,
    },
}

#[derive(Subcommand)]
enum PrimesCommand {
    /// Generate one prime set per party (minutes of CPU) into a file for `signer.primes_file`.
    Generate {
        #[arg(long, default_value_t = 3)]
        parties: u16,
        #[arg(long)]
        out: PathBuf,
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
        Command::Primes {
            command: PrimesCommand::Generate { parties, out },
        } => {
            eprintln!("generating {parties} prime sets; this takes minutes");
            let file =
                tokio::task::spawn_blocking(move || waas_signer::generate_primes_file(parties))
                    .await?;
            let text = serde_json::to_string(&file)?;
            std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {}", out.display());
            Ok(())
        }
    }
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
