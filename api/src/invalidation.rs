//! The invalidation bus: tells every API process that something cached went stale (an API
//! key was revoked, a tenant's plan changed).
//!
//! [`InvalidationBus::publish`] runs this process's handlers at once, then publishes on
//! Redis (`PUBLISH <prefix>:invalidate:<topic>`); every other process's listener (one
//! dedicated pub/sub connection, reconnecting with exponential backoff, pinged so a
//! half-open connection is noticed) runs its handlers for the topic. Without `redis.url`
//! the bus is local only.
//!
//! Pub/sub is at-most-once: a message sent while a listener is disconnected is lost. So
//! every handler must be idempotent, and every consumer needs a way to catch up:
//! [`InvalidationBus::on_resync`] handlers run after each (re)subscription, and consumers
//! should also refresh periodically (the API-key revocation sweep does both; see the README
//! for the bound). Publishing never fails a request: a Redis error is logged.

use futures::StreamExt;
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;

/// What went stale. The payload of each topic is a plain string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Payload: the revoked API key's id.
    ApiKeyRevoked,
    /// Payload: the tenant id whose plan changed.
    TenantPlanChanged,
}

impl Topic {
    pub const ALL: [Topic; 2] = [Topic::ApiKeyRevoked, Topic::TenantPlanChanged];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::ApiKeyRevoked => "api_key_revoked",
            Topic::TenantPlanChanged => "tenant_plan_changed",
        }
    }
}

type Handler = Arc<dyn Fn(String) -> BoxFuture<'static, ()> + Send + Sync>;
type ResyncHandler = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// The default channel prefix (`redis.channel_prefix`).
pub const DEFAULT_CHANNEL_PREFIX: &str = "waas";

const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const PING_EVERY: Duration = Duration::from_secs(15);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// One message on the wire: JSON `{"origin": <process id>, "payload": <text>}`.
#[derive(Serialize, Deserialize)]
struct Envelope {
    origin: String,
    payload: String,
}

struct RedisSide {
    client: deadpool_redis::redis::Client,
    publisher: deadpool_redis::Pool,
}

/// The bus of one API process. Cheap to share (`Arc`).
pub struct InvalidationBus {
    /// This process's random id: its own messages coming back from Redis are skipped.
    origin: String,
    prefix: String,
    handlers: RwLock<HashMap<Topic, Vec<Handler>>>,
    resync: RwLock<Vec<ResyncHandler>>,
    redis: Option<RedisSide>,
    subscribed: AtomicBool,
}

impl std::fmt::Debug for InvalidationBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvalidationBus")
            .field("prefix", &self.prefix)
            .field("redis", &self.redis.is_some())
            .field("subscribed", &self.is_subscribed())
            .finish_non_exhaustive()
    }
}

impl InvalidationBus {
    /// A bus that reaches this process only (no `redis.url`).
    pub fn local() -> Arc<Self> {
        Arc::new(Self::new(DEFAULT_CHANNEL_PREFIX, None))
    }

    /// A bus over Redis at `url`, on channels `<prefix>:invalidate:<topic>`. Connects
    /// lazily: call [`InvalidationBus::spawn_listener`] to receive.
    pub fn redis(url: &SecretString, prefix: &str) -> anyhow::Result<Arc<Self>> {
        let client = deadpool_redis::redis::Client::open(url.expose_secret())
            .map_err(|_| anyhow::anyhow!("redis.url is not a valid Redis URL"))?;
        let mut config = deadpool_redis::Config::from_url(url.expose_secret());
        config.pool = Some(deadpool_redis::PoolConfig::new(4));
        let publisher = config
            .create_pool(Some(deadpool_redis::Runtime::Tokio1))
            .map_err(|_| anyhow::anyhow!("redis.url: could not create a connection pool"))?;
        Ok(Arc::new(Self::new(
            prefix,
            Some(RedisSide { client, publisher }),
        )))
    }

    fn new(prefix: &str, redis: Option<RedisSide>) -> Self {
        Self {
            origin: uuid::Uuid::new_v4().to_string(),
            prefix: prefix.to_string(),
            handlers: RwLock::new(HashMap::new()),
            resync: RwLock::new(Vec::new()),
            redis,
            subscribed: AtomicBool::new(false),
        }
    }

    /// The Redis channel of `topic`.
    pub fn channel(&self, topic: Topic) -> String {
        format!("{}:invalidate:{}", self.prefix, topic.as_str())
    }

    /// Whether the bus reaches other processes right now: `None` when it is local only,
    /// else whether the listener is subscribed.
    pub fn redis_subscribed(&self) -> Option<bool> {
        self.redis.as_ref().map(|_| self.is_subscribed())
    }

    fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    /// Registers `handler` for `topic`; it receives the payload. Handlers must be
    /// idempotent (a message may be handled more than once, or be lost — see `on_resync`).
    pub fn on<F, Fut>(&self, topic: Topic, handler: F)
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |payload| Box::pin(handler(payload)));
        if let Ok(mut handlers) = self.handlers.write() {
            handlers.entry(topic).or_default().push(handler);
        }
    }

    /// Registers `handler` to run after every (re)subscription to Redis: messages sent while
    /// this process was not subscribed are lost, so a consumer reloads what it caches.
    pub fn on_resync<F, Fut>(&self, handler: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: ResyncHandler = Arc::new(move || Box::pin(handler()));
        if let Ok(mut handlers) = self.resync.write() {
            handlers.push(handler);
        }
    }

    /// Runs this process's handlers for `topic`, then tells the other processes (when Redis
    /// is configured). Never fails: a Redis failure is logged and left to the consumers'
    /// catch-up.
    pub async fn publish(&self, topic: Topic, payload: &str) {
        self.dispatch(topic, payload.to_string()).await;
        let Some(redis) = &self.redis else {
            return;
        };
        let envelope = Envelope {
            origin: self.origin.clone(),
            payload: payload.to_string(),
        };
        let Ok(message) = serde_json::to_string(&envelope) else {
            return;
        };
        let channel = self.channel(topic);
        let sent = tokio::time::timeout(PUBLISH_TIMEOUT, async {
            let mut connection = redis
                .publisher
                .get()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            deadpool_redis::redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(&message)
                .query_async::<i64>(&mut connection)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
        })
        .await;
        match sent {
            Ok(Ok(_receivers)) => {}
            Ok(Err(error)) => {
                tracing::warn!(topic = topic.as_str(), %error, "publishing an invalidation failed; other API processes catch up on their own");
            }
            Err(_) => {
                tracing::warn!(
                    topic = topic.as_str(),
                    "publishing an invalidation timed out; other API processes catch up on their own"
                );
            }
        }
    }

    async fn dispatch(&self, topic: Topic, payload: String) {
        let handlers: Vec<Handler> = self
            .handlers
            .read()
            .map(|handlers| handlers.get(&topic).cloned().unwrap_or_default())
            .unwrap_or_default();
        for handler in handlers {
            handler(payload.clone()).await;
        }
    }

    async fn run_resync(&self) {
        let handlers: Vec<ResyncHandler> = self
            .resync
            .read()
            .map(|handlers| handlers.clone())
            .unwrap_or_default();
        for handler in handlers {
            handler().await;
        }
    }

    /// Starts the listener (Redis only; `None` for a local bus). Waits until the first
    /// subscription succeeded or failed (at most a few seconds), so a process that can
    /// reach Redis hears revocations from its first request on.
    pub async fn spawn_listener(self: &Arc<Self>) -> Option<JoinHandle<()>> {
        self.redis.as_ref()?;
        let (first, first_done) = tokio::sync::oneshot::channel();
        let bus = self.clone();
        let handle = tokio::spawn(async move { bus.listen(first).await });
        let _ = tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_secs(1), first_done).await;
        Some(handle)
    }

    async fn listen(self: Arc<Self>, first: tokio::sync::oneshot::Sender<()>) {
        let mut first = Some(first);
        let mut backoff = BACKOFF_FIRST;
        loop {
            match self.subscribe().await {
                Ok((sink, stream)) => {
                    self.subscribed.store(true, Ordering::Relaxed);
                    backoff = BACKOFF_FIRST;
                    tracing::info!(prefix = %self.prefix, "invalidation bus subscribed");
                    if let Some(first) = first.take() {
                        let _ = first.send(());
                    }
                    self.run_resync().await;
                    self.receive(sink, stream).await;
                    self.subscribed.store(false, Ordering::Relaxed);
                    tracing::warn!("invalidation bus lost its Redis connection; reconnecting");
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "invalidation bus cannot subscribe to Redis");
                    if let Some(first) = first.take() {
                        let _ = first.send(());
                    }
                }
            }
            tokio::time::sleep(jittered(backoff)).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn subscribe(
        &self,
    ) -> anyhow::Result<(
        deadpool_redis::redis::aio::PubSubSink,
        deadpool_redis::redis::aio::PubSubStream,
    )> {
        let redis = self
            .redis
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no Redis"))?;
        let channels: Vec<String> = Topic::ALL.iter().map(|t| self.channel(*t)).collect();
        tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut pubsub = redis.client.get_async_pubsub().await?;
            pubsub.subscribe(&channels).await?;
            Ok::<_, deadpool_redis::redis::RedisError>(pubsub.split())
        })
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))?
        .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Handles messages until the connection ends or stops answering pings.
    async fn receive(
        &self,
        mut sink: deadpool_redis::redis::aio::PubSubSink,
        mut stream: deadpool_redis::redis::aio::PubSubStream,
    ) {
        let topics: HashMap<String, Topic> =
            Topic::ALL.iter().map(|t| (self.channel(*t), *t)).collect();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { return };
                    let Some(topic) = topics.get(message.get_channel_name()).copied() else {
                        continue;
                    };
                    let Ok(text) = message.get_payload::<String>() else { continue };
                    let Ok(envelope) = serde_json::from_str::<Envelope>(&text) else {
                        tracing::warn!(channel = message.get_channel_name(), "ignoring a malformed invalidation message");
                        continue;
                    };
                    if envelope.origin != self.origin {
                        self.dispatch(topic, envelope.payload).await;
                    }
                }
                _ = ping.tick() => {
                    let answered = tokio::time::timeout(
                        CONNECT_TIMEOUT,
                        sink.ping::<deadpool_redis::redis::Value>(),
                    )
                    .await;
                    if !matches!(answered, Ok(Ok(_))) {
                        return;
                    }
                }
            }
        }
    }
}

/// `base` plus up to 25 % random jitter, so restarted processes do not reconnect in step.
fn jittered(base: Duration) -> Duration {
    let quarter = u64::try_from(base.as_millis() / 4).unwrap_or(0).max(1);
    let extra = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * quarter / 255;
    base + Duration::from_millis(extra)
}
