//! The mirror pipeline: image reference -> manifest(s) -> blobs -> verified store -> index.
//!
//! Every blob fetch goes through [`Mirror::ensure_blob`], which is single-flight: concurrent
//! callers asking for one digest share one upstream fetch (and its outcome). The fetch runs in
//! a task of its own, so a caller that goes away (an HTTP client hanging up) does not cancel
//! it for the others. Newly stored blobs are announced on a channel for the seeding side.
//! A caller holds a lease on the blob ([`BlobUsage`]) from the start of `ensure_blob` until it
//! returns, so the cache never evicts a blob while it is being fetched and ingested.

use std::sync::Arc;

use futures_util::StreamExt;
use oci_client::manifest::{IMAGE_MANIFEST_LIST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE};
use oci_client::Reference;
use serde::Deserialize;
use shoal_tasks::single_flight::{Flight, Progress, SingleFlight, Waited};
use shoal_tasks::Tasks;
use shoal_torrents::{BlobDigest, HashedBlob, ParseDigestError};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::allow::MirrorAllowList;
use crate::metrics::SeederMetrics;
use crate::ring::{OwnerAnswer, OwnersError, Ring, UpstreamName};
use shoal_store::blob_store::{BlobStore, Chunk, StoreError};
use shoal_store::cache::{CacheError, CachedStore};
use shoal_store::index::{BlobIndex, ImageBlob, ImageRecord, IndexError, ManifestRecord};
use shoal_store::usage::BlobUsage;
use shoal_upstream::{PulledManifest, Upstream, UpstreamError};

/// Blobs of one manifest fetched at once.
const BLOB_FETCHES_PER_MANIFEST: usize = 4;

/// Why mirroring an image or a blob failed.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("{context}: {error}")]
    Digest { context: String, error: ParseDigestError },
    #[error("manifest {digest} is not valid: {message}")]
    Manifest { digest: String, message: String },
    #[error("a background task failed: {0}")]
    Task(String),
    /// The outcome of a fetch another request started and this one waited for.
    #[error(transparent)]
    Shared(Arc<MirrorError>),
    #[error("{what} is not in the seeder's mirror allow-list ({allowed}); add it with --mirror-allow")]
    NotAllowed { what: String, allowed: String },
    /// Another seeder owns the blob and none of its owners gave its torrent.
    #[error(transparent)]
    Owners(#[from] OwnersError),
}

impl MirrorError {
    /// True when upstream served bytes that do not match the digest.
    pub fn is_digest_mismatch(&self) -> bool {
        match self {
            MirrorError::Store(StoreError::DigestMismatch { .. }) => true,
            MirrorError::Shared(inner) => inner.is_digest_mismatch(),
            _ => false,
        }
    }

    /// True when upstream said the image or blob does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            MirrorError::Upstream(e) => e.is_not_found(),
            MirrorError::Owners(OwnersError::Refused { status, .. }) => *status == 404,
            MirrorError::Shared(inner) => inner.is_not_found(),
            _ => false,
        }
    }

    /// True when the allow-list refused the image or blob (nothing was fetched).
    pub fn is_not_allowed(&self) -> bool {
        match self {
            MirrorError::NotAllowed { .. } => true,
            MirrorError::Shared(inner) => inner.is_not_allowed(),
            _ => false,
        }
    }

    /// The failure's kind, as a metric label: upstream's ([`UpstreamError::reason`]), or
    /// `digest_mismatch`, `size_mismatch`, `stream_failed` (the body broke off), `bad_manifest`,
    /// `local_io` (the store or index here) or `task`.
    pub fn reason(&self) -> &'static str {
        match self {
            MirrorError::Upstream(e) => e.reason(),
            MirrorError::Manifest { .. } | MirrorError::Digest { .. } => "bad_manifest",
            MirrorError::Store(StoreError::DigestMismatch { .. }) => "digest_mismatch",
            MirrorError::Store(StoreError::Size { .. }) => "size_mismatch",
            MirrorError::Store(StoreError::Source { .. }) => "stream_failed",
            MirrorError::Store(_) | MirrorError::Index(_) | MirrorError::Cache(_) => "local_io",
            MirrorError::Task(_) => "task",
            MirrorError::NotAllowed { .. } => "not_allowed",
            MirrorError::Owners(_) => "owners",
            MirrorError::Shared(inner) => inner.reason(),
        }
    }

    /// True when the failure is upstream's (unreachable, refused, bad bytes), not ours.
    pub fn is_upstream(&self) -> bool {
        match self {
            MirrorError::Upstream(_) | MirrorError::Manifest { .. } | MirrorError::Digest { .. } => true,
            MirrorError::Store(
                StoreError::DigestMismatch { .. } | StoreError::Size { .. } | StoreError::Source { .. },
            ) => true,
            MirrorError::Shared(inner) => inner.is_upstream(),
            _ => false,
        }
    }
}

