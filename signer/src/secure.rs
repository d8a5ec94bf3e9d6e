//! Trust between the control plane, the coordinator and the parties:
//!
//! - **Authorizations**: a [`SessionStart`] signed by a control-plane identity key. A party
//!   checks the signature against its pinned control-plane keys, the expiry, that it is a
//!   participant, and records the session id durably as used, so a replayed start is refused
//!   (even after a restart).
//! - **Signed events**: every event a party reports carries its identity signature over the
//!   session id, its pool index and a sequence number.
//! - **End-to-end channels**: parties that exchange protocol messages first exchange signed
//!   ephemeral X25519 keys (relayed by the coordinator), derive one AES-256-GCM key per
//!   direction and pair, and seal every message with a counter nonce. The coordinator relays
//!   ciphertext it cannot read or alter; a replayed, reordered or altered message fails to
//!   open and its sender is named.

use crate::identity::{IdentityKey, PublicIdentity};
use crate::transport::{EventBody, PartyEvent, Route, SessionStart, SignedEvent, SignedStart};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use waas_core::ports::SignerError;
use x25519_dalek::{PublicKey, StaticSecret};

const START_CONTEXT: &[u8] = b"waas/session-start/v1";
const EVENT_CONTEXT: &[u8] = b"waas/party-event/v1";
const HELLO_CONTEXT: &[u8] = b"waas/e2e-hello/v1";
const STATUS_CONTEXT: &[u8] = b"waas/party-status/v1";

/// Longest lifetime a party accepts for an authorization (bounds the replay record).
pub const MAX_AUTHORIZATION_SECS: u64 = 600;

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, SignerError> {
    postcard::to_allocvec(value).map_err(|e| SignerError::Bug(format!("encoding: {e}")))
}

pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("undecodable: {e}"))
}

/// Signs a session start with the control plane's key.
pub fn sign_start(
    start: &SessionStart,
    authority: &IdentityKey,
) -> Result<SignedStart, SignerError> {
    let body = encode(start)?;
    let signature = authority.sign(START_CONTEXT, &body);
    Ok(SignedStart { body, signature })
}

/// Checks a start's signature against the pinned control-plane keys and its expiry.
/// (Participation and one-time use are checked by the party.)
pub fn verify_start(
    signed: &SignedStart,
    authorities: &[PublicIdentity],
    now: u64,
) -> Result<SessionStart, String> {
    if !authorities
        .iter()
        .any(|key| key.verify(START_CONTEXT, &signed.body, &signed.signature))
    {
        return Err("authorization is not signed by a trusted control plane".into());
    }
    let start: SessionStart = decode(&signed.body)?;
    if start.expires_at <= now {
        return Err("authorization has expired".into());
    }
    if start.expires_at > now + MAX_AUTHORIZATION_SECS {
        return Err("authorization lives longer than a party accepts".into());
    }
    let mut seen = start.participants.clone();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != start.participants.len() {
        return Err("authorization names a participant twice".into());
    }
    Ok(start)
}

/// Signs the events a party reports in one session, numbering them.
#[derive(Debug)]
pub struct EventSigner {
    key: std::sync::Arc<IdentityKey>,
    session_id: [u8; 32],
    pool_index: u16,
    seq: u64,
}

impl EventSigner {
    pub fn new(key: std::sync::Arc<IdentityKey>, session_id: [u8; 32], pool_index: u16) -> Self {
        Self {
            key,
            session_id,
            pool_index,
            seq: 0,
        }
    }

    pub fn sign(&mut self, event: PartyEvent) -> Result<SignedEvent, SignerError> {
        let body = encode(&EventBody {
            session_id: self.session_id,
            pool_index: self.pool_index,
            seq: self.seq,
            event,
        })?;
        self.seq += 1;
        let signature = self.key.sign(EVENT_CONTEXT, &body);
        Ok(SignedEvent { body, signature })
    }
}

/// Checks the events of one party in one session, in order.
#[derive(Debug)]
pub struct EventVerifier {
    key: PublicIdentity,
    session_id: [u8; 32],
    pool_index: u16,
    next_seq: u64,
}

impl EventVerifier {
    pub fn new(key: PublicIdentity, session_id: [u8; 32], pool_index: u16) -> Self {
        Self {
            key,
            session_id,
            pool_index,
            next_seq: 0,
        }
    }

