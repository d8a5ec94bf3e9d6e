//! A signer party: its own sealed store and key-encryption key, its one-time material (in
//! memory only), the sessions it runs, and the background upkeep of its Paillier prime pool.

use crate::ecdsa::{self, AUX_ID, SessionFailure, SessionIo};
use crate::eddsa;
use crate::identity::{IdentityKey, PublicIdentity};
use crate::onetime::{Material, OneTimeMaterial};
use crate::secure::{self, Channels, EventSigner, Hello};
use crate::transport::{
    PartyEvent, PartyStatus, Route, SessionKind, SessionStart, SignedEvent, SignedStart,
    WireMessage,
};
use crate::vault::{POOL_TENANT, Vault, kind};
use cggmp24::PregeneratedPrimes;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use waas_core::ports::{ShareStore, SignerError, StoredRecord};
use waas_custody::ProtectorSet;

/// Store kind of the authorizations a party has accepted (not secret: session ids and
/// expiry times), kept until they expire so a replay is refused even after a restart.
const USED_AUTHORIZATION: &str = "used-authorization";
/// How long a party waits for the other participants' handshakes.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Who a party trusts: its own identity key, the control planes allowed to authorize
/// sessions, and the pinned identity key of every party in the pool (by pool index).
#[derive(Clone, Debug)]
pub struct PartyTrust {
    pub identity: Arc<IdentityKey>,
    pub authorities: Vec<PublicIdentity>,
    pub peers: Vec<PublicIdentity>,
}

/// How one party is set up.
#[derive(Clone, Debug)]
pub struct PartyConfig {
    /// 0-based index in the pool.
    pub index: u16,
    /// Pool size `n`.
    pub parties: u16,
    /// Prime sets to keep on hand once aux info exists (for the next aux-info run).
    pub spare_primes: u32,
    /// Whether this party generates primes in the background at all.
    pub generate_primes: bool,
}

/// What a rotation pass did at one party.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RotationReport {
    pub party_index: u16,
    /// KEK versions made current by this pass.
    pub new_keks: Vec<String>,
    pub rewrapped: u64,
    pub already_current: u64,
    pub changed_meanwhile: u64,
}

/// One signer party.
#[derive(Debug)]
pub struct PartyNode {
    config: PartyConfig,
    trust: PartyTrust,
    vault: Vault,
    /// Presignatures and precommitted nonces: in this process's memory only (ADR 0009).
    one_time: OneTimeMaterial,
    generating_since: Mutex<Option<Instant>>,
}

impl PartyNode {
    pub fn new(
        config: PartyConfig,
        store: Arc<dyn ShareStore>,
        protectors: ProtectorSet,
        trust: PartyTrust,
    ) -> Self {
        let vault = Vault::new(config.index, store, protectors);
        Self {
            config,
            trust,
            vault,
            one_time: OneTimeMaterial::new(),
            generating_since: Mutex::new(None),
        }
    }

    /// This party's public identity key.
    pub fn identity(&self) -> PublicIdentity {
        self.trust.identity.public()
    }

    /// The identity key and the control-plane keys this party trusts (for the transport).
    pub(crate) fn trust(&self) -> &PartyTrust {
        &self.trust
    }

    /// This party's status, signed for a remote coordinator.
    pub async fn signed_status(&self) -> Result<Vec<u8>, SignerError> {
        let status = self.status().await;
        secure::sign_status(
            &self.trust.identity,
            &secure::StatusBody {
                pool_index: self.config.index,
                issued_at: secure::now_unix(),
                status,
            },
        )
    }

    /// This process's start epoch: random, drawn at start, kept only in memory (ADR 0009).
    pub fn epoch(&self) -> u64 {
        self.one_time.epoch()
    }

