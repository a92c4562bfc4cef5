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
    aria2c_download, free_port, qbittorrent_nox, require_tool, run_ok, sha256_file, wait_for_tcp, wait_until,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_fail_over_to_the_next_tier_when_a_swarms_owner_tracker_is_dead() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let PushedImage { registry: _registry, address: registry, blobs, .. } = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || push_image(&dir, "team/app", &[4 << 20], 19)).await.unwrap()
    };
    let layer = &blobs[1];
    // Each tracker knows the members (`--member`, `--self-url`), so it counts announces by
    // role. Each runs its own runtime on its own thread: started and stopped off this one.
    let addrs: Vec<std::net::SocketAddr> =
        (0..3).map(|_| format!("127.0.0.1:{}", free_port()).parse().unwrap()).collect();
    let urls: Vec<String> = addrs.iter().map(|a| format!("http://{a}/announce")).collect();
    let (a, u) = (addrs.clone(), urls.clone());
    let mut trackers: Vec<Option<RunningTracker>> = tokio::task::spawn_blocking(move || {
        let member = |i: usize| TrackerConfig {
            listen: a[i],
            shard: Some((u.clone(), u[i].clone())),
            ..TrackerConfig::loopback()
        };
        (0..3).map(|i| Some(spawn(member(i)).expect("tracker starts"))).collect()
    })
    .await
    .unwrap();

    // The origin announces to all three; its torrents name the owners in rendezvous order.
    let seeder = start_seeder_with(&dir.join("seeder"), &registry, seeding(&urls)).await;
    seeder.mirror(&format!("{registry}/team/app:v1")).await;
    let torrent_url = format!("{}/v1/blobs/{}/torrent", seeder.url, layer.digest);
    let torrent = tokio::task::spawn_blocking(move || run_ok(Command::new("curl").args(["-sf", &torrent_url])).stdout)
        .await
        .unwrap();
    let parsed = ParsedTorrent::parse(&torrent).unwrap();
    let order = rendezvous_order(parsed.info_hash.as_bytes(), &urls);
    assert_eq!(parsed.distribution.trackers, order[..TRACKER_TIERS], "the torrent's tiers, owner first");
    let owner = urls.iter().position(|u| *u == order[0]).unwrap();
    eprintln!("owner of {}: tracker {owner} ({})", parsed.info_hash.hex(), order[0]);

    // The seeder is in the swarm at every tracker before the owner dies.
    let scrape_all = |urls: Vec<String>, hash: String| {
        move || {
            urls.iter().all(|u| {
                let scrape = u.replace("/announce", "/scrape");
                curl(&[&format!("{scrape}?info_hash={hash}")]).is_some_and(|r| r.contains("8:completei1e"))
            })
        }
    };
    let hash: String = parsed.info_hash.as_bytes().iter().map(|b| format!("%{b:02x}")).collect();
    let everywhere = scrape_all(urls.clone(), hash.clone());
    tokio::task::spawn_blocking(move || wait_until("the seeder at every tracker", Duration::from_secs(30), everywhere))
        .await
        .unwrap();
    let killed = trackers[owner].take();
    tokio::task::spawn_blocking(move || drop(killed)).await.unwrap(); // its port refuses connections now

    // A magnet with the trackers only: the swarm is the one way to the bytes.
    let magnet = Magnet { webseeds: vec![], torrent_url: None, ..parsed.magnet() }.to_string();
    assert!(magnet.contains(&format!("tr={}", urlencode(order[0]))), "{magnet}");
    let (aria_dir, m) = (dir.join("aria2c"), magnet.clone());
    tokio::task::spawn_blocking(move || aria2c_download(&aria_dir, std::ffi::OsStr::new(&m))).await.unwrap();
    let name = parsed.name.clone().unwrap();
    assert_eq!(sha256_file(&dir.join("aria2c").join(&name)), layer.digest, "aria2c's download");

    let (profile, save, m, ih) = (dir.join("qbt"), dir.join("qbt-save"), magnet.clone(), parsed.info_hash.hex());
    tokio::task::spawn_blocking(move || qbittorrent_download(&profile, &m, &ih, &save)).await.unwrap();
    assert_eq!(sha256_file(&dir.join("qbt-save").join(&name)), layer.digest, "qbittorrent-nox's download");

    // A shim: librqbit announces to every tier at once, so the dead owner costs it nothing.
    let shim = start_shim(&dir.join("shim"), &registry, Some(&seeder.url), &urls).await;
    let pulled = dir.join("pulled");
    let url = format!("http://{}/v2/team/app/blobs/{}", shim.addr, layer.digest);
    let p = pulled.clone();
    tokio::task::spawn_blocking(move || run_ok(Command::new("curl").args(["-sf", "-o"]).arg(&p).arg(&url)))
        .await
        .unwrap();
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
    tokio::task::spawn_blocking(move || drop(trackers)).await.unwrap();
}

