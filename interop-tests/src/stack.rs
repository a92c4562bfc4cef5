//! Shoal's own services for a test, in this process but on loopback sockets like separate
//! hosts: `shoal tracker`, `shoal seeder` and any number of shims.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shoal_registry_shim::ShimMetrics;
use shoal_registry_shim::SwarmConfig;
use shoal_registry_shim::{BoundShim, ShimConfig};
use shoal_seeder::SeederConfig;
use shoal_store::seeding::SeedingConfig;
use shoal_tasks::Tasks;
use shoal_upstream::UpstreamConfig;

use crate::free_port;

/// BitTorrent settings for one service: its own loopback port, the given trackers.
pub fn seeding(trackers: &[String]) -> SeedingConfig {
    SeedingConfig::tracker_only(SocketAddr::from(([127, 0, 0, 1], free_port())), trackers.to_vec())
}

/// Logs of Shoal's services go to the test's output (shown for failed tests); `RUST_LOG`
/// picks the level, warnings by default.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,librqbit=error"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// Starts `shoal tracker` on a free port; returns its announce URL.
pub async fn start_tracker() -> String {
    init_logging();
    let tracker = shoal_tracker::bind(shoal_tracker::TrackerConfig::loopback()).await.unwrap();
    let url = format!("http://{}/announce", tracker.http_addr());
    tokio::spawn(tracker.serve(Tasks::root("test-tracker")));
    url
}

/// A seeder running in this process.
pub struct Seeder {
    /// Its HTTP base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    tasks: Tasks,
    task: tokio::task::JoinHandle<()>,
}

impl Seeder {
    /// Has the seeder mirror `image` (`registry/repo:tag`) and waits until it has: a shim asks
    /// the seeder for a torrent without waiting for a mirror, so a test that wants the blobs to
    /// come over the swarm has them mirrored first.
    pub async fn mirror(&self, image: &str) {
        let url = format!("{}/v1/images", self.url);
        let body = serde_json::json!({ "image": image }).to_string();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(crate::require_tool("curl"))
                .args(["-sS", "-f", "--max-time", "60", "-X", "POST", "-H", "content-type: application/json", "-d"])
                .arg(body)
                .arg(url)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(out.status.success(), "the seeder did not mirror {image}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Shuts it down (BitTorrent session, API, index) and waits until it has let go of its
    /// data directory.
    pub async fn stop(mut self) {
        self.tasks.cancel();
        tokio::time::timeout(Duration::from_secs(30), &mut self.task).await.expect("seeder stopped in time").unwrap();
    }
}

/// Starts `shoal seeder` with `registry` as its default upstream, super-seeding as
/// `shoal seeder` does by default.
pub async fn start_seeder(data: &Path, registry: &str, trackers: &[String]) -> Seeder {
    start_seeder_with(data, registry, SeedingConfig { super_seed: true, ..seeding(trackers) }).await
}

/// Starts `shoal seeder` with the given BitTorrent settings (e.g. `disable_upload`).
pub async fn start_seeder_with(data: &Path, registry: &str, seeding: SeedingConfig) -> Seeder {
    start_seeder_on(data, seeding, UpstreamConfig { default_registry: Some(registry.to_owned()), ..Default::default() })
        .await
}

/// Starts `shoal seeder` with the given BitTorrent settings and upstream (e.g. its deadlines).
pub async fn start_seeder_on(data: &Path, seeding: SeedingConfig, upstream: UpstreamConfig) -> Seeder {
    let config = SeederConfig {
        data_dir: data.to_owned(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        seeding,
        upstream,
        images: vec![],
        api_images: Vec::new(),
        platforms: vec![],
        store_limit: None,
        retries: Default::default(),
        mirror_allow: vec![],
        api_token: None,
        tls: None,
        members: Vec::new(),
        replicas: shoal_torrents::DEFAULT_REPLICAS,
    };
    let bound = tokio::time::timeout(Duration::from_secs(60), shoal_seeder::bind(config))
        .await
        .expect("seeder ready in time")
        .expect("seeder starts");
    let addr = bound.local_addr();
    let tasks = Tasks::root("test-seeder");
    let serving = tasks.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = bound.serve(serving).await {
            panic!("seeder failed: {e}");
        }
    });
    Seeder { url: format!("http://{addr}"), tasks, task }
}

/// A running shim: its address and its metrics.
pub struct Shim {
    pub addr: SocketAddr,
    pub metrics: Arc<ShimMetrics>,
}

/// Starts a shim with no swarm (every miss straight from upstream) over `registry`, reached as
/// `upstream` says; returns its address.
pub async fn start_direct_shim(
    data: &Path,
    registry: &str,
    tag_ttl: Duration,
    upstream: UpstreamConfig,
) -> std::net::SocketAddr {
    let shim = BoundShim::bind(ShimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.to_owned(),
        default_registry: registry.to_owned(),
        tag_ttl,
        stale_tag_max_age: shoal_registry_shim::DEFAULT_STALE_TAG_MAX_AGE,
        mirror_miss_timeout: shoal_registry_shim::DEFAULT_MIRROR_MISS_TIMEOUT,
        upstream,
        swarm: None,
        store_limit: None,
        tls: None,
    })
    .await
    .unwrap();
    let addr = shim.local_addr();
    tokio::spawn(shim.serve(Tasks::root("test-shim")));
    addr
}

