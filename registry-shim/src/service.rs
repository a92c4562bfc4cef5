//! Wiring for `shoal shim`: configuration, the data directory, binding the listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shoal_http_edge::{EdgeLimits, Tls, TlsFiles};
use shoal_store::blob_store::BlobStore;
use shoal_store::eviction::StoreLimit;
use shoal_store::index::BlobIndex;
use shoal_tasks::Tasks;
use shoal_upstream::{Upstream, UpstreamConfig};
use tower_http::trace::TraceLayer;

use crate::cache::ShimCache;
use crate::fetch::BlobFetcher;
use crate::http::{router, ShimState};
use crate::manifests::ManifestCache;
use crate::metrics::ShimMetrics;
use crate::private::PrivateBlobs;
use crate::pulls::PullLog;
use crate::resolve::ManifestResolver;
use crate::swarm::{Swarm, SwarmConfig};

/// How a shim runs.
#[derive(Clone, Debug)]
pub struct ShimConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Registry (`host[:port]`) for requests without `?ns=`.
    pub default_registry: String,
    /// How long a tag is trusted before it is resolved upstream again.
    pub tag_ttl: Duration,
    /// How long after upstream last confirmed a tag the shim still serves it when upstream
    /// cannot be reached (in memory and, through the index, across restarts).
    pub stale_tag_max_age: Duration,
    /// How long a mirror request (`ns=`, containerd's hosts.toml) may take before the shim
    /// answers 404 so the client goes to the registry itself.
    pub mirror_miss_timeout: Duration,
    /// Upstream access: insecure registries and credentials per registry.
    pub upstream: UpstreamConfig,
    /// The swarm side; `None` runs a plain verifying pull-through cache (no seeder, no peers).
    pub swarm: Option<SwarmConfig>,
    /// How large the store may grow (`--max-store-bytes` and watermarks); `None`: no limit.
    pub store_limit: Option<StoreLimit>,
    /// Serve HTTPS with this certificate (and require client certificates of its CA, if set).
    pub tls: Option<TlsFiles>,
}

