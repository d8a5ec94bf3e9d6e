//! The composition root: builds adapters from `Settings`, wires them into use cases, and
//! serves the router until stopped.

use crate::credentials_upkeep;
use crate::idempotency::{Idempotency, IdempotencyTimes};
use crate::invalidation::InvalidationBus;
pub use crate::primes::import_primes;
use crate::problem::finalize_problems;
use crate::settings::Settings;
use crate::state::AppState;
use crate::state::CustodyStats;
use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use waas_core::Threshold;
use waas_core::ports::KeyProtector;
use waas_core::ports::NetworkDirectory;
use waas_core::ports::{PoolStatus, ShareStore, SignerPool, SystemClock};
use waas_custody::{
    AwsKmsConfig, AwsKmsKeyProtector, CachingProtector, LocalKeyProtector, Pkcs11Config,
    Pkcs11KeyProtector, ProtectorSet,
};
use waas_policy::PoolLimits;
use waas_signer::net::RemotePartyLink;
use waas_signer::{
    Coordinator, CoordinatorConfig, CoordinatorTrust, IdentityKey, LocalPartyLink, PartyConfig,
    PartyLink, PartyNode, PartyTrust, PublicIdentity,
};
use waas_store::{PartyStore, SqlStore, connect_control_plane, connect_party_store};
use waas_tenants::{AccessTokens, TenantService, TokenSettings};
use waas_wallets::{Executor, PolicyService, StaticPriceOracle, TransactionService, WalletService};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long past the request timeout an unfinished idempotent request still counts as
/// running (after that, as of unknown outcome).
const IDEMPOTENCY_LEASE_MARGIN_SECS: u64 = 30;

/// Aborts background tasks when the application goes away.
#[derive(Debug, Default)]
struct Background(Vec<JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

/// A built, bound, not yet serving application.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    port: u16,
    router: Router,
    /// `/metrics` on its own listener (`metrics_listen`), when configured.
    metrics: Option<(TcpListener, Router)>,
    coordinator: Arc<Coordinator>,
    generated_operator_token: Option<waas_tenants::Secret>,
    background: Background,
}

/// A party's identity key file in its directory (created on first start).
pub fn party_identity(dir: &std::path::Path) -> anyhow::Result<Arc<IdentityKey>> {
    let path = dir.join("identity.key");
    Ok(Arc::new(IdentityKey::open_or_create(&path).with_context(
        || format!("identity key {}", path.display()),
    )?))
}

/// Builds party `index`: its store, its key protectors, and a check that its KEK opens
/// what the store holds (a node with a wrong KEK refuses to start).
pub async fn build_party(
    settings: &Settings,
    index: u16,
    dir: &std::path::Path,
    store_url: Option<&str>,
    trust: PartyTrust,
    stats: &mut Vec<CustodyStats>,
) -> anyhow::Result<Arc<PartyNode>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let kek_file = dir.join("kek.key");
    let kek_was_missing = !kek_file.exists();
    let protectors = key_protectors(settings, index, dir, stats)
        .await
        .with_context(|| format!("key protection of party index {index}"))?;
    let url = store_url.map_or_else(
        || format!("sqlite://{}?mode=rwc", dir.join("store.db").display()),
        str::to_string,
    );
    let store: Arc<dyn ShareStore> = Arc::new(PartyStore::new(
        connect_party_store(&url)
            .await
            .with_context(|| format!("store of party {}", index + 1))?,
    ));
    let node = PartyNode::new(
        PartyConfig {
            index,
            parties: settings.signer.parties,
            spare_primes: settings.signer.spare_primes,
            generate_primes: settings.signer.generate_primes,
        },
        store,
        protectors,
        trust,
    );
    if let Err(error) = node.self_check().await {
        if kek_was_missing && kek_file.exists() {
            // Do not leave a fresh key where the lost one belongs.
            let _ = std::fs::remove_file(&kek_file);
            anyhow::bail!(
                "party {} cannot open its own records: its key-encryption key file {} is missing; restore it from backup ({error})",
                index + 1,
                kek_file.display()
            );
        }
        anyhow::bail!(
            "party {} cannot open its own records: wrong key-encryption key? ({error})",
            index + 1
        );
    }
    Ok(Arc::new(node))
}

