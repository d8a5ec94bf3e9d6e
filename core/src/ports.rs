//! Ports: the traits adapters implement. Use cases hold them as `Arc<dyn Port>`.

use crate::secret::SymmetricKey;
use crate::{Scheme, TenantId, Threshold, WalletId};
use async_trait::async_trait;
use std::fmt;

/// What a data key protects. Bound into the wrapping as authenticated data, so a wrapped key
/// moved to another tenant, key, party or version fails to unwrap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyContext {
    /// Tenant id, or `_pool` for pool-wide material (primes, aux info).
    pub tenant: String,
    /// The key or blob id.
    pub key: String,
    /// The signer party holding it.
    pub party: u16,
    /// Version of the protected record.
    pub version: u32,
}

impl KeyContext {
    /// Canonical bytes used as AEAD associated data.
    pub fn aad(&self) -> Vec<u8> {
        format!(
            "waas/v1|tenant={}|key={}|party={}|version={}",
            self.tenant, self.key, self.party, self.version
        )
        .into_bytes()
    }
}

/// A data key wrapped by a key-encryption key.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WrappedKey {
    /// Which protector wrapped it (`local`, later `aws-kms`, `pkcs11`).
    pub protector: String,
    /// Which version of the KEK wrapped it.
    pub kek_id: String,
    /// The wrapped bytes (ciphertext; safe to store).
    #[serde(with = "hex_bytes")]
    pub bytes: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("protector", &self.protector)
            .field("kek_id", &self.kek_id)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .finish()
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

/// Failures of key protection. Never carries key bytes.
#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    /// The KEK (file, KMS, HSM) cannot be reached or read; retrying later may work.
    #[error("key protection unavailable: {0}")]
    Unavailable(String),
    /// Authentication failed: wrong KEK, wrong context, or tampered ciphertext.
    #[error("integrity check failed for {0}")]
    Integrity(String),
    /// The record was wrapped by a protector this node is not configured with.
    #[error("no protector configured for {0}")]
    UnknownProtector(String),
    #[error("malformed sealed record: {0}")]
    Malformed(String),
}

/// Wraps and unwraps per-record data keys under a key-encryption key (KEK).
#[async_trait]
pub trait KeyProtector: Send + Sync + fmt::Debug {
    /// `local`, `aws-kms`, `pkcs11`.
    fn kind(&self) -> &'static str;
    /// The KEK (version) new wraps use; records wrapped under another one are re-wrapped by a
    /// rotation.
    fn current_kek_id(&self) -> String;
    /// Makes a new KEK version current and returns its id. Earlier versions keep unwrapping
    /// until every record is re-wrapped.
    async fn rotate(&self) -> Result<String, CustodyError> {
        Err(CustodyError::Unavailable(format!(
            "{} KEKs are rotated by configuration: configure the new key and keep the old one \
             readable, then re-wrap",
            self.kind()
        )))
    }
    /// A fresh data key and its wrapped form. The default draws 32 random bytes and wraps
    /// them; a KMS asks the service for both at once (`GenerateDataKey`).
    async fn generate_data_key(
        &self,
        context: &KeyContext,
    ) -> Result<(SymmetricKey, WrappedKey), CustodyError> {
        let mut bytes = [0u8; 32];
        getrandom_fill(&mut bytes)?;
        let data_key = SymmetricKey::from_bytes(bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        let wrapped = self.wrap(&data_key, context).await?;
        Ok((data_key, wrapped))
    }
    async fn wrap(
        &self,
        data_key: &SymmetricKey,
        context: &KeyContext,
    ) -> Result<WrappedKey, CustodyError>;
    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &KeyContext,
    ) -> Result<SymmetricKey, CustodyError>;
}

fn getrandom_fill(bytes: &mut [u8]) -> Result<(), CustodyError> {
    use rand::RngCore;
    rand::rngs::OsRng
        .try_fill_bytes(bytes)
        .map_err(|e| CustodyError::Unavailable(format!("operating-system randomness: {e}")))
}

