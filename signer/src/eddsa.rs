//! FROST (RFC 9591) Ed25519, party side: three-part DKG over the session relay, and the two
//! signing rounds (commitments to the coordinator, then a signature share).

use crate::delivery::check_envelope;
use crate::ecdsa::{SessionFailure, SessionIo};
use crate::onetime::{Material, OneTimeMaterial};
use crate::transport::{PartyEvent, Route, WireMessage};
use crate::vault::{Vault, kind};
use frost_ed25519 as frost;
use frost_ed25519::Identifier;
use frost_ed25519::keys::dkg::{round1, round2};
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use waas_core::secret::SecretBytes;

fn fail(reason: impl Into<String>) -> SessionFailure {
    SessionFailure::new(reason)
}

fn blame(culprit: u16, reason: impl Into<String>) -> SessionFailure {
    SessionFailure::blaming(reason, vec![culprit])
}

/// FROST identifiers are 1-based; session seats are 0-based.
pub fn identifier(seat: u16) -> Result<Identifier, SessionFailure> {
    seat.checked_add(1)
        .and_then(|id| Identifier::try_from(id).ok())
        .ok_or_else(|| fail(format!("invalid seat {seat}")))
}

#[derive(Serialize, Deserialize)]
enum DkgMessage {
    Round1(round1::Package),
    Round2(round2::Package),
}

async fn send(io: &SessionIo, route: Route, payload: Vec<u8>) -> Result<(), SessionFailure> {
    io.outbox
        .send(PartyEvent::Message(WireMessage {
            from: Some(io.me),
            route,
            payload,
        }))
        .await
        .map_err(|_| fail("session closed"))
}

/// Distributed key generation; stores the key package and outputs the public key package.
pub async fn run_keygen(
    vault: &Vault,
    mut io: SessionIo,
    tenant: &str,
    key_id: &str,
    threshold: u16,
    protection: &str,
) -> Result<Vec<u8>, SessionFailure> {
    let me = identifier(io.me)?;
    let (round1_secret, round1_package) = frost::keys::dkg::part1(me, io.size, threshold, OsRng)
        .map_err(|e| fail(format!("dkg part 1: {e}")))?;
    let payload =
        serde_json::to_vec(&DkgMessage::Round1(round1_package)).map_err(|e| fail(e.to_string()))?;
    send(&io, Route::Broadcast, payload).await?;

    let others = usize::from(io.size.saturating_sub(1));
    let mut round1_packages = BTreeMap::new();
    let mut round2_packages = BTreeMap::new();
    let mut round2_secret = None;
    while round1_packages.len() < others || round2_packages.len() < others {
        let message = io
            .inbox
            .recv()
            .await
            .ok_or_else(|| fail("session closed"))?;
        let (sender, _) = check_envelope(io.me, io.size, &message).map_err(|e| match e {
            crate::delivery::DeliveryError::Rejected { culprit, reason } => blame(culprit, reason),
            other => fail(other.to_string()),
        })?;
        let decoded: DkgMessage = serde_json::from_slice(&message.payload)
            .map_err(|e| blame(sender, format!("undecodable DKG message: {e}")))?;
        let from = identifier(sender)?;
        match (decoded, message.route) {
            (DkgMessage::Round1(package), Route::Broadcast) => {
                if round1_packages.insert(from, package).is_some() {
                    return Err(blame(sender, "sent two round-1 packages"));
                }
            }
            (DkgMessage::Round2(package), Route::Party(_)) => {
                if round2_packages.insert(from, package).is_some() {
                    return Err(blame(sender, "sent two round-2 packages"));
                }
            }
            _ => return Err(blame(sender, "DKG message on the wrong route")),
        }
        if round2_secret.is_none() && round1_packages.len() == others {
            let (secret, packages) =
                frost::keys::dkg::part2(round1_secret.clone(), &round1_packages)
                    .map_err(|e| fail(format!("dkg part 2: {e}")))?;
            for (to, package) in packages {
                let seat = identifier_to_seat(to, io.size)?;
                let payload = serde_json::to_vec(&DkgMessage::Round2(package))
                    .map_err(|e| fail(e.to_string()))?;
                send(&io, Route::Party(seat), payload).await?;
            }
            round2_secret = Some(secret);
        }
    }
    let secret = round2_secret.ok_or_else(|| fail("round 2 never started"))?;
    let (key_package, public_package) =
        frost::keys::dkg::part3(&secret, &round1_packages, &round2_packages).map_err(
            |e| match e {
                frost::Error::InvalidProofOfKnowledge { culprit }
                | frost::Error::InvalidSecretShare {
                    culprit: Some(culprit),
                } => match identifier_to_seat(culprit, io.size) {
                    Ok(seat) => blame(seat, format!("dkg part 3: {e}")),
                    Err(other) => other,
                },
                other => fail(format!("dkg part 3: {other}")),
            },
        )?;
    let key_bytes = key_package
        .serialize()
        .map_err(|e| fail(format!("serializing key package: {e}")))?;
    vault
        .put_protected(
            kind::EDDSA_SHARE,
            tenant,
            key_id,
            &SecretBytes::new(key_bytes),
            protection,
        )
        .await?;
    public_package
        .serialize()
        .map_err(|e| fail(format!("serializing public package: {e}")))
}

