//! `shoal seeder` against a real upstream: Debian's `docker-registry` (Distribution 2.8) holding
//! an image that skopeo pushed from an OCI layout this test writes. The seeder mirrors it; aria2c
//! then fetches every blob by .torrent through Shoal's tracker, by magnet link and by webseed alone,
//! and each download's SHA-256 must equal its digest. curl checks webseed ranges and refusals.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use shoal_interop_tests::registry::{skopeo_push, start_registry, write_oci_layout, LayoutBlob};
use shoal_interop_tests::{
    aria2c_download, free_port, require_tool, run_ok, sha256_file, shoal_binary, spawn_seeder, wait_until, ChildGuard,
};
use shoal_torrents::{hash_reader, BlobTorrent, Distribution, ParsedTorrent};

/// A running `shoal seeder` and the HTTP base URL it printed.
struct Seeder {
    child: ChildGuard,
    base: String,
}

fn start_seeder(data: &Path, args: &[String]) -> Seeder {
    let (child, base) = spawn_seeder(data, args);
    Seeder { child, base }
}

/// `curl` a URL: (status, body). `extra` adds curl flags.
fn curl(url: &str, extra: &[&str]) -> (u16, Vec<u8>) {
    let curl = require_tool("curl");
    let out = Command::new(curl).args(["-s", "-o", "-", "-w", "\n%{http_code}"]).args(extra).arg(url).output().unwrap();
    let text = out.stdout;
    let split = text.iter().rposition(|&b| b == b'\n').unwrap();
    let status = String::from_utf8_lossy(&text[split + 1..]).trim().parse().unwrap_or(0);
    (status, text[..split].to_vec())
}

fn aria2c(dir: &Path, what: &str) {
    aria2c_download(dir, std::ffi::OsStr::new(what));
}

fn metric(base: &str, name: &str) -> f64 {
    let (status, body) = curl(&format!("{base}/metrics"), &[]);
    assert_eq!(status, 200);
    String::from_utf8(body)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("metric {name} missing"))
}

