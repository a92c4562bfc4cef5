//! The shim in front of a registry that wants credentials (Debian's `docker-registry` with
//! htpasswd): the shim answers 401 with the upstream's own challenge, passes a client's
//! `Authorization` upstream for that request, and never hands a blob fetched with one client's
//! credentials to a client without them.

use std::path::Path;
use std::process::Command;

use shoal_interop_tests::registry::{curl, skopeo_pull_with, start_registry, write_oci_layout};
use shoal_interop_tests::stack::start_shim;
use shoal_interop_tests::{require_tool, run_ok, sha256_file, stored_blob};

const USER: &str = "shoal";
const PASSWORD: &str = "s3cret-Pa55word";

/// A registry with htpasswd auth holding `private/app:v1`; returns its guard, port, the
/// image's blobs (config first) and manifest digest.
fn private_registry(
    dir: &Path,
) -> (shoal_interop_tests::ChildGuard, u16, Vec<shoal_interop_tests::registry::LayoutBlob>, String) {
    private_registry_with(dir, &[400_000, 30_000])
}

/// `private_registry` with layers of the given sizes.
fn private_registry_with(
    dir: &Path,
    layer_sizes: &[usize],
) -> (shoal_interop_tests::ChildGuard, u16, Vec<shoal_interop_tests::registry::LayoutBlob>, String) {
    let out = run_ok(Command::new(require_tool("htpasswd")).args(["-Bbn", USER, PASSWORD]));
    let registry_dir = dir.join("registry");
    std::fs::create_dir_all(&registry_dir).unwrap();
    let htpasswd_file = registry_dir.join("htpasswd");
    std::fs::write(&htpasswd_file, out.stdout).unwrap();
    let auth = format!("auth:\n  htpasswd:\n    realm: shoal-test\n    path: {}\n", htpasswd_file.display());
    let (registry, port) = start_registry(&registry_dir, &auth);
    let layout = dir.join("layout");
    let (blobs, manifest_digest) = write_oci_layout(&layout, "v1", layer_sizes, 21);
    run_ok(
        Command::new(require_tool("skopeo"))
            .args(["copy", "-q", "--dest-tls-verify=false", "--dest-creds", &format!("{USER}:{PASSWORD}")])
            .arg(format!("oci:{}:v1", layout.display()))
            .arg(format!("docker://127.0.0.1:{port}/private/app:v1")),
    );
    (registry, port, blobs, manifest_digest)
}

