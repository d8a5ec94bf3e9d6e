//! The shared limiter: one atomic Lua script (`redis_script.lua`, the twin of `gcra.rs`) per
//! request in Redis, so every API node counts against the same TATs on Redis's clock.
//!
//! Connections come from a deadpool-redis pool; the limiter keeps one multiplexed
//! connection (requests pipeline over it) and takes a fresh one from the pool only after an
//! error, because the pool pings every connection it hands out, which would double the
//! round trips of every request. Every call is bounded by a timeout; failures are the
//! caller's to handle (`limiter.rs` falls back to the local limiter).

use super::gcra::{Check, Decision, KeyState};
use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::{Manager, Pool, Runtime};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

/// Why Redis did not decide.
#[derive(Debug)]
pub enum RedisLimitError {
    Timeout(Duration),
    Redis(String),
}

impl std::fmt::Display for RedisLimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisLimitError::Timeout(after) => {
                write!(f, "redis did not answer within {} ms", after.as_millis())
            }
            RedisLimitError::Redis(error) => write!(f, "redis: {error}"),
        }
    }
}

impl std::error::Error for RedisLimitError {}

/// Rate limits kept in Redis.
pub struct RedisLimiter {
    pool: Pool,
    connection: RwLock<Option<MultiplexedConnection>>,
    script: deadpool_redis::redis::Script,
    timeout: Duration,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: not printed.
        f.debug_struct("RedisLimiter")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// A limiter on `url`. Connects lazily: an unreachable Redis does not stop the start.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, RedisLimitError> {
        use deadpool_redis::redis::IntoConnectionInfo;
        use deadpool_redis::redis::io::tcp::TcpSettings;
        let invalid =
            |e: &dyn std::fmt::Display| RedisLimitError::Redis(redacted(&e.to_string(), url));
        // Small request, small answer, one at a time per caller: send at once (no Nagle).
        let info = url
            .into_connection_info()
            .map_err(|e| invalid(&e))?
            .set_tcp_settings(TcpSettings::default().set_nodelay(true));
        let manager = Manager::new(info).map_err(|e| invalid(&e))?;
        let pool = Pool::builder(manager)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| invalid(&e))?;
        Ok(Self {
            pool,
            connection: RwLock::new(None),
            script: deadpool_redis::redis::Script::new(include_str!("redis_script.lua")),
            timeout,
        })
    }

    /// Decides a request against every check in one script run.
    pub async fn check(&self, checks: &[Check]) -> Result<Decision, RedisLimitError> {
        let mut invocation = self.script.prepare_invoke();
        for check in checks {
            invocation
                .key(&check.key)
                .arg(super::gcra::interval_micros(&check.rate))
                .arg(super::gcra::tolerance_micros(&check.rate));
        }
        let reply: Vec<i64> = self
            .bounded(async {
                let mut connection = self.connection().await?;
                invocation.invoke_async(&mut connection).await
            })
            .await?;
        parse_reply(&reply, checks)
    }

    /// Whether Redis answers a `PING` in time.
    pub async fn ping(&self) -> Result<(), RedisLimitError> {
        let _: String = self
            .bounded(async {
                let mut connection = self.connection().await?;
                deadpool_redis::redis::cmd("PING")
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok(())
    }

    /// Runs `call` within the timeout; on any failure forgets the connection, so the next
    /// call takes a fresh (pinged) one from the pool.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = deadpool_redis::redis::RedisResult<T>>,
    ) -> Result<T, RedisLimitError> {
        let outcome = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => RedisLimitError::Redis(error.to_string()),
            Err(_) => RedisLimitError::Timeout(self.timeout),
        };
        *self
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        Err(outcome)
    }

    async fn connection(&self) -> deadpool_redis::redis::RedisResult<MultiplexedConnection> {
        if let Some(connection) = self
            .connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            return Ok(connection.clone());
        }
        let pooled = self.pool.get().await.map_err(|error| {
            deadpool_redis::redis::RedisError::from(std::io::Error::other(error.to_string()))
        })?;
        let connection: MultiplexedConnection = (*pooled).clone();
        *self
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(connection.clone());
        Ok(connection)
    }
}

/// `{refused_by, retry_after_us, (remaining, reset_us) per key}` → a decision.
fn parse_reply(reply: &[i64], checks: &[Check]) -> Result<Decision, RedisLimitError> {
    let malformed = || RedisLimitError::Redis(format!("unexpected script reply {reply:?}"));
    if reply.len() != 2 + 2 * checks.len() {
        return Err(malformed());
    }
    let micros = |value: i64| Duration::from_micros(u64::try_from(value).unwrap_or(0));
    let refused_by = match reply.first().copied().ok_or_else(malformed)? {
        0 => None,
        index => Some(usize::try_from(index - 1).map_err(|_| malformed())?),
    };
    let retry_after = micros(reply.get(1).copied().ok_or_else(malformed)?);
    let states = reply
        .get(2..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|pair| KeyState {
            remaining: pair.first().map_or(0, |r| u64::try_from(*r).unwrap_or(0)),
            reset: pair.get(1).map_or(Duration::ZERO, |r| micros(*r)),
        })
        .collect();
    Ok(Decision {
        refused_by,
        retry_after,
        states,
        rates: checks.iter().map(|c| c.rate).collect(),
    })
}

/// `text` without `url` (which may hold a password).
fn redacted(text: &str, url: &str) -> String {
    text.replace(url, "<redis url>")
}