#[test]
fn seeder_mirrors_a_pushed_image_and_every_blob_downloads_three_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let (blobs, manifest_digest) = write_oci_layout(&layout, "v1", &[3 << 20, 700 << 10, 20 << 10], 1);
    let (_registry, rport) = start_registry(&tmp.path().join("registry"), "");
    skopeo_push(&layout, "v1", rport, "team/app");

    let hashed: Vec<_> = blobs
        .iter()
        .map(|b| hash_reader(std::fs::File::open(&b.path).unwrap(), b.size, &mut |_| {}).unwrap())
        .collect();
    let info_hashes: Vec<String> = hashed.iter().map(|h| BlobTorrent::from_hashed(h).info_hash().hex()).collect();
    // Shoal's tracker, not opentracker: opentracker hands a peer its own address back, and
    // aria2c 1.36 then sometimes stalls on the self-connection and never handshakes the seeder
    // (seen in CI: CN:1 SD:0 for 90 s). Our tracker never returns the requester.
    let tracker = shoal_tracker::spawn(shoal_tracker::TrackerConfig::loopback()).unwrap();
    let announce = tracker.announce_url();

    let image = format!("127.0.0.1:{rport}/team/app:v1");
    let seeder = start_seeder(
        &tmp.path().join("seeder"),
        &[
            "--bt-listen".into(),
            format!("127.0.0.1:{}", free_port()),
            "--tracker".into(),
            announce.clone(),
            "--image".into(),
            image.clone(),
        ],
    );
    let base = seeder.base.clone();
    assert_eq!(curl(&format!("{base}/healthz"), &[]).0, 200);

    wait_until("the seeder to mirror the image", Duration::from_secs(60), || {
        curl(&format!("{base}/v1/images/{image}"), &[]).0 == 200
    });
    let (_, body) = curl(&format!("{base}/v1/images/{image}"), &[]);
    let view: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(view["digest"], manifest_digest.as_str());
    let manifest = &view["manifests"][0];
    assert_eq!(manifest["config"]["digest"], blobs[0].digest.as_str());
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 3);
    for (i, layer) in manifest["layers"].as_array().unwrap().iter().enumerate() {
        assert_eq!(layer["digest"], blobs[i + 1].digest.as_str());
        assert_eq!(layer["info_hash"], info_hashes[i + 1].as_str());
        assert_eq!(layer["size"], blobs[i + 1].size);
        assert!(layer["magnet"].as_str().unwrap().starts_with("magnet:?xt=urn:btih:"));
    }
    // The store holds exactly the verified blobs, under their digests.
    for b in &blobs {
        let stored = tmp.path().join("seeder/blobs/sha256").join(b.digest.trim_start_matches("sha256:"));
        assert_eq!(sha256_file(&stored), b.digest);
    }

    let webseed_base = format!("{base}/webseed/");
    for (b, h) in blobs.iter().zip(&hashed) {
        // The seeder's .torrent: our profile's bytes with its trackers and webseed.
        let (status, torrent) = curl(&format!("{base}/v1/blobs/{}/torrent", b.digest), &[]);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&torrent));
        let expected = BlobTorrent::from_hashed(h);
        let dist = Distribution { trackers: vec![announce.clone()], webseeds: vec![webseed_base.clone()] };
        assert_eq!(torrent, expected.torrent_bytes(&dist), "the seeder's .torrent is the profile's");
        let parsed = ParsedTorrent::parse(&torrent).unwrap();
        assert_eq!(parsed.distribution, dist);

        // 1. By .torrent through the tracker, peers only (same info dict, no url-list).
        let dir = tmp.path().join("dl-tracker");
        let bt_only = tmp.path().join("bt-only.torrent");
        std::fs::write(
            &bt_only,
            expected.torrent_bytes(&Distribution { trackers: vec![announce.clone()], webseeds: vec![] }),
        )
        .unwrap();
        let webseed_before = metric(&base, "shoal_seeder_webseed_uploaded_bytes_total");
        aria2c(&dir, bt_only.to_str().unwrap());
        assert_eq!(sha256_file(&dir.join(expected.name.as_str())), b.digest, "tracker download of {}", b.digest);
        assert_eq!(metric(&base, "shoal_seeder_webseed_uploaded_bytes_total"), webseed_before, "no webseed bytes");

        // 2. By magnet link (metadata over BEP 9 from the seeder).
        let (status, magnet) = curl(&format!("{base}/v1/blobs/{}/magnet", b.digest), &[]);
        assert_eq!(status, 200);
        let magnet = String::from_utf8(magnet).unwrap().trim().to_owned();
        assert!(magnet.contains(&info_hashes[blobs.iter().position(|x| x.digest == b.digest).unwrap()]));
        let dir = tmp.path().join("dl-magnet");
        aria2c(&dir, &magnet);
        assert_eq!(sha256_file(&dir.join(expected.name.as_str())), b.digest, "magnet download of {}", b.digest);

        // 3. By webseed alone: no tracker, so no peers.
        let dir = tmp.path().join("dl-webseed");
        let ws_only = tmp.path().join("ws-only.torrent");
        std::fs::write(
            &ws_only,
            expected.torrent_bytes(&Distribution { trackers: vec![], webseeds: vec![webseed_base.clone()] }),
        )
        .unwrap();
        aria2c(&dir, ws_only.to_str().unwrap());
        assert_eq!(sha256_file(&dir.join(expected.name.as_str())), b.digest, "webseed download of {}", b.digest);
        for d in ["dl-tracker", "dl-magnet", "dl-webseed"] {
            let _ = std::fs::remove_dir_all(tmp.path().join(d));
        }
    }
    assert!(metric(&base, "shoal_seeder_webseed_uploaded_bytes_total") > 0.0);
    wait_until("the BitTorrent upload gauge to move", Duration::from_secs(10), || {
        metric(&base, "shoal_seeder_bittorrent_uploaded_bytes_total") > 0.0
    });

    // A webseed byte range, checked with curl against the layout's bytes.
    let layer = &blobs[1];
    let url = format!("{webseed_base}sha256-{}", layer.digest.trim_start_matches("sha256:"));
    let (status, part) = curl(&url, &["-r", "1000-4999"]);
    assert_eq!(status, 206);
    assert_eq!(part, std::fs::read(&layer.path).unwrap()[1000..5000]);
    let (status, head) = curl(&url, &["-I"]);
    assert_eq!(status, 200);
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.contains(&format!("content-length: {}", layer.size)), "{head}");
    assert!(head.contains("accept-ranges: bytes"), "{head}");

    // Refusals: malformed names and digests are 4xx, never a file outside the store.
    assert_eq!(curl(&format!("{base}/webseed/..%2F..%2Fetc%2Fpasswd"), &[]).0, 400);
    assert_eq!(curl(&format!("{base}/webseed/sha256-{}", "A".repeat(64)), &[]).0, 400);
    assert_eq!(curl(&format!("{base}/v1/blobs/sha256:xyz/torrent"), &[]).0, 400);
    let unknown = format!("sha256:{}", "0".repeat(64));
    assert_eq!(curl(&format!("{base}/v1/blobs/{unknown}/torrent"), &[]).0, 404);
    assert_eq!(curl(&format!("{base}/webseed/sha256-{}", "0".repeat(64)), &[]).0, 404);
    assert_eq!(curl(&format!("{base}/v1/blobs/{unknown}/torrent?repo=../x"), &[]).0, 400);
    // Upstream does not have it: a clear gateway error, nothing stored.
    let (status, body) = curl(&format!("{base}/v1/blobs/{unknown}/torrent?repo=team/app&ns=127.0.0.1:{rport}"), &[]);
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    drop(seeder.child);
}

