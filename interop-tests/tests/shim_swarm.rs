//! The shim's swarm path with real parts: a `docker-registry` upstream, `shoal tracker`,
//! `shoal seeder` and the shim, all in this process but talking over loopback sockets, with
//! skopeo as the client. Blobs must arrive from BitTorrent peers, verified.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use shoal_interop_tests::registry::{skopeo_push, start_registry, write_oci_layout};
use shoal_interop_tests::{free_port, require_tool, sha256_file};
use shoal_registry_shim::swarm::{Source, SwarmConfig};
use shoal_registry_shim::{BoundShim, ShimConfig};
use shoal_seeder::seeding::SeedingConfig;
use shoal_seeder::upstream::UpstreamConfig;
use shoal_seeder::SeederConfig;

fn seeding(trackers: &[String]) -> SeedingConfig {
    SeedingConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], free_port())),
        announce_port: None,
        trackers: trackers.to_vec(),
        dht: false,
        local_service_discovery: false,
    }
}

/// Starts `shoal seeder` in this process; returns its HTTP base URL.
async fn start_seeder(data: &Path, registry: &str, trackers: &[String]) -> String {
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
        let result = shoal_seeder::run(
            config,
            move |addr| {
                let _ = ready_tx.send(addr);
            },
            std::future::pending(),
        )
        .await;
        if let Err(e) = result {
            panic!("seeder failed: {e}");
        }
    });
    let addr = tokio::time::timeout(Duration::from_secs(60), ready_rx).await.expect("seeder ready in time").unwrap();
    format!("http://{addr}")
}

async fn start_shim(data: &Path, registry: &str, seeder: &str, trackers: &[String]) -> (SocketAddr, BoundShim) {
    let shim = BoundShim::bind(ShimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.to_owned(),
        default_registry: registry.to_owned(),
        tag_ttl: Duration::from_secs(30),
        upstream: Default::default(),
        swarm: Some(SwarmConfig {
            seeder_url: Some(seeder.to_owned()),
            seeding: seeding(trackers),
            stall_timeout: Duration::from_secs(20),
            torrent_timeout: Duration::from_secs(20),
        }),
    })
    .await
    .unwrap();
    (shim.local_addr(), shim)
}

async fn skopeo_pull(shim: SocketAddr, image: &str, out: &Path) {
    let skopeo = require_tool("skopeo");
    let out = out.to_owned();
    let image = format!("docker://{shim}/{image}");
    let result = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .arg("120")
            .arg(skopeo)
            .args(["copy", "-q", "--src-tls-verify=false", "--retry-times=0"])
            .arg(image)
            .arg(format!("dir:{}", out.display()))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(result.status.success(), "skopeo pull through the shim: {}", String::from_utf8_lossy(&result.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blobs_arrive_from_the_swarm_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let (_registry, port) = start_registry(&tmp.path().join("registry"), "");
    let registry = format!("127.0.0.1:{port}");
    let layout = tmp.path().join("layout");
    let (blobs, _) = write_oci_layout(&layout, "v1", &[3_000_000, 700_000], 21);
    skopeo_push(&layout, "v1", port, "swarm/app");

    let tracker = shoal_tracker::bind(shoal_tracker::TrackerConfig::loopback()).await.unwrap();
    let trackers = vec![format!("http://{}/announce", tracker.http_addr())];
    tokio::spawn(tracker.serve(std::future::pending()));
    let seeder = start_seeder(&tmp.path().join("seeder"), &registry, &trackers).await;
    let (addr, shim) = start_shim(&tmp.path().join("shim"), &registry, &seeder, &trackers).await;
    let metrics = shim.metrics();
    tokio::spawn(shim.serve());

    let out = tmp.path().join("pulled");
    skopeo_pull(addr, "swarm/app:v1", &out).await;
    for blob in &blobs {
        assert_eq!(sha256_file(&out.join(blob.digest.trim_start_matches("sha256:"))), blob.digest);
    }
    let layers: u64 = blobs.iter().skip(1).map(|b| b.size).sum();
    let from_peers = metrics.bytes(Source::Peers).get();
    assert!(from_peers >= layers, "only {from_peers} of {layers} layer bytes came from peers");
    assert_eq!(metrics.bytes(Source::Upstream).get(), 0, "bytes came from upstream");
}
