//! What a signature request signs and what it produced (stored with the request), and how
//! each becomes a pool payload and a chain-format signature. Shared by the request use
//! cases (`signatures.rs`, `transactions.rs`) and the executor.

use crate::evm::recovery_id;
use crate::model::Wallet;
use crate::service::WalletsError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use waas_core::chain::Chain;
use waas_core::ports::{PoolSignature, SignPayload, SignatureOutput};
use waas_policy::SignatureKind;

/// What a client asks to have signed.
#[derive(Clone, Debug, PartialEq)]
pub enum SignInput {
    /// `0x` + 64 hex digits, signed as is (needs the `sign:raw` scope and a rule naming
    /// `hash`).
    Hash(String),
    /// UTF-8 text: EIP-191 `personal_sign` on EVM, the bytes on Solana.
    Message(String),
    /// An `eth_signTypedData_v4` document (EVM).
    TypedData(serde_json::Value),
}

impl SignInput {
    pub fn kind(&self) -> SignatureKind {
        match self {
            SignInput::Hash(_) => SignatureKind::Hash,
            SignInput::Message(_) => SignatureKind::Message,
            SignInput::TypedData(_) => SignatureKind::TypedData,
        }
    }
}

/// What a signature request signs (stored with the request).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignatureRequest {
    pub kind: SignatureKind,
    /// The raw hash, 0x-hex (`hash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// The text (`message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The document (`typed_data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typed_data: Option<serde_json::Value>,
    /// EIP-712 domain separator and struct hash, 0x-hex (`typed_data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_separator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub struct_hash: Option<String>,
    /// What the key signs, 0x-hex: the ECDSA digest (EVM), or SHA-256 of the signed bytes
    /// (Ed25519, which signs the bytes themselves).
    pub digest: String,
}

/// A finished signature, kept in the request's execution record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureResult {
    /// 0x-hex: 65 bytes `r ‖ s ‖ v` (EVM, low-s, v = 27|28) or 64 bytes (Ed25519).
    pub signature: String,
    /// Pool indices of the signer nodes that made it.
    pub signers: Vec<u16>,
    pub signed_at: DateTime<Utc>,
}

fn hex32(text: Option<&String>) -> Result<[u8; 32], WalletsError> {
    text.and_then(|t| hex::decode(t.trim_start_matches("0x")).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .ok_or_else(|| WalletsError::Bug("stored signature request is incomplete".into()))
}

impl SignatureRequest {
    /// What the pool signs for this request with `wallet`'s key.
    pub fn payload(&self, chain: Chain) -> Result<SignPayload, WalletsError> {
        Ok(match (chain, self.kind) {
            (Chain::Evm, SignatureKind::Hash) => SignPayload::Digest(hex32(self.hash.as_ref())?),
            (Chain::Evm, SignatureKind::Message) => {
                SignPayload::PersonalMessage(self.message.clone().unwrap_or_default().into_bytes())
            }
            (Chain::Evm, SignatureKind::TypedData) => SignPayload::TypedData {
                domain_separator: hex32(self.domain_separator.as_ref())?,
                struct_hash: hex32(self.struct_hash.as_ref())?,
            },
            (Chain::Solana, SignatureKind::Hash) => {
                SignPayload::Message(hex32(self.hash.as_ref())?.to_vec())
            }
            (Chain::Solana, SignatureKind::Message) => {
                SignPayload::Message(self.message.clone().unwrap_or_default().into_bytes())
            }
            (Chain::Solana, SignatureKind::TypedData) => {
                return Err(WalletsError::Bug("typed data on a Solana wallet".into()));
            }
        })
    }

    /// The signature in the chain's format, checked against the wallet's key.
    pub fn finish(&self, wallet: &Wallet, signed: &PoolSignature) -> Result<Vec<u8>, WalletsError> {
        match &signed.output {
            SignatureOutput::Ecdsa { r, s } => {
                let digest = hex32(Some(&self.digest))?;
                let parity = recovery_id(&wallet.public_key, &digest, r, s).ok_or_else(|| {
                    WalletsError::Bug("signature does not recover the wallet key".into())
                })?;
                let mut bytes = Vec::with_capacity(65);
                bytes.extend_from_slice(r);
                bytes.extend_from_slice(s);
                bytes.push(27 + parity);
                Ok(bytes)
            }
            SignatureOutput::Ed25519(bytes) => Ok(bytes.to_vec()),
        }
    }
}