/// `curl -i` (status line and headers in the body): status, headers+body as text.
fn curl_i(url: &str, extra: &[&str]) -> (u16, String) {
    let mut args = vec!["-i"];
    args.extend_from_slice(extra);
    let (status, body, _) = curl(url, &args);
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn assert_challenged(status: u16, response: &str) {
    assert_eq!(status, 401, "{response}");
    assert!(
        response.to_ascii_lowercase().contains("www-authenticate: basic realm=\"shoal-test\""),
        "no upstream challenge: {response}"
    );
    assert!(response.contains(r#""code":"UNAUTHORIZED""#), "no OCI envelope: {response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_pass_through_the_shim_and_private_blobs_stay_private() {
    let tmp = tempfile::tempdir().unwrap();
    let (_registry, port, blobs, manifest_digest) = private_registry(tmp.path());
    let shim = start_shim(&tmp.path().join("shim"), &format!("127.0.0.1:{port}"), None, &[]).await;
    let base = format!("http://{}/v2", shim.addr);
    let creds = format!("{USER}:{PASSWORD}");
    let layer = &blobs[1];
    let blob_url = format!("{base}/private/app/blobs/{}", layer.digest);
    let manifest_url = format!("{base}/private/app/manifests/v1");

    // Without credentials: the upstream's challenge, in the OCI envelope, everywhere.
    let (status, response) = curl_i(&format!("{base}/"), &[]);
    assert_challenged(status, &response);
    let (status, response) = curl_i(&manifest_url, &[]);
    assert_challenged(status, &response);
    let (status, response) = curl_i(&blob_url, &[]);
    assert_challenged(status, &response);
    // Wrong credentials are refused the same way.
    let (status, response) = curl_i(&manifest_url, &["-u", &format!("{USER}:wrong")]);
    assert_challenged(status, &response);
    let (status, response) = curl_i(&format!("{base}/"), &["-u", &format!("{USER}:wrong")]);
    assert_challenged(status, &response);

    // With them (Authorization: Basic ...): `docker login`'s ping, the manifest and a blob.
    let (status, _) = curl_i(&format!("{base}/"), &["-u", &creds]);
    assert_eq!(status, 200);
    let (status, response) = curl_i(&manifest_url, &["-u", &creds]);
    assert_eq!(status, 200, "{response}");
    assert!(response.to_ascii_lowercase().contains(&format!("docker-content-digest: {manifest_digest}")), "{response}");
    let (status, body, _) = curl(&blob_url, &["-u", &creds]);
    assert_eq!(status, 200);
    assert_eq!(body, std::fs::read(&layer.path).unwrap());
    let stored = stored_blob(&tmp.path().join("shim"), &layer.digest).await;
    assert_eq!(sha256_file(&stored), layer.digest, "the blob is cached");

    // Cached now, yet still not served to a client without credentials (nor a wrong one),
    // and served from the cache to one with them.
    let (status, response) = curl_i(&blob_url, &[]);
    assert_challenged(status, &response);
    let (status, response) = curl_i(&blob_url, &["-u", &format!("{USER}:wrong")]);
    assert_challenged(status, &response);
    // HEAD: the challenge, no body.
    let (status, response) = curl_i(&blob_url, &["-I"]);
    assert_eq!(status, 401, "{response}");
    assert!(response.to_ascii_lowercase().contains("www-authenticate: basic realm=\"shoal-test\""), "{response}");
    let (status, body, _) = curl(&blob_url, &["-u", &creds, "-H", "Range: bytes=5-9"]);
    assert_eq!(status, 206);
    assert_eq!(body, std::fs::read(&layer.path).unwrap()[5..10]);
    // Nor is the manifest, although a client with credentials fetched it just now.
    let (status, response) = curl_i(&format!("{base}/private/app/manifests/{manifest_digest}"), &[]);
    assert_challenged(status, &response);

    // A real client: skopeo with --src-creds, through the shim.
    let out = tmp.path().join("pulled");
    let pulled = skopeo_pull_with(shim.addr, "private/app:v1", &out, &[], &["--src-creds", &creds]).await;
    assert!(
        pulled.status.success(),
        "skopeo --src-creds through the shim: {}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    for blob in &blobs {
        assert_eq!(sha256_file(&out.join(blob.digest.trim_start_matches("sha256:"))), blob.digest);
    }
    // And without credentials skopeo is refused.
    let refused =
        skopeo_pull_with(shim.addr, "private/app:v1", &tmp.path().join("refused"), &[], &["--src-no-creds"]).await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(stderr.contains("unauthorized") || stderr.contains("authentication required"), "{stderr}");
}

/// Concurrent pulls of one blob share one download; when an anonymous client leads it and is
/// refused, a client with credentials that joined it must not inherit that failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_credentials_is_not_failed_by_an_anonymous_one_on_the_same_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let (_registry, port, blobs, _) = private_registry_with(tmp.path(), &[200_000; 8]);
    let shim = start_shim(&tmp.path().join("shim"), &format!("127.0.0.1:{port}"), None, &[]).await;
    let creds = format!("{USER}:{PASSWORD}");
    for layer in &blobs[1..] {
        let url = format!("http://{}/v2/private/app/blobs/{}", shim.addr, layer.digest);
        // Three anonymous requests and one with credentials, all at once, for a blob the shim lacks.
        let anonymous: Vec<_> = (0..3)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || curl(&url, &[]).0)
            })
            .collect();
        let with_creds = {
            let (url, creds) = (url.clone(), creds.clone());
            std::thread::spawn(move || curl(&url, &["-u", &creds]))
        };
        let (status, body, _) = with_creds.join().unwrap();
        assert_eq!(status, 200, "{}: {}", layer.digest, String::from_utf8_lossy(&body));
        assert_eq!(body, std::fs::read(&layer.path).unwrap(), "{}", layer.digest);
        for request in anonymous {
            assert_eq!(request.join().unwrap(), 401, "{}", layer.digest);
        }
    }
}
