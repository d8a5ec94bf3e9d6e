//! A JSON-RPC proxy in front of a node (anvil, the SVM test server) that can make the next
//! transaction send time out after forwarding it, swallow it, or refuse it with a node
//! error of our choosing without forwarding it (a lagging or differently configured node).
//! Every other call is passed on.

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to the next `eth_sendRawTransaction` / `sendTransaction`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trap {
    /// Pass it on.
    None,
    /// Pass it on to the node, then never answer: the transaction is in, the caller
    /// cannot know.
    ForwardThenHang,
    /// Never pass it on and never answer: the caller cannot know it was lost.
    SwallowAndHang,
    /// Answer this JSON-RPC error without passing it on.
    Refuse(i64, String),
}

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    trap: Mutex<Trap>,
    /// The raw transactions of every send received.
    sends: Mutex<Vec<String>>,
}

/// The proxy; it stops with the test's runtime.
pub struct Proxy {
    pub url: String,
    state: Arc<ProxyState>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        let state = Arc::new(ProxyState {
            upstream: upstream.into(),
            client: reqwest::Client::new(),
            trap: Mutex::new(Trap::None),
            sends: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/", axum::routing::post(proxy))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, state }
    }

    /// Sets what happens to the next send (once).
    pub fn arm(&self, trap: Trap) {
        *self.state.trap.lock().unwrap() = trap;
    }

    pub fn sends(&self) -> Vec<String> {
        self.state.sends.lock().unwrap().clone()
    }
}

async fn proxy(
    axum::extract::State(state): axum::extract::State<Arc<ProxyState>>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    let forward = || async {
        let reply = state
            .client
            .post(&state.upstream)
            .json(&body)
            .send()
            .await
            .expect("upstream node");
        reply.json::<Value>().await.expect("upstream reply")
    };
    if matches!(
        body["method"].as_str(),
        Some("eth_sendRawTransaction" | "sendTransaction")
    ) {
        state
            .sends
            .lock()
            .unwrap()
            .push(body["params"][0].as_str().unwrap_or_default().to_string());
        let trap = std::mem::replace(&mut *state.trap.lock().unwrap(), Trap::None);
        let hang = || tokio::time::sleep(Duration::from_secs(30));
        match trap {
            Trap::None => {}
            Trap::ForwardThenHang => {
                forward().await;
                hang().await;
            }
            Trap::SwallowAndHang => hang().await,
            Trap::Refuse(code, message) => {
                return axum::Json(json!({
                    "jsonrpc": "2.0",
                    "id": body["id"],
                    "error": {"code": code, "message": message},
                }));
            }
        }
    }
    axum::Json(forward().await)
}

/// An RPC endpoint that accepts connections and drops them at once (a fast failure)
/// until `hang` is called; from then on it holds every connection and never answers.
pub struct HangingEndpoint {
    pub url: String,
    hanging: Arc<std::sync::atomic::AtomicBool>,
}

impl HangingEndpoint {
    pub async fn start() -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let hanging = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = hanging.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                if flag.load(Ordering::SeqCst) {
                    held.push(socket);
                }
            }
        });
        Self { url, hanging }
    }

    /// From now on, never answer.
    pub fn hang(&self) {
        self.hanging
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
