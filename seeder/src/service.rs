//! Wiring: opens the store and index, starts seeding, applies the cache policy, serves the
//! API, runs mirror jobs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_http_edge::{EdgeLimits, Tls, TlsFiles};
use shoal_tasks::Tasks;
use shoal_torrents::{HashedBlob, SeederRing};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tower_http::trace::TraceLayer;

use crate::allow::MirrorAllowList;
use crate::api::{self, ApiState};
use crate::jobs::{MirrorJobs, RetryPolicy};
use crate::metrics::SeederMetrics;
use crate::mirror::{Mirror, MirrorError, PlatformFilter};
use crate::ring::Ring;
use crate::scrape::{self, TrackerSwarms};
use crate::ui::{self, Throughput};
use shoal_store::blob_store::{BlobStore, StoreError};
use shoal_store::cache::{CacheError, CachedStore, StoreCache};
use shoal_store::eviction::StoreLimit;
use shoal_store::index::{BlobIndex, IndexError};
use shoal_store::seeding::{Seeding, SeedingConfig, SeedingError};
use shoal_upstream::{Upstream, UpstreamConfig};

/// Everything `shoal seeder` is configured with.
#[derive(Clone, Debug)]
pub struct SeederConfig {
    pub data_dir: PathBuf,
    /// The HTTP API and webseed listener (port 0 picks a free port).
    pub http_listen: SocketAddr,
    /// How peers and shims reach the HTTP side, e.g. `http://seeder.lan:8080`; defaults to
    /// `http://<bound address>`.
    pub public_url: Option<String>,
    pub seeding: SeedingConfig,
    pub upstream: UpstreamConfig,
    /// Images mirrored at start.
    pub images: Vec<String>,
    /// Images a client asks for through the API at start (`shoal up --image`): like `images`,
    /// their registries join the default allow-list, but the seeder does not mirror them itself.
    pub api_images: Vec<String>,
    /// Platforms of an image index to mirror (`os/arch[/variant]`); empty = all.
    pub platforms: Vec<String>,
    /// How large the store may grow (`--max-store-bytes` and watermarks); `None`: no limit.
    pub store_limit: Option<StoreLimit>,
    /// How often a failed mirror job is tried again before it is dropped.
    pub retries: RetryPolicy,
    /// `--mirror-allow` patterns; none: the fronted registry and the images' registries.
    pub mirror_allow: Vec<String>,
    /// `--api-token`: the bearer token requests that make the seeder mirror must present.
    pub api_token: Option<String>,
    /// Serve HTTPS with this certificate; with a client CA, only clients holding a certificate
    /// it signed connect at all (mTLS: the API, the webseeds and the pages alike).
    pub tls: Option<TlsFiles>,
    /// The seeders' ring (`--member`: their public URLs, this one's among them); empty: this
    /// seeder alone owns every blob.
    pub members: Vec<String>,
    /// How many seeders of the ring own each blob (`--replicas`).
    pub replicas: usize,
}

/// How often recorded uses (webseed, torrent requests, uploads to peers) are written to the
/// index: one batched write instead of one per request; a crash loses at most this much
/// recency, never a blob.
const USES_WRITE_INTERVAL: Duration = Duration::from_secs(30);

