//! A pool of JSON-RPC endpoints for one network: one circuit breaker per URL (the same
//! breakers as the signer pool), a timeout per call, failover to the next healthy URL.
//!
//! Reads go to the healthiest available URL and move on when one fails to answer. A node
//! that answers with a JSON-RPC error is healthy: the error is the answer. When every
//! breaker is open the pool still tries every URL (a half-open probe), so it never stays
//! shut after the endpoints come back.
//!
//! Sending a transaction is different: a request that timed out may have reached the node.
//! `send_transaction` keeps trying the other URLs with the *same bytes* (the same hash, so
//! at most one can ever be included) and reports an unknown outcome if none of them gave a
//! definite answer, so the caller looks the hash up before anything else. Once one URL may
//! have received the bytes, a later URL's refusal ("blockhash not found", "fee too low",
//! "nonce too low": a lagging or differently configured node) is no longer definite: the
//! result stays an unknown outcome. Only acceptance ("already known" included) is final.
//!
//! Verdicts that combine several reads ("this nonce is used and none of these hashes is
//! in a block") must come from one node: [`RpcPool::endpoints`] hands out the endpoints
//! one by one, in the same order, so a client can run every read on one and fail over as
//! a whole.

use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use waas_core::health::PoolHealth;
use waas_core::ports::{BroadcastError, ChainError, EndpointHealth, Rejection};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// No endpoint gave an answer. `maybe_sent` when at least one may have received the
    /// request (a timeout or a connection lost after sending).
    #[error("no RPC endpoint answered: {detail}")]
    Unreachable { detail: String, maybe_sent: bool },
    /// The node answered with a JSON-RPC error.
    #[error("node error {code}: {message}")]
    Node { code: i64, message: String },
}

/// Endpoints of one network.
#[derive(Debug)]
pub struct RpcPool {
    network: String,
    urls: Vec<String>,
    health: PoolHealth,
    client: reqwest::Client,
    timeout: Duration,
    next_id: AtomicU64,
}

/// `scheme://host:port` of a URL: RPC URLs often carry an API key in the path or query.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or("?");
            match parsed.port() {
                Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
                None => format!("{}://{host}", parsed.scheme()),
            }
        }
        Err(_) => "<invalid url>".into(),
    }
}

enum Attempt {
    Answer(Result<Value, RpcError>),
    /// The endpoint did not answer; `maybe_sent` if it may have received the request.
    NoAnswer {
        detail: String,
        maybe_sent: bool,
    },
}

