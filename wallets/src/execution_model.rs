//! What the executor keeps about a request on chain: its signed attempts, the nonce, the
//! outcome of its sends (`Execution`, stored with the request), and the nonce book. Shared
//! by `transactions.rs` (the request model) and the executor without an import circle.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use waas_core::ports::{AccountNonces, Fees, Prepared, SignedTx, TxRef};
use waas_policy::Decimal;

use crate::service::WalletsError;

/// Why an attempt was signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Original,
    /// The same transfer with higher fees, same nonce.
    SpeedUp,
    /// A zero-value transfer to itself with higher fees, same nonce.
    Cancel,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Original => "original",
            Purpose::SpeedUp => "speed_up",
            Purpose::Cancel => "cancel",
        }
    }
}

/// One signed transaction of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub hash: String,
    /// Wire bytes, hex.
    pub raw: String,
    pub purpose: Purpose,
    pub fees: Option<Fees>,
    pub gas_limit: Option<u64>,
    pub valid_until: Option<u64>,
    pub signed_at: DateTime<Utc>,
    /// Pool indices of the signer nodes that made the signature.
    #[serde(default)]
    pub signers: Vec<u16>,
    /// The nonce it was signed at (EVM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<u64>,
}

impl Attempt {
    pub(crate) fn new(
        signed: &SignedTx,
        prepared: &Prepared,
        purpose: Purpose,
        signers: Vec<u16>,
        signed_at: DateTime<Utc>,
    ) -> Self {
        Self {
            hash: signed.hash.clone(),
            raw: hex::encode(&signed.raw),
            purpose,
            fees: prepared.fees,
            gas_limit: prepared.gas_limit,
            valid_until: prepared.valid_until,
            signed_at,
            signers,
            nonce: prepared.nonce,
        }
    }

    /// What to look up for it.
    pub(crate) fn tx_ref(&self) -> TxRef {
        TxRef {
            hash: self.hash.clone(),
            valid_until: self.valid_until,
        }
    }

    /// The stored signed transaction.
    pub(crate) fn signed(&self) -> Result<SignedTx, WalletsError> {
        Ok(SignedTx {
            hash: self.hash.clone(),
            raw: hex::decode(&self.raw)
                .map_err(|_| WalletsError::Bug("stored transaction is not hex".into()))?,
        })
    }
}

/// How a request is being carried out on chain (every field defaults when absent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Execution {
    /// The sending address.
    pub from: Option<String>,
    pub nonce: Option<u64>,
    /// Every attempt ever signed, oldest first. Never removed: any of them may still be
    /// included until the network proves otherwise.
    pub attempts: Vec<Attempt>,
    /// The attempt that went into a block.
    pub included_hash: Option<String>,
    pub block: Option<u64>,
    pub confirmations: Option<u64>,
    /// Base units of the native asset, as a decimal string.
    pub fee_paid: Option<String>,
    /// A send may have reached the network with no definite answer about it. Stored
    /// *before* every send (so a crash between the send and the next write leaves it set),
    /// cleared by an acceptance, by a lookup that finds an attempt, or by an answer that
    /// proves the send never left. While set, every attempt is looked up before anything
    /// else, and a refusal is not taken as final.
    pub outcome_unknown: bool,
    /// Broadcast: the network refuses the transaction's fees; a speed-up is needed.
    /// Signing: the fees needed are above the network's caps; retried until they fit.
    pub stuck: bool,
    /// Why the last step could not go on (the request is retried).
    pub last_error: Option<String>,
    pub rebroadcasts: u32,
    pub signing_failures: u32,
    /// A signature request's signature, once made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<crate::signature_model::SignatureResult>,
}

/// The nonces of one (network, address).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NonceBook {
    /// The next nonce never handed out.
    pub next: u64,
    /// Handed out, then given back: their transactions never reached a pool.
    pub released: Vec<u64>,
}

impl NonceBook {
    /// The nonce for the next transaction, given what the chain says now: the lowest given
    /// back that the chain has not used, else the next new one (never below what the
    /// chain has seen, so transactions sent from elsewhere do not cause duplicates).
    pub fn allocate(&mut self, chain: AccountNonces) -> u64 {
        self.next = self.next.max(chain.mined).max(chain.pending);
        let next = self.next;
        self.released.retain(|n| *n >= chain.mined && *n < next);
        self.released.sort_unstable();
        self.released.dedup();
        if !self.released.is_empty() {
            return self.released.remove(0);
        }
        self.next += 1;
        next
    }

    /// Gives a nonce back (its transaction never reached a pool).
    pub fn release(&mut self, nonce: u64) {
        if nonce < self.next && !self.released.contains(&nonce) {
            self.released.push(nonce);
        }
    }
}

/// `amount` in base units of an asset with `decimals` (`None` when it has more decimals
/// than the asset or does not fit).
pub fn base_units(amount: Decimal, decimals: u8) -> Option<u128> {
    let amount = amount.normalize();
    if amount.is_sign_negative() || amount.scale() > u32::from(decimals) {
        return None;
    }
    let mantissa = u128::try_from(amount.mantissa()).ok()?;
    mantissa.checked_mul(10u128.checked_pow(u32::from(decimals) - amount.scale())?)
}