    pub fn verify(&mut self, signed: &SignedEvent) -> Result<PartyEvent, String> {
        if !self
            .key
            .verify(EVENT_CONTEXT, &signed.body, &signed.signature)
        {
            return Err("event signature does not verify under the party's pinned key".into());
        }
        let body: EventBody = decode(&signed.body)?;
        if body.session_id != self.session_id || body.pool_index != self.pool_index {
            return Err("event belongs to another session or party".into());
        }
        if body.seq != self.next_seq {
            return Err(format!(
                "event {} arrived where {} was expected (replayed or reordered)",
                body.seq, self.next_seq
            ));
        }
        self.next_seq += 1;
        Ok(body.event)
    }
}

/// A party's signed status, fresh within a minute.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatusBody {
    pub pool_index: u16,
    pub issued_at: u64,
    pub status: crate::transport::PartyStatus,
}

pub fn sign_status(key: &IdentityKey, body: &StatusBody) -> Result<Vec<u8>, SignerError> {
    let body = encode(body)?;
    let signature = key.sign(STATUS_CONTEXT, &body);
    encode(&SignedBlob { body, signature })
}

pub fn verify_status(
    key: &PublicIdentity,
    pool_index: u16,
    bytes: &[u8],
    now: u64,
) -> Result<crate::transport::PartyStatus, String> {
    let blob: SignedBlob = decode(bytes)?;
    if !key.verify(STATUS_CONTEXT, &blob.body, &blob.signature) {
        return Err("status signature does not verify under the party's pinned key".into());
    }
    let body: StatusBody = decode(&blob.body)?;
    if body.pool_index != pool_index || body.issued_at + 60 < now || body.issued_at > now + 60 {
        return Err("status is stale or from another party".into());
    }
    Ok(body.status)
}

#[derive(Serialize, Deserialize)]
struct SignedBlob {
    body: Vec<u8>,
    signature: Vec<u8>,
}

/// The first message of a party in a session with party-to-party messages: its ephemeral
/// X25519 key, signed by its identity key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hello {
    pub ephemeral: [u8; 32],
    pub signature: Vec<u8>,
}

fn hello_message(
    session_id: &[u8; 32],
    seat: u16,
    pool_index: u16,
    ephemeral: &[u8; 32],
) -> Vec<u8> {
    let mut message = Vec::with_capacity(68);
    message.extend_from_slice(session_id);
    message.extend_from_slice(&seat.to_be_bytes());
    message.extend_from_slice(&pool_index.to_be_bytes());
    message.extend_from_slice(ephemeral);
    message
}

/// A sealed party-to-party message (the payload the coordinator relays).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sealed {
    pub counter: u64,
    /// The sender meant it for every participant (authenticated, so a relay cannot turn a
    /// private message into a broadcast or back).
    pub broadcast: bool,
    pub ciphertext: Vec<u8>,
}

struct Direction {
    cipher: Aes256Gcm,
    counter: u64,
}

impl std::fmt::Debug for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Direction(counter {})", self.counter)
    }
}

/// One party's end-to-end channels in one session.
#[derive(Debug)]
pub struct Channels {
    session_id: [u8; 32],
    me: u16,
    ephemeral: EphemeralKey,
    send: HashMap<u16, Direction>,
    receive: HashMap<u16, Direction>,
}

struct EphemeralKey(StaticSecret);

impl std::fmt::Debug for EphemeralKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EphemeralKey(<redacted>)")
    }
}

fn aad(session_id: &[u8; 32], from: u16, to: u16, broadcast: bool, counter: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(45);
    aad.extend_from_slice(session_id);
    aad.extend_from_slice(&from.to_be_bytes());
    aad.extend_from_slice(&to.to_be_bytes());
    aad.push(u8::from(broadcast));
    aad.extend_from_slice(&counter.to_be_bytes());
    aad
}

fn nonce(counter: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    if let Some(head) = nonce.get_mut(..8) {
        head.copy_from_slice(&counter.to_be_bytes());
    }
    nonce
}

