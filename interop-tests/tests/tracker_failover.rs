//! Trackers sharded by infohash (issue 19): with three trackers, each blob's torrent and magnet
//! name its owner first and the other two as failover tiers, in rendezvous order. With the owner
//! of a layer's swarm killed, aria2c and qbittorrent-nox given the magnet (trackers only, no
//! webseed, so the swarm is the only way to the bytes) still download the layer from the origin
//! seeder through the next tier, and a shim still pulls it from the swarm.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use shoal_interop_tests::registry::{push_image, PushedImage};
use shoal_interop_tests::stack::{seeding, start_seeder_with, start_shim};
use shoal_interop_tests::{
    aria2c_download, blocking, free_port, qbittorrent_nox, require_tool, run_ok, seeds_at_tracker, sha256_file,
    wait_for_tcp, wait_until,
};
use shoal_torrents::{rendezvous_order, Magnet, ParsedTorrent, TRACKER_TIERS};
use shoal_tracker::{spawn, RunningTracker, TrackerConfig};

fn curl(args: &[&str]) -> Option<String> {
    let out = Command::new(require_tool("curl")).args(["-sf", "--max-time", "10"]).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// qbittorrent-nox downloads `magnet` into `save` (fails the test after 120 s).
fn qbittorrent_download(profile: &Path, magnet: &str, info_hash: &str, save: &Path) {
    let (webui, listen) = (free_port(), free_port());
    let _qbt = qbittorrent_nox(profile, webui, listen, save);
    let api = format!("http://127.0.0.1:{webui}/api/v2");
    wait_for_tcp(format!("127.0.0.1:{webui}").parse().unwrap(), Duration::from_secs(30));
    wait_until("qbittorrent-nox's API", Duration::from_secs(30), || curl(&[&format!("{api}/app/version")]).is_some());
    let urls = format!("urls={magnet}");
    let save_arg = format!("savepath={}", save.display());
    assert!(
        curl(&["-F", &urls, "-F", &save_arg, &format!("{api}/torrents/add")]).is_some(),
        "qbittorrent-nox refused the magnet"
    );
    let mut last = String::new();
    let done = shoal_interop_tests::poll_until(Duration::from_secs(120), || {
        let Some(body) = curl(&[&format!("{api}/torrents/info?hashes={info_hash}")]) else { return false };
        let info: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        last = body;
        info[0]["progress"].as_f64() == Some(1.0)
    });
    let trackers = curl(&[&format!("{api}/torrents/trackers?hash={info_hash}")]).unwrap_or_default();
    assert!(done, "qbittorrent-nox did not finish in 120 s; last state: {last}; trackers: {trackers}");
}

/// A registry holding `team/app:v1`, one layer of `size` bytes.
async fn pushed(dir: &Path, size: usize, seed: u64) -> PushedImage {
    let dir = dir.to_owned();
    blocking(move || push_image(&dir, "team/app", &[size], seed)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_fail_over_to_the_next_tier_when_a_swarms_owner_tracker_is_dead() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let PushedImage { registry: _registry, address: registry, blobs, .. } = pushed(&dir, 4 << 20, 19).await;
    let layer = &blobs[1];
    // Each tracker knows the members (`--member`, `--self-url`), so it counts announces by
    // role. Each runs its own runtime on its own thread: started and stopped off this one.
    let addrs: Vec<std::net::SocketAddr> =
        (0..3).map(|_| format!("127.0.0.1:{}", free_port()).parse().unwrap()).collect();
    let urls: Vec<String> = addrs.iter().map(|a| format!("http://{a}/announce")).collect();
    let (a, u) = (addrs.clone(), urls.clone());
    let mut trackers: Vec<Option<RunningTracker>> = blocking(move || {
        let member = |i: usize| TrackerConfig {
            listen: a[i],
            shard: Some((u.clone(), u[i].clone())),
            ..TrackerConfig::loopback()
        };
        (0..3).map(|i| Some(spawn(member(i)).expect("tracker starts"))).collect()
    })
    .await;

    // The origin announces to all three; its torrents name the owners in rendezvous order.
    let seeder = start_seeder_with(&dir.join("seeder"), &registry, seeding(&urls)).await;
    seeder.mirror(&format!("{registry}/team/app:v1")).await;
    let torrent_url = format!("{}/v1/blobs/{}/torrent", seeder.url, layer.digest);
    let torrent = blocking(move || run_ok(Command::new("curl").args(["-sf", &torrent_url])).stdout).await;
    let parsed = ParsedTorrent::parse(&torrent).unwrap();
    let order = rendezvous_order(parsed.info_hash.as_bytes(), &urls);
    assert_eq!(parsed.distribution.trackers, order[..TRACKER_TIERS], "the torrent's tiers, owner first");
    let owner = urls.iter().position(|u| *u == order[0]).unwrap();
    eprintln!("owner of {}: tracker {owner} ({})", parsed.info_hash.hex(), order[0]);

    // The seeder is in the swarm at every tracker before the owner dies.
    let (u, info_hash) = (urls.clone(), parsed.info_hash);
    let everywhere = move || u.iter().all(|u| seeds_at_tracker(u, &info_hash) == 1);
    blocking(move || wait_until("the seeder at every tracker", Duration::from_secs(30), everywhere)).await;
    let killed = trackers[owner].take();
    blocking(move || drop(killed)).await; // its port refuses connections now

    // A magnet with the trackers only: the swarm is the one way to the bytes.
    let magnet = Magnet { webseeds: vec![], torrent_url: None, ..parsed.magnet() };
    assert_eq!(magnet.trackers[0], order[0], "the magnet's first tracker is the (dead) owner");
    let magnet = magnet.to_string();
    let (aria_dir, m) = (dir.join("aria2c"), magnet.clone());
    blocking(move || aria2c_download(&aria_dir, std::ffi::OsStr::new(&m))).await;
    let name = parsed.name.clone().unwrap();
    assert_eq!(sha256_file(&dir.join("aria2c").join(&name)), layer.digest, "aria2c's download");

    let (profile, save, m, ih) = (dir.join("qbt"), dir.join("qbt-save"), magnet.clone(), parsed.info_hash.hex());
    blocking(move || qbittorrent_download(&profile, &m, &ih, &save)).await;
    assert_eq!(sha256_file(&dir.join("qbt-save").join(&name)), layer.digest, "qbittorrent-nox's download");

    // A shim: librqbit announces to every tier at once, so the dead owner costs it nothing.
    let shim = start_shim(&dir.join("shim"), &registry, Some(&seeder.url), &urls).await;
    let pulled = dir.join("pulled");
    let url = format!("http://{}/v2/team/app/blobs/{}", shim.addr, layer.digest);
    let p = pulled.clone();
    blocking(move || run_ok(Command::new("curl").args(["-sf", "-o"]).arg(&p).arg(&url))).await;
    assert_eq!(sha256_file(&pulled), layer.digest);
    let peers = shim.metrics.bytes(shoal_registry_shim::Source::Peers).get();
    assert_eq!(peers, layer.size, "the shim's bytes all came from the swarm");
    // The next tier served the stock clients' announces as a failover; the seeder, which
    // announces to every tier, was counted as such there too.
    let next = urls.iter().position(|u| *u == order[1]).unwrap();
    let metrics = curl(&[&format!("http://{}/metrics", addrs[next])]).unwrap_or_default();
    let failover = metrics
        .lines()
        .find_map(|l| l.strip_prefix("shoal_tracker_announces_by_role_total{role=\"failover\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    eprintln!("tracker {next} (second tier) served {failover} announces as a failover");
    assert!(failover >= 3.0, "the second tier's metrics: {metrics}");
    assert!(metrics.contains("shoal_tracker_members 3"), "{metrics}");
    seeder.stop().await;
    blocking(move || drop(trackers)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tracker_restarted_empty_has_its_swarms_back_within_one_announce_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let PushedImage { registry: _registry, address: registry, blobs, .. } = pushed(&dir, 1 << 20, 20).await;
    const INTERVAL: Duration = Duration::from_secs(3);
    let config = move |listen| TrackerConfig {
        listen,
        intervals: shoal_tracker::Intervals { interval_secs: INTERVAL.as_secs() as u32, min_interval_secs: 1 },
        ..TrackerConfig::loopback()
    };
    let first = blocking(move || spawn(config("127.0.0.1:0".parse().unwrap())).unwrap()).await;
    let (addr, url) = (first.http_addr(), first.announce_url());
    let seeder = start_seeder_with(&dir.join("seeder"), &registry, seeding(std::slice::from_ref(&url))).await;
    seeder.mirror(&format!("{registry}/team/app:v1")).await;
    let torrent_url = format!("{}/v1/blobs/{}/torrent", seeder.url, blobs[1].digest);
    let torrent = blocking(move || run_ok(Command::new("curl").args(["-sf", &torrent_url])).stdout).await;
    let info_hash = ParsedTorrent::parse(&torrent).unwrap().info_hash;
    let u = url.clone();
    blocking(move || {
        wait_until("the seeder's announce", Duration::from_secs(30), || seeds_at_tracker(&u, &info_hash) == 1)
    })
    .await;

    // Killed, and a new one, empty, on the same address.
    let (again, restarted) = blocking(move || {
        drop(first);
        let again = spawn(config(addr)).expect("a tracker starts again on the same address");
        (again, std::time::Instant::now())
    })
    .await;
    let u = url.clone();
    let back = blocking(move || {
        wait_until("the swarm back at the restarted tracker", Duration::from_secs(30), || {
            seeds_at_tracker(&u, &info_hash) == 1
        });
        restarted.elapsed()
    })
    .await;
    eprintln!("swarm back {back:?} after the restart (interval {INTERVAL:?})");
    assert!(back <= INTERVAL + Duration::from_secs(1), "the swarm came back after {back:?}, not within one interval");
    seeder.stop().await;
    blocking(move || drop(again)).await;
}
