//! No single point of failure (issue 19): three `shoal tracker` and three `shoal seeder`
//! processes, the seeders on a ring with two replicas per blob, four shims and a real
//! docker-registry upstream.
//!
//! An image mirrored through a seeder that owns none of some blobs lands only at each blob's two
//! owners, each fetched from upstream once per replica. Then skopeo pulls the image through
//! every shim while the primary owner of the largest layer and the tracker that owns that
//! layer's swarm are killed with SIGKILL mid-burst: every pull completes with verified bytes,
//! no shim takes a byte from upstream, and upstream served each blob at most twice in all.
//! `shoal magnets` given the dead seeder first still lists every magnet.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use shoal_interop_tests::registry::{
    blob_gets, skopeo_pull, skopeo_push, start_registry_with_access_log, write_oci_layout, LayoutBlob,
};
use shoal_interop_tests::stack::{cli_swarm, seeding, start_shim_with, Shim};
use shoal_interop_tests::{
    blob_path, blocking, free_port, sha256_file, shoal_binary, wait_for_tcp, wait_until, ChildGuard,
};
use shoal_torrents::{rendezvous_order, BlobDigest, ParsedTorrent, SeederRing};

const REPLICAS: usize = 2;

fn get(url: &str, headers: &[&str]) -> Option<(u16, Vec<u8>)> {
    let mut cmd = Command::new(shoal_interop_tests::require_tool("curl"));
    cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "30"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().ok()?;
    let split = out.stdout.iter().rposition(|&b| b == b'\n')?;
    let status = String::from_utf8_lossy(&out.stdout[split..]).trim().parse().ok()?;
    Some((status, out.stdout[..split].to_vec()))
}

/// A `shoal tracker` process, one of `members`.
fn spawn_tracker(addr: &str, members: &[String], me: &str) -> ChildGuard {
    let child = ChildGuard::spawn(
        Command::new(shoal_binary())
            .args(["tracker", "--listen", addr, "--interval", "2", "--min-interval", "1"])
            .args(["--member", &members.join(","), "--self-url", me])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null()),
    );
    wait_for_tcp(addr.parse().unwrap(), Duration::from_secs(30));
    child
}

