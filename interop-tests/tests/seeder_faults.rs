//! `shoal seeder` under faults: an upstream that serves bytes not matching their digest, and a
//! `kill -9` in the middle of mirroring. Upstream here is a small Distribution-API server in the
//! test, so it can lie and stall on purpose.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use shoal_interop_tests::{free_port, require_tool, spawn_seeder, wait_until, ChildGuard};
use shoal_torrents::BlobHasher;

fn digest_of(bytes: &[u8]) -> String {
    let mut h = BlobHasher::new(bytes.len() as u64);
    h.update(bytes);
    h.finish().digest.to_string()
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A Distribution v2 pull API over fixed content: manifests by tag, blobs by digest (the bytes
/// served under a digest need not match it), optionally trickling blob bodies out slowly.
struct FakeRegistry {
    manifests: HashMap<String, (String, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
    slow: AtomicBool,
    blob_bytes_sent: AtomicU64,
}

impl FakeRegistry {
    /// An image `repo:tag` of one config and the given layers, each served as `served[i]`.
    fn image(tag: &str, config: &[u8], layers: &[(Vec<u8>, Vec<u8>)]) -> (Self, Vec<String>) {
        let mut blobs = HashMap::new();
        let config_digest = digest_of(config);
        blobs.insert(config_digest.clone(), config.to_vec());
        let mut digests = vec![config_digest.clone()];
        let mut descriptors = Vec::new();
        for (real, served) in layers {
            let d = digest_of(real);
            blobs.insert(d.clone(), served.clone());
            descriptors.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": real.len(),
            }));
            digests.push(d);
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len() },
            "layers": descriptors,
        });
        let mut manifests = HashMap::new();
        manifests.insert(
            tag.to_owned(),
            ("application/vnd.oci.image.manifest.v1+json".to_owned(), serde_json::to_vec(&manifest).unwrap()),
        );
        let registry = Self { manifests, blobs, slow: AtomicBool::new(false), blob_bytes_sent: AtomicU64::new(0) };
        (registry, digests)
    }

    /// Serves on a loopback port from a thread of its own; returns the port.
    fn serve(self: &Arc<Self>) -> u16 {
        let app = Router::new()
            .route("/v2/", get(|| async { "{}" }))
            .route("/v2/{*path}", get(serve_path))
            .with_state(Arc::clone(self));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            })
        });
        port
    }
}

async fn serve_path(State(reg): State<Arc<FakeRegistry>>, UrlPath(path): UrlPath<String>) -> Response {
    if let Some((_, reference)) = path.rsplit_once("/manifests/") {
        let found = reg
            .manifests
            .get(reference)
            .cloned()
            .or_else(|| reg.manifests.values().find(|(_, bytes)| digest_of(bytes) == reference).cloned());
        return match found {
            Some((media_type, bytes)) => {
                let digest = digest_of(&bytes);
                ([(header::CONTENT_TYPE, media_type), ("docker-content-digest".parse().unwrap(), digest)], bytes)
                    .into_response()
            }
            None => StatusCode::NOT_FOUND.into_response(),
        };
    }
    let Some((_, digest)) = path.rsplit_once("/blobs/") else { return StatusCode::NOT_FOUND.into_response() };
    let Some(bytes) = reg.blobs.get(digest).cloned() else { return StatusCode::NOT_FOUND.into_response() };
    let len = bytes.len();
    let chunks: Vec<Vec<u8>> = bytes.chunks(64 << 10).map(<[u8]>::to_vec).collect();
    let reg = Arc::clone(&reg);
    let stream = futures_util::stream::unfold((chunks.into_iter(), reg), |(mut chunks, reg)| async move {
        let chunk = chunks.next()?;
        if reg.slow.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        reg.blob_bytes_sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        Some((Ok::<_, std::io::Error>(chunk), (chunks, reg)))
    });
    ([(header::CONTENT_LENGTH, len.to_string())], Body::from_stream(stream)).into_response()
}

