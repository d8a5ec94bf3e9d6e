//! The coordinator's side of the node transport: [`RemotePartyLink`], one per node, over
//! TLS pinned to the node's identity key (or h2c in development).

use super::frames::{Body, FrameReader, channel_body, frame};
use super::{MAX_FRAME, START_FRAME_MAX, TransportSecurity, tls};
use crate::SignedStart;
use crate::identity::{IdentityKey, PublicIdentity};
use crate::secure;
use crate::transport::{PartyLink, PartySession, PartyStatus, SignedEvent, WireMessage};
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use waas_core::ports::SignerError;

/// Largest signed status a coordinator reads.
const MAX_STATUS_BYTES: usize = 64 * 1024;

/// The HTTP/2 client of one link.
#[derive(Debug, Clone)]
enum NodeClient {
    Tls(Client<HttpsConnector<HttpConnector>, Body>),
    Cleartext(Client<HttpConnector, Body>),
}

impl NodeClient {
    async fn request(
        &self,
        request: Request<Body>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        match self {
            NodeClient::Tls(client) => client.request(request).await,
            NodeClient::Cleartext(client) => client.request(request).await,
        }
    }
}

/// A signer node reached over the network.
#[derive(Debug, Clone)]
pub struct RemotePartyLink {
    index: u16,
    base: String,
    key: PublicIdentity,
    client: NodeClient,
    request_timeout: Duration,
}

fn http_connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    connector.set_nodelay(true);
    connector.enforce_http(false);
    connector
}

fn client_builder() -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .http2_only(true)
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        // Well before a node closes an idle connection (`NodeLimits::idle_timeout`), so a
        // request never races the node's close.
        .pool_idle_timeout(Duration::from_secs(60))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .http2_keep_alive_timeout(Duration::from_secs(20))
        .http2_initial_stream_window_size(4 * 1024 * 1024)
        .http2_initial_connection_window_size(8 * 1024 * 1024)
        .http2_max_frame_size(1024 * 1024);
    builder
}

impl RemotePartyLink {
    /// A link to node `index` at `url` whose pinned identity key is `node_key`. With
    /// [`TransportSecurity::Tls`] the URL is `https://host:port` and the coordinator
    /// presents `coordinator_key` (the control-plane key the nodes pin); with
    /// [`TransportSecurity::Cleartext`] it is `http://host:port` and the key is unused.
    pub fn new(
        index: u16,
        url: &str,
        node_key: PublicIdentity,
        security: TransportSecurity,
        coordinator_key: Arc<IdentityKey>,
    ) -> Result<Self, SignerError> {
        let base = url.trim_end_matches('/').to_string();
        let uri: hyper::Uri = base
            .parse()
            .map_err(|e| SignerError::Bug(format!("signer node {index} URL {url:?}: {e}")))?;
        if uri.scheme_str() != Some(security.scheme()) || uri.host().is_none() {
            return Err(SignerError::Bug(format!(
                "signer node {index} URL {url:?}: with signer.transport = \"{security}\" it must be {}://host:port",
                security.scheme()
            )));
        }
        let client = match security {
            TransportSecurity::Tls => {
                let config = tls::client_config(coordinator_key, node_key)?;
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(config)
                    .https_only()
                    .enable_http2()
                    .wrap_connector(http_connector());
                NodeClient::Tls(client_builder().build(connector))
            }
            TransportSecurity::Cleartext => {
                NodeClient::Cleartext(client_builder().build(http_connector()))
            }
        };
        Ok(Self {
            index,
            base,
            key: node_key,
            client,
            request_timeout: Duration::from_secs(5),
        })
    }

    fn unreachable(&self, what: impl std::fmt::Display) -> SignerError {
        SignerError::Transport(format!(
            "signer node {} ({}): {what}",
            self.index, self.base
        ))
    }
}

#[async_trait]
impl PartyLink for RemotePartyLink {
    fn index(&self) -> u16 {
        self.index
    }

    async fn open(&self, start: SignedStart) -> Result<PartySession, SignerError> {
        let start = frame(&start)?;
        if start.len() > START_FRAME_MAX + 4 {
            return Err(SignerError::Bug(format!(
                "a session start of {} bytes is larger than a node accepts ({START_FRAME_MAX})",
                start.len()
            )));
        }
        let (frames_in, frames_rx) = mpsc::channel::<Bytes>(256);
        frames_in
            .send(start)
            .await
            .map_err(|_| SignerError::Bug("session channel closed".into()))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/v1/sessions", self.base))
            .header(hyper::header::CONTENT_TYPE, "application/x-waas-frames")
            .body(channel_body(frames_rx))
            .map_err(|e| SignerError::Bug(format!("building a request: {e}")))?;
        let response = tokio::time::timeout(self.request_timeout, self.client.request(request))
            .await
            .map_err(|_| self.unreachable("timed out opening a session"))?
            .map_err(|e| self.unreachable(error_chain(&e)))?;
        if response.status() != StatusCode::OK {
            return Err(self.unreachable(format!("answered {}", response.status())));
        }
        let (to_party, mut outgoing) = mpsc::channel::<WireMessage>(256);
        let (events, from_party) = mpsc::channel::<SignedEvent>(256);
        tokio::spawn(async move {
            while let Some(message) = outgoing.recv().await {
                let Ok(bytes) = frame(&message) else { return };
                if frames_in.send(bytes).await.is_err() {
                    return;
                }
            }
        });
        let index = self.index;
        tokio::spawn(async move {
            let mut reader = FrameReader::new(response.into_body());
            loop {
                match reader.next::<SignedEvent>(MAX_FRAME).await {
                    Ok(Some(event)) => {
                        if events.send(event).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(error) => {
                        tracing::warn!(party_index = index, %error, "session stream broke");
                        return;
                    }
                }
            }
        });
        Ok(PartySession {
            to_party,
            from_party,
        })
    }

    async fn status(&self) -> Result<PartyStatus, SignerError> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(format!("{}/v1/status", self.base))
            .body(BodyExt::boxed(
                Empty::<Bytes>::new().map_err(|never: Infallible| match never {}),
            ))
            .map_err(|e| SignerError::Bug(format!("building a request: {e}")))?;
        let fetch = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| self.unreachable(error_chain(&e)))?;
            if response.status() != StatusCode::OK {
                return Err(self.unreachable(format!("answered {}", response.status())));
            }
            let body = Limited::new(response.into_body(), MAX_STATUS_BYTES)
                .collect()
                .await
                .map_err(|e| self.unreachable(e))?
                .to_bytes();
            secure::verify_status(&self.key, self.index, &body, secure::now_unix())
                .map_err(|reason| self.unreachable(reason))
        };
        tokio::time::timeout(self.request_timeout, fetch)
            .await
            .map_err(|_| self.unreachable("status timed out"))?
    }
}

/// An error with its causes ("client error (Connect): invalid peer certificate: ...").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
