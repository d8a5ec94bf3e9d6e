//! The node transport over real sockets: TLS pinned to the identity keys at both ends, and a
//! node's limits. An oversized first frame, a slow start, a slow TLS handshake, an idle
//! connection and unauthenticated peers (a wrong key, no client key, a pinned key named
//! without its private key, cleartext) are all refused while the pool keeps signing through
//! the same node.

use super::*;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::atomic::AtomicU64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use waas_signer::net::{
    NodeLimits, RemotePartyLink, START_FRAME_MAX, ServeOptions, TransportCounters,
    TransportSecurity, tls,
};
use waas_signer::secure;
use waas_signer::{SessionKind, SessionStart};

/// A node served on a loopback port until the test ends.
struct Served {
    port: u16,
    counters: Arc<TransportCounters>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Served {
    fn count(&self, counter: impl Fn(&TransportCounters) -> &AtomicU64) -> u64 {
        TransportCounters::get(counter(&self.counters))
    }

    /// The counter once it reaches `at_least` (the node counts a refusal just after it
    /// closes the connection, so a client may see the close first), or after 5 s.
    async fn count_reaching(
        &self,
        counter: impl Fn(&TransportCounters) -> &AtomicU64,
        at_least: u64,
    ) -> u64 {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let count = self.count(&counter);
            if count >= at_least || std::time::Instant::now() > deadline {
                return count;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Short limits, so the slow peers are cut off within seconds.
fn short_limits() -> NodeLimits {
    NodeLimits {
        handshake_timeout: Duration::from_secs(1),
        start_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        ..NodeLimits::standard()
    }
}

async fn serve(
    nodes: &[Arc<PartyNode>],
    security: TransportSecurity,
    limits: &NodeLimits,
) -> Vec<Served> {
    let mut served = Vec::new();
    for node in nodes {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let counters = Arc::new(TransportCounters::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let options = ServeOptions {
            security,
            limits: limits.clone(),
            counters: counters.clone(),
        };
        let node = node.clone();
        tokio::spawn(async move {
            waas_signer::net::serve_node(node, listener, options, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        served.push(Served {
            port,
            counters,
            _stop: stop,
        });
    }
    served
}

fn url(security: TransportSecurity, port: u16) -> String {
    format!("{}://127.0.0.1:{port}", security.scheme())
}

fn link(
    index: u16,
    port: u16,
    node_key: PublicIdentity,
    security: TransportSecurity,
    coordinator_key: Arc<IdentityKey>,
) -> RemotePartyLink {
    RemotePartyLink::new(
        index,
        &url(security, port),
        node_key,
        security,
        coordinator_key,
    )
    .unwrap()
}

fn remote_links(
    served: &[Served],
    keys: &Keys,
    security: TransportSecurity,
) -> Vec<Arc<dyn PartyLink>> {
    (0u16..)
        .zip(served)
        .map(|(index, node)| {
            Arc::new(link(
                index,
                node.port,
                keys.parties[usize::from(index)].public(),
                security,
                keys.authority.clone(),
            )) as Arc<dyn PartyLink>
        })
        .collect()
}

/// A FROST key made by `pool`, and a function signing `message` with all three nodes.
struct FrostKey {
    tenant_id: TenantId,
    key_id: WalletId,
    public_key: Vec<u8>,
    public_data: Vec<u8>,
}

async fn frost_key(pool: &Coordinator) -> FrostKey {
    let (tenant_id, key_id) = (TenantId::new(), WalletId::new());
    let key = pool
        .generate_key(KeyGenRequest {
            tenant_id,
            key_id,
            scheme: Scheme::FrostEd25519,
            protection: "local".into(),
        })
        .await
        .unwrap();
    FrostKey {
        tenant_id,
        key_id,
        public_key: key.public_key,
        public_data: key.public_data,
    }
}

/// Signs `message` with every node of a 3-node pool (a signing quorum of 3, so the
/// attacked node takes part every time) and verifies the signature.
async fn sign_with_all(pool: &Coordinator, key: &FrostKey, message: &[u8]) {
    let signed = pool
        .sign(SignRequest {
            tenant_id: key.tenant_id,
            key_id: key.key_id,
            scheme: Scheme::FrostEd25519,
            payload: SignPayload::Message(message.to_vec()),
            public_key: key.public_key.clone(),
            public_data: key.public_data.clone(),
            quorum: Some(waas_core::ports::SigningQuorum {
                signing_quorum: 3,
                policy_version: 1,
                reference: "net-test".into(),
            }),
        })
        .await
        .unwrap();
    assert_eq!(signed.signers, vec![0, 1, 2]);
    let SignatureOutput::Ed25519(bytes) = signed.output else {
        panic!("expected Ed25519")
    };
    ed25519_dalek::VerifyingKey::from_bytes(&key.public_key.clone().try_into().unwrap())
        .unwrap()
        .verify(message, &ed25519_dalek::Signature::from_bytes(&bytes))
        .unwrap();
}

type TestBody = BoxBody<Bytes, std::io::Error>;

/// A request body fed through a channel; it stays open while the sender lives.
fn open_body() -> (tokio::sync::mpsc::Sender<Bytes>, TestBody) {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(16);
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        let bytes = receiver.recv().await?;
        Some((Ok::<_, std::io::Error>(Frame::data(bytes)), receiver))
    });
    (sender, BodyExt::boxed(StreamBody::new(stream)))
}

/// Accepts any node key (still checking the node's handshake signature), for clients that
/// test what the node refuses.
#[derive(Debug)]
struct AnyNode;

impl ServerCertVerifier for AnyNode {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("no TLS 1.2".into()))
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(cert.as_ref()),
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

/// A TLS client that presents no key at all.
fn no_client_key_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyNode))
        .with_no_client_auth()
}

/// Signs TLS handshakes with `key`, whatever public key it is presented with.
#[derive(Debug)]
struct HandshakeKey(Arc<IdentityKey>);

impl rustls::sign::SigningKey for HandshakeKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        offered
            .contains(&SignatureScheme::ED25519)
            .then(|| Box::new(HandshakeSigner(self.0.clone())) as Box<dyn rustls::sign::Signer>)
    }
    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ED25519
    }
}