/// A `shoal seeder` process at `url`, one of `members`, fronting `registry`.
fn spawn_seeder(dir: &Path, url: &str, members: &[String], trackers: &[String], registry: &str) -> ChildGuard {
    let listen = url.trim_start_matches("http://");
    let child = ChildGuard::spawn(
        Command::new(shoal_binary())
            .args(["seeder", "--listen", listen, "--public-url", url, "--upstream", registry])
            .arg("--data-dir")
            .arg(dir)
            .args(["--bt-listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--tracker", &trackers.join(",")])
            .args(["--member", &members.join(","), "--replicas", &REPLICAS.to_string()])
            .env("RUST_LOG", std::env::var("SHOAL_TEST_SEEDER_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null()),
    );
    wait_until("a seeder's API", Duration::from_secs(60), || {
        get(&format!("{url}/healthz"), &[]).is_some_and(|(s, _)| s == 200)
    });
    child
}

/// The shim's blob bytes from one source (`peers`, `webseed`, `upstream`), 0 before any.
fn bytes_from(shim: &Shim, source: &str) -> u64 {
    let label = format!("source=\"{source}\"}}");
    let metrics = shim.metrics.render();
    let line = metrics.lines().find(|l| l.contains(&label));
    line.and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0)
}

fn digest(blob: &LayoutBlob) -> BlobDigest {
    blob.digest.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pulls_complete_from_the_swarm_when_a_seeder_and_a_tracker_die_mid_burst() {
    shoal_interop_tests::stack::init_logging();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();

    // Upstream: one image, a config and four layers, its access log kept.
    let (registry_guard, port, access_log) = start_registry_with_access_log(&dir.join("registry"));
    let registry = format!("127.0.0.1:{port}");
    let layout = dir.join("layout");
    let sizes = [24 << 20, 8 << 20, 3 << 20, 1 << 20];
    let (blobs, _) = blocking({
        let layout = layout.clone();
        move || {
            let written = write_oci_layout(&layout, "v1", &sizes, 19);
            skopeo_push(&layout, "v1", port, "team/app");
            written
        }
    })
    .await;

    // Three trackers, three seeders on one ring.
    let tracker_addrs: Vec<String> = (0..3).map(|_| format!("127.0.0.1:{}", free_port())).collect();
    let trackers: Vec<String> = tracker_addrs.iter().map(|a| format!("http://{a}/announce")).collect();
    let mut tracker_procs: Vec<Option<ChildGuard>> =
        tracker_addrs.iter().zip(&trackers).map(|(a, me)| Some(spawn_tracker(a, &trackers, me))).collect();
    let seeders: Vec<String> = (0..3).map(|_| format!("http://127.0.0.1:{}", free_port())).collect();
    let seeder_dirs: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("seeder-{i}"))).collect();
    let mut seeder_procs: Vec<Option<ChildGuard>> = Vec::new();
    for (url, data) in seeders.iter().zip(&seeder_dirs) {
        let (url, data, members, trackers, registry) =
            (url.clone(), data.clone(), seeders.clone(), trackers.clone(), registry.clone());
        seeder_procs.push(Some(blocking(move || spawn_seeder(&data, &url, &members, &trackers, &registry)).await));
    }
    let ring = SeederRing::new(&seeders, REPLICAS).unwrap();

    // The largest layer's primary owner is the seeder to kill; mirror through another one, so
    // the mirror request is forwarded for the blobs the receiving seeder does not own.
    let layer = &blobs[1];
    let victim = ring.owners(&digest(layer))[0].to_owned();
    let receiver = seeders.iter().find(|s| **s != victim).unwrap().clone();
    let request = format!(r#"{{"image": "{registry}/team/app:v1"}}"#);
    let out = blocking({
        let receiver = receiver.clone();
        move || {
            Command::new("curl")
                .args(["-sf", "--max-time", "120", "-H", "content-type: application/json", "-d", &request])
                .arg(format!("{receiver}/v1/images"))
                .output()
                .unwrap()
        }
    })
    .await;
    assert!(out.status.success(), "mirroring through {receiver} failed: {}", String::from_utf8_lossy(&out.stdout));
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = &view["manifests"][0];
    for b in std::iter::once(&listed["config"]).chain(listed["layers"].as_array().unwrap()) {
        assert!(b["magnet"].as_str().is_some_and(|m| m.starts_with("magnet:?")), "no magnet for {b}");
    }

    // Each blob lands at its two owners (the second one by replication) and nowhere else.
    for blob in &blobs {
        let d = digest(blob);
        let owners = ring.owners(&d);
        wait_until(&format!("{} at its owners", blob.digest), Duration::from_secs(60), || {
            owners.iter().all(|o| {
                get(&format!("{o}/webseed/{}", d.torrent_name()), &["Range: bytes=0-0"]).is_some_and(|(s, _)| s == 206)
            })
        });
        for (url, data) in seeders.iter().zip(&seeder_dirs) {
            let stored = blob_path(data, &blob.digest).is_file();
            assert_eq!(stored, owners.contains(&url.as_str()), "{} stored at {url}: {stored}", blob.digest);
        }
        let served = blob_gets(&access_log, &blob.digest);
        assert!((1..=REPLICAS).contains(&served), "upstream served {} {served} times while mirroring", blob.digest);
    }

    // A non-owner answers for the owners: the same torrent, naming the owners' webseeds.
    let non_owner = seeders.iter().find(|s| !ring.owners(&digest(layer)).contains(&s.as_str())).unwrap();
    let (status, torrent) = get(&format!("{non_owner}/v1/blobs/{}/torrent", layer.digest), &[]).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&torrent));
    let parsed = ParsedTorrent::parse(&torrent).unwrap();
    assert_eq!(parsed.distribution.webseeds, ring.webseeds(&digest(layer)));
    let doomed_tracker = rendezvous_order(parsed.info_hash.as_bytes(), &trackers)[0].to_owned();

    // Four shims, each told all three seeders and trackers.
    let mut shims: Vec<Shim> = Vec::new();
    for i in 0..4 {
        let mut swarm = cli_swarm(&seeders[0], &trackers);
        swarm.seeders = seeders.clone();
        swarm.seeding = seeding(&trackers);
        shims.push(start_shim_with(&dir.join(format!("shim-{i}")), &registry, Some(swarm)).await);
    }

    // The burst; the kills as soon as the first bytes arrive.
    let pulls: Vec<_> = shims
        .iter()
        .enumerate()
        .map(|(i, shim)| {
            let (addr, out) = (shim.addr, dir.join(format!("pulled-{i}")));
            tokio::spawn(async move { (skopeo_pull(addr, "team/app:v1", &out, &[]).await, out) })
        })
        .collect();
    let started = std::time::Instant::now();
    while shims.iter().all(|s| bytes_from(s, "peers") == 0) && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let victim_index = seeders.iter().position(|s| *s == victim).unwrap();
    drop(seeder_procs[victim_index].take()); // SIGKILL
    let tracker_index = trackers.iter().position(|t| *t == doomed_tracker).unwrap();
    drop(tracker_procs[tracker_index].take());
    let sources: Vec<_> =
        shims.iter().map(|s| (bytes_from(s, "peers"), bytes_from(s, "webseed"), bytes_from(s, "upstream"))).collect();
    eprintln!("killed seeder {victim} and tracker {doomed_tracker} {:?} into the burst; shims had (peers, webseed, upstream) {sources:?}", started.elapsed());

    for pull in pulls {
        let (out, pulled) = pull.await.unwrap();
        assert!(out.status.success(), "skopeo pull failed: {}", String::from_utf8_lossy(&out.stderr));
        eprintln!("a pull ended {:?} into the burst", started.elapsed());
        for blob in &blobs {
            let file = pulled.join(blob.digest.trim_start_matches("sha256:"));
            assert_eq!(sha256_file(&file), blob.digest, "{}", file.display());
        }
    }
    for (i, shim) in shims.iter().enumerate() {
        let (peers, webseed, upstream) =
            (bytes_from(shim, "peers"), bytes_from(shim, "webseed"), bytes_from(shim, "upstream"));
        eprintln!("shim {i}: {peers} bytes from peers, {webseed} from webseeds, {upstream} from upstream");
        assert_eq!(upstream, 0, "shim {i} took bytes from upstream");
    }
    for blob in &blobs {
        let served = blob_gets(&access_log, &blob.digest);
        assert!(served <= REPLICAS, "upstream served {} {served} times in all", blob.digest);
    }

    // `shoal magnets` given the dead seeder first asks the next, which lists every blob's
    // magnet: those the dead one owned come from their surviving replica.
    let image = format!("{registry}/team/app:v1");
    let out = Command::new(shoal_binary())
        .args(["magnets", "--seeder", &format!("{victim},{receiver}"), &image])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "shoal magnets: {}{stdout}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.matches("magnet:?").count(), blobs.len(), "{stdout}");
    drop(registry_guard);
}