impl RpcPool {
    /// `urls` must be valid http(s) URLs (checked when the configuration is loaded).
    pub fn new(network: &str, urls: Vec<String>, timeout: Duration) -> Result<Self, String> {
        if urls.is_empty() {
            return Err(format!("network {network}: at least one RPC URL is needed"));
        }
        for url in &urls {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| format!("network {network}: RPC URL {}: {e}", redact_url(url)))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!(
                    "network {network}: RPC URL {} must be http or https",
                    redact_url(url)
                ));
            }
        }
        let client = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .build()
            .map_err(|e| format!("network {network}: HTTP client: {e}"))?;
        Ok(Self {
            network: network.to_string(),
            health: PoolHealth::new(u16::try_from(urls.len()).unwrap_or(u16::MAX)),
            urls,
            client,
            timeout,
            next_id: AtomicU64::new(1),
        })
    }

    pub fn network(&self) -> &str {
        &self.network
    }

    pub fn health(&self) -> Vec<EndpointHealth> {
        self.health
            .snapshot()
            .into_iter()
            .map(|health| EndpointHealth {
                endpoint: self
                    .urls
                    .get(usize::from(health.index))
                    .map(|u| redact_url(u))
                    .unwrap_or_default(),
                health,
            })
            .collect()
    }

    /// Endpoint indexes to try, in order: available ones by health score, then open ones
    /// (so a pool whose breakers are all open still probes).
    fn order(&self) -> Vec<u16> {
        let count = u16::try_from(self.urls.len()).unwrap_or(u16::MAX);
        let (mut available, open): (Vec<u16>, Vec<u16>) =
            (0..count).partition(|i| self.health.available(*i));
        // By health in quarters, stable: among healthy endpoints the configured order holds
        // (the first URL is the primary); a degraded one falls behind.
        let band = |i: &u16| ((self.health.score(*i) * 4.0).floor() as i64).min(3);
        available.sort_by_key(|i| std::cmp::Reverse(band(i)));
        available.extend(open);
        available
    }

    async fn attempt(&self, index: u16, body: &Value) -> Attempt {
        let Some(url) = self.urls.get(usize::from(index)) else {
            return Attempt::NoAnswer {
                detail: "no such endpoint".into(),
                maybe_sent: false,
            };
        };
        let started = Instant::now();
        let response = self
            .client
            .post(url)
            .timeout(self.timeout)
            .json(body)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                self.health.record_failure(index);
                return Attempt::NoAnswer {
                    detail: format!("{}: {}", redact_url(url), describe(&error)),
                    maybe_sent: !error.is_connect(),
                };
            }
        };
        let status = response.status();
        if !status.is_success() {
            // A rate limit, a gateway error (even with a JSON body): not the node's answer.
            // A 4xx was refused before reaching the node; a 5xx may have reached it.
            self.health.record_failure(index);
            return Attempt::NoAnswer {
                detail: format!("{}: HTTP {status}", redact_url(url)),
                maybe_sent: !status.is_client_error(),
            };
        }
        let parsed: Result<Value, _> = response.json().await;
        match parsed {
            Ok(value) if value.get("result").is_none() && value.get("error").is_none() => {
                self.health.record_failure(index);
                Attempt::NoAnswer {
                    detail: format!("{}: not a JSON-RPC response", redact_url(url)),
                    maybe_sent: true,
                }
            }
            Ok(mut value) => {
                self.health.record_success(index, started.elapsed());
                if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
                    let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
                    let message = error
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown error")
                        .to_string();
                    return Attempt::Answer(Err(RpcError::Node { code, message }));
                }
                Attempt::Answer(Ok(value
                    .get_mut("result")
                    .map(Value::take)
                    .unwrap_or(Value::Null)))
            }
            Err(error) => {
                // A proxy error page, a rate limit, a body cut short: not an answer.
                self.health.record_failure(index);
                Attempt::NoAnswer {
                    detail: format!("{}: HTTP {status}: {}", redact_url(url), describe(&error)),
                    maybe_sent: !status.is_client_error(),
                }
            }
        }
    }

    fn body(&self, method: &str, params: Value) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": self.next_id.fetch_add(1, Ordering::Relaxed),
            "method": method,
            "params": params,
        })
    }

    /// Calls `method` on the first endpoint that answers.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.call_tracked(method, params).await.answer
    }

    /// `call`, also telling whether an endpoint tried before the one that answered may
    /// have received the request (and the failures met on the way).
    async fn call_tracked(&self, method: &str, params: Value) -> Tracked {
        let body = self.body(method, params);
        let mut failures = Vec::new();
        let mut maybe_sent = false;
        for index in self.order() {
            match self.attempt(index, &body).await {
                Attempt::Answer(answer) => {
                    return Tracked {
                        answer,
                        earlier_maybe_sent: maybe_sent,
                        failures,
                    };
                }
                Attempt::NoAnswer {
                    detail,
                    maybe_sent: sent,
                } => {
                    tracing::debug!(network = %self.network, method, %detail, "RPC endpoint failed; trying the next one");
                    maybe_sent |= sent;
                    failures.push(detail);
                }
            }
        }
        Tracked {
            answer: Err(RpcError::Unreachable {
                detail: failures.join("; "),
                maybe_sent,
            }),
            earlier_maybe_sent: maybe_sent,
            failures: Vec::new(),
        }
    }

    /// The endpoints in the order calls try them (healthy first), each to be asked on its
    /// own: a client that needs several answers from one node runs them all on one
    /// endpoint and moves to the next only as a whole.
    pub fn endpoints(&self) -> Vec<Endpoint<'_>> {
        self.order()
            .into_iter()
            .map(|index| Endpoint { pool: self, index })
            .collect()
    }
}

