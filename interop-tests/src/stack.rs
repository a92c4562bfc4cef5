//! Shoal's own services for a test, in this process but on loopback sockets like separate
//! hosts: `shoal tracker`, `shoal seeder` and any number of shims.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shoal_registry_shim::metrics::ShimMetrics;
use shoal_registry_shim::swarm::SwarmConfig;
use shoal_registry_shim::{BoundShim, ShimConfig};
use shoal_seeder::seeding::SeedingConfig;
use shoal_seeder::upstream::UpstreamConfig;
use shoal_seeder::SeederConfig;

use crate::free_port;

/// BitTorrent settings for one service: its own loopback port, the given trackers.
pub fn seeding(trackers: &[String]) -> SeedingConfig {
    SeedingConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], free_port())),
        announce_port: None,
        trackers: trackers.to_vec(),
        dht: false,
        local_service_discovery: false,
    }
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
    tokio::spawn(tracker.serve(std::future::pending()));
    url
}

/// Starts `shoal seeder` with `registry` as its default upstream; returns its HTTP base URL.
pub async fn start_seeder(data: &Path, registry: &str, trackers: &[String]) -> String {
    let config = SeederConfig {
        data_dir: data.to_owned(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        seeding: seeding(trackers),
        upstream: UpstreamConfig { default_registry: Some(registry.to_owned()), ..Default::default() },
        images: vec![],
        platforms: vec![],
    };
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let ready = move |addr| {
            let _ = ready_tx.send(addr);
        };
        if let Err(e) = shoal_seeder::run(config, ready, std::future::pending()).await {
            panic!("seeder failed: {e}");
        }
    });
    let addr = tokio::time::timeout(Duration::from_secs(60), ready_rx).await.expect("seeder ready in time").unwrap();
    format!("http://{addr}")
}

/// A running shim: its address and its metrics.
pub struct Shim {
    pub addr: SocketAddr,
    pub metrics: Arc<ShimMetrics>,
}

/// Starts a shim over `registry`, fetching torrents from `seeder` (or upstream only, without).
pub async fn start_shim(data: &Path, registry: &str, seeder: Option<&str>, trackers: &[String]) -> Shim {
    let shim = BoundShim::bind(ShimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.to_owned(),
        default_registry: registry.to_owned(),
        tag_ttl: Duration::from_secs(30),
        upstream: Default::default(),
        swarm: seeder.map(|seeder| SwarmConfig {
            seeder_url: Some(seeder.to_owned()),
            seeding: seeding(trackers),
            stall_timeout: Duration::from_secs(20),
            torrent_timeout: Duration::from_secs(20),
        }),
    })
    .await
    .unwrap();
    let running = Shim { addr: shim.local_addr(), metrics: shim.metrics() };
    tokio::spawn(shim.serve());
    running
}
