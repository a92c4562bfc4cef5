//! qbittorrent-nox (libtorrent 2.0) against `shoal seeder`: an image pushed by skopeo into a real
//! `docker-registry` is mirrored, then qbittorrent-nox fetches every layer by .torrent through
//! `shoal tracker` (in-process), by magnet link, and by webseed alone; each file's SHA-256 must
//! equal its digest.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use shoal_interop_tests::{
    free_port, qbittorrent_nox, require_tool, run_ok, sha256_file, shoal_binary, wait_for_tcp, wait_until, write_blob,
    ChildGuard,
};
use shoal_torrents::{BlobTorrent, Distribution, ParsedTorrent};
use shoal_tracker::{spawn, TrackerConfig};

fn curl(args: &[&str]) -> Option<String> {
    let out = Command::new(require_tool("curl")).args(["-sf", "--max-time", "10"]).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn curl_bytes(url: &str) -> Vec<u8> {
    run_ok(Command::new(require_tool("curl")).args(["-sf", url])).stdout
}

/// Pushes a one-manifest OCI layout of gzip layers of the given sizes; returns the layer
/// digests and their files.
fn push_image(dir: &Path, registry: u16, repo_tag: &str, sizes: &[usize]) -> Vec<(String, PathBuf)> {
    let layout = dir.join("layout");
    let blobs_dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs_dir).unwrap();
    let put = |bytes: &[u8]| {
        let tmp = blobs_dir.join("incoming");
        std::fs::write(&tmp, bytes).unwrap();
        let digest = sha256_file(&tmp);
        let path = blobs_dir.join(digest.trim_start_matches("sha256:"));
        std::fs::rename(&tmp, &path).unwrap();
        (digest, bytes.len(), path)
    };
    let mut layers = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let content = dir.join(format!("content{i}"));
        std::fs::create_dir_all(&content).unwrap();
        write_blob(&content, "data.bin", size, 40 + i as u64);
        let tar = dir.join(format!("layer{i}.tar"));
        run_ok(Command::new("tar").arg("-cf").arg(&tar).arg("-C").arg(&content).arg("data.bin"));
        run_ok(Command::new("gzip").arg("-n").arg("-1").arg(&tar));
        layers.push(put(&std::fs::read(dir.join(format!("layer{i}.tar.gz"))).unwrap()));
    }
    let (cd, cs, _) = put(br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs },
        "layers": layers.iter().map(|(d, s, _)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s,
        })).collect::<Vec<_>>(),
    });
    let (md, ms, _) = put(&serde_json::to_vec(&manifest).unwrap());
    let (repo, tag) = repo_tag.split_once(':').unwrap();
    let index = serde_json::json!({ "schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
        "annotations": { "org.opencontainers.image.ref.name": tag },
    }]});
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    run_ok(
        Command::new(require_tool("skopeo"))
            .args(["copy", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://127.0.0.1:{registry}/{repo}:{tag}")),
    );
    layers.into_iter().map(|(d, _, p)| (d, p)).collect()
}

/// Adds (a `-F` form field: `torrents=@file` or `urls=magnet`) to qbittorrent-nox, waits for
/// it to complete into `save`, then removes the torrent (keeping the file).
fn qbt_download(api: &str, field: &str, info_hash: &str, save: &Path) {
    std::fs::create_dir_all(save).unwrap();
    let save_arg = format!("savepath={}", save.display());
    let added = curl(&["-F", field, "-F", &save_arg, &format!("{api}/torrents/add")]);
    assert!(added.is_some(), "qbittorrent-nox refused {field}");
    let mut last = String::new();
    let done = (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(200));
        let Some(body) = curl(&[&format!("{api}/torrents/info?hashes={info_hash}")]) else { return false };
        let info: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        last = body;
        info[0]["progress"].as_f64() == Some(1.0)
    });
    assert!(done, "qbittorrent-nox did not finish {field} in 120 s; last state: {last}");
    curl(&["-d", &format!("hashes={info_hash}&deleteFiles=false"), &format!("{api}/torrents/delete")])
        .expect("qbittorrent-nox removes the torrent");
    wait_until("qbittorrent-nox to forget the torrent", Duration::from_secs(20), || {
        curl(&[&format!("{api}/torrents/info?hashes={info_hash}")]).is_some_and(|b| b.trim() == "[]")
    });
}