/// Why the shim could not start.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("cannot open the data directory")]
    Store(#[from] shoal_store::blob_store::StoreError),
    #[error("cannot open the index")]
    Index(#[from] shoal_store::index::IndexError),
    #[error(transparent)]
    Cache(#[from] shoal_store::cache::CacheError),
    #[error("cannot create the data directory or its private-blob marks: {0}")]
    DataDir(std::io::Error),
    #[error(transparent)]
    Swarm(#[from] shoal_store::seeding::SeedingError),
    #[error("cannot listen on {addr}: {error}")]
    Listen { addr: SocketAddr, error: std::io::Error },
    #[error("cannot set up TLS")]
    Tls(#[from] shoal_http_edge::TlsError),
}

/// A shim whose listener is bound and whose store is open: tests read `local_addr` (after
/// binding port 0), then serve. Nothing runs until [`BoundShim::serve`].
pub struct BoundShim {
    listener: tokio::net::TcpListener,
    store: Arc<BlobStore>,
    upstream: Arc<Upstream>,
    swarm: Option<Arc<Swarm>>,
    metrics: Arc<ShimMetrics>,
    cache: Arc<ShimCache>,
    index: Arc<BlobIndex>,
    tag_ttl: Duration,
    stale_tag_max_age: Duration,
    mirror_miss_timeout: Duration,
    default_registry: String,
    tls: Option<Tls>,
}

/// How long a tag the shim cannot confirm upstream is still served: a week, long enough to
/// ride out an outage (or a weekend of one), short enough that a host cut off for longer
/// notices.
pub const DEFAULT_STALE_TAG_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long a containerd mirror request waits for the shim before it is told 404 (and asks
/// the registry): a cache hit answers in milliseconds, so this only bounds a miss.
pub const DEFAULT_MIRROR_MISS_TIMEOUT: Duration = Duration::from_secs(1);

/// How long serving waits, once cancelled, for requests in flight before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

impl BoundShim {
    pub async fn bind(config: ShimConfig) -> Result<Self, ShimError> {
        // TLS first: a bad certificate is an error before anything is opened.
        let tls = config.tls.as_ref().map(Tls::load).transpose()?;
        std::fs::create_dir_all(&config.data_dir).map_err(ShimError::DataDir)?;
        // The index first: redb's lock keeps a second shim off this data directory before the
        // store's startup sweep could delete the first one's temporary files.
        let index = Arc::new(BlobIndex::open(&config.data_dir.join("index.redb"))?);
        let store = Arc::new(BlobStore::open(&config.data_dir)?);
        let private = PrivateBlobs::open(&config.data_dir).map_err(ShimError::DataDir)?;
        let mut upstream_config = config.upstream.clone();
        upstream_config.default_registry.get_or_insert_with(|| config.default_registry.clone());
        let upstream = Arc::new(Upstream::new(upstream_config));
        let metrics = Arc::new(ShimMetrics::new());
        if let Some(swarm) = &config.swarm {
            let cap = |rate: Option<std::num::NonZeroU32>| rate.map(std::num::NonZeroU32::get);
            metrics.show_rate_caps(cap(swarm.seeding.max_upload_rate), cap(swarm.seeding.max_download_rate));
        }
        let swarm = match config.swarm.clone() {
            Some(swarm) => Some(Arc::new(Swarm::start(&config.data_dir, store.blobs_dir(), swarm).await?)),
            None => None,
        };
        let cache = Arc::new(ShimCache::new(
            Arc::clone(&store),
            Arc::clone(&index),
            private,
            swarm.as_deref(),
            metrics.cache_metrics(),
            config.store_limit,
        ));
        cache.start(swarm.as_deref()).await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|error| ShimError::Listen { addr: config.listen, error })?;
        Ok(Self {
            listener,
            store,
            upstream,
            swarm,
            metrics,
            cache,
            index,
            tls,
            tag_ttl: config.tag_ttl,
            stale_tag_max_age: config.stale_tag_max_age,
            mirror_miss_timeout: config.mirror_miss_timeout,
            default_registry: config.default_registry,
        })
    }

    /// The shim's metrics (what `/metrics` renders).
    pub fn metrics(&self) -> Arc<ShimMetrics> {
        Arc::clone(&self.metrics)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `tasks` is cancelled (or the server fails). Everything the shim spawns is
    /// under `tasks`; when this returns, all of it has ended, the uses recorded so far are
    /// written and the BitTorrent session is stopped.
    pub async fn serve(self, tasks: Tasks) -> Result<(), ShimError> {
        tracing::info!(addr = %self.local_addr(), "shim listening");
        let pulls = Arc::new(PullLog::default());
        let state = Arc::new(ShimState {
            blobs: Arc::new(BlobFetcher::new(
                self.store,
                Arc::clone(&self.upstream),
                self.swarm.clone(),
                Arc::clone(&self.metrics),
                Arc::clone(&self.cache),
                Arc::clone(&pulls),
                tasks.child("blobs"),
            )),
            cache: Arc::clone(&self.cache),
            pulls,
            metrics: Arc::clone(&self.metrics),
            manifests: ManifestResolver::new(
                Arc::clone(&self.upstream),
                ManifestCache::new(self.tag_ttl, 4096),
                self.index,
                self.stale_tag_max_age,
                self.metrics.manifest_failures.clone(),
            ),
            upstream: self.upstream,
            default_registry: self.default_registry,
            warned_hub_mirror: Default::default(),
            mirror_miss_timeout: self.mirror_miss_timeout,
            tasks: tasks.child("manifests"),
        });
        tasks.spawn("shim-cache", self.cache.background());
        let app = router(state).layer(TraceLayer::new_for_http());
        let refused = self.metrics.refused_connections.clone();
        shoal_http_edge::serve(
            self.listener,
            app,
            EdgeLimits::default(),
            self.tls,
            refused,
            tasks.child("http"),
            SHUTDOWN_GRACE,
        )
        .await;
        tasks.shutdown().await;
        self.cache.record_uses();
        if let Some(swarm) = &self.swarm {
            swarm.seeding().stop().await;
        }
        Ok(())
    }
}
