//! `cargo xtask test`: makes sure PostgreSQL is reachable (installing and starting a private
//! instance on a spare port when it is not), then runs formatting, lints and every test.
//! `cargo xtask openapi`: rewrites `openapi/v1.json` from the code.

use anyhow::{Context, bail};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "test" => test(),
        "openapi" => openapi(),
        _ => {
            eprintln!("usage: cargo xtask <test|openapi>");
            std::process::exit(2);
        }
    }
}

/// The workspace this run is for. Read at run time (cargo sets it for `cargo run`), not
/// baked in at build time: a target directory shared between checkouts may hand one
/// checkout the `xtask` binary built in another.
fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("..")
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: running {command:?}");
    let status = command
        .status()
        .with_context(|| format!("starting {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

fn succeeds(command: &mut Command) -> bool {
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root());
    command
}

fn openapi() -> anyhow::Result<()> {
    run(cargo()
        .args(["test", "-p", "waas-api", "--test", "it", "openapi"])
        .env("WAAS_UPDATE_OPENAPI", "1"))
}

fn test() -> anyhow::Result<()> {
    let postgres = Postgres::ensure()?;
    postgres.drop_leftover_databases();
    let moto = ensure_moto()?;
    let anvil = ensure_anvil()?;
    let hsm = SoftHsm::prepare()?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    let started = Instant::now();
    let result = run(cargo()
        .args(["test", "--workspace"])
        .env("WAAS_TEST_POSTGRES_URL", &postgres.url)
        .env("WAAS_TEST_MOTO_SERVER", &moto)
        .env("WAAS_TEST_ANVIL", &anvil)
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env("WAAS_TEST_PKCS11_MODULE", &hsm.module)
        .env("WAAS_TEST_PKCS11_TOKEN", SoftHsm::TOKEN)
        .env("WAAS_TEST_PKCS11_PIN", SoftHsm::PIN));
    eprintln!("xtask: tests took {:.0} s", started.elapsed().as_secs_f64());
    postgres.drop_leftover_databases();
    result
}

/// A PostgreSQL server for the tests: the machine's own on 127.0.0.1:5432 when it answers,
/// otherwise a private cluster this process starts (and stops) on a spare port.
struct Postgres {
    url: String,
    /// Set when we started a private cluster: (pg_ctl, data dir).
    private: Option<(PathBuf, PathBuf)>,
}

impl Postgres {
    fn ensure() -> anyhow::Result<Self> {
        if let Ok(url) = std::env::var("WAAS_TEST_POSTGRES_URL") {
            return Ok(Self { url, private: None });
        }
        let url = "postgres://postgres@127.0.0.1:5432/postgres".to_string();
        let force_private = std::env::var("WAAS_XTASK_PRIVATE_POSTGRES").is_ok_and(|v| v == "1");
        if !force_private && port_open(5432) && psql_works(&url) {
            return Ok(Self { url, private: None });
        }
        eprintln!("xtask: no PostgreSQL on 127.0.0.1:5432; starting a private one");
        let bin = postgres_bin().or_else(|| {
            install_postgres();
            postgres_bin()
        });
        let Some(bin) = bin else {
            bail!(
                "PostgreSQL is not installed and could not be installed (apt-get install postgresql)"
            );
        };
        let port = 55432;
        let data = std::env::temp_dir().join(format!("waas-test-pg-{}", std::process::id()));
        std::fs::create_dir_all(&data)?;
        let as_postgres = |program: &Path, args: &[&str]| -> Command {
            if is_root() {
                let mut command = Command::new("runuser");
                command
                    .args(["-u", "postgres", "--"])
                    .arg(program)
                    .args(args);
                command
            } else {
                let mut command = Command::new(program);
                command.args(args);
                command
            }
        };
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&data))?;
        }
        let data_str = data.to_string_lossy().to_string();
        run(&mut as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                &data_str,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
        ))?;
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={data_str} -c fsync=off"
        );
        run(&mut as_postgres(
            &bin.join("pg_ctl"),
            &[
                "-D",
                &data_str,
                "-o",
                &options,
                "-l",
                &format!("{data_str}/log"),
                "-w",
                "start",
            ],
        ))?;
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        Ok(Self {
            url,
            private: Some((bin.join("pg_ctl"), data)),
        })
    }

    /// Test databases are named `waas_test_<uuid>`; remove those of earlier runs.
    fn drop_leftover_databases(&self) {
        let list = Command::new("psql")
            .args([
                &self.url,
                "-At",
                "-c",
                "SELECT datname FROM pg_database WHERE datname LIKE 'waas_test_%'",
            ])
            .output();
        let Ok(list) = list else { return };
        for name in String::from_utf8_lossy(&list.stdout)
            .lines()
            .filter(|l| !l.is_empty())
        {
            let _ = succeeds(Command::new("psql").args([
                &self.url,
                "-c",
                &format!("DROP DATABASE IF EXISTS {name}"),
            ]));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some((pg_ctl, data)) = &self.private {
            let data_str = data.to_string_lossy().to_string();
            let mut command = if is_root() {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(pg_ctl);
                command
            } else {
                Command::new(pg_ctl)
            };
            let _ = succeeds(command.args(["-D", &data_str, "-m", "fast", "stop"]));
            let _ = std::fs::remove_dir_all(data);
        }
    }
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

fn psql_works(url: &str) -> bool {
    succeeds(Command::new("psql").args([url, "-c", "SELECT 1"]))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The directory holding initdb and pg_ctl, newest version first.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn apt_install(packages: &[&str]) {
    eprintln!("xtask: installing {packages:?} from Debian packages");
    let apt = |args: &[&str]| {
        let mut command = if is_root() {
            Command::new("apt-get")
        } else {
            let mut command = Command::new("sudo");
            command.arg("apt-get");
            command
        };
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        let _ = command.status();
    };
    apt(&["update", "-q"]);
    let mut install = vec!["install", "-y", "-q"];
    install.extend_from_slice(packages);
    apt(&install);
}

fn install_postgres() {
    apt_install(&["postgresql", "postgresql-client"]);
}

/// The moto KMS emulator's server command, installed from PyPI when missing.
fn ensure_moto() -> anyhow::Result<String> {
    let works = |program: &str| succeeds(Command::new(program).arg("--help"));
    if works("moto_server") {
        return Ok("moto_server".into());
    }
    eprintln!("xtask: installing moto (KMS emulator) from PyPI");
    let _ = Command::new("python3")
        .args(["-m", "pip", "install", "-q", "moto[server]"])
        .status();
    let user_bin = std::env::var("HOME")
        .map(|h| format!("{h}/.local/bin/moto_server"))
        .unwrap_or_default();
    for candidate in ["moto_server", user_bin.as_str()] {
        if !candidate.is_empty() && works(candidate) {
            return Ok(candidate.into());
        }
    }
    bail!("moto_server is not available and could not be installed (pip install 'moto[server]')")
}

/// The anvil Ethereum dev node binary, installed from npm (`@foundry-rs/anvil`, whose
/// optional native package carries the binary) into a cache outside the checkout.
fn ensure_anvil() -> anyhow::Result<PathBuf> {
    const VERSION: &str = "1.7.1";
    let home = std::env::var("HOME").unwrap_or_else(|_| "/tmp".into());
    let dir = PathBuf::from(home).join(".cache/waas/tools");
    let binary = dir.join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    let works = |path: &PathBuf| succeeds(Command::new(path).arg("--version"));
    if works(&binary) {
        return Ok(binary);
    }
    eprintln!(
        "xtask: installing anvil {VERSION} from npm into {}",
        dir.display()
    );
    std::fs::create_dir_all(&dir)?;
    run(Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg(format!("@foundry-rs/anvil@{VERSION}")))?;
    if works(&binary) {
        return Ok(binary);
    }
    bail!(
        "anvil is not available at {} after npm install",
        binary.display()
    )
}

/// A SoftHSM2 token in a private directory, removed afterwards.
struct SoftHsm {
    dir: PathBuf,
    conf: PathBuf,
    module: PathBuf,
}

impl SoftHsm {
    const TOKEN: &'static str = "waas-test";
    const PIN: &'static str = "1234";

    fn prepare() -> anyhow::Result<Self> {
        let module = PathBuf::from("/usr/lib/softhsm/libsofthsm2.so");
        if !module.exists() || !succeeds(Command::new("softhsm2-util").arg("--version")) {
            apt_install(&["softhsm2", "opensc"]);
        }
        if !module.exists() {
            bail!(
                "SoftHSM2 is not available and could not be installed (apt-get install softhsm2)"
            );
        }
        let dir = std::env::temp_dir().join(format!("waas-test-softhsm-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("tokens"))?;
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )?;
        run(Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                Self::TOKEN,
                "--pin",
                Self::PIN,
                "--so-pin",
                "5678",
            ])
            .env("SOFTHSM2_CONF", &conf)
            .stdout(std::process::Stdio::null()))?;
        Ok(Self { dir, conf, module })
    }
}

impl Drop for SoftHsm {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
