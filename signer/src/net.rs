//! The signer-node network transport: HTTP/2 (cleartext, prior knowledge) between a
//! coordinator and a signer node (ADR 0005).
//!
//! - `POST /v1/sessions`: one full-duplex stream per session. The request body carries
//!   length-prefixed frames: first the [`SignedStart`] (the authorization), then the
//!   [`WireMessage`]s the coordinator relays to this party. The response body carries the
//!   party's [`SignedEvent`]s. Party-to-party payloads are sealed end to end and every event
//!   is signed, so the transport itself needs no trust.
//! - `GET /v1/status`: the party's status, signed by its identity key.
//! - `GET /healthz`: liveness.
//!
//! Frames are `u32` big-endian length + postcard bytes, at most [`MAX_FRAME`] bytes.

use crate::identity::PublicIdentity;
use crate::party::PartyNode;
use crate::secure;
use crate::transport::{
    PartyLink, PartySession, PartyStatus, SignedEvent, SignedStart, WireMessage,
};
use async_trait::async_trait;
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use waas_core::ports::SignerError;

/// Largest frame accepted (CGGMP auxiliary-info messages are the largest, about a megabyte).
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

type Body = BoxBody<Bytes, std::io::Error>;

fn frame<T: Serialize>(value: &T) -> Result<Bytes, SignerError> {
    let body = secure::encode(value)?;
    let len = u32::try_from(body.len())
        .map_err(|_| SignerError::Bug("frame larger than 4 GiB".into()))?;
    let mut out = BytesMut::with_capacity(body.len() + 4);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out.freeze())
}

/// Reads length-prefixed frames from an HTTP body.
struct FrameReader {
    body: Incoming,
    buffer: BytesMut,
}

impl FrameReader {
    fn new(body: Incoming) -> Self {
        Self {
            body,
            buffer: BytesMut::new(),
        }
    }

    /// The next frame; `Ok(None)` at a clean end of the stream.
    async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, String> {
        loop {
            if self.buffer.len() >= 4 {
                let mut head = [0u8; 4];
                head.copy_from_slice(self.buffer.get(..4).unwrap_or(&[0; 4]));
                let len = usize::try_from(u32::from_be_bytes(head)).unwrap_or(usize::MAX);
                if len > MAX_FRAME {
                    return Err(format!("frame of {len} bytes exceeds the limit"));
                }
                if self.buffer.len() >= 4 + len {
                    self.buffer.advance(4);
                    let body = self.buffer.split_to(len);
                    return secure::decode(&body).map(Some);
                }
            }
            match self.body.frame().await {
                None => {
                    return if self.buffer.is_empty() {
                        Ok(None)
                    } else {
                        Err("stream ended inside a frame".into())
                    };
                }
                Some(Err(error)) => return Err(format!("stream: {error}")),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

/// A body that streams frames from a channel.
fn channel_body(receiver: mpsc::Receiver<Bytes>) -> Body {
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        let bytes = receiver.recv().await?;
        Some((Ok::<_, std::io::Error>(Frame::data(bytes)), receiver))
    });
    BodyExt::boxed(StreamBody::new(stream))
}

fn full(status: StatusCode, bytes: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(BodyExt::boxed(
        Full::new(bytes.into()).map_err(|never: Infallible| match never {}),
    ));
    *response.status_mut() = status;
    response
}

/// Serves one signer party on `listener` until `shutdown` completes.
pub async fn serve_node(
    node: Arc<PartyNode>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
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
        let node = node.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let node = node.clone();
                async move { Ok::<_, Infallible>(handle(node, request).await) }
            });
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            builder
                .timer(TokioTimer::new())
                .keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(20))
                .max_frame_size(1024 * 1024)
                .initial_stream_window_size(4 * 1024 * 1024)
                .initial_connection_window_size(8 * 1024 * 1024);
            if let Err(error) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, %error, "connection ended");
            }
        });
    }
}

async fn handle(node: Arc<PartyNode>, request: Request<Incoming>) -> Response<Body> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => full(StatusCode::OK, "ok"),
        (&Method::GET, "/v1/status") => match node.signed_status().await {
            Ok(bytes) => full(StatusCode::OK, bytes),
            Err(error) => {
                tracing::error!(%error, "status failed");
                full(StatusCode::INTERNAL_SERVER_ERROR, "status failed")
            }
        },
        (&Method::POST, "/v1/sessions") => session(node, request.into_body()),
        _ => full(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Runs one session: frames in from the request body, signed events out on the response.
fn session(node: Arc<PartyNode>, body: Incoming) -> Response<Body> {
    let (frames_out, frames_rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        let mut reader = FrameReader::new(body);
        let start: SignedStart = match reader.next().await {
            Ok(Some(start)) => start,
            Ok(None) | Err(_) => {
                tracing::warn!("a session stream without a valid start");
                return;
            }
        };
        let (to_party, inbox) = mpsc::channel::<WireMessage>(256);
        let (outbox, mut events) = mpsc::channel::<SignedEvent>(256);
        let runtime = tokio::runtime::Handle::current();
        // Protocol steps are CPU-heavy: the session runs on a blocking thread.
        let session_node = node.clone();
        tokio::task::spawn_blocking(move || {
            runtime.block_on(session_node.run_session(start, inbox, outbox));
        });
        let forward = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let Ok(bytes) = frame(&event) else { return };
                if frames_out.send(bytes).await.is_err() {
                    return;
                }
            }
        });
        loop {
            match reader.next::<WireMessage>().await {
                Ok(Some(message)) => {
                    if to_party.send(message).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "malformed frame from the coordinator");
                    break;
                }
            }
        }
        // The coordinator closed its side: the party sees its inbox end.
        drop(to_party);
        let _ = forward.await;
    });
    let mut response = Response::new(channel_body(frames_rx));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-waas-frames"),
    );
    response
}

/// A signer node reached over the network.
#[derive(Debug, Clone)]
pub struct RemotePartyLink {
    index: u16,
    base: String,
    key: PublicIdentity,
    client: Client<HttpConnector, Body>,
    request_timeout: Duration,
}

impl RemotePartyLink {
    /// `url` is the node's base URL (`http://host:port`); `key` its pinned identity key.
    pub fn new(index: u16, url: &str, key: PublicIdentity) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .http2_keep_alive_interval(Duration::from_secs(10))
            .http2_keep_alive_timeout(Duration::from_secs(20))
            .http2_initial_stream_window_size(4 * 1024 * 1024)
            .http2_initial_connection_window_size(8 * 1024 * 1024)
            .http2_max_frame_size(1024 * 1024)
            .build(connector);
        Self {
            index,
            base: url.trim_end_matches('/').to_string(),
            key,
            client,
            request_timeout: Duration::from_secs(5),
        }
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
        let (frames_in, frames_rx) = mpsc::channel::<Bytes>(256);
        frames_in
            .send(frame(&start)?)
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
            .map_err(|e| self.unreachable(e))?;
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
                match reader.next::<SignedEvent>().await {
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
                .map_err(|e| self.unreachable(e))?;
            if response.status() != StatusCode::OK {
                return Err(self.unreachable(format!("answered {}", response.status())));
            }
            let body = response
                .into_body()
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