impl Channels {
    /// Starts the handshake for seat `me`; returns the channels and this party's hello.
    pub fn start(
        identity: &IdentityKey,
        session_id: [u8; 32],
        me: u16,
        pool_index: u16,
    ) -> (Self, Hello) {
        let secret = StaticSecret::random_from_rng(rand::rngs::OsRng);
        let ephemeral = PublicKey::from(&secret).to_bytes();
        let signature = identity.sign(
            HELLO_CONTEXT,
            &hello_message(&session_id, me, pool_index, &ephemeral),
        );
        (
            Self {
                session_id,
                me,
                ephemeral: EphemeralKey(secret),
                send: HashMap::new(),
                receive: HashMap::new(),
            },
            Hello {
                ephemeral,
                signature,
            },
        )
    }

    fn key(&self, shared: &[u8; 32], from: u16, to: u16) -> Result<Aes256Gcm, String> {
        let hkdf = Hkdf::<Sha256>::new(Some(&self.session_id), shared);
        let mut info = b"waas/e2e-key/v1".to_vec();
        info.extend_from_slice(&from.to_be_bytes());
        info.extend_from_slice(&to.to_be_bytes());
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        hkdf.expand(&info, key.as_mut())
            .map_err(|_| "key derivation".to_string())?;
        Aes256Gcm::new_from_slice(key.as_ref()).map_err(|_| "key derivation".to_string())
    }

    /// Accepts the hello of the party at `seat` (pool index `pool_index`, pinned key `key`).
    pub fn accept(
        &mut self,
        seat: u16,
        pool_index: u16,
        key: &PublicIdentity,
        hello: &Hello,
    ) -> Result<(), String> {
        if seat == self.me || self.receive.contains_key(&seat) {
            return Err("a second handshake in the same session".into());
        }
        if !key.verify(
            HELLO_CONTEXT,
            &hello_message(&self.session_id, seat, pool_index, &hello.ephemeral),
            &hello.signature,
        ) {
            return Err("handshake not signed by the party's pinned identity key".into());
        }
        let shared = self
            .ephemeral
            .0
            .diffie_hellman(&PublicKey::from(hello.ephemeral));
        if !shared.was_contributory() {
            return Err("handshake with a low-order key".into());
        }
        let shared = zeroize::Zeroizing::new(shared.to_bytes());
        let send = self.key(&shared, self.me, seat)?;
        let receive = self.key(&shared, seat, self.me)?;
        self.send.insert(
            seat,
            Direction {
                cipher: send,
                counter: 0,
            },
        );
        self.receive.insert(
            seat,
            Direction {
                cipher: receive,
                counter: 0,
            },
        );
        Ok(())
    }

    /// Whether every other seat of a `size`-party session has shaken hands.
    pub fn complete(&self, size: u16) -> bool {
        self.receive.len() + 1 == usize::from(size)
    }

    /// Seals a protocol message for `to`.
    pub fn seal(
        &mut self,
        to: u16,
        broadcast: bool,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SignerError> {
        let session_id = self.session_id;
        let me = self.me;
        let direction = self
            .send
            .get_mut(&to)
            .ok_or_else(|| SignerError::Bug(format!("no channel to seat {to}")))?;
        let counter = direction.counter;
        direction.counter += 1;
        let ciphertext = direction
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce(counter)),
                Payload {
                    msg: plaintext,
                    aad: &aad(&session_id, me, to, broadcast, counter),
                },
            )
            .map_err(|_| SignerError::Bug("sealing a party message".into()))?;
        encode(&Sealed {
            counter,
            broadcast,
            ciphertext,
        })
    }

    /// Opens a message relayed from `from`; returns its plaintext and whether the sender
    /// broadcast it.
    pub fn open(&mut self, from: u16, payload: &[u8]) -> Result<(Vec<u8>, Route), String> {
        let session_id = self.session_id;
        let me = self.me;
        let sealed: Sealed = decode(payload)?;
        let direction = self
            .receive
            .get_mut(&from)
            .ok_or_else(|| "a message before the sender's handshake".to_string())?;
        if sealed.counter != direction.counter {
            return Err(format!(
                "message {} arrived where {} was expected (replayed, dropped or reordered)",
                sealed.counter, direction.counter
            ));
        }
        let plaintext = direction
            .cipher
            .decrypt(
                Nonce::from_slice(&nonce(sealed.counter)),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad(&session_id, from, me, sealed.broadcast, sealed.counter),
                },
            )
            .map_err(|_| {
                "message does not authenticate (altered or not for this party)".to_string()
            })?;
        direction.counter += 1;
        let route = if sealed.broadcast {
            Route::Broadcast
        } else {
            Route::Party(me)
        };
        Ok((plaintext, route))
    }
}
