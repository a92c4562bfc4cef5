//! Real BitTorrent clients against `shoal tracker` (in-process, bound on port 0): aria2c over
//! HTTP and UDP, and qbittorrent-nox (libtorrent 2.0), each find a seeding aria2c through the
//! tracker and download a blob whose SHA-256 must match; also after one address flooded the
//! tracker with announces for new torrents (held back by its per-address budget).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use shoal_interop_tests::{
    free_port, qbittorrent_nox, require_tool, run_ok, sha256_file, wait_until, write_blob, ChildGuard,
};
use shoal_torrents::{hash_reader, BlobTorrent, Distribution, InfoHash};
use shoal_tracker::{spawn, RunningTracker, TrackerConfig};

const ARIA2_QUIET: [&str; 8] = [
    "--enable-dht6=false",
    "--bt-enable-lpd=false",
    "--enable-peer-exchange=false",
    "--bt-save-metadata=false",
    "--summary-interval=0",
    "--console-log-level=warn",
    "--allow-overwrite=true",
    "--file-allocation=none",
];

/// A blob in `seed_dir` and its profile torrent (announcing to `tracker_url`) in `dir`.
struct Fixture {
    torrent: PathBuf,
    name: String,
    digest: String,
    info_hash: InfoHash,
}

fn fixture(dir: &Path, seed_dir: &Path, tracker_url: &str, seed: u64) -> Fixture {
    let scratch = dir.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let blob = write_blob(&scratch, "blob", 3 * 1024 * 1024 + 12345, seed);
    let file = std::fs::File::open(&blob).unwrap();
    let hashed = hash_reader(file, std::fs::metadata(&blob).unwrap().len(), &mut |_| {}).unwrap();
    let torrent = BlobTorrent::from_hashed(&hashed);
    std::fs::create_dir_all(seed_dir).unwrap();
    std::fs::rename(&blob, seed_dir.join(&torrent.name)).unwrap();
    let path = dir.join("blob.torrent");
    let distribution = Distribution { trackers: vec![tracker_url.to_owned()], webseeds: vec![] };
    std::fs::write(&path, torrent.torrent_bytes(&distribution)).unwrap();
    Fixture {
        torrent: path,
        name: torrent.name.clone(),
        digest: hashed.digest.to_string(),
        info_hash: torrent.info_hash(),
    }
}

/// aria2c's DHT switch. aria2 1.36 sends UDP tracker requests through its DHT socket and
/// refuses `udp://` trackers without it ("udp is not supported yet"), so UDP runs need it on;
/// the DHT then has no bootstrap node and no routing table, so it cannot find peers itself.
fn dht_args(dir: &Path, udp: bool) -> Vec<String> {
    if udp {
        vec!["--enable-dht=true".into(), format!("--dht-file-path={}", dir.join("dht.dat").display())]
    } else {
        vec!["--enable-dht=false".into()]
    }
}

