//! Wiring for `shoal shim`: configuration, the data directory, binding the listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shoal_store::blob_store::BlobStore;
use shoal_store::eviction::StoreLimit;
use shoal_store::index::BlobIndex;
use shoal_upstream::{Upstream, UpstreamConfig};

use crate::cache::ShimCache;
use crate::fetch::BlobFetcher;
use crate::http::{router, ShimState};
use crate::manifests::ManifestCache;
use crate::metrics::ShimMetrics;
use crate::private::PrivateBlobs;
use crate::resolve::ManifestResolver;
use crate::swarm::{AbortOnDrop, Swarm, SwarmConfig};

/// How a shim runs.
#[derive(Clone, Debug)]
pub struct ShimConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Registry (`host[:port]`) for requests without `?ns=`.
    pub default_registry: String,
    /// How long a tag is trusted before it is resolved upstream again.
    pub tag_ttl: Duration,
    /// Upstream access: insecure registries and credentials per registry.
    pub upstream: UpstreamConfig,
    /// The swarm side; `None` runs a plain verifying pull-through cache (no seeder, no peers).
    pub swarm: Option<SwarmConfig>,
    /// How large the store may grow (`--max-store-bytes` and watermarks); `None`: no limit.
    pub store_limit: Option<StoreLimit>,
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
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

/// A shim whose listener is bound: tests read `local_addr` (after binding port 0), then serve.
pub struct BoundShim {
    listener: tokio::net::TcpListener,
    state: Arc<ShimState>,
    cache: Arc<ShimCache>,
}

impl BoundShim {
    pub async fn bind(config: ShimConfig) -> Result<Self, ShimError> {
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
        let swarm = match config.swarm.clone() {
            Some(swarm) => Some(Arc::new(Swarm::start(&config.data_dir, store.blobs_dir(), swarm).await?)),
            None => None,
        };
        let cache = Arc::new(ShimCache::new(
            Arc::clone(&store),
            index,
            private,
            swarm.as_deref(),
            metrics.cache_metrics(),
            config.store_limit,
        ));
        cache.start(swarm.as_deref()).await?;
        let tasks = shoal_tasks::Tasks::root("shim");
        let state = Arc::new(ShimState {
            blobs: Arc::new(BlobFetcher::new(
                store,
                Arc::clone(&upstream),
                swarm,
                Arc::clone(&metrics),
                Arc::clone(&cache),
                tasks.child("blobs"),
            )),
            metrics: Arc::clone(&metrics),
            manifests: ManifestResolver::new(Arc::clone(&upstream), ManifestCache::new(config.tag_ttl, 4096)),
            upstream,
            default_registry: config.default_registry.clone(),
        });
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|error| ShimError::Listen { addr: config.listen, error })?;
        Ok(Self { listener, state, cache })
    }

    /// The shim's metrics (what `/metrics` renders).
    pub fn metrics(&self) -> Arc<ShimMetrics> {
        Arc::clone(&self.state.metrics)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until the server fails (or this future is dropped: the cache's background task
    /// goes with it, after the uses recorded so far are written).
    pub async fn serve(self) -> Result<(), ShimError> {
        tracing::info!(addr = %self.local_addr(), "shim listening");
        let _background = AbortOnDrop(tokio::spawn(self.cache.background()));
        let _flush = FlushUses(self.cache);
        axum::serve(self.listener, router(self.state)).await.map_err(ShimError::Serve)
    }
}

/// Writes recorded uses to the index when serving stops.
struct FlushUses(Arc<ShimCache>);

impl Drop for FlushUses {
    fn drop(&mut self) {
        self.0.record_uses();
    }
}

/// Runs `shoal shim` until the server fails.
pub async fn run(config: ShimConfig) -> Result<(), ShimError> {
    BoundShim::bind(config).await?.serve().await
}