/// The embedded default: every party in this process, each with its own directory.
async fn build_local_parties(
    settings: &Settings,
    authority: &IdentityKey,
    stats: &mut Vec<CustodyStats>,
) -> anyhow::Result<Vec<Arc<PartyNode>>> {
    let mut identities = Vec::new();
    for index in 0..settings.signer.parties {
        let dir = settings.party_dir(index);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        identities.push(party_identity(&dir)?);
    }
    let peers: Vec<PublicIdentity> = identities.iter().map(|key| key.public()).collect();
    let mut parties = Vec::new();
    for (index, identity) in (0..settings.signer.parties).zip(identities) {
        let trust = PartyTrust {
            identity,
            authorities: vec![authority.public()],
            peers: peers.clone(),
        };
        let node = build_party(
            settings,
            index,
            &settings.party_dir(index),
            None,
            trust,
            stats,
        )
        .await?;
        parties.push(node);
    }
    Ok(parties)
}

/// The key-protection tiers this deployment offers, the default (`signer.key_protection`)
/// first: `local` unless production forbids it, `aws-kms` and `pkcs11` when configured.
pub fn key_protection_tiers(settings: &Settings) -> anyhow::Result<Vec<String>> {
    let signer = &settings.signer;
    let local_allowed = !crate::production::is_production(settings)?
        || signer.allow_local_key_protection_in_production;
    let mut tiers = Vec::new();
    if local_allowed {
        tiers.push("local".to_string());
    }
    if signer.aws_kms.is_some() {
        tiers.push("aws-kms".to_string());
    }
    if signer.pkcs11.is_some() {
        tiers.push("pkcs11".to_string());
    }
    let default = signer.key_protection.as_str();
    if default == "local" && !local_allowed {
        anyhow::bail!(
            "mode = production refuses local key files; configure signer.key_protection = \"aws-kms\" or \"pkcs11\" \
             (or set signer.allow_local_key_protection_in_production = true knowingly)"
        );
    }
    let Some(position) = tiers.iter().position(|t| t == default) else {
        anyhow::bail!(
            "signer.key_protection = {default:?} is not configured (configured: {}); add [signer.aws_kms] or [signer.pkcs11]",
            tiers.join(", ")
        );
    };
    tiers.swap(0, position);
    Ok(tiers)
}

