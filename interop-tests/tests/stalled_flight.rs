//! Upstream stalls mid-body for one repository while another repository serves the same blob:
//! a request from the healthy repository joins the stalled download, but waits only for its own
//! first-byte deadline (2 s here) of no progress, then fetches on its own and gets the verified
//! blob long before the stalled one fails on its idle deadline (20 s here). For the shim's
//! blob requests (two such clients share one download around it) and for the seeder's mirror
//! alike. Also: an upstream that sends a blob's
//! headers and then nothing fails on the idle deadline, never hangs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;
use shoal_interop_tests::registry::curl;
use shoal_interop_tests::stack::{seeding, start_direct_shim, start_seeder_on, start_tracker};
use shoal_torrents::BlobHasher;
use shoal_upstream::{Deadlines, UpstreamConfig};

fn digest_of(bytes: &[u8]) -> String {
    let mut h = BlobHasher::new(bytes.len() as u64);
    h.update(bytes);
    h.finish().digest.to_string()
}

/// How a repository serves its blobs' bodies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Serving {
    Whole,
    /// The headers and the first MiB, then nothing, forever.
    StallMidBody,
    /// The headers, then nothing.
    StallAfterHeaders,
}

/// A Distribution pull API over one image (a config and one 4 MiB layer) in several
/// repositories, each serving blob bodies its own way.
struct Registry {
    manifest: Vec<u8>,
    blobs: HashMap<String, Vec<u8>>,
    repos: HashMap<&'static str, Serving>,
    /// Bytes of blob bodies sent, per repository.
    sent: HashMap<&'static str, AtomicU64>,
}

impl Registry {
    fn new(repos: &[(&'static str, Serving)]) -> (Arc<Self>, String) {
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
        let layer: Vec<u8> = (0..4u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let layer_digest = digest_of(&layer);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}],
        }))
        .unwrap();
        let blobs = HashMap::from([(digest_of(&config), config), (layer_digest.clone(), layer)]);
        let sent = repos.iter().map(|(r, _)| (*r, AtomicU64::new(0))).collect();
        (Arc::new(Self { manifest, blobs, repos: repos.iter().copied().collect(), sent }), layer_digest)
    }

    fn serve(self: &Arc<Self>) -> String {
        let app = Router::new()
            .route("/v2/", get(|| async { "{}" }))
            .route("/v2/{*path}", get(serve_path))
            .with_state(Arc::clone(self));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            })
        });
        addr
    }

    fn sent(&self, repo: &str) -> u64 {
        self.sent[repo].load(Ordering::Relaxed)
    }
}

async fn serve_path(State(reg): State<Arc<Registry>>, UrlPath(path): UrlPath<String>) -> Response {
    let (repo, rest) = match path.split_once("/manifests/").or_else(|| path.split_once("/blobs/")) {
        Some(split) => split,
        None => return StatusCode::NOT_FOUND.into_response(),
    };
    let Some((repo, &how)) = reg.repos.get_key_value(repo) else { return StatusCode::NOT_FOUND.into_response() };
    if path.contains("/manifests/") {
        let headers = [
            (header::CONTENT_TYPE, "application/vnd.oci.image.manifest.v1+json".to_owned()),
            (header::HeaderName::from_static("docker-content-digest"), digest_of(&reg.manifest)),
        ];
        return (headers, reg.manifest.clone()).into_response();
    }
    let Some(bytes) = reg.blobs.get(rest).cloned() else { return StatusCode::NOT_FOUND.into_response() };
    let len = bytes.len();
    let shown = match how {
        // The config is small: only the layer stalls.
        _ if len < 1 << 20 => len,
        Serving::Whole => len,
        Serving::StallMidBody => 1 << 20,
        Serving::StallAfterHeaders => 0,
    };
    let chunks: Vec<Vec<u8>> = bytes[..shown].chunks(64 << 10).map(<[u8]>::to_vec).collect();
    let (reg, repo) = (Arc::clone(&reg), *repo);
    let sent = futures_util::stream::iter(chunks).map(move |chunk| {
        reg.sent[repo].fetch_add(chunk.len() as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(chunk)
    });
    let body = if shown < len { sent.chain(futures_util::stream::pending()).boxed() } else { sent.boxed() };
    ([(header::CONTENT_LENGTH, len.to_string())], Body::from_stream(body)).into_response()
}

const DEADLINES: Deadlines =
    Deadlines { connect: Duration::from_secs(2), first_byte: Duration::from_secs(2), idle: Duration::from_secs(20) };

/// (status, body, curl's exit code, seconds) of a GET on a blocking thread.
async fn timed_curl(url: String, extra: &'static [&'static str]) -> (u16, Vec<u8>, i32, f64) {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let (status, body, code) = curl(&url, extra);
        (status, body, code, started.elapsed().as_secs_f64())
    })
    .await
    .unwrap()
}