    /// Forgets accepted authorizations that have expired (they can no longer be replayed),
    /// drops precommitted nonces past their lifetime, and deletes any presignature or nonce
    /// record an older version left in the store (never used: one-time material is valid
    /// only in the memory of the process that made it).
    pub async fn prune_authorizations(&self) -> Result<usize, SignerError> {
        let store = self.vault.store();
        let now = secure::now_unix();
        let mut pruned = 0;
        for id in store.list_ids(USED_AUTHORIZATION).await? {
            let expired = match store.get(USED_AUTHORIZATION, &id).await? {
                Some(record) => <[u8; 8]>::try_from(record.sealed.as_slice())
                    .map(|b| u64::from_be_bytes(b) < now)
                    .unwrap_or(true),
                None => false,
            };
            if expired && store.delete(USED_AUTHORIZATION, &id).await? {
                pruned += 1;
            }
        }
        // Precommitted FROST nonces nobody used in time (their coordinator restarted, say).
        pruned += self.one_time.discard_older_than(
            Material::FrostNonces,
            Duration::from_secs(eddsa::NONCE_TTL_SECS),
        )?;
        for stored_kind in [kind::ECDSA_PRESIGNATURE, kind::FROST_NONCES] {
            for id in store.list_ids(stored_kind).await? {
                if store.delete(stored_kind, &id).await? {
                    pruned += 1;
                }
            }
        }
        Ok(pruned)
    }

