//! The cache policy at work: keeps the store under `--max-store-bytes` by evicting blobs the
//! pure [`eviction::plan`] picks, and writes recorded uses to the index. Shared by the seeder
//! and the registry shim: both hand it a [`CachedStore`] (store, index, leases), their
//! librqbit session if they seed, and the counters it moves ([`CacheMetrics`]).
//!
//! One blob is evicted in an order that a crash at any point leaves repairable:
//! 1. claim it ([`BlobUsage::claim`]; refused while a lease is held, and new leases wait);
//! 2. take it out of the librqbit session (and its persistence and `.bitv`): a crash here
//!    leaves file and record, and the next start seeds it again;
//! 3. delete the file: a crash here leaves a record without a file, which the next start
//!    drops ([`CachedStore::stored_blob`]'s repair);
//! 4. drop the record in one transaction, remembering its repositories so it can be fetched
//!    again.
//!
//! The index therefore never names a missing file past the next start, and librqbit never
//! seeds a torrent whose file is gone.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use prometheus::{IntCounter, IntGauge};
use shoal_torrents::{BlobDigest, HashedBlob, InfoHash};

use crate::blob_store::{BlobStore, StoreError};
use crate::eviction::{self, Entry, StoreLimit};
use crate::index::{BlobIndex, BlobRecord, IndexError};
use crate::seeding::{Seeding, SeedingError};
use crate::usage::{now_ms, BlobUsage};

/// Why a use could not be recorded or a blob could not be evicted.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Seeding(#[from] SeedingError),
    #[error("index record for {digest} has a bad infohash {info_hash:?}")]
    InfoHash { digest: BlobDigest, info_hash: String },
}

/// A verified store with its index and the leases of blobs in use: what the cache policy
/// works on.
#[derive(Clone)]
pub struct CachedStore {
    pub store: Arc<BlobStore>,
    pub index: Arc<BlobIndex>,
    pub usage: Arc<BlobUsage>,
}

impl CachedStore {
    /// The blob if it is stored and indexed; repairs the index if the two disagree.
    pub fn stored_blob(&self, digest: &BlobDigest) -> Result<Option<HashedBlob>, CacheError> {
        let on_disk = self.store.stored_size(digest);
        match (self.index.hashed(digest)?, on_disk) {
            (Some(h), Some(size)) if size == h.size => Ok(Some(h)),
            (Some(_), _) => {
                tracing::warn!(%digest, "indexed blob is missing or resized on disk; forgetting it");
                self.index.remove_blob(digest)?;
                self.store.remove(digest)?;
                Ok(None)
            }
            (None, Some(_)) => {
                // Renamed into place but killed before the index write: verify and record it.
                match self.store.rehash(digest) {
                    Ok(h) => {
                        self.index.put_blob(&h, None)?;
                        Ok(Some(h))
                    }
                    Err(e) => {
                        tracing::warn!(%digest, error = %e, "unindexed blob failed verification; removing it");
                        self.store.remove(digest)?;
                        Ok(None)
                    }
                }
            }
            (None, None) => Ok(None),
        }
    }

    /// Every stored blob, after repairing each (see [`Self::stored_blob`]): records whose file
    /// is gone are dropped, files without a record are verified and recorded, or removed.
    pub fn stored_blobs(&self) -> Result<Vec<HashedBlob>, CacheError> {
        let indexed: Vec<_> = self.index.blobs()?.into_iter().map(|(digest, _)| digest).collect();
        let known: HashSet<_> = indexed.iter().copied().collect();
        let unindexed = self.store.list()?.into_iter().filter(|d| !known.contains(d));
        let mut stored = Vec::new();
        for digest in indexed.iter().copied().chain(unindexed) {
            match self.stored_blob(&digest)? {
                Some(h) => stored.push(h),
                None => tracing::warn!(%digest, "indexed blob is gone; dropped from the index"),
            }
        }
        Ok(stored)
    }
}

/// The counters and gauges eviction moves, on whichever service's registry.
#[derive(Clone)]
pub struct CacheMetrics {
    pub evicted_blobs: IntCounter,
    pub evicted_bytes: IntCounter,
    pub blobs: IntGauge,
    pub bytes_stored: IntGauge,
}

/// What one round of eviction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evicted {
    pub blobs: u64,
    pub bytes: u64,
    /// The evicted blobs, in eviction order.
    pub digests: Vec<BlobDigest>,
    /// Chosen, then leased before they could be claimed: kept.
    pub skipped: u64,
    /// Stored bytes afterwards, as the index counts them.
    pub stored_bytes: u64,
}