/// Maps a FROST identifier back to a session seat.
pub fn identifier_to_seat(id: Identifier, size: u16) -> Result<u16, SessionFailure> {
    (0..size)
        .find(|seat| identifier(*seat).is_ok_and(|candidate| candidate == id))
        .ok_or_else(|| fail("identifier outside the session"))
}

/// Signing: commit, receive the coordinator's signing package, check it signs exactly the
/// authorized message with our commitment, and output our signature share.
pub async fn run_sign(
    vault: &Vault,
    mut io: SessionIo,
    tenant: &str,
    key_id: &str,
    message: &[u8],
) -> Result<Vec<u8>, SessionFailure> {
    let key_package = load_key_package(vault, tenant, key_id).await?;
    let (nonces, commitments) = frost::round1::commit(key_package.signing_share(), &mut OsRng);
    let payload = commitments.serialize().map_err(|e| fail(e.to_string()))?;
    send(&io, Route::Coordinator, payload).await?;

    let package_message = io
        .inbox
        .recv()
        .await
        .ok_or_else(|| fail("session closed"))?;
    if package_message.from.is_some() {
        return Err(fail("expected the signing package from the coordinator"));
    }
    let package = frost::SigningPackage::deserialize(&package_message.payload)
        .map_err(|e| fail(format!("undecodable signing package: {e}")))?;
    if package.message().as_slice() != message {
        return Err(fail(
            "signing package names a different message than the session",
        ));
    }
    if package.signing_commitments().get(key_package.identifier()) != Some(&commitments) {
        return Err(fail(
            "signing package does not carry this party's commitment",
        ));
    }
    let share = frost::round2::sign(&package, &nonces, &key_package)
        .map_err(|e| fail(format!("round 2: {e}")))?;
    Ok(share.serialize())
}

/// How long a precommitted nonce may wait for its signature (parties refuse and drop older
/// ones; coordinators stop offering them well before).
pub const NONCE_TTL_SECS: u64 = 3600;

/// One precommitted FROST round-1 nonce pair, as a party announces it: an id (creation time
/// and random part) and the public commitments. The nonces stay in the party's memory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Precommitment {
    pub nonce_id: String,
    pub commitments: Vec<u8>,
}

fn nonce_record_id(key_id: &str, nonce_id: &str) -> String {
    format!("{key_id}/{nonce_id}")
}

/// The creation time (unix seconds) encoded at the front of a nonce id.
pub fn nonce_created_at(nonce_id: &str) -> Option<u64> {
    nonce_id.split('-').next()?.parse().ok()
}

async fn load_key_package(
    vault: &Vault,
    tenant: &str,
    key_id: &str,
) -> Result<frost::keys::KeyPackage, SessionFailure> {
    let bytes = vault
        .get(kind::EDDSA_SHARE, tenant, key_id)
        .await?
        .ok_or_else(|| SessionFailure::refused(format!("no share for key {key_id}")))?;
    frost::keys::KeyPackage::deserialize(bytes.expose())
        .map_err(|e| fail(format!("stored key package: {e}")))
}