/// One endpoint of a pool (`RpcPool::endpoints`); its calls count in the pool's health.
#[derive(Clone, Copy, Debug)]
pub struct Endpoint<'a> {
    pool: &'a RpcPool,
    index: u16,
}

impl Endpoint<'_> {
    /// Calls `method` on this endpoint only.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let body = self.pool.body(method, params);
        match self.pool.attempt(self.index, &body).await {
            Attempt::Answer(answer) => answer,
            Attempt::NoAnswer { detail, maybe_sent } => {
                Err(RpcError::Unreachable { detail, maybe_sent })
            }
        }
    }

    /// `call`, with failures as chain errors (as `RpcPool::request`).
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, ChainError> {
        self.call(method, params)
            .await
            .map_err(|error| self.pool.chain_error(error))
    }
}

/// A call's answer and what happened before it.
struct Tracked {
    answer: Result<Value, RpcError>,
    /// An endpoint tried before the one that answered may have received the request.
    earlier_maybe_sent: bool,
    /// Why the endpoints before the one that answered failed.
    failures: Vec<String>,
}

/// How a node's JSON-RPC error to a sent transaction reads (`RpcPool::send_transaction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendAnswer {
    /// The node has this very transaction: accepted.
    AlreadyKnown,
    /// A refusal.
    Refused(Rejection),
}

impl RpcPool {
    /// `call`, with failures as chain errors: no answer → `Unavailable`, a node's error →
    /// `Rejected`.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, ChainError> {
        self.call(method, params)
            .await
            .map_err(|error| self.chain_error(error))
    }

    fn chain_error(&self, error: RpcError) -> ChainError {
        match error {
            RpcError::Unreachable { detail, .. } => self.unavailable(detail),
            RpcError::Node { message, .. } => ChainError::Rejected(message),
        }
    }

    /// Sends a signed transaction. `classify` reads a node's error: acceptance when the
    /// node already has this very transaction, else what the refusal is about. A refusal
    /// is final only when no endpoint tried before may have received the bytes; otherwise,
    /// and when no endpoint answered after one may have received them, the outcome is
    /// unknown.
    pub async fn send_transaction(
        &self,
        method: &str,
        params: Value,
        classify: fn(&str) -> SendAnswer,
    ) -> Result<(), BroadcastError> {
        let Tracked {
            answer,
            earlier_maybe_sent,
            failures,
        } = self.call_tracked(method, params).await;
        match answer {
            Ok(_) => Ok(()),
            Err(RpcError::Node { message, .. }) => match classify(&message) {
                SendAnswer::AlreadyKnown => Ok(()),
                SendAnswer::Refused(_) if earlier_maybe_sent => {
                    tracing::warn!(network = %self.network, refusal = %message, "an endpoint refused a transaction another may have received: outcome unknown");
                    Err(BroadcastError::Unknown(format!(
                        "{}; then a node refused it ({message}), which does not undo the \
                         earlier send",
                        failures.join("; ")
                    )))
                }
                SendAnswer::Refused(rejection) => Err(BroadcastError::Rejected {
                    reason: message,
                    rejection,
                }),
            },
            Err(RpcError::Unreachable {
                detail,
                maybe_sent: true,
            }) => Err(BroadcastError::Unknown(detail)),
            Err(RpcError::Unreachable { detail, .. }) => {
                Err(BroadcastError::Unavailable(self.unavailable(detail)))
            }
        }
    }

    fn unavailable(&self, detail: String) -> ChainError {
        ChainError::Unavailable {
            network: self.network.clone(),
            detail,
        }
    }
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "connection failed".into()
    } else if error.is_decode() {
        "answer is not JSON-RPC".into()
    } else if error.is_body() {
        "answer cut short".into()
    } else {
        // Not reqwest's Display: it includes the URL, and URLs may hold API keys.
        "request failed".into()
    }
}