/// A sealed (encrypted) record in a signer party's own store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    /// `cggmp-key-share`, `frost-key-share`, `paillier-primes`, `aux-info`, ...
    pub kind: String,
    pub id: String,
    /// Owning tenant, or `_pool`.
    pub tenant: String,
    /// The sealed envelope (ciphertext and wrapped data key); never plaintext.
    pub sealed: Vec<u8>,
}

/// Failures of a party's share store.
#[derive(Debug, thiserror::Error)]
#[error("share store: {0}")]
pub struct ShareStoreError(pub String);

/// One signer party's private storage. Each party has its own; no two parties share one.
#[async_trait]
pub trait ShareStore: Send + Sync + fmt::Debug {
    /// Inserts a record; fails if `(kind, id)` exists.
    async fn insert(&self, record: StoredRecord) -> Result<(), ShareStoreError>;
    async fn get(&self, kind: &str, id: &str) -> Result<Option<StoredRecord>, ShareStoreError>;
    /// Ids of every record of a kind, oldest first.
    async fn list_ids(&self, kind: &str) -> Result<Vec<String>, ShareStoreError>;
    /// Replaces a record's sealed bytes if they still equal `expected` (compare-and-swap, so
    /// a record consumed or changed meanwhile is left alone); `true` if replaced.
    async fn replace(
        &self,
        kind: &str,
        id: &str,
        expected: &[u8],
        sealed: Vec<u8>,
    ) -> Result<bool, ShareStoreError>;
    /// Deletes a record; `true` if it existed. Used to consume one-time material.
    async fn delete(&self, kind: &str, id: &str) -> Result<bool, ShareStoreError>;
}

/// Readiness of the signer pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolStatus {
    /// Parties configured / parties answering.
    pub parties_total: u16,
    pub parties_ready: u16,
    /// Whether ECDSA keys can be generated right now (aux info for the party set exists).
    pub ecdsa_ready: bool,
    /// Whether EdDSA keys can be generated right now.
    pub eddsa_ready: bool,
    /// Human-readable progress of background preparation.
    pub detail: String,
    /// Estimated seconds until ECDSA is ready, when it is not.
    pub ecdsa_eta_secs: Option<u64>,
}

/// A request to generate a new threshold key across the pool.
#[derive(Clone, Debug)]
pub struct KeyGenRequest {
    pub tenant_id: TenantId,
    pub key_id: WalletId,
    pub scheme: Scheme,
    /// Key-protection tier the parties seal the shares under (`local`, `aws-kms`, `pkcs11`).
    pub protection: String,
}

/// The public result of a DKG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedKey {
    /// SEC1 compressed point (33 bytes) for ECDSA; 32-byte point for Ed25519.
    pub public_key: Vec<u8>,
    pub threshold: Threshold,
    /// Public data the coordinator needs later (e.g. FROST verifying shares); not secret.
    pub public_data: Vec<u8>,
}

/// What is to be signed.
///
/// Every ECDSA payload but `Digest` carries its preimage: each signer node hashes it
/// itself, so the digest it signs is a hash output nobody chose. Only such payloads may be
/// signed from a presignature; a raw `Digest` is always signed interactively (a chosen
/// digest signed with a presignature whose public data is known allows forgeries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignPayload {
    /// A raw 32-byte digest signed as is (ECDSA only; interactive signing only).
    Digest([u8; 32]),
    /// A message signed as bytes (Ed25519 signs messages, not digests).
    Message(Vec<u8>),
    /// An EIP-191 `personal_sign` message (ECDSA): the digest is
    /// `keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ message)`, recomputed by every
    /// signer node from the message itself.
    PersonalMessage(Vec<u8>),
    /// EIP-712 typed data (ECDSA): the digest is
    /// `keccak256(0x19 ‖ 0x01 ‖ domain_separator ‖ struct_hash)`.
    TypedData {
        domain_separator: [u8; 32],
        struct_hash: [u8; 32],
    },
    /// An unsigned EVM transaction's signing payload (EIP-2718: type byte ‖ RLP fields;
    /// ECDSA): the digest is `keccak256(payload)`.
    EvmTransaction(Vec<u8>),
}

