//! The coordinator: the `SignerPool` an API node uses. It opens sessions on the parties,
//! relays their protocol messages (it cannot read shares; it only routes), aggregates and
//! verifies outputs, keeps the pool's readiness, runs auxiliary-info generation once the
//! parties have primes, and keeps a small presignature pool per key.

mod nonces;
mod presignatures;
mod restarts;

use crate::ecdsa;
use crate::eddsa;
use crate::health::{MemberHealth, PoolHealth};
use crate::identity::{IdentityKey, PublicIdentity};
use crate::metrics::PoolMetrics;
use crate::secure::{self, EventVerifier};
use crate::transport::{
    FailureKind, PartyEvent, PartyLink, PartySession, Preimage, Route, SessionKind, SessionStart,
    WireMessage,
};
use async_trait::async_trait;
use frost_ed25519 as frost;
use rand::RngCore;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use waas_core::ports::{
    CustodyError, GeneratedKey, KeyGenRequest, PoolSignature, PoolStatus, SignPayload, SignRequest,
    SignatureOutput, SignerError, SignerPool, SigningQuorum,
};
use waas_core::{Scheme, Threshold};

use nonces::NonceEntry;
use presignatures::PresignatureEntry;

/// Measured on the reference machine: one Paillier prime set ≈ 150 s, aux info ≈ 90 s.
const PRIME_SET_ESTIMATE_SECS: u64 = 150;
const AUX_INFO_ESTIMATE_SECS: u64 = 90;

/// How the coordinator runs the pool.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    pub threshold: Threshold,
    /// Upper bound for one signing or keygen session.
    pub session_timeout: Duration,
    /// Upper bound for the auxiliary-info session (heavy).
    pub aux_timeout: Duration,
    /// Presignatures kept ready per ECDSA key (0 disables the pool).
    pub presignatures_per_key: usize,
    /// Share of wall time presignature refills may take (0 < share ≤ 1): after a refill
    /// that took `d`, the next waits `d × (1/share − 1)`. Refills also wait while live
    /// requests run.
    pub refill_time_share: f64,
    /// FROST nonce pairs each party keeps precommitted per key (0 disables one-round FROST).
    pub nonces_per_party: usize,
}

/// The coordinator's keys: the control-plane key that signs authorizations, and the pinned
/// identity key of every party (by pool index).
#[derive(Clone, Debug)]
pub struct CoordinatorTrust {
    pub authority: Arc<IdentityKey>,
    pub parties: Vec<PublicIdentity>,
}

#[derive(Debug, Default)]
struct State {
    ecdsa_ready: bool,
    parties_ready: u16,
    detail: String,
    eta_secs: Option<u64>,
    /// (tenant, key) → presignatures ready at the parties, each used at most once.
    presignatures: HashMap<(String, String), VecDeque<PresignatureEntry>>,
    /// When each key last signed or was created: refills serve busy keys first.
    last_used: HashMap<(String, String), std::time::Instant>,
    rotation: usize,
    /// The presignature index has been rebuilt from the parties since this coordinator
    /// started.
    presignatures_loaded: bool,
    /// (tenant, key) → party → precommitted FROST nonces, each used at most once.
    nonces: HashMap<(String, String), BTreeMap<u16, VecDeque<NonceEntry>>>,
    /// Each party's start epoch, as last seen in its status (ADR 0009).
    party_epochs: HashMap<u16, u64>,
}

/// The coordinator of a pool of parties.
#[derive(Debug)]
pub struct Coordinator {
    config: CoordinatorConfig,
    trust: CoordinatorTrust,
    links: Vec<Arc<dyn PartyLink>>,
    health: PoolHealth,
    metrics: PoolMetrics,
    /// Live requests (signing, key generation) in flight; refills wait for zero.
    live: std::sync::atomic::AtomicUsize,
    state: Mutex<State>,
    aux_lock: tokio::sync::Mutex<()>,
    load_lock: tokio::sync::Mutex<()>,
}

/// Counts a live request for as long as it lives.
struct LiveGuard<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> LiveGuard<'a> {
    fn new(counter: &'a std::sync::atomic::AtomicUsize) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// How many times a signing request is tried with different signer sets.
const SIGN_ATTEMPTS: usize = 2;

/// After a party reports a failure, how long the coordinator waits for the other
/// participants' reports before deciding whom to blame. Parties that fail for a common
/// reason (a set-up error, a coordinator fault) all report within this window; parties
/// waiting on a misbehaving peer stay silent.
const FAILURE_GRACE: Duration = Duration::from_secs(1);

/// A failure a party reported.
#[derive(Clone, Debug)]
struct Reported {
    seat: u16,
    reason: String,
    culprits: Vec<u16>,
    kind: FailureKind,
}

fn session_id() -> [u8; 32] {
    let mut id = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut id);
    id
}

fn protocol_error(reason: impl Into<String>, culprits: Vec<u16>) -> SignerError {
    SignerError::ProtocolFailed {
        reason: reason.into(),
        culprits,
    }
}

fn custody_unavailable(party: u16, reason: &str) -> SignerError {
    SignerError::Custody(CustodyError::Unavailable(format!(
        "party {party}: {reason}"
    )))
}

/// The open sessions of one run, with a merged inbound stream tagged by seat.
struct Run {
    participants: Vec<u16>,
    to_parties: Vec<mpsc::Sender<WireMessage>>,
    events: mpsc::Receiver<(u16, Option<PartyEvent>)>,
    deadline: tokio::time::Instant,
}

impl Run {
    fn pool_index(&self, seat: u16) -> u16 {
        self.participants
            .get(usize::from(seat))
            .copied()
            .unwrap_or(u16::MAX)
    }