/// The protectors of party `index`, one per tier.
pub(crate) async fn key_protectors(
    settings: &Settings,
    index: u16,
    dir: &std::path::Path,
    stats: &mut Vec<CustodyStats>,
) -> anyhow::Result<ProtectorSet> {
    let signer = &settings.signer;
    let tiers = key_protection_tiers(settings)?;
    let mut protectors: Vec<Arc<dyn KeyProtector>> = Vec::new();
    for tier in &tiers {
        let protector: Arc<dyn KeyProtector> = match tier.as_str() {
            "local" => Arc::new(LocalKeyProtector::open_or_create(&dir.join("kek.key"))?),
            "aws-kms" => {
                let kms = signer
                    .aws_kms
                    .as_ref()
                    .context("[signer.aws_kms] missing")?;
                let key_id = kms.key_ids.get(usize::from(index)).with_context(|| {
                    format!(
                        "signer.aws_kms.key_ids names {} keys; party index {index} has none",
                        kms.key_ids.len()
                    )
                })?;
                let static_credentials = match (&kms.access_key_id, &kms.secret_access_key) {
                    (Some(id), Some(secret)) => {
                        Some((id.clone(), secret.expose_secret().to_string()))
                    }
                    _ => None,
                };
                Arc::new(
                    AwsKmsKeyProtector::connect(&AwsKmsConfig {
                        key_id: key_id.clone(),
                        previous_key_ids: kms
                            .previous_key_ids
                            .get(usize::from(index))
                            .cloned()
                            .into_iter()
                            .collect(),
                        region: kms.region.clone(),
                        endpoint: kms.endpoint.clone(),
                        timeout: Duration::from_secs(kms.timeout_secs),
                        static_credentials,
                    })
                    .await,
                )
            }
            "pkcs11" => {
                let hsm = signer.pkcs11.as_ref().context("[signer.pkcs11] missing")?;
                Arc::new(Pkcs11KeyProtector::connect(&Pkcs11Config {
                    module: hsm.module.clone(),
                    token_label: hsm.token_label.clone(),
                    pin: hsm.pin.expose_secret().to_string(),
                    key_label: format!("{}-{index}", hsm.key_label_prefix),
                })?)
            }
            other => anyhow::bail!("unknown key protection {other:?}"),
        };
        let caching = CachingProtector::new(
            protector,
            Duration::from_secs(signer.data_key_cache_secs),
            10_000,
        );
        stats.push(CustodyStats {
            party_index: index,
            protector: tier.clone(),
            stats: caching.stats(),
        });
        protectors.push(Arc::new(caching));
    }
    Ok(ProtectorSet::new(&signer.key_protection, protectors)?)
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        crate::telemetry::init(&settings.log.format, &settings.log.level);
        crate::production::refuse_unsafe_production(&settings)?;
        let rate_limits = Arc::new(
            crate::ratelimit::RateLimits::from_settings(&settings).context("rate limits")?,
        );
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
        let threshold = Threshold::new(settings.signer.threshold, settings.signer.parties)
            .context("signer.threshold and signer.parties")?;

        let db = connect_control_plane(&settings.database_url())
            .await
            .context("connecting to the database")?;
        let store = SqlStore::new(db);

        let authority_file = settings.authority_key_file();
        let authority = Arc::new(
            IdentityKey::open_or_create(&authority_file)
                .with_context(|| format!("control-plane key {}", authority_file.display()))?,
        );
        let mut custody_stats = Vec::new();
        let (parties, links, party_keys) = if settings.signer.nodes.is_empty() {
            let parties = build_local_parties(&settings, &authority, &mut custody_stats).await?;
            import_primes(&settings, &parties).await?;
            let links: Vec<Arc<dyn PartyLink>> = parties
                .iter()
                .map(|node| Arc::new(LocalPartyLink::new(node.clone())) as Arc<dyn PartyLink>)
                .collect();
            let keys = parties.iter().map(|node| node.identity()).collect();
            (parties, links, keys)
        } else {
            anyhow::ensure!(
                settings.signer.nodes.len() == usize::from(settings.signer.parties),
                "signer.nodes lists {} nodes but signer.parties = {}",
                settings.signer.nodes.len(),
                settings.signer.parties
            );
            let transport = crate::production::node_transport(&settings)?;
            let mut links: Vec<Arc<dyn PartyLink>> = Vec::new();
            let mut keys = Vec::new();
            for (index, node) in (0u16..).zip(&settings.signer.nodes) {
                let key: PublicIdentity = node
                    .public_key
                    .parse()
                    .with_context(|| format!("signer.nodes[{index}].public_key"))?;
                let link =
                    RemotePartyLink::new(index, &node.url, key, transport, authority.clone())?;
                links.push(Arc::new(link));
                keys.push(key);
            }
            (Vec::new(), links, keys)
        };
        let coordinator = Arc::new(Coordinator::new(
            CoordinatorConfig {
                threshold,
                session_timeout: Duration::from_secs(settings.signer.session_timeout_secs),
                aux_timeout: Duration::from_secs(1800),
                presignatures_per_key: settings.signer.presignatures_per_key,
                refill_time_share: settings.signer.refill_time_share,
                nonces_per_party: settings.signer.frost_nonces_per_party,
            },
            links,
            CoordinatorTrust {
                authority,
                parties: party_keys,
            },
        ));
        // Only read the pool's state here; heavy preparation runs in the background so the
        // server answers at once.
        coordinator.refresh_status().await;
        let mut background = Background::default();
        background.0.push(coordinator.spawn_upkeep());
        for party in &parties {
            background.0.push(party.spawn_prime_upkeep());
            background.0.push(party.spawn_authorization_pruning());
        }

        let clock = Arc::new(SystemClock);
        let tenants = Arc::new(TenantService::new(
            Arc::new(store.clone()),
            clock.clone(),
            key_protection_tiers(&settings)?,
        ));
        let configured_token = settings
            .operator_token
            .as_ref()
            .map(|t| t.expose_secret().to_string());
        let generated_operator_token = tenants
            .ensure_operator_token(configured_token.as_deref())
            .await
            .context("installing the operator credential")?;
        let (access_tokens, invalidation) =
            build_credentials(&settings, &store, &tenants, &mut background).await?;
        let pool: Arc<dyn SignerPool> = coordinator.clone();
        let wallets = Arc::new(WalletService::new(
            Arc::new(store.clone()),
            pool.clone(),
            clock,
        ));
        let mut prices = std::collections::BTreeMap::new();
        for (asset, price) in &settings.prices {
            let value = waas_policy::Decimal::from_str_exact(price.trim())
                .ok()
                .filter(|p| !p.is_sign_negative())
                .with_context(|| format!("prices.{asset} = {price:?} is not a decimal price"))?;
            prices.insert(asset.clone(), value);
        }
        let oracle = Arc::new(StaticPriceOracle::new(prices));
        let policies = Arc::new(PolicyService::new(
            Arc::new(store.clone()),
            Arc::new(SystemClock),
            PoolLimits {
                threshold: threshold.t(),
                parties: threshold.n(),
            },
        ));
        let networks: Arc<dyn NetworkDirectory> = Arc::new(
            waas_chains::Networks::from_config(&settings.networks)
                .map_err(|e| anyhow::anyhow!("networks: {e}"))?,
        );
        let executor = Arc::new(
            Executor::new(
                Arc::new(store.clone()),
                wallets.clone(),
                networks.clone(),
                Arc::new(SystemClock),
            )
            .with_lease(chrono::Duration::seconds(
                i64::try_from(settings.chain_lease_secs.max(1)).unwrap_or(i64::MAX),
            )),
        );
        background.0.push(spawn_executor(
            executor.clone(),
            Duration::from_millis(settings.chain_poll_ms.max(10)),
        ));
        let transactions = Arc::new(
            TransactionService::new(
                Arc::new(store.clone()),
                wallets.clone(),
                policies.clone(),
                oracle,
                networks.clone(),
                Arc::new(waas_chains::evm::Eip712Hasher),
                Arc::new(SystemClock),
            )
            .with_approval_window(chrono::Duration::seconds(
                i64::try_from(settings.approval_window_secs).unwrap_or(i64::MAX),
            )),
        );
        let state = AppState {
            tenants,
            wallets,
            policies,
            transactions,
            executor,
            networks,
            events: Arc::new(store.clone()),
            pool,
            store,
            custody_stats: Arc::new(custody_stats),
            coordinator: coordinator.clone(),
            access_tokens,
            invalidation,
            rate_limits,
        };
        let idempotency_store: Arc<dyn waas_core::idempotency::IdempotencyStore> =
            Arc::new(state.store.clone());
        background.0.push(crate::idempotency::spawn_purge(
            idempotency_store.clone(),
            Arc::new(SystemClock),
            Duration::from_secs(settings.idempotency.ttl_secs.clamp(1, 600)),
        ));
        let idempotency = Idempotency::new(
            state.clone(),
            idempotency_store,
            Arc::new(SystemClock),
            IdempotencyTimes {
                ttl: Duration::from_secs(settings.idempotency.ttl_secs),
                lease: Duration::from_secs(
                    settings
                        .limits
                        .request_timeout_secs
                        .saturating_add(IDEMPOTENCY_LEASE_MARGIN_SECS),
                ),
            },
            MAX_BODY_BYTES,
        );
        let request_timeout = Duration::from_secs(settings.limits.request_timeout_secs.max(1));
        let metrics = crate::routes::metrics::router(settings.metrics_token.as_ref());
        let (router, metrics) = match &settings.metrics_listen {
            None => (
                app_router(
                    state,
                    api_routes(idempotency).merge(metrics),
                    request_timeout,
                ),
                None,
            ),
            Some(address) => {
                let listener = TcpListener::bind(address)
                    .await
                    .with_context(|| format!("binding metrics_listen {address}"))?;
                let metrics_router = app_router(state.clone(), metrics, request_timeout);
                (
                    app_router(state, api_routes(idempotency), request_timeout),
                    Some((listener, metrics_router)),
                )
            }
        };
        let listener = TcpListener::bind(&settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            port,
            router,
            metrics,
            coordinator,
            generated_operator_token,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the separate `/metrics` listener (`metrics_listen`), if any.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
            .map(|address| address.port())
    }

    /// The operator token generated on this (first) start, to be shown once.
    pub fn generated_operator_token(&self) -> Option<&str> {
        self.generated_operator_token.as_ref().map(|t| t.expose())
    }

    pub fn pool_status(&self) -> PoolStatus {
        self.coordinator.status()
    }

    pub fn coordinator(&self) -> Arc<Coordinator> {
        self.coordinator.clone()
    }

    /// Serves until SIGINT or SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `signal` completes.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            router,
            metrics,
            background,
            ..
        } = self;
        // One stop signal for both listeners.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let metrics_server = metrics.map(|(listener, router)| {
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let until = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                if let Err(error) = axum::serve(listener, with_client_address(router))
                    .with_graceful_shutdown(until)
                    .await
                {
                    tracing::error!(%error, "the metrics listener failed");
                }
            })
        });
        let mut api_stopped = stopped;
        let serving = axum::serve(listener, with_client_address(router))
            .with_graceful_shutdown(async move {
                let _ = api_stopped.wait_for(|stop| *stop).await;
            })
            .into_future();
        tokio::pin!(serving);
        let result = tokio::select! {
            result = &mut serving => result,
            () = signal => {
                let _ = stop.send(true);
                serving.await
            }
        };
        let _ = stop.send(true);
        if let Some(task) = metrics_server {
            let _ = task.await;
        }
        drop(background);
        result.map_err(Into::into)
    }
}

