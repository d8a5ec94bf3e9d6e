//! CGGMP threshold ECDSA on secp256k1, party side: Paillier primes, auxiliary info, DKG,
//! presignatures and signing. Uses `cggmp24` with its pure-Rust big-integer backend
//! (see docs/adr/0002-threshold-ecdsa-library.md).

use crate::delivery::{Blame, connect};
use crate::onetime::{Material, OneTimeMaterial};
use crate::transport::{FailureKind, PartyEvent, Preimage, WireMessage};
use crate::vault::{POOL_TENANT, Vault, kind};
use cggmp24::generic_ec::{NonZero, Point, Scalar};
use cggmp24::key_share::{AuxInfo, IncompleteKeyShare, KeyShare};
use cggmp24::signing::{
    AnyDataToSign, PartialSignature, PresignatureCommitment, PresignaturePublicData,
};
use cggmp24::supported_curves::Secp256k1;
use cggmp24::{DataToSign, ExecutionId, PregeneratedPrimes, PrehashedDataToSign, Presignature};
use rand::rngs::OsRng;
use round_based::MpcParty;
use serde::{Deserialize, Serialize};
use sha3::Keccak256;
use tokio::sync::mpsc;
use waas_core::ports::{CustodyError, SignerError};
use waas_core::secret::SecretBytes;

type E = Secp256k1;

/// The record id of the party set's auxiliary info.
pub const AUX_ID: &str = "current";

/// A party's failure inside a session, reported to the coordinator.
#[derive(Debug)]
pub struct SessionFailure {
    pub reason: String,
    pub culprits: Vec<u16>,
    pub kind: FailureKind,
}

impl SessionFailure {
    /// A protocol failure without a known culprit.
    pub fn new(reason: impl Into<String>) -> Self {
        SessionFailure {
            reason: reason.into(),
            culprits: Vec::new(),
            kind: FailureKind::Protocol,
        }
    }

    /// The party refuses the request itself (not authorized, unknown key, spent
    /// presignature): nobody misbehaved and retrying elsewhere will not help.
    pub fn refused(reason: impl Into<String>) -> Self {
        SessionFailure {
            kind: FailureKind::Refused,
            ..Self::new(reason)
        }
    }

    /// A protocol failure blaming `culprits` (session seats).
    pub fn blaming(reason: impl Into<String>, culprits: Vec<u16>) -> Self {
        SessionFailure {
            culprits,
            ..Self::new(reason)
        }
    }
}

impl SessionFailure {
    /// The event reporting this failure to the coordinator.
    pub fn into_event(self) -> PartyEvent {
        PartyEvent::Failed {
            reason: self.reason,
            culprits: self.culprits,
            kind: self.kind,
        }
    }
}

impl From<SignerError> for SessionFailure {
    fn from(error: SignerError) -> Self {
        let kind = match &error {
            SignerError::Custody(CustodyError::Unavailable(_)) => FailureKind::CustodyUnavailable,
            _ => FailureKind::Protocol,
        };
        SessionFailure {
            kind,
            ..Self::new(error.to_string())
        }
    }
}

fn fail(reason: impl Into<String>) -> SessionFailure {
    SessionFailure::new(reason)
}

fn protocol_failure(what: &str, error: &dyn std::error::Error, blame: &Blame) -> SessionFailure {
    SessionFailure::blaming(format!("{what}: {}", error_chain(error)), blame.culprits())
}

/// An error and its sources, `a: b: c` (cggmp24's top-level errors only say "signing
/// protocol failed"; the reason is in the sources). The messages name reasons, not values.
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

/// The channels of one session, seen from the party.
#[derive(Debug)]
pub struct SessionIo {
    /// Unique per session; the protocol execution id.
    pub session_id: [u8; 32],
    pub me: u16,
    pub size: u16,
    pub inbox: mpsc::Receiver<WireMessage>,
    pub outbox: mpsc::Sender<PartyEvent>,
}

fn encode<T: Serialize>(value: &T) -> Result<SecretBytes, SessionFailure> {
    serde_json::to_vec(value)
        .map(SecretBytes::new)
        .map_err(|e| fail(format!("encoding: {e}")))
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &SecretBytes) -> Result<T, SessionFailure> {
    serde_json::from_slice(bytes.expose()).map_err(|e| fail(format!("decoding stored record: {e}")))
}

