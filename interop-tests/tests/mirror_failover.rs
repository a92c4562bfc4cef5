//! containerd (the Docker daemon's own, driven by `ctr` with a hosts.toml mirror) through a
//! shim that cannot get a blob quickly: its seeder accepts connections and never answers. The
//! shim answers each blob request 404 within `--mirror-miss-timeout-ms` (1 s), containerd
//! fetches those blobs from the registry itself, and the pull completes well before the shim's
//! own 20 s wait on the seeder would have ended.

use std::time::{Duration, Instant};

use shoal_interop_tests::docker::DockerDaemon;
use shoal_interop_tests::registry::{push_image, PushedImage};
use shoal_interop_tests::stack::{start_shim, start_tracker};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn containerd_falls_back_to_the_registry_when_the_shim_cannot_answer_in_time() {
    let tmp = tempfile::tempdir().unwrap();
    let PushedImage { registry: _registry, address: registry, blobs, .. } =
        push_image(tmp.path(), "team/app", &[1_500_000, 400_000], 71);
    // The kernel completes the handshakes into the backlog; nobody ever reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let seeder = format!("http://{}", silent.local_addr().unwrap());
    let trackers = vec![start_tracker().await];
    let shim = start_shim(&tmp.path().join("shim"), &registry, Some(&seeder), &trackers).await;
    let daemon_dir = tmp.path().join("docker");
    let daemon = tokio::task::spawn_blocking(move || DockerDaemon::start(&daemon_dir)).await.unwrap();

    let started = Instant::now();
    let hosts = tmp.path().join("hosts");
    let out =
        tokio::task::block_in_place(|| daemon.ctr_pull_through_mirror(&hosts, &registry, shim.addr, "team/app:v1"));
    let took = started.elapsed();
    eprintln!("ctr pull took {took:?}: {}", String::from_utf8_lossy(&out.stdout));
    let metrics = shim.metrics.render();
    // The manifest came from the shim (upstream answers it at once); each blob was a 404.
    assert!(metrics.contains(r#"shoal_shim_requests_total{endpoint="manifests",status="200"}"#), "{metrics}");
    let blob_misses = format!(r#"shoal_shim_requests_total{{endpoint="blobs",status="404"}} {}"#, blobs.len());
    assert!(metrics.contains(&blob_misses), "not every blob was a fast 404: {metrics}");
    assert!(took < Duration::from_secs(15), "the pull waited on the shim: {took:?}");
    drop(silent);
}
