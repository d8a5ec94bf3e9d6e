//! The signer node's server: accepts coordinators (TLS with a pinned control-plane key, or
//! h2c in development), serves HTTP/2 with per-peer caps, and runs each session stream with
//! a small, timely, verified start before reading anything else.
//!
//! What a peer can make the node hold before it is authenticated: one TLS handshake per
//! slot (at most [`NodeLimits::handshakes_per_peer`] at once, each cut after
//! [`NodeLimits::handshake_timeout`]); after the handshake (TLS) or from the first byte
//! (h2c), per session stream one start frame of at most [`START_FRAME_MAX`] bytes plus one
//! HTTP/2 DATA frame, for at most [`NodeLimits::start_timeout`]; HTTP/2 buffers at most
//! the stream and connection windows. A connection with no open request for
//! [`NodeLimits::idle_timeout`] is closed.

use super::frames::{Body, FrameError, FrameReader, channel_body, frame};
use super::peers::{ActiveRequest, Activity, PeerTable, Slot};
use super::{MAX_FRAME, START_FRAME_MAX, TransportSecurity, tls};
use crate::party::PartyNode;
use crate::secure;
use crate::transport::{SignedEvent, SignedStart, WireMessage};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use waas_core::ports::SignerError;

/// Bounds a node puts on its peers. A peer is a client IP address; with TLS only pinned
/// coordinators get past the handshake.
#[derive(Clone, Debug)]
pub struct NodeLimits {
    /// A TLS handshake must complete within this.
    pub handshake_timeout: Duration,
    /// A session stream's signed start must arrive within this.
    pub start_timeout: Duration,
    /// A connection with no open request for this long is closed.
    pub idle_timeout: Duration,
    /// An authorized session whose coordinator sends nothing for this long is ended.
    pub session_idle_timeout: Duration,
    /// TLS handshakes in progress per peer.
    pub handshakes_per_peer: usize,
    /// Open connections per peer.
    pub connections_per_peer: usize,
    /// Concurrent sessions per peer (over all its connections).
    pub sessions_per_peer: usize,
    /// Concurrent HTTP/2 streams per connection (`SETTINGS_MAX_CONCURRENT_STREAMS`).
    pub streams_per_connection: u32,
}

impl NodeLimits {
    /// The limits `waas signer` runs with.
    pub fn standard() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            start_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            session_idle_timeout: Duration::from_secs(secure::MAX_AUTHORIZATION_SECS),
            handshakes_per_peer: 16,
            connections_per_peer: 16,
            sessions_per_peer: 256,
            streams_per_connection: 300,
        }
    }
}

/// What the node refused or cut off, for logs and tests.
#[derive(Debug, Default)]
pub struct TransportCounters {
    /// TLS handshakes refused (no client key, an unpinned key, a bad signature, not TLS).
    pub handshakes_refused: AtomicU64,
    /// TLS handshakes cut off for taking too long.
    pub handshakes_timed_out: AtomicU64,
    /// Handshakes or connections refused because the peer already had its share.
    pub connections_over_cap: AtomicU64,
    /// Connections closed after being idle.
    pub connections_idle_closed: AtomicU64,
    /// Session streams whose start announced more than [`START_FRAME_MAX`] bytes.
    pub starts_too_large: AtomicU64,
    /// Session streams whose start did not arrive in time.
    pub starts_late: AtomicU64,
    /// Session streams whose start was malformed.
    pub starts_malformed: AtomicU64,
    /// Starts not signed by a pinned control plane (or expired): answered with the
    /// party's signed refusal, nothing more read.
    pub starts_unauthorized: AtomicU64,
    /// Sessions refused because the peer already had its share.
    pub sessions_over_cap: AtomicU64,
    /// Authorized sessions ended because their coordinator went silent.
    pub sessions_idle_closed: AtomicU64,
}

impl TransportCounters {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// How a node serves.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub security: TransportSecurity,
    pub limits: NodeLimits,
    pub counters: Arc<TransportCounters>,
}