/// Generates one set of primes (tens of seconds to minutes) and stores it sealed.
pub async fn generate_and_store_primes(vault: &Vault) -> Result<(), SignerError> {
    let primes = tokio::task::spawn_blocking(|| PregeneratedPrimes::generate(&mut OsRng))
        .await
        .map_err(|e| SignerError::Bug(format!("prime generation task: {e}")))?;
    store_primes(vault, &primes).await
}

pub async fn store_primes(vault: &Vault, primes: &PregeneratedPrimes) -> Result<(), SignerError> {
    let bytes = serde_json::to_vec(primes).map_err(|e| SignerError::Bug(e.to_string()))?;
    let id = uuid_like();
    vault
        .put(kind::PRIMES, POOL_TENANT, &id, &SecretBytes::new(bytes))
        .await
}

fn uuid_like() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Runs auxiliary-info generation with one stored set of primes, then stores the result.
pub async fn run_aux_info(vault: &Vault, io: SessionIo) -> Result<Vec<u8>, SessionFailure> {
    if vault
        .get(kind::ECDSA_AUX, POOL_TENANT, AUX_ID)
        .await?
        .is_some()
    {
        return Err(fail("auxiliary info already exists for this party set"));
    }
    let primes_id = vault
        .list(kind::PRIMES)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| fail("no pregenerated primes available"))?;
    let primes_bytes = vault
        .get(kind::PRIMES, POOL_TENANT, &primes_id)
        .await?
        .ok_or_else(|| fail("primes vanished"))?;
    let primes: PregeneratedPrimes = decode(&primes_bytes)?;
    let blame = Blame::default();
    let (me, size) = (io.me, io.size);
    let party = MpcParty::connected(connect(me, size, io.inbox, io.outbox, blame.clone()));
    let eid = ExecutionId::new(&io.session_id);
    let aux: AuxInfo = cggmp24::aux_info_gen(eid, me, size, primes)
        .start(&mut OsRng, party)
        .await
        .map_err(|e| protocol_failure("aux info generation", &e, &blame))?;
    vault
        .put(kind::ECDSA_AUX, POOL_TENANT, AUX_ID, &encode(&aux)?)
        .await?;
    // Primes are spent: a Paillier key must not be shared between two aux-info runs.
    vault.delete(kind::PRIMES, &primes_id).await?;
    Ok(b"aux-info-ready".to_vec())
}

async fn load_aux(vault: &Vault) -> Result<AuxInfo, SessionFailure> {
    let bytes = vault
        .get(kind::ECDSA_AUX, POOL_TENANT, AUX_ID)
        .await?
        .ok_or_else(|| fail("auxiliary info missing"))?;
    decode(&bytes)
}

async fn load_share(
    vault: &Vault,
    tenant: &str,
    key_id: &str,
) -> Result<KeyShare<E>, SessionFailure> {
    let bytes = vault
        .get(kind::ECDSA_SHARE, tenant, key_id)
        .await?
        .ok_or_else(|| SessionFailure::refused(format!("no share for key {key_id}")))?;
    let incomplete: IncompleteKeyShare<E> = decode(&bytes)?;
    let aux = load_aux(vault).await?;
    KeyShare::from_parts((incomplete, aux))
        .map_err(|e| fail(format!("share does not match aux info: {e}")))
}

/// Distributed key generation; stores this party's share and outputs the compressed
/// public key.
pub async fn run_keygen(
    vault: &Vault,
    io: SessionIo,
    tenant: &str,
    key_id: &str,
    threshold: u16,
    protection: &str,
) -> Result<Vec<u8>, SessionFailure> {
    let aux = load_aux(vault).await?;
    let blame = Blame::default();
    let (me, size) = (io.me, io.size);
    let party = MpcParty::connected(connect(me, size, io.inbox, io.outbox, blame.clone()));
    let eid = ExecutionId::new(&io.session_id);
    let incomplete = cggmp24::keygen::<E>(eid, me, size)
        .set_threshold(threshold)
        .start(&mut OsRng, party)
        .await
        .map_err(|e| protocol_failure("key generation", &e, &blame))?;
    let public_key = incomplete.shared_public_key.to_bytes(true).to_vec();
    // Prove the share completes with our aux info before keeping it.
    KeyShare::from_parts((incomplete.clone(), aux))
        .map_err(|e| fail(format!("share does not match aux info: {e}")))?;
    vault
        .put_protected(
            kind::ECDSA_SHARE,
            tenant,
            key_id,
            &encode(&incomplete)?,
            protection,
        )
        .await?;
    Ok(public_key)
}