fn start_seeder(data: &Path, args: &[String]) -> (ChildGuard, String) {
    let bt = vec!["--bt-listen".to_owned(), format!("127.0.0.1:{}", free_port())];
    spawn_seeder(data, &[bt, args.to_vec()].concat())
}

fn curl(url: &str, extra: &[&str]) -> (u16, String) {
    let out = Command::new(require_tool("curl"))
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

fn stored(data: &Path, digest: &str) -> PathBuf {
    data.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

fn tmp_files(data: &Path) -> usize {
    std::fs::read_dir(data.join("tmp")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn seeder_refuses_upstream_bytes_that_do_not_match_their_digest() {
    let real = random_bytes(300 << 10, 7);
    let mut evil = real.clone();
    evil[150_000] ^= 0xff;
    let (registry, digests) = FakeRegistry::image("1", br#"{"os":"linux"}"#, &[(real, evil)]);
    let port = Arc::new(registry).serve();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("seeder");
    let (_seeder, base) = start_seeder(&data, &["--mirror-allow".into(), format!("127.0.0.1:{port}")]);
    let image = format!("127.0.0.1:{port}/evil:1");

    let (status, body) = curl(
        &format!("{base}/v1/images"),
        &["-X", "POST", "-H", "content-type: application/json", "-d", &format!(r#"{{"image":"{image}"}}"#)],
    );
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("does not match its digest"), "a clear error: {body}");
    assert!(body.contains(&digests[1]), "it names the blob: {body}");
    assert!(!stored(&data, &digests[1]).exists(), "the bad blob was stored");
    assert_eq!(tmp_files(&data), 0, "a temporary file was left behind");
    assert_eq!(curl(&format!("{base}/v1/images/{image}"), &[]).0, 404, "the image was recorded");
    assert_eq!(curl(&format!("{base}/v1/blobs/{}/torrent", digests[1]), &[]).0, 404, "a torrent was made");

    // On demand, the same refusal.
    let (status, body) = curl(&format!("{base}/v1/blobs/{}/torrent?repo=evil&ns=127.0.0.1:{port}", digests[1]), &[]);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("does not match its digest"), "{body}");
    assert!(!stored(&data, &digests[1]).exists());
    let (_, metrics) = curl(&format!("{base}/metrics"), &[]);
    assert!(metrics.contains("shoal_seeder_digest_mismatches_total 2"), "{metrics}");
}

#[test]
fn seeder_killed_mid_mirror_restarts_clean_and_finishes_the_job() {
    let layer = random_bytes(8 << 20, 11);
    let (registry, digests) = FakeRegistry::image("big", br#"{"os":"linux"}"#, &[(layer.clone(), layer)]);
    let registry = Arc::new(registry);
    registry.slow.store(true, Ordering::Relaxed);
    let port = registry.serve();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("seeder");
    let image = format!("127.0.0.1:{port}/big:big");

    let (mut seeder, _) = start_seeder(&data, &["--image".into(), image.clone()]);
    wait_until("a few MiB of the layer to be mirrored", Duration::from_secs(60), || {
        registry.blob_bytes_sent.load(Ordering::Relaxed) > 2 << 20
    });
    seeder.0.kill().unwrap(); // SIGKILL
    seeder.0.wait().unwrap();
    assert!(tmp_files(&data) > 0, "the kill did not land mid-blob");
    assert!(!stored(&data, &digests[1]).exists(), "a partial blob reached the store");

    // Restart without --image: the unfinished job is resumed from the index.
    registry.slow.store(false, Ordering::Relaxed);
    let started = Instant::now();
    let (_seeder, base) = start_seeder(&data, &[]);
    assert_eq!(tmp_files(&data), 0, "stale temporary files survived the restart");
    wait_until("the resumed job to finish", Duration::from_secs(60), || {
        curl(&format!("{base}/v1/images/{image}"), &[]).0 == 200
    });
    eprintln!("restart to finished job: {:?}", started.elapsed());
    for d in &digests {
        let path = stored(&data, d);
        assert_eq!(shoal_interop_tests::sha256_file(&path), *d);
    }
    assert_eq!(tmp_files(&data), 0);
}
