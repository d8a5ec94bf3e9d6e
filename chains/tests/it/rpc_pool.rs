//! `RpcPool`: failover, breakers and health, what counts as an answer, and how a send that
//! got no answer is classified (maybe sent → `Unknown`, surely not sent → `Unavailable`).

use crate::support::{Node, Reply, dead_url, node_error, within};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use waas_chains::rpc::{RpcError, RpcPool, SendAnswer, redact_url};
use waas_core::health::BreakerState;
use waas_core::ports::{BroadcastError, ChainError, Rejection};

const TIMEOUT: Duration = Duration::from_millis(300);

fn pool_of(urls: &[&str]) -> RpcPool {
    RpcPool::new(
        "testnet",
        urls.iter().map(|u| u.to_string()).collect(),
        TIMEOUT,
    )
    .unwrap()
}

fn never_known(_: &str) -> SendAnswer {
    SendAnswer::Refused(Rejection::Other)
}

fn classify(message: &str) -> SendAnswer {
    if message.contains("already known") {
        SendAnswer::AlreadyKnown
    } else if message.contains("underpriced") || message.contains("fee too low") {
        SendAnswer::Refused(Rejection::Underpriced)
    } else if message.contains("nonce too low") {
        SendAnswer::Refused(Rejection::NonceUsed)
    } else {
        SendAnswer::Refused(Rejection::Other)
    }
}

async fn send(pool: &RpcPool) -> Result<(), BroadcastError> {
    within(pool.send_transaction("eth_sendRawTransaction", json!(["0xf00d"]), classify)).await
}

fn html_error(status: u16) -> Reply {
    Reply::Http(status, "text/html", "<html>bad gateway</html>".into())
}

#[tokio::test]
async fn a_refused_first_url_fails_over_to_the_second() {
    let good = Node::answering(json!("0x2a")).await;
    let dead = dead_url();
    let pool = pool_of(&[&dead, &good.url_with_key()]);

    let answer = pool.call("eth_blockNumber", json!([])).await.unwrap();
    assert_eq!(answer, json!("0x2a"));
    assert_eq!(good.calls("eth_blockNumber"), 1);

    let health = pool.health();
    assert_eq!(health.len(), 2);
    let (bad, ok) = (&health[0], &health[1]);
    assert_eq!(bad.health.consecutive_failures, 1);
    assert_eq!(bad.health.score, 0.0, "a URL that only failed scores 0");
    assert!(bad.health.latency_ms.is_none());
    assert_eq!(ok.health.state, BreakerState::Closed);
    assert_eq!(ok.health.consecutive_failures, 0);
    assert!(ok.health.score > 0.5, "{ok:?}");
    assert!(ok.health.latency_ms.is_some());
    // Endpoints are reported as scheme://host:port only: the path and query hold keys.
    for endpoint in &health {
        assert!(!endpoint.endpoint.contains("SECRET"), "{endpoint:?}");
        assert!(endpoint.endpoint.starts_with("http://127.0.0.1:"));
    }
}

#[tokio::test]
async fn a_failing_url_is_ranked_after_the_healthy_one() {
    let broken = Node::start(|_, _| html_error(502)).await;
    let good = Node::answering(json!("0x1")).await;
    let pool = pool_of(&[&broken.url, &good.url]);

    for _ in 0..5 {
        assert_eq!(
            pool.call("eth_chainId", json!([])).await.unwrap(),
            json!("0x1")
        );
    }
    // Tried once (it is first in the configuration), then never again while the other
    // one answers: its score dropped below the healthy URL's.
    assert_eq!(broken.calls("eth_chainId"), 1);
    assert_eq!(good.calls("eth_chainId"), 5);
    let health = pool.health();
    assert!(
        health[0].health.score < health[1].health.score,
        "{health:?}"
    );
    assert_eq!(health[1].health.state, BreakerState::Closed);
}