/// OAuth2 access tokens (this process's first signing key published before it serves) and
/// the invalidation bus (subscribed before it serves when Redis answers), with their
/// background upkeep: revocation sweep, signing-key rotation.
async fn build_credentials(
    settings: &Settings,
    store: &SqlStore,
    tenants: &Arc<TenantService>,
    background: &mut Background,
) -> anyhow::Result<(Arc<AccessTokens>, Arc<InvalidationBus>)> {
    let oauth = &settings.oauth;
    oauth.check().map_err(anyhow::Error::msg)?;
    let access_tokens = Arc::new(AccessTokens::new(
        Arc::new(store.clone()),
        Arc::new(SystemClock),
        TokenSettings {
            issuer: oauth.issuer.clone(),
            ttl: chrono::Duration::seconds(i64::try_from(oauth.token_ttl_secs)?),
            leeway_secs: oauth.clock_leeway_secs,
            rotation: chrono::Duration::seconds(i64::try_from(oauth.signing_key_rotation_secs)?),
        },
    ));
    access_tokens
        .rotate()
        .await
        .context("publishing this process's JWT signing key")?;
    background
        .0
        .push(credentials_upkeep::spawn_signing_key_upkeep(
            access_tokens.clone(),
        ));
    let invalidation = match &settings.redis.url {
        Some(url) => InvalidationBus::redis(
            url,
            settings
                .redis
                .channel_prefix
                .as_deref()
                .unwrap_or(crate::invalidation::DEFAULT_CHANNEL_PREFIX),
        )?,
        None => InvalidationBus::local(),
    };
    credentials_upkeep::wire_revocations(&invalidation, tenants);
    if let Some(listener) = invalidation.spawn_listener().await {
        background.0.push(listener);
    }
    background
        .0
        .push(credentials_upkeep::spawn_revocation_sweep(
            tenants.clone(),
            Duration::from_secs(oauth.revocation_sweep_secs),
        ));
    Ok((access_tokens, invalidation))
}