    /// Prunes expired authorizations every few minutes.
    pub fn spawn_authorization_pruning(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let node = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(error) = node.prune_authorizations().await {
                    tracing::warn!(party_index = node.config.index, %error, "pruning used authorizations failed");
                }
                tokio::time::sleep(Duration::from_secs(300)).await;
            }
        })
    }

    /// Checks a session start: signed by a trusted control plane, not expired, naming this
    /// party, consistent with its payload, and never seen before (recorded durably first).
    async fn authorize(&self, signed: &SignedStart) -> Result<(SessionStart, u16), SessionFailure> {
        let refuse =
            |reason: String| SessionFailure::refused(format!("authorization refused: {reason}"));
        let start = secure::verify_start(signed, &self.trust.authorities, secure::now_unix())
            .map_err(refuse)?;
        let seat = start
            .participants
            .iter()
            .position(|&p| p == self.config.index)
            .and_then(|seat| u16::try_from(seat).ok())
            .ok_or_else(|| refuse("this party is not a participant".into()))?;
        if start.participants.iter().any(|&p| p >= self.config.parties) {
            return Err(refuse("a participant outside the pool".into()));
        }
        let preimage = match &start.kind {
            SessionKind::EcdsaSign {
                digest, preimage, ..
            }
            | SessionKind::EcdsaSignPresigned {
                digest, preimage, ..
            } => preimage.as_ref().map(|p| (p.digest(), *digest)),
            _ => None,
        };
        if let Some((computed, claimed)) = preimage
            && computed != claimed
        {
            return Err(refuse("the digest does not match the payload".into()));
        }
        if let Some(quorum) = &start.quorum {
            if !start.kind.is_signing() {
                return Err(refuse(
                    "a signing quorum on a session that does not sign".into(),
                ));
            }
            if start.participants.len() < usize::from(quorum.signing_quorum) {
                return Err(refuse(format!(
                    "{} signers named where policy version {} requires {} for {}",
                    start.participants.len(),
                    quorum.policy_version,
                    quorum.signing_quorum,
                    quorum.reference
                )));
            }
        }
        if matches!(
            start.kind,
            SessionKind::RotateKeys { .. }
                | SessionKind::ListPresignatures
                | SessionKind::DiscardPresignatures { .. }
                | SessionKind::EddsaPrecommit { .. }
        ) && start.participants.len() != 1
        {
            return Err(refuse("maintenance runs at one party at a time".into()));
        }
        let id = hex::encode(start.session_id);
        let store = self.vault.store();
        let record = StoredRecord {
            kind: USED_AUTHORIZATION.into(),
            id: id.clone(),
            tenant: POOL_TENANT.into(),
            sealed: start.expires_at.to_be_bytes().to_vec(),
        };
        if let Err(error) = store.insert(record).await {
            return Err(match store.get(USED_AUTHORIZATION, &id).await {
                Ok(Some(_)) => refuse("this authorization was already used".into()),
                _ => SessionFailure::from(SignerError::Store(error)),
            });
        }
        Ok((start, seat))
    }

    pub fn index(&self) -> u16 {
        self.config.index
    }

    pub async fn status(&self) -> PartyStatus {
        let aux_ready = self
            .vault
            .list(kind::ECDSA_AUX)
            .await
            .map(|ids| ids.iter().any(|id| id == AUX_ID))
            .unwrap_or(false);
        let primes_available = self
            .vault
            .list(kind::PRIMES)
            .await
            .map(|ids| u32::try_from(ids.len()).unwrap_or(u32::MAX))
            .unwrap_or(0);
        let generating_primes_for_secs = self
            .generating_since
            .lock()
            .ok()
            .and_then(|since| since.map(|at| at.elapsed().as_secs()));
        PartyStatus {
            index: self.config.index,
            epoch: self.one_time.epoch(),
            aux_ready,
            primes_available,
            generating_primes_for_secs,
        }
    }

    /// Checks that this party's key-encryption key opens what its store holds: a node with a
    /// wrong KEK refuses to start rather than failing every request later.
    pub async fn self_check(&self) -> Result<(), SignerError> {
        if let Some(id) = self.vault.list(kind::ECDSA_AUX).await?.first() {
            self.vault.get(kind::ECDSA_AUX, POOL_TENANT, id).await?;
        } else if let Some(id) = self.vault.list(kind::PRIMES).await?.first() {
            self.vault.get(kind::PRIMES, POOL_TENANT, id).await?;
        }
        Ok(())
    }

    /// The presignatures this process holds (from their ids and tenants; nothing secret).
    pub async fn list_presignatures(&self) -> Result<Vec<ecdsa::ListedPresignature>, SignerError> {
        Ok(self
            .one_time
            .list(Material::Presignature)?
            .into_iter()
            .filter_map(|(tenant, id)| ecdsa::parse_presignature_record_id(&tenant, &id))
            .collect())
    }

    /// Key-encryption-key rotation at this party: optionally makes a new KEK version current
    /// (where the protector can), then re-wraps every record still under an older version.
    pub async fn rotate_keys(&self, new_version: bool) -> Result<RotationReport, SignerError> {
        let mut new_keks = Vec::new();
        if new_version {
            for (protector, result) in self.vault.rotate_protectors().await {
                match result {
                    Ok(kek_id) => new_keks.push(kek_id),
                    Err(error) => {
                        tracing::info!(party_index = self.config.index, %protector, %error, "not rotated")
                    }
                }
            }
        }
        let rewrap = self.vault.rewrap_all(&kind::ALL).await?;
        tracing::info!(
            party_index = self.config.index,
            ?rewrap,
            "key rotation pass finished"
        );
        Ok(RotationReport {
            party_index: self.config.index,
            new_keks,
            rewrapped: rewrap.rewrapped,
            already_current: rewrap.already_current,
            changed_meanwhile: rewrap.changed_meanwhile,
        })
    }

    /// Adds an externally generated prime set to this party's pool.
    pub async fn import_primes(&self, primes: &PregeneratedPrimes) -> Result<(), SignerError> {
        ecdsa::store_primes(&self.vault, primes).await
    }

    /// Keeps the prime pool filled: one set while aux info is missing, `spare_primes` after.
    pub fn spawn_prime_upkeep(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let node = self.clone();
        tokio::spawn(async move {
            if !node.config.generate_primes {
                return;
            }
            let mut backoff = Duration::from_secs(2);
            loop {
                let status = node.status().await;
                let wanted = if status.aux_ready {
                    node.config.spare_primes
                } else {
                    1
                };
                if status.primes_available < wanted {
                    if let Ok(mut since) = node.generating_since.lock() {
                        *since = Some(Instant::now());
                    }
                    tracing::info!(
                        party_index = node.config.index,
                        "generating Paillier primes"
                    );
                    let result = ecdsa::generate_and_store_primes(&node.vault).await;
                    if let Ok(mut since) = node.generating_since.lock() {
                        *since = None;
                    }
                    match result {
                        Ok(()) => {
                            tracing::info!(
                                party_index = node.config.index,
                                "Paillier primes ready"
                            );
                            backoff = Duration::from_secs(2);
                        }
                        Err(error) => {
                            tracing::error!(party_index = node.config.index, %error, "prime generation failed");
                            backoff = (backoff * 2).min(Duration::from_secs(300));
                        }
                    }
                }
                tokio::time::sleep(backoff).await;
            }
        })
    }

    /// Runs one session to its end and reports the output or the failure, every event
    /// signed by this party's identity key.
    pub async fn run_session(
        self: Arc<Self>,
        signed: SignedStart,
        inbox: mpsc::Receiver<WireMessage>,
        outbox: mpsc::Sender<SignedEvent>,
    ) {
        let (start, seat) = match self.authorize(&signed).await {
            Ok(authorized) => authorized,
            Err(failure) => {
                tracing::warn!(party_index = self.config.index, reason = %failure.reason, "session refused");
                // Bound to the session id the start claims, so the coordinator can match it.
                let claimed = secure::decode::<SessionStart>(&signed.body)
                    .map(|s| s.session_id)
                    .unwrap_or([0; 32]);
                let mut signer =
                    EventSigner::new(self.trust.identity.clone(), claimed, self.config.index);
                if let Ok(event) = signer.sign(failure.into_event()) {
                    let _ = outbox.send(event).await;
                }
                return;
            }
        };
        let signer = EventSigner::new(
            self.trust.identity.clone(),
            start.session_id,
            self.config.index,
        );
        self.run_authorized(start, seat, signer, inbox, outbox)
            .await;
    }

    async fn run_authorized(
        self: Arc<Self>,
        start: SessionStart,
        seat: u16,
        mut signer: EventSigner,
        mut inbox: mpsc::Receiver<WireMessage>,
        outbox: mpsc::Sender<SignedEvent>,
    ) {
        let size = u16::try_from(start.participants.len()).unwrap_or(u16::MAX);
        let channels = if start.kind.has_party_messages() && size > 1 {
            match self
                .handshake(&start, seat, &mut signer, &mut inbox, &outbox)
                .await
            {
                Ok(channels) => Some(channels),
                Err(failure) => {
                    tracing::warn!(party_index = self.config.index, reason = %failure.reason, "handshake failed");
                    if let Ok(event) = signer.sign(failure.into_event()) {
                        let _ = outbox.send(event).await;
                    }
                    return;
                }
            }
        } else {
            None
        };
        let channels = channels.map(|c| Arc::new(Mutex::new(c)));
        let (proto_in_tx, proto_in_rx) = mpsc::channel::<WireMessage>(256);
        let (proto_out_tx, proto_out_rx) = mpsc::channel::<PartyEvent>(256);
        let inbound_failure: Arc<Mutex<Option<SessionFailure>>> = Arc::default();
        let inbound = tokio::spawn(inbound_loop(
            inbox,
            proto_in_tx,
            channels.clone(),
            inbound_failure.clone(),
        ));
        let outbound = tokio::spawn(outbound_loop(
            proto_out_rx,
            outbox,
            channels,
            signer,
            seat,
            size,
        ));
        let result = self
            .dispatch(start, seat, proto_in_rx, proto_out_tx.clone())
            .await;
        inbound.abort();
        let relay_failure = inbound_failure.lock().ok().and_then(|mut f| f.take());
        let event = match (result, relay_failure) {
            (Ok(output), None) => PartyEvent::Output(output),
            (_, Some(failure)) | (Err(failure), None) => {
                tracing::warn!(party_index = self.config.index, reason = %failure.reason, culprits = ?failure.culprits, kind = ?failure.kind, "session failed");
                failure.into_event()
            }
        };
        let _ = proto_out_tx.send(event).await;
        drop(proto_out_tx);
        let _ = outbound.await;
    }

    /// Exchanges signed ephemeral keys with every other participant.
    async fn handshake(
        &self,
        start: &SessionStart,
        seat: u16,
        signer: &mut EventSigner,
        inbox: &mut mpsc::Receiver<WireMessage>,
        outbox: &mpsc::Sender<SignedEvent>,
    ) -> Result<Channels, SessionFailure> {
        let size = u16::try_from(start.participants.len()).unwrap_or(u16::MAX);
        let (mut channels, hello) = Channels::start(
            &self.trust.identity,
            start.session_id,
            seat,
            self.config.index,
        );
        let hello = signer
            .sign(PartyEvent::Message(WireMessage {
                from: Some(seat),
                route: Route::Broadcast,
                payload: secure::encode(&hello)?,
            }))
            .map_err(SessionFailure::from)?;
        outbox
            .send(hello)
            .await
            .map_err(|_| SessionFailure::new("the coordinator left the session"))?;
        let collect = async {
            while !channels.complete(size) {
                let message = inbox
                    .recv()
                    .await
                    .ok_or_else(|| SessionFailure::new("the coordinator left the session"))?;
                let Some(from) = message.from.filter(|&f| f < size && f != seat) else {
                    return Err(SessionFailure::new(
                        "a message that is not a participant's handshake",
                    ));
                };
                let pool_index = start.participants.get(usize::from(from)).copied();
                let key = pool_index.and_then(|p| self.trust.peers.get(usize::from(p)));
                let (Some(pool_index), Some(key)) = (pool_index, key) else {
                    return Err(SessionFailure::blaming("no pinned key", vec![from]));
                };
                let hello: Hello = secure::decode(&message.payload)
                    .map_err(|reason| SessionFailure::blaming(reason, vec![from]))?;
                channels
                    .accept(from, pool_index, key, &hello)
                    .map_err(|reason| SessionFailure::blaming(reason, vec![from]))?;
            }
            Ok(channels)
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, collect)
            .await
            .map_err(|_| SessionFailure::new("handshake timed out"))?
    }

    async fn dispatch(
        &self,
        start: SessionStart,
        me: u16,
        inbox: mpsc::Receiver<WireMessage>,
        outbox: mpsc::Sender<PartyEvent>,
    ) -> Result<Vec<u8>, SessionFailure> {
        let size = u16::try_from(start.participants.len()).unwrap_or(u16::MAX);
        let io = SessionIo {
            session_id: start.session_id,
            me,
            size,
            inbox,
            outbox,
        };
        let vault = &self.vault;
        let all_parties = size == self.config.parties;
        let require_all = |what: &str| {
            if all_parties {
                Ok(())
            } else {
                Err(SessionFailure::new(format!(
                    "{what} needs every party of the pool"
                )))
            }
        };
        match start.kind {
            SessionKind::EcdsaAuxInfo => {
                require_all("aux info")?;
                ecdsa::run_aux_info(vault, io).await
            }
            SessionKind::EcdsaKeygen {
                tenant,
                key_id,
                threshold,
                protection,
            } => {
                require_all("key generation")?;
                ecdsa::run_keygen(vault, io, &tenant, &key_id, threshold, &protection).await
            }
            SessionKind::EcdsaSign {
                tenant,
                key_id,
                digest,
                preimage,
                signers_at_keygen,
            } => {
                ecdsa::check_signer_set(
                    me,
                    self.config.index,
                    &signers_at_keygen,
                    &start.participants,
                )?;
                ecdsa::run_sign(
                    vault,
                    io,
                    &tenant,
                    &key_id,
                    digest,
                    preimage.as_ref(),
                    &signers_at_keygen,
                )
                .await
            }
            SessionKind::EcdsaPresign {
                tenant,
                key_id,
                presignature_id,
                signers_at_keygen,
            } => {
                ecdsa::check_signer_set(
                    me,
                    self.config.index,
                    &signers_at_keygen,
                    &start.participants,
                )?;
                ecdsa::run_presign(
                    vault,
                    &self.one_time,
                    io,
                    &tenant,
                    &key_id,
                    &presignature_id,
                    &signers_at_keygen,
                )
                .await
            }
            SessionKind::EcdsaSignPresigned {
                tenant,
                key_id,
                presignature_id,
                preimage,
                ..
            } => {
                // `authorize` has checked that the preimage hashes to the session's digest.
                ecdsa::run_presigned_sign(
                    &self.one_time,
                    &tenant,
                    &key_id,
                    &presignature_id,
                    &start.participants,
                    preimage.as_ref(),
                    || fault_point("crash-after-consuming-presignature"),
                )
            }
            SessionKind::EddsaKeygen {
                tenant,
                key_id,
                threshold,
                protection,
            } => {
                require_all("key generation")?;
                eddsa::run_keygen(vault, io, &tenant, &key_id, threshold, &protection).await
            }
            SessionKind::EddsaSign {
                tenant,
                key_id,
                message,
            } => eddsa::run_sign(vault, io, &tenant, &key_id, &message).await,
            SessionKind::EddsaPrecommit {
                tenant,
                key_id,
                count,
            } => {
                eddsa::run_precommit(
                    vault,
                    &self.one_time,
                    &tenant,
                    &key_id,
                    count,
                    secure::now_unix(),
                )
                .await
            }
            SessionKind::EddsaSignPrecommitted {
                tenant,
                key_id,
                message,
                package,
                nonce_ids,
            } => {
                let nonce_id = nonce_ids
                    .get(usize::from(me))
                    .ok_or_else(|| SessionFailure::refused("no nonce named for this party"))?;
                let signing = eddsa::PrecommittedSigning {
                    tenant: &tenant,
                    key_id: &key_id,
                    message: &message,
                    package: &package,
                    nonce_id,
                };
                eddsa::run_sign_precommitted(vault, &self.one_time, signing, secure::now_unix())
                    .await
            }
            SessionKind::ListPresignatures => {
                let listed = self.list_presignatures().await?;
                serde_json::to_vec(&listed)
                    .map_err(|e| SessionFailure::new(format!("encoding the list: {e}")))
            }
            SessionKind::DiscardPresignatures { record_ids } => {
                let mut discarded = 0u64;
                for id in &record_ids {
                    if self.one_time.discard(Material::Presignature, id)? {
                        discarded += 1;
                    }
                }
                tracing::info!(
                    party_index = self.config.index,
                    discarded,
                    "discarded orphaned presignatures"
                );
                Ok(discarded.to_be_bytes().to_vec())
            }
            SessionKind::RotateKeys { new_version } => {
                let report = self.rotate_keys(new_version).await?;
                serde_json::to_vec(&report)
                    .map_err(|e| SessionFailure::new(format!("encoding the report: {e}")))
            }
        }
    }
}

