//! The session interface between the coordinator and a signer party.
//!
//! A session is opened with a [`SessionStart`]; then the party and the coordinator exchange
//! [`WireMessage`]s (protocol messages, addressed by session-local index) until the party
//! reports an output or a failure. Payloads are opaque bytes to the coordinator.

use crate::party::PartyNode;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::mpsc;
use waas_core::ports::{SignPayload, SignerError};

/// Where a protocol message goes. Indices are positions in the session's participant list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Route {
    Broadcast,
    Party(u16),
    Coordinator,
}

/// One protocol message in flight.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireMessage {
    /// Session-local index of the sender; `None` when the coordinator sent it.
    pub from: Option<u16>,
    pub route: Route,
    pub payload: Vec<u8>,
}

/// What a party reports to the coordinator.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum PartyEvent {
    Message(WireMessage),
    /// The party's public result (never secret material).
    Output(Vec<u8>),
    /// The party aborted; `culprits` are session-local indices of parties it blames.
    Failed {
        reason: String,
        culprits: Vec<u16>,
        #[serde(default)]
        kind: FailureKind,
    },
}

/// Why a party aborted a session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// The protocol failed (bad message, missing share, refused request...).
    #[default]
    Protocol,
    /// The party could not reach its key protection (KMS, HSM, key file); retrying later
    /// may succeed.
    CustodyUnavailable,
    /// The party refused the request (authorization, unknown key, spent presignature);
    /// nobody is to blame.
    Refused,
}

/// What an ECDSA digest was computed from, so each party can recompute it: the digest is
/// always `keccak256(preimage_bytes())`. Only sessions carrying a preimage may be signed from
/// a presignature (the parties then sign a hash output nobody chose).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preimage {
    /// An EIP-191 `personal_sign` message.
    PersonalMessage(Vec<u8>),
    /// EIP-712 typed data: the digest is `keccak256(0x1901 ‖ domain_separator ‖ struct_hash)`.
    TypedData {
        domain_separator: [u8; 32],
        struct_hash: [u8; 32],
    },
    /// An unsigned EVM transaction's signing payload (EIP-2718).
    EvmTransaction(Vec<u8>),
}

impl Preimage {
    /// The preimage of an ECDSA payload; `None` for a raw digest or an Ed25519 message.
    pub fn from_payload(payload: &SignPayload) -> Option<Preimage> {
        match payload {
            SignPayload::Digest(_) | SignPayload::Message(_) => None,
            SignPayload::PersonalMessage(message) => {
                Some(Preimage::PersonalMessage(message.clone()))
            }
            SignPayload::TypedData {
                domain_separator,
                struct_hash,
            } => Some(Preimage::TypedData {
                domain_separator: *domain_separator,
                struct_hash: *struct_hash,
            }),
            SignPayload::EvmTransaction(payload) => Some(Preimage::EvmTransaction(payload.clone())),
        }
    }

    /// The payload this preimage came from.
    pub fn to_payload(&self) -> SignPayload {
        match self {
            Preimage::PersonalMessage(message) => SignPayload::PersonalMessage(message.clone()),
            Preimage::TypedData {
                domain_separator,
                struct_hash,
            } => SignPayload::TypedData {
                domain_separator: *domain_separator,
                struct_hash: *struct_hash,
            },
            Preimage::EvmTransaction(payload) => SignPayload::EvmTransaction(payload.clone()),
        }
    }

    /// The bytes whose Keccak-256 hash is the digest (the one definition lives in
    /// `SignPayload::keccak_preimage`).
    pub fn bytes(&self) -> Vec<u8> {
        self.to_payload().keccak_preimage().unwrap_or_default()
    }

    /// `keccak256(self.bytes())`.
    pub fn digest(&self) -> [u8; 32] {
        use sha3::{Digest, Keccak256};
        Keccak256::digest(self.bytes()).into()
    }
}

