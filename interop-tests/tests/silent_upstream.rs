//! An upstream that accepts connections and never answers (a bound listener nobody reads) is a
//! clear error within the first-byte deadline, never a hang: for the shim's manifest, blob and
//! tag-list requests (a 1 s deadline) and for the seeder's mirror (the default 10 s), each
//! failure counted with reason `timeout`; a containerd mirror request (`ns=`) is a 404 within
//! `--mirror-miss-timeout-ms` (1 s). The same, seen by real clients: `docker pull` through the
//! shim fails within seconds (a 502; the shim counts the timeout), and `shoal magnets` through
//! the seeder exits 1 within the seeder's 10 s deadline with the cause.

use std::time::{Duration, Instant};

use shoal_interop_tests::docker::DockerDaemon;
use shoal_interop_tests::registry::curl;
use shoal_interop_tests::stack::{start_direct_shim, start_seeder, start_tracker};
use shoal_upstream::{Deadlines, UpstreamConfig};

const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// (status, body, seconds taken) of a GET.
async fn timed_get(url: String, extra: &'static [&'static str]) -> (u16, String, f64) {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let (status, body, _) = curl(&url, extra);
        (status, String::from_utf8_lossy(&body).into_owned(), started.elapsed().as_secs_f64())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_upstream_fails_within_its_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    // The kernel completes the handshakes into the backlog; nobody ever reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = silent.local_addr().unwrap().to_string();
    let deadlines = Deadlines { first_byte: Duration::from_secs(1), ..Default::default() };
    let upstream_config = UpstreamConfig { deadlines, ..Default::default() };
    let shim = start_direct_shim(&tmp.path().join("shim"), &upstream, Duration::from_secs(30), upstream_config).await;

    let requests = [
        (format!("http://{shim}/v2/team/app/manifests/v1"), "manifest"),
        (format!("http://{shim}/v2/team/app/blobs/{DIGEST}"), "blob"),
        (format!("http://{shim}/v2/team/app/tags/list"), "tag list"),
    ];
    for (url, what) in requests {
        let (status, body, took) = timed_get(url, &[]).await;
        eprintln!("{what}: {status} after {took:.2} s: {body}");
        assert_eq!(status, 502, "{what}: {body}");
        assert!(body.contains("UNAVAILABLE") && body.contains("did not answer"), "{what}: {body}");
        assert!(took < 4.0, "{what} took {took:.2} s against a 1 s deadline");
    }
    let (_, metrics, _) = timed_get(format!("http://{shim}/metrics"), &[]).await;
    assert!(metrics.contains("shoal_shim_manifest_failures_total{reason=\"timeout\"} 1"), "{metrics}");

    // As a containerd mirror (`ns=`): a 404 within --mirror-miss-timeout-ms (1 s), so the
    // client asks the registry itself; the shim's own fetch goes on and fails on its deadline
    // (5 s here, so the two cannot race).
    let deadlines = Deadlines { first_byte: Duration::from_secs(5), ..Default::default() };
    let upstream_config = UpstreamConfig { deadlines, ..Default::default() };
    let shim = start_direct_shim(&tmp.path().join("mirror"), &upstream, Duration::from_secs(30), upstream_config).await;
    let mirror = [
        (format!("http://{shim}/v2/team/app/manifests/v1?ns={upstream}"), "MANIFEST_UNKNOWN"),
        (format!("http://{shim}/v2/team/app/blobs/{DIGEST}?ns={upstream}"), "BLOB_UNKNOWN"),
    ];
    for (url, code) in mirror {
        let (status, body, took) = timed_get(url, &[]).await;
        eprintln!("mirror {code}: {status} after {took:.2} s: {body}");
        assert_eq!(status, 404, "{body}");
        assert!(body.contains(code) && body.contains("--mirror-miss-timeout-ms"), "{body}");
        assert!((0.9..2.5).contains(&took), "a mirror miss took {took:.2} s against 1 s");
    }
    shoal_interop_tests::eventually("the mirror's manifest fetch to time out on its own", || {
        let (_, metrics, _) = tokio::task::block_in_place(|| curl(&format!("http://{shim}/metrics"), &[]));
        String::from_utf8_lossy(&metrics).contains("shoal_shim_manifest_failures_total{reason=\"timeout\"} 1")
    })
    .await;

    // The seeder's mirror, on its default deadlines (first byte 10 s).
    let announce = start_tracker().await;
    let seeder = start_seeder(&tmp.path().join("seeder"), &upstream, std::slice::from_ref(&announce)).await;
    let url = format!("{}/v1/images", seeder.url);
    let started = Instant::now();
    let body = format!(r#"{{"image":"{upstream}/team/app:v1"}}"#);
    let (status, answer, _) = tokio::task::spawn_blocking(move || {
        curl(&url, &["-X", "POST", "-H", "content-type: application/json", "-d", &body])
    })
    .await
    .unwrap();
    let took = started.elapsed();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    eprintln!("seeder mirror: {status} after {took:?}: {answer}");
    assert_eq!(status, 502, "{answer}");
    assert!(answer.contains("did not answer"), "{answer}");
    assert!(took >= Duration::from_secs(9) && took < Duration::from_secs(14), "{took:?} against 10 s");
    let (_, metrics, _) = timed_get(format!("{}/metrics", seeder.url), &[]).await;
    assert!(metrics.contains("shoal_seeder_mirror_failures_total{reason=\"timeout\"} 1"), "{metrics}");

    // `shoal magnets`, as a CI step runs it: exit 1 within the deadline, the cause on stderr.
    let (magnets, took) = tokio::task::spawn_blocking({
        let (seeder, image) = (seeder.url.clone(), format!("{upstream}/team/other:v1"));
        move || {
            let started = Instant::now();
            let out = std::process::Command::new(shoal_interop_tests::shoal_binary())
                .args(["magnets", "--seeder", &seeder, &image])
                .env_remove("GITHUB_STEP_SUMMARY")
                .output()
                .unwrap();
            (out, started.elapsed())
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&magnets.stderr);
    eprintln!("shoal magnets: {:?} after {took:?}: {stderr}", magnets.status.code());
    assert_eq!(magnets.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("did not answer"), "{stderr}");
    assert!(took >= Duration::from_secs(9) && took < Duration::from_secs(16), "{took:?} against 10 s");
    seeder.stop().await;
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_pull_through_a_shim_whose_upstream_is_silent_fails_within_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = silent.local_addr().unwrap().to_string();
    let deadlines = Deadlines { first_byte: Duration::from_secs(2), ..Default::default() };
    let upstream_config = UpstreamConfig { deadlines, ..Default::default() };
    let shim = start_direct_shim(&tmp.path().join("shim"), &upstream, Duration::from_secs(30), upstream_config).await;
    let daemon_dir = tmp.path().join("docker");
    let daemon = tokio::task::spawn_blocking(move || DockerDaemon::start(&daemon_dir)).await.unwrap();
    let image = format!("{shim}/team/app:v1");
    let started = Instant::now();
    let pulled = tokio::task::block_in_place(|| daemon.docker(&["pull", &image]));
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&pulled.stderr);
    eprintln!("docker pull: {:?} after {took:?}: {stderr}", pulled.status.code());
    assert!(!pulled.status.success(), "pulled through a silent upstream?");
    // docker shows only the status of a 5xx (not the OCI error body, which names the cause);
    // the shim counted the cause.
    assert!(stderr.contains("502 Bad Gateway"), "{stderr}");
    assert!(took < Duration::from_secs(15), "docker pull took {took:?} against a 2 s first-byte deadline");
    let (_, metrics, _) = timed_get(format!("http://{shim}/metrics"), &[]).await;
    assert!(metrics.contains("shoal_shim_manifest_failures_total{reason=\"timeout\"}"), "{metrics}");
    drop(silent);
}