/// An aria2c that checks the blob already in `seed_dir` and seeds it until killed.
fn aria2c_seeder(seed_dir: &Path, torrent: &Path, log: &Path, dht: &[String]) -> ChildGuard {
    let aria2c = require_tool("aria2c");
    ChildGuard::spawn(
        Command::new(aria2c)
            .arg("-d")
            .arg(seed_dir)
            .args(ARIA2_QUIET)
            .args(["-V", "--check-integrity=true", "--seed-ratio=0.0"])
            .args(dht)
            .arg(format!("--listen-port={}", free_port()))
            .arg(format!("--dht-listen-port={}", free_port()))
            .arg(format!("--log={}", log.display()))
            .arg("--log-level=info")
            .arg(torrent)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// Waits until the tracker counts `seeders` seeders and `leechers` leechers for the torrent.
fn wait_for_swarm(tracker: &RunningTracker, info_hash: &InfoHash, seeders: u32, what: &str) {
    wait_until(what, Duration::from_secs(60), || {
        tracker.tracker().swarms().scrape(info_hash).is_some_and(|s| s.complete >= seeders)
    });
}

/// Downloads with a second aria2c (bounded by `timeout`) and checks the result.
fn aria2c_download(dir: &Path, f: &Fixture, dht: &[String]) {
    let out_dir = dir.join("leech");
    std::fs::create_dir_all(&out_dir).unwrap();
    run_ok(
        Command::new(require_tool("timeout"))
            .arg("120")
            .arg(require_tool("aria2c"))
            .arg("-d")
            .arg(&out_dir)
            .args(ARIA2_QUIET)
            .args(["--seed-time=0", "--bt-stop-timeout=90"])
            .args(dht)
            .arg(format!("--listen-port={}", free_port()))
            .arg(format!("--dht-listen-port={}", free_port()))
            .arg(&f.torrent),
    );
    assert_eq!(sha256_file(&out_dir.join(&f.name)), f.digest);
}

fn downloads_from_a_seeding_aria2c(udp: bool) {
    let dir = tempfile::tempdir().unwrap();
    let tracker =
        spawn(TrackerConfig { udp_listen: Some("127.0.0.1:0".parse().unwrap()), ..TrackerConfig::loopback() }).unwrap();
    let url = if udp { format!("udp://{}/announce", tracker.udp_addr().unwrap()) } else { tracker.announce_url() };
    let seed_dir = dir.path().join("seed");
    let f = fixture(dir.path(), &seed_dir, &url, if udp { 2 } else { 1 });
    let log = dir.path().join("seeder.log");
    let seeder_dht = dht_args(&seed_dir, udp);
    let _seeder = aria2c_seeder(&seed_dir, &f.torrent, &log, &seeder_dht);
    wait_for_swarm(&tracker, &f.info_hash, 1, "the aria2c seeder to announce");
    aria2c_download(dir.path(), &f, &dht_args(dir.path(), udp));
    // The leecher found the seeder through the tracker: both sent a `started` announce.
    assert!(started_announces(&tracker) >= 2, "{}", tracker.tracker().render_metrics());
}

fn started_announces(tracker: &RunningTracker) -> u64 {
    let metrics = tracker.tracker().render_metrics();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("shoal_tracker_announces_total{event=\"started\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn aria2c_finds_a_seeder_through_the_http_tracker() {
    downloads_from_a_seeding_aria2c(false);
}

#[test]
fn aria2c_finds_a_seeder_through_the_udp_tracker() {
    downloads_from_a_seeding_aria2c(true);
}

fn curl(args: &[&str]) -> Option<String> {
    let out = Command::new(require_tool("curl")).args(["-sf", "--max-time", "5"]).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn qbittorrent_finds_a_seeder_through_the_http_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = spawn(TrackerConfig::loopback()).unwrap();
    let seed_dir = dir.path().join("seed");
    let f = fixture(dir.path(), &seed_dir, &tracker.announce_url(), 3);
    let _seeder = aria2c_seeder(&seed_dir, &f.torrent, &dir.path().join("seeder.log"), &dht_args(&seed_dir, false));
    wait_for_swarm(&tracker, &f.info_hash, 1, "the aria2c seeder to announce");

    let save = dir.path().join("qbt-save");
    std::fs::create_dir_all(&save).unwrap();
    let webui = free_port();
    let _qbt = qbittorrent_nox(&dir.path().join("qbt-profile"), webui, free_port(), &save);
    let api = format!("http://127.0.0.1:{webui}/api/v2");
    wait_until("qbittorrent-nox's Web API", Duration::from_secs(60), || {
        curl(&[&format!("{api}/app/version")]).is_some()
    });
    let torrent_arg = format!("torrents=@{}", f.torrent.display());
    let save_arg = format!("savepath={}", save.display());
    let added = curl(&["-F", &torrent_arg, "-F", &save_arg, &format!("{api}/torrents/add")]);
    assert!(added.is_some(), "qbittorrent-nox refused the torrent");
    let hash = f.info_hash.hex();
    let mut last = String::new();
    let done = (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(200));
        let Some(body) = curl(&[&format!("{api}/torrents/info?hashes={hash}")]) else { return false };
        let info: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        last = body;
        info[0]["progress"].as_f64() == Some(1.0)
    });
    assert!(done, "qbittorrent-nox did not finish in 120 s; last state: {last}");
    assert_eq!(sha256_file(&save.join(&f.name)), f.digest);
    // It found the seeder through our tracker: its announce shows in the swarm.
    let stats = tracker.tracker().swarms().scrape(&f.info_hash).unwrap();
    assert!(stats.complete + stats.incomplete >= 2, "qbittorrent-nox never announced: {stats:?}");
}

/// Announces for `count` random infohashes from `source` (a loopback address of its own), over
/// one keep-alive curl; returns how many got a failure reason.
fn flood(tracker: &RunningTracker, source: &str, count: usize, dir: &Path) -> usize {
    let config = dir.join("flood.curl");
    let mut lines = String::new();
    for i in 0..count {
        let mut bytes = [0xab_u8; 20];
        bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let hash: String = bytes.iter().map(|b| format!("%{b:02x}")).collect();
        let url = format!(
            "{}?info_hash={hash}&peer_id=-FL0001-{i:012}&port=6881&uploaded=0&downloaded=0&left=1000&compact=1",
            tracker.announce_url()
        );
        lines.push_str(&format!("url = \"{url}\"\noutput = \"/dev/null\"\nwrite-out = \"%{{http_code}}\\n\"\n"));
    }
    std::fs::write(&config, lines).unwrap();
    let out = run_ok(Command::new(require_tool("curl")).args(["-sS", "--interface", source, "-K"]).arg(&config));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().filter(|l| *l == "200").count(), count);
    let metrics = tracker.tracker().render_metrics();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("shoal_tracker_failures_total{reason=\"too_many_new_swarms\"} "))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[test]
fn one_address_flooding_new_torrents_does_not_lock_a_real_torrent_out() {
    let dir = tempfile::tempdir().unwrap();
    // Small caps so the flood would fill them: 1,000 swarms in all, 100 new ones per address.
    let limits = shoal_tracker::SwarmLimits {
        max_swarms: 1000,
        new_swarms_per_address_burst: 100,
        new_swarms_per_address_per_sec: 1,
        ..Default::default()
    };
    let tracker = spawn(TrackerConfig { limits, ..TrackerConfig::loopback() }).unwrap();
    let refused = flood(&tracker, "127.0.0.2", 1500, dir.path());
    let swarms = tracker.tracker().swarms().totals().swarms;
    assert!(refused >= 1390 && swarms <= 110, "{refused} refused, {swarms} swarms: the flood was not held back");

    // A real torrent from another address still gets its swarm, and a download through it.
    let seed_dir = dir.path().join("seed");
    let f = fixture(dir.path(), &seed_dir, &tracker.announce_url(), 7);
    let _seeder = aria2c_seeder(&seed_dir, &f.torrent, &dir.path().join("seeder.log"), &dht_args(&seed_dir, false));
    wait_for_swarm(&tracker, &f.info_hash, 1, "the aria2c seeder to announce");
    aria2c_download(dir.path(), &f, &dht_args(dir.path(), false));
}