/// The API's routes (`crate::routes::router()`) with the `Idempotency-Key` middleware,
/// which acts on POSTs under `/v1` only (`crate::idempotency`). It sits inside the
/// request-id, tracing and problem layers of [`app_router`], so its own errors and replayed
/// problems carry the request id.
fn api_routes(idempotency: Idempotency) -> Router<AppState> {
    crate::routes::router().layer(axum::middleware::from_fn_with_state(
        idempotency,
        crate::idempotency::idempotency,
    ))
}

/// `routes` with the not-found fallback and the request-id, tracing, problem, timeout,
/// panic and rate-limit layers: the API's router (`crate::routes::router()`, plus `/metrics`
/// unless it has its own listener) or the metrics listener's.
fn app_router(state: AppState, routes: Router<AppState>, request_timeout: Duration) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
        let request_id = request
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!("request", request_id = %request_id, method = %request.method(), path = %request.uri().path())
    });
    routes
        // Matched routes only, so the limiter sees the route (`MatchedPath`) it classifies.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::ratelimit::limit_requests,
        ))
        .fallback(|| async { crate::problem::ApiError::new(waas_core::ErrorCode::RouteNotFound) })
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(trace)
                .layer(axum::middleware::from_fn(finalize_problems))
                .layer(axum::middleware::from_fn(
                    move |request: axum::extract::Request, next: axum::middleware::Next| {
                        crate::timeout::time_limit(request_timeout, request, next)
                    },
                ))
                .layer(CatchPanicLayer::new())
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
}

/// Serves `router` with each connection's peer address in the request extensions
/// (`ConnectInfo<SocketAddr>`), which the per-address rate limit reads.
fn with_client_address(
    router: Router,
) -> axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, std::net::SocketAddr> {
    router.into_make_service_with_connect_info::<std::net::SocketAddr>()
}

/// Moves transactions on (sign, send, confirm): polls every `every` and drives what it
/// picks without waiting for slow drives (`Executor::run_sweeps`).
fn spawn_executor(executor: Arc<Executor>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(executor.run_sweeps(every))
}

/// SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