/// Opens relayed party messages (or passes coordinator messages through) for the protocol.
async fn inbound_loop(
    mut inbox: mpsc::Receiver<WireMessage>,
    to_protocol: mpsc::Sender<WireMessage>,
    channels: Option<Arc<Mutex<Channels>>>,
    failure: Arc<Mutex<Option<SessionFailure>>>,
) {
    while let Some(message) = inbox.recv().await {
        let delivered = match (message.from, &channels) {
            (None, _) => Ok(message),
            (Some(from), Some(channels)) => channels
                .lock()
                .map_err(|_| SessionFailure::new("channel state poisoned"))
                .and_then(|mut channels| {
                    channels
                        .open(from, &message.payload)
                        .map_err(|reason| SessionFailure::blaming(reason, vec![from]))
                })
                .map(|(payload, route)| WireMessage {
                    from: Some(from),
                    route,
                    payload,
                }),
            (Some(from), None) => Err(SessionFailure::blaming(
                "a party message in a session without party messages",
                vec![from],
            )),
        };
        match delivered {
            Ok(message) => {
                if to_protocol.send(message).await.is_err() {
                    return;
                }
            }
            Err(rejected) => {
                if let Ok(mut slot) = failure.lock() {
                    *slot = Some(rejected);
                }
                // Dropping `to_protocol` ends the protocol; the recorded failure is reported.
                return;
            }
        }
    }
}

