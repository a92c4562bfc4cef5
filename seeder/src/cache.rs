//! The cache policy at work: keeps the store under `--max-store-bytes` by evicting blobs the
//! pure [`eviction::plan`] picks, and writes recorded uses to the index.
//!
//! One blob is evicted in an order that a crash at any point leaves repairable:
//! 1. claim it ([`BlobUsage::claim`]; refused while a lease is held, and new leases wait);
//! 2. take it out of the librqbit session (and its persistence and `.bitv`): a crash here
//!    leaves file and record, and the next start seeds it again;
//! 3. delete the file: a crash here leaves a record without a file, which the next start
//!    drops ([`crate::mirror::Mirror::stored_blob`]'s repair);
//! 4. drop the record in one transaction, remembering its repositories so it can be fetched
//!    again.
//!
//! The index therefore never names a missing file past the next start, and librqbit never
//! seeds a torrent whose file is gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use shoal_torrents::{BlobDigest, InfoHash};

use crate::eviction::{self, Entry, StoreLimit};
use crate::index::{BlobRecord, IndexError};
use crate::metrics::SeederMetrics;
use crate::mirror::Mirror;
use crate::seeding::{Seeding, SeedingError};
use crate::store::StoreError;
use crate::usage::now_ms;

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

/// What one round of eviction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evicted {
    pub blobs: u64,
    pub bytes: u64,
    /// Chosen, then leased before they could be claimed: kept.
    pub skipped: u64,
    /// Stored bytes afterwards, as the index counts them.
    pub stored_bytes: u64,
}

/// The store's cache policy, applied.
pub struct StoreCache {
    mirror: Arc<Mirror>,
    seeding: Arc<Seeding>,
    metrics: Arc<SeederMetrics>,
    limit: Option<StoreLimit>,
    /// Bytes uploaded per torrent at the last look, to notice new uploads.
    uploads: Mutex<HashMap<InfoHash, u64>>,
}

impl StoreCache {
    /// `limit: None` never evicts (uses are still recorded).
    pub fn new(
        mirror: Arc<Mirror>,
        seeding: Arc<Seeding>,
        metrics: Arc<SeederMetrics>,
        limit: Option<StoreLimit>,
    ) -> Self {
        Self { mirror, seeding, metrics, limit, uploads: Mutex::default() }
    }

    /// Counts uploads to peers since the last call as uses, then writes every recorded use to
    /// the index in one transaction.
    pub fn record_uses(&self) -> Result<(), CacheError> {
        let now = now_ms();
        let mut grown = Vec::new();
        {
            let mut uploads = self.uploads.lock().expect("uploads lock");
            for (info_hash, bytes) in self.seeding.uploaded_by_torrent() {
                let before = uploads.insert(info_hash, bytes);
                if bytes > before.unwrap_or(0) {
                    grown.push(info_hash);
                }
            }
        }
        for info_hash in grown {
            if let Some(digest) = self.mirror.index().digest_of(&info_hash)? {
                self.mirror.usage().touch(digest, now);
            }
        }
        let accesses = self.mirror.usage().take_accesses();
        self.mirror.index().record_accesses(&accesses)?;
        Ok(())
    }

    /// Evicts least-recently-used, unleased blobs if the store is above the high watermark,
    /// until it is at or below the low one. A no-op without a limit.
    pub async fn enforce(&self) -> Result<Evicted, CacheError> {
        let Some(limit) = self.limit else { return Ok(Evicted::default()) };
        let usage = self.mirror.usage();
        let records: HashMap<BlobDigest, BlobRecord> = self.mirror.index().blobs()?.into_iter().collect();
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
        self.seeding.unseed(digest, &info_hash).await?;
        self.mirror.store().remove(digest)?;
        self.mirror.index().remove_blob(digest)?;
        self.metrics.evicted_blobs.inc();
        self.metrics.evicted_bytes.inc_by(record.size);
        self.metrics.blobs.dec();
        self.metrics.bytes_stored.sub(record.size as i64);
        tracing::debug!(%digest, size = record.size, "evicted");
        Ok(())
    }
}