    fn blame(&self, seats: &[u16]) -> Vec<u16> {
        seats.iter().map(|&seat| self.pool_index(seat)).collect()
    }

    async fn send(&self, seat: u16, message: WireMessage) -> Result<(), SignerError> {
        let sender = self
            .to_parties
            .get(usize::from(seat))
            .ok_or_else(|| protocol_error(format!("no seat {seat}"), vec![]))?;
        sender
            .send(message)
            .await
            .map_err(|_| protocol_error("party left the session", self.blame(&[seat])))
    }

    /// Routes a party's message to its recipients. Returns the message when it is addressed
    /// to the coordinator.
    async fn route(
        &self,
        seat: u16,
        message: WireMessage,
    ) -> Result<Option<WireMessage>, SignerError> {
        if message.from != Some(seat) {
            return Err(protocol_error(
                "party sent a message under another sender",
                self.blame(&[seat]),
            ));
        }
        let size = u16::try_from(self.participants.len()).unwrap_or(u16::MAX);
        match message.route {
            // A recipient that already left cannot be blamed here: its own failure report
            // (or its closed stream) arrives through `events` and names the right culprit.
            Route::Broadcast => {
                for other in (0..size).filter(|&other| other != seat) {
                    let _ = self.send(other, message.clone()).await;
                }
                Ok(None)
            }
            Route::Party(to) if to < size && to != seat => {
                let _ = self.send(to, message).await;
                Ok(None)
            }
            Route::Party(to) => Err(protocol_error(
                format!("message to invalid seat {to}"),
                self.blame(&[seat]),
            )),
            Route::Coordinator => Ok(Some(message)),
        }
    }

    /// The error a party's failure report turns into: custody outages and refusals blame
    /// nobody; a protocol failure blames the culprits the party named (itself if none).
    fn failure(
        &self,
        seat: u16,
        reason: String,
        culprits: Vec<u16>,
        kind: FailureKind,
    ) -> SignerError {
        let party = self.pool_index(seat);
        match kind {
            FailureKind::CustodyUnavailable => custody_unavailable(party, &reason),
            FailureKind::Refused => {
                protocol_error(format!("party {party} refused: {reason}"), vec![])
            }
            FailureKind::Protocol => {
                let culprits = if culprits.is_empty() {
                    vec![seat]
                } else {
                    culprits
                };
                protocol_error(
                    format!("party {party} aborted: {reason}"),
                    self.blame(&culprits),
                )
            }
        }
    }