/// The store's cache policy, applied.
pub struct StoreCache {
    stored: CachedStore,
    /// The session seeding the store, if any (a shim without a swarm has none).
    seeding: Option<Arc<Seeding>>,
    metrics: CacheMetrics,
    limit: Option<StoreLimit>,
    /// Bytes uploaded per torrent at the last look, to notice new uploads.
    uploads: Mutex<HashMap<InfoHash, u64>>,
}

impl StoreCache {
    /// `limit: None` never evicts (uses are still recorded).
    pub fn new(
        stored: CachedStore,
        seeding: Option<Arc<Seeding>>,
        metrics: CacheMetrics,
        limit: Option<StoreLimit>,
    ) -> Self {
        Self { stored, seeding, metrics, limit, uploads: Mutex::default() }
    }

    pub fn limit(&self) -> Option<StoreLimit> {
        self.limit
    }

    /// Counts uploads to peers since the last call as uses, then writes every recorded use to
    /// the index in one transaction.
    pub fn record_uses(&self) -> Result<(), CacheError> {
        let now = now_ms();
        let mut grown = Vec::new();
        if let Some(seeding) = &self.seeding {
            let mut uploads = self.uploads.lock().expect("uploads lock");
            for (info_hash, bytes) in seeding.uploaded_by_torrent() {
                let before = uploads.insert(info_hash, bytes);
                if bytes > before.unwrap_or(0) {
                    grown.push(info_hash);
                }
            }
        }
        for info_hash in grown {
            if let Some(digest) = self.stored.index.digest_of(&info_hash)? {
                self.stored.usage.touch(digest, now);
            }
        }
        let accesses = self.stored.usage.take_accesses();
        self.stored.index.record_accesses(&accesses)?;
        Ok(())
    }

    /// Evicts least-recently-used, unleased blobs if the store is above the high watermark,
    /// until it is at or below the low one. A no-op without a limit.
    pub async fn enforce(&self) -> Result<Evicted, CacheError> {
        let Some(limit) = self.limit else { return Ok(Evicted::default()) };
        let usage = &self.stored.usage;
        let records: HashMap<BlobDigest, BlobRecord> = self.stored.index.blobs()?.into_iter().collect();
        let entries: Vec<Entry> = records
            .iter()
            .map(|(digest, record)| Entry {
                digest: *digest,
                size: record.size,
                last_access_ms: record.last_access_ms.max(usage.recent_access(digest).unwrap_or(0)),
                pinned: usage.is_leased(digest),
            })
            .collect();
        let plan = eviction::plan(&entries, &limit);
        let mut done = Evicted { stored_bytes: plan.stored_bytes, ..Evicted::default() };
        if plan.victims.is_empty() {
            return Ok(done);
        }
        for digest in &plan.victims {
            let Some(_claim) = usage.claim(*digest) else {
                done.skipped += 1;
                continue;
            };
            let record = &records[digest];
            match self.evict(digest, record).await {
                Ok(()) => {
                    done.blobs += 1;
                    done.bytes += record.size;
                    done.digests.push(*digest);
                    done.stored_bytes -= record.size;
                }
                Err(e) => tracing::error!(%digest, error = %e, "cannot evict a blob; keeping it"),
            }
        }
        if plan.falls_short(&limit) || done.skipped > 0 {
            tracing::warn!(
                stored_bytes = done.stored_bytes,
                low_watermark = limit.low_bytes(),
                "blobs in use keep the store above its low watermark"
            );
        }
        tracing::info!(
            blobs = done.blobs,
            bytes = done.bytes,
            stored_bytes = done.stored_bytes,
            max_bytes = limit.max_bytes(),
            "evicted least-recently-used blobs"
        );
        Ok(done)
    }

    /// Steps 2-4 of the module doc, for a claimed blob.
    async fn evict(&self, digest: &BlobDigest, record: &BlobRecord) -> Result<(), CacheError> {
        let info_hash: InfoHash = record
            .info_hash
            .parse()
            .map_err(|_| CacheError::InfoHash { digest: *digest, info_hash: record.info_hash.clone() })?;
        if let Some(seeding) = &self.seeding {
            seeding.unseed(digest, &info_hash).await?;
        }
        self.stored.store.remove(digest)?;
        self.stored.index.remove_blob(digest)?;
        self.metrics.evicted_blobs.inc();
        self.metrics.evicted_bytes.inc_by(record.size);
        self.metrics.blobs.dec();
        self.metrics.bytes_stored.sub(record.size as i64);
        tracing::debug!(%digest, size = record.size, "evicted");
        Ok(())
    }
}
