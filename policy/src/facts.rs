//! What a request moves, read from what it carries: EVM call data (ERC-20 `transfer`,
//! `transferFrom`, `approve`, `increaseAllowance`) and EIP-712 typed data (ERC-2612 and DAI
//! `Permit`, Permit2 `PermitSingle`, `PermitBatch`, `PermitTransferFrom`,
//! `PermitBatchTransferFrom` and their witness forms), so token movements and approvals are
//! valued like the assets they move.
//!
//! Pure: the caller passes the configured tokens of the network concerned. An amount too
//! large for a decimal (≥ 2^96 base units) is an unlimited allowance when it grants one and
//! an error when it claims to transfer.

use crate::engine::Movement;
use rust_decimal::Decimal;
use serde_json::Value;

/// A token the operator configured for a network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownToken {
    pub symbol: String,
    /// 0x-hex, any case.
    pub address: String,
    pub decimals: u8,
}

impl KnownToken {
    /// The tokens configured for `network`.
    pub fn of_network(network: &waas_core::ports::NetworkInfo) -> Vec<Self> {
        network
            .tokens
            .iter()
            .map(|t| KnownToken {
                symbol: t.symbol.clone(),
                address: t.address.clone(),
                decimals: t.decimals,
            })
            .collect()
    }
}

/// What a call or a signed approval moves, as the policy sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moves {
    /// A token symbol, the native asset, or (for a token nobody configured) its address.
    pub asset: String,
    /// In the asset's units (base units for an unknown token).
    pub amount: Decimal,
    /// The recipient of a transfer, the spender of an allowance, or the contract called.
    pub destination: String,
    /// The contract called (the token for token calls); `None` for signatures.
    pub contract: Option<String>,
    pub selector: Option<[u8; 4]>,
    pub also_moves: Vec<Movement>,
    /// Why it cannot be valued, when it cannot.
    pub unvalued: Option<String>,
    pub unlimited_allowance: bool,
}

pub const TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
pub const TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];
pub const APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];
pub const INCREASE_ALLOWANCE: [u8; 4] = [0x39, 0x50, 0x93, 0x51];

/// A 256-bit amount: small enough for a decimal, or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Raw {
    Fits(u128),
    Huge,
}

/// Amounts below 2^96 fit a decimal's mantissa.
const DECIMAL_LIMIT: u128 = 1 << 96;

impl Raw {
    fn from_word(word: &[u8]) -> Raw {
        let (high, low) = word.split_at(word.len().saturating_sub(16));
        if high.iter().any(|b| *b != 0) {
            return Raw::Huge;
        }
        let mut bytes = [0u8; 16];
        for (slot, byte) in bytes.iter_mut().rev().zip(low.iter().rev()) {
            *slot = *byte;
        }
        Raw::from_u128(u128::from_be_bytes(bytes))
    }

    fn from_u128(value: u128) -> Raw {
        if value >= DECIMAL_LIMIT {
            Raw::Huge
        } else {
            Raw::Fits(value)
        }
    }

    /// Parses a JSON uint: a decimal or 0x-hex string, or a non-negative integer.
    fn from_json(value: &Value) -> Option<Raw> {
        match value {
            Value::Number(number) => number.as_u64().map(|n| Raw::from_u128(u128::from(n))),
            Value::String(text) => {
                let text = text.trim();
                if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
                    let digits = hex.trim_start_matches('0');
                    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return None;
                    }
                    if digits.len() > 32 {
                        return Some(Raw::Huge);
                    }
                    u128::from_str_radix(if digits.is_empty() { "0" } else { digits }, 16)
                        .ok()
                        .map(Raw::from_u128)
                } else {
                    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    let digits = text.trim_start_matches('0');
                    if digits.len() > 38 {
                        return Some(Raw::Huge);
                    }
                    digits
                        .parse::<u128>()
                        .ok()
                        .or(Some(0).filter(|_| digits.is_empty()))
                        .map(Raw::from_u128)
                }
            }
            _ => None,
        }
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The address in a 32-byte ABI word (its first 12 bytes must be zero).
fn address_word(word: &[u8]) -> Option<String> {
    let (padding, address) = word.split_at_checked(12)?;
    (padding.iter().all(|b| *b == 0) && address.len() == 20)
        .then(|| format!("0x{}", hex_of(address)))
}