/// Why the seeder could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SeederError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Seeding(#[from] SeedingError),
    #[error(transparent)]
    Mirror(#[from] MirrorError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("HTTP listener on {addr}: {error}")]
    Listen { addr: SocketAddr, error: std::io::Error },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot set up TLS")]
    Tls(#[from] shoal_http_edge::TlsError),
}

/// Hands every stored blob to the session (those it restored from its own persistence are
/// already there); returns how many blobs and bytes are stored. Repairs on the way: a record
/// whose file is gone is dropped, and a file without a record (renamed into place by a process
/// killed before its index write) is verified and recorded, or removed.
/// `super_seed` says how each is seeded ([`SeederRing::super_seed`]; `None` for all: as the
/// session does).
pub async fn seed_stored_blobs(
    stored: &CachedStore,
    seeding: &Seeding,
    super_seed: impl Fn(&shoal_torrents::BlobDigest) -> Option<bool>,
) -> Result<(u64, u64), SeederError> {
    let (mut count, mut bytes) = (0u64, 0u64);
    for h in stored.stored_blobs()? {
        seeding.seed_as(&h, super_seed(&h.digest)).await?;
        count += 1;
        bytes += h.size;
    }
    Ok((count, bytes))
}

/// A seeder whose store is open, whose stored blobs are being seeded and whose listener is
/// bound: ready to serve. Nothing runs until [`BoundSeeder::serve`].
pub struct BoundSeeder {
    config: SeederConfig,
    listener: TcpListener,
    tls: Option<Tls>,
    addr: SocketAddr,
    public_url: String,
    ring: SeederRing,
    stored: CachedStore,
    metrics: Arc<SeederMetrics>,
    seeding: Arc<Seeding>,
    cache: Arc<StoreCache>,
}

/// How long serving waits, once cancelled, for requests in flight (webseed bodies) before
/// dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Opens the store and index, seeds every stored blob, applies the store limit and binds the
/// HTTP listener.
pub async fn bind(config: SeederConfig) -> Result<BoundSeeder, SeederError> {
    if config.seeding.listen.port() == 0 && config.seeding.announce_port.is_none() {
        return Err(SeederError::Config("the BitTorrent listen port must be set (peers are told it)".into()));
    }
    let started = Instant::now();
    // TLS first: a bad certificate is an error before anything is opened.
    let tls = config.tls.as_ref().map(Tls::load).transpose()?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| SeederError::Config(format!("cannot create {}: {e}", config.data_dir.display())))?;
    // The index first: redb's lock keeps a second seeder off this data directory before the
    // store's startup sweep could delete the first one's temporary files.
    let index = Arc::new(BlobIndex::open(&config.data_dir.join("index.redb"))?);
    let store = Arc::new(BlobStore::open(&config.data_dir)?);
    let stored = CachedStore { store, index, usage: Arc::default() };
    let metrics = Arc::new(SeederMetrics::new());
    let cap = |rate: Option<std::num::NonZeroU32>| rate.map(std::num::NonZeroU32::get);
    metrics.show_rate_caps(cap(config.seeding.max_upload_rate), cap(config.seeding.max_download_rate));

    let listener = TcpListener::bind(config.http_listen)
        .await
        .map_err(|error| SeederError::Listen { addr: config.http_listen, error })?;
    let addr = listener.local_addr().map_err(|error| SeederError::Listen { addr: config.http_listen, error })?;
    if !addr.ip().is_loopback() && config.api_token.is_none() && !tls.as_ref().is_some_and(Tls::is_mutual) {
        tracing::warn!(%addr, "the seeder's API listens beyond loopback without --api-token or --tls-client-ca: \
            anyone who reaches it can make it mirror (what --mirror-allow permits)");
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = config.public_url.clone().unwrap_or_else(|| format!("{scheme}://{addr}"));
    let public_url = public_url.trim_end_matches('/').to_owned();
    let ring = seeder_ring(&config, &public_url)?;

    let seeding =
        Arc::new(Seeding::start(stored.store.blobs_dir(), &config.data_dir.join("bittorrent"), &config.seeding).await?);
    let (count, bytes) = seed_stored_blobs(&stored, &seeding, |d| ring.super_seed(d, &public_url)).await?;
    metrics.blobs.set(count as i64);
    metrics.bytes_stored.set(bytes as i64);
    let cache =
        Arc::new(StoreCache::new(stored.clone(), Some(Arc::clone(&seeding)), metrics.cache(), config.store_limit));
    // Before ready: a restart with a smaller limit serves only what fits.
    cache.enforce().await?;
    tracing::info!(
        blobs = metrics.blobs.get(),
        torrents = seeding.torrent_count(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "ready to seed"
    );
    Ok(BoundSeeder { config, listener, tls, addr, public_url, ring, stored, metrics, seeding, cache })
}

/// The ring `config` names, checked: this seeder's public URL must be a member (else it could
/// never own anything, and its peers would forward to an address it does not answer on).
fn seeder_ring(config: &SeederConfig, public_url: &str) -> Result<SeederRing, SeederError> {
    if config.members.is_empty() {
        return SeederRing::new([public_url], config.replicas.max(1)).map_err(|e| SeederError::Config(e.to_string()));
    }
    let ring = SeederRing::new(&config.members, config.replicas).map_err(|e| SeederError::Config(e.to_string()))?;
    if !ring.contains(public_url) {
        return Err(SeederError::Config(format!(
            "this seeder's public URL {public_url} is not among the members ({}); set --public-url to the URL the others list",
            ring.members().join(", ")
        )));
    }
    Ok(ring)
}

impl BoundSeeder {
    /// The HTTP API's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves the API and runs mirror jobs until `tasks` is cancelled (or the server fails).
    /// Everything the seeder spawns is under `tasks`; when this returns, all of it has ended,
    /// recorded uses are written and the BitTorrent session is stopped, so the index's lock is
    /// released: a restart in the same process (tests, `shoal up`) reopens the data directory.
    pub async fn serve(self, tasks: Tasks) -> Result<(), SeederError> {
        let Self { config, listener, tls, addr: _, public_url, ring, stored, metrics, seeding, cache } = self;
        metrics.ring_members.set(ring.members().len() as i64);
        tracing::info!(members = ?ring.members(), replicas = ring.replicas(), "the seeders' ring");
        let ring = Arc::new(Ring::new(
            ring,
            public_url.clone(),
            config.seeding.trackers.clone(),
            metrics.ring_forwarded.clone(),
            metrics.ring_replications.clone(),
        ));
        let upstream = Upstream::new(config.upstream.clone());
        let index = Arc::clone(&stored.index);
        let allow = mirror_allow_list(&config, &index)?;
        tracing::info!(allowed = %allow.describe(), "mirroring on request is limited to these (--mirror-allow)");
        let (mirror, stored_rx) = Mirror::in_ring(
            upstream,
            stored,
            Arc::clone(&metrics),
            PlatformFilter(config.platforms.clone()),
            allow,
            Arc::clone(&ring),
            tasks.child("mirror"),
        );
        tasks.spawn(
            "seeder-store",
            seed_evict_and_record(stored_rx, Arc::clone(&mirror), Arc::clone(&seeding), Arc::clone(&cache)),
        );
        let (seeder, gauges) = (Arc::clone(&seeding), Arc::clone(&metrics));
        tasks.spawn("seeder-gauges", async move {
            loop {
                shoal_telemetry::catch_up(&gauges.bittorrent_uploaded_bytes, seeder.uploaded_bytes());
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
        tasks.spawn("seeder-ring-gauge", count_owned_blobs(Arc::clone(&mirror), Arc::clone(&metrics)));
        let throughput = Arc::new(Throughput::new());
        tasks.spawn(
            "seeder-throughput",
            ui::record_throughput(Arc::clone(&seeding), Arc::clone(&metrics), Arc::clone(&throughput)),
        );

        let tracker = Arc::new(TrackerSwarms::default());
        let index_mirror = Arc::clone(&mirror);
        let stored_hashes = move || match index_mirror.index().blobs() {
            Ok(blobs) => Ok(blobs.iter().filter_map(|(_, r)| r.info_hash.parse().ok()).collect()),
            Err(e) => Err(format!("reading the index: {e}")),
        };
        tasks.spawn(
            "seeder-tracker-scrape",
            scrape::scrape_loop(config.seeding.trackers.clone(), stored_hashes, Arc::clone(&tracker)),
        );

        let jobs = MirrorJobs::new(Arc::clone(&mirror), index, config.retries);
        let left = jobs.resume()?;
        if left > 0 {
            tracing::info!(count = left, "resuming mirror jobs a previous run left unfinished");
        }
        for image in &config.images {
            jobs.enqueue(image)?;
        }
        tasks.spawn("seeder-mirror-jobs", Arc::clone(&jobs).run(tasks.child("mirror-jobs")));

        let state = Arc::new(ApiState {
            mirror,
            jobs,
            metrics,
            seeding: Arc::clone(&seeding),
            throughput,
            tracker,
            public_url,
            tasks: tasks.child("api"),
            api_token: config.api_token.clone(),
        });
        let refused = state.metrics.refused_connections.clone();
        let app = api::router(state).layer(TraceLayer::new_for_http());
        shoal_http_edge::serve(listener, app, EdgeLimits::default(), tls, refused, tasks.child("http"), SHUTDOWN_GRACE)
            .await;
        tasks.shutdown().await;
        if let Err(e) = cache.record_uses() {
            tracing::warn!(error = %e, "cannot record blob uses in the index");
        }
        seeding.stop().await;
        Ok(())
    }
}

/// The allow-list `config` asks for: its patterns, or the registry it fronts (Docker Hub
/// without `--upstream`), those of its configured and API images and those of the jobs a previous run
/// left (accepted then; a restart with fewer flags must not refuse them).
fn mirror_allow_list(config: &SeederConfig, index: &BlobIndex) -> Result<MirrorAllowList, SeederError> {
    let mut defaults = vec![config.upstream.default_registry.clone().unwrap_or_else(|| "docker.io".to_owned())];
    let pending: Vec<String> = index.jobs()?.into_iter().map(|job| job.reference).collect();
    for image in config.images.iter().chain(&config.api_images).chain(&pending) {
        let reference = Upstream::parse_reference(image).map_err(MirrorError::from)?;
        defaults.push(reference.registry().to_owned());
    }
    MirrorAllowList::new(&config.mirror_allow, &defaults).map_err(|e| SeederError::Config(e.to_string()))
}

/// Seeding newly stored blobs, eviction and writing uses share one task, so they never race
/// each other: no torrent is removed while it is being added, and a blob evicted before its
/// turn to be seeded is skipped.
async fn seed_evict_and_record(
    mut stored: mpsc::UnboundedReceiver<HashedBlob>,
    mirror: Arc<Mirror>,
    seeding: Arc<Seeding>,
    cache: Arc<StoreCache>,
) {
    let mut write_uses = tokio::time::interval(USES_WRITE_INTERVAL);
    write_uses.tick().await;
    loop {
        tokio::select! {
            blob = stored.recv() => {
                let Some(blob) = blob else { break };
                let mut batch = vec![blob];
                while let Ok(more) = stored.try_recv() {
                    batch.push(more);
                }
                for blob in batch {
                    seed_if_stored(&mirror, &seeding, &blob).await;
                }
                if let Err(e) = cache.enforce().await {
                    tracing::error!(error = %e, "cache eviction failed");
                }
            }
            _ = write_uses.tick() => {
                if let Err(e) = cache.record_uses() {
                    tracing::warn!(error = %e, "cannot record blob uses in the index");
                }
            }
        }
    }
}

/// Keeps `shoal_seeder_ring_owned_blobs` current: one rendezvous weight per member and stored
/// blob every 10 s (a few milliseconds for thousands of blobs).
async fn count_owned_blobs(mirror: Arc<Mirror>, metrics: Arc<SeederMetrics>) {
    loop {
        match mirror.index().blobs() {
            Ok(blobs) => {
                let owned = blobs.iter().filter(|(digest, _)| mirror.ring().owns(digest)).count();
                metrics.ring_owned_blobs.set(owned as i64);
            }
            Err(e) => tracing::warn!(error = %e, "cannot count the blobs this seeder owns"),
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

/// Seeds a newly stored blob, unless an eviction already took it again.
async fn seed_if_stored(mirror: &Mirror, seeding: &Seeding, blob: &HashedBlob) {
    match mirror.stored_blob(&blob.digest) {
        Ok(Some(_)) => match seeding.seed_as(blob, mirror.ring().super_seed(&blob.digest)).await {
            Ok(true) => tracing::info!(digest = %blob.digest, size = blob.size, "seeding"),
            Ok(false) => {}
            Err(e) => tracing::error!(digest = %blob.digest, error = %e, "cannot seed a stored blob"),
        },
        Ok(None) => tracing::debug!(digest = %blob.digest, "evicted before it was seeded"),
        Err(e) => tracing::error!(digest = %blob.digest, error = %e, "cannot look up a stored blob"),
    }
}