impl SignPayload {
    /// The bytes whose Keccak-256 hash is the ECDSA digest, for payloads that carry a
    /// preimage (`None` for a raw digest and for Ed25519 messages).
    pub fn keccak_preimage(&self) -> Option<Vec<u8>> {
        match self {
            SignPayload::Digest(_) | SignPayload::Message(_) => None,
            SignPayload::PersonalMessage(message) => {
                let mut bytes =
                    format!("\x19Ethereum Signed Message:\n{}", message.len()).into_bytes();
                bytes.extend_from_slice(message);
                Some(bytes)
            }
            SignPayload::TypedData {
                domain_separator,
                struct_hash,
            } => {
                let mut bytes = Vec::with_capacity(66);
                bytes.extend_from_slice(&[0x19, 0x01]);
                bytes.extend_from_slice(domain_separator);
                bytes.extend_from_slice(struct_hash);
                Some(bytes)
            }
            SignPayload::EvmTransaction(payload) => Some(payload.clone()),
        }
    }

    /// The 32-byte ECDSA digest (`None` for Ed25519 messages).
    pub fn ecdsa_digest(&self) -> Option<[u8; 32]> {
        use sha3::{Digest, Keccak256};
        match self {
            SignPayload::Digest(digest) => Some(*digest),
            SignPayload::Message(_) => None,
            _ => self
                .keccak_preimage()
                .map(|preimage| Keccak256::digest(&preimage).into()),
        }
    }
}

/// A request to sign with an existing key.
#[derive(Clone, Debug)]
pub struct SignRequest {
    pub tenant_id: TenantId,
    pub key_id: WalletId,
    pub scheme: Scheme,
    pub payload: SignPayload,
    /// The key's public key, to verify the result before returning it.
    pub public_key: Vec<u8>,
    pub public_data: Vec<u8>,
    /// The policy decision this signature carries out, when one applies: every signer node
    /// checks that at least `signing_quorum` nodes take part. `None`: the key's threshold.
    pub quorum: Option<SigningQuorum>,
}

/// A signing quorum decided by policy, bound into each node's authorization.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SigningQuorum {
    /// Distinct signer nodes that must take part (`t ≤ q ≤ n`).
    pub signing_quorum: u16,
    /// The policy version that decided it.
    pub policy_version: u32,
    /// What was decided (a transaction request id).
    pub reference: String,
}

/// A finished signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureOutput {
    /// Low-s normalized.
    Ecdsa {
        r: [u8; 32],
        s: [u8; 32],
    },
    Ed25519([u8; 64]),
}

/// A signature and the signer nodes that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSignature {
    pub output: SignatureOutput,
    /// Pool indices (0-based, as in the pool's health report) of the nodes that took part,
    /// sorted: the audit trail of "signed by q of n".
    pub signers: Vec<u16>,
}

impl PoolSignature {
    pub fn new(output: SignatureOutput, mut signers: Vec<u16>) -> Self {
        signers.sort_unstable();
        Self { output, signers }
    }
}

/// Failures of the signer pool.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    #[error("signer pool is preparing key material: {detail}")]
    Warming {
        detail: String,
        retry_after_secs: u64,
    },
    #[error("only {available} of the {needed} needed parties are available")]
    Unavailable { available: u16, needed: u16 },
    #[error("protocol failed: {reason} (culprits: {culprits:?})")]
    ProtocolFailed { reason: String, culprits: Vec<u16> },
    #[error("party {party} has no share for key {key_id}")]
    UnknownKey { party: u16, key_id: String },
    #[error(transparent)]
    Custody(#[from] CustodyError),
    #[error(transparent)]
    Store(#[from] ShareStoreError),
    /// A signer node could not be reached (connection, timeout, unverifiable answer).
    #[error("signer node unreachable: {0}")]
    Transport(String),
    #[error("bug: {0}")]
    Bug(String),
}

/// The pool of signer parties, seen from an API node.
#[async_trait]
pub trait SignerPool: Send + Sync {
    fn status(&self) -> PoolStatus;
    async fn generate_key(&self, request: KeyGenRequest) -> Result<GeneratedKey, SignerError>;
    async fn sign(&self, request: SignRequest) -> Result<PoolSignature, SignerError>;
}

/// A repository could not complete an operation (connection lost, constraint broken...).
/// The message is for logs only; clients see an opaque internal error.
#[derive(Debug, thiserror::Error)]
#[error("repository: {0}")]
pub struct RepositoryError(pub String);

/// Wall-clock time, injectable for tests.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> chrono::DateTime<chrono::Utc>;
}