fn find_token<'a>(tokens: &'a [KnownToken], address: &str) -> Option<&'a KnownToken> {
    tokens
        .iter()
        .find(|t| t.address.eq_ignore_ascii_case(address.trim()))
}

/// A token amount in the token's units, or why it cannot be valued.
struct TokenAmount {
    asset: String,
    amount: Decimal,
    unvalued: Option<String>,
}

fn token_amount(tokens: &[KnownToken], token: &str, raw: u128) -> TokenAmount {
    let token = token.trim().to_ascii_lowercase();
    match find_token(tokens, &token) {
        Some(known) => TokenAmount {
            asset: known.symbol.to_ascii_uppercase(),
            amount: i128::try_from(raw)
                .ok()
                .map(|raw| Decimal::from_i128_with_scale(raw, u32::from(known.decimals)))
                .unwrap_or(Decimal::MAX),
            unvalued: None,
        },
        None => TokenAmount {
            amount: i128::try_from(raw)
                .ok()
                .map(|raw| Decimal::from_i128_with_scale(raw, 0))
                .unwrap_or(Decimal::MAX),
            unvalued: Some(format!("token {token} is not a configured token")),
            asset: token,
        },
    }
}

/// Reads EVM call data sent to `contract` with `native_amount` of `native_asset`.
/// ERC-20 transfers and approvals are decoded (for configured tokens and any other
/// contract); other methods move what the platform cannot value. `Err` (with a reason for
/// `/data`) when the data does not decode as its selector claims.
pub fn evm_call(
    contract: &str,
    data: &[u8],
    native_amount: Decimal,
    native_asset: &str,
    tokens: &[KnownToken],
) -> Result<Moves, String> {
    let contract = contract.trim().to_ascii_lowercase();
    let Some((selector, arguments)) = data.split_first_chunk::<4>() else {
        return Err(format!(
            "call data must start with a 4-byte method selector (got {} bytes)",
            data.len()
        ));
    };
    let (name, words) = match *selector {
        TRANSFER => ("transfer(address,uint256)", 2),
        TRANSFER_FROM => ("transferFrom(address,address,uint256)", 3),
        APPROVE => ("approve(address,uint256)", 2),
        INCREASE_ALLOWANCE => ("increaseAllowance(address,uint256)", 2),
        _ => {
            return Ok(Moves {
                asset: native_asset.to_string(),
                amount: native_amount,
                destination: contract.clone(),
                unvalued: Some(format!(
                    "method 0x{} of contract {contract} is not one the platform can value",
                    hex_of(selector)
                )),
                contract: Some(contract),
                selector: Some(*selector),
                also_moves: Vec::new(),
                unlimited_allowance: false,
            });
        }
    };
    if arguments.len() != 32 * words {
        return Err(format!(
            "call data for {name} needs {} bytes of arguments, got {}",
            32 * words,
            arguments.len()
        ));
    }
    let word = |index: usize| arguments.get(index * 32..(index + 1) * 32).unwrap_or(&[]);
    let address = |index: usize| {
        address_word(word(index)).ok_or_else(|| {
            format!(
                "call data does not decode as {name}: argument {} is not an address",
                index + 1
            )
        })
    };
    let (destination, raw) = if *selector == TRANSFER_FROM {
        address(0)?;
        (address(1)?, Raw::from_word(word(2)))
    } else {
        (address(0)?, Raw::from_word(word(1)))
    };
    let grants_allowance = matches!(*selector, APPROVE | INCREASE_ALLOWANCE);
    let (raw, unlimited) = match raw {
        Raw::Fits(raw) => (raw, false),
        Raw::Huge if grants_allowance => (0, true),
        Raw::Huge => {
            return Err(format!(
                "call data for {name} moves an amount too large to be real"
            ));
        }
    };
    let token = token_amount(tokens, &contract, raw);
    let also_moves = if native_amount.is_zero() {
        Vec::new()
    } else {
        vec![Movement {
            asset: native_asset.to_string(),
            amount: native_amount,
        }]
    };
    Ok(Moves {
        asset: token.asset,
        amount: token.amount,
        destination,
        contract: Some(contract),
        selector: Some(*selector),
        also_moves,
        unvalued: if unlimited {
            Some("an unlimited allowance has no finite value".into())
        } else {
            token.unvalued
        },
        unlimited_allowance: unlimited,
    })
}

