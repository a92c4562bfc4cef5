//! A bearer-token upstream, as Docker Hub and GHCR are: a real docker-registry with
//! `auth: token` and a token issuer on PyJWT (`interop-tests/scripts/token_issuer.py`).
//! Through the shim: an anonymous pull of a public repository; a private one with the shim's
//! own credentials, its tokens refreshed once they expire; a client's own credentials
//! (skopeo following the challenge to the issuer); wrong credentials and no credentials a
//! clear 401 with upstream's challenge. The seeder mirrors the private image with
//! credentials, and says why it cannot without.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use shoal_interop_tests::registry::{curl, skopeo_pull_with, LayoutBlob};
use shoal_interop_tests::stack::{start_direct_shim, start_seeder, start_tracker};
use shoal_interop_tests::token::{past, TokenRegistry, READER};
use shoal_interop_tests::{free_port, spawn_seeder};
use shoal_upstream::{Credentials, UpstreamConfig};

const MANIFEST: &str = "Accept: application/vnd.oci.image.manifest.v1+json";
const TTL: u32 = 2;

fn credentials(registry: &str, user: &str, password: &str) -> UpstreamConfig {
    let credentials = Credentials { username: user.into(), password: password.into() };
    UpstreamConfig { credentials: HashMap::from([(registry.to_owned(), credentials)]), ..Default::default() }
}

async fn get(url: String, extra: Vec<String>) -> (u16, Vec<u8>) {
    tokio::task::spawn_blocking(move || {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let (status, body, _) = curl(&url, &extra);
        (status, body)
    })
    .await
    .unwrap()
}

/// Pulls `repo:v1`'s manifest and every blob through `shim`, checking each blob's bytes.
async fn pull_all(shim: SocketAddr, repo: &str, blobs: &[LayoutBlob]) {
    let (status, body) = get(format!("http://{shim}/v2/{repo}/manifests/v1"), vec!["-H".into(), MANIFEST.into()]).await;
    assert_eq!(status, 200, "{repo} manifest: {}", String::from_utf8_lossy(&body));
    for blob in blobs {
        let (status, body) = get(format!("http://{shim}/v2/{repo}/blobs/{}", blob.digest), vec![]).await;
        assert_eq!(status, 200, "{repo} blob {}", blob.digest);
        assert!(body == std::fs::read(&blob.path).unwrap(), "{repo} blob {} arrived changed", blob.digest);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_through_a_bearer_token_registry_with_and_without_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let upstream = TokenRegistry::start(&tmp.path().join("upstream"), TTL);
    let public = upstream.push(tmp.path(), "public/app", &[200_000], 101);
    let private = upstream.push(tmp.path(), "private/app", &[150_000, 20_000], 102);
    let registry = upstream.address.clone();

    // Anonymous: the public repository pulls; the private one is a 401 with upstream's challenge.
    let anonymous = start_direct_shim(&tmp.path().join("anon"), &registry, Duration::ZERO, Default::default()).await;
    pull_all(anonymous, "public/app", &public).await;
    assert!(upstream.tokens_issued("-", "public/app") >= 1, "no anonymous token was asked for");
    let private_manifest = format!("http://{anonymous}/v2/private/app/manifests/v1");
    let (status, body) = get(private_manifest.clone(), vec!["-H".into(), MANIFEST.into()]).await;
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    let headers = tokio::task::spawn_blocking({
        let url = format!("http://{anonymous}/v2/");
        move || curl(&url, &["-D", "-", "-o", "/dev/null", "-H", "Authorization: Basic bm86bm8="]).1
    })
    .await
    .unwrap();
    let headers = String::from_utf8_lossy(&headers).to_lowercase();
    assert!(headers.contains("www-authenticate: bearer realm=\"http://127.0.0.1:"), "{headers}");

    // A client's own credentials: skopeo follows the challenge to the issuer, the shim passes
    // its bearer token upstream.
    let out = skopeo_pull_with(
        anonymous,
        "private/app:v1",
        &tmp.path().join("skopeo-out"),
        &[],
        &["--src-creds", &format!("{}:{}", READER.0, READER.1)],
    )
    .await;
    assert!(out.status.success(), "skopeo with its own credentials: {}", String::from_utf8_lossy(&out.stderr));

    // The shim's own credentials: the private repository pulls; once the token expired, the
    // next upstream call gets a new one.
    let reader = credentials(&registry, READER.0, READER.1);
    let shim = start_direct_shim(&tmp.path().join("reader"), &registry, Duration::ZERO, reader).await;
    pull_all(shim, "private/app", &private).await;
    let before = upstream.tokens_issued(READER.0, "private/app");
    assert!(before >= 1, "no token was asked for as {}", READER.0);
    tokio::time::sleep(past(TTL)).await;
    let (status, _) =
        get(format!("http://{shim}/v2/private/app/manifests/v1"), vec!["-H".into(), MANIFEST.into()]).await;
    assert_eq!(status, 200, "the manifest after the token expired");
    assert!(upstream.tokens_issued(READER.0, "private/app") > before, "the expired token was not refreshed");

    // Wrong credentials: a 401, and the shim says why in its error body.
    let wrong = credentials(&registry, READER.0, "not-the-password");
    let shim = start_direct_shim(&tmp.path().join("wrong"), &registry, Duration::ZERO, wrong).await;
    let (status, body) =
        get(format!("http://{shim}/v2/private/app/manifests/v1"), vec!["-H".into(), MANIFEST.into()]).await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("UNAUTHORIZED"), "{body}");

    // The seeder: without credentials it says why it cannot mirror the private image; with
    // them (the binary, its flags) it does.
    let trackers = vec![start_tracker().await];
    let seeder = start_seeder(&tmp.path().join("seeder"), &registry, &trackers).await;
    let post = |url: String| {
        let body = format!(r#"{{"image":"{registry}/private/app:v1"}}"#);
        get(
            format!("{url}/v1/images"),
            ["-X", "POST", "-H", "content-type: application/json", "-d", &body].map(String::from).to_vec(),
        )
    };
    let (status, answer) = post(seeder.url.clone()).await;
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert_ne!(status, 200, "mirrored a private image without credentials: {answer}");
    assert!(answer.contains("not authorized"), "{answer}");
    seeder.stop().await;
    let args: Vec<String> = [
        "--bt-listen",
        &format!("127.0.0.1:{}", free_port()),
        "--upstream",
        &registry,
        "--upstream-username",
        READER.0,
        "--upstream-password",
        READER.1,
    ]
    .map(String::from)
    .to_vec();
    let (_seeder, url) = spawn_seeder(&tmp.path().join("seeder-reader"), &args);
    let (status, answer) = post(url).await;
    assert_eq!(status, 200, "the seeder with credentials: {}", String::from_utf8_lossy(&answer));
}