/// The real clock, truncated to microseconds (what every database stores).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        let now = chrono::Utc::now();
        chrono::DurationRound::duration_trunc(now, chrono::TimeDelta::microseconds(1))
            .unwrap_or(now)
    }
}

/// One page of a cursor-paginated listing.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Where a listing starts and how much it returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Exclusive: items strictly after this id.
    pub after: Option<String>,
    /// 1..=100.
    pub limit: u64,
}

/// A token a network knows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    /// Upper-case symbol, unique within the network (`USDC`).
    pub symbol: String,
    /// Contract (EVM) or mint (Solana) address.
    pub address: String,
    pub decimals: u8,
}

/// A configured chain network.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NetworkInfo {
    pub name: String,
    pub chain: crate::Chain,
    /// EVM chain id; `None` for Solana.
    pub chain_id: Option<u64>,
    pub native_asset: String,
    pub native_decimals: u8,
    pub tokens: Vec<TokenInfo>,
    /// Blocks on top of the including one before a transaction counts as confirmed
    /// (1 = included).
    pub confirmations: u64,
    /// What one transaction may pay in fees, and how often it may be sped up.
    pub fee_caps: FeeCaps,
}

/// The limits a network puts on fees (from its configuration), in base units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FeeCaps {
    /// EVM: the highest `max_fee_per_gas` a transaction may offer, in wei per gas. `None`
    /// on Solana (fixed fees per signature).
    pub max_fee_per_gas_wei: Option<u128>,
    /// The most one transaction may pay in fees, in base units of the native asset (EVM:
    /// `gas_limit × max_fee_per_gas`; Solana: the fee of its signatures).
    pub max_fee_base_units: u128,
    /// Speed-ups allowed per request (replacements with purpose `speed_up`).
    pub max_speed_ups: u32,
}

impl FeeCaps {
    /// The most a transaction of this network can pay in fees, whatever the market: the
    /// worst-case fee to count when the network cannot be reached for an estimate.
    pub fn worst_case_bound(&self) -> u128 {
        self.max_fee_base_units
    }
}

/// What a transaction would pay in fees at most, were it sent now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FeeEstimate {
    /// EVM: gas. Solana: signatures (each pays the fixed fee).
    pub gas_limit: u64,
    /// EVM: wei per gas, after the network's caps. Solana: lamports per signature.
    pub max_fee_per_gas: u128,
    /// `gas_limit × max_fee_per_gas`, base units of the native asset: the most the
    /// transaction can pay.
    pub worst_case: u128,
}

impl NetworkInfo {
    /// The decimals of `asset` (native or a configured token), `None` if unknown.
    pub fn decimals_of(&self, asset: &str) -> Option<u8> {
        if asset == self.native_asset {
            return Some(self.native_decimals);
        }
        self.tokens
            .iter()
            .find(|t| t.symbol == asset)
            .map(|t| t.decimals)
    }
}

/// What to send, in the asset's smallest units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxIntent {
    pub from: String,
    pub to: String,
    /// Native asset symbol or a configured token symbol.
    pub asset: String,
    /// Base units (wei, token units, lamports).
    pub amount: u128,
    /// EVM call data (a contract call; `to` is the contract).
    pub data: Option<Vec<u8>>,
}

/// EIP-1559 fees, in wei per gas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fees {
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
}

/// How fees are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeeChoice {
    /// What the network suggests now.
    Suggested,
    /// A replacement: at least 12.5 % above `previous` on both fields (what nodes require to
    /// replace a pending transaction), and at least what the network suggests now.
    Replace { previous: Fees },
}

/// A transaction built and ready to be signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// What the signer pool signs.
    pub payload: SignPayload,
    /// The adapter's encoding of the unsigned transaction, handed back to `assemble`.
    pub unsigned: Vec<u8>,
    /// The account nonce used (EVM).
    pub nonce: Option<u64>,
    pub fees: Option<Fees>,
    pub gas_limit: Option<u64>,
    /// The last block height at which the transaction can land (Solana blockhash expiry).
    pub valid_until: Option<u64>,
}