#[test]
fn qbittorrent_downloads_every_mirrored_layer_by_tracker_magnet_and_webseed() {
    let tmp = tempfile::tempdir().unwrap();
    let registry_dir = tmp.path().join("registry");
    std::fs::create_dir_all(&registry_dir).unwrap();
    let rport = free_port();
    std::fs::write(
        registry_dir.join("config.yml"),
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{rport}\n",
            registry_dir.join("storage").display()
        ),
    )
    .unwrap();
    let _registry = ChildGuard::spawn(
        Command::new(require_tool("docker-registry"))
            .arg("serve")
            .arg(registry_dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for_tcp(SocketAddr::from(([127, 0, 0, 1], rport)), Duration::from_secs(20));
    let layers = push_image(tmp.path(), rport, "qbt/app:1", &[2 << 20, 300 << 10]);

    let tracker = spawn(TrackerConfig::loopback()).unwrap();
    let announce = tracker.announce_url();
    let image = format!("127.0.0.1:{rport}/qbt/app:1");
    let mut seeder = ChildGuard::spawn(
        Command::new(shoal_binary())
            .arg("seeder")
            .arg("--data-dir")
            .arg(tmp.path().join("seeder"))
            .args(["--listen", "127.0.0.1:0", "--bt-listen"])
            .arg(format!("127.0.0.1:{}", free_port()))
            .args(["--tracker", &announce, "--image", &image])
            .stdout(Stdio::piped()),
    );
    let stdout = seeder.0.stdout.take().unwrap();
    let base = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("shoal seeder: listening on ").map(str::to_owned))
        .expect("the seeder printed its address");
    wait_until("the seeder to mirror the image", Duration::from_secs(60), || {
        curl(&[&format!("{base}/v1/images/{image}")]).is_some()
    });

    let webui = free_port();
    let profile = tmp.path().join("qbt-profile");
    let _qbt = qbittorrent_nox(&profile, webui, free_port(), &tmp.path().join("qbt-default"));
    let api = format!("http://127.0.0.1:{webui}/api/v2");
    wait_until("qbittorrent-nox's Web API", Duration::from_secs(60), || {
        curl(&[&format!("{api}/app/version")]).is_some()
    });

    for (i, (digest, _)) in layers.iter().enumerate() {
        let torrent = curl_bytes(&format!("{base}/v1/blobs/{digest}/torrent"));
        let parsed = ParsedTorrent::parse(&torrent).unwrap();
        let name = parsed.name.clone().unwrap();
        let hash = parsed.info_hash.hex();
        let hashed = shoal_torrents::hash_reader(
            std::fs::File::open(tmp.path().join("seeder/blobs/sha256").join(digest.trim_start_matches("sha256:")))
                .unwrap(),
            parsed.size.unwrap(),
            &mut |_| {},
        )
        .unwrap();
        let profile_torrent = BlobTorrent::from_hashed(&hashed);
        assert_eq!(profile_torrent.info_hash(), parsed.info_hash);

        // 1. .torrent through the tracker, peers only.
        let bt_only = tmp.path().join(format!("bt-only-{i}.torrent"));
        std::fs::write(
            &bt_only,
            profile_torrent.torrent_bytes(&Distribution { trackers: vec![announce.clone()], webseeds: vec![] }),
        )
        .unwrap();
        let save = tmp.path().join(format!("qbt-tracker-{i}"));
        qbt_download(&api, &format!("torrents=@{}", bt_only.display()), &hash, &save);
        assert_eq!(sha256_file(&save.join(&name)), *digest, "tracker download");

        // 2. Magnet link (metadata from the seeder over BEP 9).
        let magnet = curl(&[&format!("{base}/v1/blobs/{digest}/magnet")]).unwrap().trim().to_owned();
        let save = tmp.path().join(format!("qbt-magnet-{i}"));
        qbt_download(&api, &format!("urls={magnet}"), &hash, &save);
        assert_eq!(sha256_file(&save.join(&name)), *digest, "magnet download");

        // 3. Webseed alone: no trackers, so no peers.
        let ws_only = tmp.path().join(format!("ws-only-{i}.torrent"));
        std::fs::write(
            &ws_only,
            profile_torrent.torrent_bytes(&Distribution { trackers: vec![], webseeds: parsed.distribution.webseeds }),
        )
        .unwrap();
        let save = tmp.path().join(format!("qbt-webseed-{i}"));
        qbt_download(&api, &format!("torrents=@{}", ws_only.display()), &hash, &save);
        assert_eq!(sha256_file(&save.join(&name)), *digest, "webseed download");
    }
}