/// A registry holding a one-layer image `repo:tag` (layer of `size` bytes), and a seeder whose
/// default upstream it is and which has mirrored nothing yet.
fn seeder_with_upstream_image(
    dir: &Path,
    tag: &str,
    seed: u64,
    size: usize,
    repo: &str,
) -> (Vec<LayoutBlob>, ChildGuard, Seeder) {
    let layout = dir.join("layout");
    let (blobs, _) = write_oci_layout(&layout, tag, &[size], seed);
    let (registry, rport) = start_registry(&dir.join("registry"), "");
    skopeo_push(&layout, tag, rport, repo);
    let seeder = start_seeder(
        &dir.join("seeder"),
        &[
            "--bt-listen".into(),
            format!("127.0.0.1:{}", free_port()),
            "--upstream".into(),
            format!("127.0.0.1:{rport}"),
        ],
    );
    (blobs, registry, seeder)
}

#[test]
fn seeder_fetches_a_blob_on_demand_once_for_concurrent_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let (blobs, _registry, seeder) = seeder_with_upstream_image(tmp.path(), "v2", 2, 2 << 20, "ondemand");
    let base = seeder.base.clone();
    let layer = &blobs[1];
    let url = format!("{base}/v1/blobs/{}/torrent?repo=ondemand", layer.digest);
    let requests: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || curl(&url, &[]))
        })
        .collect();
    for r in requests {
        let (status, body) = r.join().unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(
            ParsedTorrent::parse(&body).unwrap().name.as_deref(),
            Some(format!("sha256-{}", layer.digest.trim_start_matches("sha256:")).as_str())
        );
    }
    assert_eq!(metric(&base, "shoal_seeder_upstream_fetches_total"), 1.0, "one shared fetch");
    let stored = tmp.path().join("seeder/blobs/sha256").join(layer.digest.trim_start_matches("sha256:"));
    assert_eq!(sha256_file(&stored), layer.digest);
    // Now stored: served without upstream, and by webseed.
    let (status, _) = curl(&format!("{base}/v1/blobs/{}/torrent", layer.digest), &[]);
    assert_eq!(status, 200);
    let (status, body) = curl(&format!("{base}/webseed/sha256-{}", layer.digest.trim_start_matches("sha256:")), &[]);
    assert_eq!(status, 200);
    assert_eq!(body, std::fs::read(&layer.path).unwrap());
}