/// What a session runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SessionKind {
    /// CGGMP auxiliary info (Paillier keys and ring-Pedersen parameters) for the party set.
    EcdsaAuxInfo,
    EcdsaKeygen {
        tenant: String,
        key_id: String,
        threshold: u16,
        /// The tenant's key-protection tier to seal the share under.
        protection: String,
    },
    /// Interactive CGGMP signing of a 32-byte digest. `signers_at_keygen[j]` is the keygen
    /// index of session participant `j`.
    EcdsaSign {
        tenant: String,
        key_id: String,
        digest: [u8; 32],
        /// When given, each party recomputes `digest` from it and refuses a mismatch.
        preimage: Option<Preimage>,
        signers_at_keygen: Vec<u16>,
    },
    /// Generates a presignature for a fixed signer set, kept sealed at each party.
    EcdsaPresign {
        tenant: String,
        key_id: String,
        presignature_id: String,
        signers_at_keygen: Vec<u16>,
    },
    /// One-round signing from a stored presignature, which each party consumes first.
    EcdsaSignPresigned {
        tenant: String,
        key_id: String,
        presignature_id: String,
        digest: [u8; 32],
        preimage: Option<Preimage>,
    },
    EddsaKeygen {
        tenant: String,
        key_id: String,
        threshold: u16,
        protection: String,
    },
    /// FROST signing; the coordinator collects commitments and shares.
    EddsaSign {
        tenant: String,
        key_id: String,
        message: Vec<u8>,
    },
    /// Key-encryption-key rotation at one party (optionally a new KEK version first).
    RotateKeys { new_version: bool },
    /// Pre-generates FROST round-1 nonces for a key at one party; outputs their ids and
    /// commitments.
    EddsaPrecommit {
        tenant: String,
        key_id: String,
        count: u16,
    },
    /// One-round FROST signing from precommitted nonces: the coordinator built `package`
    /// from the commitments; `nonce_ids[j]` is participant `j`'s nonce.
    EddsaSignPrecommitted {
        tenant: String,
        key_id: String,
        message: Vec<u8>,
        package: Vec<u8>,
        nonce_ids: Vec<String>,
    },
    /// Lists the presignatures one party holds (public facts: key, id, signer set).
    ListPresignatures,
    /// Deletes presignatures at one party (orphans whose other signers lost theirs).
    DiscardPresignatures { record_ids: Vec<String> },
}

impl SessionKind {
    /// Whether parties exchange messages with each other (and so first agree on end-to-end
    /// keys). Presigned ECDSA and FROST signing talk to the coordinator only.
    pub fn has_party_messages(&self) -> bool {
        !matches!(
            self,
            SessionKind::EcdsaSignPresigned { .. }
                | SessionKind::EddsaSign { .. }
                | SessionKind::RotateKeys { .. }
                | SessionKind::ListPresignatures
                | SessionKind::DiscardPresignatures { .. }
                | SessionKind::EddsaPrecommit { .. }
                | SessionKind::EddsaSignPrecommitted { .. }
        )
    }

    /// Whether the session produces (part of) a signature.
    pub fn is_signing(&self) -> bool {
        matches!(
            self,
            SessionKind::EcdsaSign { .. }
                | SessionKind::EcdsaSignPresigned { .. }
                | SessionKind::EddsaSign { .. }
                | SessionKind::EddsaSignPrecommitted { .. }
        )
    }

    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            SessionKind::EcdsaAuxInfo => "ecdsa_aux_info",
            SessionKind::EcdsaKeygen { .. } => "ecdsa_keygen",
            SessionKind::EcdsaSign { .. } => "ecdsa_sign",
            SessionKind::EcdsaPresign { .. } => "ecdsa_presign",
            SessionKind::EcdsaSignPresigned { .. } => "ecdsa_sign_presigned",
            SessionKind::EddsaKeygen { .. } => "eddsa_keygen",
            SessionKind::EddsaSign { .. } => "eddsa_sign",
            SessionKind::RotateKeys { .. } => "rotate_keys",
            SessionKind::ListPresignatures => "list_presignatures",
            SessionKind::EddsaPrecommit { .. } => "eddsa_precommit",
            SessionKind::EddsaSignPrecommitted { .. } => "eddsa_sign_precommitted",
            SessionKind::DiscardPresignatures { .. } => "discard_presignatures",
        }
    }
}