/// Checks a signing session's signer set (keygen indices, one per seat) before any protocol
/// runs: this party sits at seat `me`, the set matches the session's participants (every
/// party then derives the same seats), and no index repeats. A wrong set is a set-up error
/// of the coordinator, so the party refuses (nobody misbehaved).
pub fn check_signer_set(
    me: u16,
    my_index: u16,
    signers_at_keygen: &[u16],
    participants: &[u16],
) -> Result<(), SessionFailure> {
    if signers_at_keygen != participants {
        return Err(SessionFailure::refused(
            "the signer set differs from the session's participants",
        ));
    }
    if signers_at_keygen.get(usize::from(me)) != Some(&my_index) {
        return Err(SessionFailure::refused(format!(
            "session seat {me} is not this party (pool index {my_index})"
        )));
    }
    let mut sorted = signers_at_keygen.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != signers_at_keygen.len() {
        return Err(SessionFailure::refused("a signer is named twice"));
    }
    Ok(())
}

/// This party's share, prepared for a session signed by `signers` (keygen indices).
///
/// cggmp24 signs with exactly `min_signers` (= t) parties. For a session of q > t parties
/// the loaded share is relabelled, for this session only, as a share of a q-of-n key: the
/// key's secret-sharing polynomial has degree t − 1, which is also a polynomial of degree at
/// most q − 1, so Lagrange interpolation over the q session members still gives the key
/// and every member's share is needed. The relabelled share passes cggmp24's own key-share
/// validation again (which interpolates the public shares at degree q − 1); it is never
/// stored.
fn session_share(share: KeyShare<E>, signers: &[u16]) -> Result<KeyShare<E>, SessionFailure> {
    let n = share.core.public_shares.len();
    let q = signers.len();
    let t = share
        .core
        .vss_setup
        .as_ref()
        .map_or(n, |vss| usize::from(vss.min_signers));
    if let Some(outside) = signers.iter().find(|&&s| usize::from(s) >= n) {
        return Err(SessionFailure::refused(format!(
            "signer {outside} is not a holder of this key ({n} holders)"
        )));
    }
    if q < t {
        return Err(SessionFailure::refused(format!(
            "{q} signers named where the key needs {t}"
        )));
    }
    if q == t {
        return Ok(share);
    }
    let quorum = u16::try_from(q).map_err(|_| SessionFailure::refused("too many signers"))?;
    let mut dirty = share.into_inner();
    match dirty.core.key_info.vss_setup.as_mut() {
        Some(vss) => vss.min_signers = quorum,
        // An n-of-n key (t = n) cannot get here: q > t = n signers fail the check above.
        None => return Err(SessionFailure::refused("the key is not a threshold key")),
    }
    KeyShare::validate(dirty).map_err(|e| {
        fail(format!(
            "the share does not validate for {q} signers: {}",
            e.error()
        ))
    })
}

/// Interactive signing of a 32-byte digest; outputs `r || s` (low-s). With a preimage the
/// parties sign `keccak256(preimage)` as data they hashed themselves; without one, the raw
/// digest (safe in the interactive protocol, where no presignature is known beforehand).
/// The caller has checked the signer set (`check_signer_set`).
pub async fn run_sign(
    vault: &Vault,
    io: SessionIo,
    tenant: &str,
    key_id: &str,
    digest: [u8; 32],
    preimage: Option<&Preimage>,
    signers_at_keygen: &[u16],
) -> Result<Vec<u8>, SessionFailure> {
    let share = session_share(load_share(vault, tenant, key_id).await?, signers_at_keygen)?;
    let blame = Blame::default();
    let (me, size) = (io.me, io.size);
    let party = MpcParty::connected(connect(me, size, io.inbox, io.outbox, blame.clone()));
    let eid = ExecutionId::new(&io.session_id);
    let known;
    let prehashed;
    let data: &dyn AnyDataToSign<E> = match preimage {
        Some(preimage) => {
            known = DataToSign::<E>::digest::<Keccak256>(&preimage.bytes());
            &known
        }
        None => {
            prehashed =
                PrehashedDataToSign::<E>::from_scalar(Scalar::from_be_bytes_mod_order(digest));
            &prehashed
        }
    };
    let signature = cggmp24::signing(eid, me, signers_at_keygen, &share)
        .sign(&mut OsRng, party, data)
        .await
        .map_err(|e| protocol_failure("signing", &e, &blame))?
        .normalize_s();
    let mut out = vec![0u8; 64];
    signature.write_to_slice(&mut out);
    Ok(out)
}