#[tokio::test]
async fn repeated_failures_open_the_breaker_and_an_open_pool_still_probes() {
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let node = Node::start(move |_, _| {
        if flag.load(Ordering::SeqCst) {
            Reply::Result(json!("0x7"))
        } else {
            Reply::Http(503, "text/plain", "upstream unavailable".into())
        }
    })
    .await;
    let pool = pool_of(&[&node.url]);

    for attempt in 1..=3u32 {
        let error = pool.call("eth_blockNumber", json!([])).await.unwrap_err();
        assert!(
            matches!(
                error,
                RpcError::Unreachable {
                    maybe_sent: true,
                    ..
                }
            ),
            "a 5xx page after the request was sent: {error:?}"
        );
        let health = &pool.health()[0].health;
        assert_eq!(health.consecutive_failures, attempt);
        let expected = if attempt < 3 {
            BreakerState::Closed
        } else {
            BreakerState::Open
        };
        assert_eq!(health.state, expected, "after {attempt} failures");
    }
    let health = &pool.health()[0].health;
    assert_eq!(health.opened_total, 1);
    assert_eq!(health.score, 0.0);

    // Every breaker is open: the pool still tries the URL rather than staying shut...
    assert!(pool.call("eth_blockNumber", json!([])).await.is_err());
    assert_eq!(node.calls("eth_blockNumber"), 4);
    // ...so it notices when the endpoint is back, and the breaker closes.
    healthy.store(true, Ordering::SeqCst);
    assert_eq!(
        pool.call("eth_blockNumber", json!([])).await.unwrap(),
        json!("0x7")
    );
    let health = &pool.health()[0].health;
    assert_eq!(health.state, BreakerState::Closed);
    assert_eq!(health.consecutive_failures, 0);
}

#[tokio::test]
async fn a_json_rpc_error_is_the_answer_not_a_reason_to_fail_over() {
    let erroring = Node::start(|_, _| node_error(-32000, "execution reverted")).await;
    let other = Node::answering(json!("0x5208")).await;
    let pool = pool_of(&[&erroring.url, &other.url]);

    match pool.call("eth_estimateGas", json!([{}])).await {
        Err(RpcError::Node { code, message }) => {
            assert_eq!(code, -32000);
            assert_eq!(message, "execution reverted");
        }
        other => panic!("expected the node's error, got {other:?}"),
    }
    assert_eq!(
        other.calls("eth_estimateGas"),
        0,
        "no failover on a node error"
    );
    // The node answered: it counts as healthy.
    let health = &pool.health()[0].health;
    assert_eq!(health.state, BreakerState::Closed);
    assert_eq!(health.consecutive_failures, 0);
    assert!(health.score > 0.5, "{health:?}");

    // `request` maps it to a rejection carrying the node's message. (A pool of one: with
    // two, the untried URL now outranks the first; see `the_first_url_is_preferred_...`.)
    match pool_of(&[&erroring.url])
        .request("eth_estimateGas", json!([{}]))
        .await
    {
        Err(ChainError::Rejected(message)) => assert_eq!(message, "execution reverted"),
        other => panic!("expected Rejected, got {other:?}"),
    }
    // A JSON-RPC error with no message still is an answer.
    let terse = Node::start(|_, _| {
        Reply::Http(
            200,
            "application/json",
            r#"{"jsonrpc":"2.0","id":1,"error":{}}"#.into(),
        )
    })
    .await;
    let error = pool_of(&[&terse.url])
        .call("x", json!([]))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, RpcError::Node { code: 0, message } if message == "unknown error"),
        "{error:?}"
    );
}

#[tokio::test]
async fn requests_are_json_rpc_2_with_distinct_ids() {
    let node = Node::answering(Value::Null).await;
    let pool = pool_of(&[&node.url]);
    for _ in 0..3 {
        assert_eq!(
            pool.call("getBalance", json!(["abc", {"commitment": "confirmed"}]))
                .await
                .unwrap(),
            Value::Null
        );
    }
    let requests = node.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(request["jsonrpc"], "2.0");
        assert_eq!(request["method"], "getBalance");
        assert_eq!(
            request["params"],
            json!(["abc", {"commitment": "confirmed"}])
        );
    }
    let mut ids: Vec<u64> = requests.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "ids: {ids:?}");
}