/// Everything a connection needs.
#[derive(Debug)]
struct Shared {
    node: Arc<PartyNode>,
    limits: NodeLimits,
    counters: Arc<TransportCounters>,
    peers: Arc<PeerTable>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// Serves one signer party on `listener` until `shutdown` completes. Fails only when the
/// TLS configuration cannot be built.
pub async fn serve_node(
    node: Arc<PartyNode>,
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), SignerError> {
    let tls = match options.security {
        TransportSecurity::Tls => {
            let trust = node.trust();
            let config = tls::server_config(trust.identity.clone(), trust.authorities.clone())?;
            Some(Arc::new(config))
        }
        TransportSecurity::Cleartext => None,
    };
    let shared = Arc::new(Shared {
        node,
        limits: options.limits,
        counters: options.counters,
        peers: Arc::default(),
        tls,
    });
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(shared.clone(), stream, peer));
    }
}

async fn connection(shared: Arc<Shared>, stream: TcpStream, address: SocketAddr) {
    let peer = address.ip();
    let Some(tls) = shared.tls.clone() else {
        return serve_http(shared, TokioIo::new(stream), address).await;
    };
    let Some(handshake_slot) =
        shared
            .peers
            .admit(peer, Slot::Handshake, shared.limits.handshakes_per_peer)
    else {
        TransportCounters::add(&shared.counters.connections_over_cap);
        tracing::warn!(%address, "too many TLS handshakes from this peer");
        return;
    };
    let accepted = tokio::time::timeout(
        shared.limits.handshake_timeout,
        tokio_rustls::TlsAcceptor::from(tls).accept(stream),
    )
    .await;
    drop(handshake_slot);
    match accepted {
        Err(_) => {
            TransportCounters::add(&shared.counters.handshakes_timed_out);
            tracing::warn!(%address, "TLS handshake cut off: too slow");
        }
        Ok(Err(error)) => {
            TransportCounters::add(&shared.counters.handshakes_refused);
            tracing::warn!(%address, %error, "TLS handshake refused");
        }
        Ok(Ok(stream)) => serve_http(shared, TokioIo::new(stream), address).await,
    }
}

async fn serve_http<I>(shared: Arc<Shared>, io: TokioIo<I>, address: SocketAddr)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = address.ip();
    let Some(_connection_slot) =
        shared
            .peers
            .admit(peer, Slot::Connection, shared.limits.connections_per_peer)
    else {
        TransportCounters::add(&shared.counters.connections_over_cap);
        tracing::warn!(%address, "too many connections from this peer");
        return;
    };
    let activity = Arc::new(Activity::new());
    let service = {
        let (shared, activity) = (shared.clone(), activity.clone());
        hyper::service::service_fn(move |request| {
            let shared = shared.clone();
            let active = ActiveRequest::new(activity.clone());
            async move { Ok::<_, Infallible>(handle(shared, peer, active, request).await) }
        })
    };
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(shared.limits.streams_per_connection)
        .max_header_list_size(16 * 1024)
        .max_frame_size(64 * 1024)
        .initial_stream_window_size(1024 * 1024)
        .initial_connection_window_size(4 * 1024 * 1024);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%address, %error, "connection ended");
            }
            return;
        }
        () = activity.idle_for(shared.limits.idle_timeout) => {
            TransportCounters::add(&shared.counters.connections_idle_closed);
            tracing::debug!(%address, "closing an idle connection");
        }
    }
    connection.as_mut().graceful_shutdown();
    // A peer that does not take its GOAWAY is dropped.
    let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
}

async fn handle(
    shared: Arc<Shared>,
    peer: IpAddr,
    active: ActiveRequest,
    request: Request<Incoming>,
) -> Response<Body> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => full(StatusCode::OK, "ok"),
        (&Method::GET, "/v1/status") => match shared.node.signed_status().await {
            Ok(bytes) => full(StatusCode::OK, bytes),
            Err(error) => {
                tracing::error!(%error, "status failed");
                full(StatusCode::INTERNAL_SERVER_ERROR, "status failed")
            }
        },
        (&Method::POST, "/v1/sessions") => {
            match shared
                .peers
                .admit(peer, Slot::Session, shared.limits.sessions_per_peer)
            {
                Some(session_slot) => session(shared, request.into_body(), (session_slot, active)),
                None => {
                    TransportCounters::add(&shared.counters.sessions_over_cap);
                    tracing::warn!(%peer, "too many sessions from this peer");
                    full(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "too many sessions from this peer",
                    )
                }
            }
        }
        _ => full(StatusCode::NOT_FOUND, "not found"),
    }
}