#[test]
fn seeder_mirrors_from_an_htpasswd_registry_without_logging_the_password() {
    let htpasswd = require_tool("htpasswd");
    let tmp = tempfile::tempdir().unwrap();
    let (user, password) = ("shoal", "s3cret-Pa55word");
    let out = run_ok(Command::new(htpasswd).args(["-Bbn", user, password]));
    let registry_dir = tmp.path().join("registry");
    std::fs::create_dir_all(&registry_dir).unwrap();
    let htpasswd_file = registry_dir.join("htpasswd");
    std::fs::write(&htpasswd_file, out.stdout).unwrap();
    let auth = format!("auth:\n  htpasswd:\n    realm: shoal-test\n    path: {}\n", htpasswd_file.display());
    let (_registry, rport) = start_registry(&registry_dir, &auth);
    let layout = tmp.path().join("layout");
    let (blobs, manifest_digest) = write_oci_layout(&layout, "v1", &[1 << 20], 3);
    run_ok(
        Command::new(require_tool("skopeo"))
            .args(["copy", "--dest-tls-verify=false", "--dest-creds", &format!("{user}:{password}")])
            .arg(format!("oci:{}:v1", layout.display()))
            .arg(format!("docker://127.0.0.1:{rport}/private/app:v1")),
    );
    let image = format!("127.0.0.1:{rport}/private/app:v1");

    // Without credentials: refused, clearly, and nothing stored.
    let anonymous = start_seeder(
        &tmp.path().join("anonymous"),
        &[
            "--bt-listen".into(),
            format!("127.0.0.1:{}", free_port()),
            "--mirror-allow".into(),
            format!("127.0.0.1:{rport}"),
        ],
    );
    let (status, body) = curl(
        &format!("{}/v1/images", anonymous.base),
        &["-X", "POST", "-H", "content-type: application/json", "-d", &format!(r#"{{"image":"{image}"}}"#)],
    );
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 502, "{body}");
    assert!(body.to_lowercase().contains("not authorized"), "{body}");
    drop(anonymous);

    // With them (password from the environment only): mirrored, and the password never logged.
    let data = tmp.path().join("seeder");
    let log = tmp.path().join("seeder.log");
    let mut child = ChildGuard::spawn(
        Command::new(shoal_binary())
            .arg("seeder")
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", "127.0.0.1:0", "--bt-listen"])
            .arg(format!("127.0.0.1:{}", free_port()))
            .args(["--upstream", &format!("127.0.0.1:{rport}"), "--upstream-username", user, "--image", &image])
            .env("SHOAL_SEEDER_UPSTREAM_PASSWORD", password)
            .env("RUST_LOG", "debug,librqbit=info,librqbit_core=info,h2=info,hyper=info,hyper_util=info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("the seeder printed its address").unwrap();
        if let Some(url) = line.strip_prefix("shoal seeder: listening on ") {
            break url.to_owned();
        }
    };
    wait_until("the seeder to mirror the private image", Duration::from_secs(60), || {
        curl(&format!("{base}/v1/images/{image}"), &[]).0 == 200
    });
    let (_, body) = curl(&format!("{base}/v1/images/{image}"), &[]);
    let view: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(view["digest"], manifest_digest.as_str());
    for b in &blobs {
        let stored = data.join("blobs/sha256").join(b.digest.trim_start_matches("sha256:"));
        assert_eq!(sha256_file(&stored), b.digest);
    }
    // On demand through the same credentials.
    let (status, _) = curl(&format!("{base}/v1/blobs/{}/torrent?repo=private/app", blobs[1].digest), &[]);
    assert_eq!(status, 200);
    drop(child);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("mirrored image"), "the log is the seeder's: {logged}");
    assert!(!logged.contains(password), "the password appeared in the log");
}

#[test]
fn seeder_mirrors_what_the_registry_notifies_it_of() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("seeder");
    // The registry's port is known only once it runs (after this seeder): allow any.
    let seeder = start_seeder(
        &data,
        &["--bt-listen".into(), format!("127.0.0.1:{}", free_port()), "--mirror-allow".into(), "*".into()],
    );
    let notifications = format!(
        "notifications:\n  endpoints:\n    - name: shoal\n      url: {}/v1/notifications\n      timeout: 2s\n      threshold: 3\n      backoff: 1s\n",
        seeder.base
    );
    let (_registry, rport) = start_registry(&tmp.path().join("registry"), &notifications);
    let layout = tmp.path().join("layout");
    let (blobs, manifest_digest) = write_oci_layout(&layout, "pushed", &[512 << 10, 64 << 10], 4);
    skopeo_push(&layout, "pushed", rport, "hooked");
    let pinned = format!("127.0.0.1:{rport}/hooked@{manifest_digest}");
    wait_until("the push notification to be mirrored", Duration::from_secs(60), || {
        curl(&format!("{}/v1/images/{pinned}", seeder.base), &[]).0 == 200
    });
    for b in &blobs {
        let stored = data.join("blobs/sha256").join(b.digest.trim_start_matches("sha256:"));
        assert_eq!(sha256_file(&stored), b.digest);
    }
}

#[test]
fn a_blob_asked_for_without_waiting_is_answered_202_and_fetched_meanwhile() {
    let tmp = tempfile::tempdir().unwrap();
    let (blobs, _registry, seeder) = seeder_with_upstream_image(tmp.path(), "v3", 3, 1 << 20, "nowait");
    let base = seeder.base.clone();
    let layer = &blobs[1];
    let url = format!("{base}/v1/blobs/{}/torrent?repo=nowait&wait=false", layer.digest);
    // Bad input is still refused at once, and starts nothing (asked first: once the blob is
    // stored, any request gets its torrent).
    assert_eq!(curl(&format!("{base}/v1/blobs/{}/torrent?repo=../x&wait=false", layer.digest), &[]).0, 400);
    let (status, body) = curl(&url, &[]);
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    wait_until("the blob to be fetched meanwhile", Duration::from_secs(30), || curl(&url, &[]).0 == 200);
    let (_, torrent) = curl(&url, &[]);
    assert_eq!(
        ParsedTorrent::parse(&torrent).unwrap().name.as_deref(),
        Some(format!("sha256-{}", layer.digest.trim_start_matches("sha256:")).as_str())
    );
    assert_eq!(metric(&base, "shoal_seeder_upstream_fetches_total"), 1.0, "one fetch for all the asking");
    let stored = tmp.path().join("seeder/blobs/sha256").join(layer.digest.trim_start_matches("sha256:"));
    assert_eq!(sha256_file(&stored), layer.digest);
}