async fn until_sent(reg: &Registry, repo: &str) {
    shoal_interop_tests::eventually("the stalling repository to send its first MiB", || reg.sent(repo) >= 1 << 20)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_healthy_repository_does_not_wait_on_a_stalled_one_for_the_same_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let (reg, layer) = Registry::new(&[("team/stuck", Serving::StallMidBody), ("team/good", Serving::Whole)]);
    let registry = reg.serve();
    let upstream = UpstreamConfig { deadlines: DEADLINES, ..Default::default() };
    let shim = start_direct_shim(&tmp.path().join("shim"), &registry, Duration::from_secs(30), upstream).await;

    let stuck = tokio::spawn(timed_curl(format!("http://{shim}/v2/team/stuck/blobs/{layer}"), &[]));
    until_sent(&reg, "team/stuck").await;
    // Two clients of the healthy repository: both go around the stalled download, together.
    let good = format!("http://{shim}/v2/team/good/blobs/{layer}");
    let (first, second) = tokio::join!(timed_curl(good.clone(), &[]), timed_curl(good, &[]));
    for (status, body, _, took) in [first, second] {
        eprintln!("shim, healthy repository: {status} after {took:.2} s");
        assert_eq!(status, 200);
        assert_eq!(digest_of(&body), layer, "the healthy repository's client got the verified blob");
        assert!(took < 8.0, "waited {took:.2} s on a stalled download (own deadline 2 s, its idle 20 s)");
    }
    assert_eq!(reg.sent("team/good"), 4 << 20, "the two clients shared one download from their upstream");
    assert!(!stuck.is_finished(), "the stalled download ends on its own idle deadline, not before");
    let (_, partial, code, took) = stuck.await.unwrap();
    eprintln!("shim, stalled repository: curl exit {code} after {took:.2} s with {} bytes", partial.len());
    assert_ne!(code, 0, "a stalled body is an error for its client, never a complete response");
    assert!(partial.len() < 4 << 20, "the stalled client never got the last bytes");
    assert!((18.0..30.0).contains(&took), "the stalled download failed after {took:.2} s (idle 20 s)");
    // The blob is stored, verified, for both repositories now.
    let (status, body, _, _) = timed_curl(format!("http://{shim}/v2/team/stuck/blobs/{layer}"), &[]).await;
    assert_eq!((status, digest_of(&body)), (200, layer.clone()));

    // The seeder's mirror: the stalled job holds the flight, the healthy one goes around it.
    let announce = start_tracker().await;
    let upstream =
        UpstreamConfig { deadlines: DEADLINES, default_registry: Some(registry.clone()), ..Default::default() };
    let seeder = start_seeder_on(&tmp.path().join("seeder"), seeding(&[announce]), upstream).await;
    let post = |image: String| {
        let url = format!("{}/v1/images", seeder.url);
        async move {
            let body = format!(r#"{{"image":"{image}"}}"#);
            let started = Instant::now();
            let (status, answer, _) = tokio::task::spawn_blocking(move || {
                curl(&url, &["-X", "POST", "-H", "content-type: application/json", "-d", &body])
            })
            .await
            .unwrap();
            (status, String::from_utf8_lossy(&answer).into_owned(), started.elapsed().as_secs_f64())
        }
    };
    let sent_before = reg.sent("team/stuck");
    let stuck = tokio::spawn(post(format!("{registry}/team/stuck:v1")));
    shoal_interop_tests::eventually("the seeder's fetch to get the first MiB", || {
        reg.sent("team/stuck") >= sent_before + (1 << 20)
    })
    .await;
    let (status, answer, took) = post(format!("{registry}/team/good:v1")).await;
    eprintln!("seeder, healthy repository: {status} after {took:.2} s: {answer}");
    assert_eq!(status, 200, "{answer}");
    assert!(took < 8.0, "the mirror waited {took:.2} s on a stalled fetch");
    let (status, answer, took) = stuck.await.unwrap();
    eprintln!("seeder, stalled repository: {status} after {took:.2} s: {answer}");
    // Its own fetch failed on the idle deadline, and the answer says so.
    assert_eq!(status, 502, "{answer}");
    assert!(answer.contains("sent no byte of the body for 20s"), "the stall is named as such: {answer}");
    assert!(took >= 18.0, "the stalled fetch ended after {took:.2} s, before its idle deadline");
    seeder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_then_silence_is_an_error_on_the_idle_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let (reg, layer) = Registry::new(&[("team/mute", Serving::StallAfterHeaders)]);
    let registry = reg.serve();
    let deadlines = Deadlines { idle: Duration::from_secs(3), ..DEADLINES };
    let upstream = UpstreamConfig { deadlines, ..Default::default() };
    let shim = start_direct_shim(&tmp.path().join("shim"), &registry, Duration::from_secs(30), upstream).await;
    let (status, body, code, took) = timed_curl(format!("http://{shim}/v2/team/mute/blobs/{layer}"), &[]).await;
    eprintln!("headers then silence: {status}, curl exit {code} after {took:.2} s, {} bytes", body.len());
    assert_ne!(code, 0, "never a complete response");
    assert!(body.is_empty(), "no bytes were sent upstream, none reach the client");
    assert!((2.5..8.0).contains(&took), "failed after {took:.2} s against an idle deadline of 3 s");
    // Nothing half-written is left for the next request: it fails the same way, not with a hit.
    let (_, body, code, _) = timed_curl(format!("http://{shim}/v2/team/mute/blobs/{layer}"), &[]).await;
    assert!(code != 0 && body.is_empty(), "curl exit {code}, {} bytes", body.len());
}