fn full(status: StatusCode, bytes: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(BodyExt::boxed(
        Full::new(bytes.into()).map_err(|never: Infallible| match never {}),
    ));
    *response.status_mut() = status;
    response
}

/// Answers a session request at once; the stream runs in its own task, holding `slots`
/// (the peer's session slot, the connection's activity) until it ends.
fn session(shared: Arc<Shared>, body: Incoming, slots: impl Send + 'static) -> Response<Body> {
    let (frames_out, frames_rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        let _slots = slots;
        run_session_stream(shared, body, frames_out).await;
    });
    let mut response = Response::new(channel_body(frames_rx));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-waas-frames"),
    );
    response
}

/// Reads the start (small, on time), verifies its signature, and only then relays the
/// coordinator's frames to the party while the party's signed events go back.
async fn run_session_stream(shared: Arc<Shared>, body: Incoming, frames_out: mpsc::Sender<Bytes>) {
    let counters = &shared.counters;
    let mut reader = FrameReader::new(body);
    let read_start = reader.next::<SignedStart>(START_FRAME_MAX);
    let start = match tokio::time::timeout(shared.limits.start_timeout, read_start).await {
        Ok(Ok(Some(start))) => start,
        Ok(Ok(None)) => return,
        Ok(Err(error @ FrameError::TooLarge { .. })) => {
            TransportCounters::add(&counters.starts_too_large);
            tracing::warn!(%error, "session start refused before reading it");
            return;
        }
        Ok(Err(error)) => {
            TransportCounters::add(&counters.starts_malformed);
            tracing::warn!(%error, "a session stream without a valid start");
            return;
        }
        Err(_) => {
            TransportCounters::add(&counters.starts_late);
            tracing::warn!(
                timeout = ?shared.limits.start_timeout,
                "a session stream whose start did not arrive in time"
            );
            return;
        }
    };
    // The peer is authenticated by the start's signature; the party checks everything else
    // (participation, payload, one-time use) and signs its refusal when it refuses.
    let authorities = &shared.node.trust().authorities;
    let authorized = secure::verify_start(&start, authorities, secure::now_unix()).is_ok();
    let (to_party, inbox) = mpsc::channel::<WireMessage>(256);
    let (outbox, mut events) = mpsc::channel::<SignedEvent>(256);
    let runtime = tokio::runtime::Handle::current();
    // Protocol steps are CPU-heavy: the session runs on a blocking thread.
    let node = shared.node.clone();
    tokio::task::spawn_blocking(move || {
        runtime.block_on(node.run_session(start, inbox, outbox));
    });
    let forward = async move {
        while let Some(event) = events.recv().await {
            let Ok(bytes) = frame(&event) else { return };
            if frames_out.send(bytes).await.is_err() {
                return;
            }
        }
    };
    if !authorized {
        TransportCounters::add(&counters.starts_unauthorized);
        // Nothing more is read from this stream: the party sees its inbox end.
        drop((reader, to_party));
        forward.await;
        return;
    }
    let session_idle = shared.limits.session_idle_timeout;
    let relay = async move {
        loop {
            match tokio::time::timeout(session_idle, reader.next::<WireMessage>(MAX_FRAME)).await {
                Ok(Ok(Some(message))) => {
                    if to_party.send(message).await.is_err() {
                        return;
                    }
                }
                Ok(Ok(None)) => return,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "malformed frame from the coordinator");
                    return;
                }
                Err(_) => {
                    TransportCounters::add(&counters.sessions_idle_closed);
                    tracing::warn!("ending a session whose coordinator went silent");
                    return;
                }
            }
        }
    };
    tokio::pin!(forward);
    tokio::select! {
        // The party finished (its events are all sent): stop reading.
        () = &mut forward => {}
        // The coordinator closed its side or broke off: the party sees its inbox end.
        () = relay => forward.await,
    }
}
