//! The shim's swarm path with real parts: a `docker-registry` upstream, `shoal tracker`,
//! `shoal seeder` and the shim, all in this process but talking over loopback sockets, with
//! skopeo as the client. Blobs must arrive from BitTorrent peers, verified.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use shoal_interop_tests::registry::{skopeo_push, start_registry, write_oci_layout};
use shoal_interop_tests::stack::{start_seeder, start_shim, start_tracker};
use shoal_interop_tests::{require_tool, sha256_file};
use shoal_registry_shim::swarm::Source;

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

    let trackers = vec![start_tracker().await];
    let seeder = start_seeder(&tmp.path().join("seeder"), &registry, &trackers).await;
    let shim = start_shim(&tmp.path().join("shim"), &registry, Some(&seeder), &trackers).await;

    let out = tmp.path().join("pulled");
    skopeo_pull(shim.addr, "swarm/app:v1", &out).await;
    for blob in &blobs {
        assert_eq!(sha256_file(&out.join(blob.digest.trim_start_matches("sha256:"))), blob.digest);
    }
    let layers: u64 = blobs.iter().skip(1).map(|b| b.size).sum();
    let from_peers = shim.metrics.bytes(Source::Peers).get();
    assert!(from_peers >= layers, "only {from_peers} of {layers} layer bytes came from peers");
    assert_eq!(shim.metrics.bytes(Source::Upstream).get(), 0, "bytes came from upstream");
}