/// A signed transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTx {
    /// The transaction hash (EVM, 0x-hex) or first signature (Solana, base58).
    pub hash: String,
    /// Wire bytes.
    pub raw: Vec<u8>,
}

/// Failures of a chain call.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// No RPC endpoint answered (connection refused, timeout, all breakers open). Retrying
    /// later may work; nothing was sent.
    #[error("network {network} is unreachable: {detail}")]
    Unavailable { network: String, detail: String },
    /// The node refused the request for good (reverted estimate, insufficient funds,
    /// invalid transaction).
    #[error("{0}")]
    Rejected(String),
    /// The input does not fit the network (unknown asset, bad address).
    #[error("{0}")]
    Invalid(String),
    /// The fees the transaction needs now exceed the network's caps (`FeeCaps`); the
    /// reason names the figures. Nothing was built; fees may fall later.
    #[error("{0}")]
    FeeCapExceeded(String),
}

/// What a broadcast achieved.
#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    /// The transaction may or may not have reached the network (timeout, connection lost
    /// after sending, a 5xx, or a refusal from one endpoint after another may have taken
    /// it). Look its hash up before anything else; resending the same bytes is safe,
    /// signing anew is not.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// Nothing was sent: no endpoint reachable.
    #[error(transparent)]
    Unavailable(ChainError),
    /// The one endpoint that received it refused it, and no endpoint before it may have
    /// taken it. `rejection` says what the refusal was about.
    #[error("rejected: {reason}")]
    Rejected {
        reason: String,
        rejection: Rejection,
    },
}

/// What a node's refusal of a transaction was about. A refusal is one node's view: it
/// never proves by itself that the signed bytes can never be included (a lagging node may
/// not know the blockhash yet, or the nonce's transaction may be ours).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The fees are too low to enter (or to replace in) the node's pool (EVM).
    Underpriced,
    /// The node has a transaction at this nonce in a block already (EVM: "nonce too low").
    NonceUsed,
    /// The node does not know the blockhash, or its block height passed the transaction's
    /// last valid height (Solana).
    Blockhash,
    /// Anything else (insufficient funds, invalid transaction).
    Other,
}

/// A signed transaction to look up: its hash and, on Solana, its last valid block height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxRef {
    pub hash: String,
    pub valid_until: Option<u64>,
}

/// Every attempt of a request looked up on one endpoint (`ChainClient::survey`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Survey {
    /// One per transaction asked about, in the same order.
    pub lookups: Vec<Lookup>,
    /// EVM: that endpoint's chain has a block transaction at the sender's nonce (its mined
    /// nonce count is above it), read before the lookups. With no lookup `Included`, the
    /// nonce was taken by a transaction that is none of ours.
    pub nonce_used: bool,
}

impl Survey {
    /// The first transaction found in a block, with its index.
    pub fn included(&self) -> Option<(usize, &Lookup)> {
        self.lookups
            .iter()
            .enumerate()
            .find(|(_, lookup)| matches!(lookup, Lookup::Included { .. }))
    }

    /// Some transaction is in a node's pool or in a block.
    pub fn any_known(&self) -> bool {
        self.lookups
            .iter()
            .any(|l| matches!(l, Lookup::Pending | Lookup::Included { .. }))
    }

    /// None of the transactions can ever be included: every one is expired (Solana), or
    /// their nonce is taken by another transaction (EVM). Never true for an empty survey.
    pub fn none_can_land(&self) -> bool {
        if self.lookups.is_empty() || self.any_known() {
            return false;
        }
        self.nonce_used || self.lookups.iter().all(|l| *l == Lookup::Expired)
    }
}

/// Where a transaction stands on chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Not known to the network.
    NotFound,
    /// In the pool, not in a block yet.
    Pending,
    /// In a block.
    Included {
        block: u64,
        /// 1 = in the newest block.
        confirmations: u64,
        /// False when the transaction reverted (EVM) or failed (Solana); it still used
        /// its nonce and paid its fee.
        success: bool,
        /// The fee paid, in the native asset's base units.
        fee: Option<u128>,
    },
    /// Can never land any more (Solana: its blockhash expired).
    Expired,
}