/// Which platforms of an image index to mirror; empty means all.
#[derive(Clone, Debug, Default)]
pub struct PlatformFilter(pub Vec<String>);

impl PlatformFilter {
    /// `os/arch` matches any variant; `os/arch/variant` only that one.
    pub fn allows(&self, platform: Option<&Platform>) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Some(p) = platform else { return false };
        self.0.iter().any(|want| {
            let mut parts = want.split('/');
            let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
            os == Some(p.os.as_str())
                && arch == Some(p.architecture.as_str())
                && variant.is_none_or(|v| Some(v) == p.variant.as_deref())
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    fn label(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct IndexManifest {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct ImageManifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// A blob fetch's outcome, shared by every caller that asked for it.
type FetchOutcome = Result<HashedBlob, Arc<MirrorError>>;

/// Pulls images and blobs from upstream into the store and index.
pub struct Mirror {
    upstream: Upstream,
    store: Arc<BlobStore>,
    index: Arc<BlobIndex>,
    metrics: Arc<SeederMetrics>,
    platforms: PlatformFilter,
    allow: MirrorAllowList,
    stored: mpsc::UnboundedSender<HashedBlob>,
    flights: SingleFlight<BlobDigest, FetchOutcome>,
    usage: Arc<BlobUsage>,
    /// Which blobs this seeder owns; the others' owners.
    ring: Arc<Ring>,
    /// Where blob fetches and ingests run.
    tasks: Tasks,
}

impl Mirror {
    /// The mirror over `stored` (its leases are the cache policy's too) and the receiving end
    /// of its "blob newly stored" channel, for a seeder alone (it owns every blob). Fetches run
    /// under `tasks`.
    pub fn new(
        upstream: Upstream,
        stored: CachedStore,
        metrics: Arc<SeederMetrics>,
        platforms: PlatformFilter,
        allow: MirrorAllowList,
        tasks: Tasks,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<HashedBlob>) {
        let ring = Arc::new(Ring::alone());
        Self::in_ring(upstream, stored, metrics, platforms, allow, ring, tasks)
    }

    /// [`Mirror::new`] for a seeder of `ring`.
    pub(crate) fn in_ring(
        upstream: Upstream,
        stored: CachedStore,
        metrics: Arc<SeederMetrics>,
        platforms: PlatformFilter,
        allow: MirrorAllowList,
        ring: Arc<Ring>,
        tasks: Tasks,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<HashedBlob>) {
        let (stored_tx, rx) = mpsc::unbounded_channel();
        let CachedStore { store, index, usage } = stored;
        let mirror = Self {
            upstream,
            store,
            index,
            metrics,
            platforms,
            allow,
            stored: stored_tx,
            flights: SingleFlight::default(),
            usage,
            ring,
            tasks,
        };
        (Arc::new(mirror), rx)
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// This seeder in the seeders' ring.
    pub(crate) fn ring(&self) -> &Arc<Ring> {
        &self.ring
    }

    pub fn index(&self) -> &BlobIndex {
        &self.index
    }

    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// Which blobs are in use, and their recent accesses (shared with the cache policy).
    pub fn usage(&self) -> &Arc<BlobUsage> {
        &self.usage
    }

    /// Store, index and leases, as the cache policy sees them.
    pub fn cached_store(&self) -> CachedStore {
        CachedStore { store: Arc::clone(&self.store), index: Arc::clone(&self.index), usage: Arc::clone(&self.usage) }
    }

    /// The blob if it is stored and indexed; repairs the index if the two disagree.
    pub fn stored_blob(&self, digest: &BlobDigest) -> Result<Option<HashedBlob>, MirrorError> {
        Ok(self.cached_store().stored_blob(digest)?)
    }

    /// The blob, fetched from `reference`'s repository first if it is not stored. `size` is
    /// the descriptor's when known; otherwise upstream's Content-Length is used.
    pub async fn ensure_blob(
        self: &Arc<Self>,
        reference: &Reference,
        digest: BlobDigest,
        size: Option<u64>,
    ) -> Result<HashedBlob, MirrorError> {
        self.check_allowed(reference, || format!("{}@{digest}", repo_key(reference)))?;
        let repo = repo_key(reference);
        let _lease = self.usage.lease(digest).await;
        if let Some(h) = self.stored_blob(&digest)? {
            self.index.touch(&digest, Some(&repo))?;
            return Ok(h);
        }
        let follower = match self.flights.join(digest, &repo) {
            Flight::Follow(follower) => follower,
            Flight::Lead(leader) => {
                let follower = leader.follower();
                let progress = leader.progress();
                let (this, reference) = (Arc::clone(self), reference.clone());
                let fetch = async move {
                    // Its own lease: the fetch outlives a caller that hangs up.
                    let _lease = this.usage.lease(digest).await;
                    // A flight that ended between our look and our join may have stored it.
                    let outcome = match this.stored_blob(&digest) {
                        Ok(Some(h)) => Ok(h),
                        _ => this.fetch_blob(&reference, digest, size, &progress).await.map_err(Arc::new),
                    };
                    leader.finish(outcome);
                };
                self.tasks.spawn("mirror-blob", fetch.instrument(tracing::info_span!("mirror_blob", %digest)));
                follower
            }
        };
        // A fetch led for another repository is followed only while it makes progress: its
        // upstream may be the one that stalls.
        let (leader, stall) = (follower.leader_tag().to_owned(), self.upstream.deadlines().first_byte);
        let outcome = match follower.wait_as(&repo, stall).await {
            Waited::Outcome(outcome) => outcome,
            Waited::Stalled => {
                tracing::warn!(%digest, %leader, %repo, ?stall, "the fetch this request joined (for another repository) made no progress within its deadline; fetching from this repository on its own");
                return self.fetch_blob(reference, digest, size, &Progress::default()).await;
            }
        };
        match outcome {
            Some(outcome) => outcome.map_err(MirrorError::Shared),
            None => Err(MirrorError::Task(format!("the fetch of {digest} was cancelled: the seeder is stopping"))),
        }
    }

    /// Fetches and stores one blob, counting its bytes into `progress` as they arrive.
    async fn fetch_blob(
        &self,
        reference: &Reference,
        digest: BlobDigest,
        size: Option<u64>,
        progress: &Progress,
    ) -> Result<HashedBlob, MirrorError> {
        self.metrics.upstream_fetches.inc();
        let result = self.fetch_blob_once(reference, digest, size, progress).await;
        match &result {
            Ok(h) => {
                self.metrics.blobs.inc();
                self.metrics.bytes_stored.add(h.size as i64);
                tracing::info!(%digest, size = h.size, repo = %repo_key(reference), "stored blob");
                let _ = self.stored.send(h.clone());
                let (ring, registry, repository) =
                    (Arc::clone(&self.ring), reference.registry().to_owned(), reference.repository().to_owned());
                self.tasks.spawn("ring-replicate", async move { ring.replicate(digest, &registry, &repository).await });
            }
            Err(e) => {
                self.metrics.upstream_failures.with_label_values(&[e.reason()]).inc();
                if e.is_digest_mismatch() {
                    self.metrics.digest_mismatches.inc();
                }
                tracing::error!(%digest, repo = %repo_key(reference), error = %e, "blob fetch failed");
            }
        }
        result
    }

    async fn fetch_blob_once(
        &self,
        reference: &Reference,
        digest: BlobDigest,
        size: Option<u64>,
        progress: &Progress,
    ) -> Result<HashedBlob, MirrorError> {
        let at = reference.clone_with_digest(digest.to_string());
        let body = self.upstream.blob(&at, &digest, size).await?;
        let (tx, mut rx) = mpsc::channel::<Chunk>(32);
        let store = Arc::clone(&self.store);
        let size = body.size;
        let ingest = self.tasks.spawn_blocking("mirror-ingest", move || {
            store.ingest(digest, size, std::iter::from_fn(move || rx.blocking_recv()))
        });
        let mut chunks = body.chunks;
        loop {
            let item = match chunks.next().await {
                None => break,
                Some(Ok(bytes)) => {
                    progress.advance(bytes.len() as u64);
                    Ok(bytes)
                }
                Some(Err(e)) => Err(e.to_string()),
            };
            let failed = item.is_err();
            // A closed channel means the store already stopped (too long, disk error).
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
        drop(tx);
        let hashed = ingest.await.map_err(|e| MirrorError::Task(e.to_string()))??;
        self.index.put_blob(&hashed, Some(&repo_key(reference)))?;
        Ok(hashed)
    }

    /// Mirrors an image: its manifest (every allowed platform of an index) and all their blobs.
    /// One attempt; the job around it (recorded first, retried, dropped) is the jobs module's.
    pub(crate) async fn mirror_image(self: &Arc<Self>, image: &str) -> Result<ImageRecord, MirrorError> {
        let reference = Upstream::parse_reference(image)?;
        let key = reference.whole();
        let timer = self.metrics.mirror_seconds.start_timer();
        let record = match self.mirror_reference(&reference).await {
            Ok(record) => record,
            Err(e) => {
                self.metrics.mirror_failures.with_label_values(&[e.reason()]).inc();
                return Err(e);
            }
        };
        timer.observe_duration();
        self.index.put_image(&record)?;
        if reference.digest().is_none() {
            let pinned = Reference::with_digest(
                reference.registry().into(),
                reference.repository().into(),
                record.digest.clone(),
            );
            self.index.put_image(&ImageRecord { reference: pinned.whole(), ..record.clone() })?;
        }
        tracing::info!(image = %key, digest = %record.digest, manifests = record.manifests.len(), "mirrored image");
        Ok(record)
    }

    /// Refuses what `--mirror-allow` does not name, before anything is fetched.
    fn check_allowed(&self, reference: &Reference, what: impl FnOnce() -> String) -> Result<(), MirrorError> {
        if self.allow.allows(reference.registry(), reference.repository()) {
            return Ok(());
        }
        Err(MirrorError::NotAllowed { what: what(), allowed: self.allow.describe() })
    }

    async fn mirror_reference(self: &Arc<Self>, reference: &Reference) -> Result<ImageRecord, MirrorError> {
        self.check_allowed(reference, || reference.whole())?;
        let top = self.upstream.manifest(reference).await?;
        let mut manifests = Vec::new();
        if top.media_type == OCI_IMAGE_INDEX_MEDIA_TYPE || top.media_type == IMAGE_MANIFEST_LIST_MEDIA_TYPE {
            let index: IndexManifest = parse_manifest(&top)?;
            for entry in index.manifests {
                if !self.platforms.allows(entry.platform.as_ref()) {
                    continue;
                }
                let at = reference.clone_with_digest(entry.digest.clone());
                let pulled = self.upstream.manifest(&at).await?;
                let label = entry.platform.as_ref().map(Platform::label);
                manifests.push(self.mirror_manifest(&at, &pulled, label).await?);
            }
        } else {
            manifests.push(self.mirror_manifest(reference, &top, None).await?);
        }
        Ok(ImageRecord { reference: reference.whole(), digest: top.digest, media_type: top.media_type, manifests })
    }

    async fn mirror_manifest(
        self: &Arc<Self>,
        reference: &Reference,
        pulled: &PulledManifest,
        platform: Option<String>,
    ) -> Result<ManifestRecord, MirrorError> {
        let manifest: ImageManifest = parse_manifest(pulled)?;
        let wanted: Vec<&Descriptor> = std::iter::once(&manifest.config).chain(&manifest.layers).collect();
        let mut blobs = Vec::with_capacity(wanted.len());
        for d in &wanted {
            let digest: BlobDigest = d.digest.parse().map_err(|error| MirrorError::Digest {
                context: format!("manifest {} names blob {:?}", pulled.digest, d.digest),
                error,
            })?;
            blobs.push((digest, d.size));
        }
        let fetches: Vec<_> = blobs
            .into_iter()
            .map(|(digest, size)| {
                let (this, reference) = (Arc::clone(self), reference.clone());
                async move { this.place_blob(&reference, digest, size).await }
            })
            .collect();
        // Every fetch settles before the outcome is reported, so a failed image leaves no fetch
        // of it running behind the caller's back.
        let results: Vec<_> =
            futures_util::stream::iter(fetches).buffer_unordered(BLOB_FETCHES_PER_MANIFEST).collect().await;
        results.into_iter().collect::<Result<Vec<_>, _>>()?;
        let describe =
            |d: &Descriptor| ImageBlob { digest: d.digest.clone(), size: d.size, media_type: d.media_type.clone() };
        Ok(ManifestRecord {
            digest: pulled.digest.clone(),
            platform,
            config: describe(&manifest.config),
            layers: manifest.layers.iter().map(describe).collect(),
        })
    }
}

impl Mirror {
    /// One blob of an image being mirrored: fetched here if this seeder owns it, else by its
    /// owners (the first that answers fetches it and hands it to the other replicas); a
    /// non-owner never fetches a blob from upstream.
    async fn place_blob(
        self: &Arc<Self>,
        reference: &Reference,
        digest: BlobDigest,
        size: u64,
    ) -> Result<(), MirrorError> {
        if self.ring.owns(&digest) || self.stored_blob(&digest)?.is_some() {
            return self.ensure_blob(reference, digest, Some(size)).await.map(drop);
        }
        self.check_allowed(reference, || format!("{}@{digest}", repo_key(reference)))?;
        let name = UpstreamName { repo: Some(reference.repository()), ns: Some(reference.registry()) };
        match self.ring.owner_torrent(&digest, &name, true).await? {
            OwnerAnswer::Torrent { .. } => Ok(()),
            OwnerAnswer::Fetching => {
                Err(MirrorError::Task(format!("the owner of {digest} answered without waiting for its fetch")))
            }
        }
    }
}

/// `registry/repository`, as recorded in a blob's list of repositories.
pub fn repo_key(reference: &Reference) -> String {
    format!("{}/{}", reference.registry(), reference.repository())
}

fn parse_manifest<T: for<'de> Deserialize<'de>>(pulled: &PulledManifest) -> Result<T, MirrorError> {
    serde_json::from_slice(&pulled.bytes)
        .map_err(|e| MirrorError::Manifest { digest: pulled.digest.clone(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform { os: os.into(), architecture: arch.into(), variant: variant.map(Into::into) }
    }

    #[test]
    fn platform_filter() {
        let all = PlatformFilter::default();
        assert!(all.allows(None));
        let some = PlatformFilter(vec!["linux/amd64".into(), "linux/arm/v7".into()]);
        assert!(some.allows(Some(&platform("linux", "amd64", None))));
        assert!(some.allows(Some(&platform("linux", "amd64", Some("v3")))));
        assert!(some.allows(Some(&platform("linux", "arm", Some("v7")))));
        assert!(!some.allows(Some(&platform("linux", "arm", Some("v6")))));
        assert!(!some.allows(Some(&platform("windows", "amd64", None))));
        assert!(!some.allows(None));
    }
}