    /// Decides what a session's failure means, starting from the first failure reported:
    /// waits (at most `FAILURE_GRACE`, never past the deadline) for every other seat that is
    /// still running (`running(seat)`) to report too. When every participant failed and
    /// none named a culprit, the fault is common to all (a set-up error, a protocol or
    /// coordinator fault): nobody is blamed, so no healthy party's breaker moves and no
    /// retry leaves a healthy party out. Otherwise the first report decides, as in
    /// [`Run::failure`].
    async fn settle(&mut self, first: Reported, running: impl Fn(u16) -> bool) -> SignerError {
        let size = self.participants.len();
        let mut reports: Vec<Option<Reported>> = vec![None; size];
        let mut left = vec![false; size];
        let first_seat = usize::from(first.seat);
        if let Some(slot) = reports.get_mut(first_seat) {
            *slot = Some(first.clone());
        }
        let grace = (tokio::time::Instant::now() + FAILURE_GRACE).min(self.deadline);
        let awaited = |reports: &[Option<Reported>], left: &[bool]| {
            (0..size).any(|seat| {
                let s = u16::try_from(seat).unwrap_or(u16::MAX);
                running(s)
                    && reports.get(seat).is_some_and(Option::is_none)
                    && !left.get(seat).copied().unwrap_or(true)
            })
        };
        while awaited(&reports, &left) {
            match tokio::time::timeout_at(grace, self.events.recv()).await {
                Ok(Some((
                    seat,
                    Some(PartyEvent::Failed {
                        reason,
                        culprits,
                        kind,
                    }),
                ))) => {
                    if let Some(slot) = reports.get_mut(usize::from(seat)) {
                        slot.get_or_insert(Reported {
                            seat,
                            reason,
                            culprits,
                            kind,
                        });
                    }
                }
                Ok(Some((seat, None))) => {
                    if let Some(flag) = left.get_mut(usize::from(seat)) {
                        *flag = true;
                    }
                }
                // Messages and outputs of a failed session are of no use.
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let everyone_failed = reports.iter().all(Option::is_some);
        let nobody_named = reports
            .iter()
            .flatten()
            .all(|report| report.culprits.is_empty());
        if first.kind == FailureKind::Protocol && everyone_failed && nobody_named {
            let party = self.pool_index(first.seat);
            let same = reports
                .iter()
                .flatten()
                .all(|report| report.reason == first.reason);
            let how = if same { "the same way" } else { "at once" };
            return protocol_error(
                format!(
                    "every participant failed {how}, so no party is blamed (party {party}: {})",
                    first.reason
                ),
                vec![],
            );
        }
        self.failure(first.seat, first.reason, first.culprits, first.kind)
    }

    /// The next event, or a timeout error blaming the seats in `pending` at the deadline.
    async fn next_event(
        &mut self,
        pending: impl Fn(u16) -> bool,
    ) -> Result<(u16, Option<PartyEvent>), SignerError> {
        match tokio::time::timeout_at(self.deadline, self.events.recv()).await {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(protocol_error("all parties left the session", vec![])),
            Err(_) => {
                let size = u16::try_from(self.participants.len()).unwrap_or(u16::MAX);
                let late: Vec<u16> = (0..size).filter(|&seat| pending(seat)).collect();
                Err(SignerError::ProtocolFailed {
                    reason: "session timed out".into(),
                    culprits: self.blame(&late),
                })
            }
        }
    }

    /// Relays messages until every seat has an output; for the coordinator-addressed
    /// messages, calls `on_coordinator_message`.
    async fn drive<F>(&mut self, mut on_coordinator_message: F) -> Result<Vec<Vec<u8>>, SignerError>
    where
        F: FnMut(u16, WireMessage) -> Result<(), SignerError>,
    {
        let mut outputs: Vec<Option<Vec<u8>>> = vec![None; self.participants.len()];
        while outputs.iter().any(Option::is_none) {
            let (seat, event) = {
                let outputs = &outputs;
                self.next_event(|seat| outputs.get(usize::from(seat)).is_some_and(Option::is_none))
                    .await?
            };
            match event {
                Some(PartyEvent::Message(message)) => {
                    if let Some(message) = self.route(seat, message).await? {
                        on_coordinator_message(seat, message)?;
                    }
                }
                Some(PartyEvent::Output(bytes)) => {
                    if let Some(slot) = outputs.get_mut(usize::from(seat)) {
                        *slot = Some(bytes);
                    }
                }
                Some(PartyEvent::Failed {
                    reason,
                    culprits,
                    kind,
                }) => {
                    let first = Reported {
                        seat,
                        reason,
                        culprits,
                        kind,
                    };
                    let outputs = &outputs;
                    let running =
                        |seat: u16| outputs.get(usize::from(seat)).is_some_and(Option::is_none);
                    return Err(self.settle(first, running).await);
                }
                None => {
                    if outputs.get(usize::from(seat)).is_some_and(Option::is_none) {
                        return Err(protocol_error(
                            "party left the session before finishing",
                            self.blame(&[seat]),
                        ));
                    }
                }
            }
        }
        Ok(outputs.into_iter().flatten().collect())
    }
}

impl Coordinator {
    pub fn new(
        config: CoordinatorConfig,
        links: Vec<Arc<dyn PartyLink>>,
        trust: CoordinatorTrust,
    ) -> Self {
        let health = PoolHealth::new(u16::try_from(links.len()).unwrap_or(u16::MAX));
        Self {
            config,
            trust,
            links,
            health,
            metrics: PoolMetrics::default(),
            live: std::sync::atomic::AtomicUsize::new(0),
            state: Mutex::new(State {
                detail: "starting".into(),
                ..State::default()
            }),
            aux_lock: tokio::sync::Mutex::new(()),
            load_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> Option<T> {
        self.state.lock().ok().map(|mut state| f(&mut state))
    }

    /// Signs the authorization for a session and opens it at every participant. Every event
    /// a party reports is checked against its pinned identity key before it is used.
    async fn open(
        &self,
        participants: Vec<u16>,
        kind: SessionKind,
        timeout: Duration,
        quorum: Option<SigningQuorum>,
    ) -> Result<Run, SignerError> {
        let session_id = session_id();
        let lifetime = (timeout.as_secs() + 30).min(secure::MAX_AUTHORIZATION_SECS);
        let start = SessionStart {
            session_id,
            participants: participants.clone(),
            kind,
            expires_at: secure::now_unix() + lifetime,
            quorum,
        };
        let signed = secure::sign_start(&start, &self.trust.authority)?;
        let (merged_tx, events) = mpsc::channel(256);
        let mut to_parties = Vec::with_capacity(participants.len());
        for (seat, &index) in participants.iter().enumerate() {
            let link = self
                .links
                .get(usize::from(index))
                .ok_or_else(|| SignerError::Bug(format!("no party {index}")))?;
            let key = *self
                .trust
                .parties
                .get(usize::from(index))
                .ok_or_else(|| SignerError::Bug(format!("no pinned key for party {index}")))?;
            let PartySession {
                to_party,
                mut from_party,
            } = link.open(signed.clone()).await.map_err(|error| {
                self.health.record_failure(index);
                protocol_error(
                    format!("party {index} is unreachable: {error}"),
                    vec![index],
                )
            })?;
            to_parties.push(to_party);
            let merged = merged_tx.clone();
            let seat = u16::try_from(seat).unwrap_or(u16::MAX);
            let mut verifier = EventVerifier::new(key, session_id, index);
            tokio::spawn(async move {
                while let Some(signed) = from_party.recv().await {
                    let (event, rejected) = match verifier.verify(&signed) {
                        Ok(event) => (event, false),
                        // Nothing after an unverifiable event from this party is trusted.
                        Err(reason) => (
                            PartyEvent::Failed {
                                reason: format!("event rejected: {reason}"),
                                culprits: vec![seat],
                                kind: FailureKind::Protocol,
                            },
                            true,
                        ),
                    };
                    if merged.send((seat, Some(event))).await.is_err() || rejected {
                        return;
                    }
                }
                let _ = merged.send((seat, None)).await;
            });
        }
        Ok(Run {
            participants,
            to_parties,
            events,
            deadline: tokio::time::Instant::now() + timeout,
        })
    }

    /// Records the outcome of a session in the parties' health.
    fn record_outcome<T>(
        &self,
        participants: &[u16],
        kind: &'static str,
        started: Instant,
        result: &Result<T, SignerError>,
    ) {
        match result {
            Ok(_) => {
                let took = started.elapsed();
                self.health.record_session(kind, took);
                for &index in participants {
                    self.health.record_success(index, took);
                }
            }
            Err(SignerError::ProtocolFailed { culprits, .. }) => {
                for &index in culprits {
                    self.health.record_failure(index);
                }
            }
            Err(SignerError::Custody(CustodyError::Unavailable(_))) | Err(_) => {}
        }
    }

    async fn relay(
        &self,
        participants: Vec<u16>,
        kind: SessionKind,
        ceiling: Duration,
    ) -> Result<Vec<Vec<u8>>, SignerError> {
        self.relay_for(participants, kind, ceiling, None).await
    }

    /// Like `relay`, with a policy's signing quorum bound into the authorization.
    async fn relay_for(
        &self,
        participants: Vec<u16>,
        kind: SessionKind,
        ceiling: Duration,
        quorum: Option<SigningQuorum>,
    ) -> Result<Vec<Vec<u8>>, SignerError> {
        let name = kind.name();
        // Latency is observed per kind, mostly from `t`-party sessions; a larger signing
        // session (a policy quorum) is slower, so it gets the full ceiling rather than a
        // timeout that would fail it at every party.
        let larger_than_t = participants.len() > usize::from(self.config.threshold.t());
        let timeout = if kind.is_signing() && larger_than_t {
            ceiling
        } else {
            self.health.timeout(name, ceiling)
        };
        let started = Instant::now();
        let result = async {
            let mut run = self
                .open(participants.clone(), kind, timeout, quorum)
                .await?;
            run.drive(|seat, _| {
                Err(protocol_error(
                    "unexpected message to the coordinator",
                    vec![seat],
                ))
            })
            .await
        }
        .await;
        self.record_outcome(&participants, name, started, &result);
        result
    }

    /// The health of every party (breaker state, score, latency).
    pub fn party_health(&self) -> Vec<MemberHealth> {
        self.health.snapshot()
    }

    /// Runs a key-encryption-key rotation pass at party `index` (an authorized session).
    pub async fn rotate_keys(
        &self,
        index: u16,
        new_version: bool,
    ) -> Result<crate::RotationReport, SignerError> {
        let outputs = self
            .relay(
                vec![index],
                SessionKind::RotateKeys { new_version },
                Duration::from_secs(3600),
            )
            .await?;
        let output = outputs
            .first()
            .ok_or_else(|| SignerError::Bug("no rotation report".into()))?;
        serde_json::from_slice(output)
            .map_err(|e| SignerError::Bug(format!("rotation report: {e}")))
    }

    /// The pool's signing threshold.
    pub fn threshold(&self) -> Threshold {
        self.config.threshold
    }

    /// Pool size `n`.
    pub fn parties(&self) -> u16 {
        self.config.threshold.n()
    }

    /// Every party, for sessions that need all of them (aux info, key generation); refused
    /// at once when a party's breaker is open.
    fn all_parties(&self) -> Result<Vec<u16>, SignerError> {
        let all: Vec<u16> = (0..self.config.threshold.n()).collect();
        let available = all.iter().filter(|&&i| self.health.available(i)).count();
        if available < all.len() {
            return Err(SignerError::Unavailable {
                available: u16::try_from(available).unwrap_or(0),
                needed: self.config.threshold.n(),
            });
        }
        Ok(all)
    }

    /// A signer set of `t` parties among those whose breakers allow it (never one in
    /// `exclude`), rotating over the healthy ones to spread load.
    fn signer_set(&self, exclude: &[u16]) -> Result<Vec<u16>, SignerError> {
        self.signer_set_sized(exclude, usize::from(self.config.threshold.t()))
    }

    /// `size` available parties (never one in `exclude`).
    fn signer_set_sized(&self, exclude: &[u16], size: usize) -> Result<Vec<u16>, SignerError> {
        let candidates: Vec<u16> = (0..self.config.threshold.n())
            .filter(|i| !exclude.contains(i) && self.health.available(*i))
            .collect();
        if candidates.len() < size {
            return Err(SignerError::Unavailable {
                available: u16::try_from(candidates.len()).unwrap_or(0),
                needed: u16::try_from(size).unwrap_or(u16::MAX),
            });
        }
        Ok(self.pick(candidates, size))
    }

    /// How many parties sign a request: its policy quorum, never fewer than `t`.
    fn signing_size(&self, quorum: Option<&SigningQuorum>) -> Result<usize, SignerError> {
        let t = self.config.threshold.t();
        let size = quorum.map_or(t, |q| q.signing_quorum.max(t));
        if size > self.config.threshold.n() {
            return Err(SignerError::Unavailable {
                available: self.config.threshold.n(),
                needed: size,
            });
        }
        Ok(usize::from(size))
    }

    /// `t` of `candidates` (at least `t` of them): healthier parties first, rotating among
    /// equally healthy ones to spread load; sorted.
    fn pick(&self, mut candidates: Vec<u16>, t: usize) -> Vec<u16> {
        // Healthier parties first; rotation spreads load among equally healthy ones.
        let start = self
            .with_state(|state| {
                state.rotation = state.rotation.wrapping_add(1);
                state.rotation
            })
            .unwrap_or(0);
        let len = candidates.len();
        candidates.rotate_left(start % len);
        // Each score once; scores within 0.1 count as equal, and the stable sort keeps the
        // rotation among them.
        let mut ranked: Vec<(i64, u16)> = candidates
            .into_iter()
            .map(|party| (-((self.health.score(party) * 10.0).round() as i64), party))
            .collect();
        ranked.sort_by_key(|(rank, _)| *rank);
        let mut set: Vec<u16> = ranked.into_iter().take(t).map(|(_, party)| party).collect();
        set.sort_unstable();
        set
    }

    /// Refreshes readiness from the parties' statuses. Returns whether auxiliary info should
    /// be generated now (every party has primes, none has aux info).
    pub async fn refresh_status(&self) -> bool {
        let mut statuses = Vec::new();
        let mut epochs = Vec::new();
        for link in &self.links {
            let index = link.index();
            // An open breaker is left alone until its cooldown ends; then this poll is the
            // half-open probe.
            if !self.health.available(index) {
                continue;
            }
            let started = Instant::now();
            match tokio::time::timeout(Duration::from_secs(5), link.status()).await {
                Ok(Ok(status)) => {
                    self.health.record_success(index, started.elapsed());
                    epochs.push((index, status.epoch));
                    statuses.push(status);
                }
                Ok(Err(error)) => {
                    tracing::debug!(party_index = index, %error, "party status failed");
                    self.health.record_failure(index);
                }
                Err(_) => self.health.record_failure(index),
            }
        }
        self.note_epochs(&epochs).await;
        let parties_ready = u16::try_from(statuses.len()).unwrap_or(0);
        let all_answer = statuses.len() == self.links.len();
        let all_aux = all_answer && statuses.iter().all(|s| s.aux_ready);
        let none_aux = statuses.iter().all(|s| !s.aux_ready);
        let all_primes = all_answer && statuses.iter().all(|s| s.primes_available > 0);
        let slowest_prime_left = statuses
            .iter()
            .filter(|s| s.primes_available == 0)
            .map(|s| {
                PRIME_SET_ESTIMATE_SECS.saturating_sub(s.generating_primes_for_secs.unwrap_or(0))
            })
            .max();
        let (detail, eta) = if all_aux {
            ("ready".to_string(), None)
        } else if all_primes && none_aux {
            (
                "generating auxiliary info (Paillier keys) for the party set".to_string(),
                Some(AUX_INFO_ESTIMATE_SECS),
            )
        } else if !none_aux {
            (
                "some parties have auxiliary info and some do not; the party set changed"
                    .to_string(),
                None,
            )
        } else {
            let ready = statuses.iter().filter(|s| s.primes_available > 0).count();
            (
                format!(
                    "generating Paillier primes: {ready} of {} parties done",
                    self.links.len()
                ),
                Some(
                    slowest_prime_left
                        .unwrap_or(PRIME_SET_ESTIMATE_SECS)
                        .max(10)
                        + AUX_INFO_ESTIMATE_SECS,
                ),
            )
        };
        self.with_state(|state| {
            state.ecdsa_ready = all_aux;
            state.parties_ready = parties_ready;
            state.detail = detail;
            state.eta_secs = eta;
        });
        !all_aux && all_primes && none_aux
    }

    /// Refreshes readiness and runs auxiliary-info generation (a minute or more) when due.
    pub async fn upkeep_once(&self) {
        if self.refresh_status().await {
            self.run_aux_info().await;
        }
    }

    async fn run_aux_info(&self) {
        let Ok(_guard) = self.aux_lock.try_lock() else {
            return;
        };
        tracing::info!("running auxiliary-info generation across the pool");
        let started = std::time::Instant::now();
        let result = match self.all_parties() {
            Ok(all) => {
                self.relay(all, SessionKind::EcdsaAuxInfo, self.config.aux_timeout)
                    .await
            }
            Err(error) => Err(error),
        };
        match result {
            Ok(_) => {
                tracing::info!(
                    seconds = started.elapsed().as_secs_f64(),
                    "auxiliary info ready"
                );
                self.with_state(|state| {
                    state.ecdsa_ready = true;
                    state.detail = "ready".into();
                    state.eta_secs = None;
                });
            }
            Err(error) => tracing::error!(%error, "auxiliary-info generation failed"),
        }
    }

    /// Background upkeep: readiness, aux info, the presignature index, refills. One heavy job
    /// at a time; refills wait while live requests run and take at most
    /// `refill_time_share` of wall time, so they never starve live requests.
    pub fn spawn_upkeep(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let coordinator = self.clone();
        tokio::spawn(async move {
            loop {
                coordinator.upkeep_once().await;
                for _ in 0..16 {
                    if !coordinator.refill_nonces_once().await {
                        break;
                    }
                }
                let ready = coordinator.with_state(|s| s.ecdsa_ready).unwrap_or(false);
                if !(ready && coordinator.load_presignatures().await) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                let started = Instant::now();
                if !coordinator.wait_for_quiet(Duration::from_secs(5)).await {
                    continue;
                }
                if coordinator.refill_presignatures_once().await {
                    let share = coordinator.config.refill_time_share.clamp(0.05, 1.0);
                    let pause = started.elapsed().mul_f64(1.0 / share - 1.0);
                    tokio::time::sleep(pause.min(Duration::from_secs(30))).await;
                } else {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        })
    }

    /// Waits (up to `limit`) until no live request runs; whether it is quiet.
    async fn wait_for_quiet(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.live.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Pool counters and histograms (for `/metrics`).
    pub fn metrics(&self) -> &PoolMetrics {
        &self.metrics
    }

    /// Signs `digest`. A payload with a preimage (`preimage`, which hashes to `digest`) may
    /// use a presignature; a raw digest is always signed interactively, since a digest chosen
    /// with a presignature's public data in hand allows forgeries (docs/adr/0002).
    async fn sign_ecdsa(
        &self,
        request: &SignRequest,
        digest: [u8; 32],
        preimage: Option<Preimage>,
        public_key: &[u8],
    ) -> Result<([u8; 64], Vec<u16>), SignerError> {
        let tenant = request.tenant_id.to_string();
        let key_id = request.key_id.to_string();
        self.track_key(&tenant, &key_id);
        let size = self.signing_size(request.quorum.as_ref())?;
        let mut excluded = Vec::new();
        // Presignatures are made for `t` signers; a larger policy quorum signs interactively.
        let presigned = match &preimage {
            Some(preimage) if size == usize::from(self.config.threshold.t()) => self
                .take_presignature(&tenant, &key_id)
                .map(|entry| (entry, preimage)),
            _ => None,
        };
        if let Some((entry, preimage)) = presigned {
            let kind = SessionKind::EcdsaSignPresigned {
                tenant: tenant.clone(),
                key_id: key_id.clone(),
                presignature_id: entry.id.clone(),
                digest,
                preimage: Some(preimage.clone()),
            };
            match self
                .relay_for(
                    entry.signers.clone(),
                    kind,
                    self.config.session_timeout,
                    request.quorum.clone(),
                )
                .await
            {
                Ok(partials) => {
                    PoolMetrics::add(&self.metrics.presignature_hits, 1);
                    return ecdsa::combine_partials(
                        &partials,
                        &entry.signers,
                        preimage,
                        public_key,
                    )
                    .map(|signature| (signature, entry.signers));
                }
                Err(error @ SignerError::Custody(_)) => return Err(error),
                // The presignature is spent either way; fall back to interactive signing.
                Err(error) => {
                    tracing::warn!(%error, "presigned signing failed; signing interactively");
                    // A signer that restarted no longer holds this presignature or any other
                    // made before: drop them all now, not one failed signing at a time.
                    self.check_epochs(&entry.signers).await;
                    if let SignerError::ProtocolFailed { culprits, .. } = error {
                        excluded.extend(culprits);
                    }
                }
            }
        }
        PoolMetrics::add(&self.metrics.presignature_misses, 1);
        self.with_retry(excluded, size, |signers: Vec<u16>| {
            let kind = SessionKind::EcdsaSign {
                tenant: tenant.clone(),
                key_id: key_id.clone(),
                digest,
                preimage: preimage.clone(),
                signers_at_keygen: signers.clone(),
            };
            async move {
                let outputs = self
                    .relay_for(
                        signers.clone(),
                        kind,
                        self.config.session_timeout,
                        request.quorum.clone(),
                    )
                    .await?;
                let first = outputs
                    .first()
                    .ok_or_else(|| SignerError::Bug("no signature output".into()))?;
                ecdsa::verify_rs(first, digest, public_key).map(|signature| (signature, signers))
            }
        })
        .await
    }

    /// Runs `attempt` with a signer set of `size`; when it fails naming culprits, runs it once
    /// more with a set that leaves them (and those in `excluded`) out.
    async fn with_retry<T, F, Fut>(
        &self,
        mut excluded: Vec<u16>,
        size: usize,
        attempt: F,
    ) -> Result<T, SignerError>
    where
        F: Fn(Vec<u16>) -> Fut,
        Fut: Future<Output = Result<T, SignerError>>,
    {
        let mut last_error = None;
        for _ in 0..SIGN_ATTEMPTS {
            let signers = match self.signer_set_sized(&excluded, size) {
                Ok(signers) => signers,
                Err(unavailable) => return Err(last_error.unwrap_or(unavailable)),
            };
            match attempt(signers).await {
                Ok(value) => return Ok(value),
                Err(SignerError::ProtocolFailed { reason, culprits }) if !culprits.is_empty() => {
                    tracing::warn!(%reason, ?culprits, "signing failed; retrying without the culprits");
                    excluded.extend(culprits.iter().copied());
                    last_error = Some(SignerError::ProtocolFailed { reason, culprits });
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| SignerError::Bug("no signing attempt".into())))
    }

    async fn sign_eddsa(
        &self,
        request: &SignRequest,
        message: Vec<u8>,
    ) -> Result<([u8; 64], Vec<u16>), SignerError> {
        let public_package = frost::keys::PublicKeyPackage::deserialize(&request.public_data)
            .map_err(|e| SignerError::Bug(format!("stored public key package: {e}")))?;
        let tenant = request.tenant_id.to_string();
        let key_id = request.key_id.to_string();
        self.track_frost_key(&tenant, &key_id);
        let size = self.signing_size(request.quorum.as_ref())?;
        let mut excluded = Vec::new();
        if let Some((signers, nonces)) = self.take_nonces(&tenant, &key_id, &[], size) {
            match self
                .sign_eddsa_precommitted(
                    request,
                    &message,
                    &public_package,
                    signers.clone(),
                    nonces,
                )
                .await
            {
                Ok(signature) => {
                    PoolMetrics::add(&self.metrics.nonce_hits, 1);
                    return Ok((signature, signers));
                }
                Err(error @ SignerError::Custody(_)) => return Err(error),
                Err(error) => {
                    tracing::warn!(%error, "one-round FROST signing failed; running both rounds");
                    self.check_epochs(&signers).await;
                    if let SignerError::ProtocolFailed { culprits, .. } = error {
                        excluded.extend(culprits);
                    }
                }
            }
        }
        PoolMetrics::add(&self.metrics.nonce_misses, 1);
        let (message, public_package) = (&message, &public_package);
        self.with_retry(excluded, size, |signers: Vec<u16>| async move {
            let started = Instant::now();
            let result = self
                .sign_eddsa_once(request, message, public_package, signers.clone())
                .await;
            self.record_outcome(&signers, "eddsa_sign", started, &result);
            result.map(|signature| (signature, signers))
        })
        .await
    }

    /// One round: the package is built from precommitted commitments; each party consumes
    /// its nonce and returns its share.
    async fn sign_eddsa_precommitted(
        &self,
        request: &SignRequest,
        message: &[u8],
        public_package: &frost::keys::PublicKeyPackage,
        signers: Vec<u16>,
        nonces: Vec<NonceEntry>,
    ) -> Result<[u8; 64], SignerError> {
        let mut commitments = BTreeMap::new();
        for (&party, entry) in signers.iter().zip(&nonces) {
            let parsed = frost::round1::SigningCommitments::deserialize(&entry.commitments)
                .map_err(|e| protocol_error(format!("stored commitments: {e}"), vec![party]))?;
            commitments.insert(
                eddsa::identifier(party).map_err(|f| SignerError::Bug(f.reason))?,
                parsed,
            );
        }
        let package = frost::SigningPackage::new(commitments, message);
        let kind = SessionKind::EddsaSignPrecommitted {
            tenant: request.tenant_id.to_string(),
            key_id: request.key_id.to_string(),
            message: message.to_vec(),
            package: package
                .serialize()
                .map_err(|e| SignerError::Bug(format!("serializing signing package: {e}")))?,
            nonce_ids: nonces.into_iter().map(|entry| entry.id).collect(),
        };
        let started = Instant::now();
        let outputs = self
            .relay_for(
                signers.clone(),
                kind,
                self.config.session_timeout,
                request.quorum.clone(),
            )
            .await?;
        let result = self.aggregate_frost(&package, &signers, &outputs, public_package, message);
        self.record_outcome(&signers, "eddsa_sign_precommitted", started, &result);
        result
    }

    /// Aggregates FROST signature shares (`outputs[j]` from pool index `signers[j]`), naming
    /// any party whose share is invalid, and verifies the signature.
    fn aggregate_frost(
        &self,
        package: &frost::SigningPackage,
        signers: &[u16],
        outputs: &[Vec<u8>],
        public_package: &frost::keys::PublicKeyPackage,
        message: &[u8],
    ) -> Result<[u8; 64], SignerError> {
        let mut shares = BTreeMap::new();
        for (&party, bytes) in signers.iter().zip(outputs) {
            let share = frost::round2::SignatureShare::deserialize(bytes).map_err(|e| {
                protocol_error(format!("undecodable signature share: {e}"), vec![party])
            })?;
            shares.insert(
                eddsa::identifier(party).map_err(|f| SignerError::Bug(f.reason))?,
                share,
            );
        }
        let signature =
            frost::aggregate(package, &shares, public_package).map_err(|e| match e {
                frost::Error::InvalidSignatureShare { culprits } => {
                    let parties: Vec<u16> = culprits
                        .into_iter()
                        .filter_map(|id| {
                            eddsa::identifier_to_seat(id, self.config.threshold.n()).ok()
                        })
                        .collect();
                    protocol_error("invalid signature share", parties)
                }
                other => protocol_error(format!("aggregation: {other}"), vec![]),
            })?;
        public_package
            .verifying_key()
            .verify(message, &signature)
            .map_err(|_| protocol_error("aggregated signature does not verify", vec![]))?;
        let bytes = signature
            .serialize()
            .map_err(|e| SignerError::Bug(format!("serializing signature: {e}")))?;
        <[u8; 64]>::try_from(bytes.as_slice())
            .map_err(|_| SignerError::Bug("signature is not 64 bytes".into()))
    }

    async fn sign_eddsa_once(
        &self,
        request: &SignRequest,
        message: &[u8],
        public_package: &frost::keys::PublicKeyPackage,
        signers: Vec<u16>,
    ) -> Result<[u8; 64], SignerError> {
        let kind = SessionKind::EddsaSign {
            tenant: request.tenant_id.to_string(),
            key_id: request.key_id.to_string(),
            message: message.to_vec(),
        };
        let timeout = if signers.len() > usize::from(self.config.threshold.t()) {
            self.config.session_timeout
        } else {
            self.health
                .timeout("eddsa_sign", self.config.session_timeout)
        };
        let mut run = self
            .open(signers.clone(), kind, timeout, request.quorum.clone())
            .await?;
        let size = u16::try_from(signers.len()).unwrap_or(u16::MAX);
        // FROST identifiers were fixed at keygen, where every party sat at its pool index.
        let to_identifier =
            |pool_index: u16| eddsa::identifier(pool_index).map_err(|f| SignerError::Bug(f.reason));

        // Round 1: collect every signer's commitments.
        let mut commitments = BTreeMap::new();
        let mut committed = vec![false; signers.len()];
        while commitments.len() < signers.len() {
            let (seat, event) = {
                let committed = &committed;
                run.next_event(|seat| !committed.get(usize::from(seat)).copied().unwrap_or(true))
                    .await?
            };
            match event {
                Some(PartyEvent::Message(message))
                    if message.route == Route::Coordinator && message.from == Some(seat) =>
                {
                    let parsed = frost::round1::SigningCommitments::deserialize(&message.payload)
                        .map_err(|e| {
                        protocol_error(format!("undecodable commitments: {e}"), run.blame(&[seat]))
                    })?;
                    if commitments
                        .insert(to_identifier(run.pool_index(seat))?, parsed)
                        .is_some()
                    {
                        return Err(protocol_error("sent commitments twice", run.blame(&[seat])));
                    }
                    if let Some(flag) = committed.get_mut(usize::from(seat)) {
                        *flag = true;
                    }
                }
                Some(PartyEvent::Failed {
                    reason,
                    culprits,
                    kind,
                }) => {
                    let first = Reported {
                        seat,
                        reason,
                        culprits,
                        kind,
                    };
                    return Err(run.settle(first, |_| true).await);
                }
                _ => {
                    return Err(protocol_error(
                        "unexpected event in round 1",
                        run.blame(&[seat]),
                    ));
                }
            }
        }

        // Round 2: send the signing package, collect shares, aggregate (with cheater detection).
        let package = frost::SigningPackage::new(commitments, message);
        let package_bytes = package
            .serialize()
            .map_err(|e| SignerError::Bug(format!("serializing signing package: {e}")))?;
        for seat in 0..size {
            run.send(
                seat,
                WireMessage {
                    from: None,
                    route: Route::Party(seat),
                    payload: package_bytes.clone(),
                },
            )
            .await?;
        }
        let outputs = run
            .drive(|seat, _| Err(protocol_error("unexpected message in round 2", vec![seat])))
            .await?;
        self.aggregate_frost(&package, &signers, &outputs, public_package, message)
    }
}

#[async_trait]
impl SignerPool for Coordinator {
    fn status(&self) -> PoolStatus {
        self.with_state(|state| PoolStatus {
            parties_total: self.config.threshold.n(),
            parties_ready: state.parties_ready,
            ecdsa_ready: state.ecdsa_ready,
            eddsa_ready: state.parties_ready == self.config.threshold.n(),
            detail: state.detail.clone(),
            ecdsa_eta_secs: state.eta_secs,
        })
        .unwrap_or(PoolStatus {
            parties_total: self.config.threshold.n(),
            parties_ready: 0,
            ecdsa_ready: false,
            eddsa_ready: false,
            detail: "state unavailable".into(),
            ecdsa_eta_secs: None,
        })
    }

    async fn generate_key(&self, request: KeyGenRequest) -> Result<GeneratedKey, SignerError> {
        let _live = LiveGuard::new(&self.live);
        let status = self.status();
        let tenant = request.tenant_id.to_string();
        let key_id = request.key_id.to_string();
        let threshold = self.config.threshold.t();
        let kind = match request.scheme {
            Scheme::EcdsaSecp256k1 => {
                if !status.ecdsa_ready {
                    return Err(SignerError::Warming {
                        detail: status.detail,
                        retry_after_secs: status.ecdsa_eta_secs.unwrap_or(30).clamp(5, 600),
                    });
                }
                SessionKind::EcdsaKeygen {
                    tenant: tenant.clone(),
                    key_id: key_id.clone(),
                    threshold,
                    protection: request.protection.clone(),
                }
            }
            Scheme::FrostEd25519 => SessionKind::EddsaKeygen {
                tenant: tenant.clone(),
                key_id: key_id.clone(),
                threshold,
                protection: request.protection.clone(),
            },
        };
        let outputs = self
            .relay(self.all_parties()?, kind, self.config.session_timeout)
            .await?;
        let first = outputs
            .first()
            .cloned()
            .ok_or_else(|| SignerError::Bug("no keygen output".into()))?;
        if let Some(seat) = outputs.iter().position(|o| o != &first) {
            return Err(protocol_error(
                "parties disagree on the generated public key",
                vec![u16::try_from(seat).unwrap_or(u16::MAX)],
            ));
        }
        let generated = match request.scheme {
            Scheme::EcdsaSecp256k1 => {
                self.track_key(&tenant, &key_id);
                GeneratedKey {
                    public_key: first,
                    threshold: self.config.threshold,
                    public_data: Vec::new(),
                }
            }
            Scheme::FrostEd25519 => {
                self.track_frost_key(&tenant, &key_id);
                let package = frost::keys::PublicKeyPackage::deserialize(&first)
                    .map_err(|e| SignerError::Bug(format!("public key package: {e}")))?;
                let public_key = package
                    .verifying_key()
                    .serialize()
                    .map_err(|e| SignerError::Bug(format!("verifying key: {e}")))?;
                GeneratedKey {
                    public_key,
                    threshold: self.config.threshold,
                    public_data: first,
                }
            }
        };
        Ok(generated)
    }

    async fn sign(&self, request: SignRequest) -> Result<PoolSignature, SignerError> {
        let _live = LiveGuard::new(&self.live);
        let started = Instant::now();
        let result = self.sign_request(request).await;
        match result.as_ref().map(|signed| &signed.output) {
            Ok(SignatureOutput::Ecdsa { .. }) => self
                .metrics
                .ecdsa_sign_seconds
                .observe(started.elapsed().as_secs_f64()),
            Ok(SignatureOutput::Ed25519(_)) => self
                .metrics
                .eddsa_sign_seconds
                .observe(started.elapsed().as_secs_f64()),
            Err(_) => PoolMetrics::add(&self.metrics.sign_failures, 1),
        }
        result
    }
}

impl Coordinator {
    async fn sign_request(&self, request: SignRequest) -> Result<PoolSignature, SignerError> {
        match (request.scheme, &request.payload) {
            (Scheme::EcdsaSecp256k1, SignPayload::Message(_)) => Err(SignerError::Bug(
                "an ECDSA key signs a digest, a personal message, typed data or an EVM \
                 transaction, not raw message bytes"
                    .into(),
            )),
            (Scheme::EcdsaSecp256k1, payload) => {
                let digest = payload
                    .ecdsa_digest()
                    .ok_or_else(|| SignerError::Bug("no ECDSA digest for the payload".into()))?;
                let preimage = Preimage::from_payload(payload);
                let (rs, signers) = self
                    .sign_ecdsa(&request, digest, preimage, &request.public_key)
                    .await?;
                let (r, s) = rs.split_at(32);
                let output = SignatureOutput::Ecdsa {
                    r: r.try_into().map_err(|_| SignerError::Bug("r".into()))?,
                    s: s.try_into().map_err(|_| SignerError::Bug("s".into()))?,
                };
                Ok(PoolSignature::new(output, signers))
            }
            (Scheme::FrostEd25519, SignPayload::Message(message)) => {
                let (signature, signers) = self.sign_eddsa(&request, message.clone()).await?;
                Ok(PoolSignature::new(
                    SignatureOutput::Ed25519(signature),
                    signers,
                ))
            }
            (Scheme::FrostEd25519, payload) => Err(SignerError::Bug(format!(
                "an Ed25519 key signs message bytes; a {} payload is for ECDSA keys",
                payload_kind(payload)
            ))),
        }
    }
}

/// A payload's kind, for errors (never its content).
fn payload_kind(payload: &SignPayload) -> &'static str {
    match payload {
        SignPayload::Digest(_) => "raw digest",
        SignPayload::Message(_) => "message",
        SignPayload::PersonalMessage(_) => "personal message",
        SignPayload::TypedData { .. } => "typed data",
        SignPayload::EvmTransaction(_) => "EVM transaction",
    }
}
