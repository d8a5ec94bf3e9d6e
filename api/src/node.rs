//! `waas signer`: one signer party per process, serving coordinators over HTTP/2 inside TLS
//! (both ends authenticated by pinned identity keys), or h2c in development.

use crate::settings::Settings;
use crate::startup::{build_party, import_primes, party_identity};
use anyhow::Context;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use waas_signer::net::{NodeLimits, ServeOptions, TransportSecurity};
use waas_signer::{PartyNode, PartyTrust, PublicIdentity};

/// A built, bound signer node.
#[derive(Debug)]
pub struct SignerNode {
    listener: TcpListener,
    port: u16,
    node: Arc<PartyNode>,
    transport: TransportSecurity,
    background: Vec<JoinHandle<()>>,
}

fn parse_keys(keys: &[String], what: &str) -> anyhow::Result<Vec<PublicIdentity>> {
    keys.iter()
        .enumerate()
        .map(|(i, key)| key.parse().with_context(|| format!("node.{what}[{i}]")))
        .collect()
}

impl SignerNode {
    /// Builds the party from `settings.node` (plus the shared `signer` settings: key
    /// protection, primes) and binds its port. Refuses to start when the party's KEK cannot
    /// open its own records, when keys are malformed, or when it is not in its peer list.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        crate::telemetry::init(&settings.log.format, &settings.log.level);
        let node_settings = settings
            .node
            .clone()
            .context("waas signer needs a [node] section (index, listen, keys)")?;
        let transport = crate::production::node_transport(&settings)?;
        let index = node_settings.index;
        anyhow::ensure!(
            index < settings.signer.parties,
            "node.index {index} is outside the pool of signer.parties = {}",
            settings.signer.parties
        );
        let dir = node_settings
            .dir
            .clone()
            .unwrap_or_else(|| settings.party_dir(index));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let identity = party_identity(&dir)?;
        let authorities = parse_keys(
            &node_settings.authority_public_keys,
            "authority_public_keys",
        )?;
        anyhow::ensure!(
            !authorities.is_empty(),
            "node.authority_public_keys is empty: no control plane could authorize a session"
        );
        let peers = parse_keys(&node_settings.peer_public_keys, "peer_public_keys")?;
        anyhow::ensure!(
            peers.len() == usize::from(settings.signer.parties),
            "node.peer_public_keys lists {} keys for a pool of {}",
            peers.len(),
            settings.signer.parties
        );
        anyhow::ensure!(
            peers.get(usize::from(index)) == Some(&identity.public()),
            "node.peer_public_keys[{index}] is not this node's identity key ({})",
            identity.public()
        );
        let trust = PartyTrust {
            identity,
            authorities,
            peers,
        };
        let mut stats = Vec::new();
        let node = build_party(
            &settings,
            index,
            &dir,
            node_settings.store_url.as_deref(),
            trust,
            &mut stats,
        )
        .await?;
        import_primes(&settings, std::slice::from_ref(&node)).await?;
        let listener = TcpListener::bind(&node_settings.listen)
            .await
            .with_context(|| format!("binding {}", node_settings.listen))?;
        let port = listener.local_addr()?.port();
        let background = vec![
            node.spawn_prime_upkeep(),
            node.spawn_authorization_pruning(),
        ];
        Ok(Self {
            listener,
            port,
            node,
            transport,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn public_key(&self) -> PublicIdentity {
        self.node.identity()
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(crate::startup::shutdown_signal()).await
    }

    /// Serves until `signal` completes.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            node,
            transport,
            background,
            ..
        } = self;
        let options = ServeOptions {
            security: transport,
            limits: NodeLimits::standard(),
            counters: Arc::default(),
        };
        let served = waas_signer::net::serve_node(node, listener, options, signal).await;
        for task in background {
            task.abort();
        }
        Ok(served?)
    }
}