#[tokio::test]
async fn error_pages_fail_over_and_say_whether_the_request_may_have_arrived() {
    // A proxy's HTML error page is not an answer: the next URL is tried.
    let proxy = Node::start(|_, _| html_error(500)).await;
    let good = Node::answering(json!("0x1")).await;
    let pool1 = pool_of(&[&proxy.url, &good.url]);
    assert_eq!(
        pool1.call("eth_chainId", json!([])).await.unwrap(),
        json!("0x1")
    );
    assert_eq!(pool1.health()[0].health.consecutive_failures, 1);

    // A 4xx page means the request was refused before it was processed: nothing was sent.
    let limited = Node::start(|_, _| Reply::Http(429, "text/plain", "slow down".into())).await;
    match send(&pool_of(&[&limited.url])).await {
        Err(BroadcastError::Unavailable(ChainError::Unavailable { network, detail })) => {
            assert_eq!(network, "testnet");
            assert!(detail.contains("429"), "{detail}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // A 5xx page may come after the node got the transaction: outcome unknown.
    let gateway = Node::start(|_, _| html_error(502)).await;
    match send(&pool_of(&[&gateway.url])).await {
        Err(BroadcastError::Unknown(detail)) => assert!(detail.contains("502"), "{detail}"),
        other => panic!("expected Unknown, got {other:?}"),
    }
}

#[tokio::test]
async fn a_send_that_times_out_is_unknown() {
    let silent = Node::start(|_, _| Reply::Hang).await;
    let pool = pool_of(&[&silent.url_with_key()]);
    let started = Instant::now();
    let outcome = send(&pool).await;
    let took = started.elapsed();
    match outcome {
        Err(BroadcastError::Unknown(detail)) => {
            assert!(detail.contains("timed out"), "{detail}");
            assert!(!detail.contains("SECRET"), "the URL's key leaked: {detail}");
        }
        other => panic!("expected Unknown, got {other:?}"),
    }
    assert!(took >= TIMEOUT, "gave up after {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "the timeout was not applied: {took:?}"
    );
    assert_eq!(silent.calls("eth_sendRawTransaction"), 1);

    // A read that times out is plain unavailability (nothing is "sent" by a read).
    match within(pool.request("eth_blockNumber", json!([]))).await {
        Err(ChainError::Unavailable { detail, .. }) => assert!(detail.contains("timed out")),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_send_refused_by_every_url_is_unavailable() {
    let (first, second) = (dead_url(), dead_url());
    let pool = pool_of(&[&first, &second]);
    match send(&pool).await {
        Err(BroadcastError::Unavailable(ChainError::Unavailable { network, detail })) => {
            assert_eq!(network, "testnet");
            // Both URLs were tried, and neither key shows.
            assert_eq!(detail.matches("connection failed").count(), 2, "{detail}");
            assert!(!detail.contains("SECRET"), "{detail}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    for endpoint in pool.health() {
        assert_eq!(endpoint.health.consecutive_failures, 1);
    }
}

#[tokio::test]
async fn one_silent_url_among_refusing_ones_makes_the_send_unknown() {
    let silent = Node::start(|_, _| Reply::Hang).await;
    let dead = dead_url();
    for urls in [
        [dead.as_str(), silent.url.as_str()],
        [silent.url.as_str(), dead.as_str()],
    ] {
        let outcome = send(&pool_of(&urls)).await;
        assert!(
            matches!(outcome, Err(BroadcastError::Unknown(_))),
            "{urls:?}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn after_a_timeout_the_same_bytes_go_to_the_next_url() {
    let silent = Node::start(|_, _| Reply::Hang).await;
    let good = Node::answering(json!("0xhash")).await;
    let pool = pool_of(&[&silent.url, &good.url]);
    send(&pool).await.unwrap();
    let sent = silent.params_of("eth_sendRawTransaction");
    let resent = good.params_of("eth_sendRawTransaction");
    assert_eq!(sent, vec![json!(["0xf00d"])]);
    assert_eq!(resent, sent, "the same signed bytes, not a new transaction");
}

#[tokio::test]
async fn a_connection_dropped_after_the_request_is_unknown() {
    let dropping = Node::start(|_, _| Reply::Close).await;
    let outcome = send(&pool_of(&[&dropping.url])).await;
    assert!(
        matches!(outcome, Err(BroadcastError::Unknown(_))),
        "{outcome:?}"
    );
    assert!(dropping.calls("eth_sendRawTransaction") >= 1);
}

#[tokio::test]
async fn a_stalled_answer_body_is_bounded_by_the_timeout() {
    let stalling = Node::start(|_, _| Reply::StallBody).await;
    let pool = pool_of(&[&stalling.url]);
    let started = Instant::now();
    // `send` fails the test if the per-call timeout does not cover reading the body.
    let outcome = send(&pool).await;
    assert!(
        matches!(outcome, Err(BroadcastError::Unknown(_))),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn send_classifies_node_errors() {
    let node = Node::start(|_, params| match params[0].as_str().unwrap() {
        "0x01" => node_error(-32000, "already known"),
        "0x02" => node_error(-32000, "replacement transaction underpriced"),
        "0x03" => node_error(-32000, "nonce too low"),
        _ => Reply::Result(json!("0xhash")),
    })
    .await;
    let pool = pool_of(&[&node.url]);
    let send = |raw: &'static str| {
        let pool = &pool;
        async move {
            pool.send_transaction("eth_sendRawTransaction", json!([raw]), classify)
                .await
        }
    };
    send("0x00").await.unwrap();
    send("0x01").await.unwrap();
    match send("0x02").await {
        Err(BroadcastError::Rejected {
            reason,
            rejection: Rejection::Underpriced,
        }) => assert_eq!(reason, "replacement transaction underpriced"),
        other => panic!("{other:?}"),
    }
    match send("0x03").await {
        Err(BroadcastError::Rejected {
            reason,
            rejection: Rejection::NonceUsed,
        }) => assert_eq!(reason, "nonce too low"),
        other => panic!("{other:?}"),
    }
    // The classifier is the caller's: with one that knows nothing, "already known" is a
    // rejection.
    let outcome = pool
        .send_transaction("eth_sendRawTransaction", json!(["0x01"]), never_known)
        .await;
    assert!(matches!(
        outcome,
        Err(BroadcastError::Rejected {
            rejection: Rejection::Other,
            ..
        })
    ));
}

/// A first URL that may have taken the bytes (it timed out, or answered 5xx), then a
/// second URL that refuses them: the refusal does not undo the first send, so the outcome
/// is unknown whatever the refusal says. Acceptance ("already known") still counts.
#[tokio::test]
async fn a_refusal_after_a_possible_send_is_an_unknown_outcome() {
    for refusal in [
        "fee too low",
        "nonce too low",
        "replacement transaction underpriced",
        "Blockhash not found",
        "insufficient funds for gas * price + value",
    ] {
        let silent = Node::start(|_, _| Reply::Hang).await;
        let refusing = Node::start(move |_, _| node_error(-32000, refusal)).await;
        let gateway = Node::start(|_, _| html_error(503)).await;
        for first in [&silent.url, &gateway.url] {
            let pool = pool_of(&[first, &refusing.url]);
            match send(&pool).await {
                Err(BroadcastError::Unknown(detail)) => {
                    assert!(detail.contains(refusal), "{refusal}: {detail}");
                }
                other => panic!("{refusal} after {first}: expected Unknown, got {other:?}"),
            }
        }
        assert_eq!(refusing.calls("eth_sendRawTransaction"), 2, "{refusal}");
    }
    // Acceptance after a possible send is acceptance.
    let silent = Node::start(|_, _| Reply::Hang).await;
    let knowing = Node::start(|_, _| node_error(-32000, "already known")).await;
    send(&pool_of(&[&silent.url, &knowing.url])).await.unwrap();
    // A refusal after a URL that surely did not take the bytes (connection refused, 4xx)
    // stays a refusal.
    let dead = dead_url();
    let limited = Node::start(|_, _| Reply::Http(429, "text/plain", "slow down".into())).await;
    let refusing = Node::start(|_, _| node_error(-32000, "nonce too low")).await;
    for first in [&dead, &limited.url] {
        match send(&pool_of(&[first, &refusing.url])).await {
            Err(BroadcastError::Rejected {
                rejection: Rejection::NonceUsed,
                ..
            }) => {}
            other => panic!("after {first}: expected a refusal, got {other:?}"),
        }
    }
}

/// `endpoints()` hands out every endpoint in call order, each asked on its own.
#[tokio::test]
async fn endpoints_are_asked_one_by_one() {
    let first = Node::answering(json!("0x1")).await;
    let second = Node::answering(json!("0x2")).await;
    let pool = pool_of(&[&first.url, &second.url]);
    let endpoints = pool.endpoints();
    assert_eq!(endpoints.len(), 2);
    assert_eq!(
        endpoints[1]
            .call("eth_blockNumber", json!([]))
            .await
            .unwrap(),
        json!("0x2")
    );
    assert_eq!(first.calls("eth_blockNumber"), 0, "only the endpoint asked");
    let silent = Node::start(|_, _| Reply::Hang).await;
    let pool = pool_of(&[&silent.url]);
    match pool.endpoints()[0].call("eth_blockNumber", json!([])).await {
        Err(RpcError::Unreachable { .. }) => {}
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[test]
fn bad_urls_are_refused_without_showing_their_keys() {
    let timeout = Duration::from_secs(1);
    let error = RpcPool::new("n", vec![], timeout).unwrap_err();
    assert!(error.contains("at least one RPC URL"), "{error}");

    let error = RpcPool::new(
        "n",
        vec!["wss://node.example/v3/SECRET-API-KEY".into()],
        timeout,
    )
    .unwrap_err();
    assert!(error.contains("must be http or https"), "{error}");
    assert!(error.contains("wss://node.example"), "{error}");
    assert!(!error.contains("SECRET"), "{error}");

    let error = RpcPool::new("n", vec!["not a url SECRET".into()], timeout).unwrap_err();
    assert!(error.contains("<invalid url>"), "{error}");
    assert!(!error.contains("SECRET"), "{error}");

    let pool = RpcPool::new("n", vec!["https://node.example".into()], timeout).unwrap();
    assert_eq!(pool.network(), "n");
}

#[test]
fn redacted_urls_keep_only_scheme_host_and_port() {
    assert_eq!(
        redact_url("https://user:password@node.example:8443/v3/KEY?apikey=KEY#frag"),
        "https://node.example:8443"
    );
    assert_eq!(
        redact_url("https://node.example/KEY"),
        "https://node.example"
    );
    // The default port is not repeated.
    assert_eq!(
        redact_url("http://node.example:80/KEY"),
        "http://node.example"
    );
    assert_eq!(redact_url("::"), "<invalid url>");
}

/// A rate limit answered as JSON (what hosted RPC providers send with HTTP 429) is not the
/// node's answer: the pool fails over to the healthy URL and records the failure, and a
/// broadcast is "not sent" rather than a rejection that would fail the request for good.
#[tokio::test]
async fn a_json_rate_limit_is_not_an_answer() {
    let limited = Node::start(|_, _| {
        Reply::Http(
            429,
            "application/json",
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":429,"message":"Your app has exceeded its compute units per second capacity"}}"#.into(),
        )
    })
    .await;
    let good = Node::answering(json!("0x1")).await;
    let pool = pool_of(&[&limited.url, &good.url]);
    let answer = pool.call("eth_chainId", json!([])).await;
    assert_eq!(
        answer.ok(),
        Some(json!("0x1")),
        "should fail over to the good URL"
    );
    assert_eq!(pool.health()[0].health.consecutive_failures, 1);

    let alone = pool_of(&[&limited.url]);
    let outcome = send(&alone).await;
    assert!(
        matches!(outcome, Err(BroadcastError::Unavailable(_))),
        "a rate-limited send was not processed: {outcome:?}"
    );
}

/// A gateway's JSON error page (`{"message":"Internal server error"}` with HTTP 502, as API
/// gateways send) is not a JSON-RPC answer: never a `null` result, never a successful
/// broadcast; a send may have arrived, so its outcome is unknown.
#[tokio::test]
async fn a_json_gateway_error_page_is_not_an_answer() {
    let gateway = Node::start(|_, _| {
        Reply::Http(
            502,
            "application/json",
            r#"{"message":"Internal server error"}"#.into(),
        )
    })
    .await;
    let good = Node::answering(json!("0x1")).await;
    let pool = pool_of(&[&gateway.url, &good.url]);
    let answer = pool.call("eth_chainId", json!([])).await;
    assert_eq!(
        answer.ok(),
        Some(json!("0x1")),
        "should fail over to the good URL"
    );

    let alone = pool_of(&[&gateway.url]);
    let outcome = send(&alone).await;
    assert!(
        matches!(outcome, Err(BroadcastError::Unknown(_))),
        "a 502 is not an acceptance: {outcome:?}"
    );
}

/// The first configured URL is preferred while healthy (config.rs, `rpc_urls`): a URL not
/// used yet, or one faster by a fraction of a millisecond, does not take its place.
#[tokio::test]
async fn the_first_url_is_preferred_while_healthy() {
    let primary = Node::answering(json!("0x1")).await;
    let secondary = Node::answering(json!("0x1")).await;
    let pool = pool_of(&[&primary.url, &secondary.url]);
    for _ in 0..5 {
        pool.call("eth_chainId", json!([])).await.unwrap();
    }
    assert_eq!(
        (primary.calls("eth_chainId"), secondary.calls("eth_chainId")),
        (5, 0)
    );
}
