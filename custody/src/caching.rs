//! A caching, measuring wrapper around any `KeyProtector`: unwrapped data keys are kept for a
//! short time (bounded size and TTL; `SymmetricKey` wipes itself when evicted) so repeated
//! signing with one key does not call the KMS or HSM every time; every call is counted and
//! timed for `/metrics`.

use async_trait::async_trait;
use moka::future::Cache;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use waas_core::ports::{CustodyError, KeyContext, KeyProtector, WrappedKey};
use waas_core::secret::SymmetricKey;

/// Counters of one protector, read by the metrics endpoint.
#[derive(Debug, Default)]
pub struct ProtectorStats {
    pub calls: AtomicU64,
    pub errors: AtomicU64,
    /// Total time spent in calls to the KMS/HSM/key file, in microseconds.
    pub call_micros: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
}

/// Wraps a protector with a data-key cache and call statistics.
#[derive(Debug, Clone)]
pub struct CachingProtector {
    inner: Arc<dyn KeyProtector>,
    cache: Cache<[u8; 32], SymmetricKey>,
    stats: Arc<ProtectorStats>,
}

impl CachingProtector {
    /// `ttl` zero disables caching (statistics are still kept).
    pub fn new(inner: Arc<dyn KeyProtector>, ttl: Duration, max_keys: u64) -> Self {
        let capacity = if ttl.is_zero() { 0 } else { max_keys };
        Self {
            inner,
            cache: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl.max(Duration::from_millis(1)))
                .build(),
            stats: Arc::new(ProtectorStats::default()),
        }
    }

    pub fn stats(&self) -> Arc<ProtectorStats> {
        self.stats.clone()
    }

    fn cache_key(wrapped: &WrappedKey, context: &KeyContext) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(wrapped.protector.as_bytes());
        hasher.update([0]);
        hasher.update(wrapped.kek_id.as_bytes());
        hasher.update([0]);
        hasher.update(&wrapped.bytes);
        hasher.update([0]);
        hasher.update(context.aad());
        hasher.finalize().into()
    }

    async fn timed<T>(
        &self,
        call: impl Future<Output = Result<T, CustodyError>>,
    ) -> Result<T, CustodyError> {
        let started = Instant::now();
        let result = call.await;
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        self.stats.call_micros.fetch_add(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if result.is_err() {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

#[async_trait]
impl KeyProtector for CachingProtector {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn current_kek_id(&self) -> String {
        self.inner.current_kek_id()
    }

    async fn rotate(&self) -> Result<String, CustodyError> {
        self.timed(self.inner.rotate()).await
    }

    async fn generate_data_key(
        &self,
        context: &KeyContext,
    ) -> Result<(SymmetricKey, WrappedKey), CustodyError> {
        self.timed(self.inner.generate_data_key(context)).await
    }

    async fn wrap(
        &self,
        data_key: &SymmetricKey,
        context: &KeyContext,
    ) -> Result<WrappedKey, CustodyError> {
        self.timed(self.inner.wrap(data_key, context)).await
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &KeyContext,
    ) -> Result<SymmetricKey, CustodyError> {
        let key = Self::cache_key(wrapped, context);
        if let Some(data_key) = self.cache.get(&key).await {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(data_key);
        }
        self.stats.cache_misses.fetch_add(1, Ordering::Relaxed);
        let data_key = self.timed(self.inner.unwrap(wrapped, context)).await?;
        self.cache.insert(key, data_key.clone()).await;
        Ok(data_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LocalKeyProtector, open, seal};
    use waas_core::secret::SecretBytes;

    fn context(key: &str) -> KeyContext {
        KeyContext {
            tenant: "t".into(),
            key: key.into(),
            party: 0,
            version: 1,
        }
    }

    fn local() -> Arc<dyn KeyProtector> {
        let dir = std::env::temp_dir().join(format!(
            "waas-caching-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        Arc::new(LocalKeyProtector::open_or_create(&dir.join("kek")).unwrap())
    }

    fn rand_suffix() -> u64 {
        use rand::RngCore;
        rand::rngs::OsRng.next_u64()
    }

    #[tokio::test]
    async fn repeated_opens_hit_the_cache_and_contexts_do_not_share_entries() {
        let protector = CachingProtector::new(local(), Duration::from_secs(60), 100);
        let stats = protector.stats();
        let secret = SecretBytes::new(vec![1; 48]);
        let sealed = seal(&protector, &context("a"), &secret).await.unwrap();
        assert_eq!(stats.calls.load(Ordering::Relaxed), 1, "one wrap");
        for _ in 0..3 {
            assert_eq!(
                open(&protector, &context("a"), &sealed).await.unwrap(),
                secret
            );
        }
        assert_eq!(stats.cache_misses.load(Ordering::Relaxed), 1);
        assert_eq!(stats.cache_hits.load(Ordering::Relaxed), 2);
        assert_eq!(
            stats.calls.load(Ordering::Relaxed),
            2,
            "one wrap, one unwrap"
        );
        // Another context never reuses the cached key (and fails authentication).
        assert!(open(&protector, &context("b"), &sealed).await.is_err());
        assert_eq!(stats.errors.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_zero_ttl_disables_the_cache() {
        let protector = CachingProtector::new(local(), Duration::ZERO, 100);
        let secret = SecretBytes::new(vec![2; 16]);
        let sealed = seal(&protector, &context("a"), &secret).await.unwrap();
        for _ in 0..3 {
            open(&protector, &context("a"), &sealed).await.unwrap();
        }
        protector.cache.run_pending_tasks().await;
        assert_eq!(protector.stats().cache_hits.load(Ordering::Relaxed), 0);
        assert_eq!(protector.stats().calls.load(Ordering::Relaxed), 4);
    }
}
