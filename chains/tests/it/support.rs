//! A scripted JSON-RPC node: a small HTTP/1.1 server on a loopback port (keep-alive, one
//! JSON-RPC request per HTTP request) whose reply to each request a closure decides. It
//! records every request it receives. Dropping the node stops its tasks.

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// What the node does with one request.
#[derive(Debug)]
pub enum Reply {
    /// `{"result": ...}` with HTTP 200.
    Result(Value),
    /// `{"error": {"code", "message"}}` with HTTP 200.
    Error(i64, String),
    /// Any HTTP status, content type and body, as is.
    Http(u16, &'static str, String),
    /// Reads the request and never answers (the connection stays open).
    Hang,
    /// Reads the request and closes the connection without answering.
    Close,
    /// Sends the status line and headers announcing a body, then stalls.
    StallBody,
    /// Waits, then replies.
    After(Duration, Box<Reply>),
}

/// `Reply::Error`.
pub fn node_error(code: i64, message: &str) -> Reply {
    Reply::Error(code, message.to_string())
}

type Script = dyn Fn(&str, &Value) -> Reply + Send + Sync;

/// A scripted node on `127.0.0.1:<free port>`.
#[derive(Debug)]
pub struct Node {
    pub url: String,
    requests: Arc<Mutex<Vec<Value>>>,
    server: JoinHandle<()>,
}

impl Drop for Node {
    fn drop(&mut self) {
        // The accept loop owns the connections' tasks (a `JoinSet`): they stop with it.
        self.server.abort();
    }
}

impl Node {
    /// Starts a node answering each request with `script(method, params)`.
    pub async fn start(script: impl Fn(&str, &Value) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let recorded = requests.clone();
        let server = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { return };
                        connections.spawn(serve(stream, script.clone(), recorded.clone()));
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Self {
            url,
            requests,
            server,
        }
    }

    /// A node answering every request with the same result.
    pub async fn answering(result: Value) -> Self {
        Self::start(move |_, _| Reply::Result(result.clone())).await
    }

    /// Every JSON-RPC request received, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    /// The methods called, in order.
    pub fn methods(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| r["method"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// How many requests for `method` arrived.
    pub fn calls(&self, method: &str) -> usize {
        self.methods().iter().filter(|m| *m == method).count()
    }

    /// The params of every request for `method`.
    pub fn params_of(&self, method: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["method"] == method)
            .map(|r| r["params"].clone())
            .collect()
    }

    /// This node's URL with a path and query that stand for an API key.
    pub fn url_with_key(&self) -> String {
        format!("{}/v3/SECRET-API-KEY?key=SECRET-API-KEY", self.url)
    }
}

/// A loopback URL nothing listens on (connections are refused).
pub fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/v3/SECRET-API-KEY")
}

async fn serve(mut stream: TcpStream, script: Arc<Script>, requests: Arc<Mutex<Vec<Value>>>) {
    let mut buffer = Vec::new();
    while let Some(body) = read_request(&mut stream, &mut buffer).await {
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        requests.lock().unwrap().push(request.clone());
        let method = request["method"].as_str().unwrap_or_default().to_string();
        let mut reply = script(&method, &request["params"]);
        while let Reply::After(delay, then) = reply {
            tokio::time::sleep(delay).await;
            reply = *then;
        }
        let id = request["id"].clone();
        let (status, content_type, body) = match reply {
            Reply::Result(result) => (
                200,
                "application/json",
                json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
            ),
            Reply::Error(code, message) => (
                200,
                "application/json",
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
                    .to_string(),
            ),
            Reply::Http(status, content_type, body) => (status, content_type, body),
            Reply::Hang => std::future::pending().await,
            Reply::Close => return,
            Reply::StallBody => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                            content-length: 1000\r\n\r\n{\"jsonrpc\":\"2.0\",";
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.flush().await;
                std::future::pending().await
            }
            Reply::After(..) => unreachable!("unwrapped above"),
        };
        let response = format!(
            "HTTP/1.1 {status} Scripted\r\ncontent-type: {content_type}\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The body of the next HTTP request on `stream` (`None` once the client hangs up).
async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_string();
            let length = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let total = end + 4 + length;
            while buffer.len() < total {
                read_more(stream, buffer).await?;
            }
            let body = buffer[end + 4..total].to_vec();
            buffer.drain(..total);
            return Some(body);
        }
        read_more(stream, buffer).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(read) => {
            buffer.extend_from_slice(&chunk[..read]);
            Some(())
        }
    }
}

/// Awaits `future`, failing the test after 5 s: the clients' timeouts are a few hundred
/// milliseconds, so a call still running then ignored its timeout (and would hang here).
pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), future)
        .await
        .expect("the call outlived its timeout")
}

/// A 0x-hex JSON-RPC quantity.
pub fn hex_qty(value: u128) -> Value {
    Value::String(format!("{value:#x}"))
}