/// The EIP-712 domain and primary type of a typed-data document.
pub fn typed_data_facts(document: &Value) -> crate::engine::TypedDataFacts {
    let domain = document.get("domain");
    let field = |name: &str| domain.and_then(|d| d.get(name));
    crate::engine::TypedDataFacts {
        primary_type: document
            .get("primaryType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        chain_id: field("chainId").and_then(|id| match Raw::from_json(id) {
            Some(Raw::Fits(id)) => u64::try_from(id).ok(),
            _ => None,
        }),
        verifying_contract: field("verifyingContract")
            .and_then(Value::as_str)
            .map(|c| c.trim().to_ascii_lowercase()),
        name: field("name").and_then(Value::as_str).map(str::to_string),
    }
}

/// One token and amount an approval grants.
struct Grant {
    token: String,
    amount: Raw,
}

fn grant(value: Option<&Value>, token_field: &str) -> Result<Grant, String> {
    let value = value.ok_or("a permitted token entry is missing")?;
    let token = value
        .get(token_field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{token_field} must be an address"))?;
    let amount = value
        .get("amount")
        .and_then(Raw::from_json)
        .ok_or("amount must be an unsigned integer")?;
    Ok(Grant {
        token: token.to_string(),
        amount,
    })
}

/// Recognises token approvals in typed data: what they let `spender` take. `Ok(None)` for
/// typed data that is not a token approval; `Err` for an approval whose fields are malformed.
pub fn typed_data_approval(
    document: &Value,
    tokens: &[KnownToken],
) -> Result<Option<Moves>, String> {
    let facts = typed_data_facts(document);
    let Some(message) = document.get("message") else {
        return Ok(None);
    };
    let spender = || {
        message
            .get("spender")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("{}: spender must be an address", facts.primary_type))
    };
    let grants: Vec<Grant> = match facts.primary_type.as_str() {
        // ERC-2612 (`value`) and DAI (`allowed`: true grants everything).
        "Permit" => {
            let token = facts
                .verifying_contract
                .clone()
                .ok_or("Permit: the domain names no verifyingContract (the token)")?;
            let amount = if let Some(allowed) = message.get("allowed") {
                match allowed.as_bool() {
                    Some(true) => Raw::Huge,
                    Some(false) => Raw::Fits(0),
                    None => return Err("Permit: allowed must be true or false".into()),
                }
            } else {
                message
                    .get("value")
                    .and_then(Raw::from_json)
                    .ok_or("Permit: value must be an unsigned integer")?
            };
            vec![Grant { token, amount }]
        }
        "PermitSingle" => vec![grant(message.get("details"), "token")?],
        "PermitBatch" => message
            .get("details")
            .and_then(Value::as_array)
            .ok_or("PermitBatch: details must be a list")?
            .iter()
            .map(|d| grant(Some(d), "token"))
            .collect::<Result<_, _>>()?,
        "PermitTransferFrom" | "PermitWitnessTransferFrom" => {
            vec![grant(message.get("permitted"), "token")?]
        }
        "PermitBatchTransferFrom" | "PermitBatchWitnessTransferFrom" => message
            .get("permitted")
            .and_then(Value::as_array)
            .ok_or("permitted must be a list")?
            .iter()
            .map(|d| grant(Some(d), "token"))
            .collect::<Result<_, _>>()?,
        _ => return Ok(None),
    };
    let destination = spender()?;
    let mut unlimited = false;
    let mut unvalued = None;
    let mut amounts = Vec::new();
    for grant in &grants {
        let raw = match grant.amount {
            Raw::Fits(raw) => raw,
            Raw::Huge => {
                unlimited = true;
                0
            }
        };
        let token = token_amount(tokens, &grant.token, raw);
        if unvalued.is_none() {
            unvalued = token.unvalued.clone();
        }
        amounts.push(Movement {
            asset: token.asset,
            amount: token.amount,
        });
    }
    if unlimited {
        unvalued = Some("an unlimited allowance has no finite value".into());
    }
    let mut amounts = amounts.into_iter();
    let first = amounts
        .next()
        .ok_or_else(|| format!("{}: permits no token", facts.primary_type))?;
    Ok(Some(Moves {
        asset: first.asset,
        amount: first.amount,
        destination,
        contract: None,
        selector: None,
        also_moves: amounts.collect(),
        unvalued,
        unlimited_allowance: unlimited,
    }))
}
