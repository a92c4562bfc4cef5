//! Wiring: opens the store and index, starts seeding, applies the cache policy, serves the
//! API, runs mirror jobs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shoal_torrents::Distribution;
use tokio::net::TcpListener;

use crate::api::{self, ApiState};
use crate::metrics::SeederMetrics;
use crate::mirror::{Mirror, MirrorError, PlatformFilter};
use crate::ui::{self, Throughput};
use shoal_store::blob_store::{BlobStore, StoreError};
use shoal_store::cache::{CacheError, StoreCache};
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
    /// Platforms of an image index to mirror (`os/arch[/variant]`); empty = all.
    pub platforms: Vec<String>,
    /// How large the store may grow (`--max-store-bytes` and watermarks); `None`: no limit.
    pub store_limit: Option<StoreLimit>,
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
}

/// Hands every stored blob to the session (those it restored from its own persistence are
/// already there); returns how many blobs and bytes are stored. Repairs on the way: a record
/// whose file is gone is dropped, and a file without a record (renamed into place by a process
/// killed before its index write) is verified and recorded, or removed.
pub async fn seed_stored_blobs(mirror: &Mirror, seeding: &Seeding) -> Result<(u64, u64), SeederError> {
    let (mut count, mut bytes) = (0u64, 0u64);
    for h in mirror.cached_store().stored_blobs()? {
        seeding.seed(&h).await?;
        count += 1;
        bytes += h.size;
    }
    Ok((count, bytes))
}

/// Runs the seeder until `shutdown` resolves. `on_ready` gets the bound HTTP address once the
/// store is open and every stored blob is being seeded.
pub async fn run(
    config: SeederConfig,
    on_ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), SeederError> {
    if config.seeding.listen.port() == 0 && config.seeding.announce_port.is_none() {
        return Err(SeederError::Config("the BitTorrent listen port must be set (peers are told it)".into()));
    }
    let started = Instant::now();
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| SeederError::Config(format!("cannot create {}: {e}", config.data_dir.display())))?;
    // The index first: redb's lock keeps a second seeder off this data directory before the
    // store's startup sweep could delete the first one's temporary files.
    let index = Arc::new(BlobIndex::open(&config.data_dir.join("index.redb"))?);
    let store = Arc::new(BlobStore::open(&config.data_dir)?);
    let metrics = Arc::new(SeederMetrics::new());
    let upstream = Upstream::new(config.upstream.clone());
    let (mirror, mut stored) = Mirror::new(
        upstream,
        Arc::clone(&store),
        Arc::clone(&index),
        Arc::clone(&metrics),
        PlatformFilter(config.platforms.clone()),
    );

    let listener = TcpListener::bind(config.http_listen)
        .await
        .map_err(|error| SeederError::Listen { addr: config.http_listen, error })?;
    let bound = listener.local_addr().map_err(|error| SeederError::Listen { addr: config.http_listen, error })?;
    let public_url = config.public_url.clone().unwrap_or_else(|| format!("http://{bound}"));
    let public_url = public_url.trim_end_matches('/').to_owned();

    let seeding =
        Arc::new(Seeding::start(store.blobs_dir(), &config.data_dir.join("bittorrent"), &config.seeding).await?);
    let (count, bytes) = seed_stored_blobs(&mirror, &seeding).await?;
    metrics.blobs.set(count as i64);
    metrics.bytes_stored.set(bytes as i64);
    let cache = Arc::new(StoreCache::new(
        mirror.cached_store(),
        Some(Arc::clone(&seeding)),
        metrics.cache(),
        config.store_limit,
    ));
    // Before ready: a restart with a smaller limit serves only what fits.
    cache.enforce().await?;
    tracing::info!(
        blobs = metrics.blobs.get(),
        torrents = seeding.torrent_count(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "ready to seed"
    );

    // Seeding newly stored blobs, eviction and writing uses share one task, so they never
    // race each other: no torrent is removed while it is being added, and a blob evicted
    // before its turn to be seeded is skipped.
    // Background tasks hold the index and the session; they are aborted (and awaited) at
    // shutdown so the redb lock is released when `run` returns: a restart in the same process
    // (tests, `shoal up`) reopens the data directory at once.
    let mut background = Vec::new();
    let (seeder, store_cache, seed_mirror) = (Arc::clone(&seeding), Arc::clone(&cache), Arc::clone(&mirror));
    background.push(tokio::spawn(async move {
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
                        seed_if_stored(&seed_mirror, &seeder, &blob).await;
                    }
                    if let Err(e) = store_cache.enforce().await {
                        tracing::error!(error = %e, "cache eviction failed");
                    }
                }
                _ = write_uses.tick() => {
                    if let Err(e) = store_cache.record_uses() {
                        tracing::warn!(error = %e, "cannot record blob uses in the index");
                    }
                }
            }
        }
    }));
    let (seeder, gauges) = (Arc::clone(&seeding), Arc::clone(&metrics));
    background.push(tokio::spawn(async move {
        loop {
            gauges.bittorrent_uploaded_bytes.set(seeder.uploaded_bytes() as i64);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }));

    let throughput = Arc::new(Throughput::new());
    background.push(tokio::spawn(ui::record_throughput(
        Arc::clone(&seeding),
        Arc::clone(&metrics),
        Arc::clone(&throughput),
    )));

    let state = Arc::new(ApiState {
        mirror: Arc::clone(&mirror),
        metrics: Arc::clone(&metrics),
        seeding: Arc::clone(&seeding),
        throughput,
        distribution: Distribution {
            trackers: config.seeding.trackers.clone(),
            webseeds: vec![format!("{public_url}/webseed/")],
        },
        public_url,
    });

    let mut jobs = mirror.unfinished_jobs()?;
    if !jobs.is_empty() {
        tracing::info!(count = jobs.len(), "resuming mirror jobs a previous run left unfinished");
    }
    for image in &config.images {
        if !jobs.contains(image) {
            jobs.push(image.clone());
        }
    }
    let jobs_mirror = Arc::clone(&mirror);
    background.push(tokio::spawn(async move {
        for image in jobs {
            if let Err(e) = jobs_mirror.mirror_image(&image).await {
                tracing::error!(%image, error = %e, "mirroring failed");
            }
        }
    }));

    on_ready(bound);
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|error| SeederError::Listen { addr: bound, error })?;
    for task in &background {
        task.abort();
    }
    for task in background {
        let _ = task.await;
    }
    if let Err(e) = cache.record_uses() {
        tracing::warn!(error = %e, "cannot record blob uses in the index");
    }
    seeding.stop().await;
    Ok(())
}

/// Seeds a newly stored blob, unless an eviction already took it again.
async fn seed_if_stored(mirror: &Mirror, seeding: &Seeding, blob: &shoal_torrents::HashedBlob) {
    match mirror.stored_blob(&blob.digest) {
        Ok(Some(_)) => {
            if let Err(e) = seeding.seed(blob).await {
                tracing::error!(digest = %blob.digest, error = %e, "cannot seed a stored blob");
            }
        }
        Ok(None) => tracing::debug!(digest = %blob.digest, "evicted before it was seeded"),
        Err(e) => tracing::error!(digest = %blob.digest, error = %e, "cannot look up a stored blob"),
    }
}