#[derive(Debug)]
struct HandshakeSigner(Arc<IdentityKey>);

impl rustls::sign::Signer for HandshakeSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.0
            .sign_tls13_handshake(message)
            .ok_or_else(|| rustls::Error::General("not a handshake".into()))
    }
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

/// A TLS client that names `claimed` as its key but signs with `actual`.
fn claiming_client_config(
    claimed: PublicIdentity,
    actual: Arc<IdentityKey>,
) -> rustls::ClientConfig {
    let certified = rustls::sign::CertifiedKey::new(
        vec![CertificateDer::from(tls::spki(&claimed))],
        Arc::new(HandshakeKey(actual)),
    );
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyNode))
        .with_client_cert_resolver(Arc::new(
            rustls::client::AlwaysResolvesClientRawPublicKeys::new(Arc::new(certified)),
        ))
}

/// Whether a GET of the node's status over TLS with `config` is refused.
async fn status_refused(port: u16, config: rustls::ClientConfig) -> bool {
    match h2_over_tls(port, config).await {
        Err(_) => true,
        Ok((mut sender, _driver)) => {
            let request = hyper::Request::get("https://127.0.0.1/v1/status")
                .body(BodyExt::boxed(
                    Empty::<Bytes>::new().map_err(|n| match n {}),
                ))
                .unwrap();
            match sender.send_request(request).await {
                Err(_) => true,
                Ok(response) => {
                    assert_eq!(response.status(), 200);
                    false
                }
            }
        }
    }
}

/// An HTTP/2 connection over TLS with `config`; the task driving it ends when the
/// connection does.
async fn h2_over_tls(
    port: u16,
    mut config: rustls::ClientConfig,
) -> Result<
    (
        hyper::client::conn::http2::SendRequest<TestBody>,
        tokio::task::JoinHandle<()>,
    ),
    String,
> {
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP/2: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((sender, driver))
}