/// Percent-encoding as magnets write tracker URLs (`:` and `/` encoded).
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `complete` count of `info_hash` (percent-encoded) in a scrape of `announce`'s tracker.
fn seeds_at(announce: &str, info_hash: &str) -> u64 {
    let scrape = announce.replace("/announce", "/scrape");
    let reply = curl(&[&format!("{scrape}?info_hash={info_hash}")]).unwrap_or_default();
    let count = reply.split("8:completei").nth(1).and_then(|rest| rest.split('e').next());
    count.and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tracker_restarted_empty_has_its_swarms_back_within_one_announce_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let PushedImage { registry: _registry, address: registry, blobs, .. } = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || push_image(&dir, "team/app", &[1 << 20], 20)).await.unwrap()
    };
    const INTERVAL: Duration = Duration::from_secs(3);
    let config = move |listen| TrackerConfig {
        listen,
        intervals: shoal_tracker::Intervals { interval_secs: INTERVAL.as_secs() as u32, min_interval_secs: 1 },
        ..TrackerConfig::loopback()
    };
    let first =
        tokio::task::spawn_blocking(move || spawn(config("127.0.0.1:0".parse().unwrap())).unwrap()).await.unwrap();
    let (addr, url) = (first.http_addr(), first.announce_url());
    let seeder = start_seeder_with(&dir.join("seeder"), &registry, seeding(std::slice::from_ref(&url))).await;
    seeder.mirror(&format!("{registry}/team/app:v1")).await;
    let torrent_url = format!("{}/v1/blobs/{}/torrent", seeder.url, blobs[1].digest);
    let torrent = tokio::task::spawn_blocking(move || run_ok(Command::new("curl").args(["-sf", &torrent_url])).stdout)
        .await
        .unwrap();
    let hash: String =
        ParsedTorrent::parse(&torrent).unwrap().info_hash.as_bytes().iter().map(|b| format!("%{b:02x}")).collect();
    let (u, h) = (url.clone(), hash.clone());
    tokio::task::spawn_blocking(move || {
        wait_until("the seeder's announce", Duration::from_secs(30), || seeds_at(&u, &h) == 1)
    })
    .await
    .unwrap();

    // Killed, and a new one, empty, on the same address.
    let again = tokio::task::spawn_blocking(move || {
        drop(first);
        let again = spawn(config(addr)).expect("a tracker starts again on the same address");
        (again, std::time::Instant::now())
    });
    let (again, restarted) = again.await.unwrap();
    let (u, h) = (url.clone(), hash.clone());
    let back = tokio::task::spawn_blocking(move || {
        wait_until("the swarm back at the restarted tracker", Duration::from_secs(30), || seeds_at(&u, &h) == 1);
        restarted.elapsed()
    })
    .await
    .unwrap();
    eprintln!("swarm back {back:?} after the restart (interval {INTERVAL:?})");
    assert!(back <= INTERVAL + Duration::from_secs(1), "the swarm came back after {back:?}, not within one interval");
    seeder.stop().await;
    tokio::task::spawn_blocking(move || drop(again)).await.unwrap();
}
