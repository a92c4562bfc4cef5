//! `--api-token`: the seeder binary in front of a real docker-registry lets only requests
//! with its bearer token make it mirror (`POST /v1/images`, `/v1/notifications`); `shoal
//! magnets` sends it from `SHOAL_SEEDER_TOKEN`; what peers and shims read (torrents, webseeds,
//! metrics) stays open.

use std::process::Command;

use shoal_interop_tests::registry::{curl, push_image, PushedImage};
use shoal_interop_tests::{free_port, shoal_binary, spawn_seeder};

const TOKEN: &str = "s3cret-api-token";

#[test]
fn only_requests_with_the_api_token_make_the_seeder_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let PushedImage { registry: _registry, address, blobs, .. } = push_image(tmp.path(), "team/app", &[100_000], 111);
    let args: Vec<String> =
        ["--bt-listen", &format!("127.0.0.1:{}", free_port()), "--upstream", &address, "--api-token", TOKEN]
            .map(String::from)
            .to_vec();
    let (_seeder, url) = spawn_seeder(&tmp.path().join("seeder"), &args);
    let image = format!("{address}/team/app:v1");
    let post = |path: &str, body: &str, auth: Option<&str>| {
        let mut extra = vec!["-X", "POST", "-H", "content-type: application/json", "-d", body];
        let header = auth.map(|a| format!("Authorization: {a}"));
        if let Some(h) = &header {
            extra.extend(["-H", h.as_str()]);
        }
        let (status, body, _) = curl(&format!("{url}{path}"), &extra);
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    let body = format!(r#"{{"image":"{image}"}}"#);
    let (status, answer) = post("/v1/images", &body, None);
    assert_eq!(status, 401, "{answer}");
    assert!(answer.contains("API token"), "{answer}");
    assert_eq!(post("/v1/images", &body, Some("Bearer wrong-token")).0, 401);
    assert_eq!(post("/v1/images", &body, Some(&format!("Basic {TOKEN}"))).0, 401);
    let notification = r#"{"events":[]}"#;
    assert_eq!(post("/v1/notifications", notification, None).0, 401);
    assert_eq!(post("/v1/notifications", notification, Some(&format!("Bearer {TOKEN}"))).0, 202);

    // shoal magnets: refused without the token, served with it.
    let magnets = |token: Option<&str>| {
        let mut cmd = Command::new(shoal_binary());
        cmd.args(["magnets", &image, "--seeder", &url]).env_remove("SHOAL_SEEDER_TOKEN");
        if let Some(token) = token {
            cmd.env("SHOAL_SEEDER_TOKEN", token);
        }
        cmd.output().unwrap()
    };
    let refused = magnets(None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("API token"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let served = magnets(Some(TOKEN));
    assert!(served.status.success(), "{}", String::from_utf8_lossy(&served.stderr));
    assert!(String::from_utf8_lossy(&served.stdout).contains("magnet:?xt=urn:btih:"));

    // What peers and shims read needs no token.
    let layer = &blobs[1].digest;
    assert_eq!(curl(&format!("{url}/v1/blobs/{layer}/torrent"), &[]).0, 200);
    assert_eq!(curl(&format!("{url}/webseed/{}", layer.replace(':', "-")), &[]).0, 200);
    assert_eq!(curl(&format!("{url}/metrics"), &[]).0, 200);
}