fn session_request(body: TestBody) -> hyper::Request<TestBody> {
    hyper::Request::builder()
        .method(hyper::Method::POST)
        .uri("https://127.0.0.1/v1/sessions")
        .body(body)
        .unwrap()
}

/// Opens a session stream as the pinned coordinator and sends `first_bytes`, keeping the
/// stream open; returns how many response bytes came before the node ended the stream.
async fn session_cut_off_after(
    port: u16,
    keys: &Keys,
    node_key: PublicIdentity,
    first_bytes: &[u8],
) -> usize {
    let config = tls::client_config(keys.authority.clone(), node_key).unwrap();
    let (mut sender, _driver) = h2_over_tls(port, config).await.unwrap();
    let (body_tx, body) = open_body();
    body_tx
        .send(Bytes::copy_from_slice(first_bytes))
        .await
        .unwrap();
    let response = sender.send_request(session_request(body)).await.unwrap();
    assert_eq!(response.status(), 200);
    // The node ends the stream by itself, although this side keeps its body open.
    let collected = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .expect("the node should have ended the stream");
    drop(body_tx);
    collected.map(|body| body.to_bytes().len()).unwrap_or(0)
}

/// A peer that starts a TLS handshake and then trickles it a byte at a time; returns once
/// the node has closed the connection (or after 20 s).
async fn slow_tls_handshake(port: u16) -> Duration {
    let began = std::time::Instant::now();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // A handshake record announcing a 512-byte ClientHello, never completed.
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();
    let mut buffer = [0u8; 64];
    while began.elapsed() < Duration::from_secs(20) {
        if tcp.write_all(&[0x01]).await.is_err() {
            break;
        }
        let read = tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buffer)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            break;
        }
    }
    began.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_are_refused_while_the_pool_signs_over_tls() {
    let (nodes, keys) = pool_parties(3);
    let served = serve(&nodes, TransportSecurity::Tls, &short_limits()).await;
    let pool = coordinator(
        Threshold::new(2, 3).unwrap(),
        remote_links(&served, &keys, TransportSecurity::Tls),
        &keys,
    );
    let key = frost_key(&pool).await;
    let target = &served[0];
    let node_key = keys.parties[0].public();

    let signing = async {
        for round in 0..8 {
            sign_with_all(&pool, &key, format!("payout {round}").as_bytes()).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let attacks = async {
        // An oversized first frame: refused from its length, before its body is read.
        let mut oversized = (1024u32 * 1024).to_be_bytes().to_vec();
        oversized.extend_from_slice(&[0u8; 1024]);
        assert_eq!(
            session_cut_off_after(target.port, &keys, node_key, &oversized).await,
            0
        );
        assert_eq!(target.count(|c| &c.starts_too_large), 1);

        // A start that never completes: cut off after the start timeout.
        assert_eq!(
            session_cut_off_after(target.port, &keys, node_key, &[0, 0]).await,
            0
        );
        assert_eq!(target.count(|c| &c.starts_late), 1);

        // A slow-loris TLS handshake: cut off after the handshake timeout.
        let took = slow_tls_handshake(target.port).await;
        assert!(
            took < Duration::from_secs(20),
            "the slow handshake was never cut off"
        );
        assert_eq!(
            target.count_reaching(|c| &c.handshakes_timed_out, 1).await,
            1
        );

        // An authenticated connection left idle is closed.
        let config = tls::client_config(keys.authority.clone(), node_key).unwrap();
        let (_sender, driver) = h2_over_tls(target.port, config).await.unwrap();
        tokio::time::timeout(Duration::from_secs(15), driver)
            .await
            .expect("the idle connection should have been closed")
            .unwrap();
        assert!(target.count(|c| &c.connections_idle_closed) >= 1);

        // Unauthenticated peers. A coordinator key the node does not pin:
        let stranger = Arc::new(IdentityKey::generate());
        let wrong_key = link(0, target.port, node_key, TransportSecurity::Tls, stranger);
        let error = wrong_key.status().await.unwrap_err();
        assert!(matches!(error, SignerError::Transport(_)), "{error:?}");
        // No client key at all:
        assert!(
            status_refused(target.port, no_client_key_config()).await,
            "a client without a key got an answer"
        );
        // The pinned control-plane key, named by a client that does not hold it:
        let claiming =
            claiming_client_config(keys.authority.public(), Arc::new(IdentityKey::generate()));
        assert!(
            status_refused(target.port, claiming).await,
            "a client naming the pinned key without its private key got an answer"
        );
        // The same client holding the real key is answered: the refusals are about keys.
        let holding = claiming_client_config(keys.authority.public(), keys.authority.clone());
        assert!(!status_refused(target.port, holding).await);
        // Cleartext HTTP/2 against a TLS node:
        let cleartext = link(
            0,
            target.port,
            node_key,
            TransportSecurity::Cleartext,
            keys.authority.clone(),
        );
        cleartext.status().await.unwrap_err();
        assert_eq!(
            target.count_reaching(|c| &c.handshakes_refused, 4).await,
            4,
            "{:?}",
            target.counters
        );

        // And the coordinator refuses a node that does not prove the key it pinned.
        let impostor = link(
            0,
            target.port,
            keys.parties[1].public(),
            TransportSecurity::Tls,
            keys.authority.clone(),
        );
        let SignerError::Transport(reason) = impostor.status().await.unwrap_err() else {
            panic!("expected a transport error")
        };
        assert!(reason.contains("certificate"), "{reason}");
        // The pinned coordinator still gets its signed status.
        let good = link(
            0,
            target.port,
            node_key,
            TransportSecurity::Tls,
            keys.authority.clone(),
        );
        assert_eq!(good.status().await.unwrap().index, 0);
        // Nothing above reached a party.
        assert_eq!(target.count(|c| &c.starts_unauthorized), 0);

        // A pinned coordinator whose start is not signed by a pinned control plane: the
        // node reads nothing after it and the party answers with its signed refusal.
        let mut session_id = [0u8; 32];
        session_id[..16].copy_from_slice(uuid::Uuid::now_v7().as_bytes());
        let start = SessionStart {
            session_id,
            participants: vec![0, 1],
            kind: SessionKind::EddsaSign {
                tenant: "t".into(),
                key_id: "k".into(),
                message: b"pay".to_vec(),
            },
            expires_at: secure::now_unix() + 60,
            quorum: None,
        };
        let forged = secure::sign_start(&start, &IdentityKey::generate()).unwrap();
        let mut session = good.open(forged).await.unwrap();
        let event = tokio::time::timeout(Duration::from_secs(10), session.from_party.recv())
            .await
            .unwrap()
            .unwrap();
        match secure::EventVerifier::new(node_key, session_id, 0)
            .verify(&event)
            .unwrap()
        {
            waas_signer::PartyEvent::Failed {
                reason,
                kind: waas_signer::FailureKind::Refused,
                ..
            } => assert!(
                reason.contains("not signed by a trusted control plane"),
                "{reason}"
            ),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(target.count(|c| &c.starts_unauthorized), 1);
    };
    tokio::join!(signing, attacks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_gets_at_most_its_share_of_concurrent_sessions() {
    let (nodes, keys) = pool_parties(3);
    let limits = NodeLimits {
        sessions_per_peer: 2,
        ..NodeLimits::standard()
    };
    let served = serve(&nodes[..1], TransportSecurity::Tls, &limits).await;
    let node = link(
        0,
        served[0].port,
        keys.parties[0].public(),
        TransportSecurity::Tls,
        keys.authority.clone(),
    );
    // A FROST keygen with party 1, which never answers: the session waits for party 1's
    // handshake and holds its slot.
    let stalled_session = || {
        let mut session_id = [0u8; 32];
        session_id[..16].copy_from_slice(uuid::Uuid::now_v7().as_bytes());
        let start = SessionStart {
            session_id,
            participants: vec![0, 1],
            kind: SessionKind::EddsaKeygen {
                tenant: "t".into(),
                key_id: uuid::Uuid::now_v7().to_string(),
                threshold: 2,
                protection: "local".into(),
            },
            expires_at: secure::now_unix() + 60,
            quorum: None,
        };
        secure::sign_start(&start, &keys.authority).unwrap()
    };
    let first = node.open(stalled_session()).await.unwrap();
    let _second = node.open(stalled_session()).await.unwrap();
    let error = node.open(stalled_session()).await.unwrap_err();
    assert!(error.to_string().contains("503"), "{error}");
    assert_eq!(
        TransportCounters::get(&served[0].counters.sessions_over_cap),
        1
    );

    // The coordinator ends one session: its slot comes back.
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match node.open(stalled_session()).await {
            Ok(_) => break,
            Err(error) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "slot never freed: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_signs_over_h2c_when_configured_for_development() {
    let (nodes, keys) = pool_parties(3);
    let served = serve(
        &nodes,
        TransportSecurity::Cleartext,
        &NodeLimits::standard(),
    )
    .await;
    let pool = coordinator(
        Threshold::new(2, 3).unwrap(),
        remote_links(&served, &keys, TransportSecurity::Cleartext),
        &keys,
    );
    let key = frost_key(&pool).await;
    sign_with_all(&pool, &key, b"over h2c").await;
    // A TLS URL with the cleartext setting (and the reverse) is a configuration error.
    let node_key = keys.parties[0].public();
    for (url, security) in [
        ("https://127.0.0.1:1", TransportSecurity::Cleartext),
        ("http://127.0.0.1:1", TransportSecurity::Tls),
    ] {
        let error =
            RemotePartyLink::new(0, url, node_key, security, keys.authority.clone()).unwrap_err();
        assert!(error.to_string().contains("must be"), "{error}");
    }
}

#[test]
fn the_largest_start_the_api_can_cause_fits_the_start_frame_limit() {
    let authority = IdentityKey::generate();
    // 128 KiB of call data (the API's limit) in an EVM transaction's signing payload.
    let payload = vec![0xab; 128 * 1024 + 200];
    let preimage = waas_signer::Preimage::EvmTransaction(payload);
    let start = SessionStart {
        session_id: [7; 32],
        participants: (0..7).collect(),
        kind: SessionKind::EcdsaSign {
            tenant: uuid::Uuid::now_v7().to_string(),
            key_id: uuid::Uuid::now_v7().to_string(),
            digest: preimage.digest(),
            preimage: Some(preimage),
            signers_at_keygen: (0..7).collect(),
        },
        expires_at: secure::now_unix() + 60,
        quorum: Some(waas_core::ports::SigningQuorum {
            signing_quorum: 7,
            policy_version: u32::MAX,
            reference: uuid::Uuid::now_v7().to_string(),
        }),
    };
    let signed = secure::sign_start(&start, &authority).unwrap();
    let encoded = secure::encode(&signed).unwrap();
    assert!(
        encoded.len() + 4 <= START_FRAME_MAX,
        "{} bytes",
        encoded.len()
    );
}

#[test]
fn identity_keys_travel_as_raw_public_keys_and_sign_only_handshakes() {
    let key = IdentityKey::generate();
    let der = tls::spki(&key.public());
    assert_eq!(der.len(), 44);
    assert_eq!(tls::identity_from_spki(&der), Some(key.public()));
    let mut longer = der.clone();
    longer.push(0);
    assert_eq!(tls::identity_from_spki(&longer), None);
    let mut ed448 = der.clone();
    ed448[8] = 0x71;
    assert_eq!(tls::identity_from_spki(&ed448), None);

    let mut handshake = vec![b' '; 64];
    handshake.extend_from_slice(b"TLS 1.3, server CertificateVerify\0transcript hash");
    let signature = key.sign_tls13_handshake(&handshake).unwrap();
    ed25519_dalek::VerifyingKey::from_bytes(&key.public().to_bytes())
        .unwrap()
        .verify_strict(
            &handshake,
            &ed25519_dalek::Signature::from_slice(&signature).unwrap(),
        )
        .unwrap();
    // Anything else (an authorization's framing, a short input) is refused.
    assert!(
        key.sign_tls13_handshake(b"waas/session-start/v1\0body")
            .is_none()
    );
    assert!(key.sign_tls13_handshake(&[b' '; 63]).is_none());
}
