//! A Solana JSON-RPC test server over the real SVM runtime (`litesvm`), in-process.
//!
//! No validator can be built on the CI machine in reasonable time, so the Solana tests run
//! our signed transactions in the same runtime a validator uses (signature verification,
//! the system program, fees, blockhash and duplicate checks) behind the JSON-RPC methods
//! `SolanaClient` calls: `getLatestBlockhash`, `getBlockHeight`, `sendTransaction`,
//! `getSignatureStatuses` and `getBalance`. One block per executed transaction; a blockhash
//! is valid for 150 blocks, as on a real cluster.
//!
//! Test controls (not RPC): fund an address, read a balance, accept sends without executing
//! them (a validator that loses transactions), and expire the current blockhash.

use axum::{Json, Router, extract::State, routing::post};
use litesvm::LiteSVM;
use serde_json::{Value, json};
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use solana_transaction::versioned::VersionedTransaction;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// How many blocks a blockhash stays usable (as on Solana clusters).
const BLOCKHASH_VALIDITY: u64 = 150;

struct Ledger {
    svm: LiteSVM,
    /// Block height (one block per executed transaction).
    height: u64,
    /// The last block height at which the current blockhash is accepted.
    blockhash_valid_until: u64,
    /// Executed transactions: the block they landed in.
    landed: HashMap<Signature, u64>,
    /// Accept sends without executing them.
    losing: bool,
    /// Every `sendTransaction` received (executed or not).
    sends: u32,
}

/// The server; it stops with the test's runtime.
pub struct SvmNode {
    pub url: String,
    ledger: Arc<Mutex<Ledger>>,
}

type Shared = Arc<Mutex<Ledger>>;

impl SvmNode {
    pub async fn start() -> Self {
        let ledger = Arc::new(Mutex::new(Ledger {
            svm: LiteSVM::new(),
            height: 1,
            blockhash_valid_until: 1 + BLOCKHASH_VALIDITY,
            landed: HashMap::new(),
            losing: false,
            sends: 0,
        }));
        let app = Router::new()
            .route("/", post(rpc))
            .with_state(ledger.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, ledger }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Ledger) -> T) -> T {
        f(&mut self.ledger.lock().expect("ledger"))
    }

    pub fn fund(&self, address: &str, lamports: u64) {
        let key = Pubkey::from_str(address).expect("address");
        self.with(|l| {
            l.svm.airdrop(&key, lamports).expect("airdrop");
            l.height += 1;
        });
    }

    pub fn balance(&self, address: &str) -> u64 {
        let key = Pubkey::from_str(address).expect("address");
        self.with(|l| l.svm.get_balance(&key).unwrap_or(0))
    }

    /// Whether the transaction with this signature (base58) executed successfully.
    pub fn executed_ok(&self, signature: &str) -> Option<bool> {
        let signature = Signature::from_str(signature).expect("signature");
        self.with(|l| l.svm.get_transaction(&signature).map(Result::is_ok))
    }

    /// Accepts sends without executing them while `on`.
    pub fn lose_sends(&self, on: bool) {
        self.with(|l| l.losing = on);
    }

    pub fn sends(&self) -> u32 {
        self.with(|l| l.sends)
    }

    /// Moves past the current blockhash's validity: a new blockhash, and the chain is
    /// `BLOCKHASH_VALIDITY + 1` blocks further on.
    pub fn expire_blockhash(&self) {
        self.with(|l| {
            l.svm.expire_blockhash();
            l.height = l.blockhash_valid_until + 1;
            l.blockhash_valid_until = l.height + BLOCKHASH_VALIDITY;
        });
    }
}

async fn rpc(State(ledger): State<Shared>, Json(body): Json<Value>) -> Json<Value> {
    let id = body["id"].clone();
    let params = &body["params"];
    let mut l = ledger.lock().expect("ledger");
    let result = match body["method"].as_str().unwrap_or_default() {
        "getBlockHeight" => Ok(json!(l.height)),
        "getLatestBlockhash" => Ok(json!({
            "context": {"slot": l.height},
            "value": {
                "blockhash": l.svm.latest_blockhash().to_string(),
                "lastValidBlockHeight": l.blockhash_valid_until,
            },
        })),
        "getBalance" => match params[0].as_str().map(Pubkey::from_str) {
            Some(Ok(key)) => Ok(json!({
                "context": {"slot": l.height},
                "value": l.svm.get_balance(&key).unwrap_or(0),
            })),
            _ => Err((-32602, "Invalid param: not a pubkey".to_string())),
        },
        "getSignatureStatuses" => {
            let statuses: Vec<Value> = params[0]
                .as_array()
                .into_iter()
                .flatten()
                .map(|text| {
                    let Some(signature) = text.as_str().and_then(|t| Signature::from_str(t).ok())
                    else {
                        return Value::Null;
                    };
                    match (l.landed.get(&signature), l.svm.get_transaction(&signature)) {
                        (Some(&slot), Some(result)) => json!({
                            "slot": slot,
                            "confirmations": null,
                            "err": result.as_ref().err().map(|f| f.err.to_string()),
                            "confirmationStatus": "finalized",
                        }),
                        _ => Value::Null,
                    }
                })
                .collect();
            Ok(json!({"context": {"slot": l.height}, "value": statuses}))
        }
        "sendTransaction" => send(&mut l, params),
        other => Err((-32601, format!("Method not found: {other}"))),
    };
    Json(match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        }
    })
}

fn send(l: &mut Ledger, params: &Value) -> Result<Value, (i64, String)> {
    use base64::Engine;
    l.sends += 1;
    let invalid = |what: &str| (-32602, format!("invalid transaction: {what}"));
    let encoded = params[0].as_str().ok_or_else(|| invalid("missing"))?;
    let bytes = match params[1]["encoding"].as_str() {
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| invalid("not base64"))?,
        _ => bs58::decode(encoded)
            .into_vec()
            .map_err(|_| invalid("not base58"))?,
    };
    let transaction: VersionedTransaction =
        bincode::deserialize(&bytes).map_err(|_| invalid("undecodable"))?;
    let signature = *transaction
        .signatures
        .first()
        .ok_or_else(|| invalid("unsigned"))?;
    if l.losing {
        return Ok(json!(signature.to_string()));
    }
    let seen_before = l.svm.get_transaction(&signature).is_some();
    match l.svm.send_transaction(transaction) {
        Ok(_) => {
            l.height += 1;
            l.landed.insert(signature, l.height);
            Ok(json!(signature.to_string()))
        }
        // A transaction that ran and failed still lands (its fee is paid).
        Err(_) if !seen_before && l.svm.get_transaction(&signature).is_some() => {
            l.height += 1;
            l.landed.insert(signature, l.height);
            Ok(json!(signature.to_string()))
        }
        Err(failed) => Err((
            -32002,
            format!("Transaction simulation failed: {}", failed.err),
        )),
    }
}