/// The public commitments of a presignature, in a serializable form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresignaturePublic {
    gamma: NonZero<Point<E>>,
    commitments: Vec<(Point<E>, Point<E>)>,
}

impl PresignaturePublic {
    fn from_data(data: &PresignaturePublicData<E>) -> Self {
        Self {
            gamma: data.Gamma,
            commitments: data
                .commitments
                .iter()
                .map(|c| (c.tilde_Delta, c.tilde_S))
                .collect(),
        }
    }
    fn to_data(&self) -> PresignaturePublicData<E> {
        PresignaturePublicData {
            Gamma: self.gamma,
            commitments: self
                .commitments
                .iter()
                .map(|(delta, s)| PresignatureCommitment {
                    tilde_Delta: *delta,
                    tilde_S: *s,
                })
                .collect(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct HeldPresignature {
    presignature: Presignature<E>,
    /// Returned with the partial signature, so a coordinator needs no state of its own to
    /// combine (it may have restarted since the presignature was made).
    public: PresignaturePublic,
}

/// What a party answers when it signs from a presignature.
#[derive(Serialize, Deserialize)]
struct PresignedPartial {
    partial: PartialSignature<E>,
    public: PresignaturePublic,
}

/// The record id of a presignature: key, presignature id and its signer set, so a party can
/// list what it holds without opening anything.
pub fn presignature_record_id(key_id: &str, presignature_id: &str, signers: &[u16]) -> String {
    let signers: Vec<String> = signers.iter().map(u16::to_string).collect();
    format!("{key_id}/{presignature_id}/{}", signers.join("-"))
}

/// A presignature a party holds, as it lists it (public facts only).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ListedPresignature {
    pub tenant: String,
    pub key_id: String,
    pub presignature_id: String,
    pub signers: Vec<u16>,
}

impl ListedPresignature {
    pub fn record_id(&self) -> String {
        presignature_record_id(&self.key_id, &self.presignature_id, &self.signers)
    }
}

/// Parses a presignature record id; `None` for a malformed (or older-format) id.
pub fn parse_presignature_record_id(tenant: &str, id: &str) -> Option<ListedPresignature> {
    let mut parts = id.split('/');
    let (key_id, presignature_id, signers) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let signers: Option<Vec<u16>> = signers.split('-').map(|s| s.parse().ok()).collect();
    Some(ListedPresignature {
        tenant: tenant.to_string(),
        key_id: key_id.to_string(),
        presignature_id: presignature_id.to_string(),
        signers: signers?,
    })
}

/// Generates a presignature for a signer set; keeps it in this process's memory only
/// (`OneTimeMaterial`, ADR 0009); outputs its public data. The caller has checked the signer
/// set (`check_signer_set`).
pub async fn run_presign(
    vault: &Vault,
    one_time: &OneTimeMaterial,
    io: SessionIo,
    tenant: &str,
    key_id: &str,
    presignature_id: &str,
    signers_at_keygen: &[u16],
) -> Result<Vec<u8>, SessionFailure> {
    let share = session_share(load_share(vault, tenant, key_id).await?, signers_at_keygen)?;
    let blame = Blame::default();
    let (me, size) = (io.me, io.size);
    let party = MpcParty::connected(connect(me, size, io.inbox, io.outbox, blame.clone()));
    let eid = ExecutionId::new(&io.session_id);
    let (presignature, public) = cggmp24::signing(eid, me, signers_at_keygen, &share)
        .generate_presignature(&mut OsRng, party)
        .await
        .map_err(|e| protocol_failure("presignature generation", &e, &blame))?;
    let public = PresignaturePublic::from_data(&public);
    let record = HeldPresignature {
        presignature,
        public: public.clone(),
    };
    one_time.put(
        Material::Presignature,
        tenant,
        &presignature_record_id(key_id, presignature_id, signers_at_keygen),
        encode(&record)?,
    )?;
    serde_json::to_vec(&public).map_err(|e| fail(e.to_string()))
}

/// Issues a partial signature from a presignature this process holds. The presignature is
/// taken out of memory **before** the partial signature is computed, so it can never be used
/// twice; one made before this party (re)started does not exist here at all.
///
/// Only a payload the party hashes itself is signed from a presignature: a raw digest
/// chosen with the presignature's public data in hand allows forgeries (cggmp24's
/// `PrehashedDataToSign` documentation), so a session without a preimage is refused before
/// the presignature is touched.
pub fn run_presigned_sign(
    one_time: &OneTimeMaterial,
    tenant: &str,
    key_id: &str,
    presignature_id: &str,
    signers: &[u16],
    preimage: Option<&Preimage>,
    after_consuming: impl FnOnce(),
) -> Result<Vec<u8>, SessionFailure> {
    let Some(preimage) = preimage else {
        return Err(SessionFailure::refused(
            "a presignature signs only a payload this party hashes itself; a raw digest is \
             signed interactively",
        ));
    };
    let record_id = presignature_record_id(key_id, presignature_id, signers);
    let bytes = one_time
        .take(Material::Presignature, tenant, &record_id)
        .ok_or_else(|| {
            SessionFailure::refused(format!(
                "presignature {presignature_id} unknown or already used (presignatures do not \
                 outlive the party process that made them)"
            ))
        })?;
    after_consuming();
    let stored: HeldPresignature = decode(&bytes)?;
    let data = DataToSign::<E>::digest::<Keccak256>(&preimage.bytes());
    let partial = stored.presignature.issue_partial_signature(data);
    serde_json::to_vec(&PresignedPartial {
        partial,
        public: stored.public,
    })
    .map_err(|e| fail(e.to_string()))
}

/// Coordinator side: combines partial signatures over `keccak256(preimage)` and checks the
/// result against the key.
pub fn combine_partials(
    outputs: &[Vec<u8>],
    participants: &[u16],
    preimage: &Preimage,
    public_key: &[u8],
) -> Result<[u8; 64], SignerError> {
    let mut parsed = Vec::with_capacity(outputs.len());
    let mut public: Option<PresignaturePublic> = None;
    for (seat, bytes) in outputs.iter().enumerate() {
        let culprit = vec![participants.get(seat).copied().unwrap_or(u16::MAX)];
        let output: PresignedPartial =
            serde_json::from_slice(bytes).map_err(|e| SignerError::ProtocolFailed {
                reason: format!("undecodable partial signature: {e}"),
                culprits: culprit.clone(),
            })?;
        match &public {
            Some(first) if *first != output.public => {
                return Err(SignerError::ProtocolFailed {
                    reason: "parties disagree on the presignature's public data".into(),
                    culprits: culprit,
                });
            }
            Some(_) => {}
            None => public = Some(output.public),
        }
        parsed.push(output.partial);
    }
    let public =
        public.ok_or_else(|| SignerError::Bug("no partial signatures to combine".into()))?;
    let data = DataToSign::<E>::digest::<Keccak256>(&preimage.bytes());
    let signature = PartialSignature::combine(&parsed, &public.to_data(), data)
        .ok_or_else(|| SignerError::ProtocolFailed {
            reason: "partial signatures do not combine (a signer sent a wrong share)".into(),
            culprits: Vec::new(),
        })?
        .normalize_s();
    verify(&signature, preimage.digest(), public_key)?;
    let mut out = [0u8; 64];
    signature.write_to_slice(&mut out);
    Ok(out)
}

fn verify(
    signature: &cggmp24::Signature<E>,
    digest: [u8; 32],
    public_key: &[u8],
) -> Result<(), SignerError> {
    let key = Point::<E>::from_bytes(public_key)
        .map_err(|_| SignerError::Bug("stored public key is not a point".into()))?;
    let data = PrehashedDataToSign::<E>::from_scalar(Scalar::from_be_bytes_mod_order(digest));
    signature
        .verify(&key, &data)
        .map_err(|_| SignerError::ProtocolFailed {
            reason: "the combined signature does not verify".into(),
            culprits: Vec::new(),
        })
}

/// Coordinator side: checks a 64-byte `r || s` from interactive signing.
pub fn verify_rs(rs: &[u8], digest: [u8; 32], public_key: &[u8]) -> Result<[u8; 64], SignerError> {
    let signature = cggmp24::Signature::<E>::read_from_slice(rs).ok_or_else(|| {
        SignerError::ProtocolFailed {
            reason: "malformed signature from a party".into(),
            culprits: Vec::new(),
        }
    })?;
    verify(&signature, digest, public_key)?;
    let mut out = [0u8; 64];
    signature.normalize_s().write_to_slice(&mut out);
    Ok(out)
}
