//! The signer-node network transport between a coordinator and a signer node (ADR 0005):
//! HTTP/2 inside TLS 1.3, both ends authenticated by their pinned Ed25519 identity keys
//! (`tls`); cleartext HTTP/2 (h2c, prior knowledge) only when configured for development.
//!
//! - `POST /v1/sessions`: one full-duplex stream per session. The request body carries
//!   length-prefixed frames: first the [`SignedStart`](crate::SignedStart) (the
//!   authorization, at most [`START_FRAME_MAX`] bytes, due within a few seconds and checked
//!   before anything else is read), then the [`WireMessage`](crate::WireMessage)s the
//!   coordinator relays to this party (at most [`MAX_FRAME`] bytes each). The response body
//!   carries the party's [`SignedEvent`](crate::SignedEvent)s.
//! - `GET /v1/status`: the party's status, signed by its identity key.
//! - `GET /healthz`: liveness.
//!
//! Party-to-party payloads are sealed end to end and every event is signed, so what TLS adds
//! is confidentiality of the metadata (tenant and key ids, digests, messages) and that only
//! pinned coordinators reach the node's HTTP/2 server at all. The node's limits (handshake,
//! start, idle and session timeouts; per-peer caps on handshakes, connections, sessions and
//! streams) are in [`NodeLimits`].

mod client;
mod frames;
mod peers;
mod server;
pub mod tls;

pub use client::RemotePartyLink;
pub use server::{NodeLimits, ServeOptions, TransportCounters, serve_node};

/// Largest frame a session accepts after its start was verified (CGGMP auxiliary-info
/// messages are the largest, about a megabyte).
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Largest session start a node reads before the start's signature is verified. The
/// largest start the API can cause carries 128 KiB of EVM call data (or a 64 KiB message);
/// 256 KiB leaves room for the rest of the start and its encoding.
pub const START_FRAME_MAX: usize = 256 * 1024;

/// How coordinators and nodes talk (`signer.transport`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportSecurity {
    /// TLS 1.3 with the pinned identity keys as raw public keys (`tls`, the default).
    Tls,
    /// Cleartext HTTP/2 with prior knowledge (`h2c`): development only.
    Cleartext,
}

impl TransportSecurity {
    /// The URL scheme nodes are reached with.
    pub fn scheme(self) -> &'static str {
        match self {
            TransportSecurity::Tls => "https",
            TransportSecurity::Cleartext => "http",
        }
    }
}

impl std::fmt::Display for TransportSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransportSecurity::Tls => "tls",
            TransportSecurity::Cleartext => "h2c",
        })
    }
}

impl std::str::FromStr for TransportSecurity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tls" => Ok(TransportSecurity::Tls),
            "h2c" => Ok(TransportSecurity::Cleartext),
            other => Err(format!(
                "signer.transport {other:?} is neither \"tls\" nor \"h2c\""
            )),
        }
    }
}