/// Starts a shim over `registry`, fetching torrents from `seeder` (or upstream only, without),
/// with stall and torrent timeouts raised to 20 s (tests of what arrives, not of fallbacks).
pub async fn start_shim(data: &Path, registry: &str, seeder: Option<&str>, trackers: &[String]) -> Shim {
    let swarm = seeder.map(|seeder| SwarmConfig {
        stall_timeout: Duration::from_secs(20),
        torrent_timeout: Duration::from_secs(20),
        ..cli_swarm(seeder, trackers)
    });
    start_shim_with(data, registry, swarm).await
}

/// The swarm side `shoal shim --seeder SEEDER --tracker ..` runs with no timing flags: the
/// shim's own defaults, not the raised timeouts of [`start_shim`].
pub fn cli_swarm(seeder: &str, trackers: &[String]) -> SwarmConfig {
    SwarmConfig {
        seeders: vec![seeder.to_owned()],
        seeding: seeding(trackers),
        stall_timeout: shoal_registry_shim::DEFAULT_STALL_TIMEOUT,
        unchoke_wait: shoal_registry_shim::DEFAULT_UNCHOKE_WAIT,
        torrent_timeout: shoal_registry_shim::DEFAULT_TORRENT_TIMEOUT,
        peer_request_window: shoal_registry_shim::DEFAULT_PEER_REQUEST_WINDOW,
        seeder_trust: Default::default(),
    }
}

/// Starts a shim over `registry` as `shoal shim` runs by default ([`cli_swarm`]), for tests of
/// what a deployed shim does with the peers it finds.
pub async fn start_shim_as_cli(data: &Path, registry: &str, seeder: &str, trackers: &[String]) -> Shim {
    start_shim_with(data, registry, Some(cli_swarm(seeder, trackers))).await
}

/// Starts a shim over `registry` with the given swarm side (none: every miss from upstream).
pub async fn start_shim_with(data: &Path, registry: &str, swarm: Option<SwarmConfig>) -> Shim {
    let shim = BoundShim::bind(ShimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.to_owned(),
        default_registry: registry.to_owned(),
        tag_ttl: Duration::from_secs(30),
        stale_tag_max_age: shoal_registry_shim::DEFAULT_STALE_TAG_MAX_AGE,
        mirror_miss_timeout: shoal_registry_shim::DEFAULT_MIRROR_MISS_TIMEOUT,
        upstream: Default::default(),
        swarm,
        store_limit: None,
        tls: None,
    })
    .await
    .unwrap();
    let running = Shim { addr: shim.local_addr(), metrics: shim.metrics() };
    tokio::spawn(shim.serve(Tasks::root("test-shim")));
    running
}
