//! TLS 1.3 for the node transport, authenticated by the pinned Ed25519 identity keys as raw
//! public keys (RFC 7250): no certificates, no certificate authority, no names. The node
//! presents its identity key and accepts only a client that proves one of its pinned
//! control-plane keys; the coordinator accepts only the node key it pinned for that pool
//! index. Both checks verify the peer's handshake signature (`CertificateVerify`) with the
//! pinned key, so a peer must hold the private key, not just name the public one.
//!
//! One crypto provider (rustls' `ring`, already used by sqlx and reqwest in this tree) is
//! passed explicitly, so the process-wide default provider is never consulted. Session
//! resumption is off on both ends: every connection proves its keys afresh.

use crate::identity::{IdentityKey, PublicIdentity};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, Error, ServerConfig,
    SignatureAlgorithm, SignatureScheme,
};
use std::sync::Arc;
use waas_core::ports::SignerError;

/// DER prefix of an Ed25519 `SubjectPublicKeyInfo` (RFC 8410): SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 }, BIT STRING (0 unused bits) }, followed by the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The ALPN protocol both ends speak.
const ALPN_H2: &[u8] = b"h2";

/// The `SubjectPublicKeyInfo` DER of an identity key: what travels as its raw public key.
pub fn spki(key: &PublicIdentity) -> Vec<u8> {
    let mut der = Vec::with_capacity(ED25519_SPKI_PREFIX.len() + 32);
    der.extend_from_slice(&ED25519_SPKI_PREFIX);
    der.extend_from_slice(&key.to_bytes());
    der
}

/// The identity key in a raw public key, if it is exactly an Ed25519 `SubjectPublicKeyInfo`.
pub fn identity_from_spki(der: &[u8]) -> Option<PublicIdentity> {
    let key = der.strip_prefix(ED25519_SPKI_PREFIX.as_slice())?;
    let bytes: [u8; 32] = key.try_into().ok()?;
    PublicIdentity::from_bytes(&bytes).ok()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(error: Error) -> SignerError {
    SignerError::Bug(format!("building the TLS configuration: {error}"))
}

/// A node's server configuration: presents `identity`, requires a client proving one of
/// `authorities` (the pinned control-plane keys).
pub fn server_config(
    identity: Arc<IdentityKey>,
    authorities: Vec<PublicIdentity>,
) -> Result<ServerConfig, SignerError> {
    let provider = provider();
    let verifier = PinnedClients {
        keys: authorities,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(
            rustls::server::AlwaysResolvesServerRawPublicKeys::new(certified(identity)),
        ));
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// A coordinator's client configuration for one node: presents `identity` (the
/// control-plane key), accepts only a server proving `node`. No ALPN protocol is set.
pub fn client_config(
    identity: Arc<IdentityKey>,
    node: PublicIdentity,
) -> Result<ClientConfig, SignerError> {
    let provider = provider();
    let verifier = PinnedServer {
        key: node,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(
            rustls::client::AlwaysResolvesClientRawPublicKeys::new(certified(identity)),
        ));
    // ALPN (`h2`) is set by the HTTP connector that takes this configuration.
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_sni = false;
    Ok(config)
}

fn certified(identity: Arc<IdentityKey>) -> Arc<CertifiedKey> {
    let public = identity.public();
    Arc::new(CertifiedKey::new(
        vec![CertificateDer::from(spki(&public))],
        Arc::new(IdentitySigningKey { key: identity }),
    ))
}

/// An identity key as rustls' signing key (Ed25519 only).
#[derive(Debug)]
struct IdentitySigningKey {
    key: Arc<IdentityKey>,
}

impl SigningKey for IdentitySigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered.contains(&SignatureScheme::ED25519).then(|| {
            Box::new(IdentitySigner {
                key: self.key.clone(),
            }) as Box<dyn Signer>
        })
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(spki(&self.key.public())))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ED25519
    }
}

#[derive(Debug)]
struct IdentitySigner {
    key: Arc<IdentityKey>,
}

impl Signer for IdentitySigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        self.key
            .sign_tls13_handshake(message)
            .ok_or_else(|| Error::General("not a TLS 1.3 handshake signature input".into()))
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

fn refuse_key() -> Error {
    Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
}

/// Checks that `raw_key` is one of `pinned` and that `dss` is its Ed25519 signature over
/// `message`.
fn verify_pinned_signature(
    pinned: &[PublicIdentity],
    message: &[u8],
    raw_key: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, Error> {
    let key = identity_from_spki(raw_key.as_ref()).ok_or_else(refuse_key)?;
    if !pinned.contains(&key) || dss.scheme != SignatureScheme::ED25519 {
        return Err(refuse_key());
    }
    rustls::crypto::verify_tls13_signature_with_raw_key(
        message,
        &SubjectPublicKeyInfoDer::from(raw_key.as_ref()),
        dss,
        algorithms,
    )
}

fn tls12_refused() -> Error {
    Error::General("TLS 1.2 is not used between coordinators and nodes".into())
}

/// The node's check of a connecting coordinator.
#[derive(Debug)]
struct PinnedClients {
    keys: Vec<PublicIdentity>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        match identity_from_spki(end_entity.as_ref()) {
            Some(key) if intermediates.is_empty() && self.keys.contains(&key) => {
                Ok(ClientCertVerified::assertion())
            }
            _ => Err(refuse_key()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_pinned_signature(&self.keys, message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

/// The coordinator's check of one node.
#[derive(Debug)]
struct PinnedServer {
    key: PublicIdentity,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        // The pinned key is the node's whole identity: its address or name proves nothing.
        match identity_from_spki(end_entity.as_ref()) {
            Some(key) if intermediates.is_empty() && key == self.key => {
                Ok(ServerCertVerified::assertion())
            }
            _ => Err(refuse_key()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_pinned_signature(
            std::slice::from_ref(&self.key),
            message,
            cert,
            dss,
            &self.algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}