/// Pre-generates `count` round-1 nonce pairs for a key, kept in this process's memory only
/// (`OneTimeMaterial`, ADR 0009); outputs their ids and commitments. Safe because each pair
/// is used for exactly one signature (taken out before use, never stored, so no restore
/// brings one back) and FROST binds every signer's commitments into each signature (RFC 9591
/// allows round 1 to be preprocessed).
pub async fn run_precommit(
    vault: &Vault,
    one_time: &OneTimeMaterial,
    tenant: &str,
    key_id: &str,
    count: u16,
    now: u64,
) -> Result<Vec<u8>, SessionFailure> {
    let key_package = load_key_package(vault, tenant, key_id).await?;
    let mut announced = Vec::new();
    for _ in 0..count.min(64) {
        let (nonces, commitments) = frost::round1::commit(key_package.signing_share(), &mut OsRng);
        let mut random = [0u8; 12];
        rand::RngCore::fill_bytes(&mut OsRng, &mut random);
        let nonce_id = format!("{now}-{}", hex::encode(random));
        let secret = SecretBytes::new(
            nonces
                .serialize()
                .map_err(|e| fail(format!("serializing nonces: {e}")))?,
        );
        one_time.put(
            Material::FrostNonces,
            tenant,
            &nonce_record_id(key_id, &nonce_id),
            secret,
        )?;
        announced.push(Precommitment {
            nonce_id,
            commitments: commitments.serialize().map_err(|e| fail(e.to_string()))?,
        });
    }
    serde_json::to_vec(&announced).map_err(|e| fail(e.to_string()))
}

/// What a one-round FROST signing session asks of one party.
#[derive(Clone, Copy, Debug)]
pub struct PrecommittedSigning<'a> {
    pub tenant: &'a str,
    pub key_id: &'a str,
    pub message: &'a [u8],
    /// The signing package the coordinator built from the precommitted commitments.
    pub package: &'a [u8],
    /// This party's nonce.
    pub nonce_id: &'a str,
}

/// One-round FROST signing with a precommitted nonce: the nonce is taken out of memory
/// first, then the party checks the package signs exactly the authorized message with this
/// party's own commitment, and issues its signature share. A nonce made before this party
/// (re)started does not exist here at all.
pub async fn run_sign_precommitted(
    vault: &Vault,
    one_time: &OneTimeMaterial,
    signing: PrecommittedSigning<'_>,
    now: u64,
) -> Result<Vec<u8>, SessionFailure> {
    let PrecommittedSigning {
        tenant,
        key_id,
        message,
        package,
        nonce_id,
    } = signing;
    if nonce_created_at(nonce_id).is_none_or(|created| created + NONCE_TTL_SECS < now) {
        return Err(SessionFailure::refused(format!(
            "nonce {nonce_id} is expired or malformed"
        )));
    }
    let key_package = load_key_package(vault, tenant, key_id).await?;
    let bytes = one_time
        .take(
            Material::FrostNonces,
            tenant,
            &nonce_record_id(key_id, nonce_id),
        )
        .ok_or_else(|| {
            SessionFailure::refused(format!(
                "nonce {nonce_id} unknown or already used (nonces do not outlive the party \
                 process that made them)"
            ))
        })?;
    let nonces = frost::round1::SigningNonces::deserialize(bytes.expose())
        .map_err(|e| fail(format!("held nonces: {e}")))?;
    let package = frost::SigningPackage::deserialize(package)
        .map_err(|e| fail(format!("undecodable signing package: {e}")))?;
    if package.message().as_slice() != message {
        return Err(fail(
            "signing package names a different message than the session",
        ));
    }
    if package.signing_commitments().get(key_package.identifier()) != Some(nonces.commitments()) {
        return Err(fail(
            "signing package does not carry this party's commitment",
        ));
    }
    let share = frost::round2::sign(&package, &nonces, &key_package)
        .map_err(|e| fail(format!("round 2: {e}")))?;
    Ok(share.serialize())
}
