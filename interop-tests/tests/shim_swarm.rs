//! The shim's swarm path with real parts: a `docker-registry` upstream, `shoal tracker`,
//! `shoal seeder` and the shim, all in this process but talking over loopback sockets, with
//! skopeo as the client. Blobs must arrive from BitTorrent peers, verified.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use shoal_interop_tests::registry::{curl, push_image, skopeo_pull, PushedImage};
use shoal_interop_tests::stack::{seeding, start_seeder, start_seeder_with, start_shim, start_tracker};
use shoal_interop_tests::{require_tool, sha256_file};
use shoal_registry_shim::Source;

async fn pull(shim: SocketAddr, image: &str, out: &Path) {
    let result = skopeo_pull(shim, image, out, &[]).await;
    assert!(result.status.success(), "skopeo pull through the shim: {}", String::from_utf8_lossy(&result.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blobs_arrive_from_the_swarm_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let PushedImage { registry: _registry, address: registry, blobs, .. } =
        push_image(tmp.path(), "swarm/app", &[3_000_000, 700_000], 21);

    let trackers = vec![start_tracker().await];
    let seeder = start_seeder(&tmp.path().join("seeder"), &registry, &trackers).await;
    seeder.mirror(&format!("{registry}/swarm/app:v1")).await;
    let shim = start_shim(&tmp.path().join("shim"), &registry, Some(&seeder.url), &trackers).await;

    let out = tmp.path().join("pulled");
    pull(shim.addr, "swarm/app:v1", &out).await;
    for blob in &blobs {
        assert_eq!(sha256_file(&out.join(blob.digest.trim_start_matches("sha256:"))), blob.digest);
    }
    let layers: u64 = blobs.iter().skip(1).map(|b| b.size).sum();
    let from_peers = shim.metrics.bytes(Source::Peers).get();
    assert!(from_peers >= layers, "only {from_peers} of {layers} layer bytes came from peers");
    assert_eq!(shim.metrics.bytes(Source::Upstream).get(), 0, "bytes came from upstream");
}

/// P2P is real: once one shim holds an image, a second shim gets the layers from the first
/// while the seeder uploads nothing (restarted on its data with uploads disabled; its torrent
/// API stays up) and the upstream registry is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_host_gets_the_layers_from_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let PushedImage { mut registry, address: registry_name, blobs, .. } =
        push_image(tmp.path(), "p2p/app", &[2_500_000, 1_200_000], 44);

    let trackers = vec![start_tracker().await];
    let seeder_dir = tmp.path().join("seeder");
    let seeder = start_seeder(&seeder_dir, &registry_name, &trackers).await;
    let first = start_shim(&tmp.path().join("first"), &registry_name, Some(&seeder.url), &trackers).await;
    pull(first.addr, "p2p/app:v1", &tmp.path().join("pulled-first")).await;

    // The origin stops uploading; the upstream registry goes away.
    seeder.stop().await;
    let mut leech_only = seeding(&trackers);
    leech_only.disable_upload = true;
    let seeder = start_seeder_with(&seeder_dir, &registry_name, leech_only).await;
    registry.0.kill().unwrap();
    registry.0.wait().unwrap();

    let second = start_shim(&tmp.path().join("second"), &registry_name, Some(&seeder.url), &trackers).await;
    // The upstream is down and the second shim has never seen the manifest, so the test asks
    // it for the layers directly, as a client holding the manifest would.
    let out = tmp.path().join("pulled-second");
    std::fs::create_dir_all(&out).unwrap();
    for blob in blobs.iter().skip(1) {
        let file = out.join(blob.digest.trim_start_matches("sha256:"));
        let url = format!("http://{}/v2/p2p/app/blobs/{}", second.addr, blob.digest);
        let curl = require_tool("curl");
        let status = tokio::task::spawn_blocking({
            let file = file.clone();
            move || Command::new(curl).args(["-sf", "--max-time", "60", "-o"]).arg(&file).arg(&url).status().unwrap()
        })
        .await
        .unwrap();
        assert!(status.success(), "blob {} through the second shim", blob.digest);
        assert_eq!(sha256_file(&file), blob.digest);
    }
    let layers: u64 = blobs.iter().skip(1).map(|b| b.size).sum();
    let from_peers = second.metrics.bytes(Source::Peers).get();
    assert!(from_peers >= layers, "only {from_peers} of {layers} bytes came from peers: {}", second.metrics.render());
    assert_eq!(second.metrics.bytes(Source::Upstream).get() + second.metrics.bytes(Source::Webseed).get(), 0);
    let uploaded = |url: String, name: &'static str| async move {
        let (_, body, _) = tokio::task::spawn_blocking(move || curl(&url, &[])).await.unwrap();
        let text = String::from_utf8_lossy(&body).into_owned();
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {text}")).to_owned();
        line.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64
    };
    let by_first =
        uploaded(format!("http://{}/metrics", first.addr), "shoal_shim_bittorrent_uploaded_bytes_total").await;
    assert!(by_first >= layers, "the first shim uploaded only {by_first} bytes");
    let by_seeder = uploaded(format!("{}/metrics", seeder.url), "shoal_seeder_bittorrent_uploaded_bytes_total").await;
    assert_eq!(by_seeder, 0, "the seeder uploaded while told not to");
    seeder.stop().await;
}