/// Seals the protocol's party messages, signs every event and reports it.
async fn outbound_loop(
    mut from_protocol: mpsc::Receiver<PartyEvent>,
    outbox: mpsc::Sender<SignedEvent>,
    channels: Option<Arc<Mutex<Channels>>>,
    mut signer: EventSigner,
    me: u16,
    size: u16,
) {
    while let Some(event) = from_protocol.recv().await {
        let events = match (event, &channels) {
            (PartyEvent::Message(message), Some(channels))
                if message.route != Route::Coordinator =>
            {
                let recipients: Vec<(u16, bool)> = match message.route {
                    Route::Broadcast => (0..size).filter(|&s| s != me).map(|s| (s, true)).collect(),
                    Route::Party(to) => vec![(to, false)],
                    Route::Coordinator => Vec::new(),
                };
                let sealed: Result<Vec<PartyEvent>, SignerError> = channels
                    .lock()
                    .map_err(|_| SignerError::Bug("channel state poisoned".into()))
                    .and_then(|mut channels| {
                        recipients
                            .into_iter()
                            .map(|(to, broadcast)| {
                                channels
                                    .seal(to, broadcast, &message.payload)
                                    .map(|payload| {
                                        PartyEvent::Message(WireMessage {
                                            from: Some(me),
                                            route: Route::Party(to),
                                            payload,
                                        })
                                    })
                            })
                            .collect()
                    });
                match sealed {
                    Ok(events) => events,
                    Err(error) => vec![SessionFailure::from(error).into_event()],
                }
            }
            (event, _) => vec![event],
        };
        for event in events {
            let Ok(signed) = signer.sign(event) else {
                return;
            };
            if outbox.send(signed).await.is_err() {
                return;
            }
        }
    }
}

/// A named point where a debug build can be told to crash (`WAAS_FAULT_INJECTION=<point>,…`),
/// so tests can kill a node at exactly the worst moment. Release builds compile it away.
fn fault_point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("WAAS_FAULT_INJECTION")
        .is_ok_and(|points| points.split(',').any(|p| p == name))
    {
        tracing::error!(point = name, "fault injection: exiting abruptly");
        std::process::exit(86);
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
