//! The shim's blob cache: its verified store indexed in redb (`DATA/index.redb`: size, pieces,
//! repositories, last use) and kept under `--max-store-bytes` by the seeder's cache policy
//! ([`StoreCache`]: least recently used first, from the high watermark down to the low one,
//! leased blobs never; out of the librqbit session, then the file, then the record).
//!
//! Leases: a cache hit holds one until its response body is done, a download from its start
//! until the blob is indexed and seeded. Uses (hits) are recorded in memory and written to the
//! index in batches; eviction runs after every newly stored blob. At start the index and the
//! files are reconciled (records without a file dropped, files without a record re-hashed and
//! recorded, or removed), every stored blob that is not private is seeded again, and a store
//! over a lowered limit is evicted before the shim serves.

use std::sync::Arc;
use std::time::Duration;

use shoal_store::blob_store::BlobStore;
use shoal_store::cache::{CacheError, CacheMetrics, CachedStore, StoreCache};
use shoal_store::eviction::StoreLimit;
use shoal_store::index::{BlobIndex, BlobRecord, IndexError};
use shoal_store::usage::{now_ms, BlobUsage, Lease};
use shoal_torrents::{BlobDigest, HashedBlob};
use tokio::sync::Notify;

use crate::private::PrivateBlobs;
use crate::swarm::Swarm;

/// How often recorded uses are written to the index.
const USES_WRITE_INTERVAL: Duration = Duration::from_secs(10);

pub(crate) struct ShimCache {
    stored: CachedStore,
    policy: StoreCache,
    private: PrivateBlobs,
    metrics: CacheMetrics,
    /// Rung after a blob is stored: time to see whether the store is over its limit.
    wake: Arc<Notify>,
}

impl ShimCache {
    pub(crate) fn new(
        store: Arc<BlobStore>,
        index: Arc<BlobIndex>,
        private: PrivateBlobs,
        swarm: Option<&Swarm>,
        metrics: CacheMetrics,
        limit: Option<StoreLimit>,
    ) -> Self {
        let stored = CachedStore { store, index, usage: Arc::new(BlobUsage::default()) };
        let policy = StoreCache::new(stored.clone(), swarm.map(|s| Arc::clone(s.seeding())), metrics.clone(), limit);
        Self { stored, policy, private, metrics, wake: Arc::default() }
    }

    /// Reconciles index and files, seeds every stored blob that is not private, and evicts
    /// down to the limit. Run once before serving.
    pub(crate) async fn start(&self, swarm: Option<&Swarm>) -> Result<(), CacheError> {
        let blobs = self.stored.stored_blobs()?;
        self.metrics.blobs.set(blobs.len() as i64);
        self.metrics.bytes_stored.set(blobs.iter().map(|b| b.size as i64).sum());
        if let Some(swarm) = swarm {
            for blob in blobs.iter().filter(|b| !self.private.is_private(&b.digest)) {
                swarm.seed(blob).await;
            }
        }
        self.enforce().await;
        Ok(())
    }

    /// Every stored blob, as the index records it.
    pub(crate) fn blobs(&self) -> Result<Vec<(BlobDigest, BlobRecord)>, IndexError> {
        self.stored.index.blobs()
    }

    pub(crate) fn private(&self) -> &PrivateBlobs {
        &self.private
    }

    /// Holds `digest` against eviction (waits while it is being evicted).
    pub(crate) async fn lease(&self, digest: BlobDigest) -> Lease {
        self.stored.usage.lease(digest).await
    }

    /// Records a use of a stored blob.
    pub(crate) fn touch(&self, digest: BlobDigest) {
        self.stored.usage.touch(digest, now_ms());
    }

    /// Indexes a blob just verified into the store (its download's lease still held), and
    /// wakes eviction.
    pub(crate) fn stored(&self, blob: &HashedBlob, repository: &str) -> Result<(), CacheError> {
        let new = self.stored.index.blob(&blob.digest)?.is_none();
        self.stored.index.put_blob(blob, Some(repository))?;
        if new {
            self.metrics.blobs.inc();
            self.metrics.bytes_stored.add(blob.size as i64);
        }
        self.wake.notify_one();
        Ok(())
    }

    async fn enforce(&self) {
        match self.policy.enforce().await {
            Ok(evicted) => {
                for digest in &evicted.digests {
                    self.private.clear(digest);
                }
            }
            Err(e) => tracing::error!(error = %e, "cache eviction failed"),
        }
    }

    /// Writes recorded uses to the index now (also done every few seconds by [`Self::run`]).
    pub(crate) fn record_uses(&self) {
        if let Err(e) = self.policy.record_uses() {
            tracing::warn!(error = %e, "cannot record blob uses in the index");
        }
    }

    /// Evicts after every stored blob and writes uses every few seconds, until its task is
    /// cancelled (or the cache dropped). Eviction rounds never overlap: this is the only task that runs them after
    /// start. It holds the cache only while working, so the index (and its file lock) goes as
    /// soon as the shim does.
    pub(crate) fn background(self: &Arc<Self>) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (cache, wake) = (Arc::downgrade(self), Arc::clone(&self.wake));
        async move {
            let mut write_uses = tokio::time::interval(USES_WRITE_INTERVAL);
            write_uses.tick().await;
            loop {
                let woken = tokio::select! {
                    () = wake.notified() => true,
                    _ = write_uses.tick() => false,
                };
                let Some(cache) = cache.upgrade() else { break };
                cache.record_uses();
                if woken {
                    cache.enforce().await;
                }
            }
        }
    }
}