/// Opens a session. Signed by the control plane, it is the participants' authorization.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionStart {
    /// Unique per session: the protocol execution id and the authorization's one-time id.
    pub session_id: [u8; 32],
    /// Pool indices of the participants, in session order: the signing quorum.
    pub participants: Vec<u16>,
    pub kind: SessionKind,
    /// Unix seconds after which no party accepts this start.
    pub expires_at: u64,
    /// The policy decision a signing session carries out: each party refuses to sign with
    /// fewer participants than its signing quorum.
    pub quorum: Option<waas_core::ports::SigningQuorum>,
}

/// A [`SessionStart`] signed by a control-plane identity key. The signed bytes travel as
/// they were signed; a party verifies them before decoding.
#[derive(Clone, Serialize, Deserialize)]
pub struct SignedStart {
    pub body: Vec<u8>,
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for SignedStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignedStart({} bytes)", self.body.len())
    }
}

/// A [`PartyEvent`] signed by the reporting party's identity key, bound to the session, the
/// party's pool index and a sequence number (so events cannot be replayed, reordered or
/// moved between sessions).
#[derive(Clone, Serialize, Deserialize)]
pub struct SignedEvent {
    pub body: Vec<u8>,
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for SignedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignedEvent({} bytes)", self.body.len())
    }
}

/// The signed part of a [`SignedEvent`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventBody {
    pub session_id: [u8; 32],
    pub pool_index: u16,
    pub seq: u64,
    pub event: PartyEvent,
}

/// The two directions of an open session, seen from the coordinator.
#[derive(Debug)]
pub struct PartySession {
    pub to_party: mpsc::Sender<WireMessage>,
    pub from_party: mpsc::Receiver<SignedEvent>,
}

/// Readiness of one party.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyStatus {
    pub index: u16,
    /// The party process's start epoch: random at each start, never stored. A change tells
    /// a coordinator that the presignatures and nonces it indexed at this party are gone
    /// (ADR 0009). 0 from a node that does not report one.
    #[serde(default)]
    pub epoch: u64,
    /// Auxiliary info for the current party set exists (ECDSA keygen possible).
    pub aux_ready: bool,
    /// Pregenerated Paillier prime sets on hand.
    pub primes_available: u32,
    /// Seconds the party's current prime generation has been running, if any.
    pub generating_primes_for_secs: Option<u64>,
}

/// A connection to one signer party.
#[async_trait]
pub trait PartyLink: Send + Sync + std::fmt::Debug {
    /// The party's index in the pool (0-based, fixed).
    fn index(&self) -> u16;
    async fn open(&self, start: SignedStart) -> Result<PartySession, SignerError>;
    async fn status(&self) -> Result<PartyStatus, SignerError>;
}

/// A party running in this process. Messages still cross a channel boundary as bytes, exactly
/// as they will over the network.
#[derive(Debug, Clone)]
pub struct LocalPartyLink {
    node: Arc<PartyNode>,
}

impl LocalPartyLink {
    pub fn new(node: Arc<PartyNode>) -> Self {
        Self { node }
    }
}

#[async_trait]
impl PartyLink for LocalPartyLink {
    fn index(&self) -> u16 {
        self.node.index()
    }

    async fn open(&self, start: SignedStart) -> Result<PartySession, SignerError> {
        let (to_party, party_inbox) = mpsc::channel(256);
        let (party_outbox, from_party) = mpsc::channel(256);
        let node = self.node.clone();
        let runtime = tokio::runtime::Handle::current();
        // Log lines of the session carry the caller's span (and so its request id).
        let span = tracing::Span::current();
        // Protocol steps are CPU-heavy (Paillier arithmetic): run the session on a blocking
        // thread so it never stalls the async workers serving HTTP.
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            runtime.block_on(node.run_session(start, party_inbox, party_outbox));
        });
        Ok(PartySession {
            to_party,
            from_party,
        })
    }

    async fn status(&self) -> Result<PartyStatus, SignerError> {
        Ok(self.node.status().await)
    }
}