/// Account-nonce state of an address (EVM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountNonces {
    /// Transactions included in blocks (the next nonce a block will take).
    pub mined: u64,
    /// Including those waiting in the node's pool.
    pub pending: u64,
}

/// A balance, in base units and as a decimal string.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Balance {
    pub asset: String,
    /// Base units as a decimal integer string.
    pub raw: String,
    pub decimals: u8,
}

/// One RPC endpoint's health, for metrics and readiness.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointHealth {
    /// `scheme://host:port` only: RPC URLs often carry an API key in the path or query.
    pub endpoint: String,
    pub health: crate::health::MemberHealth,
}

/// One network's client: builds, assembles, broadcasts and looks up transactions.
#[async_trait]
pub trait ChainClient: Send + Sync + fmt::Debug {
    fn network(&self) -> &NetworkInfo;
    fn endpoint_health(&self) -> Vec<EndpointHealth>;
    /// Account nonces of `address`; `None` for chains without account nonces (Solana).
    async fn nonces(&self, address: &str) -> Result<Option<AccountNonces>, ChainError>;
    /// The most a transaction for `intent` would pay in fees if built now: the same gas
    /// estimate and capped fee suggestion as `prepare` (EVM; no nonce needed), or the fixed
    /// fee per signature (Solana). `FeeCapExceeded` when no transaction fits the caps now
    /// (`FeeCaps::worst_case_bound` is the bound to use then, and when the network cannot
    /// be reached).
    async fn estimate_fee(&self, intent: &TxIntent) -> Result<FeeEstimate, ChainError>;
    /// Builds the transaction for `intent` (with `nonce` on EVM), estimating gas and fees.
    /// Fees above the network's per-gas cap are clamped to it when the base fee and tip
    /// still fit; otherwise, or when the whole fee would pass `FeeCaps::max_fee_base_units`,
    /// `FeeCapExceeded`.
    async fn prepare(
        &self,
        intent: &TxIntent,
        nonce: Option<u64>,
        fees: FeeChoice,
    ) -> Result<Prepared, ChainError>;
    /// Attaches the pool's signature; checks it verifies for `from`.
    fn assemble(
        &self,
        prepared: &Prepared,
        from: &str,
        signature: &SignatureOutput,
    ) -> Result<SignedTx, ChainError>;
    async fn broadcast(&self, tx: &SignedTx) -> Result<(), BroadcastError>;
    /// Where `hash` stands; `valid_until` is the transaction's expiry height, if any.
    async fn lookup(&self, hash: &str, valid_until: Option<u64>) -> Result<Lookup, ChainError>;
    /// Where each of `txs` stands, every answer read from one endpoint (failing over only as
    /// a whole), so a verdict that a transaction can never land is never made of one node's
    /// height or nonce and another node's missing transaction. Solana: the block height is
    /// read first, then every signature's status. EVM with `sender` (address, nonce): the
    /// mined nonce count is read first, then every hash.
    async fn survey(
        &self,
        txs: &[TxRef],
        sender: Option<(&str, u64)>,
    ) -> Result<Survey, ChainError>;
    /// Native and token balances of `address`.
    async fn balances(&self, address: &str) -> Result<Vec<Balance>, ChainError>;
}

/// The configured networks, by name.
pub trait NetworkDirectory: Send + Sync + fmt::Debug {
    fn get(&self, name: &str) -> Option<std::sync::Arc<dyn ChainClient>>;
    /// Every network, ordered by name.
    fn all(&self) -> Vec<std::sync::Arc<dyn ChainClient>>;
}

/// The two hashes an EIP-712 signature is made over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypedDataHashes {
    pub domain_separator: [u8; 32],
    pub struct_hash: [u8; 32],
}

/// EIP-712 hashing of `eth_signTypedData_v4` documents (`{types, primaryType, domain,
/// message}`); implemented in `chains`.
pub trait TypedDataHasher: Send + Sync + fmt::Debug {
    /// The domain separator and struct hash; `Err` says why the document is not valid
    /// EIP-712 typed data.
    fn hashes(&self, document: &serde_json::Value) -> Result<TypedDataHashes, String>;
}
