//! `shoal shim` against a real upstream `docker-registry` and a real client (skopeo): images
//! pull through the shim with every blob verified, cached images survive the upstream going
//! away, errors come in the OCI envelope, and a corrupting upstream never gets bad bytes to the
//! client.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use shoal_interop_tests::registry::{
    curl, push_image, skopeo_pull, skopeo_push, start_registry, write_oci_index, PushedImage,
};
use shoal_interop_tests::stack::start_direct_shim;
use shoal_interop_tests::{require_tool, sha256_file};

async fn start_shim(data: &Path, upstream_port: u16, tag_ttl: Duration) -> SocketAddr {
    start_direct_shim(data, &format!("127.0.0.1:{upstream_port}"), tag_ttl, Default::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pulls_through_the_shim_and_cached_images_outlive_the_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    let PushedImage { mut registry, port, blobs, manifest_digest, .. } =
        push_image(tmp.path(), "team/app", &[300_000, 2_000_000, 5_000], 11);

    // A TTL of zero makes every tag stale at once, so the second pull must go through the
    // stale-when-upstream-is-down path.
    let shim = start_shim(&tmp.path().join("shim"), port, Duration::ZERO).await;
    let out = tmp.path().join("pulled");
    let pulled = skopeo_pull(shim, "team/app:v1", &out, &[]).await;
    assert!(pulled.status.success(), "skopeo through the shim: {}", String::from_utf8_lossy(&pulled.stderr));
    for blob in &blobs {
        let file = out.join(blob.digest.trim_start_matches("sha256:"));
        assert_eq!(sha256_file(&file), blob.digest, "{} arrived changed", blob.digest);
    }
    let (status, body, _) = curl(&format!("http://{shim}/v2/team/app/manifests/v1"), &["-I"]);
    assert_eq!(status, 200);
    let headers = String::from_utf8_lossy(&body).to_ascii_lowercase();
    assert!(headers.contains(&format!("docker-content-digest: {manifest_digest}")), "{headers}");
    assert!(headers.contains("docker-distribution-api-version: registry/2.0"), "{headers}");

    // The upstream goes away; the cached tag and blobs still pull.
    registry.0.kill().unwrap();
    registry.0.wait().unwrap();
    let again = tmp.path().join("pulled-again");
    let pulled = skopeo_pull(shim, "team/app:v1", &again, &[]).await;
    assert!(pulled.status.success(), "cached pull with upstream down: {}", String::from_utf8_lossy(&pulled.stderr));
    for blob in &blobs {
        assert_eq!(sha256_file(&again.join(blob.digest.trim_start_matches("sha256:"))), blob.digest);
    }
    // A range of a cached blob.
    let layer = &blobs[2];
    let (status, body, _) =
        curl(&format!("http://{shim}/v2/team/app/blobs/{}", layer.digest), &["-H", "Range: bytes=10-19"]);
    assert_eq!(status, 206);
    assert_eq!(body, std::fs::read(&layer.path).unwrap()[10..20]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_oci_error_envelopes() {
    let tmp = tempfile::tempdir().unwrap();
    let PushedImage { registry: _registry, port, .. } = push_image(tmp.path(), "app", &[1000], 3);
    let shim = start_shim(&tmp.path().join("shim"), port, Duration::from_secs(30)).await;
    let missing = format!("sha256:{}", "0".repeat(64));
    let cases: &[(&str, &[&str], u16, &str)] = &[
        ("/v2/", &[], 200, "{}"),
        ("/v2/UPPER/manifests/v1", &[], 400, "NAME_INVALID"),
        ("/v2/app/blobs/sha256:abc", &[], 400, "DIGEST_INVALID"),
        ("/v2/app/blobs/../../etc/passwd", &["--path-as-is"], 400, "DIGEST_INVALID"),
        ("/v2/a/../manifests/v1", &["--path-as-is"], 400, "NAME_INVALID"),
        ("/v2/app/manifests/nope", &[], 404, "MANIFEST_UNKNOWN"),
        (&format!("/v2/app/blobs/{missing}"), &[], 404, "BLOB_UNKNOWN"),
        ("/v2/app/blobs/uploads/", &["-X", "POST"], 405, "UNSUPPORTED"),
        ("/v2/app/manifests/v1", &["-X", "PUT", "--data", "{}"], 405, "UNSUPPORTED"),
    ];
    for (path, extra, status, needle) in cases {
        let (got, body, _) = curl(&format!("http://{shim}{path}"), extra);
        let body = String::from_utf8_lossy(&body);
        assert_eq!(got, *status, "{path}: {body}");
        assert!(body.contains(needle), "{path}: {body} should contain {needle}");
    }
}

/// An upstream that lies: it serves a manifest and a blob whose bytes do not match the digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupting_upstream_never_gets_bad_bytes_to_the_client() {
    use axum::routing::get;
    let good = vec![7u8; 300_000];
    let digest = {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b"), &good).unwrap();
        sha256_file(&d.path().join("b"))
    };
    let mut bad = good.clone();
    bad[299_999] ^= 1; // only the very last byte differs: everything before it looks right
    let app = axum::Router::new()
        .route("/v2/", get(|| async { "{}" }))
        .route("/v2/app/blobs/{digest}", get(move || async move { bad.clone() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shim");
    let shim = start_shim(&data, port, Duration::from_secs(30)).await;
    let url = format!("http://{shim}/v2/app/blobs/{digest}");
    let out = tmp.path().join("got");
    let curl_bin = require_tool("curl");
    let result = tokio::task::spawn_blocking(move || {
        Command::new(curl_bin).args(["-s", "-f", "--max-time", "30", "-o"]).arg(&out).arg(&url).status().unwrap()
    })
    .await
    .unwrap();
    assert!(!result.success(), "curl must see a failed transfer, not a complete bad blob");
    let got = std::fs::read(tmp.path().join("got")).unwrap_or_default();
    assert!(got.len() < good.len(), "the client received all {} bytes of a corrupt blob", got.len());
    let stored: Vec<_> = std::fs::read_dir(data.join("blobs/sha256")).unwrap().collect();
    assert!(stored.is_empty(), "a corrupt blob was cached");
    let (_, metrics, _) = curl(&format!("http://{shim}/metrics"), &[]);
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains("shoal_shim_verification_failures_total 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_platform_index_pulls_each_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let (_registry, port) = start_registry(&tmp.path().join("registry"), "");
    let layout = tmp.path().join("layout");
    let (images, index_digest) =
        write_oci_index(&layout, "multi", &[("linux", "amd64"), ("linux", "arm64")], &[200_000, 30_000], 5);
    skopeo_push(&layout, "multi", port, "team/multi");
    let shim = start_shim(&tmp.path().join("shim"), port, Duration::from_secs(30)).await;

    // The tag resolves to the index itself, byte for byte.
    let accept = "Accept: application/vnd.oci.image.index.v1+json";
    let (status, body, _) = curl(&format!("http://{shim}/v2/team/multi/manifests/multi"), &["-H", accept, "-i"]);
    let text = String::from_utf8_lossy(&body).to_ascii_lowercase();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(&format!("docker-content-digest: {index_digest}")), "{text}");
    assert!(text.contains("content-type: application/vnd.oci.image.index.v1+json"), "{text}");

    for (arch, blobs) in ["amd64", "arm64"].iter().zip(&images) {
        let out = tmp.path().join(format!("pulled-{arch}"));
        let platform = ["--override-os", "linux", "--override-arch", arch];
        let pulled = skopeo_pull(shim, "team/multi:multi", &out, &platform).await;
        assert!(pulled.status.success(), "{}", String::from_utf8_lossy(&pulled.stderr));
        for blob in blobs {
            assert_eq!(sha256_file(&out.join(blob.digest.trim_start_matches("sha256:"))), blob.digest);
        }
    }
}
